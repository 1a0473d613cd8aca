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
//! Each score is one chain of FMAs over the head dimension in order (the keys are
//! transposed so that 64 keys' chains advance together in vector lanes, for up to four
//! query heads sharing a key head); the softmax takes e^(s − max) over the visible keys
//! (`rows::exp`) and sums them in 16 lanes counted from the row's first visible key, then
//! a fixed pairwise reduction; each output element is one chain of FMAs over the visible
//! keys in position order. Keys a row may not see are skipped, not masked, so their number
//! never matters; nothing depends on where a chunk of keys or dimensions starts. The loops
//! are plain Rust compiled for the process's kernel ISA (`rows::vectorized`): the same
//! bits on AVX-512, AVX2, NEON and the portable build. Not differentiable: the training-safe
//! path (`white_box`) uses `ops::gqa_attention`.

use candle_core::{Device, Tensor};

use crate::qmm::Isa;
use crate::rows::with_values;

/// Keys whose scores (or output elements whose sums) are computed together, their
/// chains advancing in vector lanes.
const CHUNK: usize = 64;
/// Query heads that share one pass over a key head's keys and values.
const HEAD_TILE: usize = 4;

/// Rows × keys × head_dim above which the rows are split between threads.
const PARALLEL_WORK: usize = 1 << 18;

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
    attention_on(crate::qmm::isa(), q, k, v, start, scale, window)
}

/// `attention` compiled for the kernel `isa` (tests compare them).
fn attention_on(
    isa: Isa,
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
    // Keys transposed, (kv_heads, d, kv_len): a score's chain reads one dimension of 64
    // consecutive keys at a time.
    let kt = with_values(k, |k| {
        let mut kt = vec![0f32; k.len()];
        for g in 0..kv_heads {
            let (src, dst) = (
                &k[g * kv_len * d..][..kv_len * d],
                &mut kt[g * kv_len * d..][..kv_len * d],
            );
            for (j, key) in src.chunks_exact(d).enumerate() {
                for (dd, &x) in key.iter().enumerate() {
                    dst[dd * kv_len + j] = x;
                }
            }
        }
        Ok(kt)
    })?;
    with_values(q, |q| {
        with_values(v, |v| {
            let cx = Call {
                q,
                kt: &kt,
                v,
                heads,
                group: heads / kv_heads,
                t,
                d,
                kv_len,
                start,
                first_key_pos: start + t - kv_len,
                scale: scale as f32,
                window,
                isa,
            };
            cx.run()
        })
    })
}

impl Call<'_> {
    /// All query rows, split between threads when there is enough work.
    fn run(&self) -> candle_core::Result<Tensor> {
        let cx = self;
        let (t, heads, d, kv_len) = (self.t, self.heads, self.d, self.kv_len);
        let mut out = vec![0f32; t * heads * d]; // (t, heads, d)
        let threads = if t > 1 && t * kv_len * heads * d >= PARALLEL_WORK {
            crate::threads::count().min(t)
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
            crate::threads::pool().scope(|s| {
                let mut rest = &mut out[..];
                for r in cuts.windows(2) {
                    let (chunk, tail) = rest.split_at_mut((r[1] - r[0]) * heads * d);
                    rest = tail;
                    let (cx, r) = (&cx, r[0]..r[1]);
                    s.spawn(move |_| cx.rows(r, chunk));
                }
            });
        }
        Tensor::from_vec(out, (t, heads * d), &Device::Cpu)
    }
}

/// One call's inputs, as plain slices.
struct Call<'a> {
    q: &'a [f32],  // (heads, t, d)
    kt: &'a [f32], // (kv_heads, d, kv_len)
    v: &'a [f32],  // (kv_heads, kv_len, d)
    heads: usize,
    group: usize,
    t: usize,
    d: usize,
    kv_len: usize,
    start: usize,
    first_key_pos: usize,
    scale: f32,
    window: Option<usize>,
    isa: Isa,
}

impl Call<'_> {
    /// Indices of the keys query row `i` sees: causal, within the window.
    fn keys(&self, i: usize) -> std::ops::RangeInclusive<usize> {
        let qp = self.start + i;
        let lo_pos = self.window.map_or(0, |w| (qp + 1).saturating_sub(w));
        let lo = lo_pos.max(self.first_key_pos) - self.first_key_pos;
        lo..=qp - self.first_key_pos
    }

    /// Output rows `range` (t-major, then heads) into `out`.
    fn rows(&self, range: std::ops::Range<usize>, out: &mut [f32]) {
        rows_on(self.isa, self, range, out)
    }
}

