//! LoRA adapters in the layout Hugging Face PEFT saves (`adapter_config.json` and
//! `adapter_model.safetensors` in one folder), applied to a loaded model's projections.
//!
//! Each `…layers.N.{self_attn,mlp}.{q,k,v,o,gate,up,down}_proj.lora_{A,B}.weight` pair becomes
//! a delta `scale · B·A` on that layer's projection (`scale = lora_alpha / r`, or
//! `lora_alpha / √r` with `use_rslora`). GGUF files of the `llama` architecture store the
//! query and key rows of each head interleaved (llama.cpp permutes them at conversion, for
//! its pairwise rotary embedding), so B's rows for `q_proj` and `k_proj` are permuted the same
//! way there; `qwen2` and `gemma3` files keep Hugging Face's order.
//!
//! The adapter's SHA-256 (config and weights) names it in the model's endpoint, so a model
//! with an adapter never shares response-cache entries with its base or another adapter.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use sha2::{Digest, Sha256};

use crate::weights::Lora;
use crate::LocalError;

/// The projections an adapter may target, by their Hugging Face names.
pub const MODULES: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

/// A read adapter: its deltas by (layer, module).
#[derive(Debug, Clone)]
pub struct Adapter {
    pub path: PathBuf,
    pub rank: usize,
    pub alpha: f64,
    pub scale: f32,
    /// Hex SHA-256 of `adapter_config.json` followed by `adapter_model.safetensors`.
    pub sha256: String,
    /// The deltas by (layer, Hugging Face module name).
    pub deltas: BTreeMap<(usize, String), Delta>,
}

/// One projection's factors, row-major, in Hugging Face's row order.
#[derive(Debug, Clone)]
pub struct Delta {
    /// rank × inn.
    pub a: Vec<f32>,
    /// out × rank.
    pub b: Vec<f32>,
    pub inn: usize,
    pub out: usize,
}

/// One factor as read: values, rows, columns.
type Factor = (Vec<f32>, usize, usize);

fn bad(path: &Path, why: impl std::fmt::Display) -> LocalError {
    LocalError::Format(format!("adapter {}: {why}", path.display()))
}

impl Adapter {
    /// Reads the PEFT folder at `dir` (or the folder holding `adapter_model.safetensors`
    /// when given that file).
    pub fn read(dir: &Path) -> Result<Self, LocalError> {
        let dir = if dir.is_file() {
            dir.parent().unwrap_or(Path::new("."))
        } else {
            dir
        };
        let cfg_path = dir.join("adapter_config.json");
        let st_path = dir.join("adapter_model.safetensors");
        let cfg_bytes = std::fs::read(&cfg_path).map_err(|e| bad(&cfg_path, e))?;
        let st_bytes = std::fs::read(&st_path).map_err(|e| bad(&st_path, e))?;
        let cfg: serde_json::Value =
            serde_json::from_slice(&cfg_bytes).map_err(|e| bad(&cfg_path, e))?;
        let rank = cfg["r"]
            .as_u64()
            .filter(|r| *r > 0)
            .ok_or_else(|| bad(&cfg_path, "`r` must be a positive integer"))?
            as usize;
        let alpha = cfg["lora_alpha"].as_f64().unwrap_or(rank as f64);
        for (key, ok) in [
            (
                "fan_in_fan_out",
                !cfg["fan_in_fan_out"].as_bool().unwrap_or(false),
            ),
            ("use_dora", !cfg["use_dora"].as_bool().unwrap_or(false)),
            ("bias", matches!(cfg["bias"].as_str(), None | Some("none"))),
        ] {
            if !ok {
                return Err(bad(
                    &cfg_path,
                    format!("`{key}` = {} is not supported", cfg[key]),
                ));
            }
        }
        let scale = if cfg["use_rslora"].as_bool().unwrap_or(false) {
            alpha / (rank as f64).sqrt()
        } else {
            alpha / rank as f64
        } as f32;
        let mut h = Sha256::new();
        h.update(&cfg_bytes);
        h.update(&st_bytes);
        let sha256 = hex::encode(h.finalize());

        let tensors = candle_core::safetensors::load_buffer(&st_bytes, &Device::Cpu)
            .map_err(|e| bad(&st_path, e))?;
        let mut halves: BTreeMap<(usize, String), [Option<Factor>; 2]> = BTreeMap::new();
        for (name, t) in &tensors {
            let Some((layer, module, which)) = parse_key(name) else {
                return Err(bad(&st_path, format!("unexpected tensor `{name}`")));
            };
            let (rows, cols) = t
                .dims2()
                .map_err(|e| bad(&st_path, format!("{name}: {e}")))?;
            let v: Vec<f32> = t
                .to_dtype(DType::F32)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1())
                .map_err(|e| bad(&st_path, format!("{name}: {e}")))?;
            halves.entry((layer, module)).or_default()[which] = Some((v, rows, cols));
        }
        let mut deltas = BTreeMap::new();
        for ((layer, module), [a, b]) in halves {
            let (Some((a, ar, ac)), Some((b, br, bc))) = (a, b) else {
                return Err(bad(
                    &st_path,
                    format!("layer {layer} {module}: lora_A and lora_B must both be present"),
                ));
            };
            if ar != rank || bc != rank {
                return Err(bad(
                    &st_path,
                    format!(
                        "layer {layer} {module}: A is {ar}×{ac}, B is {br}×{bc}, but r = {rank}"
                    ),
                ));
            }
            deltas.insert(
                (layer, module),
                Delta {
                    a,
                    b,
                    inn: ac,
                    out: br,
                },
            );
        }
        if deltas.is_empty() {
            return Err(bad(&st_path, "no LoRA weights"));
        }
        Ok(Adapter {
            path: dir.to_path_buf(),
            rank,
            alpha,
            scale,
            sha256,
            deltas,
        })
    }

    /// The delta for one projection, with B's rows permuted as `permute_heads` says
    /// (`Some((heads, head_dim))` for the query/key rows of `llama` GGUFs).
    pub(crate) fn lora(
        &self,
        layer: usize,
        module: &str,
        permute_heads: Option<(usize, usize)>,
    ) -> Option<Lora> {
        let d = self.deltas.get(&(layer, module.to_string()))?;
        let b = match permute_heads {
            None => d.b.clone(),
            Some((heads, hd)) => interleave_rows(&d.b, d.out, self.rank, heads, hd),
        };
        Some(Lora {
            rank: self.rank,
            a: d.a.clone(),
            b,
            scale: self.scale,
        })
    }
}

