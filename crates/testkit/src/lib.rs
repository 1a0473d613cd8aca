//! # shammie-testkit: a loopback mock LLM server
//!
//! **What it is.** A small HTTP/1.1 server that speaks the real wire formats of
//! two LLM APIs well enough for Shammie's own tests and benchmarks:
//!
//! * the OpenAI Chat Completions API: `POST /v1/chat/completions`
//!   (non-streaming; `logprobs`/`top_logprobs`, `n`, `stop`, `seed`,
//!   `max_tokens`/`max_completion_tokens`; vLLM's assistant prefill,
//!   `continue_final_message: true` with `add_generation_prompt: false`);
//! * the legacy Completions API ([`completions`]): `POST /v1/completions` with
//!   `echo` and `logprobs` as vLLM and the llama.cpp servers give them, over a
//!   documented tokenisation, so tests can compute continuation scores by hand;
//! * the Anthropic Messages API: `POST /v1/messages` (non-streaming;
//!   `system`, assistant *prefill*, `stop_sequences`, `x-api-key`);
//! * the OpenAI fine-tuning API ([`finetune`]): file upload, jobs that advance one
//!   status per poll to a scripted outcome, events, cancel;
//! * both batch APIs ([`batch`]): Anthropic Message Batches and OpenAI Batch (files
//!   upload and download), each request answered as the synchronous route would, with
//!   scripted delays, expiry, per-request errors and whole-batch failure, and counters
//!   of what was submitted.
//!
//! Faults can be scripted per request ([`Fault`]: rate limits with
//! `Retry-After`, 5xx errors, Anthropic's 529 overload, delays, TCP resets,
//! malformed JSON bodies, hangs), every request is recorded
//! ([`RecordedRequest`]), and the answers come from a [`Responder`] — by
//! default the deterministic [`default_reply`].
//!
//! [`ScriptedModel`] is the in-process counterpart: a [`shammie_models::Model`] whose
//! answers come from a closure over the typed request, for engine-level study tests.
//! [`prompts`] renders the requests of a run's records as text, for snapshots of the
//! prompts each study sends.
//!
//! The library is used in-process (`MockServer::start().await`) as a
//! dev-dependency; the `shammie-mock` binary runs the same server in its own
//! process for benchmarks.
//!
//! **What it is not.** It is for tests and benchmarks only:
//!
//! * it binds to `127.0.0.1` only, never to another interface;
//! * it is not a model: its answers are a documented hash of the prompt (or
//!   whatever your responder returns), not language understanding;
//! * it is not a complete implementation of either API: no streaming (a
//!   request with `"stream": true` gets a 400), no images, no chunked request
//!   bodies, no TLS, no HTTP/2. Native tool calling is there: tools are
//!   checked for shape, a responder may answer with tool calls, and a tool
//!   call not answered right after it by a result with its id is a 400, as
//!   both APIs do.
//!
//! ## Example
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use shammie_testkit::{Fault, MockServer};
//! use std::time::Duration;
//!
//! let server = MockServer::start().await?;
//! server.push_fault(Fault::RateLimit { retry_after: Some(Duration::from_millis(50)) });
//! // point a client at server.openai_base_url() or server.anthropic_base_url():
//! // its first request gets a 429 with `Retry-After: 0.05`, the next one is answered.
//! # Ok(()) }
//! ```

pub mod batch;
pub mod completions;
pub mod finetune;
pub mod prompts;
pub mod replay;
mod reply;
pub mod scripted;
mod server;
mod wire;

use std::sync::Arc;
use std::time::Duration;

pub use batch::{BatchJudge, BatchOutcome};
pub use completions::completion_logprob;
pub use finetune::{FineTuneOutcome, MockFile};
pub use replay::Recording;
pub use reply::{
    choice_options, count_words, default_distribution, default_reply, fnv1a64, split_tokens,
    FILLER_TOKENS, OPTION_MASS,
};
pub use scripted::ScriptedModel;
pub use server::{MockBuilder, MockServer};

