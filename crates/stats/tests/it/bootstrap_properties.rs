//! Property tests for the bootstrap. Its RNG (ChaCha8) cannot reproduce
//! numpy's draws, so instead of reference values we check properties that a
//! wrong implementation would violate. (The Monte-Carlo comparison with
//! `scipy.stats.bootstrap` lives in `reference.rs`.)

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shammie_stats::{bootstrap_mean, bootstrap_percentile, mean_ci_t, StatsError};

/// Standard normal draws by Box–Muller (test-only; keeps the dev deps small).
fn normal_sample(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let u1: f64 = 1.0 - rng.gen::<f64>(); // (0, 1]
            let u2: f64 = rng.gen();
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        })
        .collect()
}

#[test]
fn same_seed_same_interval_different_seed_different_interval() {
    let v = normal_sample(300, 1);
    let a = bootstrap_mean(&v, 2000, 0.95, 42).unwrap();
    let b = bootstrap_mean(&v, 2000, 0.95, 42).unwrap();
    assert_eq!(a, b, "bit-identical for the same seed");
    let c = bootstrap_mean(&v, 2000, 0.95, 43).unwrap();
    assert_ne!((a.lo, a.hi), (c.lo, c.hi), "seed must matter");
}

#[test]
fn large_normal_sample_matches_mean_plus_minus_1_96_se() {
    let n = 4000;
    let v = normal_sample(n, 7);
    let mean = v.iter().sum::<f64>() / n as f64;
    let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0)).sqrt();
    let half = 1.959_963_984_540_054 * sd / (n as f64).sqrt();
    let boot = bootstrap_mean(&v, 4000, 0.95, 2024).unwrap();
    assert_eq!(boot.estimate, mean_ci_t(&v, 0.95).unwrap().estimate);
    let upper = boot.hi - boot.estimate;
    let lower = boot.estimate - boot.lo;
    for (name, got) in [("upper", upper), ("lower", lower)] {
        assert!(
            (got / half - 1.0).abs() < 0.10,
            "{name} half-width {got} vs normal theory {half}"
        );
    }
}

#[test]
fn constant_data_gives_zero_width_interval() {
    let v = vec![0.375; 57];
    let b = bootstrap_mean(&v, 500, 0.9, 5).unwrap();
    assert_eq!((b.estimate, b.lo, b.hi), (0.375, 0.375, 0.375));
}

#[test]
fn higher_confidence_is_wider_and_nested() {
    let v = normal_sample(200, 3);
    let narrow = bootstrap_mean(&v, 3000, 0.8, 9).unwrap();
    let wide = bootstrap_mean(&v, 3000, 0.99, 9).unwrap();
    assert!(wide.lo < narrow.lo && narrow.hi < wide.hi);
    assert!(narrow.lo < narrow.estimate && narrow.estimate < narrow.hi);
}

#[test]
fn resampling_is_with_replacement_over_generic_items() {
    // Statistic: number of distinct items in the resample. On the original
    // it is n; with replacement its expectation is n(1 - (1 - 1/n)^n) ≈ 6.51
    // for n = 10, so the whole interval sits well below n.
    #[derive(Debug)]
    struct Item {
        id: usize,
    }
    let items: Vec<Item> = (0..10).map(|id| Item { id }).collect();
    let distinct = |s: &[&Item]| {
        let mut ids: Vec<usize> = s.iter().map(|i| i.id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len() as f64
    };
    let b = bootstrap_percentile(&items, distinct, 4000, 0.9, 11).unwrap();
    assert_eq!(b.estimate, 10.0);
    assert!(b.hi <= 8.0 && b.lo >= 4.0, "{b:?}");
    let expected = 10.0 * (1.0 - 0.9_f64.powi(10));
    assert!(b.lo < expected && expected < b.hi);
}

#[test]
fn statistic_sees_original_items_in_order() {
    // The estimate is the statistic on the original sample, not a replicate:
    // "first element" is only 1.0 when the original order is used.
    let v: Vec<f64> = (1..=20).map(f64::from).collect();
    let b = bootstrap_percentile(&v, |s: &[&f64]| *s[0], 500, 0.95, 1).unwrap();
    assert_eq!(b.estimate, 1.0);
    assert!(b.hi > 1.0);
}

#[test]
fn error_cases() {
    assert_eq!(
        bootstrap_mean(&[], 100, 0.95, 0),
        Err(StatsError::EmptyInput)
    );
    let none: [u8; 0] = [];
    assert_eq!(
        bootstrap_percentile(&none, |_s: &[&u8]| 0.0, 100, 0.95, 0),
        Err(StatsError::EmptyInput)
    );
    assert_eq!(
        bootstrap_mean(&[1.0, 2.0], 0, 0.95, 0),
        Err(StatsError::InsufficientData { needed: 2, got: 0 })
    );
    assert_eq!(
        bootstrap_mean(&[1.0, 2.0], 100, 0.0, 0),
        Err(StatsError::InvalidConfidence(0.0))
    );
    assert_eq!(
        bootstrap_mean(&[1.0, f64::NAN], 100, 0.95, 0),
        Err(StatsError::NonFinite("values"))
    );
    assert_eq!(
        bootstrap_percentile(&[1.0, 2.0], |_s: &[&f64]| f64::NAN, 100, 0.95, 0),
        Err(StatsError::NonFinite("statistic on the original sample"))
    );
}
