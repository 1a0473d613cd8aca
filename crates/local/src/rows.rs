//! Row-wise operations of the inference path on the CPU: RMSNorm, the gated activations
//! (GELU with the tanh approximation, SiLU) and the exponential they and attention use.
//!
//! Every value is a fixed sequence of IEEE operations (`mul_add` is always fused) written
//! as plain loops; `vectorized` compiles them for the process's kernel ISA, where the
//! compiler turns the loops into vector code without reordering any float operation (it
//! never reassociates). So a value is the same bits on every kernel, in every batch, on
//! any number of threads.

use candle_core::{Device, Tensor};

use crate::qmm;

/// Defines `$name(isa, args…)`, which runs the `#[inline(always)]` function `$body` compiled
/// for `isa` (AVX-512 or AVX2 with FMA), so its plain loops vectorize; the portable build
/// otherwise (on AArch64 that is NEON, which the target always has). Every build performs
/// the same float operations in the same order. Exported (`shammie_local::vectorized!`) for
/// the other CPU kernels of the workspace (the sentence encoder's).
#[macro_export]
macro_rules! vectorized {
    ($vis:vis fn $name:ident($($arg:ident: $ty:ty),*) => $body:path) => {
        #[allow(clippy::too_many_arguments)]
        $vis fn $name(isa: $crate::qmm::Isa, $($arg: $ty),*) {
            assert!(isa.supported(), "{} is not supported here", isa.name());
            #[cfg(target_arch = "x86_64")]
            {
                #[allow(clippy::too_many_arguments)]
                #[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
                unsafe fn avx512($($arg: $ty),*) {
                    $body($($arg),*)
                }
                #[allow(clippy::too_many_arguments)]
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) {
                    $body($($arg),*)
                }
                match isa {
                    // SAFETY: the CPU supports `isa` (asserted above).
                    $crate::qmm::Isa::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: as above.
                    $crate::qmm::Isa::Avx2 => return unsafe { avx2($($arg),*) },
                    _ => {}
                }
            }
            $body($($arg),*)
        }
    };
}
pub use vectorized;

/// e^x for x ≤ 88 (larger x gives e^88): range reduction by powers of two and a degree-6
/// polynomial (Cephes' coefficients), about 1 ulp; 0 below −87.3.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.336_54, 88.0);
    let n = (x * std::f32::consts::LOG2_E).round_ties_even();
    let r = n.mul_add(-0.693_359_4, x);
    let r = n.mul_add(2.121_944_4e-4, r);
    let mut p = 1.987_569_1e-4f32;
    p = p.mul_add(r, 1.398_199_9e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 0.5);
    let y = p.mul_add(r * r, r) + 1.0;
    f32::from_bits(((n as i32 + 127) << 23) as u32) * y
}

/// GELU, tanh approximation: 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))) = x / (1 + e^(−2y)).
#[inline(always)]
fn gelu(x: f32) -> f32 {
    const C: f32 = 0.797_884_6; // √(2/π)
    let y = C * (0.044_715 * x * x).mul_add(x, x);
    x / (1.0 + exp(-2.0 * y))
}

#[inline(always)]
fn silu(x: f32) -> f32 {
    x / (1.0 + exp(-x))
}

/// Inputs at least this large are split between threads.
const PARALLEL_ELEMS: usize = 1 << 16;

/// Runs `f(first_row, rows)` over `out` in chunks of whole rows of `row` elements, split
/// between threads for large inputs (each row is computed the same way on any thread).
fn rowwise(out: &mut [f32], row: usize, f: &(dyn Fn(usize, &mut [f32]) + Sync)) {
    let rows = out.len() / row.max(1);
    let threads = if out.len() >= PARALLEL_ELEMS {
        crate::threads::count().min(rows)
    } else {
        1
    };
    if threads <= 1 {
        return f(0, out);
    }
    let per = rows.div_ceil(threads);
    crate::threads::pool().scope(|s| {
        for (i, chunk) in out.chunks_mut(per * row).enumerate() {
            s.spawn(move |_| f(i * per, chunk));
        }
    });
}

fn data(x: &Tensor) -> candle_core::Result<Vec<f32>> {
    x.to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()
}

/// Calls `f` with `x`'s values in row-major order: in place when `x` is a contiguous f32
/// tensor on the CPU (no copy), else from a copy. `f` must not write to `x`.
pub(crate) fn with_values<R>(
    x: &Tensor,
    f: impl FnOnce(&[f32]) -> candle_core::Result<R>,
) -> candle_core::Result<R> {
    if x.dtype() == candle_core::DType::F32 && x.is_contiguous() {
        let (storage, layout) = x.storage_and_layout();
        if let (candle_core::Storage::Cpu(cpu), Some((a, b))) =
            (&*storage, layout.contiguous_offsets())
        {
            return f(&cpu.as_slice::<f32>()?[a..b]);
        }
    }
    f(&data(x)?)
}

