//! Quantized matrix products for the CPU: Q8_0 and Q4_K weights against activations
//! quantized to 8 bits once per product, with integer dot products, for any number of
//! rows (one for decoding, hundreds for a prompt).
//!
//! Layout. At load, a weight matrix (n rows of k in the GGUF, i.e. n output columns) is
//! repacked into panels of 16 output columns (the last padded with zeros): for each block
//! of the k dimension, the values of the 16 columns are interleaved four at a time, so one
//! 64-byte vector holds four consecutive values of each of 16 columns and one integer
//! dot-product instruction per four activation values serves all 16 columns; scales are
//! stored per panel as 16 consecutive values (Q8_0: the GGUF's f16, converted exactly in
//! the kernel; Q4_K: f32). Activations are quantized per row: Q8_0-style
//! (blocks of 32, one f32 scale each) for Q8_0 weights, Q8_K-style (blocks of 256, one f32
//! scale, plus the sum of each 32-value sub-block for Q4_K's minimums) for Q4_K weights;
//! values are symmetric in [-127, 127], rounded half to even.
//!
//! Numbers. Every output value is defined by one fixed formula (see `scalar.rs`), the same
//! for every kernel: per weight block an exact integer dot product, then one FMA per block
//! into a single f32 accumulator, blocks in order (Q4_K: one accumulator for the scaled
//! sums and one for the minimums, subtracted at the end). Integer sums are exact however
//! they are computed, so the AVX2, AVX-512 (VNNI), NEON and portable kernels give
//! bit-identical results, whatever the number of rows, the tile a row lands in, or the
//! thread that computes its columns. That is what keeps batching and prefix reuse
//! result-invariant.
//!
//! Dispatch. `isa()` picks the kernel once per process from the CPU's features
//! (`SHAMMIE_LOCAL_KERNEL=scalar|neon|neon-dotprod|avx2|avx512` forces one, for
//! measurements); tests build matrices for every kernel this CPU has. On x86-64: AVX2 or
//! AVX-512 VNNI (`x86.rs`); on AArch64: NEON, with `sdot` where the CPU has the
//! dot-product extension (`arm.rs`); elsewhere the portable kernel.
//!
//! Threads: the output panels are split between the threads of `crate::threads`'s pool;
//! each column is computed by exactly one thread, in the same order as on one thread.

#[cfg(target_arch = "aarch64")]
mod arm;
mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(test)]
mod tests;

use std::sync::OnceLock;

use candle_core::quantized::{GgmlDType, QTensor};

/// Values per Q8_0 block.
pub const QK8_0: usize = 32;
/// Values per K-quant superblock.
pub const QK_K: usize = 256;
/// Output columns per panel.
pub const PANEL: usize = 16;
/// Rows of activations computed together against one panel (each weight vector is
/// loaded once per tile of this many rows).
const TILE_ROWS: usize = 4;
/// Rows kept hot in cache while the panels stream past them.
const ROW_CHUNK: usize = 64;
/// Below this many multiply-adds a product runs on the calling thread.
const PARALLEL_MACS: usize = 1 << 18;

/// Which kernel computes the products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Portable Rust: the definition every other kernel reproduces bit for bit.
    Scalar,
    /// AArch64 NEON, which every AArch64 CPU has (`smull`/`sadalp`).
    Neon,
    /// AArch64 NEON with the dot-product extension (Armv8.2+, `sdot`).
    NeonDot,
    /// x86-64 AVX2 + FMA + F16C (`vpmaddubsw`/`vpmaddwd`).
    Avx2,
    /// x86-64 AVX-512 F/BW with VNNI (`vpdpbusd`, `vpdpwssd`).
    Avx512,
}

impl Isa {
    /// Every kernel, best last (per architecture).
    pub const ALL: [Isa; 5] = [Isa::Scalar, Isa::Neon, Isa::NeonDot, Isa::Avx2, Isa::Avx512];

