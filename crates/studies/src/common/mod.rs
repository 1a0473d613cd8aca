//! Pieces several studies share: reading answers off token log-probabilities or sampled
//! text, JSONL reading that names the file and line of every problem, and typed
//! per-sample scores.

pub mod answers;
pub mod jsonl;
pub mod scores;
