//! Request decoding and response encoding for the two wire formats.

use serde_json::{json, Map, Value};

use crate::{split_tokens, Api, Finish, MockReply, ParsedRequest, TokenOut};

/// Decodes and validates a request body; `Err` is the message of a 400.
pub(crate) fn parse_request(
    api: Api,
    body: Value,
    headers: Vec<(String, String)>,
) -> Result<ParsedRequest, String> {
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
    let msgs = match obj.get("messages") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        Some(Value::Array(_)) => return Err("messages: at least one message is required".into()),
        _ => return Err("messages: field required (an array)".into()),
    };
    let temperature = opt_f64(obj, "temperature")?;
    let top_p = opt_f64(obj, "top_p")?;
    if let Some(p) = top_p {
        if !(0.0..=1.0).contains(&p) {
            return Err("top_p: must be between 0 and 1".into());
        }
    }

    let mut req = ParsedRequest {
        api,
        model,
        system: None,
        messages: Vec::with_capacity(msgs.len()),
        prefill: None,
        max_tokens: None,
        temperature,
        top_p,
        stop: Vec::new(),
        seed: None,
        logprobs: false,
        top_logprobs: None,
        tools: parse_tools(api, obj)?,
        raw: Value::Null,
        headers,
    };
    check_tool_pairing(api, msgs)?;

    match api {
        Api::OpenAi => {
            if let Some(t) = temperature {
                if !(0.0..=2.0).contains(&t) {
                    return Err("temperature: must be between 0 and 2".into());
                }
            }
            let mut system: Vec<String> = Vec::new();
            for (i, m) in msgs.iter().enumerate() {
                let role = m
                    .get("role")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("messages[{i}].role: field required"))?;
                let text = match m.get("content") {
                    None | Some(Value::Null) if role == "assistant" => String::new(),
                    c => content_text(c, &format!("messages[{i}].content"))?,
                };
                match role {
                    "system" | "developer" => system.push(text),
                    "user" | "assistant" | "tool" => req.messages.push((role.to_string(), text)),
                    other => {
                        return Err(format!(
                            "messages[{i}].role: '{other}' is not one of system, developer, user, assistant, tool"
                        ))
                    }
                }
            }
            if !system.is_empty() {
                req.system = Some(system.join("\n\n"));
            }
            // vLLM's assistant prefill: the final assistant message is continued.
            if obj.get("continue_final_message").and_then(Value::as_bool) == Some(true) {
                if obj.get("add_generation_prompt").and_then(Value::as_bool) != Some(false) {
                    return Err("continue_final_message: cannot be used with add_generation_prompt (set it to false)".into());
                }
                match req.messages.pop() {
                    Some((role, text)) if role == "assistant" => req.prefill = Some(text),
                    _ => {
                        return Err(
                            "continue_final_message: the last message must be the assistant's"
                                .into(),
                        )
                    }
                }
            }
            req.max_tokens = match opt_u32(obj, "max_completion_tokens")? {
                Some(n) => Some(n),
                None => opt_u32(obj, "max_tokens")?,
            };
            req.stop = match obj.get("stop") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::String(s)) => vec![s.clone()],
                Some(Value::Array(a)) => {
                    let v: Option<Vec<String>> =
                        a.iter().map(|s| s.as_str().map(str::to_string)).collect();
                    let v = v.ok_or("stop: must be a string or an array of strings")?;
                    if v.len() > 4 {
                        return Err("stop: at most 4 stop sequences".into());
                    }
                    v
                }
                Some(_) => return Err("stop: must be a string or an array of strings".into()),
            };
            req.seed = match obj.get("seed") {
                None | Some(Value::Null) => None,
                Some(v) => Some(
                    v.as_u64()
                        .or_else(|| v.as_i64().map(|i| i as u64))
                        .ok_or("seed: must be an integer")?,
                ),
            };
            req.logprobs = match obj.get("logprobs") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err("logprobs: must be a boolean".into()),
            };
            req.top_logprobs = opt_u32(obj, "top_logprobs")?;
            if let Some(k) = req.top_logprobs {
                if k > 20 {
                    return Err("top_logprobs: must be between 0 and 20".into());
                }
                if !req.logprobs {
                    return Err(
                        "top_logprobs: logprobs must be set to true if top_logprobs is used".into(),
                    );
                }
            }
            if let Some(n) = opt_u32(obj, "n")? {
                if !(1..=128).contains(&n) {
                    return Err("n: must be between 1 and 128".into());
                }
            }
        }
        Api::Anthropic => {
            if let Some(t) = temperature {
                if !(0.0..=1.0).contains(&t) {
                    return Err("temperature: must be between 0 and 1".into());
                }
            }
            req.max_tokens = match opt_u32(obj, "max_tokens")? {
                Some(n) if n >= 1 => Some(n),
                Some(_) => return Err("max_tokens: must be at least 1".into()),
                None => return Err("max_tokens: Field required".into()),
            };
            req.system = match obj.get("system") {
                None | Some(Value::Null) => None,
                s => Some(content_text(s, "system")?),
            };
            for (i, m) in msgs.iter().enumerate() {
                let role = m
                    .get("role")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("messages.{i}.role: Field required"))?;
                if role != "user" && role != "assistant" {
                    return Err(format!(
                        "messages.{i}.role: Input should be 'user' or 'assistant'"
                    ));
                }
                let text = content_text(m.get("content"), &format!("messages.{i}.content"))?;
                let is_results = m
                    .get("content")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty() && a.iter().all(|b| b["type"] == "tool_result"));
                let role = if role == "user" && is_results {
                    "tool"
                } else {
                    role
                };
                req.messages.push((role.to_string(), text));
            }
            if req.messages.last().map(|(r, _)| r.as_str()) == Some("assistant") {
                let (_, text) = req.messages.pop().unwrap_or_default();
                if text.ends_with(char::is_whitespace) {
                    return Err(
                        "messages: final assistant content cannot end with trailing whitespace"
                            .into(),
                    );
                }
                req.prefill = Some(text);
            }
            req.stop = match obj.get("stop_sequences") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(a)) => {
                    let v: Option<Vec<String>> =
                        a.iter().map(|s| s.as_str().map(str::to_string)).collect();
                    v.ok_or("stop_sequences: must be an array of strings")?
                }
                Some(_) => return Err("stop_sequences: must be an array of strings".into()),
            };
            if let Some(v) = obj.get("top_k") {
                if !v.is_null() && v.as_u64().is_none() {
                    return Err("top_k: must be a non-negative integer".into());
                }
            }
        }
    }
    req.raw = body;
    Ok(req)
}

