//! Trainable LoRA factors on a frozen white-box model, and saving them in PEFT's layout.
//!
//! Initialisation follows PEFT's default: `A` (rank × in) uniform in ±1/√in (PyTorch's
//! `kaiming_uniform_(a=√5)`, whose bound is √(6 / ((1 + 5)·in)) = 1/√in), `B` (out × rank)
//! zero, so the adapted model starts exactly as the base. The delta is `alpha/rank · B·A`.
//! Default targets are `q_proj` and `v_proj`, PEFT's default for Gemma 3, Llama and Qwen2;
//! any of the seven projections may be chosen. Factors are in Hugging Face's row order on
//! every architecture (the white box permutes them where a GGUF's rows differ), so the
//! saved files are what PEFT would save for the Hugging Face model.
//!
//! LoRA dropout (PEFT's `lora_dropout`) zeroes each input element of a factor's branch with
//! probability `dropout` and scales the rest by `1/(1 − dropout)`, in training only:
//! `x·Wᵀ + alpha/rank · B·A·dropout(x)`. The masks are drawn by the trainer
//! ([`dropout_masks`]) and handed to the white box's training forward; evaluation and
//! the saved adapter never see them.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Tensor, Var};
use rand::{Rng, RngCore, SeedableRng};
use shammie_local::lora::MODULES;
use shammie_local::white_box::{LoraMasks, LoraVars, WhiteBox};

use crate::TrainError;

/// What to train.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoraConfig {
    pub rank: usize,
    pub alpha: f64,
    /// Hugging Face projection names (`q_proj` … `down_proj`), on every layer.
    pub targets: Vec<String>,
    /// Seeds the initialisation of `A`.
    pub seed: u64,
    /// Start from this PEFT adapter's factors instead of a fresh initialisation (to train
    /// an adapted model further). Its rank, alpha and targets must be these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<std::path::PathBuf>,
    /// LoRA dropout probability on the input of each factor's branch, in [0, 1); 0: none
    /// (also what a configuration written before the option existed reads as).
    #[serde(default)]
    pub dropout: f64,
}

impl Default for LoraConfig {
    fn default() -> Self {
        LoraConfig {
            rank: 8,
            alpha: 16.0,
            targets: vec!["q_proj".into(), "v_proj".into()],
            seed: 0,
            init_from: None,
            dropout: 0.0,
        }
    }
}

impl LoraConfig {
    pub fn scale(&self) -> f64 {
        self.alpha / self.rank as f64
    }

    fn check(&self) -> Result<(), TrainError> {
        if self.rank == 0 {
            return Err(TrainError::Config("LoRA rank must be positive".into()));
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(TrainError::Config(format!(
                "LoRA alpha must be positive, got {}",
                self.alpha
            )));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(TrainError::Config(format!(
                "LoRA dropout must be in [0, 1), got {}",
                self.dropout
            )));
        }
        if self.targets.is_empty() {
            return Err(TrainError::Config("no LoRA target modules".into()));
        }
        for t in &self.targets {
            if !MODULES.contains(&t.as_str()) {
                return Err(TrainError::Config(format!(
                    "unknown LoRA target `{t}` (one of {})",
                    MODULES.join(", ")
                )));
            }
        }
        let mut sorted = self.targets.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != self.targets.len() {
            return Err(TrainError::Config("LoRA targets repeat a module".into()));
        }
        Ok(())
    }
}

/// One projection's trainable factors.
pub struct Factor {
    pub layer: usize,
    pub module: String,
    pub vars: LoraVars,
}

/// The LoRA factors attached to a model.
pub struct LoraSet {
    pub cfg: LoraConfig,
    pub factors: Vec<Factor>,
}

