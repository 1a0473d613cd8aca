//! Preference models: a language model with LoRA factors and a scalar reward head,
//! trained on soft pairwise labels (Kundu et al. 2023 after Bai et al. 2022; STUDIES.md §7).
//!
//! **Reward.** A sequence is the prompt rendered in the model's served format followed by
//! a reply and the format's end-of-turn string (the layout of [`crate::chat`], so the PM
//! reads a reply exactly where the model would have written it). Its reward is
//! `r = h · w`: the final hidden state `h` (after the final norm,
//! [`WhiteBox::final_hidden_packed_at`]) at the sequence's *last* token — the end of the
//! turn, which has seen the whole reply — times a trained vector `w` (the reward head; as
//! Hugging Face's sequence-classification heads, no bias: a bias cancels in every
//! difference the loss sees). `w` starts as N(0, 0.02²) draws (Hugging Face's
//! `initializer_range`), seeded from the LoRA seed on its own stream.
//!
//! **Loss.** For a pair (A, B) with soft label `p = P(A preferred)`, `d = r_A − r_B`:
//! `ℓ = −p·log σ(d) − (1 − p)·log σ(−d) = p·softplus(−d) + (1 − p)·softplus(d)`, the
//! cross-entropy of σ(d) against `p`; a step's loss is the mean over its `batch` pairs.
//! With `p` ∈ {0, 1} it is the usual Bradley–Terry loss `−log σ(r_chosen − r_rejected)`.
//!
//! **Steps** are those of supervised training ([`crate::sft`]): `batch` pairs per
//! optimizer step in the seeded order, AdamW on the LoRA factors and the head together,
//! global-norm clipping, LoRA dropout (masks per sequence, A then B, in batch order).
//! Without packing each sequence is its own forward pass; with `pack_tokens`, a step's
//! pairs are packed whole (A and B together, first-fit decreasing on A + B) into passes
//! of at most that many tokens, each sequence attending only to itself.
//!
//! **On disk** (a PM folder, [`save_pm`]): the LoRA adapter in PEFT's layout, the head as
//! `reward_head.safetensors` (tensor `score.weight`, shape (1, hidden), as a Hugging Face
//! `…ForSequenceClassification` stores its score head) and `pm.json` ([`PmInfo`]).

use std::path::Path;

use candle_core::{Device, Tensor, Var};
use rand::Rng;
use rand::SeedableRng;
use shammie_core::{GenerateRequest, Message, Role};
use shammie_kit::jsonl::Origin;
use shammie_local::prompt::Template;
use shammie_local::white_box::WhiteBox;
use shammie_tokenizer::Tokenizer;

use crate::chat::{conversation_example, Conversation};
use crate::lora::{LoraConfig, LoraSet};
use crate::sft::{cat_masks, pack_first_fit_decreasing, StepReport, Trainer};
use crate::TrainError;

/// The head's file in a PM folder.
pub const HEAD_FILE: &str = "reward_head.safetensors";
/// The head's tensor name (Hugging Face's sequence-classification score head).
pub const HEAD_TENSOR: &str = "score.weight";
/// The PM's description in its folder.
pub const INFO_FILE: &str = "pm.json";
/// Hugging Face's `initializer_range`: the head's initial standard deviation.
pub const HEAD_INIT_STD: f64 = 0.02;

/// One training pair: the token ids of prompt + reply A and of prompt + reply B (each
/// ending with the end of turn), and the soft label `p_a` = P(A preferred).
#[derive(Debug, Clone, PartialEq)]
pub struct PairExample {
    pub a: Vec<u32>,
    pub b: Vec<u32>,
    pub p_a: f64,
}

/// The scalar reward head: `w` of shape (hidden, 1).
pub struct RewardHead {
    pub w: Var,
}

