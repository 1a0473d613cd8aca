//! Engine-level tests of `constitution/traits` and `constitution/feedback` with
//! in-process scripted models: snapshots of the prompts of the first samples, how answers
//! are read, and the AI-feedback labels against hand-computed values.

mod feedback;
mod prompts;
mod reading;
