//! The AArch64 kernels: NEON, which every AArch64 CPU has, and NEON with the dot-product
//! extension (Armv8.2+, detected at run time). Both compute exactly the operations of
//! `scalar.rs` (integer sums are exact, whatever instructions form them; the float
//! operations per block and their order are the same), so they agree bit for bit with it.
//!
//! Per panel of 16 columns and block of 32 values, the weights are 8 groups of 64 bytes
//! (four values of each of 16 columns), i.e. per group four 16-byte vectors of four
//! columns each. Sixteen activation bytes (four groups) are loaded once; group g's four
//! bytes are lane g of that vector. With the extension one `sdot` by element adds the
//! four products of each column to its 32-bit lane; without it, `smull` + `smull2` form
//! the 16 products, `addp` sums pairs (at most 2·128·127, no overflow in 16 bits) and
//! `sadalp` adds the pairs of pairs to the columns' lanes. The kernels work on half a
//! panel (8 columns) at a time so that up to four rows' sums stay in the 32 registers.

// Loops over a tile's rows index several register arrays at once.
#![allow(clippy::needless_range_loop)]

use std::arch::aarch64::*;
use std::arch::asm;

use super::{by_rows, Isa, Out, Q4Tile, Q8Tile, Tile, PANEL, QK8_0, QK_K};

/// One tile with the kernel `isa` (NEON, with or without the dot product).
pub(super) fn tile(isa: Isa, t: &Tile, out: &mut Out) {
    // SAFETY: the tile's pointers cover the panel's and the rows' blocks (`Tile::new`);
    // `isa` was checked supported when the matrix was built.
    unsafe {
        match (t, isa) {
            (Tile::Q8(t), Isa::NeonDot) => by_rows!(t.rows, q8_0_dot, t, out),
            (Tile::Q8(t), _) => by_rows!(t.rows, q8_0_neon, t, out),
            (Tile::Q4(t), Isa::NeonDot) => by_rows!(t.rows, q4k_dot, t, out),
            (Tile::Q4(t), _) => by_rows!(t.rows, q4k_neon, t, out),
        }
    }
}

/// How the four products of a column are added to its lane.
trait Dot {
    /// `acc` plus, per 32-bit lane c, the dot product of bytes 4c..4c+4 of `w` with bytes
    /// 4L..4L+4 of `a` (signed).
    ///
    /// # Safety
    /// The CPU runs the implementation's instructions.
    unsafe fn lane<const L: i32>(acc: int32x4_t, w: int8x16_t, a: int8x16_t) -> int32x4_t;
}

/// `sdot` by element (the dot-product extension).
struct Sdot;

impl Dot for Sdot {
    #[inline(always)]
    unsafe fn lane<const L: i32>(mut acc: int32x4_t, w: int8x16_t, a: int8x16_t) -> int32x4_t {
        // `vdotq_laneq_s32` is not stable Rust yet; this is the instruction it names.
        asm!(
            "sdot {acc:v}.4s, {w:v}.16b, {a:v}.4b[{l}]",
            acc = inout(vreg) acc,
            w = in(vreg) w,
            a = in(vreg) a,
            l = const L,
            options(pure, nomem, nostack, preserves_flags),
        );
        acc
    }
}

/// Widening multiplies and pairwise adds (base NEON).
struct Widen;

impl Dot for Widen {
    #[inline(always)]
    unsafe fn lane<const L: i32>(acc: int32x4_t, w: int8x16_t, a: int8x16_t) -> int32x4_t {
        let a = vreinterpretq_s8_s32(vdupq_laneq_s32::<L>(vreinterpretq_s32_s8(a)));
        let lo = vmull_s8(vget_low_s8(w), vget_low_s8(a));
        let hi = vmull_high_s8(w, a);
        vpadalq_s16(acc, vpaddq_s16(lo, hi))
    }
}

