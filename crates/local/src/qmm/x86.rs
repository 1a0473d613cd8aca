//! The x86-64 kernels: AVX2 + FMA, and AVX-512 F/BW + VNNI. Both compute exactly the
//! operations of `scalar.rs` (integer sums are exact, whatever instructions form them;
//! the float operations per block and their order are the same), so all three agree bit
//! for bit.
//!
//! Per panel of 16 columns and block of 32 values, the weights are 8 vectors of 64 bytes
//! (four values of each of the 16 columns), and the activation's matching four values are
//! broadcast to every 32-bit lane: one `vpdpbusd` (AVX-512) or `vpmaddubsw` + `vpmaddwd`
//! (AVX2, on 8 columns at a time) adds four products to each column's lane. A tile of up
//! to four rows shares each weight vector.

// Loops over a tile's rows index several register arrays at once.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use super::{
    by_rows, Acts, Isa, Out, Q4Tile, Q5Packed, Q8Tile, Tile, Weights, PANEL, QK8_0, QK_K, TILE_ROWS,
};

/// AVX2 version of `scalar::quantize_block` (same operations, so the same bytes).
///
/// # Safety
/// The CPU has AVX2; `x.len() == q.len()` and is a multiple of 32.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn quantize_block(x: &[f32], q: &mut [i8]) -> f32 {
    let n = x.len();
    debug_assert!(n.is_multiple_of(32) && q.len() == n);
    let xp = x.as_ptr();
    let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
    let mut mx = _mm256_setzero_ps();
    for i in (0..n).step_by(8) {
        mx = _mm256_max_ps(mx, _mm256_and_ps(abs_mask, _mm256_loadu_ps(xp.add(i))));
    }
    let m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    let m2 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    let m1 = _mm_max_ss(m2, _mm_movehdup_ps(m2));
    let amax = _mm_cvtss_f32(m1);
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let vid = _mm256_set1_ps(id);
    let (lo, hi) = (_mm256_set1_ps(-127.0), _mm256_set1_ps(127.0));
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    let qp = q.as_mut_ptr();
    for i in (0..n).step_by(32) {
        let conv = |j: usize| {
            let v = _mm256_mul_ps(_mm256_loadu_ps(xp.add(i + 8 * j)), vid);
            let r = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v);
            _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(r, lo), hi))
        };
        let ab = _mm256_packs_epi32(conv(0), conv(1));
        let cd = _mm256_packs_epi32(conv(2), conv(3));
        let bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd), order);
        _mm256_storeu_si256(qp.add(i) as *mut __m256i, bytes);
    }
    d
}

/// One tile with the kernel `isa` (AVX2 or AVX-512).
pub(super) fn tile(isa: Isa, t: &Tile, out: &mut Out) {
    // SAFETY: the tile's pointers cover the panel's and the rows' blocks (`Tile::new`);
    // `isa` was checked supported when the matrix was built.
    unsafe {
        match (t, isa) {
            (Tile::Q8(t), Isa::Avx512) => by_rows!(t.rows, q8_0_avx512, t, out),
            (Tile::Q8(t), _) => by_rows!(t.rows, q8_0_avx2, t, out),
            (Tile::Q4(t), Isa::Avx512) => by_rows!(t.rows, q4k_avx512, t, out),
            (Tile::Q4(t), _) => by_rows!(t.rows, q4k_avx2, t, out),
        }
    }
}

