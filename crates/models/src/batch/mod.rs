//! Provider batch APIs as a model layer (`shammie run … --batch`): Anthropic Message
//! Batches (`batch/anthropic.rs`) and OpenAI Batch (`batch/openai.rs`), at half the price of
//! synchronous calls.
//!
//! **Where it sits.** `Priced → Cached → Batched → provider`: a cache hit never reaches a
//! batch; the retry/limiter layer is for synchronous calls and is not used (the batch
//! API's own HTTP calls retry transient errors with backoff, see `crate::api`). The
//! provider is used only for what it knows: its name, endpoint and capabilities, and the
//! body of a request (so a batched request is byte for byte what a synchronous call would
//! send) and the parsing of an answer.
//!
//! **How a call goes.** [`Model::generate`] puts the request in a queue and waits for its
//! result. One collector per endpoint sends the queue as a batch when it reaches the
//! provider's limit ([`BatchOptions::max_requests`], [`BatchOptions::max_bytes`]) or when
//! no request has arrived for [`BatchOptions::quiet`], then polls the batch with backoff
//! ([`BatchOptions::poll_first`] doubling to [`BatchOptions::poll_max`]), downloads its
//! results, writes **every** successful result into the response cache (so it is kept even
//! if the sample that asked is never recorded) and then answers the waiting callers. A
//! study whose calls depend on each other (a chain of thought, then the answer) so goes
//! stage by stage: the next stage's calls arrive when the previous batch has answered, and
//! are collected into the next batch. Identical requests waiting at once are sent once;
//! the callers after the first get the answer marked `cached` (it was paid once).
//!
//! A request's custom id is its cache key (64 hex digits). A result that failed with a
//! transient kind — expired, overloaded, a 5xx, a rate limit — is submitted again in a
//! later batch, up to [`BatchOptions::max_resubmits`] times; any other error (an invalid
//! request, a canceled batch) fails that call only, so the engine records its sample's
//! failure and goes on. A completion from a batch carries `meta.batch_id`, which
//! [`crate::pricing::Priced`] prices at the batch discount.
//!
//! **Durable.** Pending batches live in the cache database (tables `batches` and
//! `batch_requests`, see [`crate::ResponseCache`]). On open, a batcher loads its
//! endpoint's pending batches; a request whose cache key belongs to one waits for that
//! batch instead of being submitted again — this is how `shammie resume` reconnects — and
//! a batch that ended while no process was running is downloaded when the endpoint is
//! first used. OpenAI: the batch is recorded as `submitting` (with its requests) before
//! the upload, with a local id that also goes into the batch's `metadata`; a `submitting`
//! batch found on open is looked up in the provider's batch list by that id before its
//! requests are sent again. Anthropic batches carry no metadata, so the batch is recorded
//! (in one transaction with its requests) as soon as the provider has answered with its
//! id: **the window that remains** is between the provider's reply to the create call and
//! that commit (a few milliseconds; a process killed exactly then leaves a batch that is
//! paid for but unknown here, and its requests are sent again on resume). Likewise a
//! create call that times out with no answer is not retried (the batch may exist): its
//! calls fail, and for OpenAI the batch is first looked up by its local id.
//!
//! Nothing here prints: batch states go to the [`BatchObserver`] the CLI passes in.

pub(crate) mod anthropic;
pub(crate) mod openai;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;
use shammie_core::{Capabilities, Completion, GenerateRequest};
use tokio::sync::{oneshot, Notify};

use crate::cache::{cache_key, BatchRecord, ResponseCache};
use crate::{Model, ModelError};

