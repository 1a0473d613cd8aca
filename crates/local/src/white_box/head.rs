//! The output head's negative log-likelihood with a frozen head weight, in row chunks, its
//! gradient formed in the same pass.
//!
//! With Gemma's 262,144-token vocabulary the head is the largest single cost of a LoRA
//! training step, and through candle's autograd it would also be the largest memory cost:
//! the (rows × vocab) logits, their shifted exponentials and every intermediate of the
//! log-sum-exp stay alive until the backward pass. Here, for rows `h` (n, hidden) after
//! the final norm and a frozen head `W` (vocab, hidden), each chunk of rows is processed
//! once:
//!
//! - logits `z = h·Wᵀ`, `lse = max + ln Σ exp(z − max)`, loss `ℓ = lse − z[target]`;
//! - the gradient of `ℓ` with respect to the row, `g = softmax(z)·W − W[target]`
//!   (∂ℓ/∂z = softmax(z) − onehot(target), and `z` is linear in the row);
//!
//! and only `ℓ` (n,) and `g` (n, hidden) are kept. The result enters the graph as
//! `ℓ + (Σ_j h·g − detach(Σ_j h·g))`: its value is exactly `ℓ` (the bracket is `x − x`,
//! zero), and its gradient with respect to `h` is `g` times the incoming gradient, so
//! `backward()` continues into the final norm and the trunk as if the head had been
//! differentiated. Peak memory for the head falls from several (n × vocab) tensors to one
//! chunk's logits.
//!
//! Valid only while `W` is a constant (frozen base weights): a trainable head needs
//! `∂ℓ/∂W`, which this does not produce; [`super::WhiteBox`] uses its plain graph then.

use candle_core::{Device, Tensor, D};

/// About this many logits (f32) per chunk: 16M = 64 MiB, 64 rows of Gemma's vocabulary.
const CHUNK_LOGITS: usize = 1 << 26;

/// Negative log-likelihood of `targets[r]` for each row `r` of `h` (n, hidden) under the
/// constant head `w` (vocab, hidden): shape (n,), differentiable with respect to `h`
/// (module comment). Without a graph to differentiate (`h` tracks no op), the gradient
/// products are skipped.
pub(super) fn frozen_head_nll(
    h: &Tensor,
    w: &Tensor,
    targets: &[u32],
) -> candle_core::Result<Tensor> {
    chunked(h, w, targets, CHUNK_LOGITS)
}

/// [`frozen_head_nll`] with chunks of about `chunk_logits` logits.
fn chunked(
    h: &Tensor,
    w: &Tensor,
    targets: &[u32],
    chunk_logits: usize,
) -> candle_core::Result<Tensor> {
    let (n, _) = h.dims2()?;
    let (vocab, _) = w.dims2()?;
    if targets.len() != n {
        candle_core::bail!("{} targets for {n} rows", targets.len());
    }
    if let Some(bad) = targets.iter().find(|&&t| t as usize >= vocab) {
        candle_core::bail!("target {bad} out of range (vocab {vocab})");
    }
    let want_grad = h.track_op();
    let hd = h.detach();
    let rows = (chunk_logits / vocab).clamp(1, n.max(1));
    let wt = w.t()?;
    let mut losses = Vec::with_capacity(n);
    let mut grads = Vec::new();
    let mut start = 0;
    while start < n {
        let c = rows.min(n - start);
        let tg = &targets[start..start + c];
        let z = hd.narrow(0, start, c)?.matmul(&wt)?; // (c, vocab)
        let (l, p) = match h.device() {
            Device::Cpu => softmax_rows_cpu(&z, tg)?,
            _ => softmax_rows(&z, tg)?,
        };
        losses.extend(l);
        if want_grad {
            let t = Tensor::new(tg, h.device())?;
            grads.push((p.matmul(w)? - w.index_select(&t, 0)?)?);
        }
        start += c;
    }
    let loss = Tensor::from_vec(losses, n, h.device())?;
    if !want_grad {
        return Ok(loss);
    }
    let g = Tensor::cat(&grads, 0)?;
    let lin = (h * g)?.sum(D::Minus1)?;
    loss + (&lin - lin.detach())?
}

/// Per row of the logits `z` (c, vocab): the loss `lse − z[target]` and the softmax, with
/// candle ops (any device).
fn softmax_rows(z: &Tensor, targets: &[u32]) -> candle_core::Result<(Vec<f32>, Tensor)> {
    let c = targets.len();
    let max = z.max_keepdim(D::Minus1)?;
    let e = z.broadcast_sub(&max)?.exp()?;
    let s = e.sum_keepdim(D::Minus1)?;
    let lse = (s.log()? + &max)?;
    let t = Tensor::new(targets, z.device())?.reshape((c, 1))?;
    let picked = z.gather(&t, D::Minus1)?;
    let loss = (lse - picked)?.squeeze(1)?.to_vec1::<f32>()?;
    Ok((loss, e.broadcast_div(&s)?))
}

