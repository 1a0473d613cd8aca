//! Anthropic Messages API (`POST {base}/v1/messages`), with assistant prefill.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use shammie_core::{Capabilities, Completion, GenerateRequest, Role, StopReason, ToolCall, Usage};

use crate::http::{self, ApiKey};
use crate::spec::{redact_url, ModelSpec, ProviderEnv};
use crate::{Model, ModelError};

pub(crate) const API_VERSION: &str = "2023-06-01";

pub(crate) struct Anthropic {
    client: reqwest::Client,
    url: String,
    key: ApiKey,
    model: String,
    name: String,
    endpoint: String,
    timeout: Duration,
}

impl Anthropic {
    pub(crate) fn new(
        client: reqwest::Client,
        spec: &ModelSpec,
        env: &ProviderEnv,
        timeout: Duration,
    ) -> Result<Self, ModelError> {
        let key = env.anthropic_api_key.clone().ok_or_else(|| {
            ModelError::Config(format!(
                "model `{spec}` needs ANTHROPIC_API_KEY in the environment"
            ))
        })?;
        let base = spec.resolved_base_url(env);
        Ok(Self {
            client,
            url: format!("{base}/v1/messages"),
            key,
            model: spec.model.clone(),
            name: spec.to_string(),
            endpoint: format!("anthropic {} {}", redact_url(&base), spec.model),
            timeout,
        })
    }

    /// The request body. The API rejects a final assistant turn ending in whitespace, so
    /// a prefill is sent right-trimmed; the completion is what follows the caller's
    /// prefill (see [`strip_trimmed_whitespace`]).
    pub(crate) fn body(&self, req: &GenerateRequest) -> Result<Value, ModelError> {
        if req.is_scoring() {
            return Err(ModelError::Unsupported(format!(
                "{}: the Messages API cannot score given continuations",
                self.name
            )));
        }
        if req.raw {
            return Err(ModelError::Unsupported(format!(
                "{}: the Messages API has no plain continuation (raw prompts): use a local \
                 model or an openai-compatible server with completions=true",
                self.name
            )));
        }
        if req.top_logprobs.is_some_and(|k| k > 0) {
            return Err(ModelError::Unsupported(format!(
                "{}: the Messages API returns no token log-probabilities",
                self.name
            )));
        }
        let mut messages: Vec<Value> = Vec::with_capacity(req.messages.len() + 1);
        for m in &req.messages {
            let role = match m.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            if let Some(r) = &m.tool_result {
                let block = json!({
                    "type": "tool_result",
                    "tool_use_id": r.call_id,
                    "content": m.content,
                    "is_error": r.is_error,
                });
                // Every result of one assistant turn goes in one user message.
                let last_is_results = messages.last().is_some_and(|l: &Value| {
                    l["role"] == "user"
                        && l["content"]
                            .as_array()
                            .is_some_and(|a| a.iter().all(|b| b["type"] == "tool_result"))
                });
                if last_is_results {
                    messages.last_mut().unwrap()["content"]
                        .as_array_mut()
                        .unwrap()
                        .push(block);
                } else {
                    messages.push(json!({"role": "user", "content": [block]}));
                }
            } else if !m.tool_calls.is_empty() {
                let mut blocks = Vec::new();
                if !m.content.is_empty() {
                    blocks.push(json!({"type": "text", "text": m.content}));
                }
                for c in &m.tool_calls {
                    let input: Value = serde_json::from_str(&c.arguments).map_err(|e| {
                        ModelError::Config(format!(
                            "tool call {} has arguments that are not JSON: {e}",
                            c.id
                        ))
                    })?;
                    blocks.push(
                        json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input}),
                    );
                }
                messages.push(json!({"role": role, "content": blocks}));
            } else {
                messages.push(json!({"role": role, "content": m.content}));
            }
        }
        if let Some(p) = req
            .prefill
            .as_deref()
            .map(str::trim_end)
            .filter(|p| !p.is_empty())
        {
            messages.push(json!({"role": "assistant", "content": p}));
        }
        let mut b =
            json!({"model": self.model, "max_tokens": req.max_tokens, "messages": messages});
        let o = b.as_object_mut().unwrap();
        if let Some(s) = &req.system {
            o.insert("system".into(), json!(s));
        }
        if let Some(t) = req.temperature {
            o.insert("temperature".into(), json!(t));
        }
        if let Some(p) = req.top_p {
            o.insert("top_p".into(), json!(p));
        }
        if !req.stop.is_empty() {
            o.insert("stop_sequences".into(), json!(req.stop));
        }
        if !req.tools.is_empty() {
            let tools: Vec<Value> = req
                .tools
                .iter()
                .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.input_schema}))
                .collect();
            o.insert("tools".into(), json!(tools));
        }
        Ok(b)
    }
}

