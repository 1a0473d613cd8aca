//! Linear scales and tick selection in 1-2-5 steps.

/// Values are clamped to this magnitude before any arithmetic, so spans stay finite.
const LIMIT: f64 = 1e300;

/// Tick positions of an axis and the range they span.
#[derive(Clone, Debug, PartialEq)]
pub struct Ticks {
    /// Lower end of the axis.
    pub lo: f64,
    /// Upper end of the axis.
    pub hi: f64,
    /// Distance between ticks (1, 2 or 5 times a power of ten).
    pub step: f64,
    /// Tick values from low to high, all within `lo..=hi`.
    pub values: Vec<f64>,
    /// Decimals every tick label is printed with.
    pub decimals: usize,
}

impl Ticks {
    /// Tick labels, all with the same number of decimals, negatives with a true minus
    /// sign (U+2212). Axes reaching 10^6 or with steps below 10^-4 use scientific
    /// notation (`2.5e-7`).
    pub fn labels(&self) -> Vec<String> {
        let big = self.lo.abs().max(self.hi.abs()) >= 1e6;
        let small = self.step < 1e-4;
        if big || small {
            let es = self.step.log10().floor() as i32;
            return self
                .values
                .iter()
                .map(|&v| {
                    if v.abs() < self.step * 1e-6 {
                        return "0".to_string();
                    }
                    let ev = v.abs().log10().floor() as i32;
                    let s = format!("{:.*e}", (ev - es).max(0) as usize, v);
                    match s.strip_prefix('-') {
                        Some(rest) => format!("\u{2212}{rest}"),
                        None => s,
                    }
                })
                .collect();
        }
        self.values
            .iter()
            .map(|v| format_tick(*v, self.decimals))
            .collect()
    }
}

/// Formats `v` with `decimals` decimals and a true minus sign; never prints `-0`.
pub fn format_tick(v: f64, decimals: usize) -> String {
    let s = format!("{:.*}", decimals, v);
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        Some(rest) => format!("\u{2212}{rest}"),
        None => s,
    }
}

/// The smallest step of the form {1, 2, 5} × 10^k that is at least `raw`.
pub fn nice_step(raw: f64) -> f64 {
    let raw = if raw.is_finite() && raw > 0.0 {
        raw.min(LIMIT)
    } else {
        1.0
    };
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    // Tolerate rounding in `norm` (e.g. 2.0000000001 must stay 2).
    let m = if norm <= 1.0 + 1e-9 {
        1.0
    } else if norm <= 2.0 + 1e-9 {
        2.0
    } else if norm <= 5.0 + 1e-9 {
        5.0
    } else {
        10.0
    };
    m * mag
}

/// The 1-2-5 step nearest to `raw` (on a log scale, roughly).
fn round_step(raw: f64) -> f64 {
    let raw = if raw.is_finite() && raw > 0.0 {
        raw.min(LIMIT)
    } else {
        1.0
    };
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let m = if norm < 1.5 {
        1.0
    } else if norm < 3.0 {
        2.0
    } else if norm < 7.0 {
        5.0
    } else {
        10.0
    };
    m * mag
}

/// The next larger 1-2-5 step after `step`.
fn bigger_step(step: f64) -> f64 {
    nice_step(step * 1.5)
}

fn decimals_for(step: f64) -> usize {
    let k = step.log10().floor() as i32;
    // Steps of 1/2/5 × 10^k need -k decimals when k < 0.
    if k < 0 {
        ((-k) as usize).min(15)
    } else {
        0
    }
}

/// Makes a usable `(min, max)` out of data extents: finite, clamped, ordered, and of
/// non-zero width.
pub(crate) fn sane_range(min: f64, max: f64) -> (f64, f64) {
    let (mut a, mut b) = if min.is_finite() && max.is_finite() {
        (min, max)
    } else {
        (0.0, 1.0)
    };
    a = a.clamp(-LIMIT, LIMIT);
    b = b.clamp(-LIMIT, LIMIT);
    if a > b {
        std::mem::swap(&mut a, &mut b);
    }
    if b - a <= f64::EPSILON * a.abs().max(b.abs()).max(1e-300) {
        let d = if a == 0.0 { 1.0 } else { a.abs() * 0.1 };
        a -= d;
        b += d;
    }
    (a, b)
}

