//! Shammie's shared vocabulary: the plain data types that flow between crates.
//!
//! What is here: chat messages and generation requests ([`GenerateRequest`]), completions
//! with token log-probabilities ([`Completion`]), model capabilities, dataset samples,
//! the transcript of one sample (model calls, tool calls and notes, in order:
//! [`Event`]), the per-sample record written to the run
//! log ([`SampleRecord`]) and the generic result tables a study's analysis produces
//! ([`Results`]).
//!
//! What is not: no I/O, no async runtime, no HTTP, no candle, no statistics. Every type
//! is `serde`-serialisable because the run log stores them verbatim; changing a field's
//! name or meaning is a run-log schema change (bump [`SCHEMA_VERSION`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of the on-disk run-log schema (run.json, samples.jsonl, results.json).
///
/// 2: a transcript is a list of events (`{"events":[{"type":"call",…},{"type":"tool",…}]}`).
/// 1: a transcript was a list of model calls (`{"calls":[…]}`); still read, as call events.
pub const SCHEMA_VERSION: u32 = 2;

/// The oldest run-log schema this version still reads.
pub const OLDEST_READABLE_SCHEMA: u32 = 1;

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// One chat turn: text, and for native tool calling the calls an assistant turn made or
/// the call a user turn answers (its `content` is then the tool's output).
///
/// Environments can also exchange commands as tagged text in `content` alone, as the
/// papers did; that works with every model, base and local models included.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
    /// Tools the assistant called in this turn (native tool calling).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// This user turn is the result of that tool call (native tool calling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_result: Option<ToolResult>,
}

impl Message {
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_result: None,
        }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_result: None,
        }
    }
    /// The result of tool call `call_id`, as the next user turn.
    pub fn tool_result(
        call_id: impl Into<String>,
        output: impl Into<String>,
        is_error: bool,
    ) -> Self {
        Self {
            role: Role::User,
            content: output.into(),
            tool_calls: Vec::new(),
            tool_result: Some(ToolResult {
                call_id: call_id.into(),
                is_error,
            }),
        }
    }
}

/// A tool a model may call natively: its name, what it does, and a JSON Schema of its
/// arguments (an object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    pub name: String,
    pub description: String,
    pub input_schema: serde_json::Value,
}

/// A native tool call made by a model.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id for the call, echoed by the result.
    pub id: String,
    pub name: String,
    /// The arguments: a JSON object, serialised.
    pub arguments: String,
}

/// Marks a user turn as the result of a native tool call.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ToolResult {
    pub call_id: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_error: bool,
}

/// A provider-neutral generation request.
///
/// `nonce` distinguishes otherwise identical requests (the epoch, the i-th of N samples).
/// It is part of the response-cache key and is never sent to a provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    pub messages: Vec<Message>,
    /// Text the assistant's reply must start with (Anthropic-style prefill). The
    /// completion's `text` holds only what the model added after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill: Option<String>,
    pub max_tokens: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Ask for this many alternatives per generated token (0 or `None`: no logprobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u8>,
    /// Score these continuations instead of generating: the completion's
    /// [`Completion::continuations`] holds log p(continuation | prompt, prefill) for each,
    /// in order, and its `text` is empty. Only models with
    /// [`Capabilities::score_continuations`] accept such a request. Part of the request
    /// (and so of the cache key and the transcript) like every other field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub continuations: Vec<String>,
    /// Tools offered for native tool calling (only to models with
    /// [`Capabilities::native_tools`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolDefinition>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub nonce: u64,
    /// Plain continuation: the prompt is the messages' text as it stands, one after the
    /// other (then the prefill), with no chat format, system prompt or stop of a turn. For
    /// models that read text (local models, `openai-compatible` servers with
    /// `completions=true`); chat APIs refuse it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub raw: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl GenerateRequest {
    /// A single-turn request with a user message and the given token budget.
    pub fn user(content: impl Into<String>, max_tokens: u32) -> Self {
        Self {
            system: None,
            messages: vec![Message::user(content)],
            prefill: None,
            max_tokens,
            temperature: None,
            top_p: None,
            stop: Vec::new(),
            seed: None,
            top_logprobs: None,
            continuations: Vec::new(),
            tools: Vec::new(),
            nonce: 0,
            raw: false,
        }
    }

    /// A request to score `continuations` after this conversation (see
    /// [`GenerateRequest::continuations`]).
    pub fn scoring(mut self, continuations: Vec<String>) -> Self {
        self.continuations = continuations;
        self
    }

    /// Whether this request scores continuations rather than generating.
    /// The prompt of a [`GenerateRequest::raw`] request: the system prompt, the messages'
    /// text and the prefill, as they stand, one after the other.
    pub fn raw_text(&self) -> String {
        let mut s = self.system.clone().unwrap_or_default();
        for m in &self.messages {
            s.push_str(&m.content);
        }
        s.push_str(self.prefill.as_deref().unwrap_or(""));
        s
    }

    pub fn is_scoring(&self) -> bool {
        !self.continuations.is_empty()
    }
}

