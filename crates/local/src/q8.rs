//! Our Q8_0 × Q8_0 matrix product for x86-64 with AVX2.
//!
//! Why: candle's CPU kernel for Q8_0 converts two f16 scales in software for every block
//! pair and runs at ~18 GMAC/s on two cores whatever the number of rows. Here the scales
//! are f32 (weights converted once at load, activations once per row), each weight quad
//! stays in L1 while every activation row passes over it, and the two cores split the
//! output columns.
//!
//! Invariant: one dot product is computed bit for bit as candle's generic Q8_0 kernel
//! computes it (the same per-block integer sums, FMA order and horizontal sum; activations
//! quantized by candle's own Q8_0 rounding), whatever the number of rows and whichever
//! thread computes it. So candle can serve single rows (its pooled threads suit decoding)
//! and this kernel several rows, and a batched request still gets exactly the numbers it
//! gets alone. Matrices whose k is a multiple of 256 are left to candle, which may use
//! repacked kernels with a different rounding for them.

use candle_core::quantized::k_quants::{BlockQ8_0, GgmlType};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

const QK: usize = 32;
/// Below this many multiply-adds a product runs on one thread (a thread costs more).
const PARALLEL_MACS: usize = 1 << 20;

/// A Q8_0 weight matrix (n rows of k), read in place from candle's tensor (34-byte blocks:
/// an f16 scale, then 32 values), with the scales converted to f32 once.
pub struct Q8Matrix {
    n: usize,
    k: usize,
    /// Keeps the blocks that `blocks` points into alive.
    _tensor: std::sync::Arc<QTensor>,
    blocks: *const u8,
    /// One scale per block of 32, row-major, k/32 per row.
    scales: Vec<f32>,
}

// SAFETY: `blocks` points into the immutable storage of `tensor`, which the matrix owns.
unsafe impl Send for Q8Matrix {}
unsafe impl Sync for Q8Matrix {}

/// Whether this machine runs the kernel (else callers keep candle's).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

impl Q8Matrix {
    /// From a Q8_0 tensor of shape (n, k) on the CPU; `None` for anything else.
    pub fn from_qtensor(t: std::sync::Arc<QTensor>) -> Option<Q8Matrix> {
        if t.dtype() != GgmlDType::Q8_0 || !t.device().is_cpu() || !available() {
            return None;
        }
        let (n, k) = t.shape().dims2().ok()?;
        // Where k is a multiple of 256, candle may use its repacked (VNNI) kernels, whose
        // rounding differs; keep candle's kernel there for every row count.
        if k % QK != 0 || k % 256 == 0 {
            return None;
        }
        let kb = k / QK;
        let (blocks, scales) = {
            let std::borrow::Cow::Borrowed(data) = t.data().ok()? else {
                return None;
            };
            if data.len() != n * kb * 34 {
                return None;
            }
            let scales = data
                .chunks_exact(34)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect();
            (data.as_ptr(), scales)
        };
        Some(Q8Matrix {
            n,
            k,
            _tensor: t,
            blocks,
            scales,
        })
    }