crate::rows::vectorized!(fn rows_on(cx: &Call<'_>, range: std::ops::Range<usize>, out: &mut [f32]) => rows_body);

#[inline(always)]
fn rows_body(cx: &Call<'_>, range: std::ops::Range<usize>, out: &mut [f32]) {
    cx.rows_any(range, out)
}

impl Call<'_> {
    #[inline(always)]
    fn rows_any(&self, range: std::ops::Range<usize>, out: &mut [f32]) {
        let d = self.d;
        let mut probs = vec![0f32; HEAD_TILE * self.kv_len];
        for (n, i) in range.enumerate() {
            let keys = self.keys(i);
            let (lo, nk) = (*keys.start(), keys.end() + 1 - keys.start());
            let mut h0 = 0;
            while h0 < self.heads {
                // Heads h0.. of one key head (a tile never straddles two groups).
                let hn = HEAD_TILE.min(self.group - h0 % self.group);
                let g = h0 / self.group;
                let kt = &self.kt[g * self.kv_len * d..][..self.kv_len * d];
                let vg = &self.v[g * self.kv_len * d..][..self.kv_len * d];
                let q = |h: usize| &self.q[((h0 + h) * self.t + i) * d..][..d];
                let p = &mut probs[..hn * nk];
                match hn {
                    1 => scores::<1>(self.isa, [q(0)], kt, self.kv_len, lo, nk, self.scale, p),
                    2 => scores::<2>(
                        self.isa,
                        [q(0), q(1)],
                        kt,
                        self.kv_len,
                        lo,
                        nk,
                        self.scale,
                        p,
                    ),
                    3 => scores::<3>(
                        self.isa,
                        [q(0), q(1), q(2)],
                        kt,
                        self.kv_len,
                        lo,
                        nk,
                        self.scale,
                        p,
                    ),
                    _ => scores::<4>(
                        self.isa,
                        [q(0), q(1), q(2), q(3)],
                        kt,
                        self.kv_len,
                        lo,
                        nk,
                        self.scale,
                        p,
                    ),
                }
                for ph in p.chunks_exact_mut(nk) {
                    softmax(ph);
                }
                let o = &mut out[(n * self.heads + h0) * d..][..hn * d];
                match hn {
                    1 => weighted::<1>(self.isa, p, vg, d, lo, nk, o),
                    2 => weighted::<2>(self.isa, p, vg, d, lo, nk, o),
                    3 => weighted::<3>(self.isa, p, vg, d, lo, nk, o),
                    _ => weighted::<4>(self.isa, p, vg, d, lo, nk, o),
                }
                h0 += hn;
            }
        }
    }
}

/// Scores of H query heads against keys `lo..lo+nk` of `kt` (d, kv_len), times `scale`,
/// into `out` (H rows of nk): each one FMA chain over the dimensions in order.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn scores<const H: usize>(
    isa: Isa,
    q: [&[f32]; H],
    kt: &[f32],
    kv_len: usize,
    lo: usize,
    nk: usize,
    scale: f32,
    out: &mut [f32],
) {
    let d = q[0].len();
    let mut acc = [[0f32; CHUNK]; H];
    for j0 in (0..nk).step_by(CHUNK) {
        let w = CHUNK.min(nk - j0);
        chains(isa, q, &kt[lo + j0..], kv_len, d, w, &mut acc);
        for h in 0..H {
            for c in 0..w {
                out[h * nk + j0 + c] = acc[h][c] * scale;
            }
        }
    }
}

/// Scores → probabilities in place: e^(s − max), summed in 16 lanes from the first key,
/// a fixed pairwise reduction, then each times 1/sum.
#[inline(always)]
fn softmax(s: &mut [f32]) {
    let max = s.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    let mut acc = [0f32; 16];
    for chunk in s.chunks_mut(16) {
        for (a, x) in acc.iter_mut().zip(chunk.iter_mut()) {
            *x = crate::rows::exp(*x - max);
            *a += *x;
        }
    }
    let mut w = 16;
    while w > 1 {
        w /= 2;
        for l in 0..w {
            acc[l] += acc[l + w];
        }
    }
    let inv = 1.0 / acc[0];
    for x in s.iter_mut() {
        *x *= inv;
    }
}

/// out[h] = Σ_j p[h][j] · v[lo + j] for H heads: each element one FMA chain over the keys
/// in order.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn weighted<const H: usize>(
    isa: Isa,
    p: &[f32],
    v: &[f32],
    d: usize,
    lo: usize,
    nk: usize,
    out: &mut [f32],
) {
    let ps: [&[f32]; H] = std::array::from_fn(|h| &p[h * nk..][..nk]);
    let mut acc = [[0f32; CHUNK]; H];
    for d0 in (0..d).step_by(CHUNK) {
        let w = CHUNK.min(d - d0);
        chains(isa, ps, &v[lo * d + d0..], d, nk, w, &mut acc);
        for h in 0..H {
            out[h * d + d0..][..w].copy_from_slice(&acc[h][..w]);
        }
    }
}