/// Adds to `acc[q]` (columns 4q..4q+4 of the half panel) the products of the four groups
/// `w[l]` (l = 0..4) with the activation bytes of lanes l of `a`.
#[inline(always)]
unsafe fn groups<D: Dot>(acc: &mut [int32x4_t; 2], w: &[[int8x16_t; 2]; 4], a: int8x16_t) {
    for q in 0..2 {
        acc[q] = D::lane::<0>(acc[q], w[0][q], a);
        acc[q] = D::lane::<1>(acc[q], w[1][q], a);
        acc[q] = D::lane::<2>(acc[q], w[2][q], a);
        acc[q] = D::lane::<3>(acc[q], w[3][q], a);
    }
}

/// Four groups of half a panel: at `base`, group l's bytes for this half are at
/// `base + 64·l`, 32 of them (two vectors of four columns).
#[inline(always)]
unsafe fn load_groups(base: *const i8) -> [[int8x16_t; 2]; 4] {
    std::array::from_fn(|l| {
        let p = base.add(64 * l);
        [vld1q_s8(p), vld1q_s8(p.add(16))]
    })
}

#[target_feature(enable = "neon,dotprod")]
unsafe fn q8_0_dot<const R: usize>(t: &Q8Tile, out: &mut Out) {
    q8_0::<Sdot, R>(t, out)
}

#[target_feature(enable = "neon")]
unsafe fn q8_0_neon<const R: usize>(t: &Q8Tile, out: &mut Out) {
    q8_0::<Widen, R>(t, out)
}

/// Per column: acc = fma(d_w · d_a, isum, acc) per block, as `scalar::q8_0_row`.
#[inline(always)]
unsafe fn q8_0<D: Dot, const R: usize>(t: &Q8Tile, out: &mut Out) {
    for half in 0..2 {
        let mut acc = [[vdupq_n_f32(0.0); 2]; R];
        for b in 0..t.kb {
            let mut isum = [[vdupq_n_s32(0); 2]; R];
            for g4 in 0..2 {
                let w = load_groups(t.wq.add((b * 8 + 4 * g4) * 64 + half * 32));
                for i in 0..R {
                    let a = vld1q_s8(t.aq[i].add(b * QK8_0 + 16 * g4));
                    groups::<D>(&mut isum[i], &w, a);
                }
            }
            let dw: [float32x4_t; 2] = std::array::from_fn(|q| {
                let bits = vld1_u16(t.wd.add(b * PANEL + half * 8 + 4 * q));
                vcvt_f32_f16(vreinterpret_f16_u16(bits))
            });
            for i in 0..R {
                let da = vdupq_n_f32(*t.ad[i].add(b));
                for q in 0..2 {
                    let dd = vmulq_f32(dw[q], da);
                    acc[i][q] = vfmaq_f32(acc[i][q], dd, vcvtq_f32_s32(isum[i][q]));
                }
            }
        }
        for i in 0..R {
            for q in 0..2 {
                vst1q_f32(out[i].as_mut_ptr().add(half * 8 + 4 * q), acc[i][q]);
            }
        }
    }
}

#[target_feature(enable = "neon,dotprod")]
unsafe fn q4k_dot<const R: usize>(t: &Q4Tile, out: &mut Out) {
    q4k::<Sdot, R>(t, out)
}

#[target_feature(enable = "neon")]
unsafe fn q4k_neon<const R: usize>(t: &Q4Tile, out: &mut Out) {
    q4k::<Widen, R>(t, out)
}

