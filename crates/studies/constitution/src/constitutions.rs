//! Constitutions: lists of principles for AI feedback, each a question for choosing
//! between two assistant responses ("Which of these responses shows less desire to gain
//! power…?").
//!
//! Built in (Shammie's own wording, `data/constitutions/`): one constitution per trait
//! of Kundu et al. (2023) — `power-seeking`, `self-preservation`, `self-replication`,
//! `risk-seeking`, `self-identity`, three or four principles each —, `specific` (their
//! union, each principle tagged with its trait) and `general` (one "good for humanity"
//! principle in nine phrasings). A user file (TOML, or JSON when it ends in `.json`) has
//! the same shape: `name`, an optional `trait` for its bare principles, and
//! `principles`, each a string or `{text, trait}`. Every problem names the file.

use std::path::Path;

use serde::{Deserialize, Serialize};
use shammie_engine::{DataError, EngineError};

/// One principle: the question the feedback model answers, and the trait it is about
/// (trait-specific constitutions) or `None` (general ones).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principle {
    pub text: String,
    #[serde(rename = "trait", default, skip_serializing_if = "Option::is_none")]
    pub trait_name: Option<String>,
}

/// A named, non-empty list of principles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Constitution {
    pub name: String,
    pub principles: Vec<Principle>,
}

/// The five trait constitutions, in the order `specific` joins them.
const TRAITS: &[(&str, &str)] = &[
    (
        "power-seeking",
        include_str!("../data/constitutions/power-seeking.toml"),
    ),
    (
        "self-preservation",
        include_str!("../data/constitutions/self-preservation.toml"),
    ),
    (
        "self-replication",
        include_str!("../data/constitutions/self-replication.toml"),
    ),
    (
        "risk-seeking",
        include_str!("../data/constitutions/risk-seeking.toml"),
    ),
    (
        "self-identity",
        include_str!("../data/constitutions/self-identity.toml"),
    ),
];

const GENERAL: &str = include_str!("../data/constitutions/general.toml");

/// The built-in constitutions' names: `general`, `specific`, then the five traits.
pub fn builtin_names() -> Vec<&'static str> {
    let mut names = vec!["general", "specific"];
    names.extend(TRAITS.iter().map(|(n, _)| *n));
    names
}

fn builtin(name: &str) -> Option<Constitution> {
    let parse = |file: &str, text: &str| match parse_value(toml_value(text)) {
        Ok((c, _)) => c,
        Err(e) => panic!("<built-in>/constitutions/{file}.toml: {e}"),
    };
    match name {
        "general" => Some(parse("general", GENERAL)),
        "specific" => Some(Constitution {
            name: "specific".into(),
            principles: TRAITS
                .iter()
                .flat_map(|(n, t)| parse(n, t).principles)
                .collect(),
        }),
        n => TRAITS
            .iter()
            .find(|(t, _)| *t == n)
            .map(|(t, text)| parse(t, text)),
    }
}

fn toml_value(text: &str) -> serde_json::Value {
    let v: toml::Value = toml::from_str(text).expect("built-in TOML");
    serde_json::to_value(v).expect("TOML as JSON")
}

/// A built-in constitution by name, or a user file (TOML, or JSON when the path ends in
/// `.json`). An unknown name that is no file is a configuration error listing the
/// built-ins; a problem in a file is a data error naming it.
pub fn load(spec: &str) -> Result<Constitution, EngineError> {
    let spec = spec.trim();
    if let Some(c) = builtin(spec) {
        return Ok(c);
    }
    let path = Path::new(spec);
    if !path.exists() {
        return Err(EngineError::Config(format!(
            "no built-in constitution named `{spec}` and no such file; built-ins: {}",
            builtin_names().join(", ")
        )));
    }
    Ok(from_file(path)?)
}

/// A comma-separated list of [`load`] specs; the same name twice is an error.
pub fn load_list(specs: &str) -> Result<Vec<Constitution>, EngineError> {
    let mut out: Vec<Constitution> = Vec::new();
    for spec in specs.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let c = load(spec)?;
        if out.iter().any(|o| o.name == c.name) {
            return Err(EngineError::Config(format!(
                "constitution `{}` is named twice in `{specs}`",
                c.name
            )));
        }
        out.push(c);
    }
    if out.is_empty() {
        return Err(EngineError::Config(format!(
            "no constitution named in `{specs}`; built-ins: {}",
            builtin_names().join(", ")
        )));
    }
    Ok(out)
}

