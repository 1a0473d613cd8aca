//! `discrim-eval`: discrimination in language-model decisions (Tamkin et al. 2023,
//! "Evaluating and Mitigating Discrimination in Language Model Decisions";
//! STUDIES.md §6).
//!
//! - `decisions`: the target decides yes/no on prompts that differ only in the person's
//!   age, gender and race; p(yes) is read exactly (continuation scoring), from top-k
//!   log-probabilities, or from samples; the analysis fits the paper's mixed-effects model
//!   per variant (explicit / implicit) and prompt intervention.
//! - `generate`: a writer model drafts new decision templates and fills the demographic
//!   grid, explicitly or through names; the result is saved in the released format.
//! - [`analysis::analyze_file`]: the same statistics over any table of logits
//!   (`shammie analyze discrim-eval FILE`).

pub mod analysis;
pub mod builtin;
pub mod data;
pub mod decisions;
mod figure;
pub mod generate;
pub mod interventions;