#[inline(always)]
fn gelu_mul_body(g: &mut [f32], u: &[f32]) {
    for (g, &u) in g.iter_mut().zip(u) {
        *g = gelu(*g) * u;
    }
}

#[inline(always)]
fn silu_mul_body(g: &mut [f32], u: &[f32]) {
    for (g, &u) in g.iter_mut().zip(u) {
        *g = silu(*g) * u;
    }
}

vectorized!(fn gelu_mul_rows(g: &mut [f32], u: &[f32]) => gelu_mul_body);
vectorized!(fn silu_mul_rows(g: &mut [f32], u: &[f32]) => silu_mul_body);

/// `act(g) · u` elementwise for the gated MLPs.
fn gated(g: &Tensor, u: &Tensor, gelu: bool) -> candle_core::Result<Tensor> {
    if g.dims() != u.dims() {
        candle_core::bail!("gated activation: {:?} and {:?}", g.shape(), u.shape());
    }
    let mut out = data(g)?;
    let row = *g.dims().last().unwrap_or(&1);
    let isa = qmm::isa();
    with_values(u, |u| {
        rowwise(&mut out, row, &|r0, chunk| {
            let u = &u[r0 * row..][..chunk.len()];
            if gelu {
                gelu_mul_rows(isa, chunk, u)
            } else {
                silu_mul_rows(isa, chunk, u)
            }
        });
        Ok(())
    })?;
    Tensor::from_vec(out, g.shape(), &Device::Cpu)
}

/// GELU(g) · u (Gemma 3's MLP).
pub(crate) fn gelu_mul(g: &Tensor, u: &Tensor) -> candle_core::Result<Tensor> {
    if !g.device().is_cpu() {
        return g.gelu()?.mul(u);
    }
    gated(g, u, true)
}

/// SiLU(g) · u (Llama's and Qwen2's MLP).
pub(crate) fn silu_mul(g: &Tensor, u: &Tensor) -> candle_core::Result<Tensor> {
    if !g.device().is_cpu() {
        return g.silu()?.mul(u);
    }
    gated(g, u, false)
}

#[inline(always)]
fn add_body(x: &mut [f32], y: &[f32]) {
    for (x, y) in x.iter_mut().zip(y) {
        *x += y;
    }
}

vectorized!(fn add_rows(x: &mut [f32], y: &[f32]) => add_body);

/// `x + y` elementwise (the residual stream).
pub(crate) fn add(x: &Tensor, y: &Tensor) -> candle_core::Result<Tensor> {
    if !x.device().is_cpu() || x.dims() != y.dims() {
        return x + y;
    }
    let mut out = data(x)?;
    let row = *x.dims().last().unwrap_or(&1);
    let isa = qmm::isa();
    with_values(y, |y| {
        rowwise(&mut out, row, &|r0, chunk| {
            add_rows(isa, chunk, &y[r0 * row..][..chunk.len()])
        });
        Ok(())
    })?;
    Tensor::from_vec(out, x.shape(), &Device::Cpu)
}

/// `y + b` with `b` added to every row (Qwen2's q/k/v biases).
pub(crate) fn add_bias(y: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    let row = *y.dims().last().unwrap_or(&1);
    if !y.device().is_cpu() || b.elem_count() != row {
        return y.broadcast_add(b);
    }
    let mut out = data(y)?;
    let isa = qmm::isa();
    with_values(b, |b| {
        rowwise(&mut out, row, &|_, chunk| {
            for r in chunk.chunks_exact_mut(row) {
                add_rows(isa, r, b)
            }
        });
        Ok(())
    })?;
    Tensor::from_vec(out, y.shape(), &Device::Cpu)
}

/// `x + rms_norm(y, w)` (Gemma 3's post-norms before the residual add): the same values as
/// the two operations apart.
pub(crate) fn add_rms_norm(
    x: &Tensor,
    y: &Tensor,
    w: &Tensor,
    eps: f64,
) -> candle_core::Result<Tensor> {
    if !x.device().is_cpu() {
        return x + crate::ops::rms_norm(y, w, eps)?;
    }
    add(x, &rms_norm(y, w, eps)?)
}

