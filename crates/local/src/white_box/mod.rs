//! The training-safe f32 "white-box" path: every weight dequantized from the GGUF into an
//! f32 candle [`Var`], and a full-sequence forward pass built only from ops whose gradients
//! candle 0.11 propagates (its own, or custom ops with a backward pass), so that `loss.backward()` reaches every parameter. For Gemma 3
//! (`white_box/gemma3.rs`) and the Llama 3 / Qwen2 family (`white_box/llama.rs`), picked
//! by the GGUF's `general.architecture`.
//!
//! Why not candle's own f32 models: their fused softmax and RoPE kernels have no backward
//! and their KV caches are written in place, so gradients silently stop at about half the
//! tensors; `QMatMul` (the quantized inference path) has no backward at all. Here:
//! - linear layers are `x.matmul(w.t())` on `Var`s (Matmul and Transpose have backward),
//!   plus a broadcast bias where the file has one (Qwen2's q/k/v);
//! - the embedding lookup is `index_select` (backward: `index_add`); a tied output head is
//!   the same `Var`, so its gradient is the sum of both uses;
//! - softmax is `exp(x - max) / sum`, the max taken on a `detach()`ed copy (a constant
//!   shift, so the result and its gradient are exact);
//! - RoPE is narrow / reshape / broadcast-mul / cat or stack (all with backward), the
//!   cos/sin tables constants;
//! - the causal (and sliding-window) mask is an additive constant (−1e9), no in-place
//!   writes;
//! - no KV cache: every call runs the whole sequence.
//!
//! Packed sequences ([`WhiteBox::forward_packed`], [`WhiteBox::token_losses_packed`],
//! [`WhiteBox::token_losses_packed_at`]): several independent sequences laid back to back
//! in one pass, each starting at an offset in `starts`. A query sees only keys of its own
//! segment (block-diagonal causal mask; a sliding window is counted within the segment)
//! and RoPE positions restart at 0 at every segment start (rows of the family's tables
//! for positions `0..longest segment`), so each segment's numbers are those of a pass over
//! it alone (up to float rounding of the larger products), for every family.
//!
//! The decoder skeleton is shared (this file): embeddings → per layer RMSNorm → q/k/v →
//! RoPE → grouped-query attention scaled by `attn_scale` → output projection → residual;
//! RMSNorm → act(gate)·up → down → residual; final RMSNorm → output head. What differs
//! between families — embedding scale, per-head q/k norms, RoPE layout and tables,
//! windows, post-norms, the MLP activation — is a `Family` implemented in the family's
//! own file, which also reads the family's tensors. Each family's forward pass is exactly
//! that of its quantized inference code (`crate::gemma3`, `crate::llama`), which is
//! pinned to llama.cpp.
//!
//! For LoRA training (`crates/train`), [`WhiteBox::set_lora`] adds trainable factors to any
//! projection and [`WhiteBox::set_frozen`] turns the base weights into graph constants, so
//! a backward pass computes gradients for the factors only; [`LoraMasks`] given to
//! [`WhiteBox::token_losses_packed`] or [`WhiteBox::token_losses_packed_at`] multiply the
//! LoRA branches' input (dropout). The factors are always in Hugging Face's (PEFT's) row
//! order; where a GGUF stores a projection's rows in another order (the query and key of
//! `llama` files, see `crate::lora`), B's rows are permuted the same way inside the
//! forward pass, so an adapter trained here and saved as PEFT files is the adapter the
//! inference path applies.
//!
//! Speed with frozen base weights (LoRA training) on the CPU: RMSNorm, softmax and GELU
//! run as fused kernels with their own backward passes (`white_box/fused.rs`; a trainable
//! norm weight takes the composite path), each projection also keeps its weight
//! transposed so both products read row-major operands ([`WhiteBox::set_frozen`]), and
//! the output head's loss and input gradient are formed in row chunks
//! (`white_box/head.rs`). All three are exact reformulations, tested against the
//! composite graphs in value and gradient.
//!
//! Differences from the quantized path are only numeric: weights here are the exact
//! dequantized GGUF values (the quantized path re-quantizes some to Q8_0) and activations
//! are never quantized (candle's quantized matmul quantizes them to 8 bits). On F32 files
//! the two agree to float rounding.

mod fused;
mod gemma3;
mod head;
mod llama;

