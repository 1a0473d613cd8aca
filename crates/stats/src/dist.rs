//! Distribution functions: standard normal and Student t.
//!
//! * `erfc` — power series for small arguments, Laplace continued fraction
//!   (modified Lentz) otherwise, with the `exp(-x²)` factor split Cody-style so
//!   the tail keeps full relative precision.
//! * normal quantile — Wichura's algorithm AS 241 (PPND16), ~1e-16 relative.
//! * Student t — CDF through the regularized incomplete beta function
//!   (continued fraction), quantile by safeguarded Newton iteration on the CDF.

use std::f64::consts::{FRAC_1_SQRT_2, PI};

const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8; // ln(sqrt(2π))
const FRAC_1_SQRT_PI: f64 = 0.564_189_583_547_756_3; // 1/sqrt(π)

/// `exp(-x*x)` without the cancellation that `x*x` rounding causes for large
/// `x`: split `x = hi + lo` with `hi` a multiple of 1/16 so `hi*hi` is exact.
fn exp_neg_sq(x: f64) -> f64 {
    let hi = (x * 16.0).trunc() / 16.0;
    let lo = x - hi;
    (-hi * hi).exp() * (-lo * (x + hi)).exp()
}

/// `erf(x)` for `|x| < ~3` by the all-positive series
/// `erf x = 2/√π · e^{-x²} · Σ 2ⁿ x^{2n+1} / (1·3·…·(2n+1))`.
fn erf_series(x: f64) -> f64 {
    let x2 = 2.0 * x * x;
    let mut term = x;
    let mut sum = x;
    let mut k = 1.0;
    while term.abs() > 1e-17 * sum.abs() {
        term *= x2 / (2.0 * k + 1.0);
        sum += term;
        k += 1.0;
        if k > 500.0 {
            break;
        }
    }
    2.0 * FRAC_1_SQRT_PI * exp_neg_sq(x) * sum
}

/// `erfc(x) · e^{x²}` for `x >= 0.5` by the Laplace continued fraction
/// `erfc x = e^{-x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …))))`.
fn erfcx_cf(x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut f = x;
    let mut c = x;
    let mut d = 0.0;
    for n in 1..20_000 {
        let a = n as f64 * 0.5;
        d = x + a * d;
        if d == 0.0 {
            d = TINY;
        }
        c = x + a / c;
        if c == 0.0 {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() <= 2.0 * f64::EPSILON {
            break;
        }
    }
    FRAC_1_SQRT_PI / f
}

/// Complementary error function with full relative accuracy in both tails.
pub(crate) fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 0.5 {
        1.0 - erf_series(x)
    } else if x > 27.3 {
        0.0
    } else {
        exp_neg_sq(x) * erfcx_cf(x)
    }
}

/// Standard normal density.
pub fn normal_pdf(x: f64) -> f64 {
    (-0.5 * x * x - LN_SQRT_2PI).exp()
}

/// Standard normal CDF, `Φ(x) = erfc(-x/√2)/2`, accurate to a few ulps in
/// relative terms throughout, including the far lower tail (e.g. `Φ(-30)`).
pub fn normal_cdf(x: f64) -> f64 {
    let u = -x * FRAC_1_SQRT_2;
    if (0.5..=27.3).contains(&u) {
        // Lower tail: take e^{-x²/2} from `x` itself (not from the rounded
        // `u = -x/√2`), keeping full relative precision far out.
        let hi = (x * 16.0).trunc() / 16.0;
        let lo = x - hi;
        0.5 * (-0.5 * hi * hi).exp() * (-0.5 * lo * (x + hi)).exp() * erfcx_cf(u)
    } else {
        0.5 * erfc(u)
    }
}