/// One alternative token at a position, with its natural-log probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopLogprob {
    pub token: String,
    pub logprob: f64,
}

/// One generated token with its log-probability and the top-k alternatives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenLogprob {
    pub token: String,
    pub logprob: f64,
    #[serde(default)]
    pub top: Vec<TopLogprob>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    MaxTokens,
    StopSequence,
    /// The model called tools natively and waits for their results.
    ToolUse,
    Other,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, o: Usage) {
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
    }
}

/// How a completion was obtained (filled in by the model layers, not by providers).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallMeta {
    /// Served from the response cache: no provider call was made.
    #[serde(default)]
    pub cached: bool,
    /// Provider attempts, counting retries (0 when cached).
    #[serde(default)]
    pub attempts: u32,
    /// Wall time of the call in milliseconds, including retries.
    #[serde(default)]
    pub latency_ms: u64,
    /// What the call costs at list price, in US dollars (also when served from the cache:
    /// `cached` says it was not paid); `None` when the model's price is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Local models: seconds spent reading the prompt (the batch step that read it) and
    /// generating after it; `None` for API models and cache hits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_secs: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decode_secs: Option<f64>,
    /// The provider's id of the batch that answered the call (`--batch`: Anthropic
    /// Message Batches, OpenAI Batch); `None` for a synchronous call. A batched call is
    /// priced at the batch discount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
}

impl CallMeta {
    /// Marks a response served from the response cache: no attempt, no time, no timings
    /// of the call that first produced it.
    pub fn from_cache(&mut self) {
        self.cached = true;
        self.attempts = 0;
        self.latency_ms = 0;
        self.prompt_secs = None;
        self.decode_secs = None;
    }
}

/// The score of one continuation in a scoring request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ContinuationScore {
    /// Natural-log probability of the whole continuation (sum over its tokens).
    pub logprob: f64,
    /// How many tokens the continuation was (for per-token normalisation).
    pub tokens: u32,
}

/// A model's answer to a [`GenerateRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    pub text: String,
    /// Per-token log-probabilities, when requested and supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Vec<TokenLogprob>>,
    /// For a scoring request: one score per requested continuation, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuations: Option<Vec<ContinuationScore>>,
    /// Native tool calls the model made (in order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    pub stop_reason: StopReason,
    pub usage: Usage,
    #[serde(default)]
    pub meta: CallMeta,
}

/// What a model can do. Studies choose their protocol (e.g. logprob path versus sampling
/// path) from this, never from the provider's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Most top-k alternatives per token the model returns (0: no logprobs).
    pub max_top_logprobs: u8,
    /// Honours [`GenerateRequest::prefill`].
    pub prefill: bool,
    pub stop_sequences: bool,
    pub system_prompt: bool,
    pub multi_turn: bool,
    /// Honours [`GenerateRequest::seed`] (reproducible sampling).
    pub seed: bool,
    /// Scores given continuations exactly ([`GenerateRequest::continuations`]), e.g. the
    /// log-probability of " yes" and " no" even when neither is in a top-k list.
    #[serde(default)]
    pub score_continuations: bool,
    /// Calls tools natively ([`GenerateRequest::tools`], [`Completion::tool_calls`]).
    #[serde(default)]
    pub native_tools: bool,
}

