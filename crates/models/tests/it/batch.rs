//! Batch mode (`OpenOptions::batch`) against the mock's batch APIs, for both wire
//! formats: the batched bodies are the synchronous ones, the answers are the same,
//! everything is in the cache before a caller sees it, pending batches are found again
//! by a new hub (a resumed process), and expiry, per-request errors and failed batches go
//! where they should. The mock counts what was submitted, so a resubmission shows.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use serde_json::Value;
use shammie_core::{Completion, GenerateRequest, Message};
use shammie_models::{
    BatchEvent, BatchObserver, BatchOptions, Model, ModelError, ModelHub, ModelSpec, Provider,
    ResponseCache,
};
use shammie_testkit::{BatchOutcome, Fault, MockServer};

const SPECS: [&str; 2] = ["anthropic:claude-test", "openai:gpt-test"];

fn batch_options() -> BatchOptions {
    BatchOptions {
        quiet: Duration::from_millis(40),
        poll_first: Duration::from_millis(5),
        poll_max: Duration::from_millis(20),
        timeout: Some(Duration::from_secs(5)),
        ..Default::default()
    }
}

fn batch_hub(server: &MockServer, cache: Arc<ResponseCache>, b: BatchOptions) -> ModelHub {
    let mut o = options(server);
    o.cache = Some(cache);
    o.batch = Some(b);
    hub(o)
}

fn cache_in(dir: &tempfile::TempDir) -> Arc<ResponseCache> {
    Arc::new(ResponseCache::open(&dir.path().join("c.sqlite")).unwrap())
}

/// Requests exercising system prompts, turns, stops and sampling parameters, distinct
/// by their last question.
fn requests(s: &ModelSpec, n: usize) -> Vec<GenerateRequest> {
    (0..n)
        .map(|i| {
            let mut r = full_request();
            r.messages[2] = Message::user(format!("Question {i}: is it so? (A) yes (B) no"));
            if s.provider == Provider::Anthropic {
                // Greedy: the mock samples at random at a temperature without a seed.
                r.seed = None;
                r.temperature = None;
                if i % 2 == 0 {
                    r.prefill = Some("The answer is (".into());
                }
            } else {
                r.top_logprobs = Some(3);
            }
            r
        })
        .collect()
}

/// Sends all of `reqs` at once through `model`.
async fn all(
    model: &Arc<dyn Model>,
    reqs: &[GenerateRequest],
) -> Vec<Result<Completion, ModelError>> {
    let futs = reqs.iter().map(|r| {
        let m = model.clone();
        let r = r.clone();
        async move { m.generate(&r).await }
    });
    futures::future::join_all(futs).await
}

fn same_answer(a: &Completion, b: &Completion) {
    assert_eq!(a.text, b.text);
    assert_eq!(a.logprobs, b.logprobs);
    assert_eq!(a.stop_reason, b.stop_reason);
    assert_eq!(a.usage, b.usage);
    assert_eq!(a.tool_calls, b.tool_calls);
}

/// The params of every request the mock received in a batch, in order.
fn batched_bodies(server: &MockServer, provider: Provider) -> Vec<Value> {
    match provider {
        Provider::Anthropic => server
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path == "/v1/messages/batches")
            .flat_map(|r| {
                r.body["requests"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["params"].clone())
                    .collect::<Vec<_>>()
            })
            .collect(),
        _ => server
            .uploaded_files()
            .iter()
            .filter(|f| f.purpose == "batch")
            .flat_map(|f| {
                String::from_utf8(f.bytes.clone())
                    .unwrap()
                    .lines()
                    .map(|l| serde_json::from_str::<Value>(l).unwrap()["body"].clone())
                    .collect::<Vec<_>>()
            })
            .collect(),
    }
}

