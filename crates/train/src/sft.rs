//! Supervised fine-tuning steps: the loss on assistant tokens only, gradient accumulation
//! over the examples of one optimizer step, global-norm clipping, AdamW on the LoRA factors
//! under the schedule, examples drawn in a seeded order, LoRA dropout, sequence packing.
//!
//! The loss of a step is the mean negative log-likelihood over every trained token of its
//! examples (token-weighted, as Hugging Face's trainer computes it for one batch): each
//! sequence's summed loss is divided by the step's total count of trained tokens before its
//! backward pass, and the gradients of the sequences are added.
//!
//! An optimizer step always covers `batch` examples, drawn in the seeded order. Without
//! packing (`pack_tokens` 0) each example is its own forward pass. With packing, the
//! step's examples are packed into sequences of at most `pack_tokens` tokens by first-fit
//! decreasing ([`pack_first_fit_decreasing`]: longest first, each into the first sequence
//! with room, ties in batch order; an example longer than `pack_tokens` is a sequence of
//! its own), and each sequence is one forward pass with a block-diagonal causal mask and
//! RoPE positions restarting at every example ([`Packed`]). Packing therefore changes
//! neither which examples a step trains on nor its loss (up to float rounding): steps,
//! epochs and the learning-rate schedule mean the same with and without it. Dropout masks
//! are drawn per example in batch order, before packing, so they too are the same.
//! Packed or not, the output head (a hidden × vocabulary product) runs only at the
//! positions that predict a trained token ([`WhiteBox::token_losses_at`],
//! [`WhiteBox::token_losses_packed_at`]).

use candle_core::{Tensor, Var};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use shammie_local::white_box::{LoraMasks, WhiteBox};

use crate::lora::{dropout_masks, LoraConfig, LoraSet};
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
    Ok(wb
        .token_losses_at(&ex.ids, &trained_positions(&ex.train))?
        .sum_all()?)
}

/// The positions that predict a trained token: `p` where `train[p + 1]` (position `p`
/// predicts token `p + 1`).
fn trained_positions(train: &[bool]) -> Vec<usize> {
    train[1..]
        .iter()
        .enumerate()
        .filter(|(_, t)| **t)
        .map(|(p, _)| p)
        .collect()
}

/// Several examples back to back as one training sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Packed {
    pub ids: Vec<u32>,
    /// The examples' masks, except that each example's first token is untrained (it
    /// would be predicted from the previous example).
    pub train: Vec<bool>,
    /// Where each example starts.
    pub starts: Vec<usize>,
}

impl Packed {
    pub fn new(examples: &[&Example]) -> Self {
        let mut p = Packed {
            ids: Vec::new(),
            train: Vec::new(),
            starts: Vec::new(),
        };
        for ex in examples {
            p.starts.push(p.ids.len());
            p.ids.extend_from_slice(&ex.ids);
            p.train.push(false);
            p.train.extend_from_slice(&ex.train[1..]);
        }
        p
    }
}

/// Summed negative log-likelihood of the trained tokens of a packed sequence, each
/// example seeing only itself, with optional LoRA dropout masks (rows of the sequence).
/// As [`masked_loss_sum`], the output head runs only at the positions that predict a
/// trained token ([`WhiteBox::token_losses_packed_at`]; an example's first token is never
/// trained, so no position predicts across a boundary). Equals the sum of [`masked_loss_sum`] over the examples, up to float rounding.
pub fn packed_loss_sum(
    wb: &WhiteBox,
    p: &Packed,
    masks: Option<&LoraMasks>,
) -> Result<Tensor, TrainError> {
    let positions = trained_positions(&p.train);
    Ok(wb
        .token_losses_packed_at(&p.ids, &p.starts, &positions, masks)?
        .sum_all()?)
}

/// First-fit decreasing bin packing of items of lengths `lens` into bins of capacity
/// `max`: items longest first (ties by index), each into the first bin it fits in, else a
/// new bin; an item longer than `max` gets a bin of its own. Returns each bin's item
/// indices, ascending, bins in the order they were opened.
pub fn pack_first_fit_decreasing(lens: &[usize], max: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lens.len()).collect();
    order.sort_by(|&a, &b| lens[b].cmp(&lens[a]).then(a.cmp(&b)));
    let mut bins: Vec<(usize, Vec<usize>)> = Vec::new();
    for i in order {
        match bins.iter_mut().find(|(used, _)| used + lens[i] <= max) {
            Some((used, members)) => {
                *used += lens[i];
                members.push(i);
            }
            None => bins.push((lens[i], vec![i])),
        }
    }
    bins.into_iter()
        .map(|(_, mut m)| {
            m.sort_unstable();
            m
        })
        .collect()
}