use std::io::{Read, Seek};

use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Tensor, Var, D};

use crate::LocalError;
use fused::{rms_norm, softmax_last};

/// Added to attention scores a query may not see. Finite, so that even a fully masked row
/// could never produce NaN; `exp` of it underflows to exactly 0 in f32.
const MASKED: f32 = -1e9;

/// The sizes every family has.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `general.architecture`: `gemma3`, `llama` or `qwen2`.
    pub arch: String,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub ffn: usize,
    pub vocab: usize,
    /// RMSNorm epsilon.
    pub eps: f64,
    /// Attention logits are multiplied by this.
    pub attn_scale: f64,
}

/// Trainable LoRA factors on one projection `W` (out, in): the projection computes
/// `x·Wᵀ + scale · (x·Aᵀ)·Bᵀ`, with `a` of shape (rank, in) and `b` (out, rank) — PEFT's
/// `lora_A` and `lora_B` in Hugging Face's row order (for `llama` GGUFs' query and key,
/// the forward pass permutes B's rows to the file's order; module documentation). The
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
/// projection computes `x·Wᵀ + scale · ((x ∘ mask)·Aᵀ)·Bᵀ` (the base, and a bias, see `x`
/// unchanged); `None` (or a shorter list) leaves the input as is.
pub type LoraMasks = Vec<[Option<Tensor>; 7]>;

/// One projection: `x·Wᵀ`, plus a bias where the file has one, plus a LoRA delta when set.
struct Proj {
    w: Var,
    bias: Option<Var>,
    lora: Option<LoraVars>,
    /// Row `i` of the delta is row `lora_rows[i]` of `B·A` in Hugging Face's order: the
    /// permutation of the file's rows (`None`: the file keeps that order).
    lora_rows: Option<Tensor>,
    /// `w` transposed, row-major: set while the base weights are frozen on the CPU
    /// ([`fused::frozen_linear`]).
    wt: Option<fused::FrozenT>,
}

/// The parameters every family's layer has.
struct Layer {
    attn_norm: Var,
    /// q, k, v, o, gate, up, down: the order of [`crate::lora::MODULES`].
    proj: [Proj; 7],
    ffn_norm: Var,
}

/// RoPE tables (t, head_dim/2) and the attention window of one kind of layer.
struct AttnKind {
    cos: Tensor,
    sin: Tensor,
    /// `None`: every earlier position is visible.
    window: Option<usize>,
}

/// What a model family changes in the shared decoder (module documentation). Hooks that
/// read the family's own parameters get `frozen` to pass to [`param`].
trait Family: Send + Sync {
    /// The embeddings are multiplied by this.
    fn embed_scale(&self) -> f64;
    /// Every kind of attention layer the model has, for positions `0..t` (a packed
    /// sequence takes rows of these tables, see [`WhiteBox::forward_packed`]).
    fn attention_kinds(&self, t: usize, dev: &Device) -> candle_core::Result<Vec<AttnKind>>;
    /// Which of [`Family::attention_kinds`] layer `layer` uses.
    fn kind(&self, _layer: usize) -> usize {
        0
    }
    /// Per-head processing of q (heads, t, d) and k (kv_heads, t, d) before RoPE.
    fn qk_norm(
        &self,
        _layer: usize,
        q: Tensor,
        k: Tensor,
        _frozen: bool,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        Ok((q, k))
    }
    /// Rotary embedding of `x` (heads, t, d) at positions `0..t`.
    fn rope(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor>;
    /// Applied to the attention block's output before the residual add.
    fn post_attention(
        &self,
        _layer: usize,
        a: Tensor,
        _frozen: bool,
    ) -> candle_core::Result<Tensor> {
        Ok(a)
    }
    /// The MLP's gate activation.
    fn activation(&self, g: &Tensor) -> candle_core::Result<Tensor>;
    /// Applied to the MLP's output before the residual add.
    fn post_ffn(&self, _layer: usize, m: Tensor, _frozen: bool) -> candle_core::Result<Tensor> {
        Ok(m)
    }
}

/// A family's model as read from the file.
struct Parts {
    cfg: Config,
    family: Box<dyn Family>,
    embed: Var,
    /// `None`: the output head is the embedding table.
    output: Option<Var>,
    layers: Vec<Layer>,
    final_norm: Var,
}

/// Reads tensors into `Var`s, keeping the list of parameters in load order.
struct Loader<'a, R> {
    content: &'a gguf_file::Content,
    reader: &'a mut R,
    device: Device,
    params: Vec<(String, Var)>,
}