#[tokio::test]
async fn batched_calls_send_the_synchronous_bodies_and_get_the_same_answers() {
    for s in SPECS {
        let spec = spec(s);
        let server = MockServer::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let reqs = requests(&spec, 6);

        let sync = open(&hub(options(&server)), &spec);
        let sync_answers: Vec<Completion> = all(&sync, &reqs)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let sync_path = match spec.provider {
            Provider::Anthropic => "/v1/messages",
            _ => "/v1/chat/completions",
        };
        let mut sync_bodies: Vec<String> = server
            .requests()
            .iter()
            .filter(|r| r.path == sync_path)
            .map(|r| r.body.to_string())
            .collect();
        server.clear_requests();

        let cache = cache_in(&dir);
        let model = open(&batch_hub(&server, cache.clone(), batch_options()), &spec);
        let answers: Vec<Completion> = all(&model, &reqs)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();

        // One batch with every request, each body byte for byte the synchronous one.
        assert_eq!(server.batch_sizes(), vec![6], "{s}");
        let mut bodies: Vec<String> = batched_bodies(&server, spec.provider)
            .iter()
            .map(Value::to_string)
            .collect();
        sync_bodies.sort();
        bodies.sort();
        assert_eq!(bodies, sync_bodies, "{s}");
        assert!(
            !server.requests().iter().any(|r| r.path == sync_path),
            "{s}: a batched call went synchronously"
        );
        // The custom ids are the cache keys.
        let keys: Vec<String> = reqs
            .iter()
            .map(|r| shammie_models::cache_key(model.endpoint(), r))
            .collect();
        let mut ids = server.batch_custom_ids();
        ids.sort();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(ids, sorted);

        for (a, b) in answers.iter().zip(&sync_answers) {
            same_answer(a, b);
            let id = a.meta.batch_id.as_deref().unwrap();
            assert!(
                id.starts_with("msgbatch_mock") || id.starts_with("batch_mock"),
                "{id}"
            );
            assert!(!a.meta.cached);
            // At the batch price: half the list price of the mock's usage.
            let list = shammie_models::pricing::PriceTable::builtin().price(&spec);
            if let Some(p) = list {
                assert!((a.meta.cost_usd.unwrap() - p.cost(&a.usage) * p.batch).abs() < 1e-15);
            }
        }
        // Everything is in the cache, and nothing is pending.
        assert_eq!(cache.len().unwrap(), 6);
        assert!(shammie_models::batch::pending(&cache).unwrap().is_empty());
        // Asked again: from the cache, no new batch.
        let again = all(&model, &reqs).await;
        assert!(again.iter().all(|r| r.as_ref().unwrap().meta.cached));
        assert_eq!(server.batches_created(), 1);
    }
}

#[derive(Default)]
struct Events(Mutex<Vec<BatchEvent>>);

impl BatchObserver for Events {
    fn batch(&self, e: &BatchEvent) {
        self.0.lock().unwrap().push(e.clone());
    }
}

#[tokio::test]
async fn dependent_calls_go_stage_by_stage_and_the_observer_sees_every_batch() {
    for s in SPECS {
        let spec = spec(s);
        let server = MockServer::start().await.unwrap();
        server.set_batch_polls(2);
        let dir = tempfile::tempdir().unwrap();
        let events = Arc::new(Events::default());
        let mut b = batch_options();
        b.observer = Some(events.clone());
        let model = open(&batch_hub(&server, cache_in(&dir), b), &spec);
        // Five "samples", each a first call and then a second that quotes its answer.
        let futs = (0..5).map(|i| {
            let m = model.clone();
            async move {
                let first = m
                    .generate(&ask(&format!("Step one of {i}?")))
                    .await
                    .unwrap();
                let second = m
                    .generate(&ask(&format!(
                        "You said {:?}; step two of {i}?",
                        first.text
                    )))
                    .await
                    .unwrap();
                (first, second)
            }
        });
        let done = futures::future::join_all(futs).await;
        assert_eq!(server.batch_sizes(), vec![5, 5], "{s}: one batch per stage");
        let firsts: Vec<&str> = done
            .iter()
            .map(|(a, _)| a.meta.batch_id.as_deref().unwrap())
            .collect();
        let seconds: Vec<&str> = done
            .iter()
            .map(|(_, b)| b.meta.batch_id.as_deref().unwrap())
            .collect();
        assert!(firsts.iter().all(|id| *id == firsts[0]));
        assert!(seconds.iter().all(|id| *id == seconds[0]));
        assert_ne!(firsts[0], seconds[0]);
        let ev = events.0.lock().unwrap();
        for id in [firsts[0], seconds[0]] {
            let of: Vec<&BatchEvent> = ev.iter().filter(|e| e.batch_id == id).collect();
            assert!(
                of.iter().any(|e| e.status == "submitted" && e.total == 5),
                "{ev:?}"
            );
            assert!(
                of.iter().any(|e| !e.finished && e.done < 5),
                "{s}: polled in progress"
            );
            let last = of.last().unwrap();
            assert!(last.finished && last.status == "done" && last.done == 5 && last.failed == 0);
        }
    }
}

#[tokio::test]
async fn identical_requests_in_flight_are_sent_once() {
    let server = MockServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let model = open(
        &batch_hub(&server, cache_in(&dir), batch_options()),
        &spec("openai:gpt-test"),
    );
    let r = ask("Once?");
    let out = all(&model, &[r.clone(), r.clone(), r]).await;
    assert_eq!(server.batch_requests_submitted(), 1);
    let cached: Vec<bool> = out
        .iter()
        .map(|c| c.as_ref().unwrap().meta.cached)
        .collect();
    assert_eq!(
        cached.iter().filter(|c| !**c).count(),
        1,
        "paid once: {cached:?}"
    );
}