impl Capabilities {
    pub fn logprobs(&self) -> bool {
        self.max_top_logprobs > 0
    }
}

/// One dataset item. `input` is study-specific JSON; the study deserialises it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Unique within a task; stable across runs (resume depends on it).
    pub id: String,
    /// The unit of the study's dataset this sample belongs to (a question with all its
    /// strategies, a prompt with all its interventions), which `--limit N` counts.
    /// `None`: the sample is a unit of its own. A dataset lists each unit's samples
    /// together (unit-major), so the first N units are a prefix of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    pub input: serde_json::Value,
}

impl Sample {
    /// A sample that is a unit of its own.
    pub fn new(id: impl Into<String>, input: serde_json::Value) -> Self {
        Self {
            id: id.into(),
            unit: None,
            input,
        }
    }
    /// The same sample as one of the samples of `unit`.
    pub fn in_unit(mut self, unit: impl Into<String>) -> Self {
        self.unit = Some(unit.into());
        self
    }
    /// The unit `--limit` counts this sample in (its own id when it has none).
    pub fn unit_key(&self) -> &str {
        self.unit.as_deref().unwrap_or(&self.id)
    }
}

/// What a run's `--limit N` counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitCounts {
    /// Units of the dataset ([`Sample::unit_key`]): every sample of the first N units.
    #[default]
    Units,
    /// The first N samples (how runs made before units existed counted; their run.json
    /// has no `limit_counts`, and resume keeps this meaning for them).
    Samples,
}

/// One model call made while solving a sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// The study role that made the call (`target`, `judge`, …).
    pub role: String,
    /// The protocol step the call belongs to (`cot`, `early k=3`, `judge vote 4`), for
    /// reading transcripts. Not part of the request, so never part of a cache key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The model that answered, as `provider:model` (never a secret).
    pub model: String,
    pub request: GenerateRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Completion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The exact text the model read, where it differs from the request's fields: a local
    /// model's prompt after its chat template or `Human:`/`Assistant:` wrapping (prefill
    /// included). `None` for API providers, whose request is the wire body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendered_prompt: Option<String>,
}

/// One tool execution in an agent episode: what the harness ran for the model and what
/// came back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolRecord {
    /// The tool's name (`bash`, `calc`, …).
    pub name: String,
    /// The arguments as the model gave them (a tag's text is `{"text": "…"}`).
    pub input: serde_json::Value,
    /// What the tool returned (for a shell: the captured output, already capped).
    pub output: String,
    /// The tool's exit status, when it has one (a shell command's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<i32>,
    /// The tool could not run at all (as opposed to running and failing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Wall time of the execution, in milliseconds (of the original execution when replayed).
    #[serde(default)]
    pub duration_ms: u64,
    /// Taken from the run's step journal on resume instead of being executed again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
}

/// A remark the protocol made while solving a sample (a parse failure, a budget hit, a
/// divergence on resume), kept in the transcript where it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteRecord {
    pub text: String,
}

/// One thing that happened while solving a sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
// Most events are calls: boxing them would cost an allocation each for no saving.
#[allow(clippy::large_enum_variant)]
pub enum Event {
    /// A model call (answered or failed).
    Call(CallRecord),
    /// A tool execution requested by a model.
    Tool(ToolRecord),
    Note(NoteRecord),
}

/// Everything that happened while solving one sample, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "TranscriptWire")]
pub struct Transcript {
    pub events: Vec<Event>,
}

/// What a transcript looks like on disk in either schema: version 2 writes `events`;
/// version 1 wrote `calls`, which are read as call events.
#[derive(Deserialize)]
struct TranscriptWire {
    #[serde(default)]
    events: Vec<Event>,
    #[serde(default)]
    calls: Vec<CallRecord>,
}

