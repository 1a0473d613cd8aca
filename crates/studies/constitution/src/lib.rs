//! `shammie-study-constitution`: study `constitution` (Kundu et al. 2023, STUDIES.md §7),
//! specific versus general principles for constitutional AI. So far only the `traits`
//! evaluation on Anthropic's model-written evaluations (Perez et al. 2022); the AI-feedback
//! labels and preference-model training of the paper come with the training work. The
//! method and every difference from the papers: `docs/studies/constitution.md`.
//!
//! Promises: the fourteen evaluation files under this crate's `data/anthropic-evals/`
//! (CC-BY-4.0) are built into the binary; any file or folder of the same format can be
//! given instead, and every problem in it is reported as `FILE:LINE: …`.
//! Not here: provider specifics (the task sees capabilities only), printing, the
//! environment, files written (figures and tables go back to the engine).

pub mod evals;
pub mod traits;

use shammie_kit::study::{StudyInfo, TaskInfo};

/// The study as the registry lists it.
pub fn study() -> StudyInfo {
    StudyInfo {
        name: "constitution",
        paper: "Kundu et al. 2023, Specific versus General Principles for Constitutional AI",
        summary: "Trait evaluations (power-seeking, self-preservation, …) on Anthropic's model-written evaluations; AI-feedback labels and preference-model training are not built yet",
        tasks: vec![TaskInfo::new(
            "constitution",
            "traits",
            "rate at which the target gives the trait-matching answer on Anthropic's model-written evaluations",
            <traits::Config as shammie_engine::OptionGroup>::options,
            traits::roles,
            traits::build,
        )],
        offline: None,
    }
}