/// Which wire format a request arrived in (decided by the request path).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    /// `POST /v1/chat/completions`
    OpenAi,
    /// `POST /v1/messages`
    Anthropic,
}

/// A request body decoded into one shape for both APIs, as handed to a
/// [`Responder`].
///
/// Conventions (the same for both APIs, so a responder need not care which
/// one was used):
/// * `system` holds the system prompt: Anthropic's `system` field (a string or
///   text blocks), or the OpenAI `system`/`developer` messages joined with a
///   blank line. Those messages are **not** repeated in `messages`.
/// * `messages` holds the conversation turns in order as `(role, text)`;
///   content given as an array of blocks is reduced to its `text` blocks
///   joined with `"\n"`.
/// * `prefill` is an Anthropic trailing `assistant` message (removed from
///   `messages`), or an OpenAI one sent with `continue_final_message: true` (and
///   `add_generation_prompt: false`, as vLLM requires): the reply continues it and
///   does not repeat it. Otherwise an OpenAI trailing assistant message stays in
///   `messages`.
/// * A tool result is a `("tool", output)` message in both APIs (OpenAI `tool`
///   messages; Anthropic user messages made of `tool_result` blocks). Each tool
///   call of an assistant turn must be answered by a result before the
///   conversation goes on, as both APIs require (else a 400).
/// * `max_tokens` is OpenAI's `max_completion_tokens` (or else `max_tokens`),
///   or Anthropic's `max_tokens`; `stop` is OpenAI's `stop` (string or array)
///   or Anthropic's `stop_sequences`. `seed`, `logprobs` and `top_logprobs`
///   only exist in the OpenAI API.
/// * `headers` are all request headers, names lower-cased, in arrival order.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedRequest {
    pub api: Api,
    pub model: String,
    pub system: Option<String>,
    pub messages: Vec<(String, String)>,
    pub prefill: Option<String>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub stop: Vec<String>,
    pub seed: Option<u64>,
    pub logprobs: bool,
    pub top_logprobs: Option<u32>,
    /// Names of the tools offered for native tool calling (OpenAI `tools[].function.name`,
    /// Anthropic `tools[].name`).
    pub tools: Vec<String>,
    /// The request body exactly as received.
    pub raw: serde_json::Value,
    pub headers: Vec<(String, String)>,
}

impl ParsedRequest {
    /// Text of the last message whose role is `user` (`""` if there is none).
    pub fn last_user_text(&self) -> &str {
        self.messages
            .iter()
            .rev()
            .find(|(role, _)| role == "user")
            .map(|(_, text)| text.as_str())
            .unwrap_or("")
    }

    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `ParsedRequest` the server would build for `body` sent to `api`'s
    /// endpoint without headers, or the 400 message it would answer with.
    /// Handy for predicting [`default_reply`] in tests.
    pub fn from_body(api: Api, body: serde_json::Value) -> Result<ParsedRequest, String> {
        wire::parse_request(api, body, Vec::new())
    }
}

/// One emitted token with its log-probability and its top alternatives
/// (`(token, logprob)`, most likely first). Serialized into the OpenAI
/// `logprobs.content` array when the request asked for logprobs.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenOut {
    pub token: String,
    pub logprob: f64,
    pub top: Vec<(String, f64)>,
}

/// Why generation stopped. A stop sequence found in the reply text is applied
/// by the server (which then reports `stop` / `stop_sequence`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Natural end: OpenAI `"stop"`, Anthropic `"end_turn"`.
    Stop,
    /// Hit `max_tokens`: OpenAI `"length"`, Anthropic `"max_tokens"`.
    Length,
}

/// What a [`Responder`] returns for one request (one choice).
#[derive(Debug, Clone, PartialEq)]
pub struct MockReply {
    /// The generated text. For an Anthropic prefill this is the continuation
    /// only (the API does not repeat the prefill).
    pub text: String,
    /// Per-token detail, used for OpenAI logprobs when requested. When `None`
    /// and logprobs are requested, the server splits `text` with
    /// [`split_tokens`] and reports each piece with logprob 0.
    pub tokens: Option<Vec<TokenOut>>,
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub finish: Finish,
    /// Native tool calls to make, as `(name, arguments object)`; the server gives
    /// them ids (`call_N` / `toolu_N`) and reports `tool_calls` / `tool_use`.
    pub tool_calls: Vec<(String, serde_json::Value)>,
}

