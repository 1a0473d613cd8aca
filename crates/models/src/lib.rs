//! The model layer: one [`Model`] trait, the API providers behind it, and the layers every
//! call goes through (response cache → retries → adaptive concurrency → provider).
//!
//! What is here: the Anthropic Messages and OpenAI Chat Completions wire formats (the
//! latter also for any OpenAI-compatible server), model specs such as `anthropic:MODEL`,
//! retry with exponential backoff and jitter honouring `Retry-After`, a per-endpoint
//! adaptive limit on requests in flight, and a SQLite response cache keyed by a hash of
//! the canonical request. [`openai_finetune`] is a client for OpenAI's fine-tuning API
//! (upload, create, poll, events, cancel; resumable by job id). [`batch`] sends calls
//! through the providers' batch APIs instead (`--batch`: response cache → batch queue →
//! provider), with its pending batches in the cache database.
//!
//! What is not: no study logic, no printing, no reading of the environment (the CLI
//! passes API keys in through [`ProviderEnv`]). API keys live in [`ApiKey`], whose
//! `Debug` and `Display` never show the key, and are never part of a cache key or an
//! error message.

mod anthropic;
mod api;
pub mod batch;
pub mod budget;
mod cache;
mod completions;
pub mod dry_run;
mod error;
mod http;
pub mod jinja;
mod limiter;
mod openai;
pub mod openai_finetune;
pub mod pricing;
mod replicas;
mod retry;
mod spec;
pub mod template;

use std::sync::Arc;

use async_trait::async_trait;
use shammie_core::{Capabilities, Completion, GenerateRequest};

pub use batch::{BatchEvent, BatchObserver, BatchOptions};
pub use cache::{cache_key, BatchRecord, Cached, ResponseCache};
pub use error::ModelError;
pub use http::ApiKey;
pub use limiter::AdaptiveLimiter;
pub use retry::{Resilient, RetryPolicy};
pub use spec::{ModelSpec, Provider, ProviderEnv, ServerFeatures, TemplateName};

/// A language model that answers generation requests.
///
/// Implementations are cheap to share (`Arc<dyn Model>`) and safe to call from many
/// tasks at once.
#[async_trait]
pub trait Model: Send + Sync {
    /// `provider:model`, safe to log (never contains a secret).
    fn name(&self) -> &str;
    /// Identifies the endpoint for cache keys and limiter sharing: provider kind, base
    /// URL and model. Never contains a secret.
    fn endpoint(&self) -> &str;
    fn capabilities(&self) -> Capabilities;
    async fn generate(&self, req: &GenerateRequest) -> Result<Completion, ModelError>;
    /// The exact text this model reads for `req`, when that is not the request itself: a
    /// local model's prompt after its chat template (recorded in the transcript). API
    /// providers return `None`: the request is what goes on the wire.
    fn rendered_prompt(&self, _req: &GenerateRequest) -> Option<String> {
        None
    }
    /// `req` once per nonce (each a request of its own, `req.nonce` replaced), results in
    /// nonce order: several samples of one prompt. Providers whose API returns `n`
    /// choices per request override it to send one request; the cache serves the nonces
    /// it holds and forwards only the rest. Each nonce's answer is what
    /// [`Model::generate`] with that nonce would give, and is cached under the same key.
    async fn generate_many(
        &self,
        req: &GenerateRequest,
        nonces: &[u64],
    ) -> Vec<Result<Completion, ModelError>> {
        generate_each(self, req, nonces).await
    }
}

/// [`Model::generate_many`] done one request per nonce, all at once.
pub(crate) async fn generate_each<M: Model + ?Sized>(
    model: &M,
    req: &GenerateRequest,
    nonces: &[u64],
) -> Vec<Result<Completion, ModelError>> {
    futures::future::join_all(nonces.iter().map(|&n| {
        let mut r = req.clone();
        r.nonce = n;
        async move { model.generate(&r).await }
    }))
    .await
}

/// Opens `local:` models. Implemented by the local-inference crate and handed in by the
/// CLI, so this crate stays free of candle.
pub trait LocalLoader: Send + Sync {
    fn open(&self, spec: &ModelSpec) -> Result<Arc<dyn Model>, ModelError>;
    /// The chat template of the GGUF `name` (a path, or a name `local:` knows) with its
    /// vocabulary's special tokens: an OpenAI-compatible spec's `template=gguf:NAME`.
    fn chat_template(&self, name: &str) -> Result<Arc<jinja::ChatTemplate>, ModelError> {
        Err(ModelError::Config(format!(
            "template=gguf:{name}: GGUF files cannot be read here"
        )))
    }
}

/// Options for opening models from specs.
#[derive(Clone)]
pub struct OpenOptions {
    pub env: ProviderEnv,
    /// Most requests in flight per endpoint (the adaptive limit never exceeds it).
    pub max_connections: usize,
    pub timeout: std::time::Duration,
    pub retry: RetryPolicy,
    /// `None` disables caching.
    pub cache: Option<Arc<ResponseCache>>,
    /// Opens `local:` specs; `None` makes them a configuration error.
    pub local: Option<Arc<dyn LocalLoader>>,
    /// What calls cost (each completion's `meta.cost_usd`).
    pub prices: Arc<pricing::PriceTable>,
    /// `--max-cost`: a cap on what provider calls may cost, shared by every model opened.
    pub budget: Option<Arc<budget::Budget>>,
    /// `--batch`: API calls go through the providers' batch APIs ([`batch`]); `None`:
    /// synchronous calls.
    pub batch: Option<BatchOptions>,
}