/// out[h][x] = Σ_s a[h][s] · b[s·stride + x] for x < width (≤ CHUNK) and s < steps: one
/// FMA chain per element, over s in order, from 0. Every kernel computes exactly this.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn chains<const H: usize>(
    isa: Isa,
    a: [&[f32]; H],
    b: &[f32],
    stride: usize,
    steps: usize,
    width: usize,
    out: &mut [[f32; CHUNK]; H],
) {
    assert!(width <= CHUNK && steps >= 1 && a.iter().all(|a| a.len() >= steps));
    assert!(b.len() >= (steps - 1) * stride + width);
    #[cfg(target_arch = "x86_64")]
    let vectors = {
        let vectors = match isa {
            Isa::Avx512 => width / 16 * 16,
            Isa::Avx2 => width / 8 * 8,
            _ => 0,
        };
        if vectors > 0 {
            // SAFETY: the CPU supports `isa` (the process's kernel); the asserts above
            // keep every read inside `a` and `b`.
            unsafe {
                match isa {
                    Isa::Avx512 => x86::chains_avx512::<H>(a, b, stride, steps, vectors, out),
                    _ => x86::chains_avx2::<H>(a, b, stride, steps, vectors, out),
                }
            }
        }
        vectors
    };
    #[cfg(target_arch = "aarch64")]
    let vectors = {
        let vectors = match isa {
            Isa::Neon | Isa::NeonDot => width / 4 * 4,
            _ => 0,
        };
        if vectors > 0 {
            // SAFETY: the asserts above keep every read inside `a` and `b` (NEON is part
            // of the AArch64 target).
            unsafe { arm::chains_neon::<H>(a, b, stride, steps, vectors, out) }
        }
        vectors
    };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let vectors = {
        let _ = isa;
        0
    };
    chains_scalar(a, b, stride, steps, vectors..width, out);
}