impl From<TranscriptWire> for Transcript {
    fn from(w: TranscriptWire) -> Self {
        let mut events = w.events;
        events.extend(w.calls.into_iter().map(Event::Call));
        Transcript { events }
    }
}

impl Transcript {
    /// The model calls, in order.
    pub fn calls(&self) -> impl Iterator<Item = &CallRecord> {
        self.events.iter().filter_map(|e| match e {
            Event::Call(c) => Some(c),
            _ => None,
        })
    }
    /// The tool executions, in order.
    pub fn tools(&self) -> impl Iterator<Item = &ToolRecord> {
        self.events.iter().filter_map(|e| match e {
            Event::Tool(t) => Some(t),
            _ => None,
        })
    }
    /// The notes, in order.
    pub fn notes(&self) -> impl Iterator<Item = &str> {
        self.events.iter().filter_map(|e| match e {
            Event::Note(n) => Some(n.text.as_str()),
            _ => None,
        })
    }
    /// Tokens used by calls that reached a provider (cache hits cost nothing).
    pub fn paid_usage(&self) -> Usage {
        let mut u = Usage::default();
        for c in self.calls() {
            if let Some(r) = &c.response {
                if !r.meta.cached {
                    u += r.usage;
                }
            }
        }
        u
    }
    /// Tokens of all answered calls, cached or not.
    pub fn usage(&self) -> Usage {
        let mut u = Usage::default();
        for c in self.calls() {
            if let Some(r) = &c.response {
                u += r.usage;
            }
        }
        u
    }
}

/// Named per-sample scores (study-specific values).
pub type Scores = BTreeMap<String, serde_json::Value>;

/// One finished sample, as written to `samples.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRecord {
    pub id: String,
    pub epoch: u32,
    pub input: serde_json::Value,
    pub transcript: Transcript,
    pub scores: Scores,
    pub usage: Usage,
    /// Set when the sample could not be completed (the run went on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub started_at: String,
    pub duration_ms: u64,
}

/// Below this many units (questions, prompts) an interval is flagged as unreliable: a
/// bootstrap or t interval from 1–4 units says little about the population, however
/// narrow it comes out.
pub const MIN_RELIABLE_N: u64 = 5;

/// The mark rendered after an estimate from fewer than [`MIN_RELIABLE_N`] units.
pub const UNRELIABLE_MARK: &str = "\u{2020}";

/// One cell of a result table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cell {
    /// An estimate with its confidence interval, and the number of units (questions,
    /// prompts, chains: the table's notes say which) it rests on, when known (`None` in
    /// results written before it was recorded).
    Estimate {
        estimate: f64,
        lo: f64,
        hi: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        n: Option<u64>,
    },
    /// `count` of `of` things (`unit`, e.g. questions), rendered `3 of 40 questions`:
    /// both numbers stay numbers in `results.json` and in exports.
    Count {
        count: u64,
        of: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unit: Option<String>,
    },
    Int(i64),
    Float(f64),
    Text(String),
    Empty,
}

/// `v` with `decimals` decimals, never `-0.000` (a negative number that rounds to zero
/// is shown as zero).
pub fn fixed(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => s,
    }
}

