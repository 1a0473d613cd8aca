//! Weight-level work on a run's models: fine-tuning, activations, preference models and
//! influence functions.
//!
//! A [`Lab`] is handed to the engine by the front end with the models
//! ([`crate::Models::with_lab`]); the CLI binds it to `shammie-train` and the white box for
//! local models and to a provider's fine-tuning API for API models. Studies never see how:
//! a lab stage ([`crate::pipeline::LabStage`]) asks for "this base, fine-tuned on that chat
//! data" and gets back the spec of the trained model, which a later map stage binds to a
//! role ([`crate::pipeline::MapStage::models`]).
//!
//! Fine-tuning is resumable by contract: a lab keeps its state under the work folder it is
//! given, and called again with the same job after a kill it continues (a local run from
//! its last checkpoint, an API job by polling the job it already created) rather than
//! starting, or paying for, a second one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use shammie_core::GenerateRequest;
use shammie_models::Model;

use crate::pipeline::StageOutput;

/// Hyperparameters of a supervised fine-tuning job (LoRA on local models; an API applies
/// what it supports and ignores the rest, saying so in the stage's progress).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FineTuneConfig {
    /// LoRA rank (local models).
    pub rank: usize,
    /// LoRA alpha: the update is scaled by alpha/rank.
    pub alpha: f64,
    /// LoRA dropout on the adapted projections' inputs.
    #[serde(default)]
    pub dropout: f64,
    /// Projections to adapt (`q_proj` … `down_proj`).
    pub targets: Vec<String>,
    /// Peak learning rate (local); an API's learning-rate multiplier is left at its default.
    pub lr: f64,
    /// Passes over the data.
    pub epochs: f64,
    /// Examples per optimizer step.
    pub batch: usize,
    /// Local training packs each step's examples into sequences of at most this many
    /// tokens (`shammie_train::sft::TrainConfig::pack_tokens`: same examples and loss, one
    /// forward pass per sequence); 0: every example is its own pass. APIs ignore it.
    #[serde(default)]
    pub pack_tokens: usize,
    /// Warm-up steps.
    pub warmup: usize,
    /// Seeds the example order and the adapter's initialisation.
    pub seed: u64,
}

impl Default for FineTuneConfig {
    fn default() -> Self {
        FineTuneConfig {
            rank: 16,
            alpha: 32.0,
            dropout: 0.0,
            targets: ["q_proj", "k_proj", "v_proj", "o_proj"]
                .map(String::from)
                .to_vec(),
            lr: 1e-3,
            epochs: 1.0,
            batch: 8,
            pack_tokens: 0,
            warmup: 2,
            seed: 0,
        }
    }
}

/// One fine-tuning job.
#[derive(Debug, Clone, PartialEq)]
pub struct FineTuneJob {
    /// The model to start from, as a spec. A spec that already carries an adapter
    /// (`local:NAME+lora=DIR`) is trained further from that adapter.
    pub base: String,
    /// Chat-format JSONL (`{"messages": [...]}` per line).
    pub data: PathBuf,
    pub config: FineTuneConfig,
}

/// What a finished fine-tuning job produced.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Trained {
    /// The trained model's spec, to bind to a role.
    pub spec: String,
    /// Mean loss per trained token at the first and the last step (local training).
    #[serde(default)]
    pub first_loss: Option<f64>,
    #[serde(default)]
    pub last_loss: Option<f64>,
    /// Optimizer steps taken.
    #[serde(default)]
    pub steps: usize,
}

/// One preference-model training job: a reward head and LoRA factors on a local base,
/// trained on soft pairwise labels (`shammie_train::pm`).
#[derive(Debug, Clone, PartialEq)]
pub struct PmJob {
    /// The base model's spec (`local:NAME`).
    pub base: String,
    /// Preference JSONL: `{"prompt": TEXT | [messages], "a": TEXT, "b": TEXT, "p_a": P}`
    /// per line (other fields ignored).
    pub data: PathBuf,
    /// LoRA, optimizer and batch settings (`batch` counts pairs).
    pub config: FineTuneConfig,
}

