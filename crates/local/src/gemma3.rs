//! Gemma 3 (text) on candle, from a GGUF file: our own model code.
//!
//! What it gets right that upstream candle's quantized Gemma 3 did not (measured here):
//! the MLP activation is GELU with the tanh approximation (not SiLU); RoPE tables are
//! built once per base frequency and only as long as the longest sequence seen so far
//! (not 131k positions in every layer); local layers attend only to the last
//! `sliding_window` positions during decoding as well as prefill; the embedding table
//! stays quantized (rows are dequantized on lookup) and doubles as the output head.
//!
//! Layer pattern (as llama.cpp and the reference implementation): every sixth layer is
//! global (RoPE base 1e6), the others are local sliding-window layers (RoPE base 1e4).
//! Norm weights in GGUF already hold `1 + w`. Embeddings are scaled by √hidden.
//!
//! What is not here: tokenisation (shammie-tokenizer), sampling and batching policy
//! (`engine.rs`), the training-safe f32 path (`white_box/gemma3.rs`).

use std::sync::Arc;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use crate::attn::attention;
use crate::ops::rope_tables;
use crate::rows::{add_rms_norm, gelu_mul, rms_norm, rope};
use crate::weights::{forward_all, md, md_f64, md_usize, Linear};
use crate::LocalError;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Config {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub ffn: usize,
    pub eps: f64,
    pub rope_global: f64,
    pub rope_local: f64,
    pub sliding_window: usize,
    /// Every `pattern`-th layer (1-based) is global.
    pub pattern: usize,
    pub vocab: usize,
    pub context: usize,
    /// Attention logits are multiplied by this.
    pub attn_scale: f64,
}

impl Config {
    pub fn from_gguf(c: &gguf_file::Content) -> Result<Self, LocalError> {
        let arch = md(c, "general.architecture")?
            .to_string()
            .map_err(|e| LocalError::Format(e.to_string()))?;
        if arch != "gemma3" {
            return Err(LocalError::Unsupported(format!(
                "architecture `{arch}` (this loader reads gemma3)"
            )));
        }
        let p = |k: &str| format!("gemma3.{k}");
        let hidden = md_usize(c, &p("embedding_length"))?;
        let heads = md_usize(c, &p("attention.head_count"))?;
        let head_dim = md_usize(c, &p("attention.key_length")).unwrap_or(hidden / heads);
        let vocab = c
            .tensor_infos
            .get("token_embd.weight")
            .map(|t| t.shape.dims()[0])
            .ok_or_else(|| LocalError::Format("no token_embd.weight tensor".into()))?;
        Ok(Config {
            hidden,
            layers: md_usize(c, &p("block_count"))?,
            heads,
            kv_heads: md_usize(c, &p("attention.head_count_kv")).unwrap_or(heads),
            head_dim,
            ffn: md_usize(c, &p("feed_forward_length"))?,
            eps: md_f64(c, &p("attention.layer_norm_rms_epsilon")).unwrap_or(1e-6),
            rope_global: md_f64(c, &p("rope.freq_base")).unwrap_or(1_000_000.0),
            rope_local: 10_000.0,
            sliding_window: md_usize(c, &p("attention.sliding_window")).unwrap_or(512),
            pattern: 6,
            vocab,
            context: md_usize(c, &p("context_length")).unwrap_or(32768),
            attn_scale: 1.0 / (head_dim as f64).sqrt(),
        })
    }

    pub fn is_global(&self, layer: usize) -> bool {
        (layer + 1).is_multiple_of(self.pattern)
    }
}

/// cos/sin tables for one RoPE base, grown on demand.
struct Rope {
    base: f64,
    head_dim: usize,
    cos: Tensor,
    sin: Tensor,
}

impl Rope {
    fn new(base: f64, head_dim: usize, len: usize, dev: &Device) -> candle_core::Result<Self> {
        let (cos, sin) = rope_tables(base, head_dim, len, dev)?;
        Ok(Rope {
            base,
            head_dim,
            cos,
            sin,
        })
    }

    fn ensure(&mut self, len: usize) -> candle_core::Result<()> {
        let have = self.cos.dim(0)?;
        if len > have {
            let want = len.max(have * 2).next_power_of_two();
            *self = Rope::new(self.base, self.head_dim, want, &self.cos.device().clone())?;
        }
        Ok(())
    }

