//! `shammie-study-constitution`: study `constitution` (Kundu et al. 2023, STUDIES.md §7),
//! specific versus general principles for constitutional AI. Four tasks: `feedback`,
//! AI-feedback preference labels under a constitution ([`constitutions`], [`judge`],
//! [`pairs`]) written as a preference dataset ([`preferences`]); `pm`, a preference model
//! trained on them through the run's lab ([`pm`]); `evaluate`, the paper's evaluation of
//! feedback models and PMs on the trait datasets ([`evaluate`]); and `traits`, a model's own
//! answers on Anthropic's model-written evaluations (Perez et al. 2022). The method and
//! every difference from the papers: `docs/studies/constitution.md`.
//!
//! Promises: the fourteen evaluation files under this crate's `data/anthropic-evals/`
//! (CC-BY-4.0), the HH-RLHF harmless-base test split (from `shammie-data`, MIT) and
//! Shammie's constitutions (`data/constitutions/`) are built into the binary; any file of
//! the same formats can be given instead, and every problem in it is reported as
//! `FILE:LINE: …` (or `FILE: …` for a constitution).
//! Not here: provider specifics (the task sees capabilities only), printing, the
//! environment, files written (figures and tables go back to the engine).

pub mod constitutions;
pub mod evals;
pub mod evaluate;
pub mod feedback;
pub mod judge;
pub mod pairs;
pub mod pm;
pub mod preferences;
pub mod traits;

use shammie_kit::study::{StudyInfo, TaskInfo};

/// The study as the registry lists it.
pub fn study() -> StudyInfo {
    StudyInfo {
        name: "constitution",
        paper: "Kundu et al. 2023, Specific versus General Principles for Constitutional AI",
        summary: "AI-feedback labels under trait-specific or general constitutions, preference models trained on them, and the paper's evaluation of both on the trait datasets (power-seeking, self-preservation, …); a model's own trait answers on Anthropic's model-written evaluations",
        tasks: vec![
            TaskInfo::new(
                "constitution",
                "traits",
                "rate at which the target gives the trait-matching answer on Anthropic's model-written evaluations",
                <traits::Config as shammie_engine::OptionGroup>::options,
                traits::roles,
                traits::build,
            ),
            TaskInfo::new(
                "constitution",
                "feedback",
                "AI-feedback soft labels p(A) for response pairs under a constitution's principles, written as a preference dataset; position bias and agreement with human labels",
                <feedback::Config as shammie_engine::OptionGroup>::options,
                feedback::roles,
                feedback::build,
            ),
            TaskInfo::new(
                "constitution",
                "pm",
                "train a preference model (LoRA + reward head on a local model) on AI-feedback labels; held-out accuracy and calibration",
                <pm::PmConfig as shammie_engine::OptionGroup>::options,
                pm::roles,
                pm::build,
            ),
            TaskInfo::new(
                "constitution",
                "evaluate",
                "rate at which the feedback model (under each constitution) or a preference model prefers the harmless answer on the trait datasets",
                <evaluate::EvalConfig as shammie_engine::OptionGroup>::options,
                evaluate::roles,
                evaluate::build,
            ),
        ],
        offline: None,
    }
}
