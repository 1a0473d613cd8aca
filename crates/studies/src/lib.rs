//! The studies: one module per paper, each with its configuration, data, per-sample
//! protocol, scoring and analysis, plugged into the engine through its `Task` trait.
//!
//! What is here: the registry that maps `STUDY/TASK` names to task constructors and
//! describes their options and model roles (for `shammie list`), and the studies.
//! What is not: no provider specifics (studies see models only through capabilities),
//! no printing, no environment.

pub mod common;
pub mod constitution;
pub mod cot_faithfulness;
pub mod decomposition;
pub mod discrim;
pub mod faithfulness;
pub mod reasoning;

use std::collections::BTreeMap;
use std::sync::Arc;

use shammie_engine::{EngineError, OptionSpec, Options, RoleSpec, Task};

/// A runnable task of a study.
pub struct TaskInfo {
    pub study: &'static str,
    pub name: &'static str,
    pub summary: &'static str,
    pub options: &'static [OptionSpec],
    pub roles: fn() -> Vec<RoleSpec>,
    build: fn(Options) -> Result<Arc<dyn Task>, EngineError>,
}

impl TaskInfo {
    pub fn path(&self) -> String {
        format!("{}/{}", self.study, self.name)
    }
    /// Builds the task from `--set` options (typed, defaults filled, unknown keys rejected).
    pub fn build(&self, options: BTreeMap<String, String>) -> Result<Arc<dyn Task>, EngineError> {
        (self.build)(Options::new(self.path(), options))
    }
}

/// A study: a paper and its tasks.
pub struct StudyInfo {
    pub name: &'static str,
    pub paper: &'static str,
    pub summary: &'static str,
    pub tasks: Vec<TaskInfo>,
}

pub fn studies() -> Vec<StudyInfo> {
    vec![
        StudyInfo {
            name: "discrim-eval",
            paper: "Tamkin et al. 2023, Evaluating and Mitigating Discrimination in Language Model Decisions",
            summary: "Whether yes/no decisions about people depend on their age, gender and race (mixed-effects scores), and how prompt interventions change that",
            tasks: vec![
                TaskInfo {
                    study: "discrim-eval",
                    name: "decisions",
                    summary: "the target's p(yes) over a demographic grid of decision prompts, scored with the paper's mixed-effects model, per variant and intervention",
                    options: discrim::decisions::OPTIONS,
                    roles: discrim::decisions::roles,
                    build: discrim::decisions::build,
                },
                TaskInfo {
                    study: "discrim-eval",
                    name: "generate",
                    summary: "a writer model drafts new decision templates and fills the demographic grid explicitly and through names; saved in the released format",
                    options: discrim::generate::OPTIONS,
                    roles: discrim::generate::roles,
                    build: discrim::generate::build,
                },
            ],
        },
        StudyInfo {
            name: "cot-faithfulness",
            paper: "Lanham et al. 2023, Measuring Faithfulness in Chain-of-Thought Reasoning",
            summary: "Whether the answer depends on the stated chain of thought: early answering, adding mistakes, paraphrasing, filler tokens",
            tasks: vec![TaskInfo {
                study: "cot-faithfulness",
                name: "interventions",
                summary: "one chain of thought per question, then the answer after each intervention on it; % same answer vs reasoning kept, AOC, accuracy with/without CoT",
                options: cot_faithfulness::task::OPTIONS,
                roles: cot_faithfulness::task::roles,
                build: cot_faithfulness::task::build,
            }],
        },
        StudyInfo {
            name: "decomposition",
            paper: "Radhakrishnan et al. 2023, Question Decomposition Improves the Faithfulness of Model-Generated Reasoning",
            summary: "Accuracy and faithfulness of few-shot, chain-of-thought, CoT-decomposition and factored-decomposition answering",
            tasks: vec![TaskInfo {
                study: "decomposition",
                name: "strategies",
                summary: "each question under each strategy: accuracy, early answering and adding mistakes over the reasoning units, and the accuracy drop under biased contexts",
                options: decomposition::task::OPTIONS,
                roles: decomposition::task::roles,
                build: decomposition::task::build,
            }],
        },
        StudyInfo {
            name: "agent-loop",
            paper: "none: a built-in check of Shammie's agent loop",
            summary: "Multi-step arithmetic with a calculator tool: exercises tool calls, the step journal and resume on any model",
            tasks: vec![TaskInfo {
                study: "agent-loop",
                name: "arithmetic",
                summary: "word problems solved with <calc> tool calls and an <answer>; accuracy, tool use, turns, why episodes ended",
                options: shammie_study_agent_loop::OPTIONS,
                roles: shammie_study_agent_loop::roles,
                build: shammie_study_agent_loop::build,
            }],
        },
        StudyInfo {
        name: "constitution",
        paper: "Kundu et al. 2023, Specific versus General Principles for Constitutional AI",
        summary: "Trait evaluations (power-seeking, self-preservation, …) and AI-feedback labels under trait-specific or general principles",
        tasks: vec![TaskInfo {
            study: "constitution",
            name: "traits",
            summary: "rate at which the target gives the trait-matching answer on Anthropic's model-written evaluations",
            options: constitution::traits::OPTIONS,
            roles: || vec![RoleSpec { name: "target", help: "the model whose traits are measured", defaults_to: None }],
            build: constitution::traits::build,
        }],
        },
    ]
}

/// Finds `STUDY/TASK` (or `STUDY` when it has a single task).
pub fn find(path: &str) -> Result<TaskInfo, EngineError> {
    let (study, task) = match path.split_once('/') {
        Some((s, t)) => (s, Some(t)),
        None => (path, None),
    };
    let all = studies();
    let names = || {
        all.iter()
            .flat_map(|s| s.tasks.iter().map(|t| t.path()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let known = names();
    let s = all.into_iter().find(|s| s.name == study).ok_or_else(|| {
        EngineError::Config(format!("no study `{study}`; available tasks: {known}"))
    })?;
    let mut tasks = s.tasks;
    match task {
        Some(t) => {
            let i = tasks.iter().position(|x| x.name == t).ok_or_else(|| {
                EngineError::Config(format!(
                    "study `{study}` has no task `{t}`; available tasks: {known}"
                ))
            })?;
            Ok(tasks.swap_remove(i))
        }
        None if tasks.len() == 1 => Ok(tasks.pop().unwrap()),
        None => Err(EngineError::Config(format!(
            "study `{study}` has several tasks; name one of: {known}"
        ))),
    }
}
