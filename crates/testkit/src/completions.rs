//! The legacy Completions API, `POST /v1/completions`, as vLLM and the llama.cpp servers
//! speak it (non-streaming): one prompt (a string, or an array holding one string),
//! `max_tokens` (default 16; 0 generates nothing), `echo`, `logprobs` (an integer 0–20),
//! `n`, `temperature`, `top_p`, `seed`, `stop`.
//!
//! # Deterministic tokenisation and log-probabilities
//!
//! Text is cut into tokens by [`split_tokens`] (words with their leading whitespace:
//! `"Human: Hi\n\nAssistant:"` → `["Human:", " Hi", "\n\nAssistant:"]`). With `echo`,
//! the prompt's tokens come back first, each with [`completion_logprob`]`(prefix, token)`
//! where `prefix` is all the text before it; the first token's log-probability is `null`,
//! as on every real server. `text_offset` is each token's offset in characters.
//!
//! Generated text comes from the server's [`crate::Responder`], which sees the prompt as
//! one user message (`ParsedRequest::last_user_text` is the whole prompt), so the default
//! responder answers it as it answers a chat; its tokens keep their own log-probabilities
//! (or 0 without token detail). Usage: `prompt_tokens` is the prompt's token count,
//! `completion_tokens` the tokens generated over all choices.

use serde_json::{json, Map, Value};

use crate::reply::{splitmix64, unit};
use crate::wire::apply_stop;
use crate::{fnv1a64, split_tokens, Api, Finish, MockReply, ParsedRequest, Responder, TokenOut};

/// The log-probability the mock gives `token` after the text `prefix` on
/// `/v1/completions`: `ln(0.02 + 0.96 · u)`, where `u` in `[0, 1)` is splitmix64 of
/// `fnv1a64(prefix) ^ splitmix64(fnv1a64(token))` mapped to a double (the top 53 bits).
/// Always negative, different for every prefix, so a sum over the wrong tokens is wrong.
pub fn completion_logprob(prefix: &str, token: &str) -> f64 {
    let h = fnv1a64(prefix.as_bytes()) ^ splitmix64(fnv1a64(token.as_bytes()));
    (0.02 + 0.96 * unit(h)).ln()
}

struct Request {
    parsed: ParsedRequest,
    prompt: String,
    echo: bool,
    logprobs: Option<usize>,
    n: usize,
}

fn parse(body: Value, headers: Vec<(String, String)>) -> Result<Request, String> {
    let obj = body
        .as_object()
        .ok_or_else(|| "request body must be a JSON object".to_string())?;
    if obj.get("stream").and_then(Value::as_bool) == Some(true) {
        return Err("stream: streaming is not supported by the shammie mock server".into());
    }
    let model = match obj.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        _ => return Err("model: field required (a non-empty string)".into()),
    };
    let prompt = match obj.get("prompt") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) if a.len() == 1 && a[0].is_string() => {
            a[0].as_str().unwrap_or_default().to_string()
        }
        Some(Value::Array(_)) => {
            return Err("prompt: the shammie mock takes one prompt per request".into())
        }
        _ => return Err("prompt: field required (a string)".into()),
    };
    let num = |k: &str| -> Result<Option<f64>, String> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| format!("{k}: must be a number")),
        }
    };
    let int = |k: &str, max: u64| -> Result<Option<u64>, String> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_u64() {
                Some(x) if x <= max => Ok(Some(x)),
                _ => Err(format!("{k}: must be an integer between 0 and {max}")),
            },
        }
    };
    let temperature = num("temperature")?;
    if temperature.is_some_and(|t| !(0.0..=2.0).contains(&t)) {
        return Err("temperature: must be between 0 and 2".into());
    }
    let top_p = num("top_p")?;
    let max_tokens = int("max_tokens", u32::MAX as u64)?.unwrap_or(16) as u32;
    let logprobs = int("logprobs", 20)?.map(|k| k as usize);
    let n = int("n", 128)?.unwrap_or(1) as usize;
    if n == 0 {
        return Err("n: must be between 1 and 128".into());
    }
    let echo = match obj.get("echo") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("echo: must be a boolean".into()),
    };
    let stop = match obj.get("stop") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|s| s.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or("stop: must be a string or an array of strings")?,
        Some(_) => return Err("stop: must be a string or an array of strings".into()),
    };
    let seed = match obj.get("seed") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .or_else(|| v.as_i64().map(|i| i as u64))
                .ok_or("seed: must be an integer")?,
        ),
    };
    let parsed = ParsedRequest {
        api: Api::OpenAi,
        model,
        system: None,
        messages: vec![("user".into(), prompt.clone())],
        prefill: None,
        max_tokens: Some(max_tokens),
        temperature,
        top_p,
        stop,
        seed,
        logprobs: logprobs.is_some(),
        top_logprobs: logprobs.map(|k| k as u32),
        tools: Vec::new(),
        raw: body.clone(),
        headers,
    };
    Ok(Request {
        parsed,
        prompt,
        echo,
        logprobs,
        n,
    })
}

/// One token of the `logprobs` object: text, log-probability (`None`: `null`) and the
/// alternatives listed for it.
struct Tok {
    text: String,
    logprob: Option<f64>,
    top: Vec<(String, f64)>,
}

fn echo_tokens(prompt: &str) -> Vec<Tok> {
    let mut prefix = String::new();
    split_tokens(prompt)
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let lp = (i > 0).then(|| completion_logprob(&prefix, &t));
            prefix.push_str(&t);
            Tok {
                top: lp.map(|l| vec![(t.clone(), l)]).unwrap_or_default(),
                text: t,
                logprob: lp,
            }
        })
        .collect()
}