#[inline(always)]
fn rope_body(x: &mut [f32], cos: &[f32], sin: &[f32], t: usize, pairs: bool) {
    let half = cos.len() / t;
    let d = 2 * half;
    for (n, head_row) in x.chunks_exact_mut(d).enumerate() {
        let i = n % t;
        let (c, s) = (&cos[i * half..][..half], &sin[i * half..][..half]);
        if pairs {
            for (j, p) in head_row.chunks_exact_mut(2).enumerate() {
                let (x0, x1) = (p[0], p[1]);
                p[0] = x0 * c[j] - x1 * s[j];
                p[1] = x0 * s[j] + x1 * c[j];
            }
        } else {
            let (a, b) = head_row.split_at_mut(half);
            for j in 0..half {
                let (x1, x2) = (a[j], b[j]);
                a[j] = x1 * c[j] - x2 * s[j];
                b[j] = x2 * c[j] + x1 * s[j];
            }
        }
    }
}

vectorized!(fn rope_rows(x: &mut [f32], cos: &[f32], sin: &[f32], t: usize, pairs: bool) => rope_body);

/// Rotary embedding of `x` (…, t, head_dim) with tables (t, head_dim/2): NeoX layout (the
/// two halves of each head rotated against each other) or, with `pairs`, adjacent pairs;
/// the operations of `ops::rope` / `ops::rope_pairs`.
pub(crate) fn rope(
    x: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    pairs: bool,
) -> candle_core::Result<Tensor> {
    if !x.device().is_cpu() {
        return if pairs {
            crate::ops::rope_pairs(x, cos, sin)
        } else {
            crate::ops::rope(x, cos, sin)
        };
    }
    let dims = x.dims();
    let (t, d) = (dims[dims.len() - 2], dims[dims.len() - 1]);
    if cos.dims() != [t, d / 2] || sin.dims() != [t, d / 2] || d % 2 != 0 {
        candle_core::bail!("rope: {:?} with tables {:?}", x.shape(), cos.shape());
    }
    let mut out = data(x)?;
    let isa = qmm::isa();
    with_values(cos, |c| {
        with_values(sin, |s| {
            // Whole (head, position) rows of d, in chunks of whole heads of t rows.
            rowwise(&mut out, t * d, &|_, chunk| {
                rope_rows(isa, chunk, c, s, t, pairs)
            });
            Ok(())
        })
    })?;
    Tensor::from_vec(out, x.shape(), &Device::Cpu)
}

/// Σ x² of one row in a fixed order: 16 running lane sums, then a fixed pairwise
/// reduction, then the tail.
#[inline(always)]
fn sum_squares(x: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let split = x.len() / 16 * 16;
    for c in x[..split].chunks_exact(16) {
        for l in 0..16 {
            acc[l] = c[l].mul_add(c[l], acc[l]);
        }
    }
    let mut w = 16;
    while w > 1 {
        w /= 2;
        for l in 0..w {
            acc[l] += acc[l + w];
        }
    }
    x[split..].iter().fold(acc[0], |s, v| v.mul_add(*v, s))
}

/// RMSNorm over the last dimension: x · (1/√(mean(x²) + eps)) · w, `w` already holding
/// Gemma's `1 +` where the family has one.
pub(crate) fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    if !x.device().is_cpu() {
        return crate::ops::rms_norm(x, w, eps);
    }
    let w = data(w)?;
    let row = w.len();
    if x.dims().last() != Some(&row) {
        candle_core::bail!("rms_norm: {:?} against a weight of {row}", x.shape());
    }
    let mut out = data(x)?;
    let isa = qmm::isa();
    rowwise(&mut out, row, &|_, chunk| {
        rms_rows(isa, chunk, &w, eps as f32)
    });
    Tensor::from_vec(out, x.shape(), &Device::Cpu)
}

#[inline(always)]
fn rms_body(x: &mut [f32], w: &[f32], eps: f32) {
    let row = w.len();
    for r in x.chunks_exact_mut(row) {
        let inv = 1.0 / (sum_squares(r) / row as f32 + eps).sqrt();
        for (v, w) in r.iter_mut().zip(w) {
            *v = *v * inv * w;
        }
    }
}

