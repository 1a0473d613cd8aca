//! Chat-format training data: JSONL with one `{"messages": [{"role", "content"}, …]}`
//! conversation per line (or a plain `{"text"}` document, trained whole, for continued
//! pretraining) (the format of OpenAI fine-tuning and TRL), rendered with the
//! template Shammie serves the model with (`shammie_local::prompt::Template`: the GGUF's
//! own chat template, or the base-model format), so a trained reply is learned in exactly
//! the context the model later answers in.
//!
//! Roles: an optional `system` message first, then `user` and `assistant` turns
//! alternating, starting with `user`, with at least one `assistant` turn (turns after the
//! last one are not trained and are dropped). Each assistant turn `k` is laid out as
//! `render(turns before k)` (untrained; the first segment gets the BOS token when the
//! vocabulary adds one, as a served prompt does), then the reply followed by the
//! template's end of turn (trained: the model learns where to stop). For the base format
//! the reply is `" " + content` after `Assistant:` and its end is `"\n\nHuman:"`, the
//! stop string the server cuts at; for a chat template it is `content` and the
//! vocabulary's end-of-turn text (Gemma's `<end_of_turn>`, ChatML's `<|im_end|>`). The concatenation of the segments is
//! the full rendered transcript; every segment is tokenised on its own, so the prompt
//! part has the tokens a served prompt has.

use std::path::Path;

use shammie_core::{GenerateRequest, Message};
use shammie_kit::jsonl::Origin;
use shammie_local::prompt::Template;
use shammie_tokenizer::Tokenizer;

use crate::sft::Example;
use crate::TrainError;

/// One conversation as read: the system text and the alternating turns.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    pub system: Option<String>,
    pub turns: Vec<Message>,
}

/// Parses one JSONL record (the error says what is wrong, without the place).
pub fn parse_conversation(v: &serde_json::Value) -> Result<Conversation, String> {
    let mut c = parse_turns(v.get("messages").ok_or("no `messages` field")?, "messages")?;
    // Turns after the last assistant turn are not trained.
    if c.turns.len() % 2 == 1 {
        c.turns.pop();
    }
    if c.turns.is_empty() {
        return Err("no `assistant` turn to train on".into());
    }
    Ok(c)
}

/// Parses a list of `{"role", "content"}` messages: an optional `system` first, then
/// `user` and `assistant` alternating, starting with `user` (all kept, whatever comes last).
/// `field` names the list in errors.
pub fn parse_turns(list: &serde_json::Value, field: &str) -> Result<Conversation, String> {
    let msgs = list
        .as_array()
        .ok_or_else(|| format!("`{field}` is not a list"))?;
    let mut system = None;
    let mut turns = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let role = m
            .get("role")
            .and_then(|r| r.as_str())
            .ok_or_else(|| format!("message {}: no string `role`", i + 1))?;
        let content = m
            .get("content")
            .and_then(|c| c.as_str())
            .ok_or_else(|| format!("message {}: no string `content`", i + 1))?;
        let want = if turns.len() % 2 == 0 {
            "user"
        } else {
            "assistant"
        };
        match role {
            "system" if i == 0 => system = Some(content.to_string()),
            "system" => return Err(format!("message {}: `system` only as the first", i + 1)),
            "user" | "assistant" if role != want => {
                return Err(format!(
                    "message {}: expected a `{want}` turn (turns alternate, starting with `user`), got `{role}`",
                    i + 1
                ))
            }
            "user" => turns.push(Message::user(content)),
            "assistant" => turns.push(Message::assistant(content)),
            other => {
                return Err(format!(
                    "message {}: unknown role `{other}` (system, user or assistant)",
                    i + 1
                ))
            }
        }
    }
    Ok(Conversation { system, turns })
}

/// The training text of a reply: what follows the rendered prompt, end of turn included.
fn reply_text(template: &Template, content: &str) -> String {
    let end = template.turn_end();
    if template.is_base() {
        format!(" {}{end}", content.trim_end())
    } else {
        format!("{content}{end}")
    }
}

/// Lays out `c` as untrained prompt segments and trained reply segments (module comment).
pub fn conversation_example(
    c: &Conversation,
    template: &Template,
    tok: &Tokenizer,
) -> Result<Example, String> {
    let mut ids = Vec::new();
    let mut train = Vec::new();
    let mut done = String::new();
    for k in (1..c.turns.len()).step_by(2) {
        let mut req = GenerateRequest::user("", 0);
        req.system = c.system.clone();
        req.messages = c.turns[..k].to_vec();
        let prompt = template.render(&req).map_err(|e| e.to_string())?;
        let rest = prompt.strip_prefix(done.as_str()).ok_or_else(|| {
            format!(
                "turn {}: the {} template does not extend the transcript",
                k + 1,
                template.name()
            )
        })?;
        let p = tok.encode(rest, done.is_empty() && tok.add_bos_by_default());
        train.extend(std::iter::repeat_n(false, p.len()));
        ids.extend(p);
        let reply = reply_text(template, &c.turns[k].content);
        let r = tok.encode(&reply, false);
        train.extend(std::iter::repeat_n(true, r.len()));
        ids.extend(r);
        done = prompt + &reply;
    }
    Example::new(ids, train).map_err(|e| e.to_string())
}

/// A plain document (`{"text": …}`, continued pretraining, e.g. the alignment-faking
/// study's synthetic documents): the BOS token, then every token of the text trained, with
/// no chat format around it.
pub fn document_example(text: &str, tok: &Tokenizer) -> Result<Example, String> {
    if text.trim().is_empty() {
        return Err("`text` is empty".into());
    }
    let ids = tok.encode(text, true);
    // The BOS token (when the tokenizer adds one) is context, never a target.
    let bos = ids.len() - tok.encode(text, false).len();
    let train = (0..ids.len()).map(|i| i >= bos).collect();
    Example::new(ids, train).map_err(|e| e.to_string())
}

/// One JSONL record as an example: a chat (`messages`) or a plain document (`text`).
pub fn record_example(
    v: &serde_json::Value,
    template: &Template,
    tok: &Tokenizer,
) -> Result<Example, String> {
    match (v.get("messages"), v.get("text")) {
        (Some(_), Some(_)) => {
            Err("both `messages` and `text`: a record is a chat or a document".into())
        }
        (None, Some(t)) => document_example(t.as_str().ok_or("`text` is not a string")?, tok),
        _ => parse_conversation(v).and_then(|c| conversation_example(&c, template, tok)),
    }
}

/// Reads chat JSONL (or plain documents, `{"text"}`, see [`document_example`]) from
/// `path` into examples; any bad line is a `FILE:LINE:` error and nothing is returned.
pub fn load_chat_jsonl(
    path: &Path,
    template: &Template,
    tok: &Tokenizer,
) -> Result<Vec<Example>, TrainError> {
    let origin = Origin::File(path.to_path_buf());
    let shown = origin.display();
    let mut out = Vec::new();
    for item in origin
        .lines()
        .map_err(|e| TrainError::Data(e.to_string()))?
    {
        let (line, v) = item.map_err(|e| TrainError::Data(e.to_string()))?;
        let ex = record_example(&v, template, tok)
            .map_err(|e| TrainError::Data(format!("{shown}:{line}: {e}")))?;
        out.push(ex);
    }
    Ok(out)
}
