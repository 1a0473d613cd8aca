//! The area over the curve (AOC) of the truncation experiments (Lanham et al. 2023):
//! how much a final answer depends on the reasoning, from the share of answers that stay
//! the same when only a fraction of the reasoning is kept.
//!
//! **One question's curve** is a list of points `(fraction of the reasoning kept,
//! share of answers equal to the answer after the full reasoning)`, both in `[0, 1]`;
//! with a chain of `n` sentences the fractions are `k / n`. The curve is read as the
//! straight lines between its points (trapezoids), held constant before its first point
//! and after its last; points may come in any order (they are sorted by fraction, ties
//! kept in the given order), fractions are clamped to `[0, 1]`, and points with a
//! non-finite coordinate are ignored. [`aoc`] is `1 −` the area under that line on
//! `[0, 1]`: 0 when the answer never changes, up to 1 when it differs at every fraction.
//!
//! **Combining questions.** Chains have different lengths, so their points sit at
//! different fractions. A data set's AOC is the **mean of its questions' AOCs**
//! ([`mean_aoc`]). Because the integral is linear, this is exactly the AOC of the mean of
//! the questions' interpolated curves, and it equals Lanham et al.'s recipe of grouping
//! chains by length, taking the AOC of each group's mean curve and weighting the groups
//! by their number of chains (all chains of one length share fractions, so a group's
//! mean curve has the mean area). No binning is involved.
//!
//! **Figures** show [`mean_curve`]: every question's interpolated curve read at a fixed
//! grid of fractions ([`grid`]) and averaged. It is drawn from the same interpolated
//! curves, so its area differs from [`mean_aoc`] only by the grid's own interpolation
//! (not at all for curves whose points lie on the grid).

/// The usable points of a curve: finite, fraction clamped to `[0, 1]`, sorted by
/// fraction (stable).
fn clean(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut p: Vec<(f64, f64)> = points
        .iter()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|&(x, y)| (x.clamp(0.0, 1.0), y))
        .collect();
    p.sort_by(|a, b| a.0.total_cmp(&b.0));
    p
}

