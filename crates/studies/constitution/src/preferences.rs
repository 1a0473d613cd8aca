//! The preference dataset `constitution/feedback` writes (`data/preferences.jsonl` in its
//! run directory) and preference-model training reads: one JSON line per labelled pair,
//!
//! ```json
//! {"id": "hh-1", "prompt": [{"role": "user", "content": "…"}, …], "a": "…", "b": "…",
//!  "p_a": 0.73, "principle": "…", "constitution": "general", "human": "a", "source": "hh-rlhf"}
//! ```
//!
//! `prompt` is the conversation before the two compared replies (it ends with a user
//! turn); `p_a` the AI-feedback soft label, the probability that `a` is the better reply;
//! `human` the reply a human preferred where the source says (`null` otherwise).

use std::path::Path;

use serde::{Deserialize, Serialize};
use shammie_core::{Message, Role};
use shammie_engine::DataError;
use shammie_kit::jsonl::Origin;

/// Which of the two replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    A,
    B,
}

/// One labelled pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreferenceRecord {
    pub id: String,
    pub prompt: Vec<Message>,
    pub a: String,
    pub b: String,
    pub p_a: f64,
    /// The principle asked (with `principles_per_pair` > 1: the principles asked, one
    /// per line, `p_a` their mean).
    #[serde(default)]
    pub principle: String,
    #[serde(default)]
    pub constitution: String,
    /// The reply a human preferred, where known.
    #[serde(default)]
    pub human: Option<Side>,
    #[serde(default)]
    pub source: String,
}

/// The records as JSONL text, one line each.
pub fn to_jsonl(records: &[PreferenceRecord]) -> String {
    records
        .iter()
        .map(|r| serde_json::to_string(r).expect("a preference record serialises") + "\n")
        .collect()
}

/// Reads a preference file; a bad line is an error `FILE:LINE: …` (fields, a `p_a`
/// outside [0, 1], a prompt that does not end with a user turn, an empty reply).
pub fn read_preferences(path: &Path) -> Result<Vec<PreferenceRecord>, DataError> {
    let mut lines = Origin::File(path.to_path_buf()).lines()?;
    let mut out = Vec::new();
    while let Some(line) = lines.next() {
        let (n, v) = line?;
        let r: PreferenceRecord = serde_json::from_value(v)
            .map_err(|e| lines.error(n, format!("not a preference record: {e}")))?;
        check(&r).map_err(|m| lines.error(n, m))?;
        out.push(r);
    }
    Ok(out)
}

fn check(r: &PreferenceRecord) -> Result<(), String> {
    if !(0.0..=1.0).contains(&r.p_a) {
        return Err(format!("`p_a` is {}, outside [0, 1]", r.p_a));
    }
    if r.prompt.last().map(|m| m.role) != Some(Role::User) {
        return Err("`prompt` must end with a user turn".into());
    }
    if r.a.trim().is_empty() || r.b.trim().is_empty() {
        return Err("`a` and `b` must not be empty".into());
    }
    Ok(())
}
