//! OpenAI Chat Completions (`POST {base}/chat/completions`), also spoken by vLLM, SGLang,
//! Ollama and llama.cpp's server.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use shammie_core::{
    Capabilities, Completion, GenerateRequest, Role, StopReason, TokenLogprob, ToolCall,
    TopLogprob, Usage,
};

use crate::http::{self, ApiKey};
use crate::spec::{redact_url, ModelSpec, Provider, ProviderEnv};
use crate::{Model, ModelError};

pub(crate) struct OpenAi {
    client: reqwest::Client,
    url: String,
    key: Option<ApiKey>,
    model: String,
    name: String,
    endpoint: String,
    /// The official API wants `max_completion_tokens`; compatible servers know `max_tokens`.
    official: bool,
    /// Credentials given in the server's URL (`http://user:pass@host/v1/…`), sent as HTTP
    /// Basic authentication *instead of* a Bearer key: one scheme per server.
    basic: Option<(String, String)>,
    secrets: http::Secrets,
    timeout: Duration,
}

impl OpenAi {
    pub(crate) fn new(
        client: reqwest::Client,
        spec: &ModelSpec,
        env: &ProviderEnv,
        timeout: Duration,
    ) -> Result<Self, ModelError> {
        let official = spec.provider == Provider::OpenAi;
        let key = if official {
            Some(env.openai_api_key.clone().ok_or_else(|| {
                ModelError::Config(format!(
                    "model `{spec}` needs OPENAI_API_KEY in the environment"
                ))
            })?)
        } else {
            env.compatible_api_key.clone()
        };
        let base = spec.resolved_base_url(env);
        // Credentials in the URL come out of it (reqwest would send them as Basic *and* we
        // would add the Bearer key) and are sent as the one scheme for this server.
        let (base, basic) = match reqwest::Url::parse(&base) {
            Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
                let user = percent_decode(u.username());
                let pass = percent_decode(u.password().unwrap_or(""));
                let _ = u.set_username("");
                let _ = u.set_password(None);
                (
                    u.as_str().trim_end_matches('/').to_string(),
                    Some((user, pass)),
                )
            }
            _ => (base, None),
        };
        let secrets = http::Secrets::new(
            key.as_ref(),
            basic.as_ref().map(|(u, p)| (u.as_str(), p.as_str())),
        );
        Ok(Self {
            client,
            basic,
            secrets,
            url: format!("{base}/chat/completions"),
            key,
            model: spec.model.clone(),
            name: spec.to_string(),
            endpoint: format!(
                "{} {} {}",
                spec.provider.as_str(),
                redact_url(&base),
                spec.model
            ),
            official,
            timeout,
        })
    }

    pub(crate) fn body(&self, req: &GenerateRequest) -> Result<Value, ModelError> {
        if req.is_scoring() {
            return Err(ModelError::Unsupported(format!(
                "{}: the Chat Completions API cannot score given continuations",
                self.name
            )));
        }
        if req.prefill.is_some() {
            return Err(ModelError::Unsupported(format!(
                "{}: the Chat Completions API has no assistant prefill",
                self.name
            )));
        }
        let mut messages = Vec::with_capacity(req.messages.len() + 1);
        if let Some(s) = &req.system {
            messages.push(json!({"role": "system", "content": s}));
        }
        for m in &req.messages {
            let role = match m.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            if let Some(r) = &m.tool_result {
                messages
                    .push(json!({"role": "tool", "tool_call_id": r.call_id, "content": m.content}));
            } else if !m.tool_calls.is_empty() {
                let calls: Vec<Value> = m
                    .tool_calls
                    .iter()
                    .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
                    .collect();
                let content = if m.content.is_empty() {
                    Value::Null
                } else {
                    json!(m.content)
                };
                messages.push(json!({"role": role, "content": content, "tool_calls": calls}));
            } else {
                messages.push(json!({"role": role, "content": m.content}));
            }
        }
        let mut b = json!({"model": self.model, "messages": messages});
        let o = b.as_object_mut().unwrap();
        let max_key = if self.official {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        o.insert(max_key.into(), json!(req.max_tokens));
        if let Some(t) = req.temperature {
            o.insert("temperature".into(), json!(t));
        }
        if let Some(p) = req.top_p {
            o.insert("top_p".into(), json!(p));
        }
        if !req.stop.is_empty() {
            o.insert("stop".into(), json!(req.stop));
        }
        if let Some(s) = req.seed {
            o.insert("seed".into(), json!(s));
        }
        if let Some(k) = req.top_logprobs.filter(|k| *k > 0) {
            o.insert("logprobs".into(), json!(true));
            o.insert("top_logprobs".into(), json!(k));
        }
        if !req.tools.is_empty() {
            let tools: Vec<Value> = req
                .tools
                .iter()
                .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.input_schema}}))
                .collect();
            o.insert("tools".into(), json!(tools));
        }
        Ok(b)
    }
}

