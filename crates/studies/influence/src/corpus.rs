//! The texts influence reads: the training corpus searched and the queries whose
//! completions are explained, from JSONL files or built in.
//!
//! - **Corpus** (`corpus=FILE`), one document per line: `{"text": "…"}` (plain text, all
//!   completion: its whole loss counts) or `{"messages": [{"role", "content"}, …]}` (chat:
//!   the turns before the last assistant message are the prompt, rendered as the model
//!   reads them, and that message is the completion); optionally `"id"` (a string or an
//!   integer; default `line-N`). Other fields are ignored (corpora carry metadata).
//!   Without a file: the `chosen` conversation of every record of the built-in HH-RLHF
//!   harmless-base test split, as a chat document `hh-LINE` ([`hh_document`]).
//! - **Queries** (`queries=FILE`): `{"prompt": TEXT | [messages], "completion": TEXT,
//!   "id"?: …}`; a text prompt is one user message, so the model reads every query in its
//!   prompt format. Without a file: Shammie's four built-in queries (`data/queries.jsonl`).
//!
//! A chat is `user`/`assistant` turns that alternate, starting with the user, after an
//! optional first `system` message (the request's system text). Every problem is a
//! `FILE:LINE: …` error before anything runs, as is an id given twice.

use std::path::Path;

use shammie_core::{GenerateRequest, Message, Role};
use shammie_engine::{DataError, InfluencePrompt, InfluenceText};
use shammie_kit::jsonl::Origin;
use shammie_kit::records::{check_prompt_size, Duplicates};
use shammie_kit::transcripts::hh_turns;

use shammie_data::hh_rlhf::HARMLESS_BASE_TEST as HH_BUILTIN;
/// How the built-in corpus is named in messages and the run's configuration.
pub use shammie_data::hh_rlhf::HARMLESS_BASE_TEST_NAME as HH_BUILTIN_NAME;
const QUERIES_BUILTIN: Origin = Origin::Embedded(
    "influence/queries.jsonl",
    include_str!("../data/queries.jsonl"),
);

/// A training corpus as read.
#[derive(Debug, Clone)]
pub struct Corpus {
    /// The file's path, or [`HH_BUILTIN_NAME`].
    pub name: String,
    pub docs: Vec<InfluenceText>,
    /// Built-in records left out as unusable, with why: `(line, reason)`.
    pub skipped: Vec<(u64, String)>,
}

/// Reads and checks the corpus `path` names, or the built-in one.
pub fn load_corpus(path: Option<&Path>) -> Result<Corpus, DataError> {
    let Some(path) = path else {
        return builtin_corpus();
    };
    let (name, docs) = read_texts(Origin::File(path.to_path_buf()), document)?;
    Ok(Corpus {
        name,
        docs,
        skipped: Vec::new(),
    })
}

/// Reads and checks the queries `path` names, or the built-in ones; returns the source's
/// name with them.
pub fn load_queries(path: Option<&Path>) -> Result<(String, Vec<InfluenceText>), DataError> {
    read_texts(
        match path {
            Some(p) => Origin::File(p.to_path_buf()),
            None => QUERIES_BUILTIN,
        },
        query,
    )
}

/// Every line of `origin` through `parse`, ids unique; the source's name with them.
fn read_texts(
    origin: Origin,
    parse: fn(&serde_json::Value, u64) -> Result<InfluenceText, String>,
) -> Result<(String, Vec<InfluenceText>), DataError> {
    let name = origin.display();
    let mut lines = origin.lines()?;
    let mut ids = Duplicates::new();
    let mut out = Vec::new();
    while let Some(line) = lines.next() {
        let (n, v) = line?;
        let t = parse(&v, n).map_err(|m| lines.error(n, m))?;
        ids.check(&name, n, &[&t.id], || format!("id `{}`", t.id))?;
        out.push(t);
    }
    Ok((name, out))
}

/// A request holding a chat prompt: the system text and the turns.
pub fn request(system: Option<String>, messages: Vec<Message>) -> GenerateRequest {
    let mut req = GenerateRequest::user("", 0);
    req.system = system;
    req.messages = messages;
    req
}

