//! Llama (2/3) and Qwen2 / Qwen2.5 on candle, from a GGUF file: our own model code, with
//! the same shape as `gemma3` (ragged batches through `forward_hidden`, then `logits`).
//!
//! The two families share one decoder: pre-norm RMSNorm (weight `w`, not Gemma's `1 + w`),
//! no embedding scaling, grouped-query causal attention scaled by 1/√head_dim, a SiLU-gated
//! MLP `down(silu(gate x) · up x)`, a final RMSNorm and an output head that is
//! `output.weight` when the file has one and the embedding table otherwise. They differ in:
//! - Qwen2 adds biases to the q, k and v projections (`attn_{q,k,v}.bias`).
//! - RoPE layout. GGUF `llama` files were converted with q/k rows permuted so that the
//!   rotation pairs adjacent elements (x0,x1),(x2,x3),… ("normal" RoPE in llama.cpp);
//!   `qwen2` files keep the NeoX layout that rotates the first half against the second.
//!
//! RoPE frequency factors: Llama 3.1/3.2 GGUFs carry their "llama3" rope scaling as a
//! `rope_freqs.weight` tensor (one divisor per frequency), which llama.cpp applies at every
//! position; it is applied here too. Linear RoPE scaling (`{arch}.rope.scaling.type =
//! linear` with `rope.scaling.factor`, or the older `rope.scale_linear`) divides every
//! frequency by the factor, as llama.cpp's `freq_scale` does. Not here: YaRN scaling
//! (e.g. Qwen2.5 configured for contexts beyond 32k) is refused with a clear error rather
//! than silently computed differently from llama.cpp. No sliding
//! window (Qwen2's optional `use_sliding_window` is off in every released config).
//!
//! The training-safe f32 path for this family is `white_box/llama.rs`.

use std::sync::{Arc, Mutex};

use candle_core::quantized::{gguf_file, QTensor};
use candle_core::{Device, Tensor};

use crate::attn::attention;
use crate::rows::{add, add_bias, rms_norm, rope, silu_mul};
use crate::weights::{forward_all, md, md_f64, md_usize, Linear};
use crate::LocalError;

/// Which RoPE layout the file's q/k projections expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum RopeStyle {
    /// Adjacent pairs (x0,x1),(x2,x3),… are rotated (GGUF `llama`).
    Pairs,
    /// The first half of each head is rotated against the second (GGUF `qwen2`).
    NeoX,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LlamaConfig {
    /// `general.architecture`: `llama` or `qwen2`.
    pub arch: String,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub ffn: usize,
    pub eps: f64,
    pub rope_base: f64,
    /// Linear RoPE scaling factor (1: none): positions are divided by it.
    pub rope_linear_scale: f64,
    pub rope_style: RopeStyle,
    pub vocab: usize,
    pub context: usize,
    /// Attention logits are multiplied by this (1/√head_dim).
    pub attn_scale: f64,
    /// Whether the output head is the embedding table.
    pub tied_output: bool,
}

impl LlamaConfig {
    pub fn from_gguf(c: &gguf_file::Content) -> Result<Self, LocalError> {
        let arch = md(c, "general.architecture")?
            .to_string()
            .map_err(|e| LocalError::Format(e.to_string()))?
            .clone();
        let rope_style = match arch.as_str() {
            "llama" => RopeStyle::Pairs,
            "qwen2" => RopeStyle::NeoX,
            other => {
                return Err(LocalError::Unsupported(format!(
                    "architecture `{other}` (this loader reads llama and qwen2)"
                )))
            }
        };
        let p = |k: &str| format!("{arch}.{k}");
        let scaling_type = c
            .metadata
            .get(&p("rope.scaling.type"))
            .and_then(|v| v.to_string().ok().cloned());
        let rope_linear_scale = match scaling_type.as_deref() {
            None | Some("none") => md_f64(c, &p("rope.scale_linear")).unwrap_or(1.0),
            Some("linear") => md_f64(c, &p("rope.scaling.factor")).unwrap_or(1.0),
            Some(other) => {
                return Err(LocalError::Unsupported(format!(
                    "{arch}: RoPE scaling `{other}` (only linear scaling is implemented)"
                )))
            }
        };
        if !(rope_linear_scale.is_finite() && rope_linear_scale > 0.0) {
            return Err(LocalError::Format(format!(
                "{arch}: bad RoPE scaling factor {rope_linear_scale}"
            )));
        }
        let hidden = md_usize(c, &p("embedding_length"))?;
        let heads = md_usize(c, &p("attention.head_count"))?;
        let head_dim = md_usize(c, &p("attention.key_length")).unwrap_or(hidden / heads);
        let vocab = c
            .tensor_infos
            .get("token_embd.weight")
            .map(|t| t.shape.dims()[0])
            .ok_or_else(|| LocalError::Format("no token_embd.weight tensor".into()))?;
        let cfg = LlamaConfig {
            hidden,
            layers: md_usize(c, &p("block_count"))?,
            heads,
            kv_heads: md_usize(c, &p("attention.head_count_kv")).unwrap_or(heads),
            head_dim,
            ffn: md_usize(c, &p("feed_forward_length"))?,
            eps: md_f64(c, &p("attention.layer_norm_rms_epsilon"))?,
            rope_base: md_f64(c, &p("rope.freq_base")).unwrap_or(10_000.0),
            rope_linear_scale,
            rope_style,
            vocab,
            context: md_usize(c, &p("context_length")).unwrap_or(4096),
            attn_scale: 1.0 / (head_dim as f64).sqrt(),
            tied_output: !c.tensor_infos.contains_key("output.weight"),
            arch,
        };
        if cfg.heads == 0 || cfg.kv_heads == 0 || !cfg.heads.is_multiple_of(cfg.kv_heads) {
            return Err(LocalError::Format(format!(
                "{} query heads cannot share {} kv heads",
                cfg.heads, cfg.kv_heads
            )));
        }
        if !cfg.head_dim.is_multiple_of(2) {
            return Err(LocalError::Format(format!("odd head_dim {}", cfg.head_dim)));
        }
        Ok(cfg)
    }
}