    /// Whether this CPU runs the kernel.
    pub fn supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("fma")
                    && is_x86_feature_detected!("f16c")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                Isa::Avx2.supported()
                    && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
                    && is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[cfg(target_arch = "aarch64")]
            Isa::NeonDot => {
                Isa::Neon.supported() && std::arch::is_aarch64_feature_detected!("dotprod")
            }
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Neon => "neon",
            Isa::NeonDot => "neon-dotprod",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512-vnni",
        }
    }

    /// The best kernel this CPU runs.
    pub fn best() -> Isa {
        Isa::ALL
            .into_iter()
            .rev()
            .find(|i| i.supported())
            .unwrap_or(Isa::Scalar)
    }
}

/// The kernel of this process, fixed at first use: the best the CPU runs, or the one
/// `SHAMMIE_LOCAL_KERNEL` names (when the CPU runs it).
pub fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        let forced = std::env::var("SHAMMIE_LOCAL_KERNEL").ok();
        let named = forced.as_deref().and_then(|name| match name {
            "scalar" => Some(Isa::Scalar),
            "neon" => Some(Isa::Neon),
            "neon-dotprod" => Some(Isa::NeonDot),
            "avx2" => Some(Isa::Avx2),
            "avx512" | "avx512-vnni" => Some(Isa::Avx512),
            _ => None,
        });
        match named {
            Some(i) if i.supported() => i,
            _ => {
                if let Some(name) = forced {
                    tracing::warn!(
                        "SHAMMIE_LOCAL_KERNEL={name} is not a kernel this CPU runs; using {}",
                        Isa::best().name()
                    );
                }
                Isa::best()
            }
        }
    })
}

/// How activations are quantized for a weight format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActFormat {
    /// Blocks of 32, for Q8_0 weights.
    Q8_0,
    /// Blocks of 256 with 32-value sub-block sums, for Q4_K weights.
    Q8K,
}

impl ActFormat {
    fn block(self) -> usize {
        match self {
            ActFormat::Q8_0 => QK8_0,
            ActFormat::Q8K => QK_K,
        }
    }
}

/// Rows of activations quantized for one weight format.
pub struct Acts {
    pub(crate) fmt: ActFormat,
    pub(crate) m: usize,
    pub(crate) k: usize,
    /// (m, k) values in [-127, 127].
    pub(crate) qs: Vec<i8>,
    /// One scale per block, row-major.
    pub(crate) d: Vec<f32>,
    /// Q8_0: per block, 128 × the sum of its values (VNNI multiplies unsigned weights
    /// `w + 128`, so this is subtracted). Q8K: per superblock, four words each holding the
    /// sums of sub-blocks 2p (low half) and 2p+1 (high half) as i16.
    pub(crate) sums: Vec<i32>,
}

impl Acts {
    /// Quantizes `x` (m rows of k, row-major); k must be a multiple of the format's block.
    pub fn quantize(x: &[f32], k: usize, fmt: ActFormat, isa: Isa) -> Acts {
        let threads = if x.len() >= 1 << 16 {
            crate::threads::count()
        } else {
            1
        };
        Self::quantize_on(x, k, fmt, isa, threads)
    }