#[tokio::test]
async fn the_batch_limit_splits_the_queue() {
    let server = MockServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut b = batch_options();
    b.max_requests = Some(3);
    let model = open(
        &batch_hub(&server, cache_in(&dir), b),
        &spec("anthropic:claude-test"),
    );
    let reqs: Vec<GenerateRequest> = (0..7).map(|i| ask(&format!("Item {i}?"))).collect();
    assert!(all(&model, &reqs).await.iter().all(Result::is_ok));
    let sizes = server.batch_sizes();
    assert_eq!(sizes.iter().sum::<usize>(), 7, "{sizes:?}");
    assert!(sizes.iter().all(|&n| n <= 3), "{sizes:?}");
    assert_eq!(sizes.len(), 3, "{sizes:?}");
}

#[tokio::test]
async fn expired_and_overloaded_requests_are_resubmitted_and_invalid_ones_fail_alone() {
    for s in SPECS {
        let spec = spec(s);
        let server = MockServer::start().await.unwrap();
        server.set_batch_outcome(Arc::new(|r, before| {
            let q = r.last_user_text();
            if q.contains("expire") && before == 0 {
                BatchOutcome::Expire
            } else if q.contains("busy") && before == 0 {
                BatchOutcome::Error {
                    status: 529,
                    message: "Overloaded".into(),
                }
            } else if q.contains("never") {
                BatchOutcome::Expire
            } else if q.contains("bad") {
                BatchOutcome::Error {
                    status: 400,
                    message: "bad request (mock)".into(),
                }
            } else {
                BatchOutcome::Succeed
            }
        }));
        let dir = tempfile::tempdir().unwrap();
        let cache = cache_in(&dir);
        let mut b = batch_options();
        b.max_resubmits = 2;
        let model = open(&batch_hub(&server, cache.clone(), b), &spec);
        let names = ["fine", "expire", "busy", "bad", "never"];
        let reqs: Vec<GenerateRequest> = names.iter().map(|n| ask(&format!("{n}?"))).collect();
        let out = all(&model, &reqs).await;
        let by = |n: &str| &out[names.iter().position(|x| *x == n).unwrap()];
        assert!(by("fine").as_ref().unwrap().meta.attempts == 1);
        assert_eq!(by("expire").as_ref().unwrap().meta.attempts, 2, "{s}");
        assert_eq!(by("busy").as_ref().unwrap().meta.attempts, 2, "{s}");
        match by("bad") {
            Err(ModelError::Rejected {
                status: 400,
                message,
            }) => {
                assert!(message.contains("bad request (mock)"), "{message}")
            }
            other => panic!("{s}: {other:?}"),
        }
        match by("never") {
            Err(ModelError::Exhausted { attempts: 3, last }) => {
                assert!(matches!(**last, ModelError::Expired(_)), "{last}")
            }
            other => panic!("{s}: {other:?}"),
        }
        // Submitted: every request once, the expired and overloaded ones again, the one
        // that always expires three times (two resubmissions); the invalid one once.
        let ids = server.batch_custom_ids();
        let times = |n: &str| {
            let k = shammie_models::cache_key(model.endpoint(), &ask(&format!("{n}?")));
            ids.iter().filter(|i| **i == k).count()
        };
        assert_eq!(
            names.map(times),
            [1, 2, 2, 1, 3],
            "{s}: fine, expire, busy, bad, never"
        );
        assert_eq!(server.batches_created(), 3);
        // Successes are cached; failures are not.
        assert_eq!(cache.len().unwrap(), 3);
    }
}

#[tokio::test]
async fn a_failed_batch_fails_its_calls_and_leaves_nothing_pending() {
    for s in SPECS {
        let spec = spec(s);
        let server = MockServer::start().await.unwrap();
        server.fail_next_batch("the input was refused (mock)");
        let dir = tempfile::tempdir().unwrap();
        let cache = cache_in(&dir);
        let model = open(&batch_hub(&server, cache.clone(), batch_options()), &spec);
        let out = all(&model, &[ask("One?"), ask("Two?")]).await;
        for r in &out {
            let e = r.as_ref().unwrap_err();
            assert!(
                matches!(e, ModelError::Rejected { status: 400, .. })
                    && e.to_string().contains("the input was refused (mock)"),
                "{s}: {e}"
            );
        }
        assert!(
            shammie_models::batch::pending(&cache).unwrap().is_empty(),
            "{s}"
        );
        assert_eq!(cache.len().unwrap(), 0);
        // The next batch goes through.
        assert!(model.generate(&ask("Three?")).await.is_ok());
    }
}