vectorized!(fn rms_rows(x: &mut [f32], w: &[f32], eps: f32) => rms_body);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qmm::Isa;

    fn values(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 % 2003) as f32 / 2003.0 - 0.5) * 24.0)
            .collect()
    }

    #[test]
    fn exp_is_accurate() {
        for i in 0..20_000 {
            let x = -87.0 + i as f32 * (87.0 + 88.0) / 20_000.0;
            let (ours, libm) = (exp(x) as f64, (x as f64).exp());
            assert!(
                (ours - libm).abs() <= 3e-7 * libm,
                "exp({x}) = {ours}, not {libm}"
            );
        }
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-200.0), exp(-87.336_54));
        assert!(exp(-200.0) < 1.2e-38);
    }

    #[test]
    fn the_activations_and_the_norm_match_candle() {
        let dev = Device::Cpu;
        let (m, k) = (9, 640);
        let g = Tensor::from_vec(values(m * k), (m, k), &dev).unwrap();
        let u = Tensor::from_vec(values(m * k + 5)[5..].to_vec(), (m, k), &dev).unwrap();
        let w = Tensor::from_vec(values(k + 3)[3..].to_vec(), k, &dev).unwrap();
        let close = |a: &Tensor, b: &Tensor, tol: f32| {
            let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{x} against {y}");
            }
        };
        close(
            &gelu_mul(&g, &u).unwrap(),
            &(g.gelu().unwrap() * &u).unwrap(),
            2e-6,
        );
        close(
            &silu_mul(&g, &u).unwrap(),
            &(g.silu().unwrap() * &u).unwrap(),
            2e-6,
        );
        close(
            &rms_norm(&g, &w, 1e-6).unwrap(),
            &crate::ops::rms_norm(&g, &w, 1e-6).unwrap(),
            2e-6,
        );
        // The rotations and additions are the same operations as candle's: equal bits.
        let x = Tensor::from_vec(values(3 * 5 * 64), (1, 3, 5, 64), &dev).unwrap();
        let (cos, sin) = crate::ops::rope_tables(10_000.0, 64, 12, &dev).unwrap();
        let (cos, sin) = (cos.narrow(0, 7, 5).unwrap(), sin.narrow(0, 7, 5).unwrap());
        let bits = |t: &Tensor| -> Vec<u32> {
            let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            v.into_iter().map(f32::to_bits).collect()
        };
        assert_eq!(
            bits(&rope(&x, &cos, &sin, false).unwrap()),
            bits(&crate::ops::rope(&x, &cos, &sin).unwrap())
        );
        assert_eq!(
            bits(&rope(&x, &cos, &sin, true).unwrap()),
            bits(&crate::ops::rope_pairs(&x, &cos, &sin).unwrap())
        );
        assert_eq!(bits(&add(&g, &u).unwrap()), bits(&(&g + &u).unwrap()));
        assert_eq!(
            bits(&add_bias(&g, &w).unwrap()),
            bits(&g.broadcast_add(&w).unwrap())
        );
        assert_eq!(
            bits(&add_rms_norm(&g, &u, &w, 1e-6).unwrap()),
            bits(&(&g + rms_norm(&u, &w, 1e-6).unwrap()).unwrap())
        );
    }

    #[inline(always)]
    fn all_body(xs: &[f32], out: &mut Vec<u32>) {
        out.extend(xs.iter().map(|&x| exp(x).to_bits()));
        out.extend(xs.iter().map(|&x| gelu(x).to_bits()));
        out.extend(xs.iter().map(|&x| silu(x).to_bits()));
        out.push(sum_squares(xs).to_bits());
    }
    vectorized!(fn all(xs: &[f32], out: &mut Vec<u32>) => all_body);

    #[test]
    fn every_kernel_computes_the_same_bits() {
        let xs = values(4099);
        let run = |isa: Isa| {
            let mut out = Vec::new();
            all(isa, &xs, &mut out);
            let mut g = xs.clone();
            gelu_mul_rows(isa, &mut g, &xs);
            let mut r = xs.clone();
            rms_rows(isa, &mut r, &xs[..4099], 1e-6);
            out.extend(g.iter().chain(&r).map(|v| v.to_bits()));
            out
        };
        let reference = run(Isa::Scalar);
        for isa in Isa::ALL.into_iter().filter(|i| i.supported()) {
            assert!(run(isa) == reference, "{}", isa.name());
        }
    }

    #[test]
    fn a_row_is_the_same_alone_or_in_a_big_batch() {
        let dev = Device::Cpu;
        let (m, k) = (200, 640);
        let x = Tensor::from_vec(values(m * k), (m, k), &dev).unwrap();
        let w = Tensor::from_vec(values(k), k, &dev).unwrap();
        let all = rms_norm(&x, &w, 1e-6).unwrap();
        let act = gelu_mul(&x, &all).unwrap();
        for r in [0, 77, 199] {
            let xr = x.narrow(0, r, 1).unwrap();
            let one = rms_norm(&xr, &w, 1e-6).unwrap();
            assert_eq!(
                one.to_vec2::<f32>().unwrap()[0],
                all.narrow(0, r, 1).unwrap().to_vec2::<f32>().unwrap()[0]
            );
            let a = gelu_mul(&xr, &one).unwrap();
            assert_eq!(
                a.to_vec2::<f32>().unwrap()[0],
                act.narrow(0, r, 1).unwrap().to_vec2::<f32>().unwrap()[0]
            );
        }
    }
}