fn opt_f64(obj: &Map<String, Value>, key: &str) -> Result<Option<f64>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| format!("{key}: must be a number")),
    }
}

fn opt_u32(obj: &Map<String, Value>, key: &str) -> Result<Option<u32>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| format!("{key}: must be a non-negative integer")),
    }
}

/// A string, or an array of content blocks whose `text` blocks are joined
/// with newlines (other block types are ignored).
fn content_text(v: Option<&Value>, what: &str) -> Result<String, String> {
    match v {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(blocks)) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for (j, b) in blocks.iter().enumerate() {
                let ty = b
                    .get("type")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("{what}.{j}.type: Field required"))?;
                if ty == "text" {
                    let t = b
                        .get("text")
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("{what}.{j}.text: Field required"))?;
                    parts.push(t.to_string());
                } else if ty == "tool_result" {
                    // A result's content: a string or text blocks.
                    parts.push(content_text(
                        b.get("content").or(Some(&Value::String(String::new()))),
                        &format!("{what}.{j}.content"),
                    )?);
                }
            }
            Ok(parts.join("\n"))
        }
        _ => Err(format!(
            "{what}: must be a string or an array of content blocks"
        )),
    }
}

/// The names of the tools offered, checked for the shape each API requires.
fn parse_tools(api: Api, obj: &Map<String, Value>) -> Result<Vec<String>, String> {
    let tools = match obj.get("tools") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err("tools: must be an array".into()),
    };
    tools
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let (name, schema) = match api {
                Api::OpenAi => {
                    if t.get("type").and_then(Value::as_str) != Some("function") {
                        return Err(format!("tools[{i}].type: must be 'function'"));
                    }
                    (
                        t.pointer("/function/name"),
                        t.pointer("/function/parameters"),
                    )
                }
                Api::Anthropic => (t.get("name"), t.get("input_schema")),
            };
            let name = name
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| format!("tools[{i}]: a name is required"))?;
            if api == Api::Anthropic && schema.is_none() {
                return Err(format!("tools.{i}.input_schema: Field required"));
            }
            if let Some(s) = schema {
                if s.get("type").and_then(Value::as_str) != Some("object") {
                    return Err(format!("tools[{i}]: the schema must be of type object"));
                }
            }
            Ok(name.to_string())
        })
        .collect()
}

