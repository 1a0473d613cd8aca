//! The dialogues the overseer rates.
//!
//! - **HH-RLHF** (built in from `shammie-data`: the harmless-base test split, MIT; or any
//!   file of its format, gzip or plain JSONL): each record's two transcripts, `chosen` and
//!   `rejected`, are two dialogues of one pair. The person who labelled the pair found
//!   `rejected` the more harmful, which gives every condition a check of the overseer's
//!   discrimination. A record whose transcripts are not dialogues (no `Human:` start, no
//!   assistant reply) or are identical is skipped and counted, not an error.
//! - **Dialogue files** (JSONL): `{"dialogue": "\n\nHuman: …\n\nAssistant: …", "id": "…"}`
//!   (`id` optional: `line-N`), one dialogue each, without pairs.
//!
//! The first `dialogues` usable records are taken, in file order. Every record up to there is checked before anything is sent:
//! a bad one is a `FILE:LINE: …` error, as is the same dialogue (or id) twice.
//!
//! Dialogues are shown to the models with `User:` and `AI assistant:` speakers, so that a
//! base model reading a `Human:`/`Assistant:` prompt never mistakes the rated dialogue's
//! turns for its own.

use std::path::Path;

use serde::{Deserialize, Serialize};
use shammie_core::Role;
use shammie_engine::DataError;
use shammie_kit::records::{check_prompt_size, Duplicates};
use shammie_kit::transcripts::hh_turns;

/// Which transcript of an HH-RLHF pair a dialogue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Which {
    /// The transcript the person preferred (the more harmless).
    Chosen,
    /// The other one.
    Rejected,
}

impl Which {
    pub fn as_str(self) -> &'static str {
        match self {
            Which::Chosen => "chosen",
            Which::Rejected => "rejected",
        }
    }
}

/// One dialogue to rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dialogue {
    /// `hh-LINE-chosen`, `hh-LINE-rejected`, the file's `id`, or `line-LINE`.
    pub id: String,
    /// The pair it belongs to (`hh-LINE`), for HH-RLHF records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub which: Option<Which>,
    /// The dialogue as the models see it (`User:` / `AI assistant:` turns).
    pub text: String,
}

/// What a source gave.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub dialogues: Vec<Dialogue>,
    /// Records skipped as unusable, with why: `(line, reason)`.
    pub skipped: Vec<(u64, String)>,
}

/// The dialogue as shown to the models, or why it is not one.
fn render(transcript: &str) -> Result<String, String> {
    let turns = hh_turns(transcript).ok_or("the transcript does not start with `Human:`")?;
    if !turns
        .iter()
        .any(|(r, t)| *r == Role::Assistant && !t.is_empty())
    {
        return Err("the transcript has no assistant reply".into());
    }
    Ok(turns
        .iter()
        .map(|(r, t)| match r {
            Role::User => format!("User: {t}"),
            _ => format!("AI assistant: {t}"),
        })
        .collect::<Vec<_>>()
        .join("\n\n"))
}