/// Opens models and shares one limiter and one HTTP client per endpoint between them.
pub struct ModelHub {
    opts: OpenOptions,
    client: reqwest::Client,
    limiters: std::sync::Mutex<std::collections::HashMap<String, Arc<AdaptiveLimiter>>>,
    /// One batch queue per endpoint (`--batch`).
    batchers: std::sync::Mutex<std::collections::HashMap<String, Arc<batch::Batcher>>>,
}

impl ModelHub {
    pub fn new(opts: OpenOptions) -> Result<Self, ModelError> {
        let client = http::client(opts.timeout, opts.max_connections)?;
        Ok(Self {
            opts,
            client,
            limiters: Default::default(),
            batchers: Default::default(),
        })
    }

    /// Opens a model from a spec, wrapped in the pricing, cache, retry and concurrency layers.
    pub fn open(&self, spec: &ModelSpec) -> Result<Arc<dyn Model>, ModelError> {
        if let Some(b) = &self.opts.batch {
            return self.open_batched(spec, b);
        }
        let raw = self.provider(spec, &self.opts.env)?;
        let limiter = {
            let mut map = self.limiters.lock().unwrap();
            // A spec with replicas may have that many more in flight (each replica is
            // held to its own limit besides).
            let max = self.opts.max_connections * (1 + spec.replicas.len());
            map.entry(spec.limiter_key(&self.opts.env))
                .or_insert_with(|| Arc::new(AdaptiveLimiter::new(max)))
                .clone()
        };
        let resilient: Arc<dyn Model> =
            Arc::new(Resilient::new(raw, self.opts.retry.clone(), limiter));
        let resilient = self.capped(resilient, spec)?;
        let cached: Arc<dyn Model> = match &self.opts.cache {
            Some(cache) => Arc::new(Cached::new(resilient, cache.clone())),
            None => resilient,
        };
        Ok(Arc::new(pricing::Priced::new(
            cached,
            self.opts.prices.price(spec),
        )))
    }

    /// The provider itself, with no layers.
    fn provider(&self, spec: &ModelSpec, env: &ProviderEnv) -> Result<Arc<dyn Model>, ModelError> {
        Ok(match spec.provider {
            Provider::Anthropic => Arc::new(anthropic::Anthropic::new(
                self.client.clone(),
                spec,
                env,
                self.opts.timeout,
            )?),
            Provider::OpenAi | Provider::OpenAiCompatible => {
                // `template=gguf:FILE`: the GGUF's chat template, read through the local
                // loader (which knows model names and reads GGUF files).
                let gguf = match &spec.features.template {
                    Some(TemplateName::Gguf(file)) => Some(match &self.opts.local {
                        Some(loader) => loader.chat_template(file)?,
                        None => {
                            return Err(ModelError::Config(format!(
                                "model `{spec}`: template=gguf:{file} cannot be read here"
                            )))
                        }
                    }),
                    _ => None,
                };
                Arc::new(
                    openai::OpenAi::new(self.client.clone(), spec, env, self.opts.timeout, gguf)?
                        .with_replica_limiters(self.replica_limiters(spec, env)),
                )
            }
            Provider::Local => match &self.opts.local {
                Some(loader) => loader.open(spec)?,
                None => {
                    return Err(ModelError::Config(format!(
                        "model `{spec}`: local models are not available here"
                    )))
                }
            },
        })
    }

    /// Opens a model for `--dry-run`: priced like [`ModelHub::open`]'s, answering from the
    /// response cache or with an estimate, never sending (so it needs no API key).
    pub fn open_dry(&self, spec: &ModelSpec) -> Result<Arc<dyn Model>, ModelError> {
        let mut env = self.opts.env.clone();
        let unused = || Some(ApiKey::new("dry-run: never sent"));
        env.anthropic_api_key = env.anthropic_api_key.or_else(unused);
        env.openai_api_key = env.openai_api_key.or_else(unused);
        let raw = self.provider(spec, &env)?;
        let dry: Arc<dyn Model> = Arc::new(dry_run::DryRun::new(
            raw,
            self.opts.cache.clone(),
            self.opts.batch.is_some(),
        ));
        Ok(Arc::new(pricing::Priced::new(
            dry,
            self.opts.prices.price(spec),
        )))
    }

    /// One limiter per server of a spec with replicas, shared with every spec naming that
    /// server (keyed as a single-server spec's limiter is); none for a single server.
    fn replica_limiters(&self, spec: &ModelSpec, env: &ProviderEnv) -> Vec<Arc<AdaptiveLimiter>> {
        if spec.replicas.is_empty() {
            return Vec::new();
        }
        let mut map = self.limiters.lock().unwrap();
        spec.replica_limiter_keys(env)
            .into_iter()
            .map(|k| {
                map.entry(k)
                    .or_insert_with(|| Arc::new(AdaptiveLimiter::new(self.opts.max_connections)))
                    .clone()
            })
            .collect()
    }

    /// Under `--max-cost`, provider calls (not cache hits) pass the [`budget::Budgeted`]
    /// layer; local models are free and pass straight through.
    fn capped(&self, m: Arc<dyn Model>, spec: &ModelSpec) -> Result<Arc<dyn Model>, ModelError> {
        let Some(b) = &self.opts.budget else {
            return Ok(m);
        };
        if spec.provider == Provider::Local {
            return Ok(m);
        }
        let price = self.opts.prices.price(spec);
        b.check_price(&spec.to_string(), price)?;
        let price = price.expect("checked");
        Ok(Arc::new(budget::Budgeted::new(m, b.clone(), price, 1.0)))
    }
}
