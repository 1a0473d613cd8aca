//! LoRA fine-tuning (supervised, on chat transcripts) of local models on the white-box f32
//! path (`shammie_local::white_box`), for Gemma 3 and the Llama 3 / Qwen2 family.
//!
//! What is here: trainable LoRA factors on chosen projections of a frozen base, with
//! seeded LoRA dropout on the factors' input in training ([`lora`]), AdamW with bias
//! correction and decoupled weight decay and a warm-up/decay learning-rate schedule
//! ([`optim`]), the training step — loss on assistant tokens only, gradient accumulation
//! over the examples of a step, optional sequence packing of a step's examples (first-fit
//! decreasing into sequences of up to `pack_tokens` tokens, block-diagonal attention,
//! positions restarting per example), global-norm clipping, seeded order ([`sft`]) — and
//! saving the result as a PEFT adapter folder that `shammie_local::lora::Adapter` (so
//! `local:NAME+lora=DIR`) loads; chat-format JSONL rendered with the served prompt format
//! ([`chat`]); training run directories with checkpoints, exact resume (dropout's RNG
//! included), the adapter as an artifact and a loss curve ([`run`]); tiny random Gemma 3,
//! Llama 3 and Qwen2 models for tests ([`testing`]).
//!
//! What is not (yet): per-message `weight`; batching with padding (the white box has no
//! batch dimension: without packing every example is its own forward pass, with packing
//! several short examples share one, and the sequences of one optimizer step are
//! accumulated, not batched); packing across optimizer steps (a step packs only its own
//! `batch` examples, so that steps, epochs and the schedule do not depend on packing).

pub mod chat;
pub mod lora;
pub mod optim;
pub mod pm;
pub mod run;
pub mod sft;
pub mod testing;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Data(String),
    #[error("{path}: {why}")]
    Io { path: String, why: String },
    #[error(transparent)]
    Local(#[from] shammie_local::LocalError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