/// Reads the first `limit` usable records of the built-in split (`path: None`) or of a file.
pub fn load(path: Option<&Path>, limit: usize) -> Result<Loaded, DataError> {
    let (name, bytes) = match path {
        None => (
            shammie_data::hh_rlhf::HARMLESS_BASE_TEST_NAME.to_string(),
            shammie_data::hh_rlhf::HARMLESS_BASE_TEST.to_vec(),
        ),
        Some(p) => (
            p.display().to_string(),
            std::fs::read(p).map_err(|e| DataError::File {
                path: p.display().to_string(),
                message: format!("cannot read: {e}"),
            })?,
        ),
    };
    let text = shammie_kit::jsonl::decode_maybe_gzip(&name, bytes)?;
    let mut out = Loaded {
        dialogues: Vec::new(),
        skipped: Vec::new(),
    };
    let mut seen = Duplicates::new();
    let mut ids = Duplicates::new();
    let mut records = 0;
    for (i, line) in text.lines().enumerate() {
        if records == limit {
            break;
        }
        let n = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let err = |m: String| DataError::Line {
            path: name.clone(),
            line: n,
            message: m,
        };
        let v: serde_json::Value =
            serde_json::from_str(line.trim()).map_err(|e| err(format!("not valid JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| err("expected a JSON object".into()))?;
        let field = |k: &str| -> Result<Option<&str>, DataError> {
            match obj.get(k) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(err(format!("`{k}` must be a string"))),
            }
        };
        if obj.contains_key("chosen") || obj.contains_key("rejected") {
            let (Some(c), Some(r)) = (field("chosen")?, field("rejected")?) else {
                return Err(err(
                    "an HH-RLHF record needs both `chosen` and `rejected` transcripts".into(),
                ));
            };
            check_prompt_size(c.len() + r.len()).map_err(err)?;
            let (chosen, rejected) = match (render(c), render(r)) {
                (Ok(a), Ok(b)) if a != b => (a, b),
                (Ok(_), Ok(_)) => {
                    out.skipped
                        .push((n, "the two transcripts are the same".into()));
                    continue;
                }
                (Err(why), _) | (_, Err(why)) => {
                    out.skipped.push((n, why));
                    continue;
                }
            };
            seen.check(&name, n, &[&chosen, &rejected], || {
                "pair of dialogues".into()
            })?;
            let pair = format!("hh-{n}");
            for (which, text) in [(Which::Chosen, chosen), (Which::Rejected, rejected)] {
                out.dialogues.push(Dialogue {
                    id: format!("{pair}-{}", which.as_str()),
                    pair: Some(pair.clone()),
                    which: Some(which),
                    text,
                });
            }
        } else {
            let d = field("dialogue")?.ok_or_else(|| {
                err("expected `dialogue` (a `Human:`/`Assistant:` transcript), or HH-RLHF's `chosen` and `rejected`".into())
            })?;
            check_prompt_size(d.len()).map_err(err)?;
            let text = render(d).map_err(err)?;
            let id = field("id")?
                .map(str::to_string)
                .unwrap_or_else(|| format!("line-{n}"));
            ids.check(&name, n, &[&id], || format!("id {id:?}"))?;
            seen.check(&name, n, &[&text], || "dialogue".into())?;
            out.dialogues.push(Dialogue {
                id,
                pair: None,
                which: None,
                text,
            });
        }
        records += 1;
    }
    if out.dialogues.is_empty() {
        return Err(DataError::File {
            path: name,
            message: "no usable dialogue".into(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_split_gives_pairs_in_file_order() {
        let l = load(None, 5).unwrap();
        assert_eq!(l.dialogues.len(), 10);
        assert_eq!(l.dialogues[0].id, "hh-1-chosen");
        assert_eq!(l.dialogues[1].id, "hh-1-rejected");
        assert_eq!(l.dialogues[1].pair.as_deref(), Some("hh-1"));
        for d in &l.dialogues {
            assert!(d.text.starts_with("User: "), "{}", d.text);
            assert!(d.text.contains("\n\nAI assistant: "), "{}", d.text);
            assert!(!d.text.contains("Human:"), "{}", d.text);
        }
    }

    #[test]
    fn bad_records_name_their_line() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("d.jsonl");
        let good = r#"{"dialogue": "\n\nHuman: hi\n\nAssistant: hello"}"#;
        for (bad, want) in [
            (
                r#"{"chosen": "\n\nHuman: a\n\nAssistant: b"}"#,
                ":2: an HH-RLHF record needs both",
            ),
            (
                r#"{"dialogue": "Assistant: hi"}"#,
                ":2: the transcript does not start",
            ),
            (r#"{"dialogue": 3}"#, ":2: `dialogue` must be a string"),
            (good, ":2: duplicate dialogue (first at line 1)"),
            ("[1]", ":2: expected a JSON object"),
        ] {
            std::fs::write(&p, format!("{good}\n{bad}\n")).unwrap();
            let e = load(Some(&p), 10).unwrap_err().to_string();
            assert!(e.contains(want), "{e} (want {want})");
        }
        // A pair of identical transcripts is skipped, not an error.
        std::fs::write(
            &p,
            format!("{good}\n{{\"chosen\": \"\\n\\nHuman: a\\n\\nAssistant: b\", \"rejected\": \"\\n\\nHuman: a\\n\\nAssistant: b\"}}\n"),
        )
        .unwrap();
        let l = load(Some(&p), 10).unwrap();
        assert_eq!(l.dialogues.len(), 1);
        assert_eq!(
            l.skipped,
            vec![(2, "the two transcripts are the same".to_string())]
        );
    }
}
