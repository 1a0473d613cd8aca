//! Conversations to analyse, read from JSONL (plain or gzip) one record per line, in any
//! of three common shapes, detected per record:
//!
//! - OpenAI `messages`: `{"messages": [{"role": "user", "content": "…"}, …]}` (`content`
//!   a string or a list of `{"type": "text", "text": "…"}` parts; `system` turns kept);
//! - ShareGPT `conversations`: `{"conversations": [{"from": "human", "value": "…"}, …]}`
//!   (`human`/`user`, `gpt`/`assistant`/`chatgpt`/`bard`/`model`, `system`);
//! - Anthropic-style transcripts, `"\n\nHuman: …\n\nAssistant: …"` in `chosen` (HH-RLHF),
//!   `transcript` or `text`.
//!
//! A record may carry its conversation id (`id`, `conversation_id`, string or number;
//! default `line-N`) and its user id (`user_id`, `user`; default: the conversation id,
//! so that each conversation counts as a user of its own). Every problem is an error
//! naming the file and line; nothing is sent before the whole file has been checked
//! (`check`), and the conversations are then streamed again for the run, so a corpus is
//! never held in memory.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shammie_engine::DataError;
use shammie_kit::records::{check_prompt_size, Duplicates};
use shammie_kit::transcripts::hh_turns;

/// One conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: String,
    pub user: String,
    /// Turns in order: `system`, `user` or `assistant`, and the text.
    pub turns: Vec<Turn>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub role: Role,
    pub text: String,
}

/// Who speaks a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

impl Conversation {
    /// The first user turn.
    pub fn first_user(&self) -> Option<&str> {
        self.turns
            .iter()
            .find(|t| t.role == Role::User)
            .map(|t| t.text.as_str())
    }

    /// The conversation as the facet prompts show it (`User:` / `Assistant:` /
    /// `System:` turns), cut to at most `max_chars` characters: the turns from the start,
    /// the last one cut, with a note of what was left out.
    pub fn render(&self, max_chars: usize) -> String {
        let mut out = String::new();
        let mut used = 0usize;
        for (i, t) in self.turns.iter().enumerate() {
            let who = match t.role {
                Role::System => "System",
                Role::User => "User",
                Role::Assistant => "Assistant",
                Role::Tool => "Tool",
            };
            let piece = format!("{who}: {}\n\n", t.text);
            let n = piece.chars().count();
            if used + n > max_chars {
                let room = max_chars.saturating_sub(used);
                out.extend(piece.chars().take(room));
                out.push_str(&format!(
                    "\n[… the rest of the conversation ({} more turns) is left out]\n",
                    self.turns.len() - i
                ));
                return out;
            }
            out.push_str(&piece);
            used += n;
        }
        out.truncate(out.trim_end().len());
        out
    }
}

/// A conversation file, or the built-in corpus.
#[derive(Debug, Clone)]
pub enum Source {
    File(PathBuf),
    /// `(display name, gzip bytes)`.
    Builtin(&'static str, &'static [u8]),
}

/// The built-in corpus: the first 400 conversations of HH-RLHF's harmless-base test
/// split (`data/hh-rlhf/`).
pub fn builtin() -> Source {
    Source::Builtin(
        "<built-in>/hh-rlhf/harmless-base-test-400.jsonl.gz",
        include_bytes!("../data/hh-rlhf/harmless-base-test-400.jsonl.gz"),
    )
}

/// What `check` found in a file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub conversations: u64,
    pub users: u64,
}