/// [`softmax_rows`] on the CPU in one pass per row over a single copy of the logits, rows
/// in parallel (the candle version allocates three more (c × vocab) tensors).
fn softmax_rows_cpu(z: &Tensor, targets: &[u32]) -> candle_core::Result<(Vec<f32>, Tensor)> {
    use rayon::prelude::*;
    let (c, vocab) = z.dims2()?;
    let mut buf = z.flatten_all()?.to_vec1::<f32>()?;
    let loss: Vec<f32> = buf
        .par_chunks_mut(vocab)
        .zip(targets.par_iter())
        .map(|(row, &t)| {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let picked = row[t as usize];
            // Sum in f64: 262k terms.
            let mut sum = 0f64;
            for v in row.iter_mut() {
                *v = (*v - max).exp();
                sum += *v as f64;
            }
            let inv = (1.0 / sum) as f32;
            for v in row.iter_mut() {
                *v *= inv;
            }
            (max as f64 + sum.ln() - picked as f64) as f32
        })
        .collect();
    Ok((loss, Tensor::from_vec(buf, (c, vocab), z.device())?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Var};

    /// Seven rows, their targets and a head.
    fn case(vocab: usize) -> candle_core::Result<(Var, Tensor, Vec<u32>)> {
        let dev = Device::Cpu;
        let h = Var::from_tensor(&(Tensor::randn(0f32, 1.0, (7, 5), &dev)?))?;
        let w = Tensor::randn(0f32, 0.5, (vocab, 5), &dev)?;
        let targets = vec![0, 3, (vocab - 1) as u32, 2, 3, 1, (vocab / 2) as u32];
        Ok((h, w, targets))
    }

    /// The plain graph: logits, log-sum-exp, pick — differentiated by candle.
    fn plain(h: &Tensor, w: &Tensor, targets: &[u32]) -> candle_core::Result<Tensor> {
        let z = h.matmul(&w.t()?)?;
        let max = z.detach().max_keepdim(D::Minus1)?;
        let lse = (z
            .broadcast_sub(&max)?
            .exp()?
            .sum_keepdim(D::Minus1)?
            .log()?
            + max)?;
        let t = Tensor::new(targets, h.device())?.reshape((targets.len(), 1))?;
        (lse - z.gather(&t, D::Minus1)?)?.squeeze(1)
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    /// Losses and the gradient of a weighted sum of them (weights make each row's incoming
    /// gradient different, so a wrong per-row scaling would show) equal candle's plain
    /// graph, in one chunk and in chunks of 1, 2 (the last one short) and 3 rows.
    #[test]
    fn equals_the_plain_graph_in_value_and_gradient() -> candle_core::Result<()> {
        let vocab = 11;
        for chunk in [CHUNK_LOGITS, vocab, 2 * vocab, 3 * vocab + 2] {
            let (h, w, targets) = case(vocab)?;
            let weights = Tensor::new(&[1f32, -2., 0.5, 3., 0.25, 1.5, -1.], &Device::Cpu)?;
            let fused = chunked(h.as_tensor(), &w, &targets, chunk)?;
            let reference = plain(h.as_tensor(), &w, &targets)?;
            assert!(max_diff(&fused, &reference) < 1e-4, "chunk {chunk}: losses");
            let gf = (&fused * &weights)?.sum_all()?.backward()?;
            let gp = (&reference * &weights)?.sum_all()?.backward()?;
            let (gf, gp) = (gf.get(&h).unwrap(), gp.get(&h).unwrap());
            assert!(max_diff(gf, gp) < 1e-4, "chunk {chunk}: gradients");
        }
        Ok(())
    }

    /// The loss by hand for one row h = (1, 2, 3) and W = I, so z = h; target 2:
    /// ℓ = ln(e¹ + e² + e³) − 3; gradient g = softmax(z)·W − W[2].
    #[test]
    fn one_row_by_hand() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let h = Var::from_tensor(&Tensor::new(&[[1f32, 2., 3.]], &dev)?)?;
        let w = Tensor::eye(3, DType::F32, &dev)?;
        let l = frozen_head_nll(h.as_tensor(), &w, &[2])?;
        let e = [1f64.exp(), 2f64.exp(), 3f64.exp()];
        let s: f64 = e.iter().sum();
        let want = s.ln() - 3.0;
        assert!((l.to_vec1::<f32>()?[0] as f64 - want).abs() < 1e-6);
        let g = l.sum_all()?.backward()?;
        let g = g.get(&h).unwrap().to_vec2::<f32>()?;
        let want = [e[0] / s, e[1] / s, e[2] / s - 1.0];
        for (a, b) in g[0].iter().zip(want) {
            assert!((*a as f64 - b).abs() < 1e-6, "{:?} vs {want:?}", g[0]);
        }
        Ok(())
    }

    /// The device-generic softmax equals the CPU one (the CUDA path is tested through it).
    #[test]
    fn candle_and_cpu_softmax_agree() -> candle_core::Result<()> {
        let z = Tensor::randn(0f32, 3.0, (4, 1000), &Device::Cpu)?;
        let t = [0, 999, 500, 7];
        let (la, pa) = softmax_rows(&z, &t)?;
        let (lb, pb) = softmax_rows_cpu(&z, &t)?;
        for (a, b) in la.iter().zip(&lb) {
            assert!((a - b).abs() < 1e-4);
        }
        assert!(max_diff(&pa, &pb) < 1e-6);
        Ok(())
    }

    /// Without a graph (a detached input) the result is the plain losses and nothing else.
    #[test]
    fn detached_input_gives_losses_only() -> candle_core::Result<()> {
        let (h, w, targets) = case(13)?;
        let l = frozen_head_nll(&h.as_detached_tensor(), &w, &targets)?;
        assert!(!l.track_op());
        assert!(max_diff(&l, &plain(h.as_tensor(), &w, &targets)?) < 1e-5);
        Ok(())
    }
}