impl RewardHead {
    /// A fresh head for `wb`: N(0, 0.02²) entries from ChaCha8 seeded with `seed` on
    /// stream 2 (the example order uses stream 0 of the run's seed, dropout stream 1).
    pub fn init(wb: &WhiteBox, seed: u64) -> Result<Self, TrainError> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(2);
        let n = wb.cfg.hidden;
        let mut w = Vec::with_capacity(n);
        while w.len() < n {
            // Box–Muller: two independent standard normals from two uniforms in (0, 1].
            let u1: f64 = 1.0 - rng.gen::<f64>();
            let u2: f64 = rng.gen::<f64>();
            let r = (-2.0 * u1.ln()).sqrt();
            let t = std::f64::consts::TAU * u2;
            w.push((HEAD_INIT_STD * r * t.cos()) as f32);
            w.push((HEAD_INIT_STD * r * t.sin()) as f32);
        }
        w.truncate(n);
        Ok(RewardHead {
            w: Var::from_vec(w, (n, 1), wb.device())?,
        })
    }

    /// Rewards of the rows of `h` (n, hidden): shape (n,).
    pub fn rewards(&self, h: &Tensor) -> Result<Tensor, TrainError> {
        Ok(h.matmul(self.w.as_tensor())?.squeeze(1)?)
    }

    /// Writes `score.weight` (1, hidden) to `path`.
    pub fn save(&self, path: &Path) -> Result<(), TrainError> {
        let w = self.w.as_detached_tensor().t()?.contiguous()?;
        let tensors = std::collections::HashMap::from([(HEAD_TENSOR.to_string(), w)]);
        candle_core::safetensors::save(&tensors, path).map_err(|e| TrainError::Io {
            path: path.display().to_string(),
            why: e.to_string(),
        })
    }

    /// Reads a head written by [`RewardHead::save`] for a model of `hidden` dimensions.
    pub fn load(path: &Path, hidden: usize, device: &Device) -> Result<Self, TrainError> {
        let io = |why: String| TrainError::Io {
            path: path.display().to_string(),
            why,
        };
        let mut t = candle_core::safetensors::load(path, device).map_err(|e| io(e.to_string()))?;
        let w = t
            .remove(HEAD_TENSOR)
            .ok_or_else(|| io(format!("no tensor `{HEAD_TENSOR}`")))?;
        if w.dims() != [1, hidden] {
            return Err(io(format!(
                "`{HEAD_TENSOR}` has shape {:?}; the model needs [1, {hidden}]",
                w.dims()
            )));
        }
        Ok(RewardHead {
            w: Var::from_tensor(&w.to_dtype(candle_core::DType::F32)?.t()?.contiguous()?)?,
        })
    }
}

/// `softplus(x) = log(1 + eˣ)`, computed as `max(x, 0) + log(1 + e^{−|x|})` so that it
/// neither overflows nor loses small values.
fn softplus(x: &Tensor) -> candle_core::Result<Tensor> {
    x.relu()? + ((x.abs()?.neg()?.exp()? + 1.0)?.log()?)
}

/// The per-pair loss `p·softplus(−d) + (1 − p)·softplus(d)` (module comment) for reward
/// differences `d` and labels `p`, both of shape (k,).
pub fn pair_loss(d: &Tensor, p: &Tensor) -> Result<Tensor, TrainError> {
    let pos = (p * softplus(&d.neg()?)?)?;
    let neg = (p.affine(-1.0, 1.0)? * softplus(d)?)?;
    Ok((pos + neg)?)
}

/// Several sequences back to back as one pass: ids, segment starts, last positions.
fn pack(seqs: &[&[u32]]) -> (Vec<u32>, Vec<usize>, Vec<usize>) {
    let (mut ids, mut starts, mut last) = (Vec::new(), Vec::new(), Vec::new());
    for s in seqs {
        starts.push(ids.len());
        ids.extend_from_slice(s);
        last.push(ids.len() - 1);
    }
    (ids, starts, last)
}

