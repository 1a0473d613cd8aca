//! Retries with exponential backoff and jitter, under the endpoint's adaptive limit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rand::Rng;
use shammie_core::{Capabilities, Completion, GenerateRequest};

use crate::{AdaptiveLimiter, Model, ModelError};

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total attempts per call, the first included.
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (attempt counts from 1). A server's
    /// `Retry-After` wins over the backoff (plus up to 10% jitter so waiters spread out);
    /// otherwise "equal jitter": half the exponential delay plus a random part of the other half.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let mut rng = rand::thread_rng();
        if let Some(ra) = retry_after {
            return ra + ra.mul_f64(rng.gen_range(0.0..0.1));
        }
        let exp = self
            .base_delay
            .saturating_mul(1u32 << (attempt - 1).min(20))
            .min(self.max_delay);
        exp / 2 + exp.mul_f64(rng.gen_range(0.0..0.5))
    }
}

/// Wraps a provider: takes a slot from the endpoint's limiter for each attempt, retries
/// retryable failures, and fills in [`shammie_core::CallMeta`].
pub struct Resilient {
    inner: Arc<dyn Model>,
    policy: RetryPolicy,
    limiter: Arc<AdaptiveLimiter>,
}

impl Resilient {
    pub fn new(inner: Arc<dyn Model>, policy: RetryPolicy, limiter: Arc<AdaptiveLimiter>) -> Self {
        Self {
            inner,
            policy,
            limiter,
        }
    }
}

#[async_trait]
impl Model for Resilient {
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
        let start = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = {
                let _permit = self.limiter.acquire().await;
                self.inner.generate(req).await
            };
            match result {
                Ok(mut c) => {
                    self.limiter.on_success();
                    c.meta.attempts = attempt;
                    c.meta.latency_ms = start.elapsed().as_millis() as u64;
                    return Ok(c);
                }
                Err(e) if e.is_retryable() && attempt < self.policy.max_attempts => {
                    if e.is_backpressure() {
                        self.limiter.on_backpressure();
                    }
                    let wait = self.policy.delay(attempt, e.retry_after());
                    tracing::debug!(model = self.inner.name(), attempt, ?wait, error = %e, "retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(e) if e.is_retryable() => {
                    return Err(ModelError::Exhausted {
                        attempts: attempt,
                        last: Box::new(e),
                    })
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Like `generate`, for the nonces of one request sent together: each attempt takes
    /// one slot and asks the provider for the nonces still unanswered; retryable failures
    /// are tried again (with the same backoff), the others are final.
    async fn generate_many(
        &self,
        req: &GenerateRequest,
        nonces: &[u64],
    ) -> Vec<Result<Completion, ModelError>> {
        let start = Instant::now();
        let mut out: Vec<Option<Result<Completion, ModelError>>> = vec![None; nonces.len()];
        let mut pending: Vec<usize> = (0..nonces.len()).collect();
        let mut attempt = 0;
        while !pending.is_empty() {
            attempt += 1;
            let ns: Vec<u64> = pending.iter().map(|&i| nonces[i]).collect();
            let results = {
                let _permit = self.limiter.acquire().await;
                self.inner.generate_many(req, &ns).await
            };
            let mut retry = Vec::new();
            let mut wait = None;
            for (&i, r) in pending.iter().zip(results) {
                match r {
                    Ok(mut c) => {
                        self.limiter.on_success();
                        c.meta.attempts = attempt;
                        c.meta.latency_ms = start.elapsed().as_millis() as u64;
                        out[i] = Some(Ok(c));
                    }
                    Err(e) if e.is_retryable() && attempt < self.policy.max_attempts => {
                        if e.is_backpressure() {
                            self.limiter.on_backpressure();
                        }
                        wait = wait.or(Some(self.policy.delay(attempt, e.retry_after())));
                        retry.push(i);
                    }
                    Err(e) if e.is_retryable() => {
                        out[i] = Some(Err(ModelError::Exhausted {
                            attempts: attempt,
                            last: Box::new(e),
                        }))
                    }
                    Err(e) => out[i] = Some(Err(e)),
                }
            }
            pending = retry;
            if let Some(wait) = wait {
                tracing::debug!(
                    model = self.inner.name(),
                    attempt,
                    ?wait,
                    left = pending.len(),
                    "retrying"
                );
                tokio::time::sleep(wait).await;
            }
        }
        out.into_iter()
            .map(|o| o.expect("every nonce answered"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for _ in 0..50 {
            let d1 = p.delay(1, None);
            assert!(
                d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100),
                "{d1:?}"
            );
            let d3 = p.delay(3, None);
            assert!(
                d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400),
                "{d3:?}"
            );
            let d9 = p.delay(9, None);
            assert!(d9 <= Duration::from_secs(1), "{d9:?}");
        }
    }

    #[test]
    fn retry_after_wins() {
        let p = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_secs(60),
        };
        let d = p.delay(1, Some(Duration::from_secs(2)));
        assert!(
            d >= Duration::from_secs(2) && d <= Duration::from_millis(2200),
            "{d:?}"
        );
    }
}
