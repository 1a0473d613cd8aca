//! Integration tests of the embedded local models: against llama.cpp fixtures, the white-box path and the provider.
//!
//! One test binary per crate (one link, one copy of the dependencies on disk);
//! each module below is one former test file.

mod chat_template;
mod common;
mod invariance;
mod llama_cpp;
mod llama_family;
mod lora;
mod prefix;
mod provider;
mod white_box;
mod white_box_llama;