/// How batch mode collects, submits and polls.
#[derive(Clone)]
pub struct BatchOptions {
    /// Most requests in one batch (`None`: the provider's limit — Anthropic 100,000,
    /// OpenAI 50,000).
    pub max_requests: Option<usize>,
    /// Most bytes of one batch's requests (`None`: the provider's limit — Anthropic
    /// 256 MB, OpenAI 200 MB).
    pub max_bytes: Option<usize>,
    /// A batch is sent once no new request has arrived for this long.
    pub quiet: Duration,
    /// The wait before a submitted batch is first polled; it doubles after each poll…
    pub poll_first: Duration,
    /// …up to this.
    pub poll_max: Duration,
    /// How often a request whose result failed transiently (expired, overloaded, 5xx) is
    /// submitted again in a later batch.
    pub max_resubmits: u32,
    /// Told every batch state (the CLI's progress display).
    pub observer: Option<Arc<dyn BatchObserver>>,
    /// The time one batch API call (an upload, a poll, a download) may take (`None`: the
    /// model's timeout, at least 10 minutes: files can be large).
    pub timeout: Option<Duration>,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            max_requests: None,
            max_bytes: None,
            quiet: Duration::from_secs(2),
            poll_first: Duration::from_secs(5),
            poll_max: Duration::from_secs(60),
            max_resubmits: 3,
            observer: None,
            timeout: None,
        }
    }
}

impl std::fmt::Debug for BatchOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchOptions")
            .field("max_requests", &self.max_requests)
            .field("max_bytes", &self.max_bytes)
            .field("quiet", &self.quiet)
            .field("poll_first", &self.poll_first)
            .field("poll_max", &self.poll_max)
            .field("max_resubmits", &self.max_resubmits)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// One batch's state, as the provider last reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchEvent {
    /// The model (`provider:model`).
    pub model: String,
    /// The provider's batch id (`msgbatch_…`, `batch_…`); Shammie's local id for a batch
    /// whose submission failed.
    pub batch_id: String,
    /// The provider's word (`in_progress`, `ended`, `validating`, `finalizing`,
    /// `completed`, …), or Shammie's: `submitted`, `unreachable` (a poll failed; polling
    /// goes on), `done` (results in the cache), `failed`.
    pub status: String,
    /// Requests the provider has finished, of `total`.
    pub done: u64,
    pub total: u64,
    /// Of those, requests that did not succeed (errored, expired, canceled).
    pub failed: u64,
    /// The batch is over here: results stored (or the batch failed).
    pub finished: bool,
}

/// Where batch states go; the models crate never prints.
pub trait BatchObserver: Send + Sync {
    fn batch(&self, event: &BatchEvent);
}

/// A batch as a provider reports it when polled.
#[derive(Debug, Clone)]
pub(crate) struct Status {
    pub(crate) status: String,
    pub(crate) ended: bool,
    pub(crate) done: u64,
    pub(crate) total: u64,
    pub(crate) failed: u64,
    /// The whole batch failed (every request gets this error).
    pub(crate) failure: Option<ModelError>,
    /// The provider's batch object (where its results are).
    pub(crate) raw: Value,
}

/// One provider's batch API.
#[async_trait]
pub(crate) trait BatchApi: Send + Sync {
    /// `anthropic` or `openai`.
    fn provider(&self) -> &'static str;
    /// The synchronous provider: name, endpoint, capabilities.
    fn model(&self) -> &dyn Model;
    /// The provider's (requests, bytes) per batch.
    fn limits(&self) -> (usize, usize);
    /// Whether a batch can be found again by its local id (OpenAI metadata).
    fn findable(&self) -> bool;
    /// One request's entry of a batch: `custom_id` and the body a synchronous call sends.
    fn entry(&self, custom_id: &str, req: &GenerateRequest) -> Result<String, ModelError>;
    /// Creates a batch of `entries`; the provider's id.
    async fn submit(&self, local_id: &str, entries: &[String]) -> Result<String, ModelError>;
    /// The provider's id of the batch created with `local_id`, if there is one.
    async fn find(&self, local_id: &str) -> Result<Option<String>, ModelError>;
    async fn poll(&self, provider_id: &str) -> Result<Status, ModelError>;
    /// The results of an ended batch: custom id → answer body or error.
    async fn results(
        &self,
        provider_id: &str,
        status: &Status,
    ) -> Result<Vec<(String, Result<Value, ModelError>)>, ModelError>;
    /// An answer body as the completion a synchronous call of `req` returns.
    fn completion(&self, req: &GenerateRequest, body: &Value) -> Result<Completion, ModelError>;
}

/// Worth submitting again in a later batch.
fn resubmittable(e: &ModelError) -> bool {
    matches!(e, ModelError::Expired(_)) || e.is_retryable()
}

