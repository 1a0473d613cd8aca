//! Supervised fine-tuning steps: the loss on assistant tokens only, gradient accumulation
//! over the examples of one optimizer step, global-norm clipping, AdamW on the LoRA factors
//! under the schedule, examples drawn in a seeded order.
//!
//! The loss of a step is the mean negative log-likelihood over every trained token of its
//! examples (token-weighted, as Hugging Face's trainer computes it for one batch): each
//! example's summed loss is divided by the step's total count of trained tokens before its
//! backward pass, and the gradients of the examples are added.

use candle_core::{Tensor, Var};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use shammie_local::white_box::WhiteBox;

use crate::lora::{LoraConfig, LoraSet};
use crate::optim::{AdamW, AdamWConfig, Decay, Schedule};
use crate::TrainError;

/// One training sequence: its tokens and which of them are trained (`true` for assistant
/// tokens). The loss covers token `i` (predicted from the tokens before it) iff
/// `train[i]`; token 0 is never predicted.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub ids: Vec<u32>,
    pub train: Vec<bool>,
}

impl Example {
    pub fn new(ids: Vec<u32>, train: Vec<bool>) -> Result<Self, TrainError> {
        if ids.len() != train.len() {
            return Err(TrainError::Data(format!(
                "{} tokens but {} mask entries",
                ids.len(),
                train.len()
            )));
        }
        if ids.len() < 2 || !train[1..].iter().any(|t| *t) {
            return Err(TrainError::Data(
                "an example needs at least one trained token after the first".into(),
            ));
        }
        Ok(Example { ids, train })
    }

    /// A prompt followed by an assistant reply: only the reply's tokens are trained.
    pub fn prompt_reply(prompt: &[u32], reply: &[u32]) -> Result<Self, TrainError> {
        let ids = [prompt, reply].concat();
        let train = (0..ids.len()).map(|i| i >= prompt.len()).collect();
        Self::new(ids, train)
    }

    /// How many tokens the loss covers.
    pub fn trained(&self) -> usize {
        self.train[1..].iter().filter(|t| **t).count()
    }
}

/// Summed negative log-likelihood of `ex`'s trained tokens (a differentiable scalar).
/// The output head runs only at the positions that predict a trained token
/// ([`WhiteBox::token_losses_at`]).
pub fn masked_loss_sum(wb: &WhiteBox, ex: &Example) -> Result<Tensor, TrainError> {
    // Position p predicts token p + 1.
    let positions: Vec<usize> = ex.train[1..]
        .iter()
        .enumerate()
        .filter(|(_, t)| **t)
        .map(|(p, _)| p)
        .collect();
    Ok(wb.token_losses_at(&ex.ids, &positions)?.sum_all()?)
}

/// The global L2 norm of `grads` (all tensors as one vector), returned before clipping;
/// with `max`, scales every gradient by `max/(norm + 1e-6)` when that is below 1
/// (PyTorch's `clip_grad_norm_`).
pub fn clip_global_norm(grads: &mut [Tensor], max: Option<f64>) -> Result<f64, TrainError> {
    let norm = grads
        .iter()
        .map(|g| Ok(g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64))
        .sum::<Result<f64, TrainError>>()?
        .sqrt();
    if let Some(max) = max {
        let coef = max / (norm + 1e-6);
        if coef < 1.0 {
            for g in grads.iter_mut() {
                *g = (&*g * coef)?;
            }
        }
    }
    Ok(norm)
}

/// Everything a run is configured by.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    pub lora: LoraConfig,
    pub optim: AdamWConfig,
    /// Examples per optimizer step (their gradients are accumulated).
    pub batch: usize,
    /// Optimizer steps in the run (the schedule's length).
    pub steps: usize,
    pub warmup: usize,
    pub decay: Decay,
    /// Clip the global gradient norm to this (`None`: no clipping).
    pub max_grad_norm: Option<f64>,
    /// Seeds the order of the examples (the LoRA initialisation has its own seed).
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            lora: LoraConfig::default(),
            optim: AdamWConfig::default(),
            batch: 8,
            steps: 100,
            warmup: 10,
            decay: Decay::Cosine,
            max_grad_norm: Some(1.0),
            seed: 0,
        }
    }
}

/// What one optimizer step did.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    /// The step's index (from 0).
    pub step: usize,
    /// Mean loss per trained token over the step's examples, before the update.
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    pub lr: f64,
    pub tokens: usize,
}

/// Where a run stands between steps, beside the tensors: enough, with the LoRA factors
/// and AdamW's moments, to continue exactly as an uninterrupted run would.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainerState {
    /// Optimizer steps taken.
    pub step: usize,
    /// AdamW's step count (equal to `step`; kept for the bias correction).
    pub adam_t: u64,
    /// The current pass's example order and the position in it.
    pub order: Vec<usize>,
    pub cursor: usize,
    /// The order RNG's position in its stream (ChaCha8 words, as a decimal string).
    pub rng_word_pos: String,
}