fn ticks_with_step(lo: f64, hi: f64, step: f64, extend: bool) -> Ticks {
    let (k0, k1) = if extend {
        ((lo / step + 1e-9).floor(), (hi / step - 1e-9).ceil())
    } else {
        ((lo / step - 1e-9).ceil(), (hi / step + 1e-9).floor())
    };
    let values: Vec<f64> = if k1 - k0 > 1000.0 {
        vec![]
    } else {
        (k0 as i64..=k1 as i64).map(|k| k as f64 * step).collect()
    };
    let (lo, hi) = if extend {
        (k0 * step, k1 * step)
    } else {
        (lo, hi)
    };
    let values = values.into_iter().map(|v| v.clamp(lo, hi)).collect();
    Ticks {
        lo,
        hi,
        step,
        values,
        decimals: decimals_for(step),
    }
}

/// Ticks for data in `min..=max` with about `target` intervals (the 1-2-5 step nearest
/// to `(max - min) / target`); the axis is extended
/// outwards to the nearest ticks so the data never touch anything but a tick.
pub fn nice_ticks(min: f64, max: f64, target: usize) -> Ticks {
    let (lo, hi) = sane_range(min, max);
    let step = round_step((hi - lo) / target.max(1) as f64);
    ticks_with_step(lo, hi, step, true)
}

/// Ticks inside a fixed axis range `lo..=hi` with about `target` intervals.
pub fn fixed_ticks(lo: f64, hi: f64, target: usize) -> Ticks {
    let (lo, hi) = sane_range(lo, hi);
    let step = round_step((hi - lo) / target.max(1) as f64);
    ticks_with_step(lo, hi, step, false)
}

/// Picks ticks for an axis `len` pixels long: about one tick per `spacing` pixels, then
/// coarser steps until `fits` accepts the labels (or only two ticks are left).
pub(crate) fn axis_ticks(
    min: f64,
    max: f64,
    fixed: bool,
    len: f64,
    spacing: f64,
    fits: impl Fn(&Ticks) -> bool,
) -> Ticks {
    let target = ((len / spacing).round() as usize).clamp(2, 10);
    let (lo, hi) = sane_range(min, max);
    let mut step = round_step((hi - lo) / target as f64);
    loop {
        let t = ticks_with_step(lo, hi, step, !fixed);
        if fits(&t) || t.values.len() <= 2 {
            return t;
        }
        step = bigger_step(step);
    }
}

/// Maps data values linearly onto pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Scale {
    pub d0: f64,
    pub d1: f64,
    pub r0: f64,
    pub r1: f64,
}

