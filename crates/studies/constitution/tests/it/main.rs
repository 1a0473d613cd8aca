//! Engine-level tests of `constitution/traits`, `constitution/feedback` and `constitution/evaluate` with
//! in-process scripted models: snapshots of the prompts of the first samples, how answers
//! are read, and the AI-feedback labels against hand-computed values.

mod evaluate;
mod feedback;
mod prompts;
mod reading;