#[inline(always)]
fn chains_scalar<const H: usize>(
    a: [&[f32]; H],
    b: &[f32],
    stride: usize,
    steps: usize,
    cols: std::ops::Range<usize>,
    out: &mut [[f32; CHUNK]; H],
) {
    for h in 0..H {
        for x in cols.clone() {
            let mut acc = 0f32;
            for s in 0..steps {
                acc = a[h][s].mul_add(b[s * stride + x], acc);
            }
            out[h][x] = acc;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! `chains` with one vector lane per output element: the same FMA chains.
    #![allow(clippy::needless_range_loop)]

    use std::arch::x86_64::*;

    use super::CHUNK;

    /// Columns `0..vectors` (a multiple of 16).
    ///
    /// # Safety
    /// AVX-512F and FMA; `a[h]` holds `steps` values, `b` `(steps − 1)·stride + vectors`.
    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn chains_avx512<const H: usize>(
        a: [&[f32]; H],
        b: &[f32],
        stride: usize,
        steps: usize,
        vectors: usize,
        out: &mut [[f32; CHUNK]; H],
    ) {
        let bp = b.as_ptr();
        let mut x0 = 0;
        while x0 < vectors {
            // Up to four vectors of 16 columns at a time, for H ≤ 4 rows: ≤ 16 sums.
            let n = ((vectors - x0) / 16).min(4);
            macro_rules! run {
                ($n:literal) => {{
                    let mut acc = [[_mm512_setzero_ps(); $n]; H];
                    for s in 0..steps {
                        let row = bp.add(s * stride + x0);
                        let bv: [__m512; $n] =
                            std::array::from_fn(|i| _mm512_loadu_ps(row.add(16 * i)));
                        for h in 0..H {
                            let av = _mm512_set1_ps(*a[h].get_unchecked(s));
                            for i in 0..$n {
                                acc[h][i] = _mm512_fmadd_ps(av, bv[i], acc[h][i]);
                            }
                        }
                    }
                    for h in 0..H {
                        for i in 0..$n {
                            _mm512_storeu_ps(out[h].as_mut_ptr().add(x0 + 16 * i), acc[h][i]);
                        }
                    }
                }};
            }
            match n {
                4 => run!(4),
                3 => run!(3),
                2 => run!(2),
                _ => run!(1),
            }
            x0 += 16 * n;
        }
    }

    /// Columns `0..vectors` (a multiple of 8).
    ///
    /// # Safety
    /// AVX2 and FMA; `a[h]` holds `steps` values, `b` `(steps − 1)·stride + vectors`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn chains_avx2<const H: usize>(
        a: [&[f32]; H],
        b: &[f32],
        stride: usize,
        steps: usize,
        vectors: usize,
        out: &mut [[f32; CHUNK]; H],
    ) {
        let bp = b.as_ptr();
        let mut x0 = 0;
        while x0 < vectors {
            // Up to two vectors of 8 columns for H ≤ 4 rows: ≤ 8 sums in 16 registers.
            let n = ((vectors - x0) / 8).min(2);
            macro_rules! run {
                ($n:literal) => {{
                    let mut acc = [[_mm256_setzero_ps(); $n]; H];
                    for s in 0..steps {
                        let row = bp.add(s * stride + x0);
                        let bv: [__m256; $n] =
                            std::array::from_fn(|i| _mm256_loadu_ps(row.add(8 * i)));
                        for h in 0..H {
                            let av = _mm256_set1_ps(*a[h].get_unchecked(s));
                            for i in 0..$n {
                                acc[h][i] = _mm256_fmadd_ps(av, bv[i], acc[h][i]);
                            }
                        }
                    }
                    for h in 0..H {
                        for i in 0..$n {
                            _mm256_storeu_ps(out[h].as_mut_ptr().add(x0 + 8 * i), acc[h][i]);
                        }
                    }
                }};
            }
            match n {
                2 => run!(2),
                _ => run!(1),
            }
            x0 += 8 * n;
        }
    }
}

#[cfg(target_arch = "aarch64")]
mod arm {
    //! `chains` with one NEON lane per output element: the same FMA chains.
    #![allow(clippy::needless_range_loop)]

    use std::arch::aarch64::*;

    use super::CHUNK;

    /// Columns `0..vectors` (a multiple of 4).
    ///
    /// # Safety
    /// `a[h]` holds `steps` values, `b` `(steps − 1)·stride + vectors`.
    pub(super) unsafe fn chains_neon<const H: usize>(
        a: [&[f32]; H],
        b: &[f32],
        stride: usize,
        steps: usize,
        vectors: usize,
        out: &mut [[f32; CHUNK]; H],
    ) {
        let bp = b.as_ptr();
        let mut x0 = 0;
        while x0 < vectors {
            // Up to four vectors of 4 columns for H ≤ 4 rows: ≤ 16 sums of 32 registers.
            let n = ((vectors - x0) / 4).min(4);
            macro_rules! run {
                ($n:literal) => {{
                    let mut acc = [[vdupq_n_f32(0.0); $n]; H];
                    for s in 0..steps {
                        let row = bp.add(s * stride + x0);
                        let bv: [float32x4_t; $n] =
                            std::array::from_fn(|i| vld1q_f32(row.add(4 * i)));
                        for h in 0..H {
                            let av = vdupq_n_f32(*a[h].get_unchecked(s));
                            for i in 0..$n {
                                acc[h][i] = vfmaq_f32(acc[h][i], av, bv[i]);
                            }
                        }
                    }
                    for h in 0..H {
                        for i in 0..$n {
                            vst1q_f32(out[h].as_mut_ptr().add(x0 + 4 * i), acc[h][i]);
                        }
                    }
                }};
            }
            match n {
                4 => run!(4),
                3 => run!(3),
                2 => run!(2),
                _ => run!(1),
            }
            x0 += 4 * n;
        }
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
    fn every_kernel_computes_the_same_bits_for_any_head_grouping() {
        // 14 query heads over 2 key heads (Qwen2.5 0.5B's grouping: tiles of 4 and 3),
        // more keys than one chunk, and a head size that is not a multiple of the chunk.
        for (heads, kv_heads, d) in [(14, 2, 64), (4, 1, 256), (3, 3, 80)] {
            let [q, k, v] = case(heads, kv_heads, 9, 150, d);
            let reference = crate::ops::gqa_attention(&q, &k, &v, 141, 0.1, Some(100)).unwrap();
            let mut first: Option<Vec<f32>> = None;
            for isa in crate::qmm::Isa::ALL.into_iter().filter(|i| i.supported()) {
                let ours = attention_on(isa, &q, &k, &v, 141, 0.1, Some(100)).unwrap();
                assert!(
                    max_diff(&ours, &reference) < 1e-5,
                    "{heads}/{kv_heads} {}",
                    isa.name()
                );
                let bits = ours.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                match &first {
                    None => first = Some(bits),
                    Some(f) => assert!(
                        f.iter().zip(&bits).all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{heads}/{kv_heads}: {} differs",
                        isa.name()
                    ),
                }
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