impl<R: Read + Seek> Loader<'_, R> {
    fn has(&self, name: &str) -> bool {
        self.content.tensor_infos.contains_key(name)
    }

    /// Tensor `name` dequantized to an f32 parameter of shape `dims`.
    fn var(&mut self, name: &str, dims: &[usize]) -> Result<Var, LocalError> {
        let q = self
            .content
            .tensor(self.reader, name, &self.device)
            .map_err(|e| LocalError::Format(format!("tensor `{name}`: {e}")))?;
        let t = q.dequantize(&self.device)?.to_dtype(DType::F32)?;
        if t.dims() != dims {
            return Err(LocalError::Format(format!(
                "tensor `{name}` has shape {:?}, expected {dims:?}",
                t.dims()
            )));
        }
        let v = Var::from_tensor(&t)?;
        self.params.push((name.to_string(), v.clone()));
        Ok(v)
    }

    /// The projection `{stem}.weight` (out, in), with `{stem}.bias` when `bias` is set and
    /// the file has it.
    fn proj(&mut self, stem: &str, out: usize, inn: usize, bias: bool) -> Result<Proj, LocalError> {
        let w = self.var(&format!("{stem}.weight"), &[out, inn])?;
        let b = format!("{stem}.bias");
        let bias = if bias && self.has(&b) {
            Some(self.var(&b, &[out])?)
        } else {
            None
        };
        Ok(Proj {
            w,
            bias,
            lora: None,
            lora_rows: None,
            wt: None,
        })
    }
}

/// A base weight as the forward pass uses it: the `Var` itself, or a detached view of its
/// storage when frozen.
fn param(v: &Var, frozen: bool) -> Tensor {
    if frozen {
        v.as_detached_tensor()
    } else {
        v.as_tensor().clone()
    }
}

/// A model with every parameter an f32 [`Var`]; see the module documentation.
pub struct WhiteBox {
    pub cfg: Config,
    family: Box<dyn Family>,
    /// (vocab, hidden).
    embed: Var,
    /// (vocab, hidden); `None` when the head is tied to the embedding.
    output: Option<Var>,
    layers: Vec<Layer>,
    final_norm: Var,
    /// Every parameter under its GGUF tensor name, in load order.
    params: Vec<(String, Var)>,
    device: Device,
    /// When set, the base weights enter the graph as constants (no gradients computed or
    /// stored for them); only LoRA factors are differentiated.
    frozen: bool,
    /// Projections whose inputs and output gradients are captured ([`Taps`]).
    taps: Option<std::sync::Arc<Taps>>,
}

/// Captures, for influence functions, the input of chosen projections and the gradient of
/// a loss with respect to their outputs. While set on a white box ([`WhiteBox::set_taps`]),
/// every forward pass records, for each tapped projection, its input (detached) and adds a
/// zero `Var` — a probe — to its output, so the output's value is unchanged and
/// `backward()` gives the probe's gradient: the loss gradient at the projection's output.
/// [`Taps::take`] returns them for the last forward pass.
pub struct Taps {
    /// (layer, projection) pairs, projections in the order of [`crate::lora::MODULES`].
    targets: Vec<(usize, usize)>,
    captured: std::sync::Mutex<Vec<Option<(Tensor, Var)>>>,
}

impl Taps {
    /// Taps `modules` (names of [`crate::lora::MODULES`]) in each of `layers`.
    pub fn new(layers: &[usize], modules: &[&str]) -> Result<Taps, LocalError> {
        let mut targets = Vec::new();
        for &l in layers {
            for m in modules {
                let mi = crate::lora::MODULES
                    .iter()
                    .position(|x| x == m)
                    .ok_or_else(|| LocalError::Format(format!("unknown projection `{m}`")))?;
                targets.push((l, mi));
            }
        }
        let n = targets.len();
        Ok(Taps {
            targets,
            captured: std::sync::Mutex::new(vec![None; n]),
        })
    }

