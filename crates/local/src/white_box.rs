//! The training-safe f32 "white-box" path for Gemma 3: every weight dequantized from the
//! GGUF into an f32 candle [`Var`], and a full-sequence forward pass built only from ops
//! whose gradients candle 0.11 propagates, so that `loss.backward()` reaches every
//! parameter.
//!
//! Why not candle's own f32 Gemma 3: its fused softmax and RoPE kernels have no backward
//! and its KV cache is written in place, so gradients silently stop at about half the
//! tensors; `QMatMul` (the quantized path in `gemma3.rs`) has no backward at all. Here:
//! - linear layers are `x.matmul(w.t())` on `Var`s (Matmul and Transpose have backward);
//! - the embedding lookup is `index_select` (backward: `index_add`), and the output head is
//!   the same `Var` (tied), so its gradient is the sum of both uses;
//! - softmax is `exp(x - max) / sum`, the max taken on a `detach()`ed copy (a constant
//!   shift, so the result and its gradient are exact);
//! - RoPE is narrow / broadcast-mul / cat (all with backward), the cos/sin tables constants;
//! - GELU is candle's tanh-approximation `gelu`, which has a backward;
//! - the causal and sliding-window mask is an additive constant (−1e9), no in-place writes;
//! - no KV cache: every call runs the whole sequence.
//!
//! Packed sequences ([`WhiteBox::forward_packed`], [`WhiteBox::token_losses_packed`]):
//! several independent sequences laid back to back in one pass, each starting at an
//! offset in `starts`. A query sees only keys of its own segment (block-diagonal causal
//! mask; the sliding window is counted within the segment) and RoPE positions restart at 0
//! at every segment start, so each segment's numbers are those of a pass over it alone
//! (up to float rounding of the larger products).
//!
//! For LoRA training (`crates/train`), [`WhiteBox::set_lora`] adds trainable factors to any
//! projection and [`WhiteBox::set_frozen`] turns the base weights into graph constants, so
//! a backward pass computes gradients for the factors only; [`LoraMasks`] given to
//! [`WhiteBox::token_losses_packed`] multiply the LoRA branches' input (dropout).
//!
//! The architecture is exactly that of `gemma3.rs` (verified against llama.cpp): embeddings
//! scaled by √hidden; per layer RMSNorm → q/k/v → per-head RMSNorm of q and k → NeoX RoPE
//! (base 1e6 on every sixth layer, which is global; 1e4 and a sliding window elsewhere) →
//! grouped-query attention scaled by 1/√head_dim → output projection → post-attention
//! RMSNorm → residual; RMSNorm → GELU(gate)·up → down → post-FFN RMSNorm → residual; final
//! RMSNorm; logits against the embedding table. GGUF norm weights already hold `1 + w`, and
//! so do the `Var`s here: a gradient with respect to a norm weight is the gradient with
//! respect to the GGUF tensor.
//!
//! Differences from the quantized path are only numeric: weights here are the exact
//! dequantized GGUF values (the quantized path re-quantizes some to Q8_0) and activations
//! are never quantized (candle's quantized matmul quantizes them to 8 bits).

use std::io::{Read, Seek};

use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Tensor, Var, D};

use crate::gemma3::Config;
use crate::ops::{rms_norm, rope_tables, softmax_last};
use crate::LocalError;

/// Added to attention scores a query may not see. Finite, so that even a fully masked row
/// could never produce NaN; `exp` of it underflows to exactly 0 in f32.
const MASKED: f32 = -1e9;

struct Layer {
    attn_norm: Var,
    q: Var,
    k: Var,
    v: Var,
    o: Var,
    q_norm: Var,
    k_norm: Var,
    post_attn_norm: Var,
    ffn_norm: Var,
    gate: Var,
    up: Var,
    down: Var,
    post_ffn_norm: Var,
    global: bool,
    /// Optional trainable LoRA factors per projection, in the order of
    /// [`crate::lora::MODULES`] (q, k, v, o, gate, up, down).
    lora: [Option<LoraVars>; 7],
}

