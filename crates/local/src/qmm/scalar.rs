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

/// Rows `r..r+rows` of `a` against panel `p` of `w` (k inputs).
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
        let row = r + i;
        for (c, o) in out.iter_mut().enumerate() {
            *o = match w {
                Weights::Q8_0 { qs, d } => q8_0_dot(qs, d, k, a, p, c, row),
                Weights::Q4K {
                    qs,
                    sc,
                    mins,
                    d,
                    dmin,
                } => q4k_dot(qs, sc, mins, d, dmin, k, a, p, c, row),
            };
        }
    }
}

/// Σ over blocks b, in order: acc = fma(d_a[b] · d_w[b], isum_b, acc), where isum_b is
/// the exact integer dot product of the block's values.
fn q8_0_dot(qs: &[i8], d: &[f32], k: usize, a: &Acts, p: usize, c: usize, row: usize) -> f32 {
    let kb = k / QK8_0;
    let aq = &a.qs[row * k..][..k];
    let ad = &a.d[row * kb..][..kb];
    let mut acc = 0f32;
    for b in 0..kb {
        let base = (p * kb + b) * PANEL * QK8_0;
        let mut isum = 0i32;
        for i in 0..QK8_0 {
            let wq = qs[base + ((i / 4) * PANEL + c) * 4 + i % 4];
            isum += wq as i32 * aq[b * QK8_0 + i] as i32;
        }
        let dd = d[(p * kb + b) * PANEL + c] * ad[b];
        acc = dd.mul_add(isum as f32, acc);
    }
    acc
}

/// Per superblock s, in order: S1 = Σ_j sc_j · (exact dot of sub-block j), S2 = Σ_j m_j ·
/// (sum of the activations of sub-block j); acc = fma(d_a · d, S1, acc) and
/// accm = fma(d_a · dmin, S2, accm). The result is acc − accm.
#[allow(clippy::too_many_arguments)]
fn q4k_dot(
    qs: &[u8],
    sc: &[u8],
    mins: &[u32],
    d: &[f32],
    dmin: &[f32],
    k: usize,
    a: &Acts,
    p: usize,
    c: usize,
    row: usize,
) -> f32 {
    let ks = k / QK_K;
    let aq = &a.qs[row * k..][..k];
    let (mut acc, mut accm) = (0f32, 0f32);
    for s in 0..ks {
        let ps = p * ks + s;
        let mut s1 = 0i32;
        let mut s2 = 0i32;
        for j in 0..8 {
            let (pair, hi) = (j / 2, j % 2);
            let mut isum = 0i32;
            let mut asum = 0i32;
            for i in 0..32 {
                let byte = qs[((ps * 4 + pair) * 8 + i / 4) * PANEL * 4 + c * 4 + i % 4];
                let q = ((byte >> (4 * hi)) & 0xF) as i32;
                let av = aq[s * QK_K + j * 32 + i] as i32;
                isum += q * av;
                asum += av;
            }
            s1 += sc[(ps * 8 + j) * PANEL + c] as i32 * isum;
            let m = ((mins[(ps * 4 + pair) * PANEL + c] >> (16 * hi)) & 0xffff) as i32;
            s2 += m * asum;
        }
        let da = a.d[row * ks + s];
        acc = (da * d[ps * PANEL + c]).mul_add(s1 as f32, acc);
        accm = (da * dmin[ps * PANEL + c]).mul_add(s2 as f32, accm);
    }
    acc - accm
}