impl LoraSet {
    /// Freezes `wb`'s base weights and attaches freshly initialised factors to every target
    /// projection of every layer (layer-major, then in the order of `MODULES`).
    pub fn attach(wb: &mut WhiteBox, cfg: LoraConfig) -> Result<Self, TrainError> {
        cfg.check()?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed);
        let dev = wb.device().clone();
        let mut factors = Vec::new();
        for layer in 0..wb.cfg.layers {
            for module in MODULES
                .iter()
                .filter(|m| cfg.targets.iter().any(|t| t == *m))
            {
                let (out, inn) = wb.projection_dims(module).expect("a known module");
                let bound = 1.0 / (inn as f32).sqrt();
                let a: Vec<f32> = (0..cfg.rank * inn)
                    .map(|_| rng.gen_range(-bound..bound))
                    .collect();
                let vars = LoraVars {
                    a: Var::from_vec(a, (cfg.rank, inn), &dev)?,
                    b: Var::zeros((out, cfg.rank), candle_core::DType::F32, &dev)?,
                    scale: cfg.scale(),
                };
                wb.set_lora(layer, module, Some(vars.clone()))?;
                factors.push(Factor {
                    layer,
                    module: module.to_string(),
                    vars,
                });
            }
        }
        wb.set_frozen(true)?;
        if let Some(dir) = &cfg.init_from {
            let ad = shammie_local::lora::Adapter::read(dir)?;
            let want = cfg.scale() as f32;
            if ad.rank != cfg.rank || (ad.scale - want).abs() > 1e-6 * want.abs().max(1.0) {
                return Err(TrainError::Config(format!(
                    "{}: rank {} and scale {} differ from the run's rank {} and alpha/rank {}",
                    dir.display(),
                    ad.rank,
                    ad.scale,
                    cfg.rank,
                    want
                )));
            }
            let have: std::collections::BTreeSet<(usize, &str)> =
                ad.deltas.keys().map(|(l, m)| (*l, m.as_str())).collect();
            let mine: std::collections::BTreeSet<(usize, &str)> = factors
                .iter()
                .map(|f| (f.layer, f.module.as_str()))
                .collect();
            if have != mine {
                return Err(TrainError::Config(format!(
                    "{}: the adapter's projections differ from the targets {}",
                    dir.display(),
                    cfg.targets.join(",")
                )));
            }
            for f in &factors {
                let d = &ad.deltas[&(f.layer, f.module.clone())];
                f.vars.a.set(&Tensor::from_vec(
                    d.a.clone(),
                    (d.a.len() / d.inn, d.inn),
                    &dev,
                )?)?;
                f.vars.b.set(&Tensor::from_vec(
                    d.b.clone(),
                    (d.out, d.b.len() / d.out),
                    &dev,
                )?)?;
            }
        }
        Ok(LoraSet { cfg, factors })
    }

    /// Every trainable `Var`: `A` then `B` of each factor, in factor order.
    pub fn vars(&self) -> Vec<Var> {
        self.factors
            .iter()
            .flat_map(|f| [f.vars.a.clone(), f.vars.b.clone()])
            .collect()
    }

    /// Writes `adapter_config.json` and `adapter_model.safetensors` into `dir` (created if
    /// needed), named as PEFT names them for a Gemma 3, Llama or Qwen2 causal LM
    /// (`base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight`).
    pub fn save_peft(&self, dir: &Path, base_model: &str) -> Result<(), TrainError> {
        let io = |p: &Path, e: &dyn std::fmt::Display| TrainError::Io {
            path: p.display().to_string(),
            why: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, &e))?;
        let mut tensors: HashMap<String, Tensor> = HashMap::new();
        for f in &self.factors {
            let block = if matches!(f.module.as_str(), "gate_proj" | "up_proj" | "down_proj") {
                "mlp"
            } else {
                "self_attn"
            };
            let key = format!(
                "base_model.model.model.layers.{}.{block}.{}",
                f.layer, f.module
            );
            tensors.insert(
                format!("{key}.lora_A.weight"),
                f.vars.a.as_detached_tensor(),
            );
            tensors.insert(
                format!("{key}.lora_B.weight"),
                f.vars.b.as_detached_tensor(),
            );
        }
        let st = dir.join("adapter_model.safetensors");
        candle_core::safetensors::save(&tensors, &st).map_err(|e| io(&st, &e))?;
        let cfg = serde_json::json!({
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "base_model_name_or_path": base_model,
            "r": self.cfg.rank,
            "lora_alpha": self.cfg.alpha,
            "lora_dropout": self.cfg.dropout,
            "target_modules": self.cfg.targets,
            "bias": "none",
            "fan_in_fan_out": false,
            "use_rslora": false,
            "use_dora": false,
            "inference_mode": true,
        });
        let cp = dir.join("adapter_config.json");
        let text = serde_json::to_string_pretty(&cfg).expect("JSON of plain values");
        std::fs::write(&cp, text).map_err(|e| io(&cp, &e))?;
        Ok(())
    }
}

/// Dropout masks for one sequence of `len` tokens through every factor of `set` (drawn in
/// factor order, row-major): each element is 0 with probability `p` and `1/(1 − p)`
/// otherwise (inverted dropout, so the branch's expected input is `x`). An element is
/// dropped when a 32-bit draw of `rng` is below `round(p · 2³²)`. `None` when `p` is 0:
/// nothing is drawn, and the forward pass is exactly the one without dropout.
pub fn dropout_masks(
    set: &LoraSet,
    wb: &WhiteBox,
    len: usize,
    p: f64,
    rng: &mut impl RngCore,
) -> Result<Option<LoraMasks>, TrainError> {
    if p == 0.0 {
        return Ok(None);
    }
    let threshold = (p * 4_294_967_296.0).round() as u64;
    let keep = (1.0 / (1.0 - p)) as f32;
    let mut masks: LoraMasks = (0..wb.cfg.layers).map(|_| Default::default()).collect();
    for f in &set.factors {
        let (_, inn) = wb.projection_dims(&f.module).expect("a known module");
        let values: Vec<f32> = (0..len * inn)
            .map(|_| {
                if (rng.next_u32() as u64) < threshold {
                    0.0
                } else {
                    keep
                }
            })
            .collect();
        let mi = MODULES
            .iter()
            .position(|m| *m == f.module)
            .expect("a known module");
        masks[f.layer][mi] = Some(Tensor::from_vec(values, (len, inn), wb.device())?);
    }
    Ok(Some(masks))
}