impl Scale {
    pub(crate) fn new(d0: f64, d1: f64, r0: f64, r1: f64) -> Self {
        Scale { d0, d1, r0, r1 }
    }
    pub(crate) fn map(&self, v: f64) -> f64 {
        let span = self.d1 - self.d0;
        if span == 0.0 || !span.is_finite() {
            return (self.r0 + self.r1) / 2.0;
        }
        self.r0 + (v - self.d0) / span * (self.r1 - self.r0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_one_two_five() {
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(1.0), 1.0);
        assert_eq!(nice_step(1.3), 2.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(7.0), 10.0);
        assert!((nice_step(0.023) - 0.05).abs() < 1e-12);
        assert_eq!(nice_step(180.0), 200.0);
        assert_eq!(nice_step(f64::NAN), 1.0);
        assert_eq!(nice_step(0.0), 1.0);
    }

    #[test]
    fn nice_ticks_cover_the_data_and_end_on_ticks() {
        let t = nice_ticks(-0.37, 1.12, 3);
        assert_eq!(t.step, 0.5);
        assert_eq!(t.lo, -0.5);
        assert_eq!(t.hi, 1.5);
        assert_eq!(t.labels(), vec!["\u{2212}0.5", "0.0", "0.5", "1.0", "1.5"]);
        let t = nice_ticks(-0.37, 1.12, 5);
        assert!((t.step - 0.2).abs() < 1e-12);
        assert!((t.lo + 0.4).abs() < 1e-12 && (t.hi - 1.2).abs() < 1e-12);
        assert_eq!(t.labels()[0], "\u{2212}0.4");

        let t = nice_ticks(0.0, 87.0, 5);
        assert_eq!(t.step, 20.0);
        assert_eq!((t.lo, t.hi), (0.0, 100.0));
        assert_eq!(t.labels(), vec!["0", "20", "40", "60", "80", "100"]);
    }

    #[test]
    fn fixed_ticks_stay_inside_the_range() {
        let t = fixed_ticks(0.0, 1.0, 5);
        assert_eq!(t.labels(), vec!["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        assert_eq!((t.lo, t.hi), (0.0, 1.0));
        let t = fixed_ticks(0.0, 100.0, 4);
        assert_eq!(t.labels(), vec!["0", "20", "40", "60", "80", "100"]);
        let t = fixed_ticks(0.0, 100.0, 2);
        assert_eq!(t.labels(), vec!["0", "50", "100"]);
    }

    #[test]
    fn data_on_a_tick_do_not_extend_the_axis() {
        let t = nice_ticks(0.0, 1.0, 5);
        assert_eq!((t.lo, t.hi), (0.0, 1.0));
        let t = nice_ticks(-20.0, 100.0, 6);
        assert_eq!((t.lo, t.hi), (-20.0, 100.0));
    }

    #[test]
    fn degenerate_ranges_are_widened() {
        let t = nice_ticks(0.0, 0.0, 5);
        assert!(t.lo < 0.0 && t.hi > 0.0);
        let t = nice_ticks(5.0, 5.0, 5);
        assert!(t.lo < 5.0 && t.hi > 5.0);
        let t = nice_ticks(f64::NAN, f64::INFINITY, 5);
        assert!(t.lo.is_finite() && t.hi.is_finite() && !t.values.is_empty());
        let t = nice_ticks(3.0, -2.0, 5);
        assert!(t.lo <= -2.0 && t.hi >= 3.0);
        let t = nice_ticks(-1e308, 1e308, 5);
        assert!(t.lo.is_finite() && t.hi.is_finite());
    }

    #[test]
    fn small_steps_get_enough_decimals_and_no_negative_zero() {
        let t = nice_ticks(-0.004, 0.013, 5);
        assert_eq!(t.decimals, 3);
        assert!(t
            .labels()
            .iter()
            .all(|l| l != "-0.000" && !l.starts_with('-')));
        assert_eq!(format_tick(-0.0, 2), "0.00");
        assert_eq!(format_tick(-1e-12, 2), "0.00");
        assert_eq!(format_tick(-2.5, 1), "\u{2212}2.5");
    }

    #[test]
    fn extreme_magnitudes_use_scientific_notation() {
        let t = nice_ticks(0.0, 3e9, 3);
        assert_eq!(t.labels(), vec!["0", "1e9", "2e9", "3e9"]);
        let t = nice_ticks(-2.5e-7, 2.5e-7, 2);
        assert_eq!(
            t.labels(),
            vec!["\u{2212}4e-7", "\u{2212}2e-7", "0", "2e-7", "4e-7"]
        );
        let t = nice_ticks(1.5e6, 1.52e6, 2);
        assert!(
            t.labels().iter().all(|l| l.contains('e') && l.len() <= 8),
            "{:?}",
            t.labels()
        );
    }

    #[test]
    fn axis_ticks_coarsen_until_labels_fit() {
        let t = axis_ticks(0.0, 100.0, true, 400.0, 50.0, |_| true);
        assert_eq!(t.step, 10.0);
        let t = axis_ticks(0.0, 100.0, true, 400.0, 50.0, |t| t.values.len() <= 3);
        assert_eq!(t.step, 50.0);
    }

    #[test]
    fn scale_maps_linearly() {
        let s = Scale::new(0.0, 10.0, 100.0, 200.0);
        assert_eq!(s.map(5.0), 150.0);
        let s = Scale::new(0.0, 10.0, 200.0, 100.0);
        assert_eq!(s.map(10.0), 100.0);
    }
}