/// A projection with an optional bias (Qwen2's q/k/v).
struct Proj {
    w: Linear,
    b: Option<Tensor>,
}

impl Proj {
    fn bias(&self, y: Tensor) -> candle_core::Result<Tensor> {
        match &self.b {
            Some(b) => add_bias(&y, b),
            None => Ok(y),
        }
    }
}

struct Layer {
    attn_norm: Tensor,
    q: Proj,
    k: Proj,
    v: Proj,
    o: Linear,
    ffn_norm: Tensor,
    gate: Linear,
    up: Linear,
    down: Linear,
}

pub use crate::gemma3::KvCache;
use crate::gemma3::Step;

/// cos/sin tables (len, head_dim/2), grown on demand. Frequency i is
/// `base^(-2i/head_dim) / (factors[i] · linear_scale)` (factors from `rope_freqs.weight`,
/// else 1).
struct Rope {
    cos: Tensor,
    sin: Tensor,
}

pub(crate) fn rope_tables(
    base: f64,
    head_dim: usize,
    factors: Option<&[f32]>,
    linear_scale: f64,
    len: usize,
    dev: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let half = head_dim / 2;
    let inv: Vec<f32> = (0..half)
        .map(|i| {
            let f = factors.and_then(|f| f.get(i)).copied().unwrap_or(1.0) as f64;
            (1.0 / base.powf(2.0 * i as f64 / head_dim as f64) / f / linear_scale) as f32
        })
        .collect();
    let inv = Tensor::from_vec(inv, (1, half), dev)?;
    let pos = Tensor::arange(0u32, len as u32, dev)?
        .to_dtype(candle_core::DType::F32)?
        .reshape((len, 1))?;
    let freqs = pos.matmul(&inv)?;
    Ok((freqs.cos()?, freqs.sin()?))
}

/// The per-frequency RoPE divisors of a Llama 3.1/3.2 file (`rope_freqs.weight`, one per
/// frequency, `head_dim / 2` of them), if it has them.
pub(crate) fn rope_factors<R: std::io::Read + std::io::Seek>(
    content: &gguf_file::Content,
    reader: &mut R,
    head_dim: usize,
) -> Result<Option<Vec<f32>>, LocalError> {
    const NAME: &str = "rope_freqs.weight";
    if !content.tensor_infos.contains_key(NAME) {
        return Ok(None);
    }
    let f = content
        .tensor(reader, NAME, &Device::Cpu)
        .map_err(|e| LocalError::Format(format!("tensor `{NAME}`: {e}")))?
        .dequantize(&Device::Cpu)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    if f.len() != head_dim / 2 {
        return Err(LocalError::Format(format!(
            "{NAME} has {} factors for head_dim {head_dim}",
            f.len()
        )));
    }
    Ok(Some(f))
}

pub struct Llama {
    pub cfg: LlamaConfig,
    /// The embedding table, unless the output head holds it (`Linear::tied_head`).
    embed: Option<Arc<QTensor>>,
    lm_head: Linear,
    layers: Vec<Layer>,
    final_norm: Tensor,
    rope: Mutex<Rope>,
    rope_factors: Option<Vec<f32>>,
    device: Device,
}