type Reply = oneshot::Sender<Result<Completion, ModelError>>;

/// Each request's answer (cache key, completion or error).
type Answers = Vec<(String, Result<Completion, ModelError>)>;

struct Entry {
    req: GenerateRequest,
    /// The batch entry, built once.
    line: String,
    waiters: Vec<Reply>,
    /// Batches it has been put in.
    submissions: u32,
    since: Instant,
}

/// A batch this process drives: being submitted, or submitted (now or by an earlier
/// process) and polled.
struct InFlight {
    local_id: String,
    provider_id: Option<String>,
    /// (cache key, request) of every request in it.
    requests: Vec<(String, GenerateRequest)>,
    /// The entries to submit; `None` for a batch found in the database.
    lines: Option<Vec<String>>,
}

#[derive(Default)]
struct State {
    /// Every request someone waits for, by cache key.
    entries: HashMap<String, Entry>,
    /// Keys waiting for the next batch, in arrival order.
    queue: VecDeque<String>,
    queued_bytes: usize,
    last_arrival: Option<Instant>,
    /// Keys in a pending batch (submitted here or found in the database) → local id.
    pending: HashMap<String, String>,
    /// Batches found in the database, to drive once a runtime is there.
    loaded: Vec<InFlight>,
    started: bool,
}

/// The queue, collector and pollers of one endpoint, shared by every model opened on it.
pub(crate) struct Batcher {
    api: Arc<dyn BatchApi>,
    cache: Arc<ResponseCache>,
    opts: BatchOptions,
    endpoint: String,
    state: Mutex<State>,
    arrived: Notify,
}

impl Batcher {
    /// A batcher for `api`'s endpoint, with the endpoint's pending batches from the cache
    /// database (driven from the first call on).
    pub(crate) fn new(
        api: Arc<dyn BatchApi>,
        cache: Arc<ResponseCache>,
        opts: BatchOptions,
    ) -> Result<Arc<Batcher>, ModelError> {
        let endpoint = api.model().endpoint().to_string();
        let mut st = State::default();
        for rec in cache.pending_batches(Some(&endpoint))? {
            let mut requests = Vec::new();
            for (key, json) in cache.batch_requests(&rec.id)? {
                match serde_json::from_str::<GenerateRequest>(&json) {
                    Ok(r) => {
                        st.pending.insert(key.clone(), rec.id.clone());
                        requests.push((key, r));
                    }
                    // A request from another version of Shammie: its key will not be
                    // asked for again, so it is left out of this batch's answers.
                    Err(e) => tracing::warn!(batch = rec.id, "unreadable batch request: {e}"),
                }
            }
            st.loaded.push(InFlight {
                local_id: rec.id,
                provider_id: rec.provider_id,
                requests,
                lines: None,
            });
        }
        Ok(Arc::new(Batcher {
            api,
            cache,
            opts,
            endpoint,
            state: Mutex::new(st),
            arrived: Notify::new(),
        }))
    }

    fn limits(&self) -> (usize, usize) {
        let (n, b) = self.api.limits();
        (
            self.opts.max_requests.unwrap_or(n).clamp(1, n),
            self.opts.max_bytes.unwrap_or(b).clamp(1, b),
        )
    }

    fn observe(&self, batch_id: &str, status: &str, counts: (u64, u64, u64), finished: bool) {
        tracing::debug!(batch_id, status, done = counts.0, total = counts.1, "batch");
        if let Some(o) = &self.opts.observer {
            o.batch(&BatchEvent {
                model: self.api.model().name().to_string(),
                batch_id: batch_id.to_string(),
                status: status.to_string(),
                done: counts.0,
                total: counts.1,
                failed: counts.2,
                finished,
            });
        }
    }