impl Trainer {
    /// One optimizer step of preference-model training on the next `batch` pairs of
    /// `data` (module comment). `head` must be among the trainer's extra tensors
    /// ([`Trainer::with_extra`]).
    pub fn step_pairs(
        &mut self,
        wb: &WhiteBox,
        head: &RewardHead,
        data: &[PairExample],
    ) -> Result<StepReport, TrainError> {
        if data.is_empty() {
            return Err(TrainError::Data("no training pairs".into()));
        }
        if !self
            .vars()
            .iter()
            .any(|v| v.as_tensor().id() == head.w.as_tensor().id())
        {
            return Err(TrainError::Config(
                "the reward head is not trained by this trainer".into(),
            ));
        }
        let (batch, masks) =
            self.begin_step(wb, data.len(), |i| vec![data[i].a.len(), data[i].b.len()])?;
        let tokens: usize = batch
            .iter()
            .map(|&i| data[i].a.len() + data[i].b.len())
            .sum();
        let pack_tokens = self.cfg.pack_tokens;
        // Passes: lists of sequence indices into the batch's sequences (2k: A, 2k + 1: B).
        let passes: Vec<Vec<usize>> = if pack_tokens > 0 {
            let lens: Vec<usize> = batch
                .iter()
                .map(|&i| data[i].a.len() + data[i].b.len())
                .collect();
            pack_first_fit_decreasing(&lens, pack_tokens)
                .into_iter()
                .map(|g| g.iter().flat_map(|&k| [2 * k, 2 * k + 1]).collect())
                .collect()
        } else {
            (0..batch.len()).map(|k| vec![2 * k, 2 * k + 1]).collect()
        };
        let seq = |s: usize| -> &[u32] {
            let ex = &data[batch[s / 2]];
            if s.is_multiple_of(2) {
                &ex.a
            } else {
                &ex.b
            }
        };
        let mut grads = self.zero_grads()?;
        let (mut loss, mut right, mut counted) = (0f64, 0usize, 0usize);
        let n = batch.len() as f64;
        for pass in passes {
            // Rewards of the pass's sequences, A before B within each pair.
            let r = if pack_tokens > 0 {
                let seqs: Vec<&[u32]> = pass.iter().map(|&s| seq(s)).collect();
                let (ids, starts, last) = pack(&seqs);
                let parts: Option<Vec<_>> = pass.iter().map(|&s| masks[s].as_ref()).collect();
                let m = parts.map(|p| cat_masks(&p)).transpose()?;
                head.rewards(&wb.final_hidden_packed_at(&ids, &starts, &last, m.as_ref())?)?
            } else {
                let rows = pass
                    .iter()
                    .map(|&s| {
                        let ids = seq(s);
                        wb.final_hidden_packed_at(ids, &[0], &[ids.len() - 1], masks[s].as_ref())
                    })
                    .collect::<candle_core::Result<Vec<_>>>()?;
                head.rewards(&Tensor::cat(&rows, 0)?)?
            };
            let k = pass.len() / 2;
            let r = r.reshape((k, 2))?;
            let d = (r.narrow(1, 0, 1)? - r.narrow(1, 1, 1)?)?.squeeze(1)?;
            let labels: Vec<f32> = pass
                .iter()
                .step_by(2)
                .map(|&s| data[batch[s / 2]].p_a as f32)
                .collect();
            let p = Tensor::new(labels.as_slice(), wb.device())?;
            let l = (pair_loss(&d, &p)?.sum_all()? / n)?;
            loss += l.to_scalar::<f32>()? as f64;
            for (dv, pv) in d.to_vec1::<f32>()?.iter().zip(&labels) {
                if *pv != 0.5 {
                    counted += 1;
                    right += usize::from((*dv > 0.0) == (*pv > 0.5));
                }
            }
            self.accumulate(&mut grads, &l)?;
        }
        let step = self.steps_done();
        let (grad_norm, lr) = self.finish_step(grads)?;
        Ok(StepReport {
            step,
            loss,
            grad_norm,
            lr,
            tokens,
            accuracy: (counted > 0).then(|| right as f64 / counted as f64),
        })
    }
}

/// Rewards of `seqs` (each prompt + reply + end of turn) under `wb` with `head`: no
/// dropout; packed into passes of at most `pack_tokens` tokens (0: one pass each), which
/// changes the numbers only by float rounding.
pub fn rewards(
    wb: &WhiteBox,
    head: &RewardHead,
    seqs: &[Vec<u32>],
    pack_tokens: usize,
) -> Result<Vec<f64>, TrainError> {
    let mut out = vec![0f64; seqs.len()];
    let passes = if pack_tokens > 0 {
        let lens: Vec<usize> = seqs.iter().map(Vec::len).collect();
        pack_first_fit_decreasing(&lens, pack_tokens)
    } else {
        (0..seqs.len()).map(|i| vec![i]).collect()
    };
    for pass in passes {
        let parts: Vec<&[u32]> = pass.iter().map(|&i| seqs[i].as_slice()).collect();
        if let Some(i) = pass.iter().find(|&&i| seqs[i].is_empty()) {
            return Err(TrainError::Data(format!("sequence {i} is empty")));
        }
        let (ids, starts, last) = pack(&parts);
        let h = wb.final_hidden_packed_at(&ids, &starts, &last, None)?;
        let r = head.rewards(&h.detach())?.to_vec1::<f32>()?;
        for (&i, v) in pass.iter().zip(r) {
            out[i] = v as f64;
        }
    }
    Ok(out)
}

/// One preference record as read: the conversation before the compared replies (ending
/// with a user turn), the two replies and the soft label.
#[derive(Debug, Clone, PartialEq)]
pub struct Preference {
    pub system: Option<String>,
    pub prompt: Vec<Message>,
    pub a: String,
    pub b: String,
    pub p_a: f64,
}