// Coefficients of Wichura (1988), Algorithm AS 241, PPND16, as published
// (highest degree last). Kept verbatim, hence the clippy allowance.
#[allow(clippy::excessive_precision)]
const AS241_A: [f64; 8] = [
    3.387_132_872_796_366_608_0,
    1.331_416_678_917_843_774_5e2,
    1.971_590_950_306_551_442_7e3,
    1.373_169_376_550_946_112_5e4,
    4.592_195_393_154_987_145_7e4,
    6.726_577_092_700_870_085_3e4,
    3.343_057_558_358_812_810_5e4,
    2.509_080_928_730_122_672_7e3,
];
#[allow(clippy::excessive_precision)]
const AS241_B: [f64; 8] = [
    1.0,
    4.231_333_070_160_091_125_2e1,
    6.871_870_074_920_579_083_0e2,
    5.394_196_021_424_751_107_7e3,
    2.121_379_430_158_659_586_7e4,
    3.930_789_580_009_271_061_0e4,
    2.872_908_573_572_194_267_4e4,
    5.226_495_278_852_854_561_0e3,
];
#[allow(clippy::excessive_precision)]
const AS241_C: [f64; 8] = [
    1.423_437_110_749_683_577_34,
    4.630_337_846_156_545_295_90,
    5.769_497_221_460_691_405_50,
    3.647_848_324_763_204_605_04,
    1.270_458_252_452_368_382_58,
    2.417_807_251_774_506_117_70e-1,
    2.272_384_498_926_918_458_33e-2,
    7.745_450_142_783_414_076_40e-4,
];
#[allow(clippy::excessive_precision)]
const AS241_D: [f64; 8] = [
    1.0,
    2.053_191_626_637_758_821_87,
    1.676_384_830_183_803_849_40,
    6.897_673_349_851_000_045_50e-1,
    1.481_039_764_274_800_745_90e-1,
    1.519_866_656_361_645_719_66e-2,
    5.475_938_084_995_344_946_00e-4,
    1.050_750_071_644_416_843_24e-9,
];
#[allow(clippy::excessive_precision)]
const AS241_E: [f64; 8] = [
    6.657_904_643_501_103_777_20,
    5.463_784_911_164_114_369_90,
    1.784_826_539_917_291_335_80,
    2.965_605_718_285_048_912_30e-1,
    2.653_218_952_657_612_309_30e-2,
    1.242_660_947_388_078_438_60e-3,
    2.711_555_568_743_487_578_15e-5,
    2.010_334_399_292_288_132_65e-7,
];
#[allow(clippy::excessive_precision)]
const AS241_F: [f64; 8] = [
    1.0,
    5.998_322_065_558_879_376_90e-1,
    1.369_298_809_227_358_053_10e-1,
    1.487_536_129_085_061_485_25e-2,
    7.868_691_311_456_132_591_00e-4,
    1.846_318_317_510_054_681_80e-5,
    1.421_511_758_316_445_888_70e-7,
    2.044_263_103_389_939_785_64e-15,
];

/// Evaluates `c[0] + c[1] x + … + c[n] xⁿ`.
fn horner(c: &[f64], x: f64) -> f64 {
    c.iter().rev().fold(0.0, |acc, &k| acc * x + k)
}

/// Inverse of the standard normal CDF (Wichura 1988, algorithm AS 241,
/// PPND16). Relative accuracy about 1e-16 for `p` in `(0, 1)`; returns
/// `-inf`/`+inf` at 0/1 and NaN outside `[0, 1]`.
///
/// Note that for `p` close to 1 the argument itself carries the rounding of
/// `1 - tail`; pass the small tail and negate (`-normal_quantile(tail)`) when
/// precision in the upper tail matters, as [`z_for`] does.
pub fn normal_quantile(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        let r = 0.180625 - q * q;
        return q * horner(&AS241_A, r) / horner(&AS241_B, r);
    }
    let tail = if q < 0.0 { p } else { 1.0 - p };
    let r = (-tail.ln()).sqrt();
    let x = if r <= 5.0 {
        let r = r - 1.6;
        horner(&AS241_C, r) / horner(&AS241_D, r)
    } else {
        let r = r - 5.0;
        horner(&AS241_E, r) / horner(&AS241_F, r)
    };
    if q < 0.0 {
        -x
    } else {
        x
    }
}

/// Two-sided standard normal critical value for a confidence level:
/// `z_for(0.95) = 1.959963984540054…`, i.e. `Φ⁻¹(1 - (1-c)/2)`, computed
/// from the small tail for precision. Returns NaN unless `0 < c < 1`.
pub fn z_for(confidence: f64) -> f64 {
    match crate::half_alpha(confidence) {
        Ok(tail) => -normal_quantile(tail),
        Err(_) => f64::NAN,
    }
}

// ---------------------------------------------------------------------------
// Gamma / beta functions.

/// `lgamma(x) - [(x-½)ln x - x + ½ln 2π]` for `x >= 10` (Stirling series with
/// Bernoulli-number coefficients; truncation error < 1e-17 at x = 10).
fn lgamma_correction(x: f64) -> f64 {
    let x2 = 1.0 / (x * x);
    // B_{2k} / (2k (2k-1)) for k = 1..=8
    let coeffs = [
        1.0 / 12.0,
        -1.0 / 360.0,
        1.0 / 1260.0,
        -1.0 / 1680.0,
        1.0 / 1188.0,
        -691.0 / 360_360.0,
        1.0 / 156.0,
        -3617.0 / 122_400.0,
    ];
    let mut sum = 0.0;
    for c in coeffs.iter().rev() {
        sum = sum * x2 + c;
    }
    sum / x
}