    /// Queues `req` (or joins the batch it is already in) and waits for its answer.
    pub(crate) async fn generate(
        self: &Arc<Self>,
        req: &GenerateRequest,
    ) -> Result<Completion, ModelError> {
        let key = cache_key(&self.endpoint, req);
        let (tx, rx) = oneshot::channel();
        {
            let mut st = self.state.lock().unwrap();
            if !st.started {
                st.started = true;
                for b in std::mem::take(&mut st.loaded) {
                    tokio::spawn(self.clone().drive(b));
                }
                tokio::spawn(self.clone().collect());
            }
            if let Some(e) = st.entries.get_mut(&key) {
                e.waiters.push(tx);
            } else {
                // Answered by a batch between the cache layer's look and now.
                if let Some(mut c) = self.cache.get(&key)? {
                    c.meta.from_cache();
                    return Ok(c);
                }
                let line = self.api.entry(&key, req)?;
                let queued = !st.pending.contains_key(&key);
                if queued {
                    st.queue.push_back(key.clone());
                    st.queued_bytes += line.len() + 1;
                    st.last_arrival = Some(Instant::now());
                }
                st.entries.insert(
                    key,
                    Entry {
                        req: req.clone(),
                        line,
                        waiters: vec![tx],
                        submissions: 0,
                        since: Instant::now(),
                    },
                );
                if queued {
                    self.arrived.notify_one();
                }
            }
        }
        rx.await
            .unwrap_or_else(|_| Err(ModelError::Connection("the batch layer stopped".into())))
    }

    /// The collector: sends the queue as a batch when it is full or has been quiet.
    async fn collect(self: Arc<Self>) {
        let (max_n, max_bytes) = self.limits();
        loop {
            let wait = {
                let st = self.state.lock().unwrap();
                match st.last_arrival {
                    _ if st.queue.is_empty() => None,
                    _ if st.queue.len() >= max_n || st.queued_bytes >= max_bytes => {
                        Some(Duration::ZERO)
                    }
                    Some(t) => Some(self.opts.quiet.saturating_sub(t.elapsed())),
                    None => Some(Duration::ZERO),
                }
            };
            match wait {
                None => self.arrived.notified().await,
                Some(d) if !d.is_zero() => {
                    tokio::select! {
                        _ = tokio::time::sleep(d) => {}
                        _ = self.arrived.notified() => {}
                    }
                }
                Some(_) => {
                    let batch = self.take(max_n, max_bytes);
                    if !batch.requests.is_empty() {
                        tokio::spawn(self.clone().drive(batch));
                    }
                }
            }
        }
    }

    /// Takes the next batch off the queue (at least one request, within the limits).
    fn take(&self, max_n: usize, max_bytes: usize) -> InFlight {
        let local_id = format!("sb{:030x}", rand::random::<u128>() >> 8);
        let mut st = self.state.lock().unwrap();
        let mut b = InFlight {
            local_id: local_id.clone(),
            provider_id: None,
            requests: Vec::new(),
            lines: Some(Vec::new()),
        };
        let mut bytes = 0;
        while let Some(key) = st.queue.front().cloned() {
            let Some(e) = st.entries.get(&key) else {
                st.queue.pop_front();
                continue;
            };
            let size = e.line.len() + 1;
            if !b.requests.is_empty() && (b.requests.len() >= max_n || bytes + size > max_bytes) {
                break;
            }
            st.queue.pop_front();
            st.queued_bytes = st.queued_bytes.saturating_sub(size);
            bytes += size;
            let e = st.entries.get_mut(&key).expect("looked up above");
            e.submissions += 1;
            let (req, line) = (e.req.clone(), e.line.clone());
            b.lines.as_mut().expect("a new batch").push(line);
            b.requests.push((key.clone(), req));
            st.pending.insert(key, local_id.clone());
        }
        if st.queue.is_empty() {
            st.last_arrival = None;
        }
        b
    }

    /// Submits (unless submitted already), polls, downloads and stores one batch, then
    /// answers its callers.
    async fn drive(self: Arc<Self>, mut b: InFlight) {
        let outcome = self.run(&mut b).await;
        let finished = b.provider_id.clone().unwrap_or_else(|| b.local_id.clone());
        let n = b.requests.len() as u64;
        match &outcome {
            Ok(r) => {
                let failed = r.iter().filter(|(_, x)| x.is_err()).count() as u64;
                self.observe(&finished, "done", (n, n, failed), true)
            }
            Err(e) => {
                tracing::warn!(batch = finished, "batch failed: {e}");
                self.observe(&finished, "failed", (0, n, n), true)
            }
        }
        self.settle(b, outcome);
    }

