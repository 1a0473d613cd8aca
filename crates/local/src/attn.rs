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
//! Each score is one dot product in a fixed lane order (32 running sums, then a fixed
//! pairwise reduction), the softmax runs over the visible
//! keys in position order, and the output sums the values in position order. Keys a row
//! may not see are skipped, not masked, so their number never matters. Not differentiable:
//! the training-safe path (`white_box`) uses `ops::gqa_attention`.

use candle_core::{Device, Tensor};

/// Lanes of the running sums of one dot product: four vectors of eight, so the adds of
/// one chain do not wait on each other (a single accumulator is latency-bound).
const LANES: usize = 32;

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
    let cx = Call {
        q: q.flatten_all()?.to_vec1::<f32>()?,
        k: k.flatten_all()?.to_vec1::<f32>()?,
        v: v.flatten_all()?.to_vec1::<f32>()?,
        heads,
        group: heads / kv_heads,
        t,
        d,
        kv_len,
        start,
        first_key_pos: start + t - kv_len,
        scale: scale as f32,
        window,
    };
    let mut out = vec![0f32; t * heads * d]; // (t, heads, d)
    let threads = if t > 1 && t * kv_len * heads * d >= PARALLEL_WORK {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(t))
    } else {
        1
    };
    if threads == 1 {
        cx.rows(0..t, &mut out);
    } else {
        // Split the rows where the keys they see (their work) are shared out evenly.
        let work: Vec<usize> = (0..t).map(|i| cx.keys(i).count()).collect();
        let total: usize = work.iter().sum();
        let mut cuts = vec![0];
        let mut acc = 0;
        for (i, w) in work.iter().enumerate() {
            acc += w;
            if acc * threads >= total * cuts.len() && cuts.len() < threads && i + 1 < t {
                cuts.push(i + 1);
            }
        }
        cuts.push(t);
        std::thread::scope(|s| {
            let mut rest = &mut out[..];
            for r in cuts.windows(2) {
                let (chunk, tail) = rest.split_at_mut((r[1] - r[0]) * heads * d);
                rest = tail;
                let (cx, r) = (&cx, r[0]..r[1]);
                s.spawn(move || cx.rows(r, chunk));
            }
        });
    }
    Tensor::from_vec(out, (t, heads * d), &Device::Cpu)
}

/// One call's inputs, as plain slices.
struct Call {
    q: Vec<f32>, // (heads, t, d)
    k: Vec<f32>, // (kv_heads, kv_len, d)
    v: Vec<f32>,
    heads: usize,
    group: usize,
    t: usize,
    d: usize,
    kv_len: usize,
    start: usize,
    first_key_pos: usize,
    scale: f32,
    window: Option<usize>,
}

impl Call {
    /// Indices of the keys query row `i` sees: causal, within the window.
    fn keys(&self, i: usize) -> std::ops::RangeInclusive<usize> {
        let qp = self.start + i;
        let lo_pos = self.window.map_or(0, |w| (qp + 1).saturating_sub(w));
        let lo = lo_pos.max(self.first_key_pos) - self.first_key_pos;
        lo..=qp - self.first_key_pos
    }

    /// Output rows `range` (t-major, then heads) into `out`.
    fn rows(&self, range: std::ops::Range<usize>, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2 (checked just above).
                return unsafe { self.rows_avx2(range, out) };
            }
        }
        self.rows_any(range, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn rows_avx2(&self, range: std::ops::Range<usize>, out: &mut [f32]) {
        self.rows_any(range, out)
    }

    #[inline(always)]
    fn rows_any(&self, range: std::ops::Range<usize>, out: &mut [f32]) {
        let d = self.d;
        let mut scores = Vec::with_capacity(self.kv_len);
        for (n, i) in range.enumerate() {
            let keys = self.keys(i);
            for h in 0..self.heads {
                let g = h / self.group;
                let qi = &self.q[(h * self.t + i) * d..][..d];
                let kg = &self.k[g * self.kv_len * d..][..self.kv_len * d];
                let vg = &self.v[g * self.kv_len * d..][..self.kv_len * d];
                let dst = &mut out[(n * self.heads + h) * d..][..d];
                scores.clear();
                let mut max = f32::NEG_INFINITY;
                for j in keys.clone() {
                    let s = dot(qi, &kg[j * d..][..d]) * self.scale;
                    max = max.max(s);
                    scores.push(s);
                }
                let mut sum = 0f32;
                for s in scores.iter_mut() {
                    *s = (*s - max).exp();
                    sum += *s;
                }
                dst.fill(0.0);
                for (s, j) in scores.iter().zip(keys.clone()) {
                    axpy(s / sum, &vg[j * d..][..d], dst);
                }
            }
        }
    }
}

/// Σ a·b in a fixed order: 32 running lane sums, then a fixed pairwise reduction.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let split = a.len() / LANES * LANES;
    let (ac, ar) = a.split_at(split);
    let (bc, br) = b.split_at(split);
    for (x, y) in ac.chunks_exact(LANES).zip(bc.chunks_exact(LANES)) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    let mut tail = 0f32;
    for (x, y) in ar.iter().zip(br) {
        tail += x * y;
    }
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            acc[l] += acc[l + width];
        }
    }
    acc[0] + tail
}

/// dst += a·x, element by element.
#[inline(always)]
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
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
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
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    #[test]
    fn agrees_with_the_reference_attention() {
        for window in [None, Some(5)] {
            for (t, kv_len, start) in [(1, 9, 8), (7, 7, 0), (4, 12, 8), (16, 40, 24)] {
                let [q, k, v] = case(4, 2, t, kv_len, 32);
                let ours = attention(&q, &k, &v, start, 0.17, window).unwrap();
                let reference = crate::ops::gqa_attention(&q, &k, &v, start, 0.17, window).unwrap();
                assert_eq!(ours.dims(), reference.dims());
                assert!(
                    max_diff(&ours, &reference) < 1e-5,
                    "{t} {kv_len} {window:?}"
                );
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