/// Both APIs refuse a conversation in which a tool call is not answered by a result
/// right after it, or a result answers no call.
fn check_tool_pairing(api: Api, msgs: &[Value]) -> Result<(), String> {
    let mut open: Vec<String> = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let (calls, results): (Vec<String>, Vec<String>) = match api {
            Api::OpenAi => {
                let calls = m
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|c| {
                                let args = c.pointer("/function/arguments").and_then(Value::as_str);
                                if args
                                    .and_then(|a| serde_json::from_str::<Value>(a).ok())
                                    .is_none()
                                {
                                    return Err(format!(
                                        "messages[{i}].tool_calls: arguments must be a JSON string"
                                    ));
                                }
                                c.get("id")
                                    .and_then(Value::as_str)
                                    .map(str::to_string)
                                    .ok_or_else(|| format!("messages[{i}].tool_calls: id required"))
                            })
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .transpose()?
                    .unwrap_or_default();
                let results = if role == "tool" {
                    vec![m
                        .get("tool_call_id")
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("messages[{i}].tool_call_id: field required"))?
                        .to_string()]
                } else {
                    Vec::new()
                };
                (calls, results)
            }
            Api::Anthropic => {
                let blocks: &[Value] = m
                    .get("content")
                    .and_then(Value::as_array)
                    .map_or(&[], |a| a);
                let ids = |ty: &str, key: &str| -> Vec<String> {
                    blocks
                        .iter()
                        .filter(|b| b["type"] == ty)
                        .filter_map(|b| b.get(key).and_then(Value::as_str).map(str::to_string))
                        .collect()
                };
                (ids("tool_use", "id"), ids("tool_result", "tool_use_id"))
            }
        };
        for r in &results {
            match open.iter().position(|o| o == r) {
                Some(p) => {
                    open.remove(p);
                }
                None => {
                    return Err(format!(
                        "messages[{i}]: a tool result for `{r}`, which answers no tool call"
                    ))
                }
            }
        }
        let continues = match api {
            Api::OpenAi => role == "tool",
            // Anthropic: all results of a turn are in the one user message after it.
            Api::Anthropic => false,
        };
        if !open.is_empty() && !continues {
            return Err(format!(
                "messages[{i}]: tool call `{}` has no result right after it",
                open[0]
            ));
        }
        if api == Api::Anthropic && !open.is_empty() {
            // The one message after a tool_use turn must answer all of it.
            return Err(format!(
                "messages[{i}]: tool_use `{}` has no tool_result in the next message",
                open[0]
            ));
        }
        open.extend(calls);
    }
    match open.first() {
        Some(id) => Err(format!(
            "messages: tool call `{id}` must be answered by a tool result"
        )),
        None => Ok(()),
    }
}

/// Cuts the reply at the earliest stop sequence it contains; returns the
/// sequence that matched.
pub(crate) fn apply_stop(reply: &mut MockReply, stop: &[String]) -> Option<String> {
    let (pos, seq) = stop
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| reply.text.find(s.as_str()).map(|p| (p, s)))
        .min_by_key(|(p, _)| *p)?;
    reply.text.truncate(pos);
    if let Some(tokens) = reply.tokens.as_mut() {
        let mut at = 0usize;
        let mut keep = 0usize;
        for t in tokens.iter_mut() {
            if at >= pos {
                break;
            }
            let end = at + t.token.len();
            if end > pos {
                let cut = floor_char_boundary(&t.token, pos - at);
                t.token.truncate(cut);
            }
            at = end;
            keep += 1;
        }
        tokens.truncate(keep);
        tokens.retain(|t| !t.token.is_empty());
        reply.output_tokens = tokens.len() as u32;
    } else {
        reply.output_tokens = reply
            .output_tokens
            .min(split_tokens(&reply.text).len() as u32);
    }
    reply.finish = Finish::Stop;
    Some(seq.clone())
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn token_json(token: &str, logprob: f64) -> Value {
    json!({ "token": token, "logprob": logprob, "bytes": token.as_bytes() })
}

fn logprobs_json(reply: &MockReply, top_k: usize) -> Value {
    let synthesized;
    let tokens: &[TokenOut] = match &reply.tokens {
        Some(t) => t,
        None => {
            synthesized = split_tokens(&reply.text)
                .into_iter()
                .map(|t| TokenOut {
                    top: vec![(t.clone(), 0.0)],
                    token: t,
                    logprob: 0.0,
                })
                .collect::<Vec<_>>();
            &synthesized
        }
    };
    let content: Vec<Value> = tokens
        .iter()
        .map(|t| {
            let mut v = token_json(&t.token, t.logprob);
            let top: Vec<Value> = t
                .top
                .iter()
                .take(top_k)
                .map(|(tok, lp)| token_json(tok, *lp))
                .collect();
            v["top_logprobs"] = Value::Array(top);
            v
        })
        .collect();
    json!({ "content": content, "refusal": null })
}

