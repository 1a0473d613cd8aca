//! One interval type and one way to put it in a result table.
//!
//! Every estimate a study reports is a [`shammie_stats::Interval`] (point estimate and
//! the bounds of its confidence interval); [`cell`] makes the table cell, scaled (e.g. by
//! 100 for percent) when asked. An estimate without an interval (too few values) is a
//! plain number, never a fake interval; no estimate is an empty cell. Every estimate
//! cell carries `n`, the number of units (questions, prompts, chains) behind it, so a
//! reader sees it beside the interval and an interval from fewer than
//! [`shammie_core::MIN_RELIABLE_N`] units is flagged (`n=2†`).

use shammie_core::Cell;
pub use shammie_stats::Interval;

/// The cell of an estimate from `n` units: `Estimate` with its interval and `n`,
/// `Float` when the interval could not be computed (non-finite bounds), `Empty` when
/// there is no estimate.
pub fn cell(e: Option<Interval>, n: usize) -> Cell {
    scaled(e, 1.0, n)
}

/// [`cell`] with every number multiplied by `scale`.
pub fn scaled(e: Option<Interval>, scale: f64, n: usize) -> Cell {
    match e {
        Some(e) if e.lo.is_finite() && e.hi.is_finite() => {
            Cell::estimate(e.estimate * scale, e.lo * scale, e.hi * scale, n as u64)
        }
        Some(e) => Cell::Float(e.estimate * scale),
        None => Cell::Empty,
    }
}

/// The cell of a share: `k` of `n` units, with its Wilson 95% interval (empty when `n` is
/// 0).
pub fn share(k: usize, n: usize) -> Cell {
    cell(shammie_stats::wilson(k as u64, n as u64, 0.95).ok(), n)
}

/// An estimate with no interval (bounds NaN), shown as a plain number by [`cell`].
pub fn point(estimate: f64) -> Interval {
    Interval {
        estimate,
        lo: f64::NAN,
        hi: f64::NAN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_points_and_nothing() {
        let i = Interval {
            estimate: 0.5,
            lo: 0.25,
            hi: 0.75,
        };
        assert_eq!(
            scaled(Some(i), 100.0, 12),
            Cell::Estimate {
                estimate: 50.0,
                lo: 25.0,
                hi: 75.0,
                n: Some(12),
            }
        );
        assert_eq!(cell(Some(point(0.3)), 1), Cell::Float(0.3));
        assert_eq!(cell(None, 0), Cell::Empty);
    }
}
