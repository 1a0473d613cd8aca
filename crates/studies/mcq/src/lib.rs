//! `shammie-mcq`: multiple-choice data for the reasoning studies (`cot-faithfulness`,
//! Lanham et al. 2023; `decomposition`, Radhakrishnan et al. 2023): multiple-choice
//! questions and their answer letters ([`mcq`]), loaders for the public multiple-choice
//! and yes/no data sets with every problem reported as `FILE:LINE: …` ([`formats`], one
//! file per format), a sentence segmenter for chains of thought whose pieces concatenate
//! back to the text ([`sentences`]), and the area-over-the-curve metric of the truncation
//! experiments ([`metrics`]).
//!
//! What is not here: prompts, model calls, answer reading from model output (that is
//! `shammie_kit::answers`), study protocols or analyses, built-in data sets (each study
//! owns its data). Nothing here prints, reads the environment or writes files.

pub mod formats;
pub mod mcq;
pub mod metrics;
pub mod sentences;
