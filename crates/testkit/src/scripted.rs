//! An in-process scripted model: a closure answers each request.
//!
//! For engine-level tests of a study without a server, a binary or substring matching
//! of prompts: the closure sees the whole typed [`GenerateRequest`] (system, messages,
//! prefill, continuations to score) and returns the [`Completion`] a model with a
//! planted effect would. Capabilities are settable, so a test can take a study down its
//! scoring, top-k or sampling path. Stop sequences are applied the way providers apply
//! them (the text is cut before the first one, which is not returned).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use shammie_core::{
    CallMeta, Capabilities, Completion, ContinuationScore, GenerateRequest, StopReason,
    TokenLogprob, TopLogprob, Usage,
};
use shammie_models::{Model, ModelError};

type Answer = dyn Fn(&GenerateRequest) -> Result<Completion, ModelError> + Send + Sync;

/// A [`Model`] whose answers come from a closure.
pub struct ScriptedModel {
    name: String,
    caps: Capabilities,
    answer: Arc<Answer>,
    calls: AtomicU64,
}

/// Every capability on: top-20 logprobs, prefill, stop sequences, system prompt,
/// multi-turn, seeds, continuation scoring, native tool calls.
pub fn all_capabilities() -> Capabilities {
    Capabilities {
        max_top_logprobs: 20,
        prefill: true,
        stop_sequences: true,
        system_prompt: true,
        multi_turn: true,
        seed: true,
        score_continuations: true,
        native_tools: true,
    }
}

impl ScriptedModel {
    /// A model named `scripted:NAME` with every capability, answering with `f`.
    pub fn new<F>(name: &str, f: F) -> Self
    where
        F: Fn(&GenerateRequest) -> Completion + Send + Sync + 'static,
    {
        Self::fallible(name, move |r| Ok(f(r)))
    }

    /// Like [`ScriptedModel::new`], but the closure may fail like a provider.
    pub fn fallible<F>(name: &str, f: F) -> Self
    where
        F: Fn(&GenerateRequest) -> Result<Completion, ModelError> + Send + Sync + 'static,
    {
        Self {
            name: format!("scripted:{name}"),
            caps: all_capabilities(),
            answer: Arc::new(f),
            calls: AtomicU64::new(0),
        }
    }

    /// Replaces the capabilities (e.g. no logprobs, to force a sampling path).
    pub fn with_capabilities(mut self, caps: Capabilities) -> Self {
        self.caps = caps;
        self
    }

    /// Requests answered so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Model for ScriptedModel {
    fn name(&self) -> &str {
        &self.name
    }
    fn endpoint(&self) -> &str {
        &self.name
    }
    fn capabilities(&self) -> Capabilities {
        self.caps
    }
    async fn generate(&self, req: &GenerateRequest) -> Result<Completion, ModelError> {
        if req.is_scoring() && !self.caps.score_continuations {
            return Err(ModelError::Unsupported(format!(
                "{} cannot score continuations",
                self.name
            )));
        }
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut c = (self.answer)(req)?;
        if !req.tools.is_empty() && !self.caps.native_tools {
            return Err(ModelError::Unsupported(format!(
                "{} has no native tool calling",
                self.name
            )));
        }
        if self.caps.stop_sequences {
            if let Some(cut) = req
                .stop
                .iter()
                .filter_map(|s| c.text.find(s.as_str()))
                .min()
            {
                c.text.truncate(cut);
                c.stop_reason = StopReason::StopSequence;
            }
        }
        Ok(c)
    }
}

/// A plain text answer (one output token per whitespace word, at least one).
pub fn text(t: impl Into<String>) -> Completion {
    let text = t.into();
    let n = text.split_whitespace().count().max(1) as u64;
    Completion {
        text,
        logprobs: None,
        continuations: None,
        tool_calls: Vec::new(),
        stop_reason: StopReason::EndTurn,
        usage: Usage {
            input_tokens: 0,
            output_tokens: n,
        },
        meta: CallMeta::default(),
    }
}

/// A one-token answer whose top-k alternatives carry the given probabilities (the
/// first alternative is the token generated). Probabilities need not sum to 1: what is
/// missing is mass on unlisted tokens.
pub fn top_k(alternatives: &[(&str, f64)]) -> Completion {
    let top: Vec<TopLogprob> = alternatives
        .iter()
        .map(|(t, p)| TopLogprob {
            token: t.to_string(),
            logprob: p.ln(),
        })
        .collect();
    let mut c = text(alternatives.first().map(|a| a.0).unwrap_or(""));
    c.logprobs = Some(vec![TokenLogprob {
        token: top.first().map(|t| t.token.clone()).unwrap_or_default(),
        logprob: top.first().map(|t| t.logprob).unwrap_or(0.0),
        top,
    }]);
    c
}

/// Native tool calls (`(name, arguments as JSON)`), with ids `call_1`, `call_2`, … and
/// optional text before them.
pub fn tool_calls(text: &str, calls: &[(&str, serde_json::Value)]) -> Completion {
    let mut c = self::text(text);
    c.tool_calls = calls
        .iter()
        .enumerate()
        .map(|(i, (name, args))| shammie_core::ToolCall {
            id: format!("call_{}", i + 1),
            name: name.to_string(),
            arguments: args.to_string(),
        })
        .collect();
    c.stop_reason = StopReason::ToolUse;
    c
}

/// The answer to a scoring request: log p of each continuation, one token each.
pub fn scores(logprobs: &[f64]) -> Completion {
    let mut c = text("");
    c.usage.output_tokens = 0;
    c.continuations = Some(
        logprobs
            .iter()
            .map(|&l| ContinuationScore {
                logprob: l,
                tokens: 1,
            })
            .collect(),
    );
    c
}