    async fn run(&self, b: &mut InFlight) -> Result<Answers, ModelError> {
        let provider_id = match b.provider_id.clone() {
            Some(id) => id,
            None => self.submit(b).await?,
        };
        let status = match self.wait(&provider_id, b.requests.len() as u64).await {
            Ok(s) => s,
            Err(e) => {
                if matches!(e, ModelError::Rejected { status: 404, .. }) {
                    // The provider does not know the batch (any more): forget it.
                    self.cache.forget_batch(&b.local_id)?;
                }
                return Err(e);
            }
        };
        let mut by_id: HashMap<String, Result<Value, ModelError>> = match &status.failure {
            Some(e) => b
                .requests
                .iter()
                .map(|(k, _)| (k.clone(), Err(e.clone())))
                .collect(),
            None => self
                .api
                .results(&provider_id, &status)
                .await?
                .into_iter()
                .collect(),
        };
        let mut out = Vec::with_capacity(b.requests.len());
        let mut store = Vec::new();
        for (key, req) in &b.requests {
            // A request in no result file was not run before the batch stopped.
            let result = by_id.remove(key).unwrap_or_else(|| {
                let why = format!("batch {provider_id} returned no result for this request");
                Err(match status.status.as_str() {
                    "expired" => ModelError::Expired(why),
                    "cancelled" | "canceled" => ModelError::Canceled(why),
                    _ => ModelError::Malformed(why),
                })
            });
            let r = result.and_then(|body| {
                let mut c = self.api.completion(req, &body)?;
                c.meta.batch_id = Some(provider_id.clone());
                c.meta.attempts = 1;
                Ok(c)
            });
            if let Ok(c) = &r {
                store.push((key.clone(), c.clone()));
            }
            out.push((key.clone(), r));
        }
        // Every success is kept before anyone sees it, with the batch marked ended.
        self.cache
            .finish_batch(&b.local_id, &self.endpoint, &store)?;
        Ok(out)
    }

    /// Creates the batch at the provider and records it; its id.
    async fn submit(&self, b: &mut InFlight) -> Result<String, ModelError> {
        let total = (0, b.requests.len() as u64, 0);
        let record = |state: &str, provider_id: Option<String>| BatchRecord {
            id: b.local_id.clone(),
            provider_id,
            provider: self.api.provider().to_string(),
            endpoint: self.endpoint.clone(),
            state: state.to_string(),
            requests: b.requests.len() as u64,
        };
        let requests = || -> Vec<(String, String)> {
            b.requests
                .iter()
                .map(|(k, r)| {
                    (
                        k.clone(),
                        serde_json::to_string(r).expect("requests serialise"),
                    )
                })
                .collect()
        };
        let Some(lines) = b.lines.take() else {
            // A batch recorded as `submitting` by a process that died: did the provider
            // take it?
            if self.api.findable() {
                if let Some(id) = self.api.find(&b.local_id).await? {
                    self.cache.batch_submitted(&b.local_id, &id)?;
                    b.provider_id = Some(id.clone());
                    return Ok(id);
                }
            }
            self.cache.forget_batch(&b.local_id)?;
            return Err(ModelError::Expired(
                "its batch was never created; submitted again".into(),
            ));
        };
        let findable = self.api.findable();
        if findable {
            self.cache
                .begin_batch(&record("submitting", None), &requests())?;
        }
        let created = self.api.submit(&b.local_id, &lines).await;
        let id = match created {
            Ok(id) => id,
            Err(e) => {
                // A create that timed out may have created the batch.
                let ambiguous = matches!(e, ModelError::Timeout(_) | ModelError::Connection(_));
                if findable && ambiguous {
                    if let Ok(Some(id)) = self.api.find(&b.local_id).await {
                        self.cache.batch_submitted(&b.local_id, &id)?;
                        b.provider_id = Some(id.clone());
                        return Ok(id);
                    }
                }
                if findable {
                    self.cache.forget_batch(&b.local_id)?;
                }
                return Err(e);
            }
        };
        if findable {
            self.cache.batch_submitted(&b.local_id, &id)?;
        } else if let Err(e) = self
            .cache
            .begin_batch(&record("submitted", Some(id.clone())), &requests())
        {
            // The batch is paid for: drive it anyway; only a resume could not find it.
            tracing::warn!(batch = id, "could not record the batch: {e}");
        }
        b.provider_id = Some(id.clone());
        self.observe(&id, "submitted", total, false);
        Ok(id)
    }