    /// [`Acts::quantize`] on at most `threads` threads (1: on the calling thread only, for
    /// callers that already split their work between threads). The bytes do not depend on
    /// it.
    pub fn quantize_on(x: &[f32], k: usize, fmt: ActFormat, isa: Isa, threads: usize) -> Acts {
        let m = x.len() / k;
        let bl = fmt.block();
        assert!(
            k.is_multiple_of(bl) && m * k == x.len(),
            "{m}×{k} for blocks of {bl}"
        );
        let nb = k / bl;
        let per_block_sums = match fmt {
            ActFormat::Q8_0 => 1,
            ActFormat::Q8K => 4,
        };
        let mut a = Acts {
            fmt,
            m,
            k,
            qs: vec![0; m * k],
            d: vec![0.0; m * nb],
            sums: vec![0; m * nb * per_block_sums],
        };
        let quantize_rows = |x: &[f32], qs: &mut [i8], d: &mut [f32], sums: &mut [i32]| {
            for (((x, qs), d), sums) in x
                .chunks_exact(bl)
                .zip(qs.chunks_exact_mut(bl))
                .zip(d.iter_mut())
                .zip(sums.chunks_exact_mut(per_block_sums))
            {
                *d = quantize_block(x, qs, isa);
                match fmt {
                    ActFormat::Q8_0 => sums[0] = 128 * qs.iter().map(|&q| q as i32).sum::<i32>(),
                    ActFormat::Q8K => {
                        for (p, s) in sums.iter_mut().enumerate() {
                            let sub = |j: usize| -> i32 {
                                qs[j * 32..(j + 1) * 32].iter().map(|&q| q as i32).sum()
                            };
                            let (lo, hi) = (sub(2 * p), sub(2 * p + 1));
                            *s = (lo as i16 as u16 as u32 | ((hi as i16 as u16 as u32) << 16))
                                as i32;
                        }
                    }
                }
            }
        };
        if threads > 1 && m > 1 {
            let pool = crate::threads::pool();
            let threads = pool.current_num_threads().min(threads).min(m);
            let per = m.div_ceil(threads);
            pool.scope(|s| {
                let (mut x, mut qs, mut d, mut sums) =
                    (x, &mut a.qs[..], &mut a.d[..], &mut a.sums[..]);
                while !x.is_empty() {
                    let rows = per.min(x.len() / k);
                    let (x0, x1) = x.split_at(rows * k);
                    let (q0, q1) = std::mem::take(&mut qs).split_at_mut(rows * k);
                    let (d0, d1) = std::mem::take(&mut d).split_at_mut(rows * nb);
                    let (s0, s1) =
                        std::mem::take(&mut sums).split_at_mut(rows * nb * per_block_sums);
                    let q = &quantize_rows;
                    s.spawn(move |_| q(x0, q0, d0, s0));
                    (x, qs, d, sums) = (x1, q1, d1, s1);
                }
            });
        } else {
            quantize_rows(x, &mut a.qs, &mut a.d, &mut a.sums);
        }
        a
    }

    pub fn rows(&self) -> usize {
        self.m
    }

    pub fn format(&self) -> ActFormat {
        self.fmt
    }
}

/// Quantizes one block: scale amax/127, values round(x/scale) half to even, in
/// [-127, 127]. Returns the scale. Every kernel gives the same bytes (max, one division,
/// one reciprocal, products and rounding are exact IEEE operations).
fn quantize_block(x: &[f32], q: &mut [i8], isa: Isa) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if isa != Isa::Scalar {
        // SAFETY: every non-scalar kernel implies AVX2 (checked by `Isa::supported` when
        // the kernel was chosen).
        return unsafe { x86::quantize_block(x, q) };
    }
    let _ = isa;
    scalar::quantize_block(x, q)
}

/// A weight matrix repacked for these kernels.
pub struct QMatrix {
    /// Output columns (rows of the GGUF tensor).
    n: usize,
    /// Input length.
    k: usize,
    isa: Isa,
    w: Weights,
    /// Q5_0 weights also kept at 5 bits (AVX-512 only): products of at most `TILE_ROWS`
    /// rows (decoding), which are bound by reading the weights, read these; they give the
    /// same bits as the widened `w` (the same integers, scales and float operations).
    packed: Option<Q5Packed>,
}

/// Q5_0 values `q − 16` (q in 0..32) per panel and block: `nib` 4 vectors of 64 bytes, byte
/// (column c, value e) of vector v holding the low 4 bits of value 4v+e (low nibble) and of
/// value 4(v+4)+e (high nibble); `high` 8 masks (one per group of 4 values), bit 4c+e set
/// when value 4g+e of column c has its fifth bit. Scales are the widened matrix's.
pub(crate) struct Q5Packed {
    nib: Vec<u8>,
    high: Vec<u64>,
}