/// Trainable LoRA factors on one projection `W` (out, in): the projection computes
/// `x·Wᵀ + scale · (x·Aᵀ)·Bᵀ`, with `a` of shape (rank, in) and `b` (out, rank) — PEFT's
/// `lora_A` and `lora_B` in Hugging Face's row order (Gemma 3 GGUFs keep that order). The
/// base `W` is untouched, so gradients with respect to `a` and `b` are the LoRA gradients.
#[derive(Clone)]
pub struct LoraVars {
    pub a: Var,
    pub b: Var,
    pub scale: f64,
}

/// Multipliers of the input of the LoRA branches, for LoRA dropout in training:
/// `masks[layer][m]` (len, in), for projection `m` in the order of
/// [`crate::lora::MODULES`], multiplies that projection's LoRA input element-wise, so the
/// projection computes `x·Wᵀ + scale · ((x ∘ mask)·Aᵀ)·Bᵀ` (the base sees `x` unchanged);
/// `None` (or a shorter list) leaves the input as is.
pub type LoraMasks = Vec<[Option<Tensor>; 7]>;

/// Gemma 3 with every parameter an f32 [`Var`]; see the module documentation.
pub struct WhiteBox {
    pub cfg: Config,
    /// (vocab, hidden); also the output head.
    embed: Var,
    layers: Vec<Layer>,
    final_norm: Var,
    /// Every parameter under its GGUF tensor name, in load order.
    params: Vec<(String, Var)>,
    device: Device,
    /// When set, the base weights enter the graph as constants (no gradients computed or
    /// stored for them); only LoRA factors are differentiated.
    frozen: bool,
}

/// The result of a full-sequence forward pass.
pub struct Forward {
    /// (len, vocab): the next-token logits at every position.
    pub logits: Tensor,
    /// `cfg.layers + 1` tensors of shape (len, hidden): index 0 is the scaled embeddings,
    /// index `i` the residual stream after layer `i - 1` (before the final norm).
    pub residual: Vec<Tensor>,
}

