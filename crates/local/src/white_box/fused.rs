//! Fused CPU kernels, with their backward passes, for the white box's element-wise work:
//! RMSNorm with a constant weight, softmax over the last dimension, and the tanh GELU.
//!
//! Built from candle's primitive ops, each of these is five to fifteen passes over its
//! tensor forward and as many again backward, each pass allocating a fresh tensor; in a
//! LoRA training step on Gemma 3 270M that was half the time. Here each is one
//! [`CustomOp1`] whose forward is one pass over each row and whose backward is one
//! [`CustomOp2`] pass (input or output, and the incoming gradient). The formulas:
//!
//! - RMSNorm, `y = x·r·w` with `r = (mean(x²) + ε)^(-1/2)` per row of length `n`:
//!   `∂L/∂x_j = r·g_j·w_j − (r³·x_j/n)·Σ_i g_i·w_i·x_i`. The weight must be a constant
//!   (frozen base weights): no gradient is produced for it, so a trainable weight takes
//!   the composite path in [`crate::ops::rms_norm`].
//! - softmax, `y = exp(x − max)/Σ exp(x − max)`: `∂L/∂x = y ∘ (g − Σ g∘y)`.
//! - GELU (tanh approximation, as `candle`'s `gelu` and PyTorch's `gelu_pytorch_tanh`),
//!   `y = ½x(1 + tanh u)` with `u = √(2/π)(x + 0.044715x³)`:
//!   `∂y/∂x = ½(1 + tanh u) + ½x(1 − tanh²u)·√(2/π)(1 + 3·0.044715x²)`.
//!
//! Only f32 on the CPU; on other devices, or for inputs that need it, each function falls
//! back to the composite ops (same values up to float rounding). Tests compare values and
//! gradients with the composite graphs.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

/// Elements per rayon work unit: element-wise maps split at this size, row-wise kernels
/// take as many whole rows as fit (at least one; rows are never split).
const ELEMS_PER_TASK: usize = 1 << 14;

fn slice<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("fused op on a non-contiguous tensor"),
    }
}

/// How many whole rows of `n` make a parallel work unit.
fn rows_per_task(n: usize) -> usize {
    (ELEMS_PER_TASK / n.max(1)).max(1)
}

/// RMSNorm over the last dimension with a constant weight `w` (its last dimension); see
/// the module comment.
pub(super) fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    if !x.device().is_cpu() || w.track_op() || w.rank() != 1 {
        return crate::ops::rms_norm(x, w, eps);
    }
    let w = w.to_vec1::<f32>()?;
    if x.dims().last() != Some(&w.len()) {
        candle_core::bail!("rms_norm: weight of {} for input {:?}", w.len(), x.dims());
    }
    x.contiguous()?.apply_op1(RmsNorm { w, eps: eps as f32 })
}

struct RmsNorm {
    w: Vec<f32>,
    eps: f32,
}

fn inv_rms(row: &[f32], eps: f32) -> f32 {
    let ss: f32 = row.iter().map(|v| v * v).sum();
    1.0 / (ss / row.len() as f32 + eps).sqrt()
}

impl CustomOp1 for RmsNorm {
    fn name(&self) -> &'static str {
        "white-box-rms-norm"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = slice(s, l)?;
        let n = self.w.len();
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(n * rows_per_task(n))
            .zip(x.par_chunks(n * rows_per_task(n)))
            .for_each(|(yc, xc)| {
                for (yr, xr) in yc.chunks_mut(n).zip(xc.chunks(n)) {
                    let r = inv_rms(xr, self.eps);
                    for ((o, v), w) in yr.iter_mut().zip(xr).zip(&self.w) {
                        *o = v * r * w;
                    }
                }
            });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, g: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let g = g.contiguous()?;
        Ok(Some(x.apply_op2_no_bwd(
            &g,
            &RmsNormGrad {
                w: self.w.clone(),
                eps: self.eps,
            },
        )?))
    }
}

struct RmsNormGrad {
    w: Vec<f32>,
    eps: f32,
}

impl CustomOp2 for RmsNormGrad {
    fn name(&self) -> &'static str {
        "white-box-rms-norm-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, g) = (slice(xs, xl)?, slice(gs, gl)?);
        let n = self.w.len();
        let k = n * rows_per_task(n);
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_mut(k)
            .zip(x.par_chunks(k).zip(g.par_chunks(k)))
            .for_each(|(dc, (xc, gc))| {
                for ((dr, xr), gr) in dc.chunks_mut(n).zip(xc.chunks(n)).zip(gc.chunks(n)) {
                    let r = inv_rms(xr, self.eps);
                    let dot: f32 = gr
                        .iter()
                        .zip(&self.w)
                        .zip(xr)
                        .map(|((g, w), x)| g * w * x)
                        .sum();
                    let c = r * r * r * dot / n as f32;
                    for (((d, g), w), x) in dr.iter_mut().zip(gr).zip(&self.w).zip(xr) {
                        *d = r * g * w - c * x;
                    }
                }
            });
        Ok((CpuStorage::F32(dx), xl.shape().clone()))
    }
}

