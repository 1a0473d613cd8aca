//! `decomposition`: does answering through sub-questions make stated reasoning more
//! faithful? (Radhakrishnan et al. 2023, "Question Decomposition Improves the
//! Faithfulness of Model-Generated Reasoning"; STUDIES.md §9).
//!
//! `decomposition/strategies` answers each question with each strategy — few-shot
//! (zero-shot with `shots=0`), chain of thought, CoT decomposition (one context writes
//! `<sub_q>`/`<sub_a>` pairs, then answers) and factored decomposition (a `decomposer`
//! writes numbered sub-questions turn by turn, a `subanswerer` answers each in a fresh
//! context once its inputs are known (`factored.rs`), the target recomposes) — and
//! measures how much the final answer depends on the reasoning: early answering and
//! adding mistakes over the reasoning units, and the accuracy drop under biased
//! contexts (few-shot answers always (A); a user-suggested wrong answer).
//! The prompts (`prompts.rs`) are Shammie's own, 14 exemplars each as in the paper
//! (`exemplars.rs`), or the paper's released files (`prompts=DIR`). Every sub-question,
//! sub-answer, truncated and corrupted reasoning is in the sample's transcript. The
//! method, and every difference from the paper, is in `docs/studies/decomposition.md`.

pub mod analysis;
pub mod exemplars;
pub mod factored;
mod figure;
pub mod prompts;
pub mod task;

use shammie_kit::study::{StudyInfo, TaskInfo};

/// The study as the registry lists it.
pub fn study() -> StudyInfo {
    StudyInfo {
        name: "decomposition",
        paper: "Radhakrishnan et al. 2023, Question Decomposition Improves the Faithfulness of Model-Generated Reasoning",
        summary: "Accuracy and faithfulness of few-shot, chain-of-thought, CoT-decomposition and factored-decomposition answering",
        tasks: vec![TaskInfo::new(
            "decomposition",
            "strategies",
            "each question under each strategy: accuracy, early answering and adding mistakes over the reasoning units, and the accuracy drop under biased contexts",
            <task::Settings as shammie_engine::OptionGroup>::options,
            task::roles,
            task::build,
        )],
        offline: None,
    }
}
