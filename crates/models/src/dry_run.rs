//! `--dry-run`: a model that sends nothing. It answers from the response cache where the
//! cache already holds the call (free, `meta.cached`), and otherwise with an empty reply
//! whose usage is an estimate of the call: its prompt at [`BYTES_PER_TOKEN`] bytes per
//! token (plus [`TOKENS_PER_MESSAGE`] per message for the chat format's framing), its
//! reply at its full `max_tokens`. A scoring request gets equal scores for its
//! continuations. The [`crate::pricing::Priced`] layer above prices that usage like any
//! other, so the estimate's cost is an upper bound on the replies and a typical figure
//! for the prompts. Under `--batch` the estimated replies count as batched (the batch
//! price).
//!
//! What the estimate cannot know: calls a protocol makes only for some answers (another
//! turn, a retry, a judge called on a refusal) are counted as the protocol goes on an
//! empty reply. The engine's estimate says so next to its numbers.

use std::sync::Arc;

use async_trait::async_trait;
use shammie_core::{Capabilities, Completion, ContinuationScore, GenerateRequest, StopReason};

use crate::budget::request_bytes;
use crate::{cache_key, Model, ModelError, ResponseCache};

/// Bytes per token of a typical English prompt (the usual rule of thumb for BPE
/// vocabularies of 50k–250k tokens).
pub const BYTES_PER_TOKEN: u64 = 4;
/// Tokens a chat format adds around each message (role markers, separators).
pub const TOKENS_PER_MESSAGE: u64 = 4;

/// The estimated prompt tokens of `req`.
pub fn estimated_input_tokens(req: &GenerateRequest) -> u64 {
    let framing =
        (req.messages.len() as u64 + u64::from(req.system.is_some())) * TOKENS_PER_MESSAGE;
    request_bytes(req).div_ceil(BYTES_PER_TOKEN) + framing
}

/// Answers without sending: from the cache, or with an empty estimated reply.
pub struct DryRun {
    /// The provider as it would be opened (its name, endpoint and capabilities; never
    /// called).
    inner: Arc<dyn Model>,
    cache: Option<Arc<ResponseCache>>,
    /// `--batch`: estimated replies are marked as batched, so they are priced as such.
    batch: bool,
}

impl DryRun {
    pub fn new(inner: Arc<dyn Model>, cache: Option<Arc<ResponseCache>>, batch: bool) -> Self {
        DryRun {
            inner,
            cache,
            batch,
        }
    }
}

#[async_trait]
impl Model for DryRun {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn endpoint(&self) -> &str {
        self.inner.endpoint()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn rendered_prompt(&self, req: &GenerateRequest) -> Option<String> {
        self.inner.rendered_prompt(req)
    }
    async fn generate(&self, req: &GenerateRequest) -> Result<Completion, ModelError> {
        if let Some(cache) = &self.cache {
            if let Some(mut c) = cache.get(&cache_key(self.inner.endpoint(), req))? {
                c.meta.from_cache();
                return Ok(c);
            }
        }
        let scoring = req.is_scoring();
        let n = req.continuations.len();
        Ok(Completion {
            text: String::new(),
            logprobs: None,
            continuations: scoring.then(|| {
                vec![
                    ContinuationScore {
                        logprob: -(n as f64).ln(),
                        tokens: 1,
                    };
                    n
                ]
            }),
            tool_calls: Vec::new(),
            stop_reason: if scoring {
                StopReason::EndTurn
            } else {
                StopReason::MaxTokens
            },
            usage: shammie_core::Usage {
                input_tokens: estimated_input_tokens(req),
                output_tokens: if scoring {
                    0
                } else {
                    u64::from(req.max_tokens)
                },
            },
            meta: shammie_core::CallMeta {
                batch_id: self.batch.then(|| "dry-run".to_string()),
                ..Default::default()
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimated_tokens_by_hand() {
        // 40 bytes → 10 tokens, plus 4 for the system prompt and 4 for the one message.
        let mut req = GenerateRequest::user("x".repeat(30), 50);
        req.system = Some("y".repeat(10));
        assert_eq!(estimated_input_tokens(&req), 18);
        // 41 bytes round up.
        req.prefill = Some("(".into());
        assert_eq!(estimated_input_tokens(&req), 19);
    }
}