pub(crate) enum Weights {
    /// `qs`: per panel, per block of 32, 8 groups × 16 columns × 4 values (i8).
    /// `d`: per panel, per block, 16 scales (f16 bits, as in the GGUF: 2 bytes less per
    /// block to read than f32, converted exactly).
    Q8_0 { qs: Vec<i8>, d: Vec<u16> },
    /// Per panel and superblock of 256: `qs` 4 sub-block pairs × 8 groups × 16 columns ×
    /// 4 bytes, each byte holding a value of sub-block 2p (low nibble) and the same
    /// position of sub-block 2p+1 (high nibble); `sc` 8 sub-blocks × 16 columns (6-bit
    /// scales); `mins` 4 pairs × 16 columns, each word holding the minimums of sub-blocks
    /// 2p and 2p+1 as i16; `d`, `dmin` 16 each.
    Q4K {
        qs: Vec<u8>,
        sc: Vec<u8>,
        mins: Vec<u32>,
        d: Vec<f32>,
        dmin: Vec<f32>,
    },
}

impl QMatrix {
    /// Repacks a Q8_0 or Q4_K tensor of shape (n, k) on the CPU, or a Q5_0/Q4_0 one as the
    /// Q8_0 blocks of exactly its values; `None` for any other type.
    pub fn from_qtensor(t: &QTensor, isa: Isa) -> Option<QMatrix> {
        if !t.device().is_cpu() {
            return None;
        }
        let (n, k) = t.shape().dims2().ok()?;
        let data = t.data().ok()?;
        match t.dtype() {
            GgmlDType::Q8_0 if k % QK8_0 == 0 && data.len() == n * k / QK8_0 * 34 => {
                Some(Self::from_q8_0(&data, n, k, isa))
            }
            GgmlDType::Q4K if k % QK_K == 0 && data.len() == n * k / QK_K * 144 => {
                Some(Self::from_q4k(&data, n, k, isa))
            }
            // d·(q − 16) and d·(q − 8) are Q8_0 values exactly: widened, not re-rounded.
            GgmlDType::Q5_0 if k % QK8_0 == 0 && data.len() == n * k / QK8_0 * 22 => {
                let mut m = Self::from_q8_0(&widen_q5_0(&data), n, k, isa);
                if isa == Isa::Avx512 {
                    m.packed = Some(m.pack_q5());
                }
                Some(m)
            }
            GgmlDType::Q4_0 if k % QK8_0 == 0 && data.len() == n * k / QK8_0 * 18 => {
                Some(Self::from_q8_0(&widen_q4_0(&data), n, k, isa))
            }
            _ => None,
        }
    }

    fn panels(n: usize) -> usize {
        n.div_ceil(PANEL)
    }

    /// From GGUF Q8_0 blocks (34 bytes: f16 scale, 32 × i8), n rows of k.
    pub(crate) fn from_q8_0(data: &[u8], n: usize, k: usize, isa: Isa) -> QMatrix {
        let kb = k / QK8_0;
        let np = Self::panels(n);
        let mut qs = vec![0i8; np * kb * PANEL * QK8_0];
        let mut d = vec![0u16; np * kb * PANEL];
        for c in 0..n {
            let (p, cc) = (c / PANEL, c % PANEL);
            for b in 0..kb {
                let block = &data[(c * kb + b) * 34..][..34];
                d[(p * kb + b) * PANEL + cc] = u16::from_le_bytes([block[0], block[1]]);
                let base = (p * kb + b) * PANEL * QK8_0;
                for (i, &v) in block[2..].iter().enumerate() {
                    let (g, e) = (i / 4, i % 4);
                    qs[base + (g * PANEL + cc) * 4 + e] = v as i8;
                }
            }
        }
        QMatrix {
            n,
            k,
            isa,
            w: Weights::Q8_0 { qs, d },
            packed: None,
        }
    }

