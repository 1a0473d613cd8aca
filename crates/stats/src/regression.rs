//! Ordinary least squares with classical or cluster-robust (CR1) standard
//! errors.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::dist::{t_for, z_for};
use crate::linalg::{least_squares, matmul, LeastSquares, Mat};
use crate::{check_finite, check_len, half_alpha, StatsError};

/// Result of [`ols`] / [`ols_clustered`]: one entry per column of the design.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OlsFit {
    pub coef: Vec<f64>,
    pub se: Vec<f64>,
    pub ci: Vec<(f64, f64)>,
    /// Number of observations (rows).
    pub n: usize,
    /// Number of distinct clusters for cluster-robust fits, `None` otherwise.
    pub clusters: Option<usize>,
}

/// Critical value used for the confidence intervals of [`ols_clustered_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterInference {
    /// Standard normal critical value — statsmodels' default for
    /// `cov_type="cluster"` (`use_t=False`).
    Normal,
    /// Student t with `G - 1` degrees of freedom — statsmodels with
    /// `use_t=True` (its `df_resid_inference = G - 1`).
    StudentT,
}

struct Design<'a> {
    x: &'a [Vec<f64>],
    y: &'a [f64],
    n: usize,
    k: usize,
}

fn validate<'a>(x: &'a [Vec<f64>], y: &'a [f64]) -> Result<Design<'a>, StatsError> {
    if x.is_empty() || y.is_empty() {
        return Err(StatsError::EmptyInput);
    }
    check_len("y", x.len(), y.len())?;
    let k = x[0].len();
    if k == 0 {
        return Err(StatsError::EmptyInput);
    }
    for row in x {
        check_len("design row", k, row.len())?;
        check_finite(row, "x")?;
    }
    check_finite(y, "y")?;
    let n = x.len();
    if n <= k {
        return Err(StatsError::InsufficientData {
            needed: k + 1,
            got: n,
        });
    }
    Ok(Design { x, y, n, k })
}

fn residuals(d: &Design<'_>, coef: &[f64]) -> Vec<f64> {
    d.x.iter()
        .zip(d.y)
        .map(|(row, yi)| yi - row.iter().zip(coef).map(|(a, b)| a * b).sum::<f64>())
        .collect()
}

fn finish(coef: Vec<f64>, cov: &Mat, crit: f64, n: usize, clusters: Option<usize>) -> OlsFit {
    let se: Vec<f64> = (0..coef.len()).map(|j| cov[j][j].max(0.0).sqrt()).collect();
    let ci = coef
        .iter()
        .zip(&se)
        .map(|(b, s)| (b - crit * s, b + crit * s))
        .collect();
    OlsFit {
        coef,
        se,
        ci,
        n,
        clusters,
    }
}

/// OLS with classical (homoskedastic) standard errors.
///
/// `x` is the design as rows (include a column of ones yourself for an
/// intercept); `y` the response. `se_j = √(s² [(X'X)⁻¹]_jj)` with
/// `s² = RSS/(N-K)`, and the CI uses Student t with `N-K` degrees of freedom.
/// Solved by Householder QR.
///
/// Matches `statsmodels.api.OLS(y, x).fit()` (`params`, `bse`,
/// `conf_int(alpha=1-confidence)`).
///
/// Errors: empty input, mismatched lengths (y vs rows, ragged rows),
/// non-finite values, `N <= K` ([`StatsError::InsufficientData`]), a
/// rank-deficient design ([`StatsError::SingularMatrix`]; statsmodels would
/// silently use a pseudo-inverse), bad confidence.
pub fn ols(x: &[Vec<f64>], y: &[f64], confidence: f64) -> Result<OlsFit, StatsError> {
    half_alpha(confidence)?;
    let d = validate(x, y)?;
    let LeastSquares { coef, xtx_inv } = least_squares(d.x, d.y)?;
    let resid = residuals(&d, &coef);
    let rss: f64 = resid.iter().map(|e| e * e).sum();
    let df = (d.n - d.k) as f64;
    let s2 = rss / df;
    let cov: Mat = xtx_inv
        .iter()
        .map(|row| row.iter().map(|v| v * s2).collect())
        .collect();
    let crit = t_for(confidence, df)?;
    Ok(finish(coef, &cov, crit, d.n, None))
}

