//! Engine-level tests of the discrim-eval tasks with an in-process scripted model:
//! snapshots of the prompts of the first samples.

mod prompts;
mod science;