/// Softmax over the last dimension; see the module comment.
pub(super) fn softmax_last(x: &Tensor) -> candle_core::Result<Tensor> {
    if !x.device().is_cpu() {
        return crate::ops::softmax_last(x);
    }
    let n = *x.dims().last().unwrap_or(&1);
    x.contiguous()?.apply_op1(Softmax { n })
}

struct Softmax {
    n: usize,
}

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "white-box-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = slice(s, l)?;
        let n = self.n;
        let k = n * rows_per_task(n);
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(k)
            .zip(x.par_chunks(k))
            .for_each(|(yc, xc)| {
                for (yr, xr) in yc.chunks_mut(n).zip(xc.chunks(n)) {
                    let max = xr.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let mut sum = 0f32;
                    for (o, v) in yr.iter_mut().zip(xr) {
                        *o = (v - max).exp();
                        sum += *o;
                    }
                    let inv = 1.0 / sum;
                    yr.iter_mut().for_each(|o| *o *= inv);
                }
            });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, g: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let g = g.contiguous()?;
        Ok(Some(y.apply_op2_no_bwd(&g, &SoftmaxGrad { n: self.n })?))
    }
}

struct SoftmaxGrad {
    n: usize,
}

impl CustomOp2 for SoftmaxGrad {
    fn name(&self) -> &'static str {
        "white-box-softmax-grad"
    }

    fn cpu_fwd(
        &self,
        ys: &CpuStorage,
        yl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (y, g) = (slice(ys, yl)?, slice(gs, gl)?);
        let n = self.n;
        let k = n * rows_per_task(n);
        let mut dx = vec![0f32; y.len()];
        dx.par_chunks_mut(k)
            .zip(y.par_chunks(k).zip(g.par_chunks(k)))
            .for_each(|(dc, (yc, gc))| {
                for ((dr, yr), gr) in dc.chunks_mut(n).zip(yc.chunks(n)).zip(gc.chunks(n)) {
                    let dot: f32 = yr.iter().zip(gr).map(|(y, g)| y * g).sum();
                    for ((d, y), g) in dr.iter_mut().zip(yr).zip(gr) {
                        *d = y * (g - dot);
                    }
                }
            });
        Ok((CpuStorage::F32(dx), yl.shape().clone()))
    }
}

/// √(2/π).
const GELU_C: f32 = 0.797_884_6;
const GELU_A: f32 = 0.044_715;

/// The tanh GELU; see the module comment.
pub(super) fn gelu_tanh(x: &Tensor) -> candle_core::Result<Tensor> {
    if !x.device().is_cpu() {
        return x.gelu();
    }
    x.contiguous()?.apply_op1(Gelu)
}

struct Gelu;

/// tanh(u) = 1 − 2/(e^{2u} + 1): one `exp` (libm's `tanhf` costs several times more and
/// was a tenth of a training step). Absolute error about 1e-7 (cancellation near 0 is in
/// absolute, not relative terms, which is what GELU's `1 + tanh` sees); ±1 at the
/// extremes, where `exp` over- or underflows.
#[inline]
fn tanh(u: f32) -> f32 {
    1.0 - 2.0 / ((2.0 * u).exp() + 1.0)
}

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "white-box-gelu-tanh"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = slice(s, l)?;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(ELEMS_PER_TASK)
            .zip(x.par_chunks(ELEMS_PER_TASK))
            .for_each(|(yc, xc)| {
                for (o, &v) in yc.iter_mut().zip(xc) {
                    let t = tanh(GELU_C * (v + GELU_A * v * v * v));
                    *o = 0.5 * v * (1.0 + t);
                }
            });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, g: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let g = g.contiguous()?;
        Ok(Some(x.apply_op2_no_bwd(&g, &GeluGrad)?))
    }
}

struct GeluGrad;

impl CustomOp2 for GeluGrad {
    fn name(&self) -> &'static str {
        "white-box-gelu-tanh-grad"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, g) = (slice(xs, xl)?, slice(gs, gl)?);
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_mut(ELEMS_PER_TASK)
            .zip(
                x.par_chunks(ELEMS_PER_TASK)
                    .zip(g.par_chunks(ELEMS_PER_TASK)),
            )
            .for_each(|(dc, (xc, gc))| {
                for ((d, &v), &g) in dc.iter_mut().zip(xc).zip(gc) {
                    let t = tanh(GELU_C * (v + GELU_A * v * v * v));
                    let du = GELU_C * (1.0 + 3.0 * GELU_A * v * v);
                    *d = g * (0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * du);
                }
            });
        Ok((CpuStorage::F32(dx), xl.shape().clone()))
    }
}