    /// From GGUF Q4_K blocks (144 bytes: f16 d, f16 dmin, 12 bytes of 6-bit scales and
    /// minimums, 128 bytes of 4-bit values; value `d·sc·q − dmin·m`), n rows of k.
    pub(crate) fn from_q4k(data: &[u8], n: usize, k: usize, isa: Isa) -> QMatrix {
        let ks = k / QK_K;
        let np = Self::panels(n);
        let mut qs = vec![0u8; np * ks * 4 * 8 * PANEL * 4];
        let mut sc = vec![0u8; np * ks * 8 * PANEL];
        let mut mins = vec![0u32; np * ks * 4 * PANEL];
        let mut d = vec![0f32; np * ks * PANEL];
        let mut dmin = vec![0f32; np * ks * PANEL];
        for c in 0..n {
            let (p, cc) = (c / PANEL, c % PANEL);
            for s in 0..ks {
                let block = &data[(c * ks + s) * 144..][..144];
                let ps = p * ks + s;
                d[ps * PANEL + cc] = half::f16::from_le_bytes([block[0], block[1]]).to_f32();
                dmin[ps * PANEL + cc] = half::f16::from_le_bytes([block[2], block[3]]).to_f32();
                let (scales, q) = (&block[4..16], &block[16..]);
                let mut m = [0u8; 8];
                for j in 0..8 {
                    let (s6, m6) = scale_min_k4(j, scales);
                    sc[(ps * 8 + j) * PANEL + cc] = s6;
                    m[j] = m6;
                }
                for pair in 0..4 {
                    mins[(ps * 4 + pair) * PANEL + cc] =
                        m[2 * pair] as u32 | (m[2 * pair + 1] as u32) << 16;
                    // Value i of sub-block 2·pair is the low nibble of q[32·pair + i], of
                    // sub-block 2·pair+1 the high nibble: the byte stays whole.
                    for i in 0..32 {
                        let (g, e) = (i / 4, i % 4);
                        qs[((ps * 4 + pair) * 8 + g) * PANEL * 4 + cc * 4 + e] = q[32 * pair + i];
                    }
                }
            }
        }
        QMatrix {
            n,
            k,
            isa,
            w: Weights::Q4K {
                qs,
                sc,
                mins,
                d,
                dmin,
            },
            packed: None,
        }
    }

    /// The 5-bit copy of a widened Q5_0 matrix (values `q − 16` in −16..16).
    fn pack_q5(&self) -> Q5Packed {
        let Weights::Q8_0 { qs, .. } = &self.w else {
            unreachable!("widened Q5_0 is Q8_0")
        };
        let blocks = qs.len() / (PANEL * QK8_0);
        let mut nib = vec![0u8; blocks * 4 * 64];
        let mut high = vec![0u64; blocks * 8];
        for pb in 0..blocks {
            let w = &qs[pb * PANEL * QK8_0..][..PANEL * QK8_0];
            for g in 0..8 {
                for i in 0..64 {
                    // Byte i of group g's vector: column i / 4, value 4g + i % 4.
                    let q = (w[g * 64 + i] as i32 + 16) as u8;
                    debug_assert!(q < 32);
                    let (v, shift) = (g % 4, 4 * (g / 4));
                    nib[(pb * 4 + v) * 64 + i] |= (q & 0xF) << shift;
                    high[pb * 8 + g] |= ((q >> 4) as u64 & 1) << i;
                }
            }
        }
        Q5Packed { nib, high }
    }

