//! `shammie-study-discrim-eval`: study `discrim-eval`, discrimination in language-model
//! decisions (Tamkin et al. 2023, "Evaluating and Mitigating Discrimination in Language
//! Model Decisions"; STUDIES.md §6).
//!
//! - `decisions`: the target decides yes/no on prompts that differ only in the person's
//!   age, gender and race; p(yes) is read exactly (continuation scoring), from top-k
//!   log-probabilities, or from samples; the analysis fits the paper's mixed-effects model
//!   per variant (explicit / implicit) and prompt intervention.
//! - `generate`: a writer model drafts new decision templates and fills the demographic
//!   grid, explicitly or through names; the result is saved in the released format.
//! - [`analysis::analyze_file`]: the same statistics over any table of logits
//!   (`shammie analyze discrim-eval FILE`), registered as the study's offline analysis.
//!
//! Promises: every data problem is reported as `FILE:LINE: …`; every intervention runs
//! on the same prompts. Not here: provider specifics (the tasks see capabilities only),
//! printing, the environment, files written (figures and generated data sets go back to
//! the engine as report files).

pub mod analysis;
pub mod builtin;
pub mod data;
pub mod decisions;
mod figure;
pub mod generate;
pub mod interventions;
mod shrinkage;

use shammie_kit::study::{OfflineAnalysis, StudyInfo, TaskInfo};

/// The study as the registry lists it.
pub fn study() -> StudyInfo {
    StudyInfo {
        name: "discrim-eval",
        paper: "Tamkin et al. 2023, Evaluating and Mitigating Discrimination in Language Model Decisions",
        summary: "Whether yes/no decisions about people depend on their age, gender and race (mixed-effects scores), and how prompt interventions change that",
        tasks: vec![
            TaskInfo::new(
                "discrim-eval",
                "decisions",
                "the target's p(yes) over a demographic grid of decision prompts, scored with the paper's mixed-effects model, per variant and intervention",
                <decisions::Settings as shammie_engine::OptionGroup>::options,
                decisions::roles,
                decisions::build,
            ),
            TaskInfo::new(
                "discrim-eval",
                "generate",
                "a writer model drafts new decision templates and fills the demographic grid explicitly and through names; saved in the released format",
                <generate::Config as shammie_engine::OptionGroup>::options,
                generate::roles,
                generate::build,
            ),
        ],
        offline: Some(OfflineAnalysis::new(
            <analysis::FitSettings as shammie_engine::OptionGroup>::options,
            analysis::analyze_offline,
        )),
    }
}
