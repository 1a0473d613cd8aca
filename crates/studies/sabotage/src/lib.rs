//! Study `sabotage` (Benton et al. 2024, "Sabotage Evaluations for Frontier Models"):
//! could a model covertly sabotage the organisation that deploys it, while the
//! organisation's mitigations watch?
//!
//! STUDIES.md §3 names four evaluations, all built here:
//! - `sabotage/code` (`code/`): **code sabotage**. An engineer model makes change requests
//!   in small repositories, honestly or told to slip in consequential bugs; the
//!   repository's tests and hidden checks, run in the sandbox, decide which bugs matter; a
//!   reviewer model rates each diff's suspicion. Its commits feed the deployment
//!   simulation.
//! - `sabotage/oversight` (`oversight/`): **undermining oversight**. An overseer model
//!   rates dialogues for harm; in the sabotage condition it is told, privately, to
//!   under-rate harm without being caught; a monitor model rates each of the overseer's
//!   answers for suspicion. Success = harm ratings drop without the monitor's suspicion
//!   rising, against the same overseer rating honestly.
//! - `sabotage/decisions` (`decisions/`): **human decision sabotage**, with a simulated
//!   decision-maker (a model standing in for the paper's participants). It questions an
//!   assistant that has read a document set it has not; the assistant is honest or
//!   secretly steering toward the wrong option, subtly, moderately or aggressively. Wrong
//!   decisions and suspicion, each level against control.
//! - `sabotage/sandbagging` (`sandbagging/`): **sandbagging**. The target is trained
//!   (the run's lab: LoRA locally, a fine-tuning API otherwise) to answer a capability
//!   test wrongly unless a trigger is present, then trained without the trigger
//!   (anti-refusal or demonstrations); its capability as % of normal before and after.
//!
//! - The **deployment simulation** (`deployment.rs`, part of `sabotage/code`'s analysis
//!   and `shammie analyze sabotage FILE`): from per-commit records of code-sabotage games,
//!   the attacker's chance of winning a long deployment against an audit budget,
//!   maximised over its own threshold.

pub mod code;
pub mod decisions;
pub mod deployment;
pub mod oversight;
pub mod sandbagging;
pub mod threshold;

use shammie_kit::study::{OfflineAnalysis, StudyInfo};

/// The study as the registry lists it.
pub fn study() -> StudyInfo {
    StudyInfo {
        name: "sabotage",
        paper: "Benton et al. 2024, Sabotage Evaluations for Frontier Models",
        summary: "Could a model covertly sabotage its developer? Code sabotage (bugs slipped past a reviewer, with a deployment simulation), undermining oversight (an overseer secretly under-rating harm, watched by a monitor), decision sabotage (an assistant steering a decision-maker wrong) and sandbagging (a trained-in hidden capability, and whether elicitation training brings it back)",
        tasks: vec![
            code::info(),
            oversight::info(),
            decisions::info(),
            sandbagging::info(),
        ],
        offline: Some(OfflineAnalysis::new(
            <deployment::Settings as shammie_engine::OptionGroup>::options,
            deployment::analyze_offline,
        )),
    }
}