    /// Rotates `x` of shape (batch, heads, seq, head_dim) whose tokens sit at positions
    /// `start..start+seq` (NeoX layout: the two halves of each head are rotated).
    fn apply(&self, x: &Tensor, start: usize) -> candle_core::Result<Tensor> {
        let seq = x.dim(2)?;
        let cos = self.cos.narrow(0, start, seq)?;
        let sin = self.sin.narrow(0, start, seq)?;
        rope(&x.contiguous()?, &cos, &sin, false)
    }
}

struct Layer {
    attn_norm: Tensor,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    q_norm: Tensor,
    k_norm: Tensor,
    post_attn_norm: Tensor,
    ffn_norm: Tensor,
    gate: Linear,
    up: Linear,
    down: Linear,
    post_ffn_norm: Tensor,
    global: bool,
}

/// One sequence's keys and values, per layer: (kv_heads, len, head_dim).
#[derive(Clone, Default)]
pub struct KvCache {
    pub(crate) layers: Vec<Option<(Tensor, Tensor)>>,
    /// Tokens already in the cache.
    pub len: usize,
}

impl KvCache {
    pub fn new(layers: usize) -> Self {
        KvCache {
            layers: vec![None; layers],
            len: 0,
        }
    }

    /// Layer `li`'s cached keys and values (heads, len, head_dim) with this step's `k`
    /// and `v` appended (not stored: the caller decides what to keep).
    pub(crate) fn extended(
        &self,
        li: usize,
        k: Tensor,
        v: Tensor,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        Ok(match &self.layers[li] {
            Some((pk, pv)) => (Tensor::cat(&[pk, &k], 1)?, Tensor::cat(&[pv, &v], 1)?),
            None => (k, v),
        })
    }

    /// Bytes held by the cached keys and values.
    pub fn bytes(&self) -> usize {
        self.layers
            .iter()
            .flatten()
            .map(|(k, v)| (k.elem_count() + v.elem_count()) * k.dtype().size_in_bytes())
            .sum()
    }

    /// Where layer `li`'s keys must start for a cache of `len` tokens, given its
    /// attention window (`None`: the layer sees everything), and where they start now.
    fn span(&self, li: usize, len: usize, window: Option<usize>) -> Option<(usize, usize)> {
        let (k, _) = self.layers[li].as_ref()?;
        let held = k.dim(1).ok()?;
        let need = window.map_or(0, |w| len.saturating_sub(w));
        Some((need, self.len - held))
    }

    /// Whether every layer still holds the keys a cache of its first `len` tokens would:
    /// a windowed layer that has dropped keys the shorter prefix needs cannot be cut back.
    pub fn can_truncate(&self, len: usize, window: impl Fn(usize) -> Option<usize>) -> bool {
        len <= self.len
            && (0..self.layers.len()).all(|li| match self.span(li, len, window(li)) {
                Some((need, have)) => need >= have,
                None => self.layers[li].is_none() && self.len == 0,
            })
    }

    /// This cache cut back to its first `len` tokens, exactly as if only those had been
    /// fed: every layer keeps the keys and values those positions (within its window)
    /// need. The tensors are views of this cache's; nothing is copied.
    pub fn truncated(
        &self,
        len: usize,
        window: impl Fn(usize) -> Option<usize>,
    ) -> candle_core::Result<KvCache> {
        if !self.can_truncate(len, &window) {
            candle_core::bail!("a cache of {} tokens cannot be cut back to {len}", self.len);
        }
        let mut layers = Vec::with_capacity(self.layers.len());
        for li in 0..self.layers.len() {
            layers.push(match &self.layers[li] {
                Some((k, v)) => {
                    let (need, have) = self.span(li, len, window(li)).expect("checked");
                    let (off, n) = (need - have, len - need);
                    Some((k.narrow(1, off, n)?, v.narrow(1, off, n)?))
                }
                None => None,
            });
        }
        Ok(KvCache { layers, len })
    }
}

/// The layout of one batched forward pass: every sequence's new tokens back to back.
pub(crate) struct Step {
    /// New tokens per sequence.
    pub lens: Vec<usize>,
    /// All new tokens, in sequence order.
    pub tokens: Vec<u32>,
    /// Longest position any sequence reaches in this step.
    pub max_pos: usize,
}