impl Cell {
    pub fn text(s: impl Into<String>) -> Self {
        Cell::Text(s.into())
    }
    /// An estimate with its interval and the number of units behind it.
    pub fn estimate(estimate: f64, lo: f64, hi: f64, n: u64) -> Self {
        Cell::Estimate {
            estimate,
            lo,
            hi,
            n: Some(n),
        }
    }
    /// `count` of `of` (`unit` when given, e.g. `questions`).
    pub fn count(count: u64, of: u64, unit: Option<&str>) -> Self {
        Cell::Count {
            count,
            of,
            unit: unit.map(str::to_string),
        }
    }
    /// Whether this is an estimate from fewer than [`MIN_RELIABLE_N`] units.
    pub fn unreliable(&self) -> bool {
        matches!(self, Cell::Estimate { n: Some(n), .. } if *n < MIN_RELIABLE_N)
    }
    /// Human rendering with three decimals: estimates as `0.412 [0.371, 0.455] n=40`,
    /// flagged `n=2†` when from fewer than [`MIN_RELIABLE_N`] units; an empty cell is `—`.
    pub fn render(&self) -> String {
        self.render_with(3)
    }
    /// [`Cell::render`] with `decimals` decimals for estimates and floats.
    pub fn render_with(&self, decimals: usize) -> String {
        match self {
            Cell::Estimate {
                estimate,
                lo,
                hi,
                n,
            } => {
                let mut s = format!(
                    "{} [{}, {}]",
                    fixed(*estimate, decimals),
                    fixed(*lo, decimals),
                    fixed(*hi, decimals)
                );
                if let Some(n) = n {
                    s.push_str(&format!(" n={n}"));
                    if *n < MIN_RELIABLE_N {
                        s.push_str(UNRELIABLE_MARK);
                    }
                }
                s
            }
            Cell::Count { count, of, unit } => match unit {
                Some(u) => format!("{count} of {of} {u}"),
                None => format!("{count} of {of}"),
            },
            Cell::Int(i) => i.to_string(),
            Cell::Float(f) => fixed(*f, decimals),
            Cell::Text(s) => s.clone(),
            Cell::Empty => "\u{2014}".into(),
        }
    }
}

/// A titled table of results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub name: String,
    pub title: String,
    /// What the numbers come from: models, n, seed, date (filled in by the engine from
    /// the run; empty in results written before it was recorded).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub caption: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    /// How to read the table: intervals, definitions, caveats.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Decimals of estimates and floats (3 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decimals: Option<usize>,
}

impl Table {
    /// A table with no caption and the default decimals.
    pub fn new(
        name: impl Into<String>,
        title: impl Into<String>,
        columns: Vec<String>,
        rows: Vec<Vec<Cell>>,
        notes: Vec<String>,
    ) -> Self {
        Table {
            name: name.into(),
            title: title.into(),
            caption: String::new(),
            columns,
            rows,
            notes,
            decimals: None,
        }
    }
    /// Whether some estimate in the table rests on fewer than [`MIN_RELIABLE_N`] units.
    pub fn has_unreliable(&self) -> bool {
        self.rows.iter().flatten().any(Cell::unreliable)
    }
    /// Whether some cell is empty (rendered `—`).
    pub fn has_empty(&self) -> bool {
        self.rows.iter().flatten().any(|c| matches!(c, Cell::Empty))
    }
}

/// What an analysis is told about its run, for captions and figure subtitles.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// The run's seed (bootstrap resampling and every other random choice).
    pub seed: u64,
    /// Role → model spec.
    #[serde(default)]
    pub models: BTreeMap<String, String>,
    /// The day the run was created, `YYYY-MM-DD` (empty when unknown).
    #[serde(default)]
    pub date: String,
    #[serde(default)]
    pub epochs: u32,
}

impl RunInfo {
    /// A run described by its seed alone (offline analyses, tests).
    pub fn seed(seed: u64) -> Self {
        RunInfo {
            seed,
            epochs: 1,
            ..Default::default()
        }
    }
    /// The models: `target model` alone when only one role, else `role=model, …`.
    pub fn models_text(&self) -> String {
        let specs: std::collections::BTreeSet<&String> = self.models.values().collect();
        match specs.len() {
            0 => return String::new(),
            1 => {
                return format!(
                    "model {}",
                    specs.into_iter().next().unwrap_or(&String::new())
                )
            }
            _ => {}
        }
        let parts: Vec<String> = self
            .models
            .iter()
            .map(|(r, m)| format!("{r}={m}"))
            .collect();
        format!("models {}", parts.join(", "))
    }
    /// One line: `model M · n N · seed S · date D` (`n` as the caller words it, e.g.
    /// `40 questions`; parts that are unknown are left out).
    pub fn caption(&self, n: &str) -> String {
        let mut parts = Vec::new();
        let m = self.models_text();
        if !m.is_empty() {
            parts.push(m);
        }
        if !n.is_empty() {
            parts.push(format!("n {n}"));
        }
        if self.epochs > 1 {
            parts.push(format!("{} epochs", self.epochs));
        }
        parts.push(format!("seed {}", self.seed));
        if !self.date.is_empty() {
            parts.push(self.date.clone());
        }
        parts.join(" \u{b7} ")
    }
}