/// Whether the cache database at `dir` holds a batch in `state`.
fn recorded(dir: &std::path::Path, state: &str) -> bool {
    let c = ResponseCache::open(&dir.join("c.sqlite")).unwrap();
    shammie_models::batch::pending(&c)
        .unwrap()
        .iter()
        .any(|b| b.state == state)
}

/// Runs `f` on a runtime of its own that is dropped (with every task on it) as soon as
/// `until` holds: a process killed at that moment.
fn killed_when<F>(f: F, until: impl Fn() -> bool)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.spawn(f);
    let t0 = std::time::Instant::now();
    while !until() {
        assert!(t0.elapsed() < Duration::from_secs(20), "never got there");
        std::thread::sleep(Duration::from_millis(2));
    }
    rt.shutdown_background();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_hub_reconnects_to_a_pending_batch_instead_of_paying_again() {
    for s in SPECS {
        let spec = spec(s);
        let server = Arc::new(MockServer::start().await.unwrap());
        server.hold_batches(true);
        let dir = tempfile::tempdir().unwrap();
        let reqs: Vec<GenerateRequest> = (0..4).map(|i| ask(&format!("Pending {i}?"))).collect();
        {
            let cache = cache_in(&dir);
            let model = open(&batch_hub(&server, cache, batch_options()), &spec);
            let r = reqs.clone();
            let srv = server.clone();
            let path = dir.path().to_path_buf();
            tokio::task::spawn_blocking(move || {
                killed_when(
                    async move {
                        let _ = all(&model, &r).await;
                    },
                    move || srv.batches_created() == 1 && recorded(&path, "submitted"),
                )
            })
            .await
            .unwrap();
        }
        let cache = cache_in(&dir);
        let pending = shammie_models::batch::pending(&cache).unwrap();
        assert_eq!(pending.len(), 1, "{s}");
        assert_eq!(pending[0].requests, 4);
        assert_eq!(pending[0].state, "submitted");
        assert_eq!(cache.len().unwrap(), 0);

        // The resumed process: its callers wait for the pending batch (no new one, however
        // long it takes), which then ends and answers them.
        let model = open(&batch_hub(&server, cache.clone(), batch_options()), &spec);
        let (m, r) = (model.clone(), reqs.clone());
        let asked = tokio::spawn(async move { all(&m, &r).await });
        tokio::time::sleep(batch_options().quiet * 10).await;
        assert_eq!(server.batches_created(), 1, "{s}: submitted again");
        server.hold_batches(false);
        let out = asked.await.unwrap();
        let ids: Vec<&str> = out
            .iter()
            .map(|r| r.as_ref().unwrap().meta.batch_id.as_deref().unwrap())
            .collect();
        assert!(ids
            .iter()
            .all(|i| *i == pending[0].provider_id.as_deref().unwrap()));
        assert_eq!(server.batches_created(), 1, "{s}: paid twice");
        assert_eq!(server.batch_requests_submitted(), 4);
        assert!(shammie_models::batch::pending(&cache).unwrap().is_empty());
        assert_eq!(cache.len().unwrap(), 4);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_ended_while_no_process_ran_is_downloaded_on_first_use() {
    let server = Arc::new(MockServer::start().await.unwrap());
    server.hold_batches(true);
    let dir = tempfile::tempdir().unwrap();
    let spec = spec("anthropic:claude-test");
    let reqs: Vec<GenerateRequest> = (0..3).map(|i| ask(&format!("Done {i}?"))).collect();
    {
        let model = open(&batch_hub(&server, cache_in(&dir), batch_options()), &spec);
        let r = reqs.clone();
        let srv = server.clone();
        let path = dir.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            killed_when(
                async move {
                    let _ = all(&model, &r).await;
                },
                move || srv.batches_created() == 1 && recorded(&path, "submitted"),
            )
        })
        .await
        .unwrap();
    }
    server.end_batches();
    let cache = cache_in(&dir);
    let model = open(&batch_hub(&server, cache.clone(), batch_options()), &spec);
    // Only one of the three is asked for again; all three are downloaded and cached.
    let one = model.generate(&reqs[1]).await.unwrap();
    assert!(one.meta.batch_id.is_some());
    assert_eq!(cache.len().unwrap(), 3);
    assert_eq!(server.batches_created(), 1);
    for r in &reqs {
        assert!(model.generate(r).await.unwrap().meta.cached);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openai_batch_whose_creation_was_not_recorded_is_found_by_its_local_id() {
    let server = Arc::new(MockServer::start().await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let spec = spec("openai:gpt-test");
    let reqs: Vec<GenerateRequest> = (0..3).map(|i| ask(&format!("Lost {i}?"))).collect();
    // The upload goes through; the create call is answered only after 30 s: the process
    // dies after the provider has the batch and before its id is recorded.
    server.push_faults([
        Fault::Delay(Duration::ZERO),
        Fault::Delay(Duration::from_secs(30)),
    ]);
    {
        let model = open(&batch_hub(&server, cache_in(&dir), batch_options()), &spec);
        let r = reqs.clone();
        let srv = server.clone();
        let path = dir.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            killed_when(
                async move {
                    let _ = all(&model, &r).await;
                },
                move || srv.batches_created() == 1 && recorded(&path, "submitting"),
            )
        })
        .await
        .unwrap();
    }
    let cache = cache_in(&dir);
    let pending = shammie_models::batch::pending(&cache).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (pending[0].state.as_str(), &pending[0].provider_id),
        ("submitting", &None)
    );
    let model = open(&batch_hub(&server, cache.clone(), batch_options()), &spec);
    let out = all(&model, &reqs).await;
    assert!(out.iter().all(Result::is_ok), "{out:?}");
    assert_eq!(server.batches_created(), 1, "resubmitted instead of found");
    assert_eq!(server.batch_requests_submitted(), 3);
    assert!(shammie_models::batch::pending(&cache).unwrap().is_empty());
}

