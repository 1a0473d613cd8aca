//! `shammie run --config FILE.toml`: a run, or a sweep of runs, described in a file.
//!
//! ```toml
//! task = "constitution/traits"
//! models = ["local:gemma-3-270m", "openai:gpt-4o-mini"]  # a sweep: one run per target
//! # model = "local:gemma-3-270m"                          # or a single target
//! limit = 20
//! seed = 1
//! epochs = 1
//!
//! [roles]          # the task's other roles, the same in every run of the sweep
//! judge = "openai:gpt-4o"
//!
//! [set]            # task options, as --set key=value
//! path = "sampling"
//! ```
//!
//! Unknown keys are errors (naming the file and line), so a typo never runs a default.
//! Option values may be strings, numbers or booleans; they reach the task as the text
//! `--set` would give it.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail};
use serde::Deserialize;

use crate::commands::run::Plan;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    task: String,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    models: Vec<String>,
    #[serde(default)]
    roles: BTreeMap<String, String>,
    #[serde(default)]
    set: BTreeMap<String, toml::Value>,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    seed: u64,
    #[serde(default = "one")]
    epochs: u32,
}

fn one() -> u32 {
    1
}

fn option_text(key: &str, v: &toml::Value) -> anyhow::Result<String> {
    Ok(match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Array(items) => items
            .iter()
            .map(|x| option_text(key, x))
            .collect::<anyhow::Result<Vec<_>>>()?
            .join(","),
        other => bail!(
            "set.{key}: a {} cannot be an option value",
            other.type_str()
        ),
    })
}

/// The runs `path` describes, one per target model.
pub(crate) fn read(path: &Path) -> anyhow::Result<Vec<Plan>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow!("{}: cannot read: {e}", path.display()))?;
    let f: File = toml::from_str(&text).map_err(|e| {
        let at = e
            .span()
            .map(|s| format!(":{}", 1 + text[..s.start].matches('\n').count()))
            .unwrap_or_default();
        anyhow!("{}{at}: {}", path.display(), e.message())
    })?;
    let targets: Vec<String> = match (f.model, f.models.is_empty()) {
        (Some(m), true) => vec![m],
        (None, false) => f.models,
        (Some(_), false) => bail!("{}: give `model` or `models`, not both", path.display()),
        (None, true) => bail!(
            "{}: no model: give `model = \"SPEC\"` or `models = [\"SPEC\", …]` (a sweep)",
            path.display()
        ),
    };
    if f.epochs == 0 {
        bail!("{}: epochs must be at least 1", path.display());
    }
    if f.limit == Some(0) {
        bail!("{}: limit must be at least 1", path.display());
    }
    let options = f
        .set
        .iter()
        .map(|(k, v)| Ok((k.clone(), option_text(k, v)?)))
        .collect::<anyhow::Result<BTreeMap<_, _>>>()
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(targets
        .into_iter()
        .map(|t| {
            let mut models = vec![t];
            models.extend(f.roles.iter().map(|(r, s)| format!("{r}={s}")));
            Plan {
                task: f.task.clone(),
                models,
                options: options.clone(),
                limit: f.limit,
                seed: f.seed,
                epochs: f.epochs,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("run.toml");
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    #[test]
    fn a_sweep_and_its_errors() {
        let (_d, p) = write(
            "task = \"x/y\"\nmodels = [\"a:1\", \"b:2\"]\nlimit = 3\nseed = 9\n[roles]\njudge = \"c:3\"\n[set]\npath = \"sampling\"\nsamples = 5\nflag = true\nlist = [\"p\", \"q\"]\n",
        );
        let plans = read(&p).unwrap();
        assert_eq!(plans.len(), 2);
        assert_eq!(plans[1].models, ["b:2", "judge=c:3"]);
        assert_eq!(plans[0].limit, Some(3));
        assert_eq!(plans[0].seed, 9);
        assert_eq!(plans[0].epochs, 1);
        assert_eq!(plans[0].options["samples"], "5");
        assert_eq!(plans[0].options["flag"], "true");
        assert_eq!(plans[0].options["list"], "p,q");
        let (_d, p) = write("task = \"x/y\"\nmodel = \"a:1\"\nlimt = 3\n");
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("run.toml:3") && e.contains("limt"), "{e}");
        let (_d, p) = write("task = \"x/y\"\n");
        assert!(read(&p).unwrap_err().to_string().contains("no model"));
    }
}