fn generated_tokens(reply: &MockReply) -> Vec<Tok> {
    match &reply.tokens {
        Some(ts) => ts
            .iter()
            .map(
                |TokenOut {
                     token,
                     logprob,
                     top,
                 }| Tok {
                    text: token.clone(),
                    logprob: Some(*logprob),
                    top: top.clone(),
                },
            )
            .collect(),
        None => split_tokens(&reply.text)
            .into_iter()
            .map(|t| Tok {
                top: vec![(t.clone(), 0.0)],
                text: t,
                logprob: Some(0.0),
            })
            .collect(),
    }
}

fn logprobs_json(tokens: &[Tok], start: usize, k: usize, first_null: bool) -> Value {
    let mut at = start;
    let mut offsets = Vec::with_capacity(tokens.len());
    for t in tokens {
        offsets.push(at);
        at += t.text.chars().count();
    }
    let tops: Vec<Value> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if first_null && i == 0 {
                return Value::Null;
            }
            let mut m = Map::new();
            for (tok, lp) in t.top.iter().take(k.max(1)) {
                m.insert(tok.clone(), json!(lp));
            }
            if let Some(lp) = t.logprob {
                m.insert(t.text.clone(), json!(lp));
            }
            Value::Object(m)
        })
        .collect();
    json!({
        "tokens": tokens.iter().map(|t| t.text.clone()).collect::<Vec<_>>(),
        "token_logprobs": tokens.iter().map(|t| t.logprob).collect::<Vec<_>>(),
        "top_logprobs": tops,
        "text_offset": offsets,
    })
}

/// A `text_completion` object for `body`, or the message of a 400.
pub(crate) fn success(
    body: Value,
    headers: Vec<(String, String)>,
    responder: &Responder,
    id: u64,
    created: u64,
) -> Result<Value, String> {
    let req = parse(body, headers)?;
    let max_tokens = req.parsed.max_tokens.unwrap_or(16) as usize;
    let prompt_tokens = split_tokens(&req.prompt).len();
    let mut completion_tokens = 0;
    let choices: Vec<Value> = (0..req.n)
        .map(|i| {
            let mut reply = if max_tokens == 0 {
                MockReply::new("")
            } else {
                let mut r = responder(&req.parsed);
                if let Some(ts) = r.tokens.as_mut() {
                    if ts.len() > max_tokens {
                        ts.truncate(max_tokens);
                        r.text = ts.iter().map(|t| t.token.as_str()).collect();
                        r.finish = Finish::Length;
                    }
                }
                r
            };
            apply_stop(&mut reply, &req.parsed.stop);
            let generated = generated_tokens(&reply);
            completion_tokens += generated.len();
            let logprobs = req.logprobs.map(|k| {
                if req.echo {
                    let mut all = echo_tokens(&req.prompt);
                    all.extend(generated);
                    logprobs_json(&all, 0, k, true)
                } else {
                    logprobs_json(&generated, req.prompt.chars().count(), k, false)
                }
            });
            let text = if req.echo {
                format!("{}{}", req.prompt, reply.text)
            } else {
                reply.text.clone()
            };
            json!({
                "index": i,
                "text": text,
                "logprobs": logprobs,
                "finish_reason": match reply.finish { Finish::Stop => "stop", Finish::Length => "length" },
            })
        })
        .collect();
    Ok(json!({
        "id": format!("cmpl-mock{id:012}"),
        "object": "text_completion",
        "created": created,
        "model": req.parsed.model,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn run(body: Value) -> Value {
        let r: Responder = Arc::new(crate::default_reply);
        success(body, Vec::new(), &r, 1, 0).unwrap()
    }

    #[test]
    fn echo_scores_the_prompt_token_by_token() {
        let v = run(
            json!({"model": "m", "prompt": "Human: Hi\n\nAssistant: yes",
            "max_tokens": 1, "echo": true, "logprobs": 1}),
        );
        let lp = &v["choices"][0]["logprobs"];
        assert_eq!(
            lp["tokens"].as_array().unwrap()[..4],
            json!(["Human:", " Hi", "\n\nAssistant:", " yes"])
                .as_array()
                .unwrap()[..]
        );
        assert_eq!(lp["text_offset"], json!([0, 6, 9, 21, 25]));
        assert!(lp["token_logprobs"][0].is_null() && lp["top_logprobs"][0].is_null());
        let want = completion_logprob("Human: Hi\n\nAssistant:", " yes");
        assert_eq!(lp["token_logprobs"][3], json!(want));
        assert!(want < 0.0);
        assert!(v["choices"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("Human: Hi\n\nAssistant: yes"));
        assert_eq!(v["usage"]["prompt_tokens"], 4);
    }

    #[test]
    fn generates_n_choices_and_refuses_bad_bodies() {
        let v =
            run(json!({"model": "m", "prompt": ["Is it? (A) x (B) y"], "n": 3, "max_tokens": 1}));
        assert_eq!(v["choices"].as_array().unwrap().len(), 3);
        assert_eq!(v["usage"]["completion_tokens"], 3);
        let r: Responder = Arc::new(crate::default_reply);
        for bad in [
            json!({"model": "m"}),
            json!({"model": "m", "prompt": ["a", "b"]}),
            json!({"model": "m", "prompt": "a", "logprobs": 21}),
            json!({"model": "m", "prompt": "a", "n": 0}),
        ] {
            assert!(success(bad, Vec::new(), &r, 1, 0).is_err());
        }
    }
}