impl Step {
    pub(crate) fn new(seqs: &[(&[u32], &mut KvCache)]) -> Step {
        Step {
            lens: seqs.iter().map(|(t, _)| t.len()).collect(),
            tokens: seqs.iter().flat_map(|(t, _)| t.iter().copied()).collect(),
            max_pos: seqs.iter().map(|(t, c)| c.len + t.len()).max().unwrap_or(0),
        }
    }

    /// Splits the final hidden rows `x` (N, hidden) per sequence and advances each
    /// sequence's cache past its new tokens.
    pub(crate) fn finish(
        &self,
        x: &Tensor,
        seqs: &mut [(&[u32], &mut KvCache)],
    ) -> candle_core::Result<Vec<Tensor>> {
        let mut out = Vec::with_capacity(seqs.len());
        let mut off = 0;
        for (si, (_, cache)) in seqs.iter_mut().enumerate() {
            cache.len += self.lens[si];
            out.push(x.narrow(0, off, self.lens[si])?);
            off += self.lens[si];
        }
        Ok(out)
    }
}

pub struct Gemma3 {
    pub cfg: Config,
    /// The embedding table, unless the output head holds it (`Linear::tied_head`).
    embed: Option<Arc<QTensor>>,
    lm_head: Linear,
    layers: Vec<Layer>,
    final_norm: Tensor,
    rope_global: std::sync::Mutex<Rope>,
    rope_local: std::sync::Mutex<Rope>,
    device: Device,
}

