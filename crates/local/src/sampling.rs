//! Turning one row of logits into a token: temperature, top-k, top-p, seeded sampling,
//! and the log-probabilities reported back (always of the unmodified distribution, as
//! the API providers report them).

use rand::Rng;
use rand_chacha::ChaCha8Rng;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingParams {
    /// 0 means greedy.
    pub temperature: f64,
    pub top_p: f64,
    /// 0 means no top-k cut.
    pub top_k: usize,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
        }
    }
}

/// Natural-log softmax of `logits` (numerically stable).
pub fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| ((l - max) as f64).exp()).sum();
    let lse = max as f64 + sum.ln();
    logits.iter().map(|&l| (l as f64 - lse) as f32).collect()
}

/// The `k` most likely tokens with their log-probabilities, most likely first.
pub fn top_k(logprobs: &[f32], k: usize) -> Vec<(u32, f32)> {
    if k == 0 {
        return Vec::new();
    }
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    for (i, &lp) in logprobs.iter().enumerate() {
        if best.len() < k || lp > best[best.len() - 1].1 {
            let pos = best.partition_point(|&(_, v)| v >= lp);
            best.insert(pos, (i as u32, lp));
            best.truncate(k);
        }
    }
    best
}

/// Picks the next token from `logprobs` (a log-softmax row).
pub fn sample(logprobs: &[f32], p: &SamplingParams, rng: &mut ChaCha8Rng) -> u32 {
    if p.temperature <= 0.0 {
        return argmax(logprobs);
    }
    // Candidates: top-k (or a generous cut: tokens beyond the 1,000 most likely carry
    // negligible mass at ordinary temperatures and would only slow the sort).
    let k = if p.top_k > 0 {
        p.top_k
    } else {
        1000.min(logprobs.len())
    };
    let cands = top_k(logprobs, k);
    let t = p.temperature;
    let max = cands[0].1 as f64 / t;
    let mut weights: Vec<f64> = cands
        .iter()
        .map(|&(_, lp)| (lp as f64 / t - max).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    for w in &mut weights {
        *w /= total;
    }
    if p.top_p < 1.0 {
        let mut acc = 0.0;
        let mut keep = weights.len();
        for (i, w) in weights.iter().enumerate() {
            acc += w;
            if acc >= p.top_p {
                keep = i + 1;
                break;
            }
        }
        weights.truncate(keep);
        let total: f64 = weights.iter().sum();
        for w in &mut weights {
            *w /= total;
        }
    }
    let mut u: f64 = rng.gen();
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return cands[i].0;
        }
        u -= w;
    }
    cands[weights.len() - 1].0
}

pub fn argmax(xs: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn log_softmax_normalises() {
        let lp = log_softmax(&[1.0, 2.0, 3.0]);
        let s: f32 = lp.iter().map(|x| x.exp()).sum();
        assert!((s - 1.0).abs() < 1e-6);
        assert!((lp[2] - lp[1] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn top_k_is_sorted_and_exact() {
        let lp = [0.1, 0.5, -1.0, 0.7, 0.3];
        assert_eq!(
            top_k(&lp, 3).iter().map(|x| x.0).collect::<Vec<_>>(),
            [3, 1, 4]
        );
        assert_eq!(top_k(&lp, 10).len(), 5);
    }

    #[test]
    fn greedy_and_seeded_sampling() {
        let lp = log_softmax(&[0.0, 3.0, 1.0]);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let greedy = SamplingParams {
            temperature: 0.0,
            ..Default::default()
        };
        assert_eq!(sample(&lp, &greedy, &mut rng), 1);
        // Frequencies follow the distribution.
        let p = SamplingParams::default();
        let mut counts = [0usize; 3];
        for _ in 0..20000 {
            counts[sample(&lp, &p, &mut rng) as usize] += 1;
        }
        let want: Vec<f32> = lp.iter().map(|x| x.exp()).collect();
        for i in 0..3 {
            let got = counts[i] as f32 / 20000.0;
            assert!((got - want[i]).abs() < 0.015, "{i}: {got} vs {}", want[i]);
        }
        // Same seed, same draws.
        let mut a = ChaCha8Rng::seed_from_u64(7);
        let mut b = ChaCha8Rng::seed_from_u64(7);
        let da: Vec<u32> = (0..50).map(|_| sample(&lp, &p, &mut a)).collect();
        let db: Vec<u32> = (0..50).map(|_| sample(&lp, &p, &mut b)).collect();
        assert_eq!(da, db);
        // top-k 1 is greedy; top-p tiny is greedy.
        let k1 = SamplingParams {
            top_k: 1,
            ..Default::default()
        };
        assert!((0..100).all(|_| sample(&lp, &k1, &mut a) == 1));
        let p0 = SamplingParams {
            top_p: 0.01,
            ..Default::default()
        };
        assert!((0..100).all(|_| sample(&lp, &p0, &mut a) == 1));
    }
}