/// Reads a user constitution file.
pub fn from_file(path: &Path) -> Result<Constitution, DataError> {
    let shown = path.display().to_string();
    let err = |message: String| DataError::File {
        path: shown.clone(),
        message,
    };
    let text = shammie_kit::jsonl::read_text(path)?;
    if text.trim().is_empty() {
        return Err(shammie_kit::jsonl::empty_file(&shown));
    }
    let json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let value = if json {
        serde_json::from_str::<serde_json::Value>(&text)
            .map_err(|e| err(format!("not valid JSON: {e}")))?
    } else {
        let v: toml::Value = toml::from_str(&text).map_err(|e| {
            err(format!(
                "not valid TOML (a .json file is read as JSON): {}",
                e.to_string().trim()
            ))
        })?;
        serde_json::to_value(v).map_err(|e| err(e.to_string()))?
    };
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (mut c, named) = parse_value(value).map_err(err)?;
    if !named {
        c.name = stem;
    }
    Ok(c)
}

/// Checks a parsed file; the constitution and whether it named itself. The error is the
/// message (the caller names the file).
fn parse_value(v: serde_json::Value) -> Result<(Constitution, bool), String> {
    let obj = v
        .as_object()
        .ok_or("expected a table with `name` and `principles`")?;
    if let Some(k) = obj
        .keys()
        .find(|k| !["name", "trait", "principles"].contains(&k.as_str()))
    {
        return Err(format!(
            "unknown key `{k}`; a constitution has `name`, `trait` and `principles`"
        ));
    }
    let text_of = |key: &str, v: &serde_json::Value| -> Result<String, String> {
        match v.as_str() {
            Some(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
            Some(_) => Err(format!("`{key}` is empty")),
            None => Err(format!("`{key}` must be a string")),
        }
    };
    let name = obj.get("name").map(|n| text_of("name", n)).transpose()?;
    if let Some(n) = &name {
        if n.contains(',') {
            return Err(format!("`name` {n:?} must not contain a comma"));
        }
    }
    let default_trait = obj.get("trait").map(|t| text_of("trait", t)).transpose()?;
    let list = match obj.get("principles") {
        Some(serde_json::Value::Array(a)) => a,
        Some(_) => return Err("`principles` must be a list".into()),
        None => return Err("missing `principles`".into()),
    };
    if list.is_empty() {
        return Err("`principles` is empty: a constitution needs at least one principle".into());
    }
    let mut principles: Vec<Principle> = Vec::new();
    for (i, p) in list.iter().enumerate() {
        let at = format!("principle {}", i + 1);
        let principle = match p {
            serde_json::Value::String(_) => Principle {
                text: text_of(&at, p)?,
                trait_name: default_trait.clone(),
            },
            serde_json::Value::Object(o) => {
                if let Some(k) = o.keys().find(|k| !["text", "trait"].contains(&k.as_str())) {
                    return Err(format!(
                        "{at}: unknown key `{k}`; a principle has `text` and `trait`"
                    ));
                }
                let text = o
                    .get("text")
                    .ok_or_else(|| format!("{at}: missing `text`"))
                    .and_then(|t| text_of(&format!("{at} text"), t))?;
                let trait_name = match o.get("trait") {
                    Some(t) => Some(text_of(&format!("{at} trait"), t)?),
                    None => default_trait.clone(),
                };
                Principle { text, trait_name }
            }
            _ => {
                return Err(format!(
                    "{at}: expected a string or a table with `text` (and `trait`)"
                ))
            }
        };
        if let Some(j) = principles.iter().position(|q| q.text == principle.text) {
            return Err(format!("{at} repeats principle {}", j + 1));
        }
        principles.push(principle);
    }
    let named = name.is_some();
    Ok((
        Constitution {
            name: name.unwrap_or_default(),
            principles,
        },
        named,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_ins_load_and_specific_is_the_union_of_the_traits() {
        for name in builtin_names() {
            let c = load(name).unwrap();
            assert_eq!(c.name, name);
            assert!(!c.principles.is_empty());
            for p in &c.principles {
                assert!(p.text.ends_with('?'), "{name}: {:?}", p.text);
            }
        }
        let general = load("general").unwrap();
        assert_eq!(general.principles.len(), 9);
        assert!(general.principles.iter().all(|p| p.trait_name.is_none()));
        let specific = load("specific").unwrap();
        let mut n = 0;
        for t in &builtin_names()[2..] {
            let c = load(t).unwrap();
            assert!((3..=4).contains(&c.principles.len()), "{t}");
            for p in &c.principles {
                assert_eq!(p.trait_name.as_deref(), Some(*t));
                assert!(specific.principles.contains(p));
            }
            n += c.principles.len();
        }
        assert_eq!(specific.principles.len(), n);
    }

    #[test]
    fn lists_and_unknown_names() {
        let l = load_list("general, power-seeking").unwrap();
        assert_eq!(l.len(), 2);
        let e = load_list("general,general").unwrap_err().to_string();
        assert!(e.contains("named twice"), "{e}");
        let e = load("no-such").unwrap_err().to_string();
        assert!(e.contains("no built-in constitution named `no-such`") && e.contains("specific"));
    }
}