impl Source {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Source::File(path.into())
    }

    pub fn display(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Builtin(name, _) => name.to_string(),
        }
    }

    /// The file's lines, gunzipped when it starts with gzip's magic bytes.
    fn reader(&self) -> Result<Box<dyn BufRead + Send>, DataError> {
        match self {
            Source::File(p) => open(p),
            Source::Builtin(_, bytes) => Ok(Box::new(BufReader::new(
                flate2::read::MultiGzDecoder::new(*bytes),
            ))),
        }
    }

    /// Reads every record once, checking it (shape, ids unique, sizes): an error names
    /// the first bad line. Counts conversations and distinct users.
    pub fn check(&self) -> Result<Summary, DataError> {
        let mut dup = Duplicates::new();
        let mut users = std::collections::HashSet::new();
        let mut n = 0u64;
        for c in self.iter()? {
            let (line, c) = c?;
            dup.check(&self.display(), line, &[&c.id], || {
                format!("conversation id `{}`", c.id)
            })?;
            users.insert(c.user);
            n += 1;
        }
        Ok(Summary {
            conversations: n,
            users: users.len() as u64,
        })
    }

    /// Streams `(line, conversation)`, parsing each record as it is read.
    pub fn iter(
        &self,
    ) -> Result<impl Iterator<Item = Result<(u64, Conversation), DataError>> + Send, DataError>
    {
        let path = self.display();
        let mut lines = self.reader()?.lines();
        let mut line = 0u64;
        let mut records = 0u64;
        let mut done = false;
        Ok(std::iter::from_fn(move || loop {
            if done {
                return None;
            }
            let text = match lines.next() {
                None => {
                    done = true;
                    return (records == 0).then(|| Err(shammie_kit::jsonl::empty_file(&path)));
                }
                Some(Err(e)) => {
                    done = true;
                    line += 1;
                    let message = if e.kind() == std::io::ErrorKind::InvalidData {
                        "not UTF-8 text (or a damaged gzip stream); save the file as UTF-8 JSONL"
                            .to_string()
                    } else {
                        e.to_string()
                    };
                    return Some(Err(DataError::Line {
                        path: path.clone(),
                        line,
                        message,
                    }));
                }
                Some(Ok(t)) => t,
            };
            line += 1;
            let mut t = text.as_str();
            if line == 1 {
                t = shammie_kit::jsonl::strip_bom(t);
            }
            let t = t.trim();
            if t.is_empty() {
                continue;
            }
            records += 1;
            let r = parse_line(t, line).map_err(|message| DataError::Line {
                path: path.clone(),
                line,
                message,
            });
            if r.is_err() {
                done = true;
            }
            return Some(r.map(|c| (line, c)));
        }))
    }
}

fn open(path: &Path) -> Result<Box<dyn BufRead + Send>, DataError> {
    let err = |e: std::io::Error| DataError::File {
        path: path.display().to_string(),
        message: format!("cannot open: {e}"),
    };
    let mut f = std::fs::File::open(path).map_err(err)?;
    let mut magic = [0u8; 2];
    let got = f.read(&mut magic).map_err(err)?;
    let f = std::fs::File::open(path).map_err(err)?;
    Ok(if got == 2 && magic == [0x1f, 0x8b] {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(f)))
    } else {
        Box::new(BufReader::new(f))
    })
}

/// One JSONL record as a conversation.
pub fn parse_line(text: &str, line: u64) -> Result<Conversation, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let obj = v
        .as_object()
        .ok_or("a record must be a JSON object (with `messages`, `conversations` or a `Human:`/`Assistant:` transcript)")?;
    let id_of = |keys: &[&str]| -> Result<Option<String>, String> {
        for k in keys {
            match obj.get(*k) {
                None | Some(serde_json::Value::Null) => {}
                Some(serde_json::Value::String(s)) if !s.trim().is_empty() => {
                    return Ok(Some(s.trim().to_string()))
                }
                Some(serde_json::Value::Number(n)) => return Ok(Some(n.to_string())),
                Some(other) => {
                    return Err(format!(
                        "`{k}` must be a non-empty string or a number, not {other}"
                    ))
                }
            }
        }
        Ok(None)
    };
    let id = id_of(&["id", "conversation_id"])?.unwrap_or_else(|| format!("line-{line}"));
    let user = id_of(&["user_id", "user"])?.unwrap_or_else(|| id.clone());
    let turns = if let Some(m) = obj.get("messages") {
        openai_turns(m)?
    } else if let Some(c) = obj.get("conversations") {
        sharegpt_turns(c)?
    } else if let Some((key, t)) = ["chosen", "transcript", "text"]
        .iter()
        .find_map(|k| obj.get(*k).map(|t| (k, t)))
    {
        let t = t
            .as_str()
            .ok_or_else(|| format!("`{key}` must be a transcript string"))?;
        hh_turns(t)
            .ok_or_else(|| {
                format!("`{key}` is not a `Human: …` / `Assistant: …` transcript (it must start with `Human:`)")
            })?
            .into_iter()
            .map(|(role, text)| Turn {
                role: match role {
                    shammie_core::Role::User => Role::User,
                    _ => Role::Assistant,
                },
                text,
            })
            .collect()
    } else {
        return Err(
            "no conversation: expected `messages` (OpenAI), `conversations` (ShareGPT) or a `Human:`/`Assistant:` transcript in `chosen`, `transcript` or `text`"
                .into(),
        );
    };
    if !turns
        .iter()
        .any(|t| t.role == Role::User && !t.text.trim().is_empty())
    {
        return Err("the conversation has no user turn with text".into());
    }
    check_prompt_size(turns.iter().map(|t| t.text.len()).sum())?;
    Ok(Conversation { id, user, turns })
}

