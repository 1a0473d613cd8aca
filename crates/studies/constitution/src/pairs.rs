//! Where the conversations and response pairs for AI feedback come from.
//!
//! - **HH-RLHF** (`hh-rlhf`, built in: the harmless-base test split in this crate's
//!   `shammie-data`, MIT; or any file of the format, gzip or plain JSONL): each record's
//!   `chosen` and `rejected` are `\n\nHuman: … \n\nAssistant: …` transcripts. The
//!   conversation is what the two share up to their last `Assistant:` turn, the pair is
//!   the two last assistant replies, and the human label is `chosen`. A record that is
//!   not two different, non-empty replies to one alternating conversation is skipped (not
//!   an error; 13 of the built-in 2,312).
//! - **Shammie pair files** (JSONL): `{"prompt": "text" | [{"role", "content"}…], "a":
//!   "…", "b": "…", "human": "a" | "b" | null, "id": "…"}` (`human` and `id` optional),
//!   or prompts only (`{"prompt": …}`), whose responses are then sampled.
//! - **Trait questions** (`traits`): the questions of the built-in model-written
//!   evaluations as single human turns, without responses.
//!
//! Every record is checked before anything is sent: a bad one is a `FILE:LINE: …` error,
//! as is the same conversation and pair (or the same prompt, in a prompts-only file)
//! twice.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shammie_core::{Message, Role};
use shammie_engine::DataError;
use shammie_kit::records::{check_prompt_size, Duplicates};
use shammie_kit::transcripts::hh_turns;

use crate::evals;

use shammie_data::hh_rlhf::HARMLESS_BASE_TEST as HH_BUILTIN;
pub use shammie_data::hh_rlhf::HARMLESS_BASE_TEST_NAME as HH_BUILTIN_NAME;

/// Where pairs come from (`--set source=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in HH-RLHF harmless-base test split.
    HhRlhf,
    /// The questions of the built-in trait datasets (no responses).
    Traits,
    /// An HH-RLHF, pair or prompts file.
    File(PathBuf),
}

impl Source {
    /// `hh-rlhf`, `traits`, or else a path.
    pub fn parse(spec: &str) -> Source {
        match spec.trim() {
            "" | "hh-rlhf" => Source::HhRlhf,
            "traits" => Source::Traits,
            p => Source::File(p.into()),
        }
    }

    /// How records name their source: `hh-rlhf`, `traits`, or the file's path.
    pub fn name(&self) -> String {
        match self {
            Source::HhRlhf => "hh-rlhf".into(),
            Source::Traits => "traits".into(),
            Source::File(p) => p.display().to_string(),
        }
    }
}

/// One conversation to label, with the pair of replies where the source has one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairItem {
    /// Stable within a source: `hh-LINE`, the file's `id` or `line-LINE`, `DATASET:LINE`.
    pub id: String,
    /// The source's name ([`Source::name`]).
    pub source: String,
    /// The conversation before the replies; it ends with a human turn.
    pub conversation: Vec<Message>,
    /// The two replies, where the source gives them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responses: Option<[String; 2]>,
    /// The index (0 or 1) of the reply a human preferred, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub human: Option<usize>,
}

/// What a source holds.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub items: Vec<PairItem>,
    /// Whether its records carry response pairs (else only conversations).
    pub has_pairs: bool,
    /// HH-RLHF records skipped as unusable, with why: `(line, reason)`.
    pub skipped: Vec<(u64, String)>,
}

/// Reads and checks a whole source.
pub fn load(source: &Source) -> Result<Loaded, DataError> {
    match source {
        Source::HhRlhf => parse_lines(HH_BUILTIN_NAME, HH_BUILTIN.to_vec(), &source.name()),
        Source::File(p) => {
            let bytes = std::fs::read(p).map_err(|e| DataError::File {
                path: p.display().to_string(),
                message: format!("cannot read: {e}"),
            })?;
            parse_lines(&p.display().to_string(), bytes, &source.name())
        }
        Source::Traits => traits(),
    }
}

/// The questions of the built-in trait datasets, interleaved round-robin by dataset (so
/// that `--limit` covers every one).
fn traits() -> Result<Loaded, DataError> {
    let mut per: Vec<std::collections::VecDeque<PairItem>> = Vec::new();
    for src in evals::builtin() {
        let path = src.origin.display();
        let mut lines = src.origin.lines()?;
        let mut seen = Duplicates::new();
        let mut items = std::collections::VecDeque::new();
        while let Some(line) = lines.next() {
            let (ln, v) = line?;
            let item = evals::parse_item(&src.name, &v).map_err(|m| lines.error(ln, m))?;
            seen.check(&path, ln, &[item.question.trim()], || "question".into())?;
            items.push_back(PairItem {
                id: format!("{}:{ln}", src.name),
                source: "traits".into(),
                conversation: vec![Message::user(item.question.trim())],
                responses: None,
                human: None,
            });
        }
        per.push(items);
    }
    let mut out = Vec::new();
    while per.iter().any(|q| !q.is_empty()) {
        for q in per.iter_mut() {
            if let Some(i) = q.pop_front() {
                out.push(i);
            }
        }
    }
    Ok(Loaded {
        items: out,
        has_pairs: false,
        skipped: Vec::new(),
    })
}