    /// Polls with backoff until the batch has ended.
    async fn wait(&self, provider_id: &str, total: u64) -> Result<Status, ModelError> {
        let mut wait = self.opts.poll_first.min(self.opts.poll_max);
        loop {
            tokio::time::sleep(wait).await;
            match self.api.poll(provider_id).await {
                Ok(s) => {
                    self.observe(provider_id, &s.status, (s.done, s.total, s.failed), false);
                    if s.ended {
                        return Ok(s);
                    }
                }
                // Still the provider's batch: keep asking (a resume could do no better).
                Err(e) if e.is_retryable() || matches!(e, ModelError::Exhausted { .. }) => {
                    tracing::warn!(batch = provider_id, "polling the batch: {e}");
                    self.observe(provider_id, "unreachable", (0, total, 0), false);
                }
                Err(e) => return Err(e),
            }
            wait = (wait * 2).min(self.opts.poll_max);
        }
    }

    /// Answers the callers of a finished (or failed) batch, and queues again the requests
    /// worth another batch.
    fn settle(&self, b: InFlight, outcome: Result<Answers, ModelError>) {
        let results: Answers = match outcome {
            Ok(r) => r,
            Err(e) => b
                .requests
                .iter()
                .map(|(k, _)| (k.clone(), Err(e.clone())))
                .collect(),
        };
        let mut requeued = false;
        let mut st = self.state.lock().unwrap();
        for (key, result) in results {
            if st.pending.get(&key) == Some(&b.local_id) {
                st.pending.remove(&key);
            }
            let Some(mut entry) = st.entries.remove(&key) else {
                continue;
            };
            match result {
                Ok(c) => {
                    let latency = entry.since.elapsed().as_millis() as u64;
                    for (i, w) in entry.waiters.drain(..).enumerate() {
                        let mut c = c.clone();
                        c.meta.attempts = entry.submissions.max(1);
                        c.meta.latency_ms = latency;
                        // Identical requests were sent once: the others did not pay.
                        c.meta.cached = i > 0;
                        let _ = w.send(Ok(c));
                    }
                }
                Err(e) if resubmittable(&e) && entry.submissions <= self.opts.max_resubmits => {
                    tracing::debug!(key, error = %e, "submitting again");
                    st.queued_bytes += entry.line.len() + 1;
                    st.queue.push_back(key.clone());
                    st.last_arrival = Some(Instant::now());
                    st.entries.insert(key, entry);
                    requeued = true;
                }
                Err(e) => {
                    let e = if resubmittable(&e) && entry.submissions > 1 {
                        ModelError::Exhausted {
                            attempts: entry.submissions,
                            last: Box::new(e),
                        }
                    } else {
                        e
                    };
                    for w in entry.waiters.drain(..) {
                        let _ = w.send(Err(e.clone()));
                    }
                }
            }
        }
        drop(st);
        if requeued {
            self.arrived.notify_one();
        }
    }
}

/// A model whose calls go through its endpoint's [`Batcher`].
pub(crate) struct Batched {
    batcher: Arc<Batcher>,
}

impl Batched {
    pub(crate) fn new(batcher: Arc<Batcher>) -> Self {
        Batched { batcher }
    }
}

#[async_trait]
impl Model for Batched {
    fn name(&self) -> &str {
        self.batcher.api.model().name()
    }
    fn endpoint(&self) -> &str {
        self.batcher.api.model().endpoint()
    }
    fn capabilities(&self) -> Capabilities {
        self.batcher.api.model().capabilities()
    }
    async fn generate(&self, req: &GenerateRequest) -> Result<Completion, ModelError> {
        self.batcher.generate(req).await
    }
}