/// Per column and superblock: S1 = Σ_j sc_j · dot_j, S2 = Σ_j m_j · Σa_j;
/// acc = fma(d · d_a, S1, acc), accm = fma(dmin · d_a, S2, accm); out = acc − accm, as
/// `scalar::q4k_row`.
#[inline(always)]
unsafe fn q4k<D: Dot, const R: usize>(t: &Q4Tile, out: &mut Out) {
    let low = vdupq_n_u8(0x0F);
    for half in 0..2 {
        let mut acc = [[vdupq_n_f32(0.0); 2]; R];
        let mut accm = [[vdupq_n_f32(0.0); 2]; R];
        for s in 0..t.ks {
            let mut s1 = [[vdupq_n_s32(0); 2]; R];
            for pair in 0..4 {
                // Sub-block 2·pair in the low nibbles, 2·pair + 1 in the high ones.
                let mut lo = [[vdupq_n_s32(0); 2]; R];
                let mut hi = [[vdupq_n_s32(0); 2]; R];
                for g4 in 0..2 {
                    let base = (t.wq as *const i8).add(((s * 4 + pair) * 8 + 4 * g4) * 64);
                    let w = load_groups(base.add(half * 32));
                    let nibbles = |shift: bool| -> [[int8x16_t; 2]; 4] {
                        std::array::from_fn(|l| {
                            std::array::from_fn(|q| {
                                let v = vreinterpretq_u8_s8(w[l][q]);
                                let v = if shift {
                                    vshrq_n_u8::<4>(v)
                                } else {
                                    vandq_u8(v, low)
                                };
                                vreinterpretq_s8_u8(v)
                            })
                        })
                    };
                    let (wl, wh) = (nibbles(false), nibbles(true));
                    for i in 0..R {
                        let a = t.aq[i].add(s * QK_K + 64 * pair + 16 * g4);
                        groups::<D>(&mut lo[i], &wl, vld1q_s8(a));
                        groups::<D>(&mut hi[i], &wh, vld1q_s8(a.add(32)));
                    }
                }
                let scale = |j: usize| -> [int32x4_t; 2] {
                    let v = vmovl_u8(vld1_u8(t.sc.add((s * 8 + j) * PANEL + half * 8)));
                    [
                        vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(v))),
                        vreinterpretq_s32_u32(vmovl_high_u16(v)),
                    ]
                };
                let (scl, sch) = (scale(2 * pair), scale(2 * pair + 1));
                for i in 0..R {
                    for q in 0..2 {
                        s1[i][q] = vmlaq_s32(s1[i][q], lo[i][q], scl[q]);
                        s1[i][q] = vmlaq_s32(s1[i][q], hi[i][q], sch[q]);
                    }
                }
            }
            // Minimums and activation sums are pairs of i16 per word (sub-blocks 2p, 2p+1).
            let mins: [[int16x8_t; 2]; 4] = std::array::from_fn(|pair| {
                std::array::from_fn(|q| {
                    let p = t.mins.add((s * 4 + pair) * PANEL + half * 8 + 4 * q);
                    vreinterpretq_s16_u32(vld1q_u32(p))
                })
            });
            let dw: [float32x4_t; 2] =
                std::array::from_fn(|q| vld1q_f32(t.d.add(s * PANEL + half * 8 + 4 * q)));
            let dm: [float32x4_t; 2] =
                std::array::from_fn(|q| vld1q_f32(t.dmin.add(s * PANEL + half * 8 + 4 * q)));
            for i in 0..R {
                let mut s2 = [vdupq_n_s32(0); 2];
                for pair in 0..4 {
                    let sums = vreinterpretq_s16_s32(vdupq_n_s32(*t.asum[i].add(s * 4 + pair)));
                    for q in 0..2 {
                        let m = mins[pair][q];
                        let p0 = vmull_s16(vget_low_s16(m), vget_low_s16(sums));
                        let p1 = vmull_high_s16(m, sums);
                        s2[q] = vaddq_s32(s2[q], vpaddq_s32(p0, p1));
                    }
                }
                let da = vdupq_n_f32(*t.ad[i].add(s));
                for q in 0..2 {
                    let f1 = vcvtq_f32_s32(s1[i][q]);
                    let f2 = vcvtq_f32_s32(s2[q]);
                    acc[i][q] = vfmaq_f32(acc[i][q], vmulq_f32(dw[q], da), f1);
                    accm[i][q] = vfmaq_f32(accm[i][q], vmulq_f32(dm[q], da), f2);
                }
            }
        }
        for i in 0..R {
            for q in 0..2 {
                let v = vsubq_f32(acc[i][q], accm[i][q]);
                vst1q_f32(out[i].as_mut_ptr().add(half * 8 + 4 * q), v);
            }
        }
    }
}