/// The words of a text as TF-IDF reads them: the prompt's system text and turns, then the
/// completion, one per line.
pub fn plain_text(t: &InfluenceText) -> String {
    let mut parts: Vec<&str> = Vec::new();
    match &t.prompt {
        InfluencePrompt::None => {}
        InfluencePrompt::Text(s) => parts.push(s),
        InfluencePrompt::Chat(req) => {
            parts.extend(req.system.as_deref());
            parts.extend(req.messages.iter().map(|m| m.content.as_str()));
        }
    }
    parts.push(&t.completion);
    parts.join("\n")
}

/// A prompt as a reader sees it in a report: `System:`, `User:`, `Assistant:` lines.
pub fn show_prompt(p: &InfluencePrompt) -> String {
    match p {
        InfluencePrompt::None => String::new(),
        InfluencePrompt::Text(s) => s.clone(),
        InfluencePrompt::Chat(req) => {
            let mut out: Vec<String> = req.system.iter().map(|s| format!("System: {s}")).collect();
            for m in &req.messages {
                let who = match m.role {
                    Role::User => "User",
                    Role::Assistant => "Assistant",
                };
                out.push(format!("{who}: {}", m.content));
            }
            out.join("\n")
        }
    }
}

/// The record's `id` (a non-empty string or an integer), or `line-N`.
fn id(obj: &serde_json::Map<String, serde_json::Value>, line: u64) -> Result<String, String> {
    match obj.get("id") {
        None | Some(serde_json::Value::Null) => Ok(format!("line-{line}")),
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(serde_json::Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        Some(_) => Err("`id` must be a non-empty string or an integer".into()),
    }
}

/// A non-blank string field.
fn text(
    obj: &serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Result<Option<String>, String> {
    match obj.get(key) {
        None => Ok(None),
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
        Some(serde_json::Value::String(_)) => Err(format!("`{key}` is empty")),
        Some(_) => Err(format!("`{key}` must be a string")),
    }
}

/// A chat's turns: an optional first `system` message, then `user`/`assistant` messages
/// that alternate starting with the user and end with `last`.
fn chat(
    turns: &[serde_json::Value],
    key: &str,
    last: Role,
) -> Result<(Option<String>, Vec<Message>), String> {
    let mut system = None;
    let mut messages: Vec<Message> = Vec::new();
    for (i, t) in turns.iter().enumerate() {
        let at = format!("`{key}` message {}", i + 1);
        let shape = || {
            format!(
                "{at}: expected {{\"role\": \"system\" | \"user\" | \"assistant\", \"content\": \"…\"}}"
            )
        };
        let obj = t.as_object().ok_or_else(shape)?;
        let role = obj.get("role").and_then(|r| r.as_str()).ok_or_else(shape)?;
        let content = match obj.get("content") {
            Some(serde_json::Value::String(c)) if !c.trim().is_empty() => c.clone(),
            Some(serde_json::Value::String(_)) => return Err(format!("{at}: `content` is empty")),
            _ => return Err(format!("{at}: `content` must be a non-empty string")),
        };
        let role = match role {
            "system" if i == 0 => {
                system = Some(content);
                continue;
            }
            "system" => return Err(format!("{at}: a `system` message may only come first")),
            "user" => Role::User,
            "assistant" => Role::Assistant,
            _ => return Err(shape()),
        };
        let expected = match messages.last() {
            None => Role::User,
            Some(m) if m.role == Role::User => Role::Assistant,
            Some(_) => Role::User,
        };
        if role != expected {
            return Err(format!(
                "{at}: user and assistant turns must alternate, starting with the user"
            ));
        }
        messages.push(Message {
            role,
            content,
            tool_calls: Vec::new(),
            tool_result: None,
        });
    }
    match messages.last() {
        Some(m) if m.role == last => Ok((system, messages)),
        _ => Err(match last {
            Role::Assistant => format!(
                "`{key}` must end with an assistant message (the completion), after at least one user message"
            ),
            Role::User => format!("`{key}` must end with a user message (the one the completion answers)"),
        }),
    }
}

/// One corpus line.
pub fn document(v: &serde_json::Value, line: u64) -> Result<InfluenceText, String> {
    let obj = v
        .as_object()
        .ok_or("expected a JSON object: {\"text\": …} or {\"messages\": […]}")?;
    let id = id(obj, line)?;
    let doc = match (obj.get("text"), obj.get("messages")) {
        (Some(_), Some(_)) => {
            return Err("a document has `text` or `messages`, not both".into());
        }
        (None, None) => {
            return Err(
                "missing `text` (a plain-text document) or `messages` (a chat document)".into(),
            )
        }
        (Some(_), None) => InfluenceText {
            id,
            prompt: InfluencePrompt::None,
            completion: text(obj, "text")?.expect("present"),
        },
        (None, Some(serde_json::Value::Array(turns))) => {
            let (system, mut messages) = chat(turns, "messages", Role::Assistant)?;
            let completion = messages
                .pop()
                .expect("ends with an assistant message")
                .content;
            InfluenceText {
                id,
                prompt: InfluencePrompt::Chat(request(system, messages)),
                completion,
            }
        }
        (None, Some(_)) => return Err("`messages` must be a list of messages".into()),
    };
    check_prompt_size(plain_text(&doc).len())?;
    Ok(doc)
}

/// One query line.
pub fn query(v: &serde_json::Value, line: u64) -> Result<InfluenceText, String> {
    const KEYS: &[&str] = &["id", "prompt", "completion"];
    let obj = v
        .as_object()
        .ok_or("expected a JSON object: {\"prompt\": …, \"completion\": …}")?;
    if let Some(k) = obj.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!(
            "unknown field `{k}`; a query has `prompt` (a text or a list of messages), `completion` and optionally `id`"
        ));
    }
    let id = id(obj, line)?;
    let prompt = match obj.get("prompt") {
        None => return Err("missing `prompt`".into()),
        Some(serde_json::Value::String(_)) => {
            let p = text(obj, "prompt")?.expect("present");
            request(None, vec![Message::user(p)])
        }
        Some(serde_json::Value::Array(turns)) => {
            let (system, messages) = chat(turns, "prompt", Role::User)?;
            request(system, messages)
        }
        Some(_) => return Err("`prompt` must be a string or a list of messages".into()),
    };
    let completion = text(obj, "completion")?.ok_or("missing `completion`")?;
    let q = InfluenceText {
        id,
        prompt: InfluencePrompt::Chat(prompt),
        completion,
    };
    check_prompt_size(plain_text(&q).len())?;
    Ok(q)
}