/// Parses one preference JSONL record: `{"prompt": TEXT | [{"role", "content"}, …],
/// "a": TEXT, "b": TEXT, "p_a": NUMBER in [0, 1]}` (other fields are ignored). A prompt
/// list may open with a `system` message, then alternates `user`/`assistant` and ends
/// with `user`.
pub fn parse_preference(v: &serde_json::Value) -> Result<Preference, String> {
    let text = |k: &str| -> Result<String, String> {
        v.get(k)
            .and_then(|x| x.as_str())
            .map(String::from)
            .ok_or_else(|| format!("no string `{k}`"))
    };
    let p_a = v
        .get("p_a")
        .and_then(|x| x.as_f64())
        .ok_or("no number `p_a` (the probability that `a` is preferred)")?;
    if !(0.0..=1.0).contains(&p_a) {
        return Err(format!("`p_a` is {p_a}, not a probability in [0, 1]"));
    }
    let (system, prompt) = match v.get("prompt") {
        Some(serde_json::Value::String(s)) => (None, vec![Message::user(s.clone())]),
        Some(serde_json::Value::Array(_)) => {
            let c = crate::chat::parse_turns(v.get("prompt").expect("present"), "prompt")?;
            (c.system, c.turns)
        }
        _ => return Err("no `prompt` (a string or a list of messages)".into()),
    };
    if prompt.last().map(|m| m.role) != Some(Role::User) {
        return Err("`prompt` must end with a `user` turn".into());
    }
    Ok(Preference {
        system,
        prompt,
        a: text("a")?,
        b: text("b")?,
        p_a,
    })
}

/// The token ids a PM reads for `reply` after `prompt`: the conversation in `template`
/// with the reply as the last assistant turn, end of turn included ([`crate::chat`]).
pub fn pm_sequence(
    template: &Template,
    tok: &Tokenizer,
    system: Option<&str>,
    prompt: &[Message],
    reply: &str,
) -> Result<Vec<u32>, String> {
    let mut turns = prompt.to_vec();
    turns.push(Message::assistant(reply));
    let c = Conversation {
        system: system.map(String::from),
        turns,
    };
    Ok(conversation_example(&c, template, tok)?.ids)
}

/// [`pm_sequence`] for a request (its system text and messages) and a reply.
pub fn request_sequence(
    template: &Template,
    tok: &Tokenizer,
    req: &GenerateRequest,
    reply: &str,
) -> Result<Vec<u32>, String> {
    pm_sequence(template, tok, req.system.as_deref(), &req.messages, reply)
}

/// Reads preference JSONL ([`parse_preference`]) into training pairs; any bad line is a
/// `FILE:LINE:` error and nothing is returned.
pub fn load_preferences_jsonl(
    path: &Path,
    template: &Template,
    tok: &Tokenizer,
) -> Result<Vec<PairExample>, TrainError> {
    let origin = Origin::File(path.to_path_buf());
    let shown = origin.display();
    let mut out = Vec::new();
    for item in origin
        .lines()
        .map_err(|e| TrainError::Data(e.to_string()))?
    {
        let (line, v) = item.map_err(|e| TrainError::Data(e.to_string()))?;
        let pair = parse_preference(&v)
            .and_then(|p| {
                let s = p.system.as_deref();
                Ok(PairExample {
                    a: pm_sequence(template, tok, s, &p.prompt, &p.a)?,
                    b: pm_sequence(template, tok, s, &p.prompt, &p.b)?,
                    p_a: p.p_a,
                })
            })
            .map_err(|e| TrainError::Data(format!("{shown}:{line}: {e}")))?;
        out.push(pair);
    }
    Ok(out)
}

/// What a PM folder's `pm.json` says.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PmInfo {
    /// The base model's spec (`local:gemma-3-270m`).
    pub base: String,
    /// The base's hidden size (the head's length).
    pub hidden: usize,
    /// Where the reward is read.
    pub reads: String,
    /// Training pairs and optimizer steps.
    pub pairs: usize,
    pub steps: usize,
}

/// Writes a PM folder: the adapter (PEFT files), the head and `pm.json`.
pub fn save_pm(
    dir: &Path,
    lora: &LoraSet,
    head: &RewardHead,
    info: &PmInfo,
) -> Result<(), TrainError> {
    lora.save_peft(dir, &info.base)?;
    head.save(&dir.join(HEAD_FILE))?;
    let p = dir.join(INFO_FILE);
    std::fs::write(
        &p,
        serde_json::to_string_pretty(info).expect("plain values"),
    )
    .map_err(|e| TrainError::Io {
        path: p.display().to_string(),
        why: e.to_string(),
    })
}

