//! Integration tests of the model layer: providers on the wire, the cache, retries, the
//! OpenAI fine-tuning client and batch mode.
//!
//! One test binary per crate (one link, one copy of the dependencies on disk);
//! each module below is one former test file.

mod batch;
mod cache;
mod common;
mod compatible;
mod finetune;
mod providers;
mod retries;
