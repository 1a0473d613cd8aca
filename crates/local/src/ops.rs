//! Tensor helpers shared by the inference path (`gemma3`) and the training-safe path
//! (`white_box`). Every one is built from candle ops that have a backward pass, so the
//! same code serves both: no fused kernels without gradients, no in-place writes.

use candle_core::{DType, Device, Tensor, D};

/// RMSNorm whose weight already includes Gemma's `+1`.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    let var = x.sqr()?.mean_keepdim(D::Minus1)?;
    x.broadcast_div(&(var + eps)?.sqrt()?)?.broadcast_mul(w)
}

/// Softmax over the last dimension from exp/sum; the max is a detached constant shift.
pub fn softmax_last(x: &Tensor) -> candle_core::Result<Tensor> {
    let max = x.detach().max_keepdim(D::Minus1)?;
    let e = x.broadcast_sub(&max)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// cos and sin tables (len, head_dim/2) for RoPE with base frequency `base`.
pub fn rope_tables(
    base: f64,
    head_dim: usize,
    len: usize,
    dev: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let half = head_dim / 2;
    let inv: Vec<f32> = (0..half)
        .map(|i| (1.0 / base.powf(2.0 * i as f64 / head_dim as f64)) as f32)
        .collect();
    let inv = Tensor::from_vec(inv, (1, half), dev)?;
    let pos = Tensor::arange(0u32, len as u32, dev)?
        .to_dtype(DType::F32)?
        .reshape((len, 1))?;
    let freqs = pos.matmul(&inv)?;
    Ok((freqs.cos()?, freqs.sin()?))
}

/// NeoX-style rotary embedding of `x` (…, t, head_dim) with tables (t, head_dim/2): the two
/// halves of each head are rotated against each other.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
    let half = x.dim(D::Minus1)? / 2;
    let x1 = x.narrow(D::Minus1, 0, half)?;
    let x2 = x.narrow(D::Minus1, half, half)?;
    let r1 = (x1.broadcast_mul(cos)? - x2.broadcast_mul(sin)?)?;
    let r2 = (x2.broadcast_mul(cos)? + x1.broadcast_mul(sin)?)?;
    Tensor::cat(&[r1, r2], D::Minus1)
}