pub(crate) fn parse_response(v: &Value) -> Result<Completion, ModelError> {
    let content = v
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| ModelError::Malformed("message without a content array".into()))?;
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for block in content {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                text.push_str(block.get("text").and_then(Value::as_str).unwrap_or(""));
            }
            Some("tool_use") => {
                let field = |k: &str| {
                    block
                        .get(k)
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .ok_or_else(|| ModelError::Malformed(format!("tool_use block without {k}")))
                };
                tool_calls.push(ToolCall {
                    id: field("id")?,
                    name: field("name")?,
                    arguments: block.get("input").cloned().unwrap_or(json!({})).to_string(),
                });
            }
            _ => {}
        }
    }
    let stop_reason = match v.get("stop_reason").and_then(Value::as_str) {
        Some("end_turn") => StopReason::EndTurn,
        Some("max_tokens") => StopReason::MaxTokens,
        Some("stop_sequence") => StopReason::StopSequence,
        Some("tool_use") => StopReason::ToolUse,
        _ => StopReason::Other,
    };
    let usage = Usage {
        input_tokens: v
            .pointer("/usage/input_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        output_tokens: v
            .pointer("/usage/output_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    };
    Ok(Completion {
        text,
        logprobs: None,
        continuations: None,
        tool_calls,
        stop_reason,
        usage,
        meta: Default::default(),
    })
}

/// The model continues the right-trimmed prefill, so a continuation that starts by
/// re-emitting the whitespace we cut (prefill `"Answer: "`, reply `" Yes"`) has that
/// whitespace removed: the caller's `prefill + text` is then the whole reply.
pub(crate) fn strip_trimmed_whitespace(prefill: Option<&str>, text: String) -> String {
    let Some(p) = prefill else { return text };
    let cut = &p[p.trim_end().len()..];
    match text.strip_prefix(cut) {
        Some(rest) if !cut.is_empty() => rest.to_string(),
        _ => text,
    }
}

pub(crate) fn classify(status: u16, message: &str, retry_after: Option<Duration>) -> ModelError {
    // Anthropic signals overload with 529 and `overloaded_error`; treat both the same.
    if message.contains("Overloaded") || message.contains("overloaded_error") {
        return ModelError::Overloaded {
            status,
            retry_after,
            message: message.to_string(),
        };
    }
    http::classify(status, message, retry_after)
}

#[async_trait]
impl Model for Anthropic {
    fn name(&self) -> &str {
        &self.name
    }
    fn endpoint(&self) -> &str {
        &self.endpoint
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_top_logprobs: 0,
            prefill: true,
            stop_sequences: true,
            system_prompt: true,
            multi_turn: true,
            seed: false,
            score_continuations: false,
            native_tools: true,
        }
    }
    async fn generate(&self, req: &GenerateRequest) -> Result<Completion, ModelError> {
        let body = self.body(req)?;
        let rb = self
            .client
            .post(&self.url)
            .header("x-api-key", self.key.expose())
            .header("anthropic-version", API_VERSION);
        let secrets = http::Secrets::new(Some(&self.key), None);
        let v = http::post_json(rb, &body, &secrets, self.timeout, classify).await?;
        let mut c = parse_response(&v)?;
        c.text = strip_trimmed_whitespace(req.prefill.as_deref(), c.text);
        Ok(c)
    }
}