const STATE_TENSORS: &str = "state.safetensors";
const STATE_JSON: &str = "state.json";

/// A LoRA fine-tuning run over a white-box model.
pub struct Trainer {
    pub cfg: TrainConfig,
    pub lora: LoraSet,
    vars: Vec<Var>,
    opt: AdamW,
    schedule: Schedule,
    rng: rand_chacha::ChaCha8Rng,
    order: Vec<usize>,
    cursor: usize,
    step: usize,
}

impl Trainer {
    /// Attaches fresh LoRA factors to `wb` (freezing its base) and sets up the optimizer.
    pub fn new(wb: &mut WhiteBox, cfg: TrainConfig) -> Result<Self, TrainError> {
        if cfg.batch == 0 || cfg.steps == 0 {
            return Err(TrainError::Config(
                "batch and steps must be positive".into(),
            ));
        }
        if let Some(c) = cfg.max_grad_norm {
            if c.is_nan() || c <= 0.0 {
                return Err(TrainError::Config(format!(
                    "max_grad_norm must be positive, got {c}"
                )));
            }
        }
        let lora = LoraSet::attach(wb, cfg.lora.clone())?;
        let vars = lora.vars();
        let opt = AdamW::new(vars.clone(), cfg.optim.clone())?;
        let schedule = Schedule {
            peak: cfg.optim.lr,
            warmup: cfg.warmup,
            total: cfg.steps,
            decay: cfg.decay,
        };
        Ok(Trainer {
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed),
            cfg,
            lora,
            vars,
            opt,
            schedule,
            order: Vec::new(),
            cursor: 0,
            step: 0,
        })
    }

    /// Optimizer steps taken so far.
    pub fn steps_done(&self) -> usize {
        self.step
    }

    /// Writes the full training state into the (existing, empty) folder `dir`:
    /// `state.safetensors` (LoRA factors `p.I`, AdamW moments `m.I` and `v.I`, in
    /// [`LoraSet::vars`] order) and `state.json` ([`TrainerState`]).
    pub fn save_state(&self, dir: &std::path::Path) -> Result<(), TrainError> {
        let io = |p: &std::path::Path, e: &dyn std::fmt::Display| TrainError::Io {
            path: p.display().to_string(),
            why: e.to_string(),
        };
        let (m, v, t) = self.opt.state();
        let mut tensors = std::collections::HashMap::new();
        for (i, p) in self.vars.iter().enumerate() {
            tensors.insert(format!("p.{i}"), p.as_detached_tensor());
            tensors.insert(format!("m.{i}"), m[i].clone());
            tensors.insert(format!("v.{i}"), v[i].clone());
        }
        let st = dir.join(STATE_TENSORS);
        candle_core::safetensors::save(&tensors, &st).map_err(|e| io(&st, &e))?;
        let state = TrainerState {
            step: self.step,
            adam_t: t,
            order: self.order.clone(),
            cursor: self.cursor,
            rng_word_pos: self.rng.get_word_pos().to_string(),
        };
        let sj = dir.join(STATE_JSON);
        let text = serde_json::to_string_pretty(&state).expect("plain values");
        std::fs::write(&sj, text).map_err(|e| io(&sj, &e))?;
        Ok(())
    }

    /// Restores what [`Trainer::save_state`] wrote (for a trainer built with the same
    /// configuration on the same model).
    pub fn load_state(&mut self, dir: &std::path::Path) -> Result<(), TrainError> {
        let io = |p: &std::path::Path, e: &dyn std::fmt::Display| TrainError::Io {
            path: p.display().to_string(),
            why: e.to_string(),
        };
        let sj = dir.join(STATE_JSON);
        let text = std::fs::read_to_string(&sj).map_err(|e| io(&sj, &e))?;
        let state: TrainerState = serde_json::from_str(&text).map_err(|e| io(&sj, &e))?;
        let pos: u128 = state
            .rng_word_pos
            .parse()
            .map_err(|e| io(&sj, &format!("rng_word_pos: {e}")))?;
        let st = dir.join(STATE_TENSORS);
        let mut tensors =
            candle_core::safetensors::load(&st, self.vars[0].device()).map_err(|e| io(&st, &e))?;
        let mut take = |k: String| {
            tensors
                .remove(&k)
                .ok_or_else(|| io(&st, &format!("no tensor `{k}`")))
        };
        let n = self.vars.len();
        let (mut m, mut v) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for (i, p) in self.vars.iter().enumerate() {
            let value = take(format!("p.{i}"))?;
            if value.dims() != p.dims() {
                return Err(io(
                    &st,
                    &format!(
                        "`p.{i}` has shape {:?}, the model's {:?}",
                        value.dims(),
                        p.dims()
                    ),
                ));
            }
            p.set(&value)?;
            m.push(take(format!("m.{i}"))?);
            v.push(take(format!("v.{i}"))?);
        }
        self.opt.set_state(m, v, state.adam_t)?;
        if state.order.iter().any(|&i| i >= state.order.len()) || state.cursor > state.order.len() {
            return Err(io(&sj, &"example order out of range"));
        }
        self.rng = rand_chacha::ChaCha8Rng::seed_from_u64(self.cfg.seed);
        self.rng.set_word_pos(pos);
        self.order = state.order;
        self.cursor = state.cursor;
        self.step = state.step;
        Ok(())
    }

    /// The next `batch` example indices: a seeded shuffle of the data, reshuffled at the
    /// end of each pass.
    fn next_batch(&mut self, n: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.cfg.batch);
        while out.len() < self.cfg.batch {
            if self.cursor >= self.order.len() {
                self.order = (0..n).collect();
                self.order.shuffle(&mut self.rng);
                self.cursor = 0;
            }
            out.push(self.order[self.cursor]);
            self.cursor += 1;
        }
        out
    }

    /// One optimizer step on the next batch of `data`.
    pub fn step(&mut self, wb: &WhiteBox, data: &[Example]) -> Result<StepReport, TrainError> {
        if data.is_empty() {
            return Err(TrainError::Data("no training examples".into()));
        }
        let batch = self.next_batch(data.len());
        let tokens: usize = batch.iter().map(|&i| data[i].trained()).sum();
        let mut grads: Vec<Tensor> = self
            .vars
            .iter()
            .map(|v| v.zeros_like())
            .collect::<candle_core::Result<_>>()?;
        let mut loss = 0f64;
        for &i in &batch {
            let l = (masked_loss_sum(wb, &data[i])? / tokens as f64)?;
            loss += l.to_scalar::<f32>()? as f64;
            let g = l.backward()?;
            for (acc, v) in grads.iter_mut().zip(&self.vars) {
                if let Some(gv) = g.get(v.as_tensor()) {
                    *acc = (&*acc + gv)?;
                }
            }
        }
        let grad_norm = clip_global_norm(&mut grads, self.cfg.max_grad_norm)?;
        let lr = self.schedule.lr(self.step);
        self.opt.step(&grads, lr)?;
        let report = StepReport {
            step: self.step,
            loss,
            grad_norm,
            lr,
            tokens,
        };
        self.step += 1;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Gradients [3, 4] and [12]: norm √(9 + 16 + 144) = 13. Clipped to 6.5 they are scaled
    /// by 6.5/(13 + 1e-6) ≈ 0.5: [1.5, 2] and [6]. A norm under the limit changes nothing.
    #[test]
    fn clipping_scales_by_the_global_norm() {
        let dev = Device::Cpu;
        let mut g = vec![
            Tensor::new(&[3f32, 4.0], &dev).unwrap(),
            Tensor::new(&[12f32], &dev).unwrap(),
        ];
        assert!((clip_global_norm(&mut g, Some(20.0)).unwrap() - 13.0).abs() < 1e-9);
        assert_eq!(g[0].to_vec1::<f32>().unwrap(), [3.0, 4.0]);
        assert!((clip_global_norm(&mut g, Some(6.5)).unwrap() - 13.0).abs() < 1e-9);
        let (a, b) = (
            g[0].to_vec1::<f32>().unwrap(),
            g[1].to_vec1::<f32>().unwrap(),
        );
        assert!(
            (a[0] - 1.5).abs() < 1e-6 && (a[1] - 2.0).abs() < 1e-6 && (b[0] - 6.0).abs() < 1e-6
        );
        let mut none = g.clone();
        assert!((clip_global_norm(&mut none, None).unwrap() - 6.5).abs() < 1e-5);
        assert_eq!(none[1].to_vec1::<f32>().unwrap(), b);
    }

    /// Only tokens after the first can be trained, and the mask must match the tokens.
    #[test]
    fn examples_are_checked() {
        let ex = Example::prompt_reply(&[1, 2, 3], &[4, 5]).unwrap();
        assert_eq!(ex.train, [false, false, false, true, true]);
        assert_eq!(ex.trained(), 2);
        let e = Example::new(vec![1, 2], vec![true, false])
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least one trained token"), "{e}");
        let e = Example::new(vec![1, 2], vec![true])
            .unwrap_err()
            .to_string();
        assert!(e.contains("2 tokens but 1 mask"), "{e}");
    }
}
