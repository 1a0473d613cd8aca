//! Typed access to a task's `--set key=value` options, with defaults and clear errors.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use crate::EngineError;

/// How `shammie list` describes one option.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OptionSpec {
    pub key: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

/// The options given for one task. Every key must be read by the task's constructor;
/// [`Options::finish`] rejects the ones nobody asked for (typos).
pub struct Options {
    map: BTreeMap<String, String>,
    used: RefCell<BTreeSet<String>>,
    task: String,
}

impl Options {
    pub fn new(task: impl Into<String>, map: BTreeMap<String, String>) -> Self {
        Self {
            map,
            used: RefCell::default(),
            task: task.into(),
        }
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.used.borrow_mut().insert(key.to_string());
        self.map.get(key).map(String::as_str)
    }

    /// Parses `key` as `T`, or returns `default` when it is not set.
    pub fn parse<T: FromStr>(&self, key: &str, default: T) -> Result<T, EngineError>
    where
        T::Err: std::fmt::Display,
    {
        match self.str(key) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|e| {
                EngineError::Config(format!("{}: option {key}={v:?}: {e}", self.task))
            }),
        }
    }

    /// One of a fixed set of values.
    pub fn choice<'a>(
        &self,
        key: &str,
        allowed: &[&'a str],
        default: &'a str,
    ) -> Result<&'a str, EngineError> {
        match self.str(key) {
            None => Ok(default),
            Some(v) => allowed
                .iter()
                .copied()
                .find(|a| *a == v.trim())
                .ok_or_else(|| {
                    EngineError::Config(format!(
                        "{}: option {key}={v:?}: expected one of {}",
                        self.task,
                        allowed.join(", ")
                    ))
                }),
        }
    }

    /// Fails on options that no part of the task read.
    pub fn finish(self, specs: &[OptionSpec]) -> Result<(), EngineError> {
        let used = self.used.into_inner();
        let unknown: Vec<&String> = self.map.keys().filter(|k| !used.contains(*k)).collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let known: Vec<&str> = specs.iter().map(|s| s.key).collect();
        Err(EngineError::Config(format!(
            "{}: unknown option{} {}; this task takes: {}",
            self.task,
            if unknown.len() > 1 { "s" } else { "" },
            unknown
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            known.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> Options {
        Options::new(
            "s/t",
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn typed_values_defaults_and_errors() {
        let o = opts(&[("n", "5"), ("mode", "fast")]);
        assert_eq!(o.parse("n", 1u32).unwrap(), 5);
        assert_eq!(o.parse("m", 7u32).unwrap(), 7);
        assert_eq!(o.choice("mode", &["fast", "slow"], "slow").unwrap(), "fast");
        o.finish(&[]).unwrap();
        let o = opts(&[("n", "five")]);
        let e = o.parse("n", 1u32).unwrap_err().to_string();
        assert!(e.contains("n=\"five\""), "{e}");
        let o = opts(&[("mode", "medium")]);
        assert!(o
            .choice("mode", &["fast", "slow"], "slow")
            .unwrap_err()
            .to_string()
            .contains("fast, slow"));
    }

    #[test]
    fn unknown_keys_are_rejected_with_the_known_list() {
        let o = opts(&[("smaples", "3")]);
        let _ = o.parse("samples", 1u32);
        let e = o
            .finish(&[OptionSpec {
                key: "samples",
                default: "1",
                help: "",
            }])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown option smaples") && e.contains("takes: samples"),
            "{e}"
        );
    }
}