/// OLS with cluster-robust (CR1) standard errors and normal-based intervals.
/// Equivalent to [`ols_clustered_with`]`(…, ClusterInference::Normal)`.
///
/// The covariance is the sandwich
/// `c · (X'X)⁻¹ (Σ_g u_g u_g') (X'X)⁻¹`, `u_g = Σ_{i∈g} x_i e_i`, with
/// statsmodels' default small-sample factor
/// `c = G/(G-1) · (N-1)/(N-K)` (note: statsmodels applies **both** factors
/// — the Stata-style CR1 — not just `G/(G-1)`).
///
/// Matches `statsmodels.api.OLS(y, x).fit(cov_type="cluster",
/// cov_kwds={"groups": clusters})`: `bse` exactly, and `conf_int()`, which by
/// default uses the **normal** distribution (`use_t` is False for robust
/// covariances unless requested), even though statsmodels also records
/// `df_resid_inference = G - 1`. For the t(G-1) interval that statsmodels
/// produces with `use_t=True`, use [`ols_clustered_with`] and
/// [`ClusterInference::StudentT`].
///
/// Errors: as [`ols`], plus mismatched `clusters` length and fewer than two
/// clusters ([`StatsError::TooFewClusters`]).
pub fn ols_clustered(
    x: &[Vec<f64>],
    y: &[f64],
    clusters: &[u64],
    confidence: f64,
) -> Result<OlsFit, StatsError> {
    ols_clustered_with(x, y, clusters, confidence, ClusterInference::Normal)
}