/// Reads a PM folder's `pm.json`.
pub fn read_info(dir: &Path) -> Result<PmInfo, TrainError> {
    let p = dir.join(INFO_FILE);
    let io = |why: String| TrainError::Io {
        path: p.display().to_string(),
        why,
    };
    let text = std::fs::read_to_string(&p).map_err(|e| io(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| io(e.to_string()))
}

/// Puts the PM in `dir` onto `wb` (its base, loaded by the caller from
/// [`PmInfo::base`]): the adapter's factors (frozen base) and the head.
pub fn attach_pm(wb: &mut WhiteBox, dir: &Path) -> Result<(PmInfo, RewardHead), TrainError> {
    let info = read_info(dir)?;
    if info.hidden != wb.cfg.hidden {
        return Err(TrainError::Config(format!(
            "{}: a PM for hidden size {}, but the model's is {}",
            dir.display(),
            info.hidden,
            wb.cfg.hidden
        )));
    }
    let ad = shammie_local::lora::Adapter::read(dir)?;
    let mut targets: Vec<String> = shammie_local::lora::MODULES
        .iter()
        .filter(|m| ad.deltas.keys().any(|(_, k)| k == *m))
        .map(|m| m.to_string())
        .collect();
    targets.dedup();
    LoraSet::attach(
        wb,
        LoraConfig {
            rank: ad.rank,
            alpha: ad.alpha,
            targets,
            seed: 0,
            init_from: Some(dir.to_path_buf()),
            dropout: 0.0,
        },
    )?;
    let head = RewardHead::load(&dir.join(HEAD_FILE), wb.cfg.hidden, wb.device())?;
    Ok((info, head))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// softplus against its definition, including far out where the naive form overflows.
    #[test]
    fn softplus_is_log_one_plus_exp() {
        let xs = [-30.0f32, -2.0, -0.5, 0.0, 0.5, 2.0, 30.0, 200.0];
        let t = Tensor::new(&xs, &Device::Cpu).unwrap();
        let got = softplus(&t).unwrap().to_vec1::<f32>().unwrap();
        for (x, g) in xs.iter().zip(got) {
            let want = if *x > 50.0 {
                *x as f64
            } else {
                (1.0 + (*x as f64).exp()).ln()
            };
            assert!(
                (g as f64 - want).abs() < 1e-6 * want.max(1.0),
                "{x}: {g} {want}"
            );
        }
    }

    /// By hand: d = 1, p = 0.75: 0.75·log(1 + e⁻¹) + 0.25·log(1 + e) = 0.75·0.313262 +
    /// 0.25·1.313262 = 0.563262. d = −2, p = 1: log(1 + e²) = 2.126928. d = 0, any p:
    /// log 2 = 0.693147.
    #[test]
    fn pair_loss_by_hand() {
        let d = Tensor::new(&[1.0f32, -2.0, 0.0], &Device::Cpu).unwrap();
        let p = Tensor::new(&[0.75f32, 1.0, 0.3], &Device::Cpu).unwrap();
        let l = pair_loss(&d, &p).unwrap().to_vec1::<f32>().unwrap();
        for (g, w) in l
            .iter()
            .zip([0.563262f32, 2.126928, std::f32::consts::LN_2])
        {
            assert!((g - w).abs() < 1e-5, "{l:?}");
        }
    }

    #[test]
    fn preference_records_are_checked() {
        let ok = serde_json::json!({"prompt": [{"role": "system", "content": "s"},
            {"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"},
            {"role": "user", "content": "u2"}], "a": "x", "b": "y", "p_a": 0.25, "extra": 1});
        let p = parse_preference(&ok).unwrap();
        assert_eq!(p.system.as_deref(), Some("s"));
        assert_eq!(p.prompt.len(), 3);
        assert_eq!((p.a.as_str(), p.b.as_str(), p.p_a), ("x", "y", 0.25));
        let text = serde_json::json!({"prompt": "hi", "a": "x", "b": "y", "p_a": 1});
        assert_eq!(
            parse_preference(&text).unwrap().prompt,
            [Message::user("hi")]
        );
        for (bad, why) in [
            (
                serde_json::json!({"prompt": "hi", "a": "x", "b": "y", "p_a": 1.5}),
                "not a probability",
            ),
            (
                serde_json::json!({"prompt": "hi", "a": "x", "b": "y"}),
                "no number `p_a`",
            ),
            (
                serde_json::json!({"prompt": "hi", "a": "x", "p_a": 0.5}),
                "no string `b`",
            ),
            (
                serde_json::json!({"prompt": [{"role": "user", "content": "u"},
                {"role": "assistant", "content": "a"}], "a": "x", "b": "y", "p_a": 0.5}),
                "end with a `user` turn",
            ),
            (
                serde_json::json!({"a": "x", "b": "y", "p_a": 0.5}),
                "no `prompt`",
            ),
        ] {
            let e = parse_preference(&bad).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }
}
