//! Intervals for proportions: Wilson score, Newcombe's hybrid score interval
//! for a difference, and a pooled proportion with cluster-robust SE.

use std::collections::HashMap;

use crate::dist::z_for;
use crate::{check_finite, check_len, half_alpha, Estimate, Interval, StatsError};

/// Wilson score interval for a binomial proportion `successes / n`.
///
/// `center = (p̂ + z²/2n) / (1 + z²/n)`,
/// `half = z √(p̂(1-p̂)/n + z²/4n²) / (1 + z²/n)`, clipped to `[0, 1]`
/// (so `x = 0` gives `lo = 0` exactly and `x = n` gives `hi = 1`).
/// `estimate` is `p̂ = successes / n` (not the Wilson centre).
///
/// Matches `statsmodels.stats.proportion.proportion_confint(successes, n,
/// alpha=1-confidence, method="wilson")`.
///
/// Errors: `n == 0` → [`StatsError::EmptyInput`]; `successes > n` →
/// [`StatsError::InvalidArgument`]; bad confidence →
/// [`StatsError::InvalidConfidence`].
pub fn wilson(successes: u64, n: u64, confidence: f64) -> Result<Interval, StatsError> {
    half_alpha(confidence)?;
    if n == 0 {
        return Err(StatsError::EmptyInput);
    }
    if successes > n {
        return Err(StatsError::InvalidArgument(format!(
            "successes ({successes}) exceed trials ({n})"
        )));
    }
    let z = z_for(confidence);
    let nf = n as f64;
    let p = successes as f64 / nf;
    let z2 = z * z;
    let denom = 1.0 + z2 / nf;
    let center = (p + z2 / (2.0 * nf)) / denom;
    let half = z * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt() / denom;
    // At x = 0 (x = n) the lower (upper) limit is exactly 0 (1) in exact
    // arithmetic; pin it rather than return a rounding residue like 3e-17.
    let lo = if successes == 0 {
        0.0
    } else {
        (center - half).clamp(0.0, 1.0)
    };
    let hi = if successes == n {
        1.0
    } else {
        (center + half).clamp(0.0, 1.0)
    };
    Ok(Interval {
        estimate: p,
        lo,
        hi,
    })
}

/// Interval for the difference of two independent proportions
/// `p1 - p2 = x1/n1 - x2/n2`: Newcombe's (1998) hybrid score interval,
/// "method 10", built from the two Wilson intervals `(l1, u1)`, `(l2, u2)`:
///
/// `lo = d - √((p1 - l1)² + (u2 - p2)²)`, `hi = d + √((u1 - p1)² + (p2 - l2)²)`.
///
/// Matches `statsmodels.stats.proportion.confint_proportions_2indep(x1, n1,
/// x2, n2, method="newcomb", compare="diff", alpha=1-confidence)`.
pub fn newcombe_diff(
    x1: u64,
    n1: u64,
    x2: u64,
    n2: u64,
    confidence: f64,
) -> Result<Interval, StatsError> {
    let w1 = wilson(x1, n1, confidence)?;
    let w2 = wilson(x2, n2, confidence)?;
    let (p1, p2) = (w1.estimate, w2.estimate);
    let d = p1 - p2;
    let d_lo = ((p1 - w1.lo).powi(2) + (w2.hi - p2).powi(2)).sqrt();
    let d_hi = ((w1.hi - p1).powi(2) + (p2 - w2.lo).powi(2)).sqrt();
    Ok(Interval {
        estimate: d,
        lo: d - d_lo,
        hi: d + d_hi,
    })
}