/// A `chat.completion` object with one choice per reply.
pub(crate) fn openai_success(
    req: &ParsedRequest,
    replies: &mut [MockReply],
    id: u64,
    created: u64,
) -> Value {
    let top_k = req.top_logprobs.unwrap_or(0) as usize;
    let mut prompt_tokens = 0;
    let mut completion_tokens = 0;
    let choices: Vec<Value> = replies
        .iter_mut()
        .enumerate()
        .map(|(i, reply)| {
            apply_stop(reply, &req.stop);
            prompt_tokens = prompt_tokens.max(reply.input_tokens);
            completion_tokens += reply.output_tokens;
            let mut message = json!({ "role": "assistant", "content": reply.text, "refusal": null });
            let mut finish = match reply.finish { Finish::Stop => "stop", Finish::Length => "length" };
            if !reply.tool_calls.is_empty() {
                let calls: Vec<Value> = reply
                    .tool_calls
                    .iter()
                    .enumerate()
                    .map(|(k, (name, args))| json!({"id": format!("call_{id}_{i}_{k}"), "type": "function", "function": {"name": name, "arguments": args.to_string()}}))
                    .collect();
                message["tool_calls"] = json!(calls);
                if reply.text.is_empty() {
                    message["content"] = Value::Null;
                }
                finish = "tool_calls";
            }
            json!({
                "index": i,
                "message": message,
                "logprobs": if req.logprobs { logprobs_json(reply, top_k) } else { Value::Null },
                "finish_reason": finish,
            })
        })
        .collect();
    json!({
        "id": format!("chatcmpl-mock{id:012}"),
        "object": "chat.completion",
        "created": created,
        "model": req.model,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "system_fingerprint": "fp_shammie_mock",
    })
}

/// A Messages API `message` object.
pub(crate) fn anthropic_success(req: &ParsedRequest, reply: &mut MockReply, id: u64) -> Value {
    let stop_seq = apply_stop(reply, &req.stop);
    let mut stop_reason = match (&stop_seq, reply.finish) {
        (Some(_), _) => "stop_sequence",
        (None, Finish::Stop) => "end_turn",
        (None, Finish::Length) => "max_tokens",
    };
    let mut content = Vec::new();
    if !reply.text.is_empty() || reply.tool_calls.is_empty() {
        content.push(json!({ "type": "text", "text": reply.text }));
    }
    for (k, (name, args)) in reply.tool_calls.iter().enumerate() {
        content.push(json!({"type": "tool_use", "id": format!("toolu_{id:08}_{k}"), "name": name, "input": args}));
        stop_reason = "tool_use";
    }
    json!({
        "id": format!("msg_mock{id:016}"),
        "type": "message",
        "role": "assistant",
        "model": req.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_seq,
        "usage": {
            "input_tokens": reply.input_tokens,
            "output_tokens": reply.output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    })
}

/// An error body in the API's format for `status`.
pub(crate) fn error_body(api: Api, status: u16, message: &str) -> Value {
    match api {
        Api::OpenAi => {
            let (ty, code): (&str, Value) = match status {
                400 => ("invalid_request_error", Value::Null),
                401 => ("invalid_request_error", json!("invalid_api_key")),
                403 => (
                    "invalid_request_error",
                    json!("unsupported_country_region_territory"),
                ),
                404 => ("invalid_request_error", json!("unknown_url")),
                405 => ("invalid_request_error", json!("method_not_allowed")),
                429 => ("requests", json!("rate_limit_exceeded")),
                s if s >= 500 => ("server_error", Value::Null),
                _ => ("invalid_request_error", Value::Null),
            };
            json!({ "error": { "message": message, "type": ty, "param": null, "code": code } })
        }
        Api::Anthropic => {
            let ty = match status {
                400 | 405 | 411 | 431 | 501 => "invalid_request_error",
                401 => "authentication_error",
                403 => "permission_error",
                404 => "not_found_error",
                413 => "request_too_large",
                429 => "rate_limit_error",
                529 => "overloaded_error",
                _ => "api_error",
            };
            json!({ "type": "error", "error": { "type": ty, "message": message } })
        }
    }
}

/// The message used in error bodies for faults and plain statuses.
pub(crate) fn default_message(api: Api, status: u16) -> &'static str {
    match (api, status) {
        (Api::OpenAi, 429) => {
            "Rate limit reached for requests (mock fault). Please try again later."
        }
        (Api::Anthropic, 429) => "Number of requests has exceeded your rate limit (mock fault).",
        (Api::Anthropic, 529) => "Overloaded",
        (Api::OpenAi, 503) => "The server is overloaded or not ready yet (mock fault).",
        (_, 500) => "The server had an error while processing your request (mock fault).",
        (_, s) if s >= 500 => "Internal server error (mock fault).",
        _ => "Request failed (mock fault).",
    }
}