/// A study's analysis output, written to `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub schema_version: u32,
    pub study: String,
    pub task: String,
    pub tables: Vec<Table>,
    /// Report files (figures, generated datasets) the analysis wrote into the run
    /// directory, paths relative to it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<ReportFileEntry>,
    /// Counts every study reports: samples, failed samples, calls, cache hits, tokens.
    pub totals: Totals,
}

/// A file an analysis wrote into the run directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportFileEntry {
    /// Relative to the run directory, `/`-separated (e.g. `report/scores.svg`).
    pub path: String,
    pub description: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub samples: u64,
    pub failed: u64,
    pub calls: u64,
    pub cached_calls: u64,
    pub usage: Usage,
    pub paid_usage: Usage,
    /// What every call cost at list price (US dollars), cache hits included.
    #[serde(default)]
    pub cost_usd: f64,
    /// What was paid: calls not served from the cache.
    #[serde(default)]
    pub paid_cost_usd: f64,
    /// Calls whose model has no known price (left out of both costs).
    #[serde(default)]
    pub unpriced_calls: u64,
    /// Calls paid through a provider batch API (`--batch`; not from the cache).
    #[serde(default)]
    pub batch_calls: u64,
    /// What those cost, at the batch price (part of `paid_cost_usd`).
    #[serde(default)]
    pub batch_cost_usd: f64,
}