/// Pooled proportion over observation units grouped in clusters, with a
/// cluster-robust (sandwich) standard error.
///
/// Unit `i` contributes `y[i]` successes out of `m[i]` trials (e.g. one
/// question asked `m` times, or `m = 1` for a single graded answer) and
/// belongs to cluster `clusters[i]` (e.g. a source document or a template).
/// The estimate is the ratio `p = Σy / Σm`, and with the cluster sums
/// `e_g = Σ_{i∈g} (y_i - p m_i)` over `G` clusters,
///
/// `Var(p) = G/(G-1) · Σ_g e_g² / (Σm)²`,
///
/// the CR1 sandwich for an intercept-only weighted regression. The interval is
/// `p ± z·se` with the **normal** critical value, then clipped to `[0, 1]`.
///
/// **statsmodels equivalent** (SE exactly; the interval before clipping):
///
/// ```python
/// import numpy as np, statsmodels.api as sm
/// res = sm.WLS(y / m, np.ones(len(y)), weights=m).fit(
///     cov_type="cluster", cov_kwds={"groups": clusters})
/// p, se = res.params[0], res.bse[0]
/// lo, hi = np.clip(res.conf_int(alpha=1 - confidence)[0], 0, 1)
/// ```
///
/// With all `m = 1` this is `sm.OLS(y, np.ones(n)).fit(cov_type="cluster",
/// cov_kwds={"groups": clusters})`. statsmodels' default cluster correction is
/// `G/(G-1) · (N-1)/(N-K)`; with the single intercept column `K = 1`, so the
/// second factor is exactly 1 and only `G/(G-1)` remains. statsmodels uses
/// the normal distribution for the cluster CI by default (`use_t=False`),
/// which is what we do here.
///
/// Errors: empty input, mismatched lengths, non-finite values, `m[i] <= 0`
/// or `y[i]` outside `[0, m[i]]` ([`StatsError::InvalidArgument`]), fewer than
/// two clusters ([`StatsError::TooFewClusters`]), bad confidence.
pub fn clustered_ratio(
    y: &[f64],
    m: &[f64],
    clusters: &[u64],
    confidence: f64,
) -> Result<Estimate, StatsError> {
    half_alpha(confidence)?;
    if y.is_empty() {
        return Err(StatsError::EmptyInput);
    }
    check_len("m", y.len(), m.len())?;
    check_len("clusters", y.len(), clusters.len())?;
    check_finite(y, "y")?;
    check_finite(m, "m")?;
    for (i, (&yi, &mi)) in y.iter().zip(m).enumerate() {
        if mi <= 0.0 {
            return Err(StatsError::InvalidArgument(format!(
                "m[{i}] = {mi}: every unit needs a positive number of trials"
            )));
        }
        if yi < 0.0 || yi > mi {
            return Err(StatsError::InvalidArgument(format!(
                "y[{i}] = {yi} is outside [0, m[{i}] = {mi}]"
            )));
        }
    }
    let sum_y: f64 = y.iter().sum();
    let sum_m: f64 = m.iter().sum();
    let p = sum_y / sum_m;

    let mut cluster_sums: HashMap<u64, f64> = HashMap::new();
    for ((&yi, &mi), &g) in y.iter().zip(m).zip(clusters) {
        *cluster_sums.entry(g).or_insert(0.0) += yi - p * mi;
    }
    let g = cluster_sums.len();
    if g < 2 {
        return Err(StatsError::TooFewClusters(g));
    }
    let gf = g as f64;
    // Sum in a fixed order (sorted cluster ids) so results are reproducible
    // bit-for-bit regardless of hash order.
    let mut ids: Vec<&u64> = cluster_sums.keys().collect();
    ids.sort_unstable();
    let meat: f64 = ids.iter().map(|id| cluster_sums[*id].powi(2)).sum();
    let var = gf / (gf - 1.0) * meat / (sum_m * sum_m);
    let se = var.sqrt();
    let z = z_for(confidence);
    Ok(Estimate {
        estimate: p,
        se,
        lo: (p - z * se).clamp(0.0, 1.0),
        hi: (p + z * se).clamp(0.0, 1.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_errors() {
        assert_eq!(wilson(0, 0, 0.95), Err(StatsError::EmptyInput));
        assert!(matches!(
            wilson(5, 4, 0.95),
            Err(StatsError::InvalidArgument(_))
        ));
        assert_eq!(wilson(1, 4, 1.0), Err(StatsError::InvalidConfidence(1.0)));
        assert!(matches!(
            wilson(1, 4, f64::NAN),
            Err(StatsError::InvalidConfidence(_))
        ));
        assert_eq!(wilson(1, 4, -0.5), Err(StatsError::InvalidConfidence(-0.5)));
    }

    #[test]
    fn wilson_boundaries_and_symmetry() {
        let a = wilson(0, 10, 0.95).unwrap();
        assert_eq!(a.lo, 0.0);
        assert!(a.hi > 0.0 && a.hi < 0.5);
        let b = wilson(10, 10, 0.95).unwrap();
        assert_eq!(b.hi, 1.0);
        // x and n-x are mirror images.
        let c = wilson(3, 17, 0.9).unwrap();
        let d = wilson(14, 17, 0.9).unwrap();
        assert!((c.lo - (1.0 - d.hi)).abs() < 1e-15);
        assert!((c.hi - (1.0 - d.lo)).abs() < 1e-15);
        // Wider at higher confidence.
        let e = wilson(3, 17, 0.99).unwrap();
        assert!(e.lo < c.lo && e.hi > c.hi);
    }

    #[test]
    fn newcombe_errors_and_antisymmetry() {
        assert_eq!(newcombe_diff(1, 0, 1, 2, 0.95), Err(StatsError::EmptyInput));
        assert_eq!(newcombe_diff(1, 2, 0, 0, 0.95), Err(StatsError::EmptyInput));
        assert!(matches!(
            newcombe_diff(3, 2, 1, 2, 0.95),
            Err(StatsError::InvalidArgument(_))
        ));
        let ab = newcombe_diff(7, 20, 12, 25, 0.95).unwrap();
        let ba = newcombe_diff(12, 25, 7, 20, 0.95).unwrap();
        assert!((ab.estimate + ba.estimate).abs() < 1e-15);
        assert!((ab.lo + ba.hi).abs() < 1e-15);
        assert!((ab.hi + ba.lo).abs() < 1e-15);
    }

    #[test]
    fn clustered_ratio_errors() {
        let ok_y = [1.0, 0.0, 1.0];
        let ok_m = [1.0, 1.0, 2.0];
        assert_eq!(
            clustered_ratio(&[], &[], &[], 0.95),
            Err(StatsError::EmptyInput)
        );
        assert!(matches!(
            clustered_ratio(&ok_y, &ok_m[..2], &[1, 2, 3], 0.95),
            Err(StatsError::MismatchedLengths { what: "m", .. })
        ));
        assert!(matches!(
            clustered_ratio(&ok_y, &ok_m, &[1, 2], 0.95),
            Err(StatsError::MismatchedLengths {
                what: "clusters",
                ..
            })
        ));
        assert_eq!(
            clustered_ratio(&ok_y, &ok_m, &[4, 4, 4], 0.95),
            Err(StatsError::TooFewClusters(1))
        );
        assert!(matches!(
            clustered_ratio(&[2.0, 0.0], &[1.0, 1.0], &[1, 2], 0.95),
            Err(StatsError::InvalidArgument(_))
        ));
        assert!(matches!(
            clustered_ratio(&[0.0, 0.0], &[0.0, 1.0], &[1, 2], 0.95),
            Err(StatsError::InvalidArgument(_))
        ));
        assert_eq!(
            clustered_ratio(&[f64::NAN, 0.0], &[1.0, 1.0], &[1, 2], 0.95),
            Err(StatsError::NonFinite("y"))
        );
        assert_eq!(
            clustered_ratio(&ok_y, &ok_m, &[1, 2, 3], 0.0),
            Err(StatsError::InvalidConfidence(0.0))
        );
    }

    #[test]
    fn clustered_ratio_singleton_clusters_is_hc_like() {
        // One unit per cluster, m = 1: Var = G/(G-1) Σ (y - p)² / G²
        // = p(1-p)/(G-1), the familiar sample-variance-of-the-mean.
        let y = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0];
        let m = [1.0; 8];
        let c: Vec<u64> = (0..8).collect();
        let est = clustered_ratio(&y, &m, &c, 0.95).unwrap();
        let p = 5.0 / 8.0;
        assert!((est.estimate - p).abs() < 1e-15);
        assert!((est.se - (p * (1.0 - p) / 7.0).sqrt()).abs() < 1e-15);
        // Relabelling clusters does not matter; merging them does.
        let c2: Vec<u64> = (0..8).map(|i| 1000 - i * 7).collect();
        assert_eq!(clustered_ratio(&y, &m, &c2, 0.95).unwrap(), est);
        let merged = clustered_ratio(&y, &m, &[0, 0, 1, 1, 2, 2, 3, 3], 0.95).unwrap();
        assert!((merged.se - est.se).abs() > 1e-6);
    }

    #[test]
    fn clustered_ratio_clips_to_unit_interval() {
        let y = [0.0, 0.0, 0.0, 1.0];
        let m = [5.0, 5.0, 5.0, 5.0];
        let est = clustered_ratio(&y, &m, &[1, 2, 3, 4], 0.99).unwrap();
        assert_eq!(est.lo, 0.0);
        assert!(est.estimate - 2.5758 * est.se < 0.0);
    }
}