    /// (output columns, input length).
    pub fn dims(&self) -> (usize, usize) {
        (self.n, self.k)
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The activation format this matrix multiplies.
    pub fn act_format(&self) -> ActFormat {
        match self.w {
            Weights::Q8_0 { .. } => ActFormat::Q8_0,
            Weights::Q4K { .. } => ActFormat::Q8K,
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        match &self.w {
            Weights::Q8_0 { qs, d } => {
                qs.len()
                    + d.len() * 2
                    + self
                        .packed
                        .as_ref()
                        .map_or(0, |p| p.nib.len() + p.high.len() * 8)
            }
            Weights::Q4K {
                qs,
                sc,
                mins,
                d,
                dmin,
            } => qs.len() + sc.len() + mins.len() * 4 + (d.len() + dmin.len()) * 4,
        }
    }

    /// Row `c` of the weight (output column `c`), dequantized exactly as GGUF defines it.
    pub fn dequantize_row(&self, c: usize, out: &mut [f32]) {
        let (p, cc) = (c / PANEL, c % PANEL);
        match &self.w {
            Weights::Q8_0 { qs, d } => {
                let kb = self.k / QK8_0;
                for b in 0..kb {
                    let scale = half::f16::from_bits(d[(p * kb + b) * PANEL + cc]).to_f32();
                    let base = (p * kb + b) * PANEL * QK8_0;
                    for i in 0..QK8_0 {
                        let q = qs[base + ((i / 4) * PANEL + cc) * 4 + i % 4];
                        out[b * QK8_0 + i] = scale * q as f32;
                    }
                }
            }
            Weights::Q4K {
                qs,
                sc,
                mins,
                d,
                dmin,
            } => {
                let ks = self.k / QK_K;
                for s in 0..ks {
                    let ps = p * ks + s;
                    let (dd, dm) = (d[ps * PANEL + cc], dmin[ps * PANEL + cc]);
                    for j in 0..8 {
                        let (pair, hi) = (j / 2, j % 2);
                        let scale = dd * sc[(ps * 8 + j) * PANEL + cc] as f32;
                        let m = dm
                            * ((mins[(ps * 4 + pair) * PANEL + cc] >> (16 * hi)) & 0xffff) as f32;
                        for i in 0..32 {
                            let byte =
                                qs[((ps * 4 + pair) * 8 + i / 4) * PANEL * 4 + cc * 4 + i % 4];
                            let q = (byte >> (4 * hi)) & 0xF;
                            out[s * QK_K + j * 32 + i] = scale * q as f32 - m;
                        }
                    }
                }
            }
        }
    }

    /// The whole matrix dequantized, (n, k) row-major.
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.n * self.k];
        for (c, row) in out.chunks_exact_mut(self.k).enumerate() {
            self.dequantize_row(c, row);
        }
        out
    }

    /// `x` (m rows of k) → (m, n), row-major.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        let a = Acts::quantize(x, self.k, self.act_format(), self.isa);
        self.forward_acts(&a)
    }

    /// Products with activations already quantized (several matrices reading the same
    /// input quantize it once).
    pub fn forward_acts(&self, a: &Acts) -> Vec<f32> {
        let mut out = vec![0f32; a.m * self.n];
        let threads = if a.m * self.n * self.k >= PARALLEL_MACS {
            crate::threads::count()
        } else {
            1
        };
        self.forward_into(a, &mut out, threads);
        out
    }

    /// [`QMatrix::forward_acts`] into `out` ((m, n), row-major), on at most `threads`
    /// threads (1: on the calling thread only). The values do not depend on `threads`.
    ///
    /// # Panics
    /// When `out` does not hold m × n values.
    pub fn forward_into(&self, a: &Acts, out: &mut [f32], threads: usize) {
        assert_eq!(
            a.k, self.k,
            "activations of {} values for a matrix of {}",
            a.k, self.k
        );
        assert_eq!(a.fmt, self.act_format(), "activation format");
        assert_eq!(out.len(), a.m * self.n, "output of {} values", out.len());
        let np = Self::panels(self.n);
        let threads = threads.min(np).max(1);
        let dst = Dst(out.as_mut_ptr(), out.len());
        if threads <= 1 {
            self.panels_range(a, 0..np, &dst);
        } else {
            let pool = crate::threads::pool();
            pool.scope(|s| {
                for t in 1..threads {
                    let range = np * t / threads..np * (t + 1) / threads;
                    let dst = &dst;
                    s.spawn(move |_| self.panels_range(a, range, dst));
                }
                self.panels_range(a, 0..np / threads, &dst);
            });
        }
    }

    /// Computes panels `range` for every row into `dst`.
    fn panels_range(&self, a: &Acts, range: std::ops::Range<usize>, dst: &Dst) {
        for r0 in (0..a.m).step_by(ROW_CHUNK) {
            let r1 = (r0 + ROW_CHUNK).min(a.m);
            for p in range.clone() {
                let mut r = r0;
                while r < r1 {
                    let rows = (r1 - r).min(TILE_ROWS);
                    let mut tile: Out = [[0f32; PANEL]; TILE_ROWS];
                    self.tile(a, p, r, rows, &mut tile);
                    let c0 = p * PANEL;
                    let cols = PANEL.min(self.n - c0);
                    for (i, vals) in tile[..rows].iter().enumerate() {
                        // SAFETY: (row r+i, columns c0..c0+cols) lie inside the (m, n)
                        // output, and panel p is computed by this call only.
                        unsafe { dst.write((r + i) * self.n + c0, &vals[..cols]) };
                    }
                    r += rows;
                }
            }
        }
    }

    /// Rows `r..r+rows` (at most `TILE_ROWS`) against panel `p`.
    fn tile(&self, a: &Acts, p: usize, r: usize, rows: usize, out: &mut Out) {
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 if a.m <= TILE_ROWS && self.packed.is_some() => {
                let packed = self.packed.as_ref().expect("checked");
                x86::tile_q5(&self.w, packed, self.k, a, p, r, rows, out)
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 | Isa::Avx512 => {
                x86::tile(self.isa, &Tile::new(&self.w, self.k, a, p, r, rows), out)
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon | Isa::NeonDot => {
                arm::tile(self.isa, &Tile::new(&self.w, self.k, a, p, r, rows), out)
            }
            _ => scalar::tile(&self.w, self.k, a, p, r, rows, out),
        }
    }
}