/// `ln Γ(x)` for `x > 0`: Stirling with correction for `x >= 10`, upward
/// recurrence below.
pub(crate) fn lgamma(x: f64) -> f64 {
    debug_assert!(x > 0.0);
    if x >= 10.0 {
        return (x - 0.5) * x.ln() - x + LN_SQRT_2PI + lgamma_correction(x);
    }
    let mut prod = 1.0;
    let mut y = x;
    while y < 10.0 {
        prod *= y;
        y += 1.0;
    }
    lgamma(y) - prod.ln()
}

/// `ln B(a, b)` for `a, b > 0`, arranged to avoid cancellation when one or
/// both arguments are large (same decomposition as the classic TOMS/R lbeta).
pub(crate) fn lbeta(a: f64, b: f64) -> f64 {
    let p = a.min(b);
    let q = a.max(b);
    if p >= 10.0 {
        let corr = lgamma_correction(p) + lgamma_correction(q) - lgamma_correction(p + q);
        -0.5 * q.ln()
            + LN_SQRT_2PI
            + corr
            + (p - 0.5) * (p / (p + q)).ln()
            + q * (-p / (p + q)).ln_1p()
    } else if q >= 10.0 {
        let corr = lgamma_correction(q) - lgamma_correction(p + q);
        lgamma(p) + corr + p - p * (p + q).ln() + (q - 0.5) * (-p / (p + q)).ln_1p()
    } else {
        lgamma(p) + lgamma(q) - lgamma(p + q)
    }
}

/// Continued fraction for `I_x(a, b) = front / (a · F)` (the classical
/// incomplete-beta fraction of DiDonato–Morris / Numerical Recipes), used in
/// its **even-contracted** form `F = β₀ + α₁/(β₁ + α₂/(β₂ + …))` with
///
/// `α_m = (a+m-1)(a+b+m-1)·m(b-m)·x² / ((a+2m-2)(a+2m-1)²(a+2m))`,
/// `β_m = 1 - c_m·x`,
/// `c_m = (a+m)(a+b+m)/((a+2m)(a+2m+1)) - m(b-m)/((a+2m-1)(a+2m))`.
///
/// When `x` is near 1, `1 - c_m·x` cancels catastrophically for large `a`
/// (Student t with many degrees of freedom), so for `x > ½` we use the
/// algebraically equal form `β_m = e_m + c_m·y`, `y = 1 - x`, with the
/// closed form `e_m = 1 - c_m = [(2m+1-b)a + 2m² + b - 1]/((a+2m-1)(a+2m+1))`
/// (`e_0 = (1-b)/(a+1)`), which has no cancellation.
/// Converges quickly for `x < (a+1)/(a+b+2)`.
fn beta_cf(a: f64, b: f64, x: f64, y: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let use_y = x > 0.5;
    let beta_m = |m: f64| -> f64 {
        let s = a + 2.0 * m;
        let c_m = if m == 0.0 {
            (a + b) / (a + 1.0)
        } else {
            (a + m) * (a + b + m) / (s * (s + 1.0)) - m * (b - m) / ((s - 1.0) * s)
        };
        if use_y {
            let e_m = if m == 0.0 {
                (1.0 - b) / (a + 1.0)
            } else {
                ((2.0 * m + 1.0 - b) * a + 2.0 * m * m + b - 1.0) / ((s - 1.0) * (s + 1.0))
            };
            e_m + c_m * y
        } else {
            1.0 - c_m * x
        }
    };
    let beta0 = beta_m(0.0);
    let mut f = if beta0.abs() < TINY { TINY } else { beta0 };
    let mut c = f;
    let mut d = 0.0;
    for m in 1..100_000 {
        let m = m as f64;
        let s = a + 2.0 * m;
        let alpha = (a + m - 1.0) * (a + b + m - 1.0) * m * (b - m) * x * x
            / ((s - 2.0) * (s - 1.0) * (s - 1.0) * s);
        let beta = beta_m(m);
        d = beta + alpha * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = beta + alpha / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() <= 2.0 * f64::EPSILON {
            break;
        }
    }
    f
}