impl WhiteBox {
    /// Dequantizes every tensor the model uses to an f32 `Var` (about 1.1 GB for Gemma 3
    /// 270M, 671 MB of it the embedding table).
    pub fn load<R: Read + Seek>(
        content: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Self, LocalError> {
        let cfg = Config::from_gguf(content)?;
        if content.tensor_infos.contains_key("output.weight") {
            // gemma3.rs ignores it too; the reference model ties the head to the embedding.
            tracing::warn!("GGUF has a separate `output.weight`; the white box uses the tied embedding as the output head");
        }
        let mut params = Vec::with_capacity(2 + 13 * cfg.layers);
        let mut var = |name: String, dims: &[usize]| -> Result<Var, LocalError> {
            let q = content
                .tensor(reader, &name, device)
                .map_err(|e| LocalError::Format(format!("tensor `{name}`: {e}")))?;
            let t = q.dequantize(device)?.to_dtype(DType::F32)?;
            if t.dims() != dims {
                return Err(LocalError::Format(format!(
                    "tensor `{name}` has shape {:?}, expected {dims:?}",
                    t.dims()
                )));
            }
            let v = Var::from_tensor(&t)?;
            params.push((name, v.clone()));
            Ok(v)
        };
        let (h, hd) = (cfg.hidden, cfg.head_dim);
        let (qd, kvd) = (cfg.heads * hd, cfg.kv_heads * hd);
        let embed = var("token_embd.weight".into(), &[cfg.vocab, h])?;
        let mut layers = Vec::with_capacity(cfg.layers);
        for i in 0..cfg.layers {
            let n = |s: &str| format!("blk.{i}.{s}.weight");
            layers.push(Layer {
                attn_norm: var(n("attn_norm"), &[h])?,
                q: var(n("attn_q"), &[qd, h])?,
                k: var(n("attn_k"), &[kvd, h])?,
                v: var(n("attn_v"), &[kvd, h])?,
                q_norm: var(n("attn_q_norm"), &[hd])?,
                k_norm: var(n("attn_k_norm"), &[hd])?,
                o: var(n("attn_output"), &[h, qd])?,
                post_attn_norm: var(n("post_attention_norm"), &[h])?,
                ffn_norm: var(n("ffn_norm"), &[h])?,
                gate: var(n("ffn_gate"), &[cfg.ffn, h])?,
                up: var(n("ffn_up"), &[cfg.ffn, h])?,
                down: var(n("ffn_down"), &[h, cfg.ffn])?,
                post_ffn_norm: var(n("post_ffw_norm"), &[h])?,
                global: cfg.is_global(i),
                lora: Default::default(),
            });
        }
        let final_norm = var("output_norm.weight".into(), &[h])?;
        Ok(WhiteBox {
            cfg,
            embed,
            layers,
            final_norm,
            params,
            device: device.clone(),
            frozen: false,
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Every parameter under its GGUF tensor name (236 for Gemma 3 270M). The `Var`s are
    /// the model's own: setting one changes the model.
    pub fn params(&self) -> Vec<(String, Var)> {
        self.params.clone()
    }

    /// Freezes (or unfreezes) the base weights: frozen, they are constants of the graph, so
    /// `backward()` computes gradients only for the LoRA factors set with
    /// [`WhiteBox::set_lora`] — for LoRA training, which never updates the base (and saves
    /// a gradient the size of the model per step).
    pub fn set_frozen(&mut self, frozen: bool) {
        self.frozen = frozen;
    }

    /// A base weight as the forward pass uses it: the `Var` itself, or a detached view of
    /// its storage when frozen.
    fn p(&self, v: &Var) -> Tensor {
        if self.frozen {
            v.as_detached_tensor()
        } else {
            v.as_tensor().clone()
        }
    }

    /// (out, in) of a projection, by its Hugging Face name (`q_proj` … `down_proj`, see
    /// [`crate::lora::MODULES`]); `None` for another name.
    pub fn projection_dims(&self, module: &str) -> Option<(usize, usize)> {
        let c = &self.cfg;
        let (qd, kvd) = (c.heads * c.head_dim, c.kv_heads * c.head_dim);
        Some(match module {
            "q_proj" => (qd, c.hidden),
            "k_proj" | "v_proj" => (kvd, c.hidden),
            "o_proj" => (c.hidden, qd),
            "gate_proj" | "up_proj" => (c.ffn, c.hidden),
            "down_proj" => (c.hidden, c.ffn),
            _ => return None,
        })
    }

    /// Puts LoRA factors on (or, with `None`, takes them off) one projection of one layer,
    /// checking their shapes. Every later forward pass adds the delta.
    pub fn set_lora(
        &mut self,
        layer: usize,
        module: &str,
        lora: Option<LoraVars>,
    ) -> Result<(), LocalError> {
        let n_layers = self.layers.len();
        let idx = crate::lora::MODULES
            .iter()
            .position(|m| *m == module)
            .ok_or_else(|| LocalError::Format(format!("unknown LoRA target `{module}`")))?;
        let (out, inn) = self.projection_dims(module).expect("a known module");
        if let Some(l) = &lora {
            let (ra, ia) = l.a.dims2()?;
            let (ob, rb) = l.b.dims2()?;
            if ia != inn || ob != out || ra != rb || ra == 0 {
                return Err(LocalError::Format(format!(
                    "LoRA for layer {layer} {module}: A is {ra}×{ia} and B {ob}×{rb}, but the weight is {out}×{inn}"
                )));
            }
        }
        let l = self.layers.get_mut(layer).ok_or_else(|| {
            LocalError::Format(format!(
                "LoRA for layer {layer}: the model has {n_layers} layers"
            ))
        })?;
        l.lora[idx] = lora;
        Ok(())
    }

    /// Full-sequence forward pass: logits at every position and the residual stream after
    /// every layer. Differentiable with respect to every parameter.
    pub fn forward(&self, ids: &[u32]) -> candle_core::Result<Forward> {
        self.forward_packed(ids, &[0])
    }

    /// [`WhiteBox::forward`] of a packed sequence: segments start at `starts` (the first at
    /// 0, strictly increasing), attend only within themselves, and have RoPE positions
    /// from 0 (module documentation).
    pub fn forward_packed(&self, ids: &[u32], starts: &[usize]) -> candle_core::Result<Forward> {
        let residual = self.trunk(ids, starts, self.cfg.layers, None)?;
        let last = residual
            .last()
            .expect("trunk returns at least the embeddings");
        let logits = self.head(last)?;
        Ok(Forward { logits, residual })
    }

    /// Negative log-likelihood of `ids[1..]`, each given the tokens before it: shape
    /// (len - 1,). Differentiable; `token_losses(ids)?.mean_all()?.backward()` is the usual
    /// language-modelling loss. Never applies LoRA dropout.
    pub fn token_losses(&self, ids: &[u32]) -> candle_core::Result<Tensor> {
        self.token_losses_packed(ids, &[0], None)
    }

    /// [`WhiteBox::token_losses`] of a packed sequence (segments at `starts`, as
    /// [`WhiteBox::forward_packed`]), with optional LoRA input masks (dropout). Entry `i`
    /// is the loss of `ids[i + 1]` given the tokens of its segment before it; where
    /// `i + 1` starts a segment, the entry predicts across the boundary and means nothing
    /// (a caller masks it out).
    pub fn token_losses_packed(
        &self,
        ids: &[u32],
        starts: &[usize],
        masks: Option<&LoraMasks>,
    ) -> candle_core::Result<Tensor> {
        if ids.len() < 2 {
            candle_core::bail!("token_losses needs at least two tokens, got {}", ids.len());
        }
        let n = ids.len() - 1;
        let residual = self.trunk(ids, starts, self.cfg.layers, masks)?;
        let last = residual
            .last()
            .expect("trunk returns at least the embeddings");
        // The last position predicts nothing here: skip its row of the (large) head.
        let logits = self.head(&last.narrow(0, 0, n)?)?; // (n, vocab)
        let max = logits.detach().max_keepdim(D::Minus1)?;
        let lse = (logits
            .broadcast_sub(&max)?
            .exp()?
            .sum_keepdim(D::Minus1)?
            .log()?
            + max)?;
        let targets = Tensor::new(&ids[1..], &self.device)?.reshape((n, 1))?;
        let picked = logits.gather(&targets, D::Minus1)?;
        (lse - picked)?.squeeze(1)
    }

    /// Residual-stream activations at `layer` (0 = scaled embeddings, `i` = after layer
    /// `i - 1`, as [`Forward::residual`]) for a prompt, as f32 rows (len, hidden) — for
    /// probes and later studies. Runs only the layers it needs. The result is detached from
    /// the autograd graph (it holds no intermediate tensors alive); use [`WhiteBox::forward`]
    /// for gradients with respect to activations.
    pub fn activations(&self, ids: &[u32], layer: usize) -> candle_core::Result<Tensor> {
        if layer > self.cfg.layers {
            candle_core::bail!(
                "layer {layer} out of range: the model has {} layers (0..={})",
                self.cfg.layers,
                self.cfg.layers
            );
        }
        let mut residual = self.trunk(ids, &[0], layer, None)?;
        Ok(residual.swap_remove(layer).detach())
    }

    /// Runs layers `0..upto` over the segments of `ids` starting at `starts`, with optional
    /// LoRA input masks; returns the residual stream before the first layer and after each.
    fn trunk(
        &self,
        ids: &[u32],
        starts: &[usize],
        upto: usize,
        masks: Option<&LoraMasks>,
    ) -> candle_core::Result<Vec<Tensor>> {
        let t = ids.len();
        if t == 0 {
            candle_core::bail!("empty token sequence");
        }
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= self.cfg.vocab) {
            candle_core::bail!("token id {bad} out of range (vocab {})", self.cfg.vocab);
        }
        if starts.first() != Some(&0)
            || starts.windows(2).any(|w| w[0] >= w[1])
            || starts.last().is_some_and(|&s| s >= t)
        {
            candle_core::bail!(
                "segment starts {starts:?} must begin at 0 and increase strictly below {t}"
            );
        }
        let cfg = &self.cfg;
        let rope_global = self.rope(cfg.rope_global, t, starts)?;
        let rope_local = self.rope(cfg.rope_local, t, starts)?;
        let group = cfg.heads / cfg.kv_heads;
        let mask_global = self.mask(t, starts, group, None)?;
        let mask_local = self.mask(t, starts, group, Some(cfg.sliding_window))?;
        if let Some(m) = masks {
            for (li, row) in m.iter().enumerate() {
                for (mi, mask) in row.iter().enumerate() {
                    let Some(mask) = mask else { continue };
                    let module = crate::lora::MODULES[mi];
                    let (_, inn) = self.projection_dims(module).expect("a known module");
                    if mask.dims() != [t, inn] {
                        candle_core::bail!(
                            "LoRA mask for layer {li} {module} has shape {:?}, expected [{t}, {inn}]",
                            mask.dims()
                        );
                    }
                }
            }
        }
        let mask_of = |li: usize, mi: usize| masks.and_then(|m| m.get(li)?[mi].as_ref());

        let ids_t = Tensor::new(ids, &self.device)?;
        let mut x = (self.p(&self.embed).index_select(&ids_t, 0)? * (cfg.hidden as f64).sqrt())?;
        let mut residual = Vec::with_capacity(upto + 1);
        residual.push(x.clone());
        for (li, layer) in self.layers.iter().enumerate().take(upto) {
            let lin = |x: &Tensor, w: &Var, mi: usize| {
                linear(x, &self.p(w), &layer.lora[mi], mask_of(li, mi))
            };
            let (rope, mask) = if layer.global {
                (&rope_global, &mask_global)
            } else {
                (&rope_local, &mask_local)
            };
            let h = rms_norm(&x, &self.p(&layer.attn_norm), cfg.eps)?;
            let q = heads(&lin(&h, &layer.q, 0)?, cfg.heads, cfg.head_dim)?; // (heads, t, d)
            let k = heads(&lin(&h, &layer.k, 1)?, cfg.kv_heads, cfg.head_dim)?; // (kv_heads, t, d)
            let v = heads(&lin(&h, &layer.v, 2)?, cfg.kv_heads, cfg.head_dim)?;
            let q = rope_apply(&rms_norm(&q, &self.p(&layer.q_norm), cfg.eps)?, rope)?;
            let k = rope_apply(&rms_norm(&k, &self.p(&layer.k_norm), cfg.eps)?, rope)?;
            // (kv_heads, group*t, d): one matmul serves all query heads sharing a kv head.
            let q = q.reshape((cfg.kv_heads, group * t, cfg.head_dim))?;
            let scores = (q.matmul(&k.t()?)? * cfg.attn_scale)?.broadcast_add(mask)?;
            let o = softmax_last(&scores)?.matmul(&v)?; // (kv_heads, group*t, d)
            let o = o
                .reshape((cfg.heads, t, cfg.head_dim))?
                .transpose(0, 1)?
                .reshape((t, cfg.heads * cfg.head_dim))?;
            let attn = rms_norm(
                &lin(&o, &layer.o, 3)?,
                &self.p(&layer.post_attn_norm),
                cfg.eps,
            )?;
            x = (x + attn)?;
            let h = rms_norm(&x, &self.p(&layer.ffn_norm), cfg.eps)?;
            let g = lin(&h, &layer.gate, 4)?.gelu()?;
            let u = lin(&h, &layer.up, 5)?;
            let m = rms_norm(
                &lin(&(g * u)?, &layer.down, 6)?,
                &self.p(&layer.post_ffn_norm),
                cfg.eps,
            )?;
            x = (x + m)?;
            residual.push(x.clone());
        }
        Ok(residual)
    }

    /// Final norm and the tied output head: (n, hidden) → (n, vocab).
    fn head(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        rms_norm(x, &self.p(&self.final_norm), self.cfg.eps)?.matmul(&self.p(&self.embed).t()?)
    }

    /// Additive mask (1, group*t, t) for the segments of a sequence starting at `starts`,
    /// rows laid out as the grouped query heads.
    fn mask(
        &self,
        t: usize,
        starts: &[usize],
        group: usize,
        window: Option<usize>,
    ) -> candle_core::Result<Tensor> {
        Tensor::from_vec(mask_values(t, starts, window), (1, t, t), &self.device)?
            .repeat((1, group, 1))
    }

    /// RoPE cos/sin tables (t, head_dim/2) for the positions of a sequence whose segments
    /// start at `starts`: position `i - start` of its segment for row `i`.
    fn rope(&self, base: f64, t: usize, starts: &[usize]) -> candle_core::Result<(Tensor, Tensor)> {
        let hd = self.cfg.head_dim;
        if starts.len() == 1 {
            return rope_tables(base, hd, t, &self.device);
        }
        let pos = positions(t, starts);
        let longest = pos.iter().max().map_or(0, |&p| p as usize + 1);
        let (cos, sin) = rope_tables(base, hd, longest, &self.device)?;
        let idx = Tensor::new(pos.as_slice(), &self.device)?;
        Ok((cos.index_select(&idx, 0)?, sin.index_select(&idx, 0)?))
    }
}

/// Each row's position within its segment (segments start at `starts`).
fn positions(t: usize, starts: &[usize]) -> Vec<u32> {
    let mut seg = 0;
    (0..t)
        .map(|i| {
            while seg + 1 < starts.len() && starts[seg + 1] <= i {
                seg += 1;
            }
            (i - starts[seg]) as u32
        })
        .collect()
}

/// Row-major (t, t) additive mask: query `i` sees key `j` iff both are in the same segment
/// (segments start at `starts`), `j <= i` and, with a window, `i - j < window` (the rule of
/// `gemma3.rs`, counted within the segment: positions restart at each segment start, so
/// their difference is `i - j`).
fn mask_values(t: usize, starts: &[usize], window: Option<usize>) -> Vec<f32> {
    let pos = positions(t, starts);
    let mut mask = vec![0f32; t * t];
    for i in 0..t {
        // The first row of `i`'s segment.
        let lo = i - pos[i] as usize;
        for j in 0..t {
            let visible = lo <= j && j <= i && window.is_none_or(|w| i - j < w);
            if !visible {
                mask[i * t + j] = MASKED;
            }
        }
    }
    mask
}

/// `x @ w.t()` for `w` of shape (out, in), plus `scale · ((x ∘ mask) @ a.t()) @ b.t()` with
/// LoRA (the mask, for dropout, only on the LoRA branch's input).
fn linear(
    x: &Tensor,
    w: &Tensor,
    lora: &Option<LoraVars>,
    mask: Option<&Tensor>,
) -> candle_core::Result<Tensor> {
    let y = x.matmul(&w.t()?)?;
    match lora {
        None => Ok(y),
        Some(l) => {
            let xl = match mask {
                Some(m) => (x * m)?,
                None => x.clone(),
            };
            let d = xl
                .matmul(&l.a.as_tensor().t()?)?
                .matmul(&l.b.as_tensor().t()?)?;
            y + (d * l.scale)?
        }
    }
}

/// (t, heads*d) → (heads, t, d), contiguous.
fn heads(x: &Tensor, n: usize, d: usize) -> candle_core::Result<Tensor> {
    let t = x.dim(0)?;
    x.reshape((t, n, d))?.transpose(0, 1)?.contiguous()
}

/// NeoX rotary embedding of `x` (heads, t, d) at positions 0..t.
fn rope_apply(x: &Tensor, (cos, sin): &(Tensor, Tensor)) -> candle_core::Result<Tensor> {
    crate::ops::rope(x, cos, sin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_is_causal_and_windowed() {
        let t = 6;
        let full = mask_values(t, &[0], None);
        let win = mask_values(t, &[0], Some(3));
        for i in 0..t {
            for j in 0..t {
                assert_eq!(full[i * t + j] == 0.0, j <= i, "global ({i},{j})");
                assert_eq!(
                    win[i * t + j] == 0.0,
                    j <= i && i - j < 3,
                    "local ({i},{j})"
                );
            }
        }
        // Each query sees itself, so no row is fully masked.
        assert!((0..t).all(|i| win[i * t + i] == 0.0));
    }

    /// Segments at rows 0, 3 and 5 of 8: positions 0 1 2 | 0 1 | 0 1 2. Query `i` sees key
    /// `j` iff both are in the same segment, `j <= i`, and (window 2) `i - j < 2`: e.g. row
    /// 4 sees rows 3 and 4 only, row 7 sees 6 and 7 (not 5, outside the window), row 5 only
    /// itself.
    #[test]
    fn packed_mask_is_block_diagonal_and_positions_restart() {
        let (t, starts) = (8, [0, 3, 5]);
        assert_eq!(positions(t, &starts), [0, 1, 2, 0, 1, 0, 1, 2]);
        let seg = [0, 0, 0, 1, 1, 2, 2, 2];
        let full = mask_values(t, &starts, None);
        let win = mask_values(t, &starts, Some(2));
        for i in 0..t {
            for j in 0..t {
                let same = seg[i] == seg[j];
                assert_eq!(full[i * t + j] == 0.0, same && j <= i, "global ({i},{j})");
                assert_eq!(
                    win[i * t + j] == 0.0,
                    same && j <= i && i - j < 2,
                    "local ({i},{j})"
                );
            }
        }
        let seen = |m: &[f32], i: usize| (0..t).filter(|j| m[i * t + j] == 0.0).collect::<Vec<_>>();
        assert_eq!(seen(&full, 4), [3, 4]);
        assert_eq!(seen(&full, 7), [5, 6, 7]);
        assert_eq!(seen(&win, 7), [6, 7]);
        assert_eq!(seen(&win, 5), [5]);
        // One segment is the plain causal mask.
        assert_eq!(mask_values(5, &[0], Some(3)), {
            let mut m = vec![0f32; 25];
            for i in 0..5 {
                for j in 0..5 {
                    if !(j <= i && i - j < 3) {
                        m[i * 5 + j] = MASKED;
                    }
                }
            }
            m
        });
    }

    #[test]
    fn softmax_and_rope_have_gradients() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let x = Var::from_vec(
            (0..12).map(|i| i as f32 * 0.3 - 1.0).collect::<Vec<f32>>(),
            (1, 3, 4),
            &dev,
        )?;
        let tables = rope_tables(10_000.0, 4, 3, &dev)?;
        let y = softmax_last(&rope_apply(x.as_tensor(), &tables)?)?;
        let w = Tensor::from_vec(
            (0..12).map(|i| (i % 5) as f32).collect::<Vec<f32>>(),
            (1, 3, 4),
            &dev,
        )?;
        let loss = (y * w)?.sum_all()?;
        let g = loss.backward()?;
        let gx = g.get(x.as_tensor()).expect("gradient reaches the input");
        let gx: Vec<f32> = gx.flatten_all()?.to_vec1()?;
        assert!(gx.iter().all(|v| v.is_finite()) && gx.iter().any(|v| *v != 0.0));
        Ok(())
    }
}