impl Llama {
    pub fn load<R: std::io::Read + std::io::Seek>(
        content: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Self, LocalError> {
        let cfg = LlamaConfig::from_gguf(content)?;
        let mut get = |name: &str| -> Result<QTensor, LocalError> {
            content
                .tensor(reader, name, device)
                .map_err(|e| LocalError::Format(format!("tensor `{name}`: {e}")))
        };
        let has = |name: &str| content.tensor_infos.contains_key(name);
        let final_norm = get("output_norm.weight")?.dequantize(device)?;
        let embed = Arc::new(get("token_embd.weight")?);
        let (lm_head, embed) = if cfg.tied_output {
            Linear::tied_head(embed)?
        } else {
            (Linear::new(get("output.weight")?)?, Some(embed))
        };
        let mut layers = Vec::with_capacity(cfg.layers);
        for i in 0..cfg.layers {
            let n = |s: &str| format!("blk.{i}.{s}");
            let mut vec =
                |s: &str| -> Result<Tensor, LocalError> { Ok(get(&n(s))?.dequantize(device)?) };
            let attn_norm = vec("attn_norm.weight")?;
            let ffn_norm = vec("ffn_norm.weight")?;
            let mut proj = |s: &str| -> Result<Proj, LocalError> {
                let w = Linear::new(get(&n(&format!("{s}.weight")))?)?;
                let bias = n(&format!("{s}.bias"));
                let b = if has(&bias) {
                    Some(get(&bias)?.dequantize(device)?)
                } else {
                    None
                };
                Ok(Proj { w, b })
            };
            let (q, k, v) = (proj("attn_q")?, proj("attn_k")?, proj("attn_v")?);
            let mut mm = |s: &str| -> Result<Linear, LocalError> {
                Linear::new(get(&n(&format!("{s}.weight")))?)
            };
            layers.push(Layer {
                attn_norm,
                q,
                k,
                v,
                o: mm("attn_output")?,
                ffn_norm,
                gate: mm("ffn_gate")?,
                up: mm("ffn_up")?,
                down: mm("ffn_down")?,
            });
        }
        let rope_factors = rope_factors(content, reader, cfg.head_dim)?;
        let (cos, sin) = rope_tables(
            cfg.rope_base,
            cfg.head_dim,
            rope_factors.as_deref(),
            cfg.rope_linear_scale,
            1024,
            device,
        )?;
        Ok(Llama {
            cfg,
            embed,
            lm_head,
            layers,
            final_norm,
            rope: Mutex::new(Rope { cos, sin }),
            rope_factors,
            device: device.clone(),
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Makes the RoPE tables cover positions `0..len` and returns them.
    fn rope_tables(&self, len: usize) -> candle_core::Result<(Tensor, Tensor)> {
        let mut r = self.rope.lock().unwrap();
        let have = r.cos.dim(0)?;
        if len > have {
            let want = len.max(have * 2).next_power_of_two();
            let (cos, sin) = rope_tables(
                self.cfg.rope_base,
                self.cfg.head_dim,
                self.rope_factors.as_deref(),
                self.cfg.rope_linear_scale,
                want,
                &self.device,
            )?;
            *r = Rope { cos, sin };
        }
        Ok((r.cos.clone(), r.sin.clone()))
    }

    /// Rotates `x` (1, heads, t, head_dim) at positions `start..start+t`.
    fn apply_rope(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        start: usize,
    ) -> candle_core::Result<Tensor> {
        let t = x.dim(2)?;
        let cos = cos.narrow(0, start, t)?;
        let sin = sin.narrow(0, start, t)?;
        let x = x.contiguous()?;
        match self.cfg.rope_style {
            RopeStyle::NeoX => rope(&x, &cos, &sin, false),
            RopeStyle::Pairs => rope(&x, &cos, &sin, true),
        }
    }

    /// Embeddings of `ids`: (n, hidden).
    fn embed(&self, ids: &[u32]) -> candle_core::Result<Tensor> {
        self.lm_head.embedding(self.embed.as_ref(), ids)
    }

    /// Runs `tokens` of several sequences through the model, each sequence continuing its
    /// own cache. Returns the final hidden states (after the final norm) of every token,
    /// one tensor (len_i, hidden) per sequence. Projections and MLP run on all tokens
    /// together; attention runs per sequence against its own cache.
    /// Adds `a`'s deltas to the projections they target; every delta must find its
    /// layer and projection. In `llama` files the query and key rows are interleaved
    /// per head (see `lora.rs`), so their deltas are too. Returns how many were applied.
    pub(crate) fn apply_adapter(
        &mut self,
        a: &crate::lora::Adapter,
        merge: bool,
    ) -> Result<usize, LocalError> {
        let pairs = self.cfg.rope_style == RopeStyle::Pairs;
        let (heads, kv_heads, hd) = (self.cfg.heads, self.cfg.kv_heads, self.cfg.head_dim);
        for (layer, module) in a.deltas.keys() {
            let layers = self.cfg.layers;
            let l = self.layers.get_mut(*layer).ok_or_else(|| {
                LocalError::Format(format!(
                    "adapter {}: layer {layer} does not exist (the model has {layers})",
                    a.path.display()
                ))
            })?;
            let (lin, permute) = match module.as_str() {
                "q_proj" => (&mut l.q.w, pairs.then_some((heads, hd))),
                "k_proj" => (&mut l.k.w, pairs.then_some((kv_heads, hd))),
                "v_proj" => (&mut l.v.w, None),
                "o_proj" => (&mut l.o, None),
                "gate_proj" => (&mut l.gate, None),
                "up_proj" => (&mut l.up, None),
                _ => (&mut l.down, None),
            };
            let lora = a
                .lora(*layer, module, permute)
                .expect("key from the adapter");
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
        let (cos, sin) = self.rope_tables(step.max_pos)?;
        let cfg = &self.cfg;
        let mut x = self.embed(&step.tokens)?; // (N, hidden)
        for (li, layer) in self.layers.iter().enumerate() {
            let h = rms_norm(&x, &layer.attn_norm, cfg.eps)?;
            let [q, k, v]: [Tensor; 3] = forward_all(&h, &[&layer.q.w, &layer.k.w, &layer.v.w])?
                .try_into()
                .expect("three projections");
            let (q, k, v) = (layer.q.bias(q)?, layer.k.bias(k)?, layer.v.bias(v)?);
            let mut outs = Vec::with_capacity(seqs.len());
            let mut off = 0;
            for (si, (_, cache)) in seqs.iter_mut().enumerate() {
                let t = lens[si];
                if t == 0 {
                    continue;
                }
                let start = cache.len;
                let split = |m: &Tensor, heads: usize| -> candle_core::Result<Tensor> {
                    m.narrow(0, off, t)?
                        .reshape((1, t, heads, cfg.head_dim))?
                        .transpose(1, 2)
                };
                let q = self.apply_rope(&split(&q, cfg.heads)?, &cos, &sin, start)?;
                let k = self.apply_rope(&split(&k, cfg.kv_heads)?, &cos, &sin, start)?;
                let v = split(&v, cfg.kv_heads)?;
                let (k, v) = (k.squeeze(0)?, v.squeeze(0)?.contiguous()?);
                let (k_all, v_all) = cache.extended(li, k, v)?;
                outs.push(attention(&q, &k_all, &v_all, start, cfg.attn_scale, None)?);
                cache.layers[li] = Some((k_all, v_all));
                off += t;
            }
            let attn = Tensor::cat(&outs, 0)?; // (N, heads*head_dim)
            x = add(&x, &layer.o.forward(&attn)?)?;
            let h = rms_norm(&x, &layer.ffn_norm, cfg.eps)?;
            let [g, u]: [Tensor; 2] = forward_all(&h, &[&layer.gate, &layer.up])?
                .try_into()
                .expect("two projections");
            x = add(&x, &layer.down.forward(&silu_mul(&g, &u)?)?)?;
        }
        let x = rms_norm(&x, &self.final_norm, cfg.eps)?;
        step.finish(&x, seqs)
    }

    /// Logits (n, vocab) from final hidden states (n, hidden).
    pub fn logits(&self, hidden: &Tensor) -> candle_core::Result<Tensor> {
        self.lm_head.forward(hidden)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_rope_scaling_divides_positions() {
        // With factor 4, position 4p rotates exactly as position p does unscaled.
        let dev = Device::Cpu;
        let (c1, s1) = rope_tables(10_000.0, 8, None, 1.0, 16, &dev).unwrap();
        let (c4, s4) = rope_tables(10_000.0, 8, None, 4.0, 64, &dev).unwrap();
        let (c1, s1, c4, s4) = (
            c1.to_vec2::<f32>().unwrap(),
            s1.to_vec2::<f32>().unwrap(),
            c4.to_vec2::<f32>().unwrap(),
            s4.to_vec2::<f32>().unwrap(),
        );
        for p in 0..16 {
            for i in 0..4 {
                assert!((c1[p][i] - c4[4 * p][i]).abs() < 1e-5, "cos p={p} i={i}");
                assert!((s1[p][i] - s4[4 * p][i]).abs() < 1e-5, "sin p={p} i={i}");
            }
        }
        // And differs from unscaled elsewhere.
        assert!((c1[3][0] - c4[3][0]).abs() > 1e-3);
    }
}