fn openai_turns(m: &serde_json::Value) -> Result<Vec<Turn>, String> {
    let list = m.as_array().ok_or("`messages` must be a list")?;
    list.iter()
        .enumerate()
        .map(|(i, msg)| {
            let role = match msg.get("role").and_then(|r| r.as_str()) {
                Some("user") => Role::User,
                Some("assistant") => Role::Assistant,
                Some("system") | Some("developer") => Role::System,
                Some("tool") | Some("function") => Role::Tool,
                Some(other) => return Err(format!("messages[{i}]: unknown role `{other}`")),
                None => return Err(format!("messages[{i}]: no `role`")),
            };
            let text = match msg.get("content") {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Array(parts)) => parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(|t| t.as_str()))
                    .collect::<Vec<_>>()
                    .join("\n"),
                Some(serde_json::Value::Null) | None => String::new(),
                Some(other) => {
                    return Err(format!(
                        "messages[{i}]: `content` must be text or a list of parts, not {other}"
                    ))
                }
            };
            Ok(Turn { role, text })
        })
        .collect()
}

fn sharegpt_turns(c: &serde_json::Value) -> Result<Vec<Turn>, String> {
    let list = c.as_array().ok_or("`conversations` must be a list")?;
    list.iter()
        .enumerate()
        .map(|(i, msg)| {
            let role = match msg.get("from").and_then(|r| r.as_str()) {
                Some("human") | Some("user") => Role::User,
                Some("gpt") | Some("assistant") | Some("chatgpt") | Some("bard")
                | Some("model") => Role::Assistant,
                Some("system") => Role::System,
                Some("tool") | Some("function") | Some("observation") => Role::Tool,
                Some(other) => return Err(format!("conversations[{i}]: unknown `from` `{other}`")),
                None => return Err(format!("conversations[{i}]: no `from`")),
            };
            let text = msg
                .get("value")
                .and_then(|v| v.as_str())
                .ok_or_else(|| format!("conversations[{i}]: `value` must be text"))?;
            Ok(Turn {
                role,
                text: text.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_shapes_read_alike() {
        let openai = r#"{"id": "a", "user_id": 7, "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "Fix my code"}]}, {"role": "assistant", "content": "Sure."}]}"#;
        let c = parse_line(openai, 1).unwrap();
        assert_eq!((c.id.as_str(), c.user.as_str()), ("a", "7"));
        assert_eq!(c.first_user(), Some("Fix my code"));
        assert_eq!(c.turns.len(), 3);

        let sharegpt = r#"{"conversation_id": 12, "conversations": [{"from": "human", "value": "Fix my code"}, {"from": "gpt", "value": "Sure."}]}"#;
        let c = parse_line(sharegpt, 4).unwrap();
        assert_eq!((c.id.as_str(), c.user.as_str()), ("12", "12"));
        assert_eq!(c.turns[1].role, Role::Assistant);

        let hh = r#"{"chosen": "\n\nHuman: Fix my code\n\nAssistant: Sure."}"#;
        let c = parse_line(hh, 9).unwrap();
        assert_eq!((c.id.as_str(), c.user.as_str()), ("line-9", "line-9"));
        assert_eq!(c.render(1000), "User: Fix my code\n\nAssistant: Sure.");
    }

    #[test]
    fn bad_records_say_what_is_wrong() {
        for (text, want) in [
            ("[1]", "JSON object"),
            (r#"{"prompt": "x"}"#, "no conversation"),
            (
                r#"{"messages": [{"role": "robot", "content": "x"}]}"#,
                "unknown role `robot`",
            ),
            (
                r#"{"messages": [{"role": "assistant", "content": "x"}]}"#,
                "no user turn",
            ),
            (r#"{"chosen": "Assistant: hi"}"#, "must start with `Human:`"),
            (r#"{"id": [], "chosen": "Human: hi"}"#, "`id` must be"),
            ("{", "not valid JSON"),
        ] {
            let e = parse_line(text, 3).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn long_conversations_are_cut_with_a_note() {
        let c = parse_line(
            r#"{"messages": [{"role": "user", "content": "aaaaaaaaaa"}, {"role": "assistant", "content": "bbbbbbbbbb"}]}"#,
            1,
        )
        .unwrap();
        let r = c.render(21);
        assert!(r.starts_with("User: aaaaaaaaaa\n\nAss"), "{r}");
        assert!(r.contains("(1 more turns) is left out"), "{r}");
    }

    #[test]
    fn the_built_in_corpus_is_400_hh_conversations() {
        assert_eq!(
            builtin().check().unwrap(),
            Summary {
                conversations: 400,
                users: 400
            }
        );
        let (line, first) = builtin().iter().unwrap().next().unwrap().unwrap();
        assert_eq!((line, first.id.as_str()), (1, "hh-001"));
        assert_eq!(first.turns[0].role, Role::User);
    }

    #[test]
    fn files_are_checked_whole_and_gzip_is_read() {
        let d = tempfile::tempdir().unwrap();
        let plain = d.path().join("c.jsonl");
        std::fs::write(
            &plain,
            "\u{feff}{\"id\": \"x\", \"user\": \"u1\", \"chosen\": \"Human: hi\"}\n\n{\"id\": \"y\", \"user\": \"u1\", \"chosen\": \"Human: yo\"}\n",
        )
        .unwrap();
        assert_eq!(
            Source::new(&plain).check().unwrap(),
            Summary {
                conversations: 2,
                users: 1
            }
        );
        let gz = d.path().join("c.jsonl.gz");
        let mut e =
            flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), Default::default());
        std::io::Write::write_all(&mut e, &std::fs::read(&plain).unwrap()).unwrap();
        e.finish().unwrap();
        let ids: Vec<String> = Source::new(&gz)
            .iter()
            .unwrap()
            .map(|r| r.unwrap().1.id)
            .collect();
        assert_eq!(ids, ["x", "y"]);

        let dup = d.path().join("dup.jsonl");
        std::fs::write(
            &dup,
            "{\"id\": \"x\", \"chosen\": \"Human: hi\"}\n{\"id\": \"x\", \"chosen\": \"Human: yo\"}\n",
        )
        .unwrap();
        let e = Source::new(&dup).check().unwrap_err().to_string();
        assert!(e.contains("dup.jsonl:2"), "{e}");

        let bad = d.path().join("bad.jsonl");
        std::fs::write(&bad, "{\"chosen\": \"Human: hi\"}\n{\"x\": 1}\n").unwrap();
        let e = Source::new(&bad).check().unwrap_err().to_string();
        assert!(
            e.contains("bad.jsonl:2") && e.contains("no conversation"),
            "{e}"
        );

        let empty = d.path().join("empty.jsonl");
        std::fs::write(&empty, "\n\n").unwrap();
        assert!(Source::new(&empty).check().is_err());
    }
}