#[tokio::test]
async fn a_create_call_that_times_out_is_looked_up_before_anything_is_sent_again() {
    let server = MockServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut b = batch_options();
    b.timeout = Some(Duration::from_millis(300));
    let model = open(
        &batch_hub(&server, cache_in(&dir), b),
        &spec("openai:gpt-test"),
    );
    server.push_faults([
        Fault::Delay(Duration::ZERO),
        Fault::Delay(Duration::from_secs(2)),
    ]);
    let c = model.generate(&ask("Slow create?")).await.unwrap();
    assert!(c.meta.batch_id.is_some());
    assert_eq!(server.batches_created(), 1);
}

#[tokio::test]
async fn transient_errors_of_the_batch_api_are_retried() {
    let server = MockServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let model = open(
        &batch_hub(&server, cache_in(&dir), batch_options()),
        &spec("anthropic:claude-test"),
    );
    // The create call is refused three times (429, 529, 500), then taken.
    server.push_faults([
        Fault::RateLimit {
            retry_after: Some(Duration::from_millis(10)),
        },
        Fault::Overloaded,
        Fault::Status(500),
    ]);
    let c = model.generate(&ask("Eventually?")).await.unwrap();
    assert!(c.meta.batch_id.is_some());
    assert_eq!(server.batches_created(), 1);
    assert_eq!(server.pending_faults(), 0);
}

#[test]
fn batch_mode_refuses_what_has_no_batch_api() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(MockServer::start()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hub = batch_hub(&server, cache_in(&dir), batch_options());
    let e = hub
        .open(&compat_spec(&server, "m"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("OpenAI-compatible server has none"), "{e}");
    let e = hub
        .open(&spec("local:gemma-3-270m"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("--batch is for API models"), "{e}");
    let mut o = options(&server);
    o.batch = Some(batch_options());
    let e = hub_err(o);
    assert!(e.contains("cannot run without one"), "{e}");
    drop(server);
}

fn hub_err(o: shammie_models::OpenOptions) -> String {
    hub(o)
        .open(&spec("anthropic:claude-test"))
        .err()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn no_key_in_the_cache_database() {
    let server = MockServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let model = open(
        &batch_hub(&server, cache_in(&dir), batch_options()),
        &spec("openai:gpt-test"),
    );
    server.hold_batches(true);
    let seen = Arc::new(AtomicUsize::new(0));
    let m = model.clone();
    let s2 = seen.clone();
    let h = tokio::spawn(async move {
        let _ = m.generate(&ask("Secret?")).await;
        s2.fetch_add(1, Ordering::SeqCst);
    });
    while server.batches_created() == 0 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut bytes = Vec::new();
    for e in std::fs::read_dir(dir.path()).unwrap() {
        bytes.extend(std::fs::read(e.unwrap().path()).unwrap());
    }
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains(OPENAI_KEY) && !text.contains(&OPENAI_KEY[8..]));
    server.end_batches();
    h.await.unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}