    /// `x` (rows, k) f32 → (rows, n).
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let dims = x.dims().to_vec();
        let k = *dims.last().unwrap_or(&0);
        if k != self.k {
            candle_core::bail!("q8 matmul: input has {k} columns, weights {}", self.k);
        }
        let m = x.elem_count() / k;
        let xs = x.flatten_all()?.to_vec1::<f32>()?;
        let kb = k / QK;
        // Quantize the activations exactly as candle does (Q8_0, round to nearest).
        let mut blocks = vec![BlockQ8_0::zeros(); m * kb];
        for (row, out) in xs.chunks_exact(k).zip(blocks.chunks_exact_mut(kb)) {
            BlockQ8_0::from_float(row, out);
        }
        let mut aq = vec![0i8; m * k];
        let mut ascale = vec![0f32; m * kb];
        // SAFETY: BlockQ8_0 is repr(C) {f16, [i8; 32]}, 34 bytes (asserted by candle).
        let raw =
            unsafe { std::slice::from_raw_parts(blocks.as_ptr() as *const u8, blocks.len() * 34) };
        for (b, block) in raw.chunks_exact(34).enumerate() {
            ascale[b] = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
            for (q, &byte) in aq[b * QK..(b + 1) * QK].iter_mut().zip(&block[2..]) {
                *q = byte as i8;
            }
        }
        let mut out = vec![0f32; m * self.n];
        let quads = self.n / 4;
        let threads = if m * self.n * k >= PARALLEL_MACS {
            2
        } else {
            1
        };
        let per = quads.div_ceil(threads);
        {
            let out_ptr = out.as_mut_ptr() as usize;
            let work = |q0: usize, q1: usize| {
                for q in q0..q1 {
                    for r in 0..m {
                        let d = self.dot4(
                            &aq[r * k..(r + 1) * k],
                            &ascale[r * kb..(r + 1) * kb],
                            q * 4,
                        );
                        // SAFETY: each (row, column) is written by exactly one worker.
                        unsafe {
                            let p = (out_ptr as *mut f32).add(r * self.n + q * 4);
                            for (j, v) in d.iter().enumerate() {
                                *p.add(j) = *v;
                            }
                        }
                    }
                }
            };
            if threads == 1 {
                work(0, quads);
            } else {
                std::thread::scope(|s| {
                    let h = s.spawn(|| work(0, per.min(quads)));
                    work(per.min(quads), quads);
                    h.join().expect("q8 worker");
                });
            }
        }
        // Columns left over after the quads (n not a multiple of 4).
        for c in quads * 4..self.n {
            for r in 0..m {
                out[r * self.n + c] =
                    self.dot1(&aq[r * k..(r + 1) * k], &ascale[r * kb..(r + 1) * kb], c);
            }
        }
        let mut shape = dims;
        *shape.last_mut().unwrap() = self.n;
        Tensor::from_vec(out, shape, &Device::Cpu)
    }

    fn dot4(&self, a: &[i8], ascale: &[f32], col: usize) -> [f32; 4] {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `available()` checked AVX2 and FMA when the matrix was built.
        unsafe {
            avx::dot4(a, ascale, self.blocks, &self.scales, self.k, col)
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("built only on x86-64")
    }

    fn dot1(&self, a: &[i8], ascale: &[f32], col: usize) -> f32 {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        unsafe {
            avx::dot1(a, ascale, self.blocks, &self.scales, self.k, col)
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("built only on x86-64")
    }
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use std::arch::x86_64::*;

    use super::QK;

    /// Per block: |w| · (a signed like w), summed in pairs to i16 then to eight i32 lanes,
    /// converted to f32 and accumulated with the block's scale product by FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block(acc: __m256, w: __m256i, a: __m256i, d: f32) -> __m256 {
        let aw = _mm256_sign_epi8(w, w);
        let sa = _mm256_sign_epi8(a, w);
        let dot = _mm256_maddubs_epi16(aw, sa);
        let sum = _mm256_madd_epi16(_mm256_set1_epi16(1), dot);
        _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sum), acc)
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum(x: __m256) -> f32 {
        let r = _mm256_extractf128_ps(x, 1);
        let r = _mm_add_ps(r, _mm256_castps256_ps128(x));
        let r = _mm_add_ps(r, _mm_movehl_ps(r, r));
        let r = _mm_add_ss(r, _mm_movehdup_ps(r));
        _mm_cvtss_f32(r)
    }

    #[target_feature(enable = "avx2,fma")]
    /// `blocks`: the weight matrix as 34-byte Q8_0 blocks; the values of block `b` of row
    /// `r` start at `(r * kb + b) * 34 + 2`.
    pub(super) unsafe fn dot4(
        a: &[i8],
        ascale: &[f32],
        blocks: *const u8,
        ws: &[f32],
        k: usize,
        col: usize,
    ) -> [f32; 4] {
        let kb = k / QK;
        let mut acc = [_mm256_setzero_ps(); 4];
        let ap = a.as_ptr();
        for b in 0..kb {
            let av = _mm256_loadu_si256(ap.add(b * QK) as *const __m256i);
            let sa = ascale[b];
            for (j, acc) in acc.iter_mut().enumerate() {
                let row = col + j;
                let wv = _mm256_loadu_si256(blocks.add((row * kb + b) * 34 + 2) as *const __m256i);
                *acc = block(*acc, wv, av, ws[row * kb + b] * sa);
            }
        }
        [hsum(acc[0]), hsum(acc[1]), hsum(acc[2]), hsum(acc[3])]
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot1(
        a: &[i8],
        ascale: &[f32],
        blocks: *const u8,
        ws: &[f32],
        k: usize,
        col: usize,
    ) -> f32 {
        let kb = k / QK;
        let mut acc = _mm256_setzero_ps();
        for b in 0..kb {
            let av = _mm256_loadu_si256(a.as_ptr().add(b * QK) as *const __m256i);
            let wv = _mm256_loadu_si256(blocks.add((col * kb + b) * 34 + 2) as *const __m256i);
            acc = block(acc, wv, av, ws[col * kb + b] * ascale[b]);
        }
        hsum(acc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::QMatMul;
    use candle_core::Module;

    #[test]
    fn matches_candle_and_is_row_count_invariant() {
        if !available() {
            return;
        }
        let dev = Device::Cpu;
        let (n, k) = (70usize, 640usize);
        let w = Tensor::randn(0f32, 1.0, (n, k), &dev).unwrap();
        let qt = std::sync::Arc::new(QTensor::quantize(&w, GgmlDType::Q8_0).unwrap());
        let ours = Q8Matrix::from_qtensor(qt.clone()).unwrap();
        let theirs = QMatMul::from_arc(qt).unwrap();
        let x = Tensor::randn(0f32, 1.0, (64, k), &dev).unwrap();
        let wide = QTensor::quantize(
            &Tensor::randn(0f32, 1.0, (8, 512), &dev).unwrap(),
            GgmlDType::Q8_0,
        )
        .unwrap();
        assert!(Q8Matrix::from_qtensor(std::sync::Arc::new(wide)).is_none());
        let a = ours.forward(&x).unwrap().to_vec2::<f32>().unwrap();
        let b = theirs.forward(&x).unwrap().to_vec2::<f32>().unwrap();
        // Bit for bit: the same integer sums, FMA order and horizontal sum as candle's
        // kernel, so either may serve a row.
        assert_eq!(a, b);
        // Each row alone gives bit-identical results, ours and candle's single-row kernel.
        for (r, expected) in a.iter().enumerate().take(5) {
            let row = x.narrow(0, r, 1).unwrap();
            assert_eq!(
                &ours.forward(&row).unwrap().to_vec2::<f32>().unwrap()[0],
                expected
            );
            assert_eq!(
                &theirs.forward(&row).unwrap().to_vec2::<f32>().unwrap()[0],
                expected
            );
        }
    }
}
