//! The portable kernel, which is also the definition of every output value: the SIMD
//! kernels reproduce these operations bit for bit (their integer sums are exact, and
//! their float operations are these, in this order).

use super::{Acts, Weights, PANEL, QK8_0, QK_K, TILE_ROWS};

/// Scale amax/127; values round(x · (1/scale)) half to even, clamped to [-127, 127].
pub(super) fn quantize_block(x: &[f32], q: &mut [i8]) -> f32 {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    for (q, &v) in q.iter_mut().zip(x) {
        *q = (v * id).round_ties_even().clamp(-127.0, 127.0) as i8;
    }
    d
}

/// Rows `r..r+rows` of `a` against panel `p` of `w` (k inputs). The loops run over the
/// panel's layout in memory order (integer sums are exact in any order), so the compiler
/// can vectorize them; the float operations are the definition's.
pub(super) fn tile(
    w: &Weights,
    k: usize,
    a: &Acts,
    p: usize,
    r: usize,
    rows: usize,
    out: &mut [[f32; PANEL]; TILE_ROWS],
) {
    for (i, out) in out[..rows].iter_mut().enumerate() {
        *out = match w {
            Weights::Q8_0 { qs, d } => q8_0_row(qs, d, k, a, p, r + i),
            Weights::Q4K {
                qs,
                sc,
                mins,
                d,
                dmin,
            } => q4k_row(qs, sc, mins, d, dmin, k, a, p, r + i),
        };
    }
}

/// Per column, over blocks b in order: acc = fma(d_w[b] · d_a[b], isum_b, acc), where
/// isum_b is the exact integer dot product of the block's values.
fn q8_0_row(qs: &[i8], d: &[u16], k: usize, a: &Acts, p: usize, row: usize) -> [f32; PANEL] {
    let kb = k / QK8_0;
    let aq = &a.qs[row * k..][..k];
    let ad = &a.d[row * kb..][..kb];
    let mut acc = [0f32; PANEL];
    for b in 0..kb {
        let wb = &qs[(p * kb + b) * PANEL * QK8_0..][..PANEL * QK8_0];
        let ab = &aq[b * QK8_0..][..QK8_0];
        let mut isum = [0i32; PANEL];
        for g in 0..QK8_0 / 4 {
            for (c, s) in isum.iter_mut().enumerate() {
                for e in 0..4 {
                    *s += wb[(g * PANEL + c) * 4 + e] as i32 * ab[g * 4 + e] as i32;
                }
            }
        }
        let dw = &d[(p * kb + b) * PANEL..][..PANEL];
        for c in 0..PANEL {
            let dd = half::f16::from_bits(dw[c]).to_f32() * ad[b];
            acc[c] = dd.mul_add(isum[c] as f32, acc[c]);
        }
    }
    acc
}

/// Per column, per superblock s in order: S1 = Σ_j sc_j · (exact dot of sub-block j),
/// S2 = Σ_j m_j · (sum of the activations of sub-block j); acc = fma(d · d_a, S1, acc)
/// and accm = fma(dmin · d_a, S2, accm). The result is acc − accm.
#[allow(clippy::too_many_arguments)]
fn q4k_row(
    qs: &[u8],
    sc: &[u8],
    mins: &[u32],
    d: &[f32],
    dmin: &[f32],
    k: usize,
    a: &Acts,
    p: usize,
    row: usize,
) -> [f32; PANEL] {
    let ks = k / QK_K;
    let aq = &a.qs[row * k..][..k];
    let (mut acc, mut accm) = ([0f32; PANEL], [0f32; PANEL]);
    for s in 0..ks {
        let ps = p * ks + s;
        let mut s1 = [0i32; PANEL];
        let mut s2 = [0i32; PANEL];
        for pair in 0..4 {
            let wp = &qs[(ps * 4 + pair) * 8 * PANEL * 4..][..8 * PANEL * 4];
            for hi in 0..2 {
                let j = 2 * pair + hi;
                let ab = &aq[s * QK_K + j * 32..][..32];
                let mut isum = [0i32; PANEL];
                for g in 0..8 {
                    for (c, t) in isum.iter_mut().enumerate() {
                        for e in 0..4 {
                            let q = (wp[(g * PANEL + c) * 4 + e] >> (4 * hi)) & 0xF;
                            *t += q as i32 * ab[g * 4 + e] as i32;
                        }
                    }
                }
                let asum: i32 = ab.iter().map(|&v| v as i32).sum();
                for c in 0..PANEL {
                    s1[c] += sc[(ps * 8 + j) * PANEL + c] as i32 * isum[c];
                    let m = ((mins[(ps * 4 + pair) * PANEL + c] >> (16 * hi)) & 0xffff) as i32;
                    s2[c] += m * asum;
                }
            }
        }
        let da = a.d[row * ks + s];
        for c in 0..PANEL {
            acc[c] = (d[ps * PANEL + c] * da).mul_add(s1[c] as f32, acc[c]);
            accm[c] = (dmin[ps * PANEL + c] * da).mul_add(s2[c] as f32, accm[c]);
        }
    }
    std::array::from_fn(|c| acc[c] - accm[c])
}
