//! Gemma 3 on the white box: exactly the architecture of `crate::gemma3` (verified against
//! llama.cpp). Embeddings scaled by √hidden; per layer RMSNorm → q/k/v → per-head RMSNorm
//! of q and k → NeoX RoPE (base `rope.freq_base`, 1e6, on every sixth layer, which is
//! global; 1e4 and a sliding window elsewhere) → attention scaled by 1/√head_dim → output
//! projection → post-attention RMSNorm → residual; RMSNorm → GELU(gate)·up → down →
//! post-FFN RMSNorm → residual; final RMSNorm; logits against the embedding table (tied).
//! GGUF norm weights already hold `1 + w`, and so do the `Var`s here: a gradient with
//! respect to a norm weight is the gradient with respect to the GGUF tensor.

use std::io::{Read, Seek};

use candle_core::{Device, Tensor, Var};

use super::fused::{gelu_tanh, rms_norm};
use super::{param, AttnKind, Config, Family, Layer, Loader, Parts};
use crate::gemma3::Config as Gemma3Config;
use crate::ops::{rope, rope_tables};
use crate::LocalError;

/// Gemma's parameters beyond the shared skeleton, per layer.
struct Norms {
    q: Var,
    k: Var,
    post_attn: Var,
    post_ffn: Var,
}

struct Gemma3 {
    cfg: Gemma3Config,
    norms: Vec<Norms>,
}

pub(super) fn load<R: Read + Seek>(l: &mut Loader<'_, R>) -> Result<Parts, LocalError> {
    let cfg = Gemma3Config::from_gguf(l.content)?;
    if l.has("output.weight") {
        // gemma3.rs ignores it too; the reference model ties the head to the embedding.
        tracing::warn!("GGUF has a separate `output.weight`; the white box uses the tied embedding as the output head");
    }
    let (h, hd) = (cfg.hidden, cfg.head_dim);
    let (qd, kvd) = (cfg.heads * hd, cfg.kv_heads * hd);
    let embed = l.var("token_embd.weight", &[cfg.vocab, h])?;
    let mut layers = Vec::with_capacity(cfg.layers);
    let mut norms = Vec::with_capacity(cfg.layers);
    for i in 0..cfg.layers {
        let n = |s: &str| format!("blk.{i}.{s}");
        let w = |s: &str| format!("blk.{i}.{s}.weight");
        let attn_norm = l.var(&w("attn_norm"), &[h])?;
        let q = l.proj(&n("attn_q"), qd, h, false)?;
        let k = l.proj(&n("attn_k"), kvd, h, false)?;
        let v = l.proj(&n("attn_v"), kvd, h, false)?;
        let q_norm = l.var(&w("attn_q_norm"), &[hd])?;
        let k_norm = l.var(&w("attn_k_norm"), &[hd])?;
        let o = l.proj(&n("attn_output"), h, qd, false)?;
        let post_attn = l.var(&w("post_attention_norm"), &[h])?;
        let ffn_norm = l.var(&w("ffn_norm"), &[h])?;
        let gate = l.proj(&n("ffn_gate"), cfg.ffn, h, false)?;
        let up = l.proj(&n("ffn_up"), cfg.ffn, h, false)?;
        let down = l.proj(&n("ffn_down"), h, cfg.ffn, false)?;
        let post_ffn = l.var(&w("post_ffw_norm"), &[h])?;
        layers.push(Layer {
            attn_norm,
            proj: [q, k, v, o, gate, up, down],
            ffn_norm,
        });
        norms.push(Norms {
            q: q_norm,
            k: k_norm,
            post_attn,
            post_ffn,
        });
    }
    let final_norm = l.var("output_norm.weight", &[h])?;
    Ok(Parts {
        cfg: Config {
            arch: "gemma3".into(),
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
        family: Box::new(Gemma3 { cfg, norms }),
        embed,
        output: None,
        layers,
        final_norm,
    })
}

/// Attention kinds: 0 global, 1 local (sliding window).
impl Family for Gemma3 {
    fn embed_scale(&self) -> f64 {
        (self.cfg.hidden as f64).sqrt()
    }

    fn attention_kinds(&self, t: usize, dev: &Device) -> candle_core::Result<Vec<AttnKind>> {
        let (hd, c) = (self.cfg.head_dim, &self.cfg);
        let (gc, gs) = rope_tables(c.rope_global, hd, t, dev)?;
        let (lc, ls) = rope_tables(c.rope_local, hd, t, dev)?;
        Ok(vec![
            AttnKind {
                cos: gc,
                sin: gs,
                window: None,
            },
            AttnKind {
                cos: lc,
                sin: ls,
                window: Some(c.sliding_window),
            },
        ])
    }

    fn kind(&self, layer: usize) -> usize {
        if self.cfg.is_global(layer) {
            0
        } else {
            1
        }
    }

    fn qk_norm(
        &self,
        layer: usize,
        q: Tensor,
        k: Tensor,
        frozen: bool,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let n = &self.norms[layer];
        let eps = self.cfg.eps;
        Ok((
            rms_norm(&q, &param(&n.q, frozen), eps)?,
            rms_norm(&k, &param(&n.k, frozen), eps)?,
        ))
    }

    fn rope(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
        rope(x, cos, sin)
    }

    fn post_attention(&self, layer: usize, a: Tensor, frozen: bool) -> candle_core::Result<Tensor> {
        rms_norm(
            &a,
            &param(&self.norms[layer].post_attn, frozen),
            self.cfg.eps,
        )
    }

    fn activation(&self, g: &Tensor) -> candle_core::Result<Tensor> {
        gelu_tanh(g)
    }

    fn post_ffn(&self, layer: usize, m: Tensor, frozen: bool) -> candle_core::Result<Tensor> {
        rms_norm(
            &m,
            &param(&self.norms[layer].post_ffn, frozen),
            self.cfg.eps,
        )
    }
}
