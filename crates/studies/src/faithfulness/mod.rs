//! What the reasoning-faithfulness studies (`cot-faithfulness`, `decomposition`) share
//! on top of the multiple-choice data in `reasoning`: the answer conversation and how the
//! answer letter is read (`answer`), edits of a reasoning chain by a helper model
//! (`edits`), and the data sets a run uses (`data`).
//!
//! Not here: the data formats and the sentence splitter (`reasoning`), study protocols.

pub mod answer;
pub mod data;
pub mod edits;