/// `tile` for a Q5_0 matrix read from its 5-bit copy (AVX-512): the same integers and
/// float operations as the widened Q8_0 kernel, so the same bits.
#[allow(clippy::too_many_arguments)]
pub(super) fn tile_q5(
    w: &Weights,
    packed: &Q5Packed,
    k: usize,
    a: &Acts,
    p: usize,
    r: usize,
    rows: usize,
    out: &mut Out,
) {
    let Weights::Q8_0 { d, .. } = w else {
        unreachable!("a packed matrix is widened Q5_0")
    };
    let kb = k / QK8_0;
    assert!((1..=TILE_ROWS).contains(&rows) && r + rows <= a.m);
    assert!(packed.nib.len() >= (p + 1) * kb * 256 && packed.high.len() >= (p + 1) * kb * 8);
    assert!(d.len() >= (p + 1) * kb * PANEL);
    let t = Q5Tile {
        nib: packed.nib[p * kb * 256..].as_ptr(),
        high: packed.high[p * kb * 8..].as_ptr(),
        wd: d[p * kb * PANEL..].as_ptr(),
        kb,
        aq: std::array::from_fn(|i| a.qs[(r + i.min(rows - 1)) * k..].as_ptr()),
        ad: std::array::from_fn(|i| a.d[(r + i.min(rows - 1)) * kb..].as_ptr()),
        asum: std::array::from_fn(|i| a.sums[(r + i.min(rows - 1)) * kb..].as_ptr()),
    };
    // SAFETY: the pointers cover the panel's blocks and the rows' blocks (asserted above);
    // the matrix has a packed copy only when its kernel is AVX-512, which the CPU runs.
    unsafe {
        match rows {
            1 => q5_avx512::<1>(&t, out),
            2 => q5_avx512::<2>(&t, out),
            3 => q5_avx512::<3>(&t, out),
            _ => q5_avx512::<4>(&t, out),
        }
    }
}

struct Q5Tile {
    nib: *const u8,
    high: *const u64,
    wd: *const u16,
    kb: usize,
    aq: [*const i8; TILE_ROWS],
    ad: [*const f32; TILE_ROWS],
    asum: [*const i32; TILE_ROWS],
}

