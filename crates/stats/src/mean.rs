//! Student-t confidence interval for a mean.

use crate::dist::t_for;
use crate::{check_finite, half_alpha, Estimate, StatsError};

/// Arithmetic mean with a two-pass correction (accurate for data with a large
/// common offset).
pub(crate) fn mean(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let m0 = values.iter().sum::<f64>() / n;
    let corr = values.iter().map(|v| v - m0).sum::<f64>() / n;
    m0 + corr
}

/// Mean with the Student-t interval: `x̄ ± t_{n-1} · s/√n`, where `s` is the
/// sample standard deviation (`ddof = 1`); `se = s/√n`.
///
/// Matches `statsmodels.stats.weightstats.DescrStatsW(values)
/// .tconfint_mean(alpha=1-confidence)` and `scipy.stats.t.interval(confidence,
/// n-1, loc=mean, scale=sem)`.
///
/// Errors: empty input, fewer than 2 values
/// ([`StatsError::InsufficientData`]), non-finite values, bad confidence.
/// Constant data give `se = 0` and a zero-width interval.
pub fn mean_ci_t(values: &[f64], confidence: f64) -> Result<Estimate, StatsError> {
    half_alpha(confidence)?;
    if values.is_empty() {
        return Err(StatsError::EmptyInput);
    }
    if values.len() < 2 {
        return Err(StatsError::InsufficientData {
            needed: 2,
            got: values.len(),
        });
    }
    check_finite(values, "values")?;
    let n = values.len() as f64;
    let mu = mean(values);
    let ss: f64 = values.iter().map(|v| (v - mu) * (v - mu)).sum();
    let se = (ss / (n - 1.0)).sqrt() / n.sqrt();
    let t = t_for(confidence, n - 1.0)?;
    Ok(Estimate {
        estimate: mu,
        se,
        lo: mu - t * se,
        hi: mu + t * se,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors() {
        assert_eq!(mean_ci_t(&[], 0.95), Err(StatsError::EmptyInput));
        assert_eq!(
            mean_ci_t(&[1.0], 0.95),
            Err(StatsError::InsufficientData { needed: 2, got: 1 })
        );
        assert_eq!(
            mean_ci_t(&[1.0, f64::INFINITY], 0.95),
            Err(StatsError::NonFinite("values"))
        );
        assert_eq!(
            mean_ci_t(&[1.0, 2.0], 1.5),
            Err(StatsError::InvalidConfidence(1.5))
        );
    }

    #[test]
    fn two_points_use_cauchy_quantile() {
        // n = 2: df = 1, t_{0.975} = tan(0.475π) = 12.7062…; s/√n = |a-b|/2.
        let e = mean_ci_t(&[1.0, 3.0], 0.95).unwrap();
        let t = (0.475 * std::f64::consts::PI).tan();
        assert!((e.estimate - 2.0).abs() < 1e-15);
        assert!((e.se - 1.0).abs() < 1e-15);
        assert!((e.hi - (2.0 + t)).abs() < 1e-12);
        assert!((e.lo - (2.0 - t)).abs() < 1e-12);
    }

    #[test]
    fn constant_data_zero_width() {
        let e = mean_ci_t(&[4.25; 9], 0.99).unwrap();
        assert_eq!(e.se, 0.0);
        assert_eq!((e.lo, e.hi), (4.25, 4.25));
    }

    #[test]
    fn mean_is_stable_with_offset() {
        let v: Vec<f64> = (0..1000).map(|i| 1e9 + (i % 3) as f64).collect();
        let e = mean_ci_t(&v, 0.95).unwrap();
        // mean = 1e9 + (333*0 + 334*1... ) computed exactly below
        let exact_offset = (0..1000).map(|i| (i % 3) as f64).sum::<f64>() / 1000.0;
        assert!((e.estimate - (1e9 + exact_offset)).abs() < 1e-6);
    }
}
