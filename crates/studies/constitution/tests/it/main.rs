//! Engine-level tests of `constitution/traits` with an in-process scripted model:
//! snapshots of the prompts of the first samples, and how answers are read.

mod prompts;
mod reading;
