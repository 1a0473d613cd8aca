//! OpenAI Chat Completions (`POST {base}/chat/completions`), also spoken by vLLM, SGLang,
//! Ollama and llama.cpp's server.
//!
//! An OpenAI-compatible spec may declare more ([`ServerFeatures`]): assistant prefill
//! (`prefill=true`: the prefill is sent as a final assistant message with vLLM's
//! `continue_final_message: true, add_generation_prompt: false`), the Completions API
//! (`completions=true`: continuation scoring with `echo`, prompts rendered by Shammie with
//! the spec's `template`, see [`crate::completions`]) and `n` choices per request
//! (`n=true`), and may name replicas ([`crate::replicas`]). Which way a request goes:
//!
//! | request | `prefill=true` | `completions=true` | both | neither |
//! |---|---|---|---|---|
//! | plain generation | chat | completions | chat | chat |
//! | with a prefill | chat, continued | completions | chat, continued | refused |
//! | scoring | refused | completions | completions | refused |
//!
//! A refusal names the flag to add and is made before anything is sent.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use shammie_core::{
    Capabilities, Completion, GenerateRequest, Role, StopReason, TokenLogprob, ToolCall,
    TopLogprob, Usage,
};

use crate::completions;
use crate::http::{self, ApiKey};
use crate::jinja::ChatTemplate;
use crate::replicas::{Server, Servers};
use crate::spec::{redact_url, ModelSpec, Provider, ProviderEnv, ServerFeatures};
use crate::template::Template;
use crate::{AdaptiveLimiter, Model, ModelError};

/// Most choices asked for in one request (the official API's limit for `n`).
const MAX_N: usize = 128;

/// Where a request is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// `/chat/completions` (a prefill, if any, continued through `continue_final_message`).
    Chat,
    /// `/completions`, the prompt rendered with the spec's template.
    Completions,
}

pub(crate) struct OpenAi {
    client: reqwest::Client,
    /// The server, or the replicas. Credentials given in a server's URL
    /// (`http://user:pass@host/v1/…`) are sent as HTTP Basic authentication *instead of*
    /// a Bearer key: one scheme per server.
    servers: Servers,
    key: Option<ApiKey>,
    model: String,
    name: String,
    endpoint: String,
    /// The official API wants `max_completion_tokens`; compatible servers know `max_tokens`.
    official: bool,
    /// What a compatible server was declared to support (nothing for the official API).
    features: ServerFeatures,
    /// How prompts are rendered for `/completions` (the spec's `template=`).
    template: Template,
    secrets: http::Secrets,
    timeout: Duration,
}

