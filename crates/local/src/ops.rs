//! Tensor helpers shared by the inference paths (`gemma3`, `llama`) and the training-safe path
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

/// Pairwise rotary embedding of `x` (…, t, head_dim) with tables (t, head_dim/2): adjacent
/// elements (x0,x1),(x2,x3),… are rotated (llama.cpp's "normal" RoPE, which GGUF `llama`
/// files expect: their q/k rows were permuted to it at conversion).
pub fn rope_pairs(x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
    let dims = x.dims().to_vec();
    let d = *dims.last().expect("x has a head dimension");
    let mut paired = dims[..dims.len() - 1].to_vec();
    paired.extend([d / 2, 2]);
    let x = x.contiguous()?.reshape(paired)?;
    let x0 = x.narrow(D::Minus1, 0, 1)?.squeeze(D::Minus1)?;
    let x1 = x.narrow(D::Minus1, 1, 1)?.squeeze(D::Minus1)?;
    let r0 = (x0.broadcast_mul(cos)? - x1.broadcast_mul(sin)?)?;
    let r1 = (x0.broadcast_mul(sin)? + x1.broadcast_mul(cos)?)?;
    Tensor::stack(&[r0, r1], D::Minus1)?.reshape(dims)
}

/// Grouped-query attention of `q` (1, heads, t, d) at positions `start..start+t` over keys
/// and values (kv_heads, kv_len, d) at positions `start+t-kv_len..`: causal, and limited to
/// the last `window` positions when given. Returns (t, heads*d).
pub fn gqa_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    start: usize,
    scale: f64,
    window: Option<usize>,
) -> candle_core::Result<Tensor> {
    let (_, heads, t, d) = q.dims4()?;
    let (kv_heads, kv_len, _) = k.dims3()?;
    let group = heads / kv_heads;
    let first_key_pos = start + t - kv_len;
    // (kv_heads, group*t, d) so one matmul serves all query heads of a kv head.
    let q = q.squeeze(0)?.reshape((kv_heads, group * t, d))?;
    let scores = (q.matmul(&k.t()?)? * scale)?; // (kv_heads, group*t, kv_len)
    let needs_mask = t > 1 || window.is_some_and(|w| kv_len > w);
    let scores = if needs_mask {
        let mut mask = vec![0f32; t * kv_len];
        for i in 0..t {
            let qp = start + i;
            for j in 0..kv_len {
                let kp = first_key_pos + j;
                let visible = kp <= qp && window.is_none_or(|w| qp - kp < w);
                if !visible {
                    mask[i * kv_len + j] = f32::NEG_INFINITY;
                }
            }
        }
        let mask = Tensor::from_vec(mask, (t, kv_len), q.device())?
            .unsqueeze(0)?
            .repeat((group, 1, 1))?
            .reshape((1, group * t, kv_len))?;
        scores.broadcast_add(&mask)?
    } else {
        scores
    };
    let o = softmax_last(&scores)?.matmul(v)?; // (kv_heads, group*t, d)
    o.reshape((heads, t, d))?
        .transpose(0, 1)?
        .reshape((t, heads * d))
}
