//! `shammie-study-faithfulness`: the two reasoning-faithfulness studies, which share
//! most of their machinery.
//!
//! - [`cot_faithfulness`] (Lanham et al. 2023): does the answer depend on the stated
//!   chain of thought? Early answering, adding mistakes, paraphrasing, filler, no CoT.
//! - [`decomposition`] (Radhakrishnan et al. 2023): does answering through
//!   sub-questions make stated reasoning more faithful?
//!
//! What both share, on top of the multiple-choice data in `shammie-mcq`: the answer
//! conversation and how the answer letter is read ([`answer`]), edits of a reasoning
//! chain by a helper model ([`edits`]), and the data sets a run uses ([`data`]: the
//! AQuA-RAT test split under this crate's `data/aqua/`, Apache-2.0, built into the
//! binary, or user files).
//!
//! Promises: an unusable helper edit is recorded as skipped, never patched; every
//! intervened chain and every answer is in the sample's transcript. Not here: the data
//! formats and the sentence splitter (`shammie-mcq`), provider specifics, printing, the
//! environment, files written.

pub mod answer;
pub mod cot_faithfulness;
pub mod data;
pub mod decomposition;
pub mod edits;