/// The error of one result, from an API error `type` (both providers use these words)
/// and message.
pub(crate) fn error_of_type(kind: &str, message: String) -> ModelError {
    match kind {
        "overloaded_error" => ModelError::Overloaded {
            status: 529,
            retry_after: None,
            message,
        },
        "rate_limit_error" => ModelError::RateLimited {
            retry_after: None,
            message,
        },
        "api_error" | "server_error" | "timeout_error" => ModelError::Server {
            status: 500,
            retry_after: None,
            message,
        },
        "authentication_error" => ModelError::Auth {
            status: 401,
            message,
        },
        "permission_error" => ModelError::Auth {
            status: 403,
            message,
        },
        "not_found_error" => ModelError::Rejected {
            status: 404,
            message,
        },
        "request_too_large" => ModelError::Rejected {
            status: 413,
            message,
        },
        _ => ModelError::Rejected {
            status: 400,
            message: if kind.is_empty() {
                message
            } else {
                format!("{kind}: {message}")
            },
        },
    }
}

/// The lines of a JSONL body that are not blank, each parsed (errors name the line).
pub(crate) fn jsonl(text: &str, what: &str) -> Result<Vec<Value>, ModelError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| ModelError::Malformed(format!("{what}, line {}: {e}", i + 1)))
        })
        .collect()
}

/// The pending batches of the cache database, for a caller that wants to know (tests,
/// `shammie show`).
pub fn pending(cache: &ResponseCache) -> Result<Vec<BatchRecord>, ModelError> {
    cache.pending_batches(None)
}

#[cfg(test)]
mod tests;

impl crate::ModelHub {
    /// A model whose calls go through its provider's batch API: `Priced → Cached →
    /// (Budgeted at the batch price) → Batched`, one [`Batcher`] per endpoint.
    pub(crate) fn open_batched(
        &self,
        spec: &crate::ModelSpec,
        opts: &BatchOptions,
    ) -> Result<Arc<dyn Model>, ModelError> {
        use crate::Provider;
        let cache = self.opts.cache.clone().ok_or_else(|| {
            ModelError::Config(format!(
                "model `{spec}`: --batch keeps its pending batches in the response cache, \
                 so it cannot run without one (--no-cache)"
            ))
        })?;
        // Uploads and result files can be large: more time than one chat call.
        let timeout = opts
            .timeout
            .unwrap_or_else(|| self.opts.timeout.max(Duration::from_secs(600)));
        let client = crate::http::client(timeout, 4)?;
        let api: Arc<dyn BatchApi> = match spec.provider {
            Provider::Anthropic => Arc::new(anthropic::AnthropicBatches::new(
                client,
                spec,
                &self.opts.env,
                timeout,
                self.opts.retry.clone(),
            )?),
            Provider::OpenAi => Arc::new(openai::OpenAiBatches::new(
                client,
                spec,
                &self.opts.env,
                timeout,
                self.opts.retry.clone(),
            )?),
            Provider::OpenAiCompatible => {
                return Err(ModelError::Config(format!(
                    "model `{spec}`: --batch sends requests through a provider's batch API \
                     (anthropic: Message Batches, openai: Batch); an OpenAI-compatible server \
                     has none. Run it without --batch"
                )))
            }
            Provider::Local => {
                return Err(ModelError::Config(format!(
                    "model `{spec}`: --batch is for API models (anthropic:, openai:); a local \
                     model batches its requests itself. Run it without --batch"
                )))
            }
        };
        let batcher = {
            let mut map = self.batchers.lock().unwrap();
            let endpoint = api.model().endpoint().to_string();
            match map.get(&endpoint) {
                Some(b) => b.clone(),
                None => {
                    let b = Batcher::new(api, cache.clone(), opts.clone())?;
                    map.insert(endpoint, b.clone());
                    b
                }
            }
        };
        let mut model: Arc<dyn Model> = Arc::new(Batched::new(batcher));
        let price = self.opts.prices.price(spec);
        if let Some(budget) = &self.opts.budget {
            budget.check_price(&spec.to_string(), price)?;
            let p = price.expect("checked");
            model = Arc::new(crate::budget::Budgeted::new(
                model,
                budget.clone(),
                p,
                p.batch,
            ));
        }
        let cached: Arc<dyn Model> = Arc::new(crate::Cached::new(model, cache));
        Ok(Arc::new(crate::pricing::Priced::new(cached, price)))
    }
}