/// `%XX` escapes of a URL's user or password, decoded.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn parse_response(v: &Value) -> Result<Completion, ModelError> {
    let bad = |what: &str| ModelError::Malformed(format!("chat completion without {what}"));
    let choice = v.pointer("/choices/0").ok_or_else(|| bad("choices[0]"))?;
    let text = match choice.pointer("/message/content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(_) => return Err(bad("a string message.content")),
    };
    let tool_calls = match choice.pointer("/message/tool_calls") {
        Some(Value::Array(calls)) => calls
            .iter()
            .map(|c| {
                let s = |p: &str| {
                    c.pointer(p)
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .ok_or_else(|| bad(&format!("tool call {p}")))
                };
                Ok(ToolCall {
                    id: s("/id")?,
                    name: s("/function/name")?,
                    arguments: s("/function/arguments")?,
                })
            })
            .collect::<Result<Vec<_>, ModelError>>()?,
        _ => Vec::new(),
    };
    let stop_reason = match choice.get("finish_reason").and_then(Value::as_str) {
        Some("stop") => StopReason::EndTurn,
        Some("length") => StopReason::MaxTokens,
        Some("tool_calls") => StopReason::ToolUse,
        _ => StopReason::Other,
    };
    let logprobs = match choice.pointer("/logprobs/content") {
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|t| {
                    let token = t
                        .get("token")
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad("logprobs token"))?;
                    let logprob = t
                        .get("logprob")
                        .and_then(Value::as_f64)
                        .ok_or_else(|| bad("a logprob"))?;
                    let top = t
                        .get("top_logprobs")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| {
                                    Some(TopLogprob {
                                        token: x.get("token")?.as_str()?.to_string(),
                                        logprob: x.get("logprob")?.as_f64()?,
                                    })
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    Ok(TokenLogprob {
                        token: token.to_string(),
                        logprob,
                        top,
                    })
                })
                .collect::<Result<Vec<_>, ModelError>>()?,
        ),
        _ => None,
    };
    let usage = Usage {
        input_tokens: v
            .pointer("/usage/prompt_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        output_tokens: v
            .pointer("/usage/completion_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    };
    Ok(Completion {
        text,
        logprobs,
        continuations: None,
        tool_calls,
        stop_reason,
        usage,
        meta: Default::default(),
    })
}

#[async_trait]
impl Model for OpenAi {
    fn name(&self) -> &str {
        &self.name
    }
    fn endpoint(&self) -> &str {
        &self.endpoint
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_top_logprobs: 20,
            prefill: false,
            stop_sequences: true,
            system_prompt: true,
            multi_turn: true,
            seed: true,
            score_continuations: false,
            // OpenAI calls tools natively; compatible servers only when configured for it
            // (vLLM, llama.cpp with --jinja), so they get text-tag actions.
            native_tools: self.official,
        }
    }
    async fn generate(&self, req: &GenerateRequest) -> Result<Completion, ModelError> {
        let body = self.body(req)?;
        let mut rb = self.client.post(&self.url);
        match (&self.basic, &self.key) {
            (Some((user, pass)), _) => rb = rb.basic_auth(user, Some(pass)),
            (None, Some(k)) => rb = rb.bearer_auth(k.expose()),
            (None, None) => {}
        }
        let v = http::post_json(rb, &body, &self.secrets, self.timeout, http::classify).await?;
        parse_response(&v)
    }
}