/// Regularized incomplete beta `I_x(a, b)` and its complement `1 - I_x(a, b)`,
/// each computed directly (no `1 - small` cancellation). The caller passes
/// both `x` and `y = 1 - x` so that neither loses precision.
pub(crate) fn inc_beta_pair(a: f64, b: f64, x: f64, y: f64) -> (f64, f64) {
    if x <= 0.0 {
        return (0.0, 1.0);
    }
    if y <= 0.0 {
        return (1.0, 0.0);
    }
    let ln_x = if x > 0.5 { (-y).ln_1p() } else { x.ln() };
    let ln_y = if y > 0.5 { (-x).ln_1p() } else { y.ln() };
    let front = (a * ln_x + b * ln_y - lbeta(a, b)).exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        let i = front / (a * beta_cf(a, b, x, y));
        (i, 1.0 - i)
    } else {
        let j = front / (b * beta_cf(b, a, y, x));
        (1.0 - j, j)
    }
}

/// Upper tail `P(T > t)` of Student's t with `df` degrees of freedom, for
/// `t >= 0`, computed as `½ I_{df/(df+t²)}(df/2, ½)`.
fn t_upper_tail(t: f64, df: f64) -> f64 {
    debug_assert!(t >= 0.0);
    if t.is_infinite() {
        return 0.0;
    }
    let t2 = t * t;
    let denom = df + t2;
    let (i, _) = inc_beta_pair(0.5 * df, 0.5, df / denom, t2 / denom);
    0.5 * i
}

/// CDF of Student's t distribution with `df > 0` degrees of freedom
/// (`df = +inf` gives the normal CDF). NaN for invalid `df`.
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if df.is_infinite() {
        return normal_cdf(t);
    }
    if t >= 0.0 {
        1.0 - t_upper_tail(t, df)
    } else {
        t_upper_tail(-t, df)
    }
}

fn t_pdf(t: f64, df: f64) -> f64 {
    (-(df + 1.0) / 2.0 * (t * t / df).ln_1p() - 0.5 * df.ln() - lbeta(0.5 * df, 0.5)).exp()
}

/// The `t > 0` with `P(T > t) = tail`, for `0 < tail < 0.5`.
fn t_upper_quantile(tail: f64, df: f64) -> f64 {
    // Exact closed forms for df = 1 and 2.
    if df == 1.0 {
        return 1.0 / (PI * tail).tan();
    }
    if df == 2.0 {
        let a = 4.0 * tail * (1.0 - tail);
        return 2.0 * (1.0 - 2.0 * tail) / (2.0 * a).sqrt();
    }
    // Start from the normal quantile with the first Cornish–Fisher terms.
    let z = -normal_quantile(tail);
    let z3 = z * z * z;
    let z5 = z3 * z * z;
    let mut t = z + (z3 + z) / (4.0 * df) + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * df * df);
    if !(t.is_finite() && t > 0.0) {
        t = 1.0;
    }
    // Bracket the root: tail(t) is decreasing in t.
    let mut lo = 0.0_f64;
    let mut hi = t;
    while t_upper_tail(hi, df) > tail {
        lo = hi;
        hi *= 2.0;
        if !hi.is_finite() {
            return f64::INFINITY;
        }
    }
    if t_upper_tail(t, df) > tail {
        lo = lo.max(t);
    }
    // Safeguarded Newton on f(t) = tail(t) - target, f'(t) = -pdf(t).
    for _ in 0..200 {
        let f = t_upper_tail(t, df) - tail;
        if f == 0.0 {
            return t;
        }
        if f > 0.0 {
            lo = lo.max(t);
        } else {
            hi = hi.min(t);
        }
        let step = f / t_pdf(t, df);
        let mut next = t + step;
        if !(next > lo && next < hi && next.is_finite()) {
            next = 0.5 * (lo + hi);
        }
        if (next - t).abs() <= 4.0 * f64::EPSILON * t.abs() || hi - lo <= 4.0 * f64::EPSILON * hi {
            return next;
        }
        t = next;
    }
    t
}

/// Quantile (inverse CDF) of Student's t with `df > 0` degrees of freedom.
/// `df = +inf` gives the normal quantile. NaN for invalid arguments.
///
/// The lower tail is solved directly (no `1 - p` rounding) and the upper tail
/// by symmetry; the root is polished by safeguarded Newton iteration on the
/// incomplete-beta CDF, so the result is as accurate as the CDF (~1e-14
/// relative in our reference tests against scipy).
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    if p.is_nan() || df.is_nan() || df <= 0.0 || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if df.is_infinite() {
        return normal_quantile(p);
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    if p == 0.5 {
        return 0.0;
    }
    if p < 0.5 {
        -t_upper_quantile(p, df)
    } else {
        t_upper_quantile(1.0 - p, df)
    }
}

