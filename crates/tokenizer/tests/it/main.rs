//! Integration tests of the GGUF tokenizers: against llama.cpp's token ids on fixtures.
//!
//! One test binary per crate (one link, one copy of the dependencies on disk);
//! each module below is one former test file.

mod bpe_llama_cpp;
mod common;
mod gemma3;
mod gpt2_bpe;
mod spm_small;