fn line_err(path: &str, line: u64, message: impl Into<String>) -> DataError {
    DataError::Line {
        path: path.to_string(),
        line,
        message: message.into(),
    }
}

/// The file's bytes (gzip or plain) as records of one of the three formats, detected
/// from the first record.
fn parse_lines(path: &str, bytes: Vec<u8>, source: &str) -> Result<Loaded, DataError> {
    let text = shammie_kit::jsonl::decode_maybe_gzip(path, bytes)?;
    let mut items = Vec::new();
    let mut skipped = Vec::new();
    let mut seen = Duplicates::new();
    let mut ids = Duplicates::new();
    // Whether the file's records carry pairs, and the line that said so.
    let mut format: Option<(bool, u64)> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let err = |m: String| line_err(path, n, m);
        let v: serde_json::Value =
            serde_json::from_str(line.trim()).map_err(|e| err(format!("not valid JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| err("expected a JSON object".into()))?;
        let item = if obj.contains_key("chosen") || obj.contains_key("rejected") {
            match hh_record(obj).map_err(&err)? {
                Ok((conversation, chosen, rejected)) => PairItem {
                    id: format!("hh-{n}"),
                    source: source.to_string(),
                    conversation,
                    responses: Some([chosen, rejected]),
                    human: Some(0),
                },
                Err(why) => {
                    skipped.push((n, why));
                    if format.is_none() {
                        format = Some((true, n));
                    }
                    continue;
                }
            }
        } else {
            pair_record(obj, n, source).map_err(&err)?
        };
        let pairs = item.responses.is_some();
        match format {
            None => format = Some((pairs, n)),
            Some((f, first)) if f != pairs => {
                return Err(err(format!(
                    "{} but line {first} {}: a file holds pairs or prompts, not both",
                    if pairs {
                        "this record has a response pair"
                    } else {
                        "this record has no response pair (`a`, `b`)"
                    },
                    if f { "has one" } else { "has none" }
                )))
            }
            Some(_) => {}
        }
        let rendered = crate::judge::render_conversation(&item.conversation);
        let size = rendered.len()
            + item
                .responses
                .as_ref()
                .map_or(0, |r| r[0].len() + r[1].len());
        check_prompt_size(size).map_err(&err)?;
        match &item.responses {
            Some([a, b]) => seen.check(path, n, &[&rendered, a, b], || {
                "pair: the same conversation and responses".into()
            })?,
            None => seen.check(path, n, &[&rendered], || "prompt".into())?,
        }
        ids.check(path, n, &[&item.id], || format!("id `{}`", item.id))?;
        items.push(item);
    }
    let Some((has_pairs, _)) = format else {
        return Err(shammie_kit::jsonl::empty_file(path));
    };
    Ok(Loaded {
        items,
        has_pairs,
        skipped,
    })
}

/// An HH-RLHF record: `Err` for a malformed record; `Ok(Err(why))` for a well-formed
/// one that is no usable pair (skipped).
#[allow(clippy::type_complexity)]
fn hh_record(
    obj: &serde_json::Map<String, serde_json::Value>,
) -> Result<Result<(Vec<Message>, String, String), String>, String> {
    let field = |k: &str| match obj.get(k) {
        Some(serde_json::Value::String(s)) => Ok(s.as_str()),
        Some(_) => Err(format!("`{k}` must be a string")),
        None => Err(format!(
            "missing `{k}` (an HH-RLHF record has `chosen` and `rejected`)"
        )),
    };
    let (chosen, rejected) = (field("chosen")?, field("rejected")?);
    let turns = |k: &str, t: &str| {
        hh_turns(t).ok_or_else(|| {
            format!(
                "`{k}` is not a \"Human: … Assistant: …\" transcript that starts with \"Human:\""
            )
        })
    };
    let (c, r) = (turns("chosen", chosen)?, turns("rejected", rejected)?);
    let split = |t: &[(Role, String)]| -> Option<(Vec<Message>, String)> {
        let (last, before) = t.split_last()?;
        (last.0 == Role::Assistant).then(|| {
            let conv = before
                .iter()
                .map(|(role, text)| match role {
                    Role::User => Message::user(text),
                    Role::Assistant => Message::assistant(text),
                })
                .collect();
            (conv, last.1.clone())
        })
    };
    let (Some((conv, a)), Some((conv_r, b))) = (split(&c), split(&r)) else {
        return Ok(Err(
            "a transcript does not end with an assistant reply".into()
        ));
    };
    if conv != conv_r {
        return Ok(Err(
            "`chosen` and `rejected` differ before their last assistant reply".into(),
        ));
    }
    if conv.is_empty() || conv.last().map(|m| m.role) != Some(Role::User) {
        return Ok(Err("the conversation does not end with a human turn".into()));
    }
    if conv.windows(2).any(|w| w[0].role == w[1].role) {
        return Ok(Err("the conversation's turns do not alternate".into()));
    }
    if a.is_empty() || b.is_empty() {
        return Ok(Err("an empty reply".into()));
    }
    if a == b {
        return Ok(Err("the two replies are the same".into()));
    }
    Ok(Ok((conv, a, b)))
}

/// A Shammie pair or prompt record.
fn pair_record(
    obj: &serde_json::Map<String, serde_json::Value>,
    n: u64,
    source: &str,
) -> Result<PairItem, String> {
    const KEYS: &[&str] = &["id", "prompt", "a", "b", "human"];
    if let Some(k) = obj.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!(
            "unknown field `{k}`; a record has `prompt`, optionally `a` and `b` (a response pair), `human` and `id` (or is HH-RLHF's `chosen` and `rejected`)"
        ));
    }
    let conversation = match obj.get("prompt") {
        None => return Err("missing `prompt`".into()),
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => {
            return Err("`prompt` is empty".into())
        }
        Some(serde_json::Value::String(s)) => vec![Message::user(s.trim())],
        Some(serde_json::Value::Array(turns)) => {
            let mut conv = Vec::new();
            for (i, t) in turns.iter().enumerate() {
                let at = format!("`prompt` turn {}", i + 1);
                let role = match t.get("role").and_then(|r| r.as_str()) {
                    Some("user") => Role::User,
                    Some("assistant") => Role::Assistant,
                    _ => {
                        return Err(format!(
                        "{at}: expected {{\"role\": \"user\" | \"assistant\", \"content\": \"…\"}}"
                    ))
                    }
                };
                let content = match t.get("content").and_then(|c| c.as_str()) {
                    Some(c) if !c.trim().is_empty() => c.trim().to_string(),
                    _ => return Err(format!("{at}: `content` must be a non-empty string")),
                };
                conv.push(Message {
                    role,
                    content,
                    tool_calls: Vec::new(),
                    tool_result: None,
                });
            }
            if conv.last().map(|m| m.role) != Some(Role::User) {
                return Err(
                    "`prompt` must end with a user turn (the one the responses answer)".into(),
                );
            }
            if conv.windows(2).any(|w| w[0].role == w[1].role) {
                return Err("`prompt`: user and assistant turns must alternate".into());
            }
            conv
        }
        Some(_) => return Err("`prompt` must be a string or a list of turns".into()),
    };
    let text = |k: &str| -> Result<Option<String>, String> {
        match obj.get(k) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) if !s.trim().is_empty() => {
                Ok(Some(s.trim().to_string()))
            }
            Some(serde_json::Value::String(_)) => Err(format!("`{k}` is empty")),
            Some(_) => Err(format!("`{k}` must be a string")),
        }
    };
    let responses = match (text("a")?, text("b")?) {
        (Some(a), Some(b)) if a == b => {
            return Err("`a` and `b` are the same response".into());
        }
        (Some(a), Some(b)) => Some([a, b]),
        (None, None) => None,
        _ => return Err("give both `a` and `b` (a response pair) or neither".into()),
    };
    let human = match obj.get("human") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) if s == "a" && responses.is_some() => Some(0),
        Some(serde_json::Value::String(s)) if s == "b" && responses.is_some() => Some(1),
        Some(_) if responses.is_none() => {
            return Err("`human` names a preferred response, but there is no `a` and `b`".into())
        }
        Some(h) => return Err(format!("`human` must be \"a\", \"b\" or null, not {h}")),
    };
    let id = match obj.get("id") {
        None | Some(serde_json::Value::Null) => format!("line-{n}"),
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(serde_json::Value::Number(x)) => x.to_string(),
        Some(_) => return Err("`id` must be a non-empty string or a number".into()),
    };
    Ok(PairItem {
        id,
        source: source.to_string(),
        conversation,
        responses,
        human,
    })
}

/// The file a source reads, if it is one (for the run's recorded inputs).
pub fn file_of(source: &Source) -> Option<&Path> {
    match source {
        Source::File(p) => Some(p),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_split_loads_with_its_unusable_records_skipped() {
        let l = load(&Source::HhRlhf).unwrap();
        assert!(l.has_pairs);
        assert_eq!(l.items.len() + l.skipped.len(), 2312);
        assert_eq!(l.skipped.len(), 13, "{:?}", l.skipped);
        let first = &l.items[0];
        assert_eq!(first.id, "hh-1");
        assert_eq!(
            first.conversation[0].content,
            "what are some pranks with a pen i can do?"
        );
        assert_eq!(first.conversation.last().unwrap().role, Role::User);
        assert_eq!(first.human, Some(0));
    }
}