/// Masks of several sequences stacked row-wise (the masks of a packed sequence).
pub(crate) fn cat_masks(parts: &[&LoraMasks]) -> Result<LoraMasks, TrainError> {
    let mut out: LoraMasks = Vec::with_capacity(parts[0].len());
    for li in 0..parts[0].len() {
        let mut row: [Option<Tensor>; 7] = Default::default();
        for (mi, slot) in row.iter_mut().enumerate() {
            if parts[0][li][mi].is_some() {
                let ts = parts
                    .iter()
                    .map(|p| p[li][mi].clone().expect("every example has the same masks"))
                    .collect::<Vec<_>>();
                *slot = Some(Tensor::cat(&ts, 0)?);
            }
        }
        out.push(row);
    }
    Ok(out)
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
    /// Pack each step's examples into sequences of at most this many tokens (module
    /// comment); 0: every example is its own sequence.
    #[serde(default)]
    pub pack_tokens: usize,
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
            pack_tokens: 0,
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
    /// Preference-model steps: the share of the step's pairs whose reward difference
    /// points the way the label does (labels at exactly 0.5 left out); SFT: `None`.
    pub accuracy: Option<f64>,
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
    /// The dropout RNG's position (as `rng_word_pos`; absent in checkpoints written
    /// before dropout existed, which drew nothing from it).
    #[serde(default = "zero_pos")]
    pub dropout_rng_word_pos: String,
}

fn zero_pos() -> String {
    "0".into()
}

/// The dropout RNG: ChaCha8 seeded with the run's seed, on stream 1 (the order RNG uses
/// stream 0 of the same seed), so the two never share draws.
fn dropout_rng(seed: u64) -> rand_chacha::ChaCha8Rng {
    let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(1);
    r
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
    dropout_rng: rand_chacha::ChaCha8Rng,
    order: Vec<usize>,
    cursor: usize,
    step: usize,
}

impl Trainer {
    /// Attaches fresh LoRA factors to `wb` (freezing its base) and sets up the optimizer.
    pub fn new(wb: &mut WhiteBox, cfg: TrainConfig) -> Result<Self, TrainError> {
        Self::with_extra(wb, cfg, Vec::new())
    }