/// Two-sided Student-t critical value for a confidence level (tail computed
/// as `(1-c)/2`, not `1 - …`).
pub(crate) fn t_for(confidence: f64, df: f64) -> Result<f64, crate::StatsError> {
    let tail = crate::half_alpha(confidence)?;
    Ok(-student_t_quantile(tail, df))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn z_for_95_matches_known_constant() {
        assert!((z_for(0.95) - 1.959_963_984_540_054).abs() < 1e-15);
        assert!(z_for(1.0).is_nan());
        assert!(z_for(0.0).is_nan());
        assert!(z_for(f64::NAN).is_nan());
    }

    #[test]
    fn normal_quantile_inverts_cdf() {
        for &p in &[
            1e-300, 1e-20, 1e-10, 0.001, 0.02425, 0.3, 0.5, 0.7, 0.975, 0.999_999,
        ] {
            let x = normal_quantile(p);
            let back = normal_cdf(x);
            // d ln Φ / dx ≈ |x| in the tail, so allow for the conditioning.
            let tol = 1e-15 * (4.0 + x * x);
            assert!(((back - p) / p).abs() < tol, "p={p} x={x} back={back}");
        }
        assert_eq!(normal_quantile(0.0), f64::NEG_INFINITY);
        assert_eq!(normal_quantile(1.0), f64::INFINITY);
        assert!(normal_quantile(-0.1).is_nan());
        assert!(normal_quantile(1.1).is_nan());
    }

    #[test]
    fn erfc_symmetry_and_known_values() {
        assert!((erfc(0.0) - 1.0).abs() < 1e-16);
        // erfc(1) = 0.157299207050285130658...
        assert!((erfc(1.0) / 0.157_299_207_050_285_13 - 1.0).abs() < 2e-15);
        for &x in &[0.1, 0.49, 0.51, 1.7, 3.3] {
            assert!((erfc(x) + erfc(-x) - 2.0).abs() < 1e-15);
        }
    }

    #[test]
    fn lgamma_known_values() {
        // Γ(1/2) = √π, Γ(5) = 24, Γ(10.5) from Γ(n+1/2) formula.
        assert!((lgamma(0.5) - 0.5 * PI.ln()).abs() < 1e-14);
        assert!((lgamma(5.0) - 24f64.ln()).abs() < 1e-14);
        assert!((lgamma(1.0)).abs() < 1e-14);
        assert!((lbeta(3.0, 4.0) - (1.0f64 / 60.0).ln()).abs() < 1e-14);
        // Large-argument branch agrees with direct sum of lgammas.
        let direct = lgamma(12.5) + lgamma(30.0) - lgamma(42.5);
        assert!((lbeta(12.5, 30.0) - direct).abs() < 1e-12);
    }

    #[test]
    fn t_cdf_closed_forms() {
        // df=1 is Cauchy: F(t) = 1/2 + atan(t)/π.
        for &t in &[-30.0, -2.0, -0.3, 0.0, 0.7, 5.0] {
            let exact = 0.5 + f64::atan(t) / PI;
            assert!((student_t_cdf(t, 1.0) - exact).abs() < 1e-14, "t={t}");
        }
        // df=2: F(t) = 1/2 + t / (2 sqrt(2 + t²)).
        for &t in &[-4.0f64, -1.0, 0.5, 3.0] {
            let exact = 0.5 + t / (2.0 * (2.0 + t * t).sqrt());
            assert!((student_t_cdf(t, 2.0) - exact).abs() < 1e-14, "t={t}");
        }
    }

    #[test]
    fn t_quantile_inverts_cdf_and_tends_to_normal() {
        for &df in &[1.0, 2.0, 3.0, 7.5, 30.0, 1e4] {
            for &p in &[1e-8, 0.01, 0.2, 0.6, 0.975] {
                let t = student_t_quantile(p, df);
                let back = student_t_cdf(t, df);
                assert!(
                    ((back - p) / p).abs() < 1e-11,
                    "df={df} p={p} t={t} back={back}"
                );
            }
        }
        let big = student_t_quantile(0.025, 1e12);
        assert!((big - normal_quantile(0.025)).abs() < 1e-9);
        assert!(student_t_quantile(0.5, 4.0) == 0.0);
        assert!(student_t_quantile(0.3, 0.0).is_nan());
    }
}