/// `dst (m × n) = lhs (m × k) · rhs (k × n)` on f32 slices with the given row and column
/// strides (in elements), by the `gemm` crate on all rayon threads. Panics if an operand's
/// last element lies outside its slice (the strides are the caller's; this keeps the one
/// unsafe call in bounds).
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_f32(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    (dst_rs, dst_cs): (usize, usize),
    lhs: &[f32],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[f32],
    (rhs_rs, rhs_cs): (usize, usize),
) {
    if m == 0 || n == 0 {
        return;
    }
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| {
        (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs
    };
    assert!(
        last(m, n, dst_rs, dst_cs) < dst.len(),
        "gemm: dst out of bounds"
    );
    if k > 0 {
        assert!(
            last(m, k, lhs_rs, lhs_cs) < lhs.len(),
            "gemm: lhs out of bounds"
        );
        assert!(
            last(k, n, rhs_rs, rhs_cs) < rhs.len(),
            "gemm: rhs out of bounds"
        );
    }
    // SAFETY: every index the product touches is within the slices (asserted above), `dst`
    // is borrowed mutably and so aliases neither input, and T = f32 is one of gemm's types.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_cs as isize,
            dst_rs as isize,
            false,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(0),
        )
    }
}

/// The f32 data of a contiguous CPU tensor.
pub(super) fn cpu_data(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

/// `x·Wᵀ` for a constant weight `W` (out, in) whose transpose `wt` (in, out) is also held
/// contiguous: the forward product reads `wt` row-major and the backward product
/// `∂L/∂x = g·W` reads `W` row-major, the layouts `gemm` is fastest with (reading a
/// weight transposed in place is 1.5–3× slower for the shapes of a small model's layers).
/// Costs a second copy of each frozen weight; see [`super::WhiteBox::set_frozen`].
pub(super) fn frozen_linear(x: &Tensor, w: &Tensor, wt: &FrozenT) -> candle_core::Result<Tensor> {
    if !x.device().is_cpu() {
        return x.matmul(&w.t()?);
    }
    let (out, inn) = w.dims2()?;
    let dims = x.dims().to_vec();
    if dims.last() != Some(&inn) {
        candle_core::bail!("frozen_linear: input {dims:?} for a weight ({out}, {inn})");
    }
    let rows = x.elem_count() / inn;
    let y = x
        .contiguous()?
        .reshape((rows, inn))?
        .apply_op1(FrozenLinear {
            w: w.clone(),
            wt: wt.clone(),
        })?;
    let mut shape = dims;
    *shape.last_mut().expect("rank ≥ 1") = out;
    y.reshape(shape)
}

/// A frozen weight's transpose (in, out), row-major.
#[derive(Clone)]
pub(super) struct FrozenT(pub(super) std::sync::Arc<Vec<f32>>);

struct FrozenLinear {
    w: Tensor,
    wt: FrozenT,
}

impl CustomOp1 for FrozenLinear {
    fn name(&self) -> &'static str {
        "white-box-frozen-linear"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = slice(s, l)?;
        let (out, inn) = self.w.dims2()?;
        let rows = x.len() / inn;
        let mut y = vec![0f32; rows * out];
        gemm_f32(
            (rows, out, inn),
            &mut y,
            (out, 1),
            x,
            (inn, 1),
            &self.wt.0,
            (out, 1),
        );
        Ok((CpuStorage::F32(y), Shape::from((rows, out))))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, g: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(g.matmul(&self.w)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .and_then(|d| d.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>())
            .unwrap()
    }

    /// Value and gradient of `f` against `reference` on a (3, 5, 7) input, with an incoming
    /// gradient that differs per element (a random weighting), so a wrong per-row or
    /// per-element factor shows.
    fn check(
        f: impl Fn(&Tensor) -> candle_core::Result<Tensor>,
        reference: impl Fn(&Tensor) -> candle_core::Result<Tensor>,
        what: &str,
    ) -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.5, (3, 5, 7), &dev)?)?;
        let weights = Tensor::randn(0f32, 1.0, (3, 5, 7), &dev)?;
        let (a, b) = (f(x.as_tensor())?, reference(x.as_tensor())?);
        assert!(max_diff(&a, &b) < 1e-5, "{what}: values");
        let ga = (&a * &weights)?.sum_all()?.backward()?;
        let gb = (&b * &weights)?.sum_all()?.backward()?;
        let d = max_diff(ga.get(&x).unwrap(), gb.get(&x).unwrap());
        assert!(d < 1e-5, "{what}: gradients differ by {d}");
        Ok(())
    }

    #[test]
    fn rms_norm_matches_the_composite_graph() -> candle_core::Result<()> {
        let w = Tensor::new(&[0.5f32, 1.0, 1.5, -2.0, 0.25, 3.0, 1.0], &Device::Cpu)?;
        check(
            |x| rms_norm(x, &w, 1e-6),
            |x| crate::ops::rms_norm(x, &w, 1e-6),
            "rms_norm",
        )
    }

    #[test]
    fn softmax_matches_the_composite_graph() -> candle_core::Result<()> {
        check(softmax_last, crate::ops::softmax_last, "softmax")
    }

    #[test]
    fn fast_tanh_is_tanh() {
        for i in -2000..=2000 {
            let u = i as f32 / 100.0;
            assert!(
                (tanh(u) - u.tanh()).abs() < 3e-7,
                "{u}: {} vs {}",
                tanh(u),
                u.tanh()
            );
        }
        assert_eq!(tanh(100.0), 1.0);
        assert_eq!(tanh(-100.0), -1.0);
    }

    #[test]
    fn gelu_matches_candles_gelu_and_its_gradient() -> candle_core::Result<()> {
        check(gelu_tanh, |x| x.gelu(), "gelu")
    }

    /// By hand, one row x = (3, 4), w = (1, 2), ε = 0: r = 1/√12.5; y = (3r, 8r). For the
    /// gradient of y₁ alone (g = (0, 1)): Σ g·w·x = 8, so ∂y₁/∂x = (−r³·3·8/2, 2r − r³·4·8/2).
    #[test]
    fn rms_norm_by_hand() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::new(&[[3f32, 4.]], &dev)?)?;
        let w = Tensor::new(&[1f32, 2.], &dev)?;
        let y = rms_norm(x.as_tensor(), &w, 0.0)?;
        let r = 1.0 / 12.5f64.sqrt();
        let yv = y.to_vec2::<f32>()?;
        assert!(
            (yv[0][0] as f64 - 3.0 * r).abs() < 1e-6 && (yv[0][1] as f64 - 8.0 * r).abs() < 1e-6
        );
        let g = y.narrow(1, 1, 1)?.sum_all()?.backward()?;
        let g = g.get(&x).unwrap().to_vec2::<f32>()?;
        let r3 = r * r * r;
        let want = [-r3 * 3.0 * 8.0 / 2.0, 2.0 * r - r3 * 4.0 * 8.0 / 2.0];
        for (a, b) in g[0].iter().zip(want) {
            assert!((*a as f64 - b).abs() < 1e-6, "{g:?} vs {want:?}");
        }
        Ok(())
    }

    /// A weight that is itself differentiated takes the composite path and gets its
    /// gradient.
    #[test]
    fn trainable_weight_falls_back_and_gets_a_gradient() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (2, 4), &dev)?;
        let w = Var::from_tensor(&Tensor::ones(4, candle_core::DType::F32, &dev)?)?;
        let g = rms_norm(&x, w.as_tensor(), 1e-6)?.sum_all()?.backward()?;
        assert!(g.get(&w).is_some());
        Ok(())
    }

    /// The frozen linear layer equals `x·Wᵀ` in value and input gradient, for a 3-d input.
    #[test]
    fn frozen_linear_matches_matmul() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (4, 7), &dev)?;
        let wt = FrozenT(std::sync::Arc::new(cpu_data(&w.t()?.contiguous()?)?));
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (3, 5, 7), &dev)?)?;
        let a = frozen_linear(x.as_tensor(), &w, &wt)?;
        let b = x.as_tensor().broadcast_matmul(&w.t()?)?;
        assert_eq!(a.dims(), &[3, 5, 4]);
        assert!(max_diff(&a, &b) < 1e-5);
        let weights = Tensor::randn(0f32, 1.0, (3, 5, 4), &dev)?;
        let ga = (&a * &weights)?.sum_all()?.backward()?;
        let gb = (&b * &weights)?.sum_all()?.backward()?;
        assert!(max_diff(ga.get(&x).unwrap(), gb.get(&x).unwrap()) < 1e-5);
        Ok(())
    }

    /// gemm with strided operands: a transposed right-hand side read in place.
    #[test]
    fn gemm_reads_strides() {
        // lhs 2×3 row-major; rhs = Mᵀ for M (2×3) row-major: rhs(k, j) = M[j][k].
        let lhs = [1f32, 2., 3., 4., 5., 6.];
        let m = [1f32, 0., -1., 2., 1., 0.];
        let mut dst = [0f32; 4];
        gemm_f32((2, 2, 3), &mut dst, (2, 1), &lhs, (3, 1), &m, (1, 3));
        // row 0: (1,2,3)·(1,0,-1) = -2, (1,2,3)·(2,1,0) = 4; row 1: 4-6 = -2, 8+5 = 13.
        assert_eq!(dst, [-2., 4., -2., 13.]);
    }
}