    /// [`Trainer::new`] with more trainable tensors besides the LoRA factors (a
    /// preference model's reward head): optimised, clipped and checkpointed with them,
    /// after them in [`Trainer::vars`] order.
    pub fn with_extra(
        wb: &mut WhiteBox,
        cfg: TrainConfig,
        extra: Vec<Var>,
    ) -> Result<Self, TrainError> {
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
        let mut vars = lora.vars();
        vars.extend(extra);
        let opt = AdamW::new(vars.clone(), cfg.optim.clone())?;
        let schedule = Schedule {
            peak: cfg.optim.lr,
            warmup: cfg.warmup,
            total: cfg.steps,
            decay: cfg.decay,
        };
        Ok(Trainer {
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed),
            dropout_rng: dropout_rng(cfg.seed),
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
            dropout_rng_word_pos: self.dropout_rng.get_word_pos().to_string(),
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
        let dropout_pos: u128 = state
            .dropout_rng_word_pos
            .parse()
            .map_err(|e| io(&sj, &format!("dropout_rng_word_pos: {e}")))?;
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
        self.dropout_rng = dropout_rng(self.cfg.seed);
        self.dropout_rng.set_word_pos(dropout_pos);
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

    /// Every trained tensor: the LoRA factors ([`LoraSet::vars`]), then any extra ones.
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// Zero gradients, one per trained tensor.
    pub(crate) fn zero_grads(&self) -> Result<Vec<Tensor>, TrainError> {
        Ok(self
            .vars
            .iter()
            .map(|v| v.zeros_like())
            .collect::<candle_core::Result<_>>()?)
    }

    /// Adds the gradients of `loss` (a scalar) to `grads`.
    pub(crate) fn accumulate(&self, grads: &mut [Tensor], loss: &Tensor) -> Result<(), TrainError> {
        let g = loss.backward()?;
        for (acc, v) in grads.iter_mut().zip(&self.vars) {
            if let Some(gv) = g.get(v.as_tensor()) {
                // Detached: a gradient records the operations it was computed by, which
                // would keep this pass's graph (its activations) alive (see AdamW::step).
                *acc = (&*acc + gv.detach())?;
            }
        }
        Ok(())
    }

    /// The next batch's item indices and, per sequence of `lens(item)` (in batch order),
    /// its dropout masks.
    pub(crate) fn begin_step(
        &mut self,
        wb: &WhiteBox,
        n: usize,
        lens: impl Fn(usize) -> Vec<usize>,
    ) -> Result<(Vec<usize>, Vec<Option<LoraMasks>>), TrainError> {
        let batch = self.next_batch(n);
        let mut masks = Vec::new();
        for &i in &batch {
            for len in lens(i) {
                masks.push(dropout_masks(
                    &self.lora,
                    wb,
                    len,
                    self.cfg.lora.dropout,
                    &mut self.dropout_rng,
                )?);
            }
        }
        Ok((batch, masks))
    }

    /// Clips `grads`, takes the optimizer step and counts it: (norm before clipping, lr).
    pub(crate) fn finish_step(&mut self, mut grads: Vec<Tensor>) -> Result<(f64, f64), TrainError> {
        let grad_norm = clip_global_norm(&mut grads, self.cfg.max_grad_norm)?;
        let lr = self.schedule.lr(self.step);
        self.opt.step(&grads, lr)?;
        self.step += 1;
        Ok((grad_norm, lr))
    }

    /// One optimizer step on the next batch of `data` (module comment: packing, dropout).
    pub fn step(&mut self, wb: &WhiteBox, data: &[Example]) -> Result<StepReport, TrainError> {
        if data.is_empty() {
            return Err(TrainError::Data("no training examples".into()));
        }
        let (batch, masks) = self.begin_step(wb, data.len(), |i| vec![data[i].ids.len()])?;
        let tokens: usize = batch.iter().map(|&i| data[i].trained()).sum();
        // Dropout masks per example in batch order, whatever the packing.
        let groups = if self.cfg.pack_tokens > 0 {
            let lens: Vec<usize> = batch.iter().map(|&i| data[i].ids.len()).collect();
            pack_first_fit_decreasing(&lens, self.cfg.pack_tokens)
        } else {
            (0..batch.len()).map(|k| vec![k]).collect()
        };
        let mut grads = self.zero_grads()?;
        let mut loss = 0f64;
        for g in groups {
            let sum = match g.as_slice() {
                [k] if masks[*k].is_none() => masked_loss_sum(wb, &data[batch[*k]])?,
                _ => {
                    let exs: Vec<&Example> = g.iter().map(|&k| &data[batch[k]]).collect();
                    let parts: Option<Vec<&LoraMasks>> =
                        g.iter().map(|&k| masks[k].as_ref()).collect();
                    let m = parts.map(|p| cat_masks(&p)).transpose()?;
                    packed_loss_sum(wb, &Packed::new(&exs), m.as_ref())?
                }
            };
            let l = (sum / tokens as f64)?;
            loss += l.to_scalar::<f32>()? as f64;
            self.accumulate(&mut grads, &l)?;
        }
        let step = self.step;
        let (grad_norm, lr) = self.finish_step(grads)?;
        Ok(StepReport {
            step,
            loss,
            grad_norm,
            lr,
            tokens,
            accuracy: None,
        })
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

    /// Hand-packed: lengths [5, 3, 8, 2, 4, 7] into 10. Longest first: 8 opens bin 0; 7
    /// does not fit (15) and opens bin 1; 5 fits neither (13, 12): bin 2; 4 goes to bin 2
    /// (9); 3 to bin 1 (10); 2 to bin 0 (10). Bins of indices: {2, 3}, {1, 5}, {0, 4}. An
    /// item over the capacity is alone.
    #[test]
    fn first_fit_decreasing_packs_by_hand() {
        assert_eq!(
            pack_first_fit_decreasing(&[5, 3, 8, 2, 4, 7], 10),
            [vec![2, 3], vec![1, 5], vec![0, 4]]
        );
        assert_eq!(
            pack_first_fit_decreasing(&[12, 1, 9], 10),
            [vec![0], vec![1, 2]]
        );
        // Equal lengths keep their order.
        assert_eq!(
            pack_first_fit_decreasing(&[4, 4, 4], 8),
            [vec![0, 1], vec![2]]
        );
    }

    /// A packed sequence: the first token of every example is untrained.
    #[test]
    fn packing_concatenates_and_unmarks_boundaries() {
        let a = Example::prompt_reply(&[1, 2], &[3]).unwrap();
        let b = Example::new(vec![4, 5, 6], vec![true, true, false]).unwrap();
        let p = Packed::new(&[&a, &b]);
        assert_eq!(p.ids, [1, 2, 3, 4, 5, 6]);
        assert_eq!(p.starts, [0, 3]);
        assert_eq!(p.train, [false, false, true, false, true, false]);
    }

    /// A `run.json` written before dropout and packing existed still reads, as neither.
    #[test]
    fn old_configs_read_without_dropout_or_packing() {
        let mut v = serde_json::to_value(TrainConfig::default()).unwrap();
        v.as_object_mut().unwrap().remove("pack_tokens");
        v["lora"].as_object_mut().unwrap().remove("dropout");
        let c: TrainConfig = serde_json::from_value(v).unwrap();
        assert_eq!(c, TrainConfig::default());
        assert_eq!((c.pack_tokens, c.lora.dropout), (0, 0.0));
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