    /// The tapped (layer, projection) pairs, in the order [`Taps::take`] returns them.
    pub fn targets(&self) -> Vec<(usize, &'static str)> {
        self.targets
            .iter()
            .map(|&(l, m)| (l, crate::lora::MODULES[m]))
            .collect()
    }

    /// The last forward pass's captures: per target, (input, probe). `None` for a target
    /// the pass did not reach.
    pub fn take(&self) -> Vec<Option<(Tensor, Var)>> {
        let mut c = self.captured.lock().expect("not poisoned");
        let n = c.len();
        std::mem::replace(&mut *c, vec![None; n])
    }

    fn record(
        &self,
        layer: usize,
        module: usize,
        x: &Tensor,
        y: Tensor,
    ) -> candle_core::Result<Tensor> {
        let Some(k) = self.targets.iter().position(|&t| t == (layer, module)) else {
            return Ok(y);
        };
        let probe = Var::zeros(y.dims(), y.dtype(), y.device())?;
        let out = (y + probe.as_tensor())?;
        self.captured.lock().expect("not poisoned")[k] = Some((x.detach(), probe));
        Ok(out)
    }
}

/// The result of a full-sequence forward pass.
pub struct Forward {
    /// (len, vocab): the next-token logits at every position.
    pub logits: Tensor,
    /// `cfg.layers + 1` tensors of shape (len, hidden): index 0 is the embeddings (scaled,
    /// for Gemma), index `i` the residual stream after layer `i - 1` (before the final
    /// norm).
    pub residual: Vec<Tensor>,
}