/// One tile's output: up to `TILE_ROWS` rows of a panel's 16 columns.
pub(crate) type Out = [[f32; PANEL]; TILE_ROWS];

/// One tile's operands for the SIMD kernels, as pointers checked to cover the panel's
/// weights and the rows' activations. Rows past `rows` repeat the last one (the kernels
/// are compiled per row count and never store them).
#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code)
)]
pub(crate) enum Tile {
    Q8(Q8Tile),
    Q4(Q4Tile),
}

/// A Q8_0 tile.
pub(crate) struct Q8Tile {
    /// Per block: 8 groups × 16 columns × 4 values.
    pub(crate) wq: *const i8,
    /// Per block: 16 scales (f16).
    pub(crate) wd: *const u16,
    pub(crate) kb: usize,
    pub(crate) rows: usize,
    pub(crate) aq: [*const i8; TILE_ROWS],
    pub(crate) ad: [*const f32; TILE_ROWS],
    /// Per block: 128 × the sum of the row's values (for `vpdpbusd`'s unsigned weights).
    #[cfg_attr(target_arch = "aarch64", allow(dead_code))]
    pub(crate) asum: [*const i32; TILE_ROWS],
}

/// A Q4_K tile (the layout of `Weights::Q4K`, from the panel's first superblock).
pub(crate) struct Q4Tile {
    pub(crate) wq: *const u8,
    pub(crate) sc: *const u8,
    pub(crate) mins: *const u32,
    pub(crate) d: *const f32,
    pub(crate) dmin: *const f32,
    pub(crate) ks: usize,
    pub(crate) rows: usize,
    pub(crate) aq: [*const i8; TILE_ROWS],
    pub(crate) ad: [*const f32; TILE_ROWS],
    /// Per superblock: the four words of `Acts::sums`.
    pub(crate) asum: [*const i32; TILE_ROWS],
}