impl Totals {
    pub fn add(&mut self, r: &SampleRecord) {
        self.samples += 1;
        if r.error.is_some() {
            self.failed += 1;
        }
        for c in r.transcript.calls() {
            self.calls += 1;
            let Some(resp) = c.response.as_ref() else {
                continue;
            };
            if resp.meta.cached {
                self.cached_calls += 1;
            }
            let batch = resp.meta.batch_id.is_some() && !resp.meta.cached;
            if batch {
                self.batch_calls += 1;
            }
            match resp.meta.cost_usd {
                Some(cost) => {
                    self.cost_usd += cost;
                    if !resp.meta.cached {
                        self.paid_cost_usd += cost;
                    }
                    if batch {
                        self.batch_cost_usd += cost;
                    }
                }
                None => self.unpriced_calls += 1,
            }
        }
        self.usage += r.transcript.usage();
        self.paid_usage += r.transcript.paid_usage();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips_and_omits_defaults() {
        let r = GenerateRequest::user("hi", 5);
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(
            j,
            r#"{"messages":[{"role":"user","content":"hi"}],"max_tokens":5}"#
        );
        let back: GenerateRequest = serde_json::from_str(&j).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn cells_render_and_parse_untagged() {
        let c = Cell::Estimate {
            estimate: 0.5,
            lo: 0.25,
            hi: 0.75,
            n: None,
        };
        assert_eq!(c.render(), "0.500 [0.250, 0.750]");
        // Results written before n was recorded still read, as n unknown.
        let old: Cell = serde_json::from_str(r#"{"estimate":0.5,"lo":0.25,"hi":0.75}"#).unwrap();
        assert_eq!(old, c);
        let c2 = Cell::estimate(0.5, 0.25, 0.75, 40);
        assert_eq!(c2.render(), "0.500 [0.250, 0.750] n=40");
        assert!(!c2.unreliable());
        let j2 = serde_json::to_value(&c2).unwrap();
        assert_eq!(serde_json::from_value::<Cell>(j2).unwrap(), c2);
        let j = serde_json::to_value(&c).unwrap();
        assert_eq!(serde_json::from_value::<Cell>(j).unwrap(), c);
        let i: Cell = serde_json::from_str("3").unwrap();
        assert_eq!(i, Cell::Int(3));
    }

    #[test]
    fn small_n_is_flagged_and_negative_zero_is_zero() {
        // 2 questions: flagged; 5: not (the threshold is MIN_RELIABLE_N = 5).
        let c = Cell::estimate(0.9412, 0.9401, 0.9423, 2);
        assert_eq!(c.render(), "0.941 [0.940, 0.942] n=2\u{2020}");
        assert!(c.unreliable());
        assert!(!Cell::estimate(1.0, 1.0, 1.0, 5).unreliable());
        assert_eq!(Cell::Float(-0.0001).render(), "0.000");
        assert_eq!(Cell::Float(-0.0006).render(), "-0.001");
        assert_eq!(
            Cell::estimate(-0.0002, -0.01, 0.0004, 9).render_with(1),
            "0.0 [0.0, 0.0] n=9"
        );
        assert_eq!(fixed(-0.0, 2), "0.00");
    }

    #[test]
    fn run_info_captions() {
        let mut r = RunInfo::seed(7);
        assert_eq!(r.caption("3 questions"), "n 3 questions \u{b7} seed 7");
        r.models
            .insert("target".into(), "local:gemma-3-270m".into());
        r.date = "2025-01-02".into();
        assert_eq!(
            r.caption("3 questions"),
            "model local:gemma-3-270m \u{b7} n 3 questions \u{b7} seed 7 \u{b7} 2025-01-02"
        );
        r.models.insert("helper".into(), "openai:x".into());
        assert_eq!(
            r.models_text(),
            "models helper=openai:x, target=local:gemma-3-270m"
        );
    }

    #[test]
    fn paid_usage_excludes_cache_hits() {
        let mk = |cached, n| CallRecord {
            role: "target".into(),
            label: None,
            model: "m".into(),
            request: GenerateRequest::user("x", 1),
            response: Some(Completion {
                text: String::new(),
                logprobs: None,
                continuations: None,
                tool_calls: Vec::new(),
                stop_reason: StopReason::EndTurn,
                usage: Usage {
                    input_tokens: n,
                    output_tokens: 1,
                },
                meta: CallMeta {
                    cached,
                    ..Default::default()
                },
            }),
            error: None,
            rendered_prompt: None,
        };
        let t = Transcript {
            events: vec![Event::Call(mk(true, 10)), Event::Call(mk(false, 3))],
        };
        assert_eq!(t.usage().input_tokens, 13);
        assert_eq!(t.paid_usage().input_tokens, 3);
    }

    #[test]
    fn transcripts_are_tagged_events_and_schema_1_calls_still_read() {
        let call = CallRecord {
            role: "target".into(),
            label: None,
            model: "m".into(),
            request: GenerateRequest::user("x", 1),
            response: None,
            error: Some("boom".into()),
            rendered_prompt: None,
        };
        let tool = ToolRecord {
            name: "bash".into(),
            input: serde_json::json!({"text": "ls"}),
            output: "a\n".into(),
            exit_status: Some(0),
            error: None,
            duration_ms: 3,
            replayed: false,
        };
        let t = Transcript {
            events: vec![
                Event::Call(call.clone()),
                Event::Tool(tool.clone()),
                Event::Note(NoteRecord { text: "n".into() }),
            ],
        };
        let j = serde_json::to_value(&t).unwrap();
        assert_eq!(j["events"][0]["type"], "call");
        assert_eq!(j["events"][0]["role"], "target");
        assert_eq!(j["events"][1]["type"], "tool");
        assert_eq!(j["events"][1]["exit_status"], 0);
        assert!(j["events"][1].get("replayed").is_none());
        assert_eq!(
            j["events"][2],
            serde_json::json!({"type": "note", "text": "n"})
        );
        assert_eq!(serde_json::from_value::<Transcript>(j).unwrap(), t);
        // Schema 1: {"calls": [...]}.
        let v1 = serde_json::json!({"calls": [serde_json::to_value(&call).unwrap()]});
        let back: Transcript = serde_json::from_value(v1).unwrap();
        assert_eq!(back.events, vec![Event::Call(call)]);
        assert_eq!(back.tools().count(), 0);
    }
}