/// The built-in corpus: the `chosen` conversation of each HH-RLHF record as a chat
/// document, or why it is left out.
fn builtin_corpus() -> Result<Corpus, DataError> {
    let text = shammie_kit::jsonl::decode_maybe_gzip(HH_BUILTIN_NAME, HH_BUILTIN.to_vec())?;
    let mut docs = Vec::new();
    let mut skipped = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let err = |m: String| DataError::Line {
            path: HH_BUILTIN_NAME.into(),
            line: n,
            message: m,
        };
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| err(format!("not valid JSON: {e}")))?;
        let chosen = v
            .get("chosen")
            .and_then(|c| c.as_str())
            .ok_or_else(|| err("missing `chosen`".into()))?;
        match hh_document(chosen, n) {
            Ok(d) => docs.push(d),
            Err(why) => skipped.push((n, why)),
        }
    }
    Ok(Corpus {
        name: HH_BUILTIN_NAME.into(),
        docs,
        skipped,
    })
}

/// An HH-RLHF transcript (`\n\nHuman: …\n\nAssistant: …`) as the chat document `hh-LINE`
/// (turns trimmed), or why it is none: it must start with a human turn, alternate, and end
/// with a non-empty assistant reply.
pub fn hh_document(transcript: &str, line: u64) -> Result<InfluenceText, String> {
    let turns = hh_turns(transcript).ok_or("does not start with \"Human:\"")?;
    let mut messages = Vec::new();
    for (i, (role, content)) in turns.into_iter().enumerate() {
        let expected = if i % 2 == 0 {
            Role::User
        } else {
            Role::Assistant
        };
        if role != expected {
            return Err("the turns do not alternate".into());
        }
        if content.is_empty() {
            return Err("an empty turn".into());
        }
        messages.push(Message {
            role,
            content,
            tool_calls: Vec::new(),
            tool_result: None,
        });
    }
    match messages.last() {
        Some(m) if m.role == Role::Assistant => {}
        _ => return Err("does not end with an assistant reply".into()),
    }
    let completion = messages.pop().expect("checked").content;
    Ok(InfluenceText {
        id: format!("hh-{line}"),
        prompt: InfluencePrompt::Chat(request(None, messages)),
        completion,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every usable `chosen` conversation of the built-in split, as chat documents whose
    /// prompt ends with the human turn the completion answers.
    #[test]
    fn the_builtin_corpus() {
        let c = load_corpus(None).unwrap();
        assert_eq!(c.docs.len() + c.skipped.len(), 2312);
        assert_eq!(c.skipped.len(), 12, "{:?}", c.skipped);
        for d in &c.docs {
            let InfluencePrompt::Chat(req) = &d.prompt else {
                panic!("{d:?}")
            };
            assert_eq!(req.messages.last().unwrap().role, Role::User);
            assert!(!d.completion.is_empty());
        }
        assert_eq!(c.docs[0].id, "hh-1");
    }

    #[test]
    fn hh_transcripts() {
        let d = hh_document(
            "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: bye\n\nAssistant: ok then",
            7,
        )
        .unwrap();
        assert_eq!(d.id, "hh-7");
        assert_eq!(d.completion, "ok then");
        let InfluencePrompt::Chat(req) = &d.prompt else {
            panic!()
        };
        assert_eq!(
            req.messages
                .iter()
                .map(|m| m.content.as_str())
                .collect::<Vec<_>>(),
            ["hi", "hello", "bye"]
        );
        assert!(hh_document("\n\nHuman: hi\n\nAssistant:", 1).is_err());
        assert!(hh_document("\n\nHuman: hi\n\nHuman: again\n\nAssistant: x", 1).is_err());
        assert!(hh_document("Assistant: x", 1).is_err());
    }

    /// The built-in queries: a text prompt is one user message; every query is a chat.
    #[test]
    fn the_builtin_queries() {
        let (name, q) = load_queries(None).unwrap();
        assert_eq!(name, "<built-in>/influence/queries.jsonl");
        assert!((3..=4).contains(&q.len()));
        let InfluencePrompt::Chat(req) = &q[0].prompt else {
            panic!()
        };
        assert_eq!(req.messages.len(), 1);
        assert_eq!(req.messages[0].role, Role::User);
        assert!(req.system.is_none());
    }

    #[test]
    fn documents_and_queries() {
        let v = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        let d = document(&v(r#"{"text": "Plain words.", "source": "x"}"#), 3).unwrap();
        assert_eq!(
            (d.id.as_str(), d.completion.as_str()),
            ("line-3", "Plain words.")
        );
        assert_eq!(d.prompt, InfluencePrompt::None);
        let d = document(
            &v(r#"{"id": 12, "messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}"#),
            1,
        )
        .unwrap();
        assert_eq!(d.id, "12");
        assert_eq!(d.completion, "Hello");
        let InfluencePrompt::Chat(req) = &d.prompt else {
            panic!()
        };
        assert_eq!(req.system.as_deref(), Some("Be kind."));
        assert_eq!(req.messages.len(), 1);
        assert_eq!(plain_text(&d), "Be kind.\nHi\nHello");
        for (bad, why) in [
            (r#"{"text": ""}"#, "`text` is empty"),
            (r#"{"text": 3}"#, "`text` must be a string"),
            (r#"{"txt": "a"}"#, "missing `text`"),
            (r#"{"text": "a", "messages": []}"#, "not both"),
            (
                r#"{"messages": [{"role": "user", "content": "a"}]}"#,
                "must end with an assistant",
            ),
            (
                r#"{"messages": [{"role": "assistant", "content": "a"}]}"#,
                "must alternate",
            ),
            (
                r#"{"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "s"}, {"role": "assistant", "content": "b"}]}"#,
                "may only come first",
            ),
            (
                r#"{"messages": [{"role": "bot", "content": "a"}]}"#,
                "expected {",
            ),
            (r#"{"id": "", "text": "a"}"#, "`id` must be"),
            (r#"[1]"#, "expected a JSON object"),
        ] {
            let e = document(&v(bad), 1).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let q = query(&v(r#"{"prompt": "Q?", "completion": "A."}"#), 2).unwrap();
        assert_eq!(q.id, "line-2");
        for (bad, why) in [
            (r#"{"prompt": "Q?"}"#, "missing `completion`"),
            (
                r#"{"prompt": "Q?", "completion": "A", "answer": "x"}"#,
                "unknown field `answer`",
            ),
            (
                r#"{"prompt": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "completion": "c"}"#,
                "must end with a user message",
            ),
            (r#"{"prompt": 1, "completion": "c"}"#, "`prompt` must be"),
        ] {
            let e = query(&v(bad), 1).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