impl MockReply {
    /// A plain reply: `text`, no token detail, `output_tokens` =
    /// `split_tokens(text).len()`, `input_tokens` 0, finish `Stop`.
    pub fn new(text: impl Into<String>) -> MockReply {
        let text = text.into();
        let output_tokens = split_tokens(&text).len() as u32;
        MockReply {
            text,
            tokens: None,
            input_tokens: 0,
            output_tokens,
            finish: Finish::Stop,
            tool_calls: Vec::new(),
        }
    }

    /// Like [`MockReply::new`], with `input_tokens` counted from `req` the
    /// way the default responder does (whitespace words of all messages).
    pub fn for_request(req: &ParsedRequest, text: impl Into<String>) -> MockReply {
        let mut r = MockReply::new(text);
        r.input_tokens = reply::input_token_count(req);
        r
    }
}

/// Produces the reply for a request. Called once per choice (OpenAI `n`),
/// synchronously on the server's runtime, so keep it cheap.
pub type Responder = Arc<dyn Fn(&ParsedRequest) -> MockReply + Send + Sync>;

/// Wraps a closure as a [`Responder`].
pub fn responder<F>(f: F) -> Responder
where
    F: Fn(&ParsedRequest) -> MockReply + Send + Sync + 'static,
{
    Arc::new(f)
}

/// A scripted misbehaviour. Faults wait in a FIFO queue
/// ([`MockServer::push_fault`]); each request to one of the two API endpoints
/// takes the next one (if any) before anything else is checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// HTTP 429 with a `Retry-After` header in seconds (fractional when the
    /// duration is, e.g. `"0.05"`) when `retry_after` is set. Body: OpenAI
    /// `rate_limit_exceeded` / Anthropic `rate_limit_error`.
    RateLimit { retry_after: Option<Duration> },
    /// That HTTP status with an error body in the API's format.
    Status(u16),
    /// Anthropic: HTTP 529 `overloaded_error`. OpenAI: HTTP 503.
    Overloaded,
    /// Sleep this long (on top of the server's latency), then respond normally.
    Delay(Duration),
    /// Read the request, then close the TCP connection abruptly (RST) without
    /// any response.
    Reset,
    /// HTTP 200, `Content-Type: application/json`, and a body that is the
    /// first half of a real response: valid HTTP, invalid JSON.
    MalformedJson,
    /// Never respond; the connection stays open until the client closes it.
    Hang,
}

impl Fault {
    /// The short name stored in [`RecordedRequest::fault`]: `rate_limit`,
    /// `status_500`, `overloaded`, `delay`, `reset`, `malformed_json`, `hang`.
    pub fn label(&self) -> String {
        match self {
            Fault::RateLimit { .. } => "rate_limit".into(),
            Fault::Status(s) => format!("status_{s}"),
            Fault::Overloaded => "overloaded".into(),
            Fault::Delay(_) => "delay".into(),
            Fault::Reset => "reset".into(),
            Fault::MalformedJson => "malformed_json".into(),
            Fault::Hang => "hang".into(),
        }
    }
}

/// One request as the server saw it (recorded at arrival, in arrival order).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    /// Request path without the query string, e.g. `/v1/messages`.
    pub path: String,
    /// All headers, names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body as JSON; `Null` when empty, a JSON string holding the raw
    /// text when it was not valid JSON.
    pub body: serde_json::Value,
    /// [`Fault::label`] of the fault this request consumed, if any.
    pub fault: Option<String>,
    /// The status the server answered (or will answer, after a delay) with;
    /// `0` when no response is sent (`Reset`, `Hang`).
    pub status: u16,
}

impl RecordedRequest {
    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
