//! The Llama 3 / Qwen2 family on the white box: exactly the architecture of `crate::llama`
//! (pinned to llama.cpp). Unscaled embeddings; per layer RMSNorm (weight `w`, not Gemma's
//! `1 + w`) → q/k/v, with Qwen2's q/k/v biases (trainable parameters like the weights) →
//! RoPE with the file's base, Llama 3's per-frequency factors (`rope_freqs.weight`, a
//! constant) and linear scaling, as `LlamaConfig` reads them → grouped-query causal
//! attention scaled by 1/√head_dim → output projection → residual; RMSNorm →
//! SiLU(gate)·up → down → residual; final RMSNorm; logits against `output.weight`, or the
//! embedding table when the file has none. No logit soft-capping, no sliding window.
//!
//! RoPE layout: `qwen2` files keep Hugging Face's order (NeoX rotation, first half of a
//! head against the second); `llama` files were converted with each head's q/k rows
//! interleaved, so the rotation pairs adjacent elements and a LoRA delta on `q_proj` or
//! `k_proj`, whose B is in Hugging Face's order, has its rows interleaved the same way
//! (`crate::lora::interleave_rows`, as the inference path does).

use std::io::{Read, Seek};

use candle_core::{Device, Tensor};

use super::{AttnKind, Config, Family, Layer, Loader, Parts};
use crate::llama::{rope_factors, rope_tables, LlamaConfig, RopeStyle};
use crate::lora::interleave_rows;
use crate::ops::{rope, rope_pairs};
use crate::LocalError;

struct Llama {
    cfg: LlamaConfig,
    /// Llama 3's RoPE frequency divisors, if the file has them.
    factors: Option<Vec<f32>>,
}

/// The index taking a (heads·hd)-row matrix from Hugging Face's row order to a `llama`
/// file's: row `i` of the result is row `index[i]` of the input.
fn interleaved_index(heads: usize, hd: usize, dev: &Device) -> candle_core::Result<Tensor> {
    let rows = heads * hd;
    let src: Vec<f32> = (0..rows).map(|i| i as f32).collect();
    let index: Vec<u32> = interleave_rows(&src, rows, 1, heads, hd)
        .into_iter()
        .map(|i| i as u32)
        .collect();
    Tensor::from_vec(index, rows, dev)
}

pub(super) fn load<R: Read + Seek>(l: &mut Loader<'_, R>) -> Result<Parts, LocalError> {
    let cfg = LlamaConfig::from_gguf(l.content)?;
    let factors = rope_factors(l.content, l.reader, cfg.head_dim)?;
    let (h, hd) = (cfg.hidden, cfg.head_dim);
    let (qd, kvd) = (cfg.heads * hd, cfg.kv_heads * hd);
    let interleaved = cfg.rope_style == RopeStyle::Pairs;
    let q_rows = interleaved
        .then(|| interleaved_index(cfg.heads, hd, &l.device))
        .transpose()?;
    let k_rows = interleaved
        .then(|| interleaved_index(cfg.kv_heads, hd, &l.device))
        .transpose()?;
    let embed = l.var("token_embd.weight", &[cfg.vocab, h])?;
    let output = if cfg.tied_output {
        None
    } else {
        Some(l.var("output.weight", &[cfg.vocab, h])?)
    };
    let mut layers = Vec::with_capacity(cfg.layers);
    for i in 0..cfg.layers {
        let n = |s: &str| format!("blk.{i}.{s}");
        let attn_norm = l.var(&n("attn_norm.weight"), &[h])?;
        let mut q = l.proj(&n("attn_q"), qd, h, true)?;
        let mut k = l.proj(&n("attn_k"), kvd, h, true)?;
        let v = l.proj(&n("attn_v"), kvd, h, true)?;
        q.lora_rows = q_rows.clone();
        k.lora_rows = k_rows.clone();
        let o = l.proj(&n("attn_output"), h, qd, false)?;
        let ffn_norm = l.var(&n("ffn_norm.weight"), &[h])?;
        let gate = l.proj(&n("ffn_gate"), cfg.ffn, h, false)?;
        let up = l.proj(&n("ffn_up"), cfg.ffn, h, false)?;
        let down = l.proj(&n("ffn_down"), h, cfg.ffn, false)?;
        layers.push(Layer {
            attn_norm,
            proj: [q, k, v, o, gate, up, down],
            ffn_norm,
        });
    }
    let final_norm = l.var("output_norm.weight", &[h])?;
    Ok(Parts {
        cfg: Config {
            arch: cfg.arch.clone(),
            hidden: cfg.hidden,
            layers: cfg.layers,
            heads: cfg.heads,
            kv_heads: cfg.kv_heads,
            head_dim: cfg.head_dim,
            ffn: cfg.ffn,
            vocab: cfg.vocab,
            eps: cfg.eps,
            attn_scale: cfg.attn_scale,
        },
        family: Box::new(Llama { cfg, factors }),
        embed,
        output,
        layers,
        final_norm,
    })
}

impl Family for Llama {
    fn embed_scale(&self) -> f64 {
        1.0
    }

    fn attention_kinds(&self, t: usize, dev: &Device) -> candle_core::Result<Vec<AttnKind>> {
        let c = &self.cfg;
        let (cos, sin) = rope_tables(
            c.rope_base,
            c.head_dim,
            self.factors.as_deref(),
            c.rope_linear_scale,
            t,
            dev,
        )?;
        Ok(vec![AttnKind {
            cos,
            sin,
            window: None,
        }])
    }

    fn rope(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
        match self.cfg.rope_style {
            RopeStyle::NeoX => rope(x, cos, sin),
            RopeStyle::Pairs => rope_pairs(x, cos, sin),
        }
    }

    fn activation(&self, g: &Tensor) -> candle_core::Result<Tensor> {
        g.silu()
    }
}