#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code)
)]
impl Tile {
    /// Rows `r..r+rows` of `a` against panel `p` of `w` (k inputs); panics unless the
    /// pointers it makes stay inside `w` and `a`.
    fn new(w: &Weights, k: usize, a: &Acts, p: usize, r: usize, rows: usize) -> Tile {
        assert!((1..=TILE_ROWS).contains(&rows) && r + rows <= a.m);
        let row = |i: usize| r + i.min(rows - 1);
        match w {
            Weights::Q8_0 { qs, d } => {
                let kb = k / QK8_0;
                assert!(
                    qs.len() >= (p + 1) * kb * PANEL * QK8_0 && d.len() >= (p + 1) * kb * PANEL
                );
                Tile::Q8(Q8Tile {
                    wq: qs[p * kb * PANEL * QK8_0..].as_ptr(),
                    wd: d[p * kb * PANEL..].as_ptr(),
                    kb,
                    rows,
                    aq: std::array::from_fn(|i| a.qs[row(i) * k..].as_ptr()),
                    ad: std::array::from_fn(|i| a.d[row(i) * kb..].as_ptr()),
                    asum: std::array::from_fn(|i| a.sums[row(i) * kb..].as_ptr()),
                })
            }
            Weights::Q4K {
                qs,
                sc,
                mins,
                d,
                dmin,
            } => {
                let ks = k / QK_K;
                let ps = p * ks;
                assert!(
                    qs.len() >= (ps + ks) * 4 * 8 * PANEL * 4
                        && sc.len() >= (ps + ks) * 8 * PANEL
                        && mins.len() >= (ps + ks) * 4 * PANEL
                        && d.len() >= (ps + ks) * PANEL
                        && dmin.len() >= (ps + ks) * PANEL
                );
                Tile::Q4(Q4Tile {
                    wq: qs[ps * 4 * 8 * PANEL * 4..].as_ptr(),
                    sc: sc[ps * 8 * PANEL..].as_ptr(),
                    mins: mins[ps * 4 * PANEL..].as_ptr(),
                    d: d[ps * PANEL..].as_ptr(),
                    dmin: dmin[ps * PANEL..].as_ptr(),
                    ks,
                    rows,
                    aq: std::array::from_fn(|i| a.qs[row(i) * k..].as_ptr()),
                    ad: std::array::from_fn(|i| a.d[row(i) * ks..].as_ptr()),
                    asum: std::array::from_fn(|i| a.sums[row(i) * ks * 4..].as_ptr()),
                })
            }
        }
    }
}

/// Calls the kernel `$f::<R>` compiled for the tile's row count.
#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(unused_macros)
)]
macro_rules! by_rows {
    ($rows:expr, $f:ident, $($arg:expr),*) => {
        match $rows {
            1 => $f::<1>($($arg),*),
            2 => $f::<2>($($arg),*),
            3 => $f::<3>($($arg),*),
            _ => $f::<4>($($arg),*),
        }
    };
}
#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(unused_imports)
)]
pub(crate) use by_rows;

/// The output buffer, written by several threads at disjoint places.
struct Dst(*mut f32, usize);

// SAFETY: threads write disjoint (row, column) ranges (see `panels_range`).
unsafe impl Sync for Dst {}

impl Dst {
    /// # Safety
    /// `at..at + vals.len()` is inside the buffer and written by no other thread.
    unsafe fn write(&self, at: usize, vals: &[f32]) {
        debug_assert!(at + vals.len() <= self.1);
        std::ptr::copy_nonoverlapping(vals.as_ptr(), self.0.add(at), vals.len());
    }
}

/// GGUF Q5_0 blocks (22 bytes: f16 scale, 32 high bits, 16 bytes of low nibbles; value j
/// is `d·(q_j − 16)`, q_j's low nibble in byte j mod 16, low half first) as Q8_0 blocks of
/// the same values.
fn widen_q5_0(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 22 * 34);
    for b in data.chunks_exact(22) {
        out.extend_from_slice(&b[..2]);
        let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
        for j in 0..32 {
            let nibble = if j < 16 {
                b[6 + j] & 0xF
            } else {
                b[6 + j - 16] >> 4
            };
            let q = nibble | (((qh >> j) & 1) as u8) << 4;
            out.push((q as i8 - 16) as u8);
        }
    }
    out
}

/// GGUF Q4_0 blocks (18 bytes: f16 scale, 16 bytes of nibbles; value `d·(q − 8)`) as Q8_0
/// blocks of the same values.
fn widen_q4_0(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 18 * 34);
    for b in data.chunks_exact(18) {
        out.extend_from_slice(&b[..2]);
        for j in 0..32 {
            let q = if j < 16 {
                b[2 + j] & 0xF
            } else {
                b[2 + j - 16] >> 4
            };
            out.push((q as i8 - 8) as u8);
        }
    }
    out
}

/// Q4_K's packing of sub-block `j`'s 6-bit scale and minimum (GGUF format).
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}