/// What a finished preference-model job produced.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainedPm {
    /// The PM folder (absolute path of the stage's `pm/` artifact): what
    /// [`Lab::rewards`] takes.
    pub path: String,
    /// Mean pair loss and pairwise accuracy of the first and last steps.
    pub first_loss: Option<f64>,
    pub last_loss: Option<f64>,
    pub first_accuracy: Option<f64>,
    pub last_accuracy: Option<f64>,
    pub steps: usize,
}

/// Residual-stream activations of a model on prompts.
#[derive(Debug, Clone, PartialEq)]
pub struct Activations {
    /// Per prompt, per layer index `0..=layers` (0: the embeddings; `i`: after layer
    /// `i - 1`), the residual stream at the prompt's last token.
    pub last_token: Vec<Vec<Vec<f32>>>,
    /// The model's number of transformer layers.
    pub layers: usize,
}

/// The context of an [`InfluenceText`]: nothing, plain text, or a chat request rendered
/// as the model reads it (its prompt format, the assistant's opener last).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InfluencePrompt {
    None,
    Text(String),
    Chat(GenerateRequest),
}

/// A token sequence as influence reads it: `prompt` is context, `completion` the part whose
/// log-probability counts (a training sequence's loss, a query's measurement
/// log p(completion | prompt)). A plain-text document is all completion.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InfluenceText {
    pub id: String,
    pub prompt: InfluencePrompt,
    pub completion: String,
}

/// Settings of an influence computation (EK-FAC, Grosse et al. 2023).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InfluenceConfig {
    /// `sampled` (labels drawn from the model: the true Fisher) or `empirical`.
    pub fisher: String,
    /// The damping λ added to every eigenvalue; `None`: 0.1 × each layer's mean Λ.
    pub damping: Option<f64>,
    /// Projections whose weights influence is computed over (`gate_proj`, `up_proj`,
    /// `down_proj`, `o_proj`).
    pub modules: Vec<String>,
    /// Transformer layers (all when `None`).
    pub layers: Option<Vec<usize>>,
    /// Rank of the low-rank approximation of each preconditioned query gradient; `None`:
    /// exact.
    pub rank: Option<usize>,
    /// Sequences are cut to this many tokens.
    pub max_tokens: usize,
    /// Also compute each candidate's self-influence ⟨P∇L_z, ∇L_z⟩.
    pub self_influence: bool,
    /// Seeds sampled labels.
    pub seed: u64,
}

/// One influence computation: factors fitted on `fit`, then every query scored against
/// every candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct InfluenceJob {
    /// A local model's spec.
    pub model: String,
    pub fit: Vec<InfluenceText>,
    pub queries: Vec<InfluenceText>,
    pub candidates: Vec<InfluenceText>,
    pub config: InfluenceConfig,
}

/// What an influence computation found.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InfluenceResult {
    /// `scores[q][c]`: the influence of candidate `c` on query `q`, summed over layers;
    /// positive when training on `c` raises the query's log-probability.
    pub scores: Vec<Vec<f64>>,
    /// Per candidate, its tokens as text (the model's pieces, prompt included).
    pub tokens: Vec<Vec<String>>,
    /// `token_scores[q][c][t]`: the part of `scores[q][c]` carried by token `t` of
    /// candidate `c` (its row of the gradient, ∑_t s_t ā_tᵀ); sums to the score.
    pub token_scores: Vec<Vec<Vec<f64>>>,
    /// Per candidate, where its completion starts in `tokens`.
    pub completion_start: Vec<usize>,
    /// Per candidate, ⟨P∇L_c, ∇L_c⟩ (when asked for).
    pub self_influence: Option<Vec<f64>>,
    /// Per query, log p(completion | prompt) under the model.
    pub query_logprobs: Vec<f64>,
    /// The projections' names, as Hugging Face names them.
    pub layers: Vec<String>,
    /// Sequences and tokens the factors were fitted on.
    pub fit_sequences: usize,
    pub fit_tokens: u64,
    /// Wall-clock seconds of the fit (0 when the factors came from a checkpoint) and of
    /// the scoring.
    pub fit_seconds: f64,
    pub score_seconds: f64,
}