impl Gemma3 {
    pub fn load<R: std::io::Read + std::io::Seek>(
        content: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Self, LocalError> {
        let cfg = Config::from_gguf(content)?;
        let mut get = |name: &str| -> Result<QTensor, LocalError> {
            content
                .tensor(reader, name, device)
                .map_err(|e| LocalError::Format(format!("tensor `{name}`: {e}")))
        };
        let mut norm =
            |name: &str| -> Result<Tensor, LocalError> { Ok(get(name)?.dequantize(device)?) };
        let final_norm = norm("output_norm.weight")?;
        let mut layers = Vec::with_capacity(cfg.layers);
        for i in 0..cfg.layers {
            let n = |s: &str| format!("blk.{i}.{s}.weight");
            let mut get = |name: &str| -> Result<QTensor, LocalError> {
                content
                    .tensor(reader, name, device)
                    .map_err(|e| LocalError::Format(format!("tensor `{name}`: {e}")))
            };
            let mut mm = |s: &str| -> Result<Linear, LocalError> { Linear::new(get(&n(s))?) };
            let (q, k, v, o) = (
                mm("attn_q")?,
                mm("attn_k")?,
                mm("attn_v")?,
                mm("attn_output")?,
            );
            let (gate, up, down) = (mm("ffn_gate")?, mm("ffn_up")?, mm("ffn_down")?);
            let mut vec = |s: &str| -> Result<Tensor, LocalError> {
                let name = n(s);
                Ok(content
                    .tensor(reader, &name, device)
                    .map_err(|e| LocalError::Format(format!("tensor `{name}`: {e}")))?
                    .dequantize(device)?)
            };
            layers.push(Layer {
                attn_norm: vec("attn_norm")?,
                q_norm: vec("attn_q_norm")?,
                k_norm: vec("attn_k_norm")?,
                post_attn_norm: vec("post_attention_norm")?,
                ffn_norm: vec("ffn_norm")?,
                post_ffn_norm: vec("post_ffw_norm")?,
                q,
                k,
                v,
                o,
                gate,
                up,
                down,
                global: cfg.is_global(i),
            });
        }
        let embed = Arc::new(
            content
                .tensor(reader, "token_embd.weight", device)
                .map_err(|e| LocalError::Format(format!("tensor `token_embd.weight`: {e}")))?,
        );
        if matches!(
            embed.dtype(),
            GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16
        ) {
            tracing::debug!("embedding table is not quantized; the output head dequantizes it");
        }
        let (lm_head, embed) = Linear::tied_head(embed)?;
        let rope_global = Rope::new(cfg.rope_global, cfg.head_dim, 1024, device)?;
        let rope_local = Rope::new(cfg.rope_local, cfg.head_dim, 1024, device)?;
        Ok(Gemma3 {
            cfg,
            embed,
            lm_head,
            layers,
            final_norm,
            rope_global: std::sync::Mutex::new(rope_global),
            rope_local: std::sync::Mutex::new(rope_local),
            device: device.clone(),
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Scaled embeddings of `ids`: (n, hidden).
    fn embed(&self, ids: &[u32]) -> candle_core::Result<Tensor> {
        let x = self.lm_head.embedding(self.embed.as_ref(), ids)?;
        x * (self.cfg.hidden as f64).sqrt()
    }

    /// Runs `tokens` of several sequences through the model, each sequence continuing its
    /// own cache. Returns the final hidden states (after the final norm) of every token,
    /// one tensor (len_i, hidden) per sequence.
    ///
    /// All sequences' tokens go through the projections and the MLP together (one pass over
    /// the weights); attention is computed per sequence against its own cache.
    /// Adds `a`'s deltas to the projections they target; every delta must find its
    /// layer and projection. Returns how many were applied.
    pub(crate) fn apply_adapter(
        &mut self,
        a: &crate::lora::Adapter,
        merge: bool,
    ) -> Result<usize, LocalError> {
        for (layer, module) in a.deltas.keys() {
            let l = self.layers.get_mut(*layer).ok_or_else(|| {
                LocalError::Format(format!(
                    "adapter {}: layer {layer} does not exist (the model has {})",
                    a.path.display(),
                    self.cfg.layers
                ))
            })?;
            let lin = match module.as_str() {
                "q_proj" => &mut l.q,
                "k_proj" => &mut l.k,
                "v_proj" => &mut l.v,
                "o_proj" => &mut l.o,
                "gate_proj" => &mut l.gate,
                "up_proj" => &mut l.up,
                _ => &mut l.down,
            };
            let lora = a.lora(*layer, module, None).expect("key from the adapter");
            let what = format!("layer {layer} {module}");
            if merge {
                lin.merge_lora(lora, &what)?;
            } else {
                lin.set_lora(lora, &what)?;
            }
        }
        Ok(a.deltas.len())
    }

    pub fn forward_hidden(
        &self,
        seqs: &mut [(&[u32], &mut KvCache)],
    ) -> candle_core::Result<Vec<Tensor>> {
        let step = Step::new(seqs);
        let lens = &step.lens;
        self.rope_global.lock().unwrap().ensure(step.max_pos)?;
        self.rope_local.lock().unwrap().ensure(step.max_pos)?;
        let rg = self.rope_global.lock().unwrap();
        let rl = self.rope_local.lock().unwrap();
        let cfg = &self.cfg;
        let mut x = self.embed(&step.tokens)?; // (N, hidden)
        for (li, layer) in self.layers.iter().enumerate() {
            let h = rms_norm(&x, &layer.attn_norm, cfg.eps)?;
            let [q, k, v]: [Tensor; 3] = forward_all(&h, &[&layer.q, &layer.k, &layer.v])?
                .try_into()
                .expect("three projections");
            let rope = if layer.global { &*rg } else { &*rl };
            let mut outs = Vec::with_capacity(seqs.len());
            let mut off = 0;
            for (si, (_, cache)) in seqs.iter_mut().enumerate() {
                let t = lens[si];
                let start = cache.len;
                let q = q
                    .narrow(0, off, t)?
                    .reshape((1, t, cfg.heads, cfg.head_dim))?
                    .transpose(1, 2)?;
                let k = k
                    .narrow(0, off, t)?
                    .reshape((1, t, cfg.kv_heads, cfg.head_dim))?
                    .transpose(1, 2)?;
                let v = v
                    .narrow(0, off, t)?
                    .reshape((1, t, cfg.kv_heads, cfg.head_dim))?
                    .transpose(1, 2)?;
                let q = rope.apply(&rms_norm(&q.contiguous()?, &layer.q_norm, cfg.eps)?, start)?;
                let k = rope.apply(&rms_norm(&k.contiguous()?, &layer.k_norm, cfg.eps)?, start)?;
                let (k, v) = (k.squeeze(0)?, v.squeeze(0)?.contiguous()?);
                let (k_all, v_all) = cache.extended(li, k, v)?;
                // Local layers never look further back than the window: keep only that much.
                let (k_all, v_all) = if !layer.global && k_all.dim(1)? > cfg.sliding_window + t {
                    let keep = cfg.sliding_window + t;
                    let drop = k_all.dim(1)? - keep;
                    (k_all.narrow(1, drop, keep)?, v_all.narrow(1, drop, keep)?)
                } else {
                    (k_all, v_all)
                };
                let kv_len = k_all.dim(1)?;
                let o = attention(
                    &q,
                    &k_all,
                    &v_all,
                    start,
                    cfg.attn_scale,
                    (!layer.global).then_some(cfg.sliding_window),
                )?;
                cache.layers[li] = Some(if layer.global {
                    (k_all, v_all)
                } else {
                    let keep = kv_len.min(cfg.sliding_window);
                    (
                        k_all.narrow(1, kv_len - keep, keep)?,
                        v_all.narrow(1, kv_len - keep, keep)?,
                    )
                });
                outs.push(o);
                off += t;
            }
            let attn = Tensor::cat(&outs, 0)?; // (N, heads*head_dim)
            let attn = layer.o.forward(&attn)?;
            x = add_rms_norm(&x, &attn, &layer.post_attn_norm, cfg.eps)?;
            let h = rms_norm(&x, &layer.ffn_norm, cfg.eps)?;
            let [g, u]: [Tensor; 2] = forward_all(&h, &[&layer.gate, &layer.up])?
                .try_into()
                .expect("two projections");
            let m = layer.down.forward(&gelu_mul(&g, &u)?)?;
            x = add_rms_norm(&x, &m, &layer.post_ffn_norm, cfg.eps)?;
        }
        let x = rms_norm(&x, &self.final_norm, cfg.eps)?;
        step.finish(&x, seqs)
    }

    /// Logits (n, vocab) from final hidden states (n, hidden).
    pub fn logits(&self, hidden: &Tensor) -> candle_core::Result<Tensor> {
        self.lm_head.forward(hidden)
    }

    /// Layer `li`'s attention window: `None` for global layers.
    pub fn window(&self, li: usize) -> Option<usize> {
        (!self.layers[li].global).then_some(self.cfg.sliding_window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache of `len` positions where layer 0 is global and layer 1 keeps a window of
    /// `w`; entry values are their positions, so a cut can be read back.
    fn cache(len: usize, w: usize) -> KvCache {
        let pos = |from: usize| {
            let v: Vec<f32> = (from..len).map(|p| p as f32).collect();
            Tensor::from_vec(v, (1, len - from, 1), &Device::Cpu).unwrap()
        };
        let local = len.saturating_sub(w);
        KvCache {
            layers: vec![Some((pos(0), pos(0))), Some((pos(local), pos(local)))],
            len,
        }
    }

    fn positions(c: &KvCache, li: usize) -> Vec<f32> {
        let (k, _) = c.layers[li].as_ref().unwrap();
        k.flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn a_cut_keeps_what_each_layer_would_hold_for_the_shorter_prompt() {
        let window = |li: usize| (li == 1).then_some(4);
        // Within the window: both layers hold everything, any cut works.
        let c = cache(4, 4);
        let t = c.truncated(2, window).unwrap();
        assert_eq!(t.len, 2);
        assert_eq!(positions(&t, 0), vec![0.0, 1.0]);
        assert_eq!(positions(&t, 1), vec![0.0, 1.0]);
        // Past the window: the windowed layer dropped positions 0..6, so the cache can
        // keep its full length (as a prefix of a longer prompt) but not be cut shorter.
        let c = cache(10, 4);
        assert_eq!(positions(&c, 1), vec![6.0, 7.0, 8.0, 9.0]);
        assert!(c.can_truncate(10, window));
        let same = c.truncated(10, window).unwrap();
        assert_eq!(positions(&same, 1), vec![6.0, 7.0, 8.0, 9.0]);
        assert_eq!(positions(&same, 0).len(), 10);
        assert!(!c.can_truncate(9, window));
        assert!(c.truncated(9, window).is_err());
        assert!(!c.can_truncate(11, window));
        // Without windows every cut works, and keeps the first `len` positions.
        let t = c.truncated(3, |_| None::<usize>);
        assert!(
            t.is_err(),
            "layer 1 of this cache is windowed whatever the caller says"
        );
        let g = KvCache {
            layers: vec![c.layers[0].clone()],
            len: 10,
        };
        let t = g.truncated(3, |_| None).unwrap();
        assert_eq!(positions(&t, 0), vec![0.0, 1.0, 2.0]);
        assert_eq!(t.bytes(), 3 * 2 * 4);
    }
}