/// [`ols_clustered`] with a choice of critical value for the intervals
/// (the coefficients and standard errors do not depend on it).
pub fn ols_clustered_with(
    x: &[Vec<f64>],
    y: &[f64],
    clusters: &[u64],
    confidence: f64,
    inference: ClusterInference,
) -> Result<OlsFit, StatsError> {
    half_alpha(confidence)?;
    let d = validate(x, y)?;
    check_len("clusters", d.n, clusters.len())?;

    // Map cluster ids to dense indices in order of first appearance.
    let mut index: HashMap<u64, usize> = HashMap::new();
    for &c in clusters {
        let next = index.len();
        index.entry(c).or_insert(next);
    }
    let g = index.len();
    if g < 2 {
        return Err(StatsError::TooFewClusters(g));
    }

    let LeastSquares { coef, xtx_inv } = least_squares(d.x, d.y)?;
    let resid = residuals(&d, &coef);

    let mut scores = vec![vec![0.0; d.k]; g];
    for ((row, e), c) in d.x.iter().zip(&resid).zip(clusters) {
        let s = &mut scores[index[c]];
        for (acc, xij) in s.iter_mut().zip(row) {
            *acc += xij * e;
        }
    }
    let mut meat = vec![vec![0.0; d.k]; d.k];
    for u in &scores {
        for (i, mrow) in meat.iter_mut().enumerate() {
            for (j, cell) in mrow.iter_mut().enumerate() {
                *cell += u[i] * u[j];
            }
        }
    }
    let (gf, nf, kf) = (g as f64, d.n as f64, d.k as f64);
    let factor = gf / (gf - 1.0) * (nf - 1.0) / (nf - kf);
    let sandwich = matmul(&matmul(&xtx_inv, &meat), &xtx_inv);
    let cov: Mat = sandwich
        .iter()
        .map(|row| row.iter().map(|v| v * factor).collect())
        .collect();
    let crit = match inference {
        ClusterInference::Normal => z_for(confidence),
        ClusterInference::StudentT => t_for(confidence, gf - 1.0)?,
    };
    Ok(finish(coef, &cov, crit, d.n, Some(g)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_data() -> (Vec<Vec<f64>>, Vec<f64>) {
        let x: Vec<Vec<f64>> = (0..12).map(|i| vec![1.0, i as f64]).collect();
        let y: Vec<f64> = (0..12)
            .map(|i| 1.0 + 0.5 * i as f64 + if i % 2 == 0 { 0.3 } else { -0.3 })
            .collect();
        (x, y)
    }

    #[test]
    fn errors() {
        let (x, y) = line_data();
        assert_eq!(ols(&[], &[], 0.95), Err(StatsError::EmptyInput));
        assert!(matches!(
            ols(&x, &y[..5], 0.95),
            Err(StatsError::MismatchedLengths { .. })
        ));
        let mut ragged = x.clone();
        ragged[3].push(2.0);
        assert!(matches!(
            ols(&ragged, &y, 0.95),
            Err(StatsError::MismatchedLengths { .. })
        ));
        assert_eq!(
            ols(&x[..2], &y[..2], 0.95),
            Err(StatsError::InsufficientData { needed: 3, got: 2 })
        );
        let collinear: Vec<Vec<f64>> = x
            .iter()
            .map(|r| vec![r[0], r[1], 3.0 * r[1] - 2.0])
            .collect();
        assert_eq!(ols(&collinear, &y, 0.95), Err(StatsError::SingularMatrix));
        let mut bad = y.clone();
        bad[0] = f64::NAN;
        assert_eq!(ols(&x, &bad, 0.95), Err(StatsError::NonFinite("y")));
        assert_eq!(ols(&x, &y, 0.0), Err(StatsError::InvalidConfidence(0.0)));

        let cl = vec![7u64; 12];
        assert_eq!(
            ols_clustered(&x, &y, &cl, 0.95),
            Err(StatsError::TooFewClusters(1))
        );
        assert!(matches!(
            ols_clustered(&x, &y, &cl[..4], 0.95),
            Err(StatsError::MismatchedLengths {
                what: "clusters",
                ..
            })
        ));
    }

    #[test]
    fn classical_se_for_simple_regression() {
        // Slope SE for y = a + b t: s / sqrt(Σ (t - t̄)²).
        let (x, y) = line_data();
        let fit = ols(&x, &y, 0.95).unwrap();
        let tbar = 5.5;
        let sxx: f64 = (0..12).map(|i| (i as f64 - tbar).powi(2)).sum();
        let resid: Vec<f64> = x
            .iter()
            .zip(&y)
            .map(|(r, yi)| yi - fit.coef[0] - fit.coef[1] * r[1])
            .collect();
        let s2 = resid.iter().map(|e| e * e).sum::<f64>() / 10.0;
        assert!((fit.se[1] - (s2 / sxx).sqrt()).abs() < 1e-12);
        assert_eq!(fit.n, 12);
        assert_eq!(fit.clusters, None);
    }

    #[test]
    fn singleton_clusters_equal_hc1() {
        // With one observation per cluster CR1 reduces to HC1:
        // G/(G-1)·(N-1)/(N-K) = N/(N-K) when G = N.
        let (x, y) = line_data();
        let ids: Vec<u64> = (0..12).collect();
        let fit = ols_clustered(&x, &y, &ids, 0.95).unwrap();
        let base = ols(&x, &y, 0.95).unwrap();
        assert_eq!(fit.coef, base.coef);
        assert_eq!(fit.clusters, Some(12));
        // HC1 by hand for the slope.
        let tbar = 5.5;
        let sxx: f64 = (0..12).map(|i| (i as f64 - tbar).powi(2)).sum();
        let e: Vec<f64> = x
            .iter()
            .zip(&y)
            .map(|(r, yi)| yi - fit.coef[0] - fit.coef[1] * r[1])
            .collect();
        let meat: f64 = (0..12).map(|i| ((i as f64 - tbar) * e[i]).powi(2)).sum();
        let hc1 = (12.0 / 10.0 * meat / (sxx * sxx)).sqrt();
        assert!((fit.se[1] - hc1).abs() < 1e-12, "{} vs {}", fit.se[1], hc1);
    }

    #[test]
    fn t_inference_is_wider_than_normal() {
        let (x, y) = line_data();
        let cl: Vec<u64> = (0..12).map(|i| i / 3).collect();
        let a = ols_clustered_with(&x, &y, &cl, 0.95, ClusterInference::Normal).unwrap();
        let b = ols_clustered_with(&x, &y, &cl, 0.95, ClusterInference::StudentT).unwrap();
        assert_eq!(a.se, b.se);
        assert!(b.ci[1].1 - b.ci[1].0 > a.ci[1].1 - a.ci[1].0);
    }
}