/// Weight-level access to models.
pub trait Lab: Send + Sync {
    /// Opens the model a spec names (a trained model's spec included), with the same
    /// caching and retries as the run's other models.
    fn open(&self, spec: &str) -> Result<Arc<dyn Model>, String>;
    /// Runs (or, after a kill, continues) `job`, keeping its state under `work`; writes
    /// what the trained model needs (a local adapter) as artifacts through `out` and
    /// returns its spec. Blocking; called from a lab stage's thread.
    fn fine_tune(
        &self,
        job: &FineTuneJob,
        work: &Path,
        out: &mut StageOutput,
    ) -> Result<Trained, String>;
    /// Residual-stream activations of the model `spec` at the last token of each prompt,
    /// rendered as the model reads it (its chat template or `Human:`/`Assistant:`, and a
    /// prefill, if the request has one, appended after the assistant's opener).
    fn activations(&self, spec: &str, prompts: &[GenerateRequest]) -> Result<Activations, String>;
    /// Why activations of `spec` cannot be read (an API model), or `None` when they can.
    fn no_activations(&self, _spec: &str) -> Option<String> {
        None
    }
    /// Trains (or, after a kill, continues) a preference model as [`Lab::fine_tune`]
    /// trains a model: state under `work`, the PM folder written as the artifact
    /// `{stage}/pm/` through `out`. Blocking.
    fn train_pm(
        &self,
        _job: &PmJob,
        _work: &Path,
        _out: &mut StageOutput,
    ) -> Result<TrainedPm, String> {
        Err("this lab cannot train preference models".into())
    }
    /// The reward the PM in folder `pm` gives each reply after its request (the request's
    /// system text and messages, rendered as the PM's base model reads them). Blocking.
    fn rewards(&self, _pm: &str, _items: &[(GenerateRequest, String)]) -> Result<Vec<f64>, String> {
        Err("this lab cannot read preference models".into())
    }
    /// Sentence embeddings of `texts` by the embedding model `model` (a name the front end
    /// resolves, e.g. `all-minilm-l6-v2`), one vector per text, in order, L2-normalised.
    /// Deterministic: the same texts in the same order give the same bits. Blocking.
    fn embed(&self, model: &str, _texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        Err(format!("this lab cannot embed text (asked for {model})"))
    }
    /// Runs (or, after a kill, continues from the factors and scores kept under `work`) an
    /// influence computation on a local model. Blocking; reports progress through `out`.
    fn influence(
        &self,
        _job: &InfluenceJob,
        _work: &Path,
        _out: &mut StageOutput,
    ) -> Result<InfluenceResult, String> {
        Err("this lab cannot compute influence".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration written before `dropout` and `pack_tokens` existed reads as neither
    /// (0), and both round-trip.
    #[test]
    fn old_fine_tune_configs_read_without_dropout_or_packing() {
        let set = FineTuneConfig {
            dropout: 0.1,
            pack_tokens: 512,
            ..Default::default()
        };
        let mut v = serde_json::to_value(&set).unwrap();
        let back: FineTuneConfig = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(back, set);
        let o = v.as_object_mut().unwrap();
        o.remove("dropout");
        o.remove("pack_tokens");
        let old: FineTuneConfig = serde_json::from_value(v).unwrap();
        assert_eq!((old.dropout, old.pack_tokens), (0.0, 0));
        assert_eq!(old.rank, set.rank);
    }
}
