//! Shared helpers for the model-layer integration tests: a hub pointed at a loopback
//! mock server, fast retry policies, and request builders.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use shammie_core::{GenerateRequest, Message};
use shammie_models::{
    ApiKey, Model, ModelHub, ModelSpec, OpenOptions, ProviderEnv, ResponseCache, RetryPolicy,
};
use shammie_testkit::MockServer;

pub(crate) const OPENAI_KEY: &str = "sk-test-openai-7Qz3Xv9LpK2mW8rT";
pub(crate) const ANTHROPIC_KEY: &str = "sk-test-ant-4Hn6Jd1SfB5cY0uE";
pub(crate) const COMPAT_KEY: &str = "sk-test-compat-9Gt2Rk7VwP3xA6qM";

/// Retries that cost milliseconds, not seconds.
pub(crate) fn fast_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
    }
}

/// Options whose every provider points at `server`, with keys for all three providers
/// except the OpenAI-compatible one, no cache and fast retries.
pub(crate) fn options(server: &MockServer) -> OpenOptions {
    OpenOptions {
        prices: std::sync::Arc::new(shammie_models::pricing::PriceTable::builtin()),
        env: ProviderEnv {
            anthropic_api_key: Some(ApiKey::new(ANTHROPIC_KEY)),
            anthropic_base_url: Some(server.anthropic_base_url()),
            openai_api_key: Some(ApiKey::new(OPENAI_KEY)),
            openai_base_url: Some(server.openai_base_url()),
            compatible_api_key: None,
        },
        max_connections: 8,
        timeout: Duration::from_secs(5),
        retry: fast_retry(4),
        cache: None,
        local: None,
        budget: None,
        batch: None,
    }
}

pub(crate) fn hub(opts: OpenOptions) -> ModelHub {
    ModelHub::new(opts).expect("hub")
}

pub(crate) fn hub_with_cache(server: &MockServer, cache: Arc<ResponseCache>) -> ModelHub {
    let mut o = options(server);
    o.cache = Some(cache);
    hub(o)
}

/// `openai-compatible:http://127.0.0.1:PORT/v1/<model>`.
pub(crate) fn compat_spec(server: &MockServer, model: &str) -> ModelSpec {
    format!("openai-compatible:{}/{model}", server.openai_base_url())
        .parse()
        .expect("spec")
}

pub(crate) fn spec(s: &str) -> ModelSpec {
    s.parse().expect("spec")
}

pub(crate) fn open(hub: &ModelHub, spec: &ModelSpec) -> Arc<dyn Model> {
    hub.open(spec).expect("open")
}

/// A single-turn request with a yes/no prompt.
pub(crate) fn ask(prompt: &str) -> GenerateRequest {
    GenerateRequest::user(prompt, 16)
}

/// A multi-turn request exercising every field both APIs know.
pub(crate) fn full_request() -> GenerateRequest {
    GenerateRequest {
        system: Some("You are terse.".into()),
        messages: vec![
            Message::user("Is water wet?"),
            Message::assistant("Yes"),
            Message::user("Is fire cold? (A) yes (B) no"),
        ],
        prefill: None,
        max_tokens: 7,
        temperature: Some(0.5),
        top_p: Some(0.9),
        stop: vec!["\n\n".into(), "END".into()],
        seed: Some(42),
        tools: Vec::new(),
        top_logprobs: None,
        continuations: Vec::new(),
        nonce: 3,
        raw: false,
    }
}

/// Largest number of requests that were at the server at once, from the arrival times
/// of requests that each stayed there at least `hold` (the server's latency): `k`
/// arrivals inside a window shorter than `hold` were all there together.
pub(crate) fn peak_from_arrivals(mut arrivals: Vec<Instant>, hold: Duration) -> usize {
    arrivals.sort();
    let mut peak = 0;
    let mut lo = 0;
    for hi in 0..arrivals.len() {
        while arrivals[hi].duration_since(arrivals[lo]) >= hold {
            lo += 1;
        }
        peak = peak.max(hi - lo + 1);
    }
    peak
}