impl OpenAi {
    /// `gguf` is the chat template of a spec's `template=gguf:FILE`, read by the caller.
    pub(crate) fn new(
        client: reqwest::Client,
        spec: &ModelSpec,
        env: &ProviderEnv,
        timeout: Duration,
        gguf: Option<Arc<ChatTemplate>>,
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
        let bases = std::iter::once(base.clone()).chain(
            spec.replicas
                .iter()
                .map(|r| r.trim_end_matches('/').to_string()),
        );
        // Credentials in a URL come out of it (reqwest would send them as Basic *and* we
        // would add the Bearer key) and are sent as the one scheme for that server.
        let servers: Vec<Server> = bases
            .map(|b| match reqwest::Url::parse(&b) {
                Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
                    let user = percent_decode(u.username());
                    let pass = percent_decode(u.password().unwrap_or(""));
                    let _ = u.set_username("");
                    let _ = u.set_password(None);
                    Server::new(
                        u.as_str().trim_end_matches('/').to_string(),
                        Some((user, pass)),
                    )
                }
                _ => Server::new(b, None),
            })
            .collect();
        let mut secrets = http::Secrets::new(key.as_ref(), None);
        for s in &servers {
            if let Some((u, p)) = &s.basic {
                secrets.add_basic(u, p);
            }
        }
        let features = if official {
            ServerFeatures::default()
        } else {
            spec.features.clone()
        };
        let template = match (features.format(), gguf) {
            (Some(f), _) => Template::Format(f),
            (None, Some(t)) => Template::Jinja(t),
            (None, None) => {
                return Err(ModelError::Config(format!(
                    "model `{spec}`: template=gguf:FILE needs the GGUF's chat template"
                )))
            }
        };
        // The cache identity: provider, the first server (replicas serve the same
        // weights) and model, plus what changes the text a request becomes: the
        // Completions route and its template, and whether prefills go through chat.
        let mut endpoint = format!(
            "{} {} {}",
            spec.provider.as_str(),
            redact_url(&servers[0].base),
            spec.model
        );
        if features.completions {
            // A GGUF's template by its content (and special tokens), not its file's name.
            let name = match &template {
                Template::Format(f) => f.name().to_string(),
                Template::Jinja(t) => format!("gguf sha256:{}", &t.digest()[..16]),
            };
            endpoint.push_str(&format!(" completions template={name}"));
            if features.prefill {
                endpoint.push_str(" chat-prefill");
            }
        }
        Ok(Self {
            client,
            servers: Servers::new(servers),
            secrets,
            key,
            model: spec.model.clone(),
            name: spec.to_string(),
            endpoint,
            official,
            features,
            template,
            timeout,
        })
    }

    /// Gives each replica its own concurrency limit (in the spec's order of servers).
    pub(crate) fn with_replica_limiters(mut self, limiters: Vec<Arc<AdaptiveLimiter>>) -> Self {
        if self.servers.len() > 1 {
            self.servers = self.servers.with_limiters(limiters);
        }
        self
    }

    /// Where `req` goes, or why this server cannot take it (naming the spec flag to add).
    fn route(&self, req: &GenerateRequest) -> Result<Route, ModelError> {
        let f = &self.features;
        let refuse = |what: &str, flag: &str| {
            Err(ModelError::Unsupported(if self.official {
                format!("{}: the OpenAI API {what}", self.name)
            } else {
                format!(
                    "{}: {what} unless the server is declared to support it: add `{flag}` to \
                     the spec's query if it does (see docs/open-weight-servers.md)",
                    self.name
                )
            }))
        };
        if req.is_scoring() {
            return if f.completions {
                Ok(Route::Completions)
            } else {
                refuse("cannot score given continuations", "completions=true")
            };
        }
        if req.raw {
            return if f.completions {
                Ok(Route::Completions)
            } else {
                refuse(
                    "has no plain continuation (raw prompts)",
                    "completions=true",
                )
            };
        }
        if f.completions && !f.prefill {
            return Ok(Route::Completions);
        }
        if req.prefill.is_some() && !f.prefill {
            return refuse("has no assistant prefill", "prefill=true");
        }
        Ok(Route::Chat)
    }

    /// The Chat Completions body of `req` (its prefill, on a server declared to take one,
    /// as a final assistant message to continue).
    pub(crate) fn body(&self, req: &GenerateRequest) -> Result<Value, ModelError> {
        if req.is_scoring() || req.raw || (req.prefill.is_some() && !self.features.prefill) {
            self.route(req)?;
            return Err(ModelError::Unsupported(format!(
                "{}: the Chat Completions API cannot take this request",
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
        let prefill = req.prefill.as_deref();
        if let Some(p) = prefill {
            messages.push(json!({"role": "assistant", "content": p}));
        }
        let mut b = json!({"model": self.model, "messages": messages});
        let o = b.as_object_mut().unwrap();
        if prefill.is_some() {
            o.insert("continue_final_message".into(), json!(true));
            o.insert("add_generation_prompt".into(), json!(false));
        }
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

/// A chat completion's first choice, with the response's whole usage.
pub(crate) fn parse_response(v: &Value) -> Result<Completion, ModelError> {
    let choice = v
        .pointer("/choices/0")
        .ok_or_else(|| ModelError::Malformed("chat completion without choices[0]".into()))?;
    let mut c = parse_choice(choice)?;
    c.usage = usage(v);
    Ok(c)
}

/// The response's usage (`prompt_tokens`, `completion_tokens`).
fn usage(v: &Value) -> Usage {
    Usage {
        input_tokens: v
            .pointer("/usage/prompt_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        output_tokens: v
            .pointer("/usage/completion_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    }
}

/// The share of `total` that choice `i` of `k` gets: an even split with the remainder to
/// the first choices, so the shares add up to what was billed.
fn share(total: u64, k: usize, i: usize) -> u64 {
    let k = k.max(1) as u64;
    total / k + u64::from((i as u64) < total % k)
}

/// Every choice of a response (in `index` order), parsed by `parse`, with the response's
/// usage shared out among them ([`share`]): the API reports one prompt and the
/// completion tokens of all choices together.
fn split_choices(
    v: &Value,
    parse: impl Fn(&Value) -> Result<Completion, ModelError>,
) -> Result<Vec<Completion>, ModelError> {
    let choices = completions::choices(v)?;
    let total = usage(v);
    let k = choices.len();
    choices
        .into_iter()
        .enumerate()
        .map(|(i, ch)| {
            let mut c = parse(ch)?;
            c.usage = Usage {
                input_tokens: share(total.input_tokens, k, i),
                output_tokens: share(total.output_tokens, k, i),
            };
            Ok(c)
        })
        .collect()
}

/// One chat choice, without usage.
fn parse_choice(choice: &Value) -> Result<Completion, ModelError> {
    let bad = |what: &str| ModelError::Malformed(format!("chat completion without {what}"));
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
    Ok(Completion {
        text,
        logprobs,
        continuations: None,
        tool_calls,
        stop_reason,
        usage: Usage::default(),
        meta: Default::default(),
    })
}

impl OpenAi {
    /// Sends `body` to `path` on a server: the one, or the least loaded replica that is
    /// up, going on to the next replica at once after a connection error or a 5xx
    /// ([`crate::replicas`]).
    async fn post(&self, path: &str, body: &Value) -> Result<Value, ModelError> {
        let mut tried = vec![false; self.servers.len()];
        let mut last: Option<ModelError> = None;
        loop {
            let Some(i) = self.servers.pick(&tried) else {
                return Err(match last {
                    Some(_) if self.servers.len() > 1 => self.servers.all_failed(redact_url),
                    Some(e) => e,
                    None => ModelError::Config(format!("{}: no server", self.name)),
                });
            };
            tried[i] = true;
            let slot = self.servers.acquire(i).await;
            let server = slot.server;
            let mut rb = self.client.post(format!("{}{path}", server.base));
            match (&server.basic, &self.key) {
                (Some((user, pass)), _) => rb = rb.basic_auth(user, Some(pass)),
                (None, Some(k)) => rb = rb.bearer_auth(k.expose()),
                (None, None) => {}
            }
            match http::post_json(rb, body, &self.secrets, self.timeout, http::classify).await {
                Ok(v) => {
                    server.succeeded();
                    return Ok(v);
                }
                Err(e) if self.servers.fails_over(&e) => {
                    tracing::debug!(model = %self.name, replica = %redact_url(&server.base), error = %e, "replica failed; trying another");
                    self.servers.mark_down(i, &e);
                    last = Some(e);
                }
                Err(e) => {
                    if e.is_backpressure() {
                        server.backpressure();
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Generates through Chat Completions (`n` choices when given). A server that echoes
    /// the prefill at the start of its reply has it taken off: the text is only what the
    /// model added.
    async fn chat(
        &self,
        req: &GenerateRequest,
        n: Option<usize>,
    ) -> Result<Vec<Completion>, ModelError> {
        let mut body = self.body(req)?;
        if let Some(n) = n {
            body["n"] = json!(n);
        }
        let v = self.post("/chat/completions", &body).await?;
        let mut cs = split_choices(&v, parse_choice)?;
        if let Some(p) = req.prefill.as_deref().filter(|p| !p.is_empty()) {
            for c in &mut cs {
                if let Some(rest) = c.text.strip_prefix(p) {
                    c.text = rest.to_string();
                }
            }
        }
        Ok(cs)
    }

    /// Generates through the Completions API, the prompt rendered with the template.
    async fn complete(
        &self,
        req: &GenerateRequest,
        n: Option<usize>,
    ) -> Result<Vec<Completion>, ModelError> {
        let body = completions::generation_body(&self.model, &self.template, req, n)?;
        let v = self.post("/completions", &body).await?;
        let stops = self.template.stops_for(req);
        split_choices(&v, |c| completions::parse_choice(c, &stops))
    }

    /// Scores each continuation with one echo request (all at once).
    async fn score(&self, req: &GenerateRequest) -> Result<Completion, ModelError> {
        let prompt = completions::render(&self.template, req)?;
        let results = futures::future::join_all(req.continuations.iter().map(|cont| {
            let prompt = &prompt;
            async move {
                let v = self
                    .post(
                        "/completions",
                        &completions::scoring_body(&self.model, prompt, cont),
                    )
                    .await?;
                Ok::<_, ModelError>((completions::score(&v, prompt, cont)?, usage(&v)))
            }
        }))
        .await;
        let mut scores = Vec::with_capacity(results.len());
        let mut total = Usage::default();
        for r in results {
            let (s, u) = r?;
            scores.push(s);
            total += u;
        }
        Ok(Completion {
            text: String::new(),
            logprobs: None,
            continuations: Some(scores),
            tool_calls: Vec::new(),
            stop_reason: StopReason::EndTurn,
            usage: total,
            meta: Default::default(),
        })
    }

    async fn generate_k(
        &self,
        req: &GenerateRequest,
        n: Option<usize>,
    ) -> Result<Vec<Completion>, ModelError> {
        match self.route(req)? {
            Route::Chat => self.chat(req, n).await,
            Route::Completions => self.complete(req, n).await,
        }
    }
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
        let f = &self.features;
        Capabilities {
            max_top_logprobs: 20,
            // Through chat (`prefill`), or rendered into the prompt (`completions`).
            prefill: f.prefill || f.completions,
            stop_sequences: true,
            system_prompt: true,
            multi_turn: true,
            seed: true,
            score_continuations: f.completions,
            // OpenAI calls tools natively; compatible servers only when configured for it
            // (vLLM, llama.cpp with --jinja), so they get text-tag actions.
            native_tools: self.official,
        }
    }

    fn rendered_prompt(&self, req: &GenerateRequest) -> Option<String> {
        if self.route(req).ok()? != Route::Completions {
            return None;
        }
        self.template.render(req).ok()
    }

    async fn generate(&self, req: &GenerateRequest) -> Result<Completion, ModelError> {
        if req.is_scoring() {
            self.route(req)?;
            return self.score(req).await;
        }
        let mut cs = self.generate_k(req, None).await?;
        Ok(cs.swap_remove(0))
    }

    /// One request with `n` choices where the API honours `n` (the official API, or a
    /// server declared with `n=true`), split into one completion per nonce; otherwise one
    /// request per nonce. A server that returns fewer choices than asked does not honour
    /// `n`: the nonces left without one get an error saying so.
    async fn generate_many(
        &self,
        req: &GenerateRequest,
        nonces: &[u64],
    ) -> Vec<Result<Completion, ModelError>> {
        if nonces.len() < 2 || req.is_scoring() || !(self.official || self.features.n) {
            return crate::generate_each(self, req, nonces).await;
        }
        if let Err(e) = self.route(req) {
            return nonces.iter().map(|_| Err(e.clone())).collect();
        }
        let mut out = Vec::with_capacity(nonces.len());
        for chunk in nonces.chunks(MAX_N) {
            match self.generate_k(req, Some(chunk.len())).await {
                Ok(cs) => {
                    let got = cs.len();
                    out.extend(cs.into_iter().take(chunk.len()).map(Ok));
                    for _ in got..chunk.len() {
                        out.push(Err(ModelError::Unsupported(format!(
                            "{}: asked for n={} choices and got {got}: the server does not \
                             honour `n`; drop n=true from the spec",
                            self.name,
                            chunk.len()
                        ))));
                    }
                }
                Err(e) => out.extend(chunk.iter().map(|_| Err(e.clone()))),
            }
        }
        out
    }
}
