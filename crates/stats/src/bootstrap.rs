//! Percentile bootstrap with an explicit, reproducible RNG.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{check_finite, half_alpha, mean::mean, Interval, StatsError};

/// The `q`-quantile (`0 <= q <= 1`) of **sorted** data by linear
/// interpolation between order statistics: with `h = (n-1)·q`,
/// `x[⌊h⌋] + (h - ⌊h⌋)·(x[⌊h⌋+1] - x[⌊h⌋])`. This is numpy's default
/// (`np.quantile(..., method="linear")`, Hyndman–Fan type 7).
///
/// Errors: empty input, `q` outside `[0, 1]`.
pub fn percentile_linear(sorted: &[f64], q: f64) -> Result<f64, StatsError> {
    if sorted.is_empty() {
        return Err(StatsError::EmptyInput);
    }
    if !(0.0..=1.0).contains(&q) {
        return Err(StatsError::InvalidArgument(format!(
            "quantile {q} outside [0, 1]"
        )));
    }
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let frac = h - lo as f64;
    if lo + 1 >= sorted.len() || frac == 0.0 {
        return Ok(sorted[lo]);
    }
    Ok(sorted[lo] + frac * (sorted[lo + 1] - sorted[lo]))
}

/// Percentile bootstrap interval for an arbitrary statistic.
///
/// * `estimate` is `statistic` applied to the original items (in order).
/// * Each of `resamples` replicates draws `items.len()` indices uniformly with
///   replacement (`rng.gen_range(0..n)`) from a
///   [`rand_chacha::ChaCha8Rng`] seeded with `ChaCha8Rng::seed_from_u64(seed)`;
///   the same seed and inputs give bit-identical intervals on every platform.
/// * `lo`/`hi` are the `(1-c)/2` and `1-(1-c)/2` quantiles of the replicate
///   statistics, using [`percentile_linear`] (numpy's default linear
///   interpolation), the same as `scipy.stats.bootstrap(method="percentile")`.
///
/// Errors: empty input, `resamples < 2` ([`StatsError::InsufficientData`]),
/// bad confidence, or a non-finite statistic (on the original data or any
/// replicate) → [`StatsError::NonFinite`].
pub fn bootstrap_percentile<T>(
    items: &[T],
    statistic: impl Fn(&[&T]) -> f64,
    resamples: usize,
    confidence: f64,
    seed: u64,
) -> Result<Interval, StatsError> {
    let tail = half_alpha(confidence)?;
    if items.is_empty() {
        return Err(StatsError::EmptyInput);
    }
    if resamples < 2 {
        return Err(StatsError::InsufficientData {
            needed: 2,
            got: resamples,
        });
    }
    let all: Vec<&T> = items.iter().collect();
    let estimate = statistic(&all);
    if !estimate.is_finite() {
        return Err(StatsError::NonFinite("statistic on the original sample"));
    }
    let n = items.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut buf: Vec<&T> = Vec::with_capacity(n);
    let mut stats = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        buf.clear();
        buf.extend((0..n).map(|_| &items[rng.gen_range(0..n)]));
        let s = statistic(&buf);
        if !s.is_finite() {
            return Err(StatsError::NonFinite("bootstrap replicate statistic"));
        }
        stats.push(s);
    }
    stats.sort_by(f64::total_cmp);
    Ok(Interval {
        estimate,
        lo: percentile_linear(&stats, tail)?,
        hi: percentile_linear(&stats, 1.0 - tail)?,
    })
}

/// Percentile bootstrap interval for the mean of `values`; see
/// [`bootstrap_percentile`]. Errors additionally on non-finite values.
pub fn bootstrap_mean(
    values: &[f64],
    resamples: usize,
    confidence: f64,
    seed: u64,
) -> Result<Interval, StatsError> {
    check_finite(values, "values")?;
    bootstrap_percentile(
        values,
        |s: &[&f64]| {
            let v: Vec<f64> = s.iter().map(|x| **x).collect();
            mean(&v)
        },
        resamples,
        confidence,
        seed,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_matches_numpy_linear() {
        // np.quantile([1, 2, 4, 8], [0, .1, .5, .9, 1]) = [1, 1.3, 3, 6.8, 8]
        let x = [1.0, 2.0, 4.0, 8.0];
        let want = [(0.0, 1.0), (0.1, 1.3), (0.5, 3.0), (0.9, 6.8), (1.0, 8.0)];
        for (q, w) in want {
            assert!(
                (percentile_linear(&x, q).unwrap() - w).abs() < 1e-12,
                "q={q}"
            );
        }
        assert_eq!(percentile_linear(&[], 0.5), Err(StatsError::EmptyInput));
        assert!(percentile_linear(&x, 1.5).is_err());
    }

    #[test]
    fn errors() {
        assert_eq!(
            bootstrap_mean(&[], 100, 0.95, 1),
            Err(StatsError::EmptyInput)
        );
        assert_eq!(
            bootstrap_mean(&[1.0, 2.0], 1, 0.95, 1),
            Err(StatsError::InsufficientData { needed: 2, got: 1 })
        );
        assert_eq!(
            bootstrap_mean(&[1.0, f64::NAN], 100, 0.95, 1),
            Err(StatsError::NonFinite("values"))
        );
        assert_eq!(
            bootstrap_mean(&[1.0, 2.0], 100, 1.0, 1),
            Err(StatsError::InvalidConfidence(1.0))
        );
        // A statistic that blows up on some resamples (all-equal draws).
        let r = bootstrap_percentile(
            &[0.0, 1.0],
            |s: &[&f64]| {
                let d = s.iter().map(|x| **x).fold(f64::NEG_INFINITY, f64::max)
                    - s.iter().map(|x| **x).fold(f64::INFINITY, f64::min);
                1.0 / d
            },
            200,
            0.95,
            3,
        );
        assert!(matches!(r, Err(StatsError::NonFinite(_))));
    }

    #[test]
    fn different_seeds_differ() {
        let v: Vec<f64> = (0..50).map(|i| ((i * 37) % 11) as f64).collect();
        let a = bootstrap_mean(&v, 500, 0.95, 1).unwrap();
        let b = bootstrap_mean(&v, 500, 0.95, 2).unwrap();
        assert_eq!(a.estimate, b.estimate);
        assert!(a.lo != b.lo || a.hi != b.hi);
    }
}