/// `…layers.N.(self_attn|mlp).M.lora_(A|B)[.adapter].weight` → (N, M, 0 for A / 1 for B).
fn parse_key(name: &str) -> Option<(usize, String, usize)> {
    let rest = &name[name.find("layers.")? + "layers.".len()..];
    let mut parts = rest.split('.');
    let layer: usize = parts.next()?.parse().ok()?;
    let block = parts.next()?;
    if block != "self_attn" && block != "mlp" {
        return None;
    }
    let module = parts.next()?;
    if !MODULES.contains(&module) {
        return None;
    }
    let which = match parts.next()? {
        "lora_A" => 0,
        "lora_B" => 1,
        _ => return None,
    };
    let tail: Vec<&str> = parts.collect();
    if tail.last() != Some(&"weight") || tail.len() > 2 {
        return None;
    }
    Some((layer, module.to_string(), which))
}

/// Reorders the rows of a (heads·hd) × cols matrix the way llama.cpp's conversion orders a
/// `llama` query/key weight: within each head, row `j` of the first half goes to `2j` and
/// row `j` of the second half to `2j + 1`.
pub fn interleave_rows(m: &[f32], rows: usize, cols: usize, heads: usize, hd: usize) -> Vec<f32> {
    debug_assert_eq!(rows, heads * hd);
    let half = hd / 2;
    let mut out = vec![0f32; m.len()];
    for h in 0..heads {
        for k in 0..2 {
            for j in 0..half {
                let src = h * hd + k * half + j;
                let dst = h * hd + 2 * j + k;
                out[dst * cols..(dst + 1) * cols].copy_from_slice(&m[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_peft_files() {
        assert_eq!(
            parse_key("base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight"),
            Some((3, "q_proj".into(), 0))
        );
        assert_eq!(
            parse_key("base_model.model.language_model.model.layers.12.mlp.down_proj.lora_B.default.weight"),
            Some((12, "down_proj".into(), 1))
        );
        assert_eq!(parse_key("base_model.model.lm_head.lora_A.weight"), None);
        assert_eq!(parse_key("model.layers.0.self_attn.q_proj.weight"), None);
    }

    #[test]
    fn interleaving_matches_the_conversion_rule() {
        // One head of 4 rows, 1 column: rows [a0 a1 | b0 b1] → [a0 b0 a1 b1].
        assert_eq!(
            interleave_rows(&[0., 1., 2., 3.], 4, 1, 1, 4),
            [0., 2., 1., 3.]
        );
        // Two heads of 2 rows, 2 columns each: a 2-row head is unchanged.
        let m = [1., 2., 3., 4., 5., 6., 7., 8.];
        assert_eq!(interleave_rows(&m, 4, 2, 2, 2), m);
    }
}
