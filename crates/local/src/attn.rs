//! Attention for inference, computed so that a query row's result depends only on that
//! row's query and the keys and values it may see: never on how many other rows or
//! keys are in the same call.
//!
//! Why: the output of a general matrix product is not shape-invariant (a BLAS kernel
//! picks blocking and accumulation order by matrix size), and in a quantized model that
//! re-quantizes activations before every projection, a last-bit difference can flip an
//! int8 rounding and grow to a visible change in the logits (measured on Gemma 3 270M:
//! up to ~1 logit between a prompt read in one pass and the same prompt read in two).
//! With this kernel, reading a prompt in one pass, in pieces, batched with other
//! sequences, or continuing from a cached prefix all give bit-identical numbers, so a
//! request's result never depends on what else the worker was doing.
//!
//! Each score is one dot product in a fixed lane order, the softmax runs over the visible
//! keys in position order, and the output sums the values in position order. Keys a row
//! may not see are skipped, not masked, so their number never matters. Not differentiable:
//! the training-safe path (`white_box`) uses `ops::gqa_attention`.

use candle_core::{Device, Tensor};

const LANES: usize = 8;

/// Rows × keys × head_dim above which the rows are split between threads.
const PARALLEL_WORK: usize = 1 << 21;

/// Grouped-query attention of `q` (1, heads, t, d) at positions `start..start+t` over
/// keys and values (kv_heads, kv_len, d) at positions `start+t-kv_len..`: causal, and
/// limited to the last `window` positions when given. Returns (t, heads*d), as
/// `ops::gqa_attention` does.
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    start: usize,
    scale: f64,
    window: Option<usize>,
) -> candle_core::Result<Tensor> {
    if !matches!(q.device(), Device::Cpu) {
        return crate::ops::gqa_attention(q, k, v, start, scale, window);
    }
    let (_, heads, t, d) = q.dims4()?;
    let (kv_heads, kv_len, _) = k.dims3()?;
    let group = heads / kv_heads;
    let first_key_pos = start + t - kv_len;
    let q = q.flatten_all()?.to_vec1::<f32>()?; // (heads, t, d)
    let k = k.flatten_all()?.to_vec1::<f32>()?; // (kv_heads, kv_len, d)
    let v = v.flatten_all()?.to_vec1::<f32>()?;
    let scale = scale as f32;
    let mut out = vec![0f32; t * heads * d]; // (t, heads, d)

    // One (query row, head) pair: its output row of d values.
    let row = |i: usize, h: usize, dst: &mut [f32], scores: &mut Vec<f32>| {
        let qp = start + i;
        let lo_pos = window.map_or(0, |w| (qp + 1).saturating_sub(w));
        let lo = lo_pos.max(first_key_pos) - first_key_pos;
        let hi = qp - first_key_pos; // inclusive: the row's own key
        let g = h / group;
        let qi = &q[(h * t + i) * d..(h * t + i + 1) * d];
        let keys = &k[g * kv_len * d..(g + 1) * kv_len * d];
        let vals = &v[g * kv_len * d..(g + 1) * kv_len * d];
        scores.clear();
        let mut max = f32::NEG_INFINITY;
        for j in lo..=hi {
            let s = dot(qi, &keys[j * d..(j + 1) * d]) * scale;
            max = max.max(s);
            scores.push(s);
        }
        let mut sum = 0f32;
        for s in scores.iter_mut() {
            *s = (*s - max).exp();
            sum += *s;
        }
        dst.fill(0.0);
        for (s, j) in scores.iter().zip(lo..=hi) {
            axpy(s / sum, &vals[j * d..(j + 1) * d], dst);
        }
    };

    let rows = |range: std::ops::Range<usize>, out: &mut [f32]| {
        let mut scores = Vec::with_capacity(kv_len);
        for (n, i) in range.enumerate() {
            for h in 0..heads {
                let at = (n * heads + h) * d;
                row(i, h, &mut out[at..at + d], &mut scores);
            }
        }
    };
    let threads = if t > 1 && t * kv_len * heads * d >= PARALLEL_WORK {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(t))
    } else {
        1
    };
    if threads == 1 {
        rows(0..t, &mut out);
    } else {
        let per = t.div_ceil(threads);
        std::thread::scope(|s| {
            for (c, chunk) in out.chunks_mut(per * heads * d).enumerate() {
                let r = c * per..(c * per + per).min(t);
                let rows = &rows;
                s.spawn(move || rows(r, chunk));
            }
        });
    }
    Tensor::from_vec(out, (t, heads * d), &Device::Cpu)
}

/// Σ a·b in a fixed order: eight running lane sums, then a fixed pairwise reduction.
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { dot_avx2(a, b) };
        }
    }
    dot_lanes(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_lanes(a, b)
}

#[inline(always)]
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let (ac, ar) = a.split_at(a.len() / LANES * LANES);
    let (bc, br) = b.split_at(ac.len());
    for (x, y) in ac.chunks_exact(LANES).zip(bc.chunks_exact(LANES)) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    let mut tail = 0f32;
    for (x, y) in ar.iter().zip(br) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// dst += a·x, element by element.
#[inline]
fn axpy(a: f32, x: &[f32], dst: &mut [f32]) {
    for (d, x) in dst.iter_mut().zip(x) {
        *d += a * x;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rand(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn case(heads: usize, kv_heads: usize, t: usize, kv_len: usize, d: usize) -> [Tensor; 3] {
        let dev = &Device::Cpu;
        [
            Tensor::from_vec(rand(heads * t * d, 1), (1, heads, t, d), dev).unwrap(),
            Tensor::from_vec(rand(kv_heads * kv_len * d, 2), (kv_heads, kv_len, d), dev).unwrap(),
            Tensor::from_vec(rand(kv_heads * kv_len * d, 3), (kv_heads, kv_len, d), dev).unwrap(),
        ]
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar().unwrap()
    }

    #[test]
    fn agrees_with_the_reference_attention() {
        for window in [None, Some(5)] {
            for (t, kv_len, start) in [(1, 9, 8), (7, 7, 0), (4, 12, 8), (16, 40, 24)] {
                let [q, k, v] = case(4, 2, t, kv_len, 32);
                let ours = attention(&q, &k, &v, start, 0.17, window).unwrap();
                let reference = crate::ops::gqa_attention(&q, &k, &v, start, 0.17, window).unwrap();
                assert_eq!(ours.dims(), reference.dims());
                assert!(max_diff(&ours, &reference) < 1e-5, "{t} {kv_len} {window:?}");
            }
        }
    }

    #[test]
    fn a_row_does_not_depend_on_the_rest_of_the_call() {
        // 12 queries at positions 0..12 over 12 keys, in one call and one row at a time
        // (each row with exactly the keys up to its own position): bit-identical.
        let [q, k, v] = case(4, 1, 12, 12, 64);
        for window in [None, Some(4)] {
            let all = attention(&q, &k, &v, 0, 0.125, window).unwrap();
            for i in 0..12 {
                let qi = q.narrow(2, i, 1).unwrap();
                let ki = k.narrow(1, 0, i + 1).unwrap();
                let vi = v.narrow(1, 0, i + 1).unwrap();
                let one = attention(&qi, &ki, &vi, i, 0.125, window).unwrap();
                let row = all.narrow(0, i, 1).unwrap();
                assert_eq!(max_diff(&one, &row), 0.0, "row {i} {window:?}");
            }
        }
    }
}