/// The four activation bytes at `p`, as one 32-bit word.
#[inline(always)]
unsafe fn word(p: *const i8) -> i32 {
    (p as *const i32).read_unaligned()
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
unsafe fn q5_avx512<const R: usize>(t: &Q5Tile, out: &mut Out) {
    // Unsigned q = value + 16 in 0..32 times signed activations, then 16 × Σa taken off
    // (the activation sums are stored as 128 × Σa, so shifted right by 3, exactly).
    let low = _mm512_set1_epi8(0x0F);
    let bit = _mm512_set1_epi8(16);
    let mut acc = [_mm512_setzero_ps(); R];
    for b in 0..t.kb {
        let mut isum = [_mm512_setzero_si512(); R];
        for v in 0..4 {
            let wv = _mm512_loadu_si512(t.nib.add((b * 4 + v) * 64) as *const _);
            let lo = _mm512_and_si512(wv, low);
            let hi = _mm512_and_si512(_mm512_srli_epi16(wv, 4), low);
            let lo = _mm512_mask_add_epi8(lo, *t.high.add(b * 8 + v), lo, bit);
            let hi = _mm512_mask_add_epi8(hi, *t.high.add(b * 8 + v + 4), hi, bit);
            for i in 0..R {
                let al = _mm512_set1_epi32(word(t.aq[i].add(b * QK8_0 + 4 * v)));
                let ah = _mm512_set1_epi32(word(t.aq[i].add(b * QK8_0 + 4 * (v + 4))));
                isum[i] = _mm512_dpbusd_epi32(isum[i], lo, al);
                isum[i] = _mm512_dpbusd_epi32(isum[i], hi, ah);
            }
        }
        let dw = _mm512_cvtph_ps(_mm256_loadu_si256(t.wd.add(b * PANEL) as *const _));
        for i in 0..R {
            let exact = _mm512_sub_epi32(isum[i], _mm512_set1_epi32(*t.asum[i].add(b) >> 3));
            let dd = _mm512_mul_ps(dw, _mm512_set1_ps(*t.ad[i].add(b)));
            acc[i] = _mm512_fmadd_ps(dd, _mm512_cvtepi32_ps(exact), acc[i]);
        }
    }
    for i in 0..R {
        _mm512_storeu_ps(out[i].as_mut_ptr(), acc[i]);
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
unsafe fn q8_0_avx512<const R: usize>(t: &Q8Tile, out: &mut Out) {
    // vpdpbusd multiplies unsigned by signed bytes: weights are shifted to w + 128, and
    // 128 × Σa (precomputed per block) is taken off the exact sum afterwards.
    let flip = _mm512_set1_epi8(-128);
    let mut acc = [_mm512_setzero_ps(); R];
    for b in 0..t.kb {
        let mut isum = [_mm512_setzero_si512(); R];
        for g in 0..8 {
            let w = _mm512_xor_si512(
                _mm512_loadu_si512(t.wq.add((b * 8 + g) * 64) as *const _),
                flip,
            );
            for i in 0..R {
                let av = _mm512_set1_epi32(word(t.aq[i].add(b * QK8_0 + 4 * g)));
                isum[i] = _mm512_dpbusd_epi32(isum[i], w, av);
            }
        }
        let dw = _mm512_cvtph_ps(_mm256_loadu_si256(t.wd.add(b * PANEL) as *const _));
        for i in 0..R {
            let exact = _mm512_sub_epi32(isum[i], _mm512_set1_epi32(*t.asum[i].add(b)));
            let dd = _mm512_mul_ps(dw, _mm512_set1_ps(*t.ad[i].add(b)));
            acc[i] = _mm512_fmadd_ps(dd, _mm512_cvtepi32_ps(exact), acc[i]);
        }
    }
    for i in 0..R {
        _mm512_storeu_ps(out[i].as_mut_ptr(), acc[i]);
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q8_0_avx2<const R: usize>(t: &Q8Tile, out: &mut Out) {
    let ones = _mm256_set1_epi16(1);
    for half in 0..2 {
        let mut acc = [_mm256_setzero_ps(); R];
        for b in 0..t.kb {
            let mut isum = [_mm256_setzero_si256(); R];
            for g in 0..8 {
                let w = _mm256_loadu_si256(t.wq.add((b * 8 + g) * 64 + half * 32) as *const _);
                // |w| · (a with w's sign): unsigned × signed bytes, pairs summed to i16
                // (at most 2·128·127, no saturation), then pairs to i32.
                let aw = _mm256_sign_epi8(w, w);
                for i in 0..R {
                    let av = _mm256_set1_epi32(word(t.aq[i].add(b * QK8_0 + 4 * g)));
                    let p = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(av, w));
                    isum[i] = _mm256_add_epi32(isum[i], _mm256_madd_epi16(p, ones));
                }
            }
            let dw = _mm256_cvtph_ps(_mm_loadu_si128(t.wd.add(b * PANEL + half * 8) as *const _));
            for i in 0..R {
                let dd = _mm256_mul_ps(dw, _mm256_set1_ps(*t.ad[i].add(b)));
                acc[i] = _mm256_fmadd_ps(dd, _mm256_cvtepi32_ps(isum[i]), acc[i]);
            }
        }
        for i in 0..R {
            _mm256_storeu_ps(out[i].as_mut_ptr().add(half * 8), acc[i]);
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
unsafe fn q4k_avx512<const R: usize>(t: &Q4Tile, out: &mut Out) {
    let low = _mm512_set1_epi8(0x0F);
    let mut acc = [_mm512_setzero_ps(); R];
    let mut accm = [_mm512_setzero_ps(); R];
    for s in 0..t.ks {
        let mut s1 = [_mm512_setzero_si512(); R];
        for pair in 0..4 {
            // i16 sums of unsigned 4-bit × signed 8-bit pairs over the 8 groups of a
            // sub-block: at most 8·2·15·127 = 30480, no overflow.
            let mut lo = [_mm512_setzero_si512(); R];
            let mut hi = [_mm512_setzero_si512(); R];
            for g in 0..8 {
                let wv = _mm512_loadu_si512(t.wq.add(((s * 4 + pair) * 8 + g) * 64) as *const _);
                let wl = _mm512_and_si512(wv, low);
                let wh = _mm512_and_si512(_mm512_srli_epi16(wv, 4), low);
                for i in 0..R {
                    let base = t.aq[i].add(s * QK_K + 4 * g);
                    let al = _mm512_set1_epi32(word(base.add(64 * pair)));
                    let ah = _mm512_set1_epi32(word(base.add(64 * pair + 32)));
                    lo[i] = _mm512_add_epi16(lo[i], _mm512_maddubs_epi16(wl, al));
                    hi[i] = _mm512_add_epi16(hi[i], _mm512_maddubs_epi16(wh, ah));
                }
            }
            // Each column's scale in both i16 halves of its lane: vpdpwssd then adds
            // sc · (sum of the lane's two i16).
            let scale = |j: usize| {
                let v = _mm512_cvtepu8_epi32(_mm_loadu_si128(
                    t.sc.add((s * 8 + j) * PANEL) as *const _
                ));
                _mm512_or_si512(v, _mm512_slli_epi32(v, 16))
            };
            let (scl, sch) = (scale(2 * pair), scale(2 * pair + 1));
            for i in 0..R {
                s1[i] = _mm512_dpwssd_epi32(s1[i], lo[i], scl);
                s1[i] = _mm512_dpwssd_epi32(s1[i], hi[i], sch);
            }
        }
        let mins: [__m512i; 4] = std::array::from_fn(|pair| {
            _mm512_loadu_si512(t.mins.add((s * 4 + pair) * PANEL) as *const _)
        });
        let dw = _mm512_loadu_ps(t.d.add(s * PANEL));
        let dm = _mm512_loadu_ps(t.dmin.add(s * PANEL));
        for i in 0..R {
            let mut s2 = _mm512_setzero_si512();
            for (pair, m) in mins.iter().enumerate() {
                let sums = _mm512_set1_epi32(*t.asum[i].add(s * 4 + pair));
                s2 = _mm512_add_epi32(s2, _mm512_madd_epi16(*m, sums));
            }
            let da = _mm512_set1_ps(*t.ad[i].add(s));
            acc[i] = _mm512_fmadd_ps(_mm512_mul_ps(dw, da), _mm512_cvtepi32_ps(s1[i]), acc[i]);
            accm[i] = _mm512_fmadd_ps(_mm512_mul_ps(dm, da), _mm512_cvtepi32_ps(s2), accm[i]);
        }
    }
    for i in 0..R {
        _mm512_storeu_ps(out[i].as_mut_ptr(), _mm512_sub_ps(acc[i], accm[i]));
    }
}

#[target_feature(enable = "avx2,fma")]
unsafe fn q4k_avx2<const R: usize>(t: &Q4Tile, out: &mut Out) {
    let low = _mm256_set1_epi8(0x0F);
    for half in 0..2 {
        let mut acc = [_mm256_setzero_ps(); R];
        let mut accm = [_mm256_setzero_ps(); R];
        for s in 0..t.ks {
            let mut s1 = [_mm256_setzero_si256(); R];
            for j in 0..8 {
                let (pair, shift) = (j / 2, (j % 2) as i32 * 4);
                let mut sub = [_mm256_setzero_si256(); R];
                for g in 0..8 {
                    let wv = _mm256_loadu_si256(
                        t.wq.add(((s * 4 + pair) * 8 + g) * 64 + half * 32) as *const _,
                    );
                    let wq = _mm256_and_si256(_mm256_srl_epi16(wv, _mm_cvtsi32_si128(shift)), low);
                    for i in 0..R {
                        let av = _mm256_set1_epi32(word(t.aq[i].add(s * QK_K + 32 * j + 4 * g)));
                        sub[i] = _mm256_add_epi16(sub[i], _mm256_maddubs_epi16(wq, av));
                    }
                }
                let v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(
                    t.sc.add((s * 8 + j) * PANEL + half * 8) as *const _,
                ));
                let scale = _mm256_or_si256(v, _mm256_slli_epi32(v, 16));
                for i in 0..R {
                    s1[i] = _mm256_add_epi32(s1[i], _mm256_madd_epi16(sub[i], scale));
                }
            }
            let dw = _mm256_loadu_ps(t.d.add(s * PANEL + half * 8));
            let dm = _mm256_loadu_ps(t.dmin.add(s * PANEL + half * 8));
            for i in 0..R {
                let mut s2 = _mm256_setzero_si256();
                for pair in 0..4 {
                    let m = _mm256_loadu_si256(
                        t.mins.add((s * 4 + pair) * PANEL + half * 8) as *const _
                    );
                    let sums = _mm256_set1_epi32(*t.asum[i].add(s * 4 + pair));
                    s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(m, sums));
                }
                let da = _mm256_set1_ps(*t.ad[i].add(s));
                acc[i] = _mm256_fmadd_ps(_mm256_mul_ps(dw, da), _mm256_cvtepi32_ps(s1[i]), acc[i]);
                accm[i] = _mm256_fmadd_ps(_mm256_mul_ps(dm, da), _mm256_cvtepi32_ps(s2), accm[i]);
            }
        }
        for i in 0..R {
            _mm256_storeu_ps(
                out[i].as_mut_ptr().add(half * 8),
                _mm256_sub_ps(acc[i], accm[i]),
            );
        }
    }
}
