//! Embedded local models on candle, behind the same `Model` trait as the API providers.
//!
//! What is here: our own model code over quantized GGUF weights — Gemma 3 (`gemma3`, the
//! default) and the Llama 3 / Qwen2 family (`llama`) behind one type (`model`) —
//! sampling and continuation scoring, and a batching worker that runs many concurrent
//! requests as one workload, reusing the computed prefixes of earlier prompts (`prefix`),
//! LoRA adapters (`lora`), and a training-safe f32 path with gradients for both families
//! (`white_box`). What is not: HTTP (models come from files that
//! `shammie-hub` fetched), tokenisation rules (`shammie-tokenizer`), study logic.

pub mod attn;
pub mod gemma3;
pub mod llama;
pub mod lora;
pub mod model;
pub mod ops;
pub mod prefix;
pub mod prompt;
pub mod provider;
pub mod qmm;
pub mod rows;
pub mod sampling;
pub mod threads;
pub mod weights;
pub mod white_box;
pub mod worker;

pub use provider::{Loader, LocalModel};
pub use worker::BatchLimits;

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{0}")]
    Io(String),
    #[error("model file: {0}")]
    Format(String),
    #[error("unsupported model: {0}")]
    Unsupported(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