impl WhiteBox {
    /// Dequantizes every tensor the model uses to an f32 `Var` (about 1.1 GB for Gemma 3
    /// 270M, 671 MB of it the embedding table). Reads `gemma3`, `llama` and `qwen2` files.
    pub fn load<R: Read + Seek>(
        content: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Self, LocalError> {
        let arch = crate::weights::architecture(content);
        let mut l = Loader {
            content,
            reader,
            device: device.clone(),
            params: Vec::new(),
        };
        let parts = match arch.as_str() {
            "gemma3" => gemma3::load(&mut l)?,
            "llama" | "qwen2" => llama::load(&mut l)?,
            other => {
                return Err(LocalError::Unsupported(format!(
                    "architecture `{other}`; the white box reads gemma3, llama and qwen2"
                )))
            }
        };
        Ok(WhiteBox {
            cfg: parts.cfg,
            family: parts.family,
            embed: parts.embed,
            output: parts.output,
            layers: parts.layers,
            final_norm: parts.final_norm,
            params: l.params,
            device: device.clone(),
            frozen: false,
            taps: None,
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Every parameter under its GGUF tensor name (236 for Gemma 3 270M; biases and an
    /// untied output head included). The `Var`s are the model's own: setting one changes
    /// the model. Constants of the file (Llama 3's `rope_freqs.weight`) are not parameters.
    pub fn params(&self) -> Vec<(String, Var)> {
        self.params.clone()
    }

    /// Freezes (or unfreezes) the base weights: frozen, they are constants of the graph, so
    /// `backward()` computes gradients only for the LoRA factors set with
    /// [`WhiteBox::set_lora`] — for LoRA training, which never updates the base (and saves
    /// a gradient the size of the model per step).
    ///
    /// Freezing on the CPU also keeps a transposed copy of every projection's weight (one
    /// more copy of the layers' weights, 0.4 GB for Gemma 3 270M), so that both the
    /// forward and the backward product read a weight in the layout the matrix kernels
    /// are fastest with ([`fused::frozen_linear`]).
    pub fn set_frozen(&mut self, frozen: bool) -> candle_core::Result<()> {
        self.frozen = frozen;
        let cpu = self.device.is_cpu();
        for layer in &mut self.layers {
            for p in &mut layer.proj {
                p.wt = if frozen && cpu {
                    let t = p.w.as_detached_tensor().t()?.contiguous()?;
                    Some(fused::FrozenT(std::sync::Arc::new(fused::cpu_data(&t)?)))
                } else {
                    None
                };
            }
        }
        Ok(())
    }

    /// Captures projections' inputs and output gradients in later forward passes ([`Taps`]);
    /// `None` stops.
    pub fn set_taps(&mut self, taps: Option<std::sync::Arc<Taps>>) {
        self.taps = taps;
    }

    /// Negative log-likelihood of `targets[i]` as the token after position `positions[i]`
    /// (the logits at that position, after the tokens up to it): shape (positions.len(),).
    /// [`WhiteBox::token_losses_at`] with targets other than the sequence's own next
    /// tokens — e.g. labels sampled from the model, for a Fisher estimate.
    pub fn token_losses_for(
        &self,
        ids: &[u32],
        positions: &[usize],
        targets: &[u32],
    ) -> candle_core::Result<Tensor> {
        if positions.len() != targets.len() || positions.is_empty() {
            candle_core::bail!(
                "token_losses_for: {} positions and {} targets",
                positions.len(),
                targets.len()
            );
        }
        if let Some(bad) = positions.iter().find(|&&p| p >= ids.len()) {
            candle_core::bail!("position {bad} out of range (len {})", ids.len());
        }
        if let Some(bad) = targets.iter().find(|&&t| t as usize >= self.cfg.vocab) {
            candle_core::bail!("target {bad} out of range (vocab {})", self.cfg.vocab);
        }
        let residual = self.trunk(ids, &[0], self.cfg.layers, None)?;
        let last = residual
            .last()
            .expect("trunk returns at least the embeddings");
        let rows: Vec<u32> = positions.iter().map(|&p| p as u32).collect();
        let rows = Tensor::new(rows.as_slice(), &self.device)?;
        self.nll(&last.index_select(&rows, 0)?, targets)
    }

    fn p(&self, v: &Var) -> Tensor {
        param(v, self.frozen)
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
        l.proj[idx].lora = lora;
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
    /// (a caller masks it out, or uses [`WhiteBox::token_losses_packed_at`]).
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
        self.nll(&last.narrow(0, 0, n)?, &ids[1..])
    }

    /// Negative log-likelihood of `ids[p + 1]` given `ids[..=p]`, for each position `p` in
    /// `positions` (ascending, each below `len - 1`): shape (positions.len(),). Equal to
    /// picking those rows of [`WhiteBox::token_losses`], but the output head — a
    /// (hidden × vocab) product, the largest single cost of a training step with Gemma's
    /// 262k-token vocabulary — runs only on those rows, so masked prompt tokens cost
    /// nothing there, forward or backward.
    pub fn token_losses_at(&self, ids: &[u32], positions: &[usize]) -> candle_core::Result<Tensor> {
        self.token_losses_packed_at(ids, &[0], positions, None)
    }

    /// [`WhiteBox::token_losses_at`] of a packed sequence with optional LoRA input masks:
    /// the rows `positions` of [`WhiteBox::token_losses_packed`], the output head run only
    /// on them. A position whose next token starts a segment predicts across the boundary
    /// and is refused.
    pub fn token_losses_packed_at(
        &self,
        ids: &[u32],
        starts: &[usize],
        positions: &[usize],
        masks: Option<&LoraMasks>,
    ) -> candle_core::Result<Tensor> {
        if ids.len() < 2 {
            candle_core::bail!(
                "token_losses_at needs at least two tokens, got {}",
                ids.len()
            );
        }
        if positions.is_empty() {
            candle_core::bail!("token_losses_at needs at least one position");
        }
        if let Some(bad) = positions.iter().find(|&&p| p + 1 >= ids.len()) {
            candle_core::bail!("position {bad} has no next token (len {})", ids.len());
        }
        if let Some(bad) = positions.iter().find(|&&p| starts.contains(&(p + 1))) {
            candle_core::bail!(
                "position {bad} would predict the first token of the next segment (starts {starts:?})"
            );
        }
        let residual = self.trunk(ids, starts, self.cfg.layers, masks)?;
        let last = residual
            .last()
            .expect("trunk returns at least the embeddings");
        let rows: Vec<u32> = positions.iter().map(|&p| p as u32).collect();
        let rows = Tensor::new(rows.as_slice(), &self.device)?;
        let next: Vec<u32> = positions.iter().map(|&p| ids[p + 1]).collect();
        self.nll(&last.index_select(&rows, 0)?, &next)
    }

    /// The final hidden state — the residual stream after the last layer and the final
    /// norm, what the output head reads — at each of `positions` of a packed sequence
    /// (segments at `starts`, as [`WhiteBox::forward_packed`]), with optional LoRA input
    /// masks: shape (positions.len(), hidden). Differentiable; a preference model's
    /// scalar head reads it at a sequence's last token (`shammie_train::pm`).
    pub fn final_hidden_packed_at(
        &self,
        ids: &[u32],
        starts: &[usize],
        positions: &[usize],
        masks: Option<&LoraMasks>,
    ) -> candle_core::Result<Tensor> {
        if positions.is_empty() {
            candle_core::bail!("final_hidden_packed_at needs at least one position");
        }
        if let Some(bad) = positions.iter().find(|&&p| p >= ids.len()) {
            candle_core::bail!("position {bad} out of range (len {})", ids.len());
        }
        let residual = self.trunk(ids, starts, self.cfg.layers, masks)?;
        let last = residual
            .last()
            .expect("trunk returns at least the embeddings");
        let rows: Vec<u32> = positions.iter().map(|&p| p as u32).collect();
        let rows = Tensor::new(rows.as_slice(), &self.device)?;
        rms_norm(
            &last.index_select(&rows, 0)?,
            &self.p(&self.final_norm),
            self.cfg.eps,
        )
    }

    /// Negative log-likelihood of `targets[r]` under the head's logits for row `r` of `x`
    /// (n, hidden): shape (n,). With frozen base weights the head runs in row chunks with
    /// its gradient formed in the same pass (`white_box/head.rs`); otherwise the plain
    /// graph, whose log-sum-exp max is a detached constant shift.
    fn nll(&self, x: &Tensor, targets: &[u32]) -> candle_core::Result<Tensor> {
        if self.frozen {
            let w = self.p(self.output.as_ref().unwrap_or(&self.embed));
            let h = rms_norm(x, &self.p(&self.final_norm), self.cfg.eps)?;
            return head::frozen_head_nll(&h, &w, targets);
        }
        let n = targets.len();
        let logits = self.head(x)?; // (n, vocab)
        let max = logits.detach().max_keepdim(D::Minus1)?;
        let lse = (logits
            .broadcast_sub(&max)?
            .exp()?
            .sum_keepdim(D::Minus1)?
            .log()?
            + max)?;
        let targets = Tensor::new(targets, &self.device)?.reshape((n, 1))?;
        let picked = logits.gather(&targets, D::Minus1)?;
        (lse - picked)?.squeeze(1)
    }

    /// Residual-stream activations at `layer` (0 = embeddings, `i` = after layer `i - 1`,
    /// as [`Forward::residual`]) for a prompt, as f32 rows (len, hidden) — for probes and
    /// later studies. Runs only the layers it needs. The result is detached from the
    /// autograd graph (it holds no intermediate tensors alive); use [`WhiteBox::forward`]
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
        let lora_mask = |li: usize, mi: usize| masks.and_then(|m| m.get(li)?[mi].as_ref());
        let cfg = &self.cfg;
        let fam = &*self.family;
        let frozen = self.frozen;
        let group = cfg.heads / cfg.kv_heads;
        let kinds = self.attention_kinds(t, starts)?;
        let attn_masks = kinds
            .iter()
            .map(|k| self.mask(t, starts, group, k.window))
            .collect::<candle_core::Result<Vec<_>>>()?;

        let ids_t = Tensor::new(ids, &self.device)?;
        let mut x = self.p(&self.embed).index_select(&ids_t, 0)?;
        let scale = fam.embed_scale();
        if scale != 1.0 {
            x = (x * scale)?;
        }
        let mut residual = Vec::with_capacity(upto + 1);
        residual.push(x.clone());
        for (li, layer) in self.layers.iter().take(upto).enumerate() {
            let kind = fam.kind(li);
            let (rope, mask) = (&kinds[kind], &attn_masks[kind]);
            let [q, k, v, o, gate, up, down] = &layer.proj;
            let lin = |mi: usize, p: &Proj, x: &Tensor| {
                let y = self.linear(p, x, lora_mask(li, mi))?;
                match &self.taps {
                    Some(t) => t.record(li, mi, x, y),
                    None => Ok(y),
                }
            };
            let h = rms_norm(&x, &self.p(&layer.attn_norm), cfg.eps)?;
            let q = heads(&lin(0, q, &h)?, cfg.heads, cfg.head_dim)?; // (heads, t, d)
            let k = heads(&lin(1, k, &h)?, cfg.kv_heads, cfg.head_dim)?; // (kv_heads, t, d)
            let v = heads(&lin(2, v, &h)?, cfg.kv_heads, cfg.head_dim)?;
            let (q, k) = fam.qk_norm(li, q, k, frozen)?;
            let q = fam.rope(&q, &rope.cos, &rope.sin)?;
            let k = fam.rope(&k, &rope.cos, &rope.sin)?;
            // (kv_heads, group*t, d): one matmul serves all query heads sharing a kv head.
            let q = q.reshape((cfg.kv_heads, group * t, cfg.head_dim))?;
            let scores = (q.matmul(&k.t()?)? * cfg.attn_scale)?.broadcast_add(mask)?;
            let a = softmax_last(&scores)?.matmul(&v)?; // (kv_heads, group*t, d)
            let a = a
                .reshape((cfg.heads, t, cfg.head_dim))?
                .transpose(0, 1)?
                .reshape((t, cfg.heads * cfg.head_dim))?;
            let a = fam.post_attention(li, lin(3, o, &a)?, frozen)?;
            x = (x + a)?;
            let h = rms_norm(&x, &self.p(&layer.ffn_norm), cfg.eps)?;
            let g = fam.activation(&lin(4, gate, &h)?)?;
            let u = lin(5, up, &h)?;
            let m = fam.post_ffn(li, lin(6, down, &(g * u)?)?, frozen)?;
            x = (x + m)?;
            residual.push(x.clone());
        }
        Ok(residual)
    }

    /// Final norm and the output head: (n, hidden) → (n, vocab).
    fn head(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let w = self.output.as_ref().unwrap_or(&self.embed);
        rms_norm(x, &self.p(&self.final_norm), self.cfg.eps)?.matmul(&self.p(w).t()?)
    }

    /// `x·Wᵀ (+ b)` for `W` of shape (out, in), plus `scale · ((x ∘ mask)·Aᵀ)·Bᵀ` with LoRA
    /// (B's rows in the file's order; the mask, for dropout, only on the LoRA branch's
    /// input).
    fn linear(&self, p: &Proj, x: &Tensor, mask: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let mut y = match (&p.wt, self.frozen) {
            (Some(wt), true) => fused::frozen_linear(x, &self.p(&p.w), wt)?,
            _ => x.matmul(&self.p(&p.w).t()?)?,
        };
        if let Some(b) = &p.bias {
            y = y.broadcast_add(&self.p(b))?;
        }
        if let Some(l) = &p.lora {
            let b = match &p.lora_rows {
                Some(rows) => l.b.as_tensor().index_select(rows, 0)?,
                None => l.b.as_tensor().clone(),
            };
            let xl = match mask {
                Some(m) => (x * m)?,
                None => x.clone(),
            };
            let d = xl.matmul(&l.a.as_tensor().t()?)?.matmul(&b.t()?)?;
            y = (y + (d * l.scale)?)?;
        }
        Ok(y)
    }

    /// The family's attention kinds for the rows of a sequence whose segments start at
    /// `starts`: RoPE tables at position `i - start` of its segment for row `i`.
    fn attention_kinds(&self, t: usize, starts: &[usize]) -> candle_core::Result<Vec<AttnKind>> {
        if starts.len() == 1 {
            return self.family.attention_kinds(t, &self.device);
        }
        let pos = positions(t, starts);
        let longest = pos.iter().max().map_or(0, |&p| p as usize + 1);
        let idx = Tensor::new(pos.as_slice(), &self.device)?;
        self.family
            .attention_kinds(longest, &self.device)?
            .into_iter()
            .map(|k| {
                Ok(AttnKind {
                    cos: k.cos.index_select(&idx, 0)?,
                    sin: k.sin.index_select(&idx, 0)?,
                    window: k.window,
                })
            })
            .collect()
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

/// (t, heads*d) → (heads, t, d), contiguous.
fn heads(x: &Tensor, n: usize, d: usize) -> candle_core::Result<Tensor> {
    let t = x.dim(0)?;
    x.reshape((t, n, d))?.transpose(0, 1)?.contiguous()
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
        let (cos, sin) = crate::ops::rope_tables(10_000.0, 4, 3, &dev)?;
        let y = softmax_last(&crate::ops::rope(x.as_tensor(), &cos, &sin)?)?;
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
