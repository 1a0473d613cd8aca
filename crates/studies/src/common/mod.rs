//! Pieces several studies share: reading answers off token log-probabilities or sampled
//! text, and JSONL reading that names the file and line of every problem.

pub mod answers;
pub mod jsonl;