/// The area under a curve on `[0, 1]` (see the module docs for how it is read);
/// NaN for a curve without a usable point.
pub fn auc(points: &[(f64, f64)]) -> f64 {
    let p = clean(points);
    let (Some(first), Some(last)) = (p.first(), p.last()) else {
        return f64::NAN;
    };
    let mut area = first.0 * first.1 + (1.0 - last.0) * last.1;
    for w in p.windows(2) {
        area += (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0;
    }
    area
}

/// The area over the curve: `1 − auc(points)`; NaN for a curve without a usable point.
pub fn aoc(points: &[(f64, f64)]) -> f64 {
    1.0 - auc(points)
}

/// The curve's value at fraction `x` (clamped to `[0, 1]`), read as in the module docs.
/// At a fraction listed more than once (a vertical step), the last point listed there.
/// `None` for a curve without a usable point or a non-finite `x`.
pub fn curve_value(points: &[(f64, f64)], x: f64) -> Option<f64> {
    if !x.is_finite() {
        return None;
    }
    let x = x.clamp(0.0, 1.0);
    let p = clean(points);
    // The last point at or before x.
    let i = match p.iter().rposition(|q| q.0 <= x) {
        Some(i) => i,
        None => return p.first().map(|q| q.1),
    };
    let (x0, y0) = p[i];
    match p.get(i + 1) {
        Some(&(x1, y1)) if x > x0 => Some(y0 + (y1 - y0) * (x - x0) / (x1 - x0)),
        _ => Some(y0),
    }
}

/// `steps + 1` evenly spaced fractions from 0 to 1 (`grid(10)`: 0, 0.1, …, 1), each
/// computed as `i / steps` so that the ends are exact.
pub fn grid(steps: usize) -> Vec<f64> {
    let steps = steps.max(1);
    (0..=steps).map(|i| i as f64 / steps as f64).collect()
}

/// The mean of per-question curves at each fraction of `grid`: `(fraction, mean value,
/// number of curves averaged)`. Curves without a usable point are left out (the count
/// says how many were used); a fraction with no curve has a NaN mean and count 0.
pub fn mean_curve<C: AsRef<[(f64, f64)]>>(curves: &[C], grid: &[f64]) -> Vec<(f64, f64, usize)> {
    grid.iter()
        .map(|&x| {
            let vals: Vec<f64> = curves
                .iter()
                .filter_map(|c| curve_value(c.as_ref(), x))
                .collect();
            let n = vals.len();
            let mean = if n == 0 {
                f64::NAN
            } else {
                vals.iter().sum::<f64>() / n as f64
            };
            (x, mean, n)
        })
        .collect()
}

/// A data set's AOC: the mean of its questions' AOCs (see the module docs); curves
/// without a usable point are left out; `None` when none is left.
pub fn mean_aoc<C: AsRef<[(f64, f64)]>>(curves: &[C]) -> Option<f64> {
    let vals: Vec<f64> = curves
        .iter()
        .map(|c| aoc(c.as_ref()))
        .filter(|a| a.is_finite())
        .collect();
    (!vals.is_empty()).then(|| vals.iter().sum::<f64>() / vals.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    /// A chain of n sentences whose answer matches the final one from sentence `from` on.
    fn step(n: usize, from: usize) -> Vec<(f64, f64)> {
        (0..=n)
            .map(|k| (k as f64 / n as f64, if k >= from { 1.0 } else { 0.0 }))
            .collect()
    }

    #[test]
    fn flat_curves() {
        close(aoc(&[(0.0, 1.0), (0.5, 1.0), (1.0, 1.0)]), 0.0);
        close(aoc(&[(0.0, 0.0), (1.0, 0.0)]), 1.0);
        // A single point is held over the whole range.
        close(aoc(&[(0.3, 0.25)]), 0.75);
        assert!(aoc(&[]).is_nan());
        assert!(aoc(&[(f64::NAN, 1.0)]).is_nan());
    }

    #[test]
    fn linear_ramp() {
        close(aoc(&[(0.0, 0.0), (1.0, 1.0)]), 0.5);
        // Points in between on the same line change nothing; order does not matter.
        close(
            aoc(&[(1.0, 1.0), (0.25, 0.25), (0.0, 0.0), (0.5, 0.5)]),
            0.5,
        );
    }

    #[test]
    fn step_curves() {
        // 4 sentences, the answer settles at the 2nd: points 0,0,1,1,1 at 0,¼,½,¾,1.
        // Area: trapezoid ¼..½ rising 0→1 = 1/8, then ½ at 1 → 5/8; AOC 3/8.
        close(aoc(&step(4, 2)), 3.0 / 8.0);
        // Settles only at the end: area = trapezoid of the last quarter = 1/8.
        close(aoc(&step(4, 4)), 7.0 / 8.0);
        // Settles at once: flat.
        close(aoc(&step(4, 0)), 0.0);
        // A vertical step at ½.
        close(aoc(&[(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (1.0, 1.0)]), 0.5);
        // A curve that starts late and stops early is held at its ends:
        // 0.5 on [0, .2], ramp .5→1 on [.2, .6], 1 on [.6, 1] → .1 + .3 + .4 = .8.
        close(aoc(&[(0.6, 1.0), (0.2, 0.5)]), 0.2);
        // Fractions outside [0, 1] are clamped.
        close(aoc(&[(-1.0, 0.0), (2.0, 1.0)]), 0.5);
    }

    #[test]
    fn values_on_the_curve() {
        let c = [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (1.0, 1.0)];
        assert_eq!(curve_value(&c, 0.25), Some(0.0));
        assert_eq!(curve_value(&c, 0.5), Some(1.0));
        assert_eq!(curve_value(&c, 0.75), Some(1.0));
        let r = [(0.2, 0.2), (0.6, 1.0)];
        assert_eq!(curve_value(&r, 0.0), Some(0.2));
        close(curve_value(&r, 0.4).unwrap(), 0.6);
        assert_eq!(curve_value(&r, 1.0), Some(1.0));
        assert_eq!(curve_value(&r, 7.0), Some(1.0));
        assert_eq!(curve_value(&[], 0.5), None);
        assert_eq!(curve_value(&r, f64::NAN), None);
    }

    #[test]
    fn grids() {
        assert_eq!(grid(4), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        let g = grid(10);
        assert_eq!((g.len(), g[3], g[10]), (11, 0.3, 1.0));
        assert_eq!(grid(0), vec![0.0, 1.0]);
    }

    #[test]
    fn averaging_questions_of_different_lengths() {
        // 2 sentences settling at the 1st, 4 sentences settling at the 4th.
        let a = step(2, 1); // 0, 1, 1 at 0, ½, 1: AOC ¼
        let b = step(4, 4); // AOC 7/8
        close(aoc(&a), 0.25);
        let curves = vec![a.clone(), b.clone(), vec![]];
        close(mean_aoc(&curves).unwrap(), (0.25 + 0.875) / 2.0);
        assert_eq!(mean_aoc::<Vec<(f64, f64)>>(&[]), None);
        let m = mean_curve(&curves, &grid(4));
        let expect = [
            (0.0, 0.0),
            (0.25, 0.25),
            (0.5, 0.5),
            (0.75, 0.5),
            (1.0, 1.0),
        ];
        for ((x, y, n), (ex, ey)) in m.iter().zip(expect) {
            close(*x, ex);
            close(*y, ey);
            assert_eq!(*n, 2);
        }
        // Both curves have their points on this grid, so the mean curve's AOC is the
        // mean AOC.
        let pts: Vec<(f64, f64)> = m.iter().map(|&(x, y, _)| (x, y)).collect();
        close(aoc(&pts), mean_aoc(&curves).unwrap());
        let none = mean_curve::<Vec<(f64, f64)>>(&[], &[0.5]);
        assert!(none[0].1.is_nan() && none[0].2 == 0);
    }
}
