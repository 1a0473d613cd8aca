//! Retries of every fault the mock server can script, the retry budget, errors that
//! must not be retried (and must not leak the API key), and the adaptive limit on
//! requests in flight.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use async_trait::async_trait;
use futures::FutureExt;
use shammie_core::{Capabilities, Completion, GenerateRequest, StopReason};
use shammie_models::{AdaptiveLimiter, Model, ModelError, ModelSpec, Resilient};
use shammie_testkit::{default_reply, responder, Fault, MockServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Api {
    Compatible,
    Anthropic,
}

fn api_spec(server: &MockServer, api: Api) -> ModelSpec {
    match api {
        Api::Compatible => compat_spec(server, "mock"),
        Api::Anthropic => spec("anthropic:claude-test"),
    }
}

// ---------------------------------------------------------------- faults → success

#[tokio::test]
async fn every_transient_fault_is_retried_until_success() {
    let faults = [
        Fault::RateLimit { retry_after: None },
        Fault::RateLimit {
            retry_after: Some(Duration::from_millis(20)),
        },
        Fault::Status(500),
        Fault::Status(502),
        Fault::Status(503),
        Fault::Overloaded,
        Fault::Reset,
        Fault::MalformedJson,
    ];
    for api in [Api::Compatible, Api::Anthropic] {
        for fault in &faults {
            for n in [1usize, 2] {
                let server = MockServer::start().await.unwrap();
                let model = open(&hub(options(&server)), &api_spec(&server, api));
                server.push_faults(std::iter::repeat_n(fault.clone(), n));

                let c = model
                    .generate(&ask("Is the sky blue?"))
                    .await
                    .unwrap_or_else(|e| panic!("{api:?} {fault:?} x{n}: {e}"));

                let what = format!("{api:?} {fault:?} x{n}");
                assert_eq!(c.meta.attempts as usize, n + 1, "{what}");
                assert!(!c.meta.cached);
                assert!(c.text == "Yes" || c.text == "No", "{what}: {:?}", c.text);
                assert_eq!(server.request_count(), n + 1, "{what}");
                assert_eq!(server.successful_count(), 1, "{what}");
                assert_eq!(server.pending_faults(), 0, "{what}");
                let labels: Vec<Option<String>> =
                    server.requests().into_iter().map(|r| r.fault).collect();
                let mut want = vec![Some(fault.label()); n];
                want.push(None);
                assert_eq!(labels, want, "{what}");
            }
        }
    }
}

#[tokio::test]
async fn retry_after_is_honoured_even_beyond_the_backoff_cap() {
    let retry_after = Duration::from_millis(250);
    for api in [Api::Compatible, Api::Anthropic] {
        let server = MockServer::start().await.unwrap();
        // The policy's own backoff is capped at 50 ms; the server's Retry-After wins.
        let model = open(&hub(options(&server)), &api_spec(&server, api));
        server.push_fault(Fault::RateLimit {
            retry_after: Some(retry_after),
        });
        let t0 = Instant::now();
        let c = model.generate(&ask("Is it raining?")).await.unwrap();
        let elapsed = t0.elapsed();
        assert!(elapsed >= retry_after, "{api:?}: retried after {elapsed:?}");
        assert!(c.meta.latency_ms >= 250, "{api:?}: {:?}", c.meta);
        assert_eq!(c.meta.attempts, 2);
        assert_eq!(server.request_count(), 2);
        assert_eq!(server.requests()[0].status, 429);
    }
}

#[tokio::test]
async fn a_response_slower_than_the_timeout_is_retried() {
    let timeout = Duration::from_millis(300);
    for (api, fault) in [
        (Api::Compatible, Fault::Delay(Duration::from_secs(5))),
        (Api::Anthropic, Fault::Delay(Duration::from_secs(5))),
        (Api::Compatible, Fault::Hang),
    ] {
        let server = MockServer::start().await.unwrap();
        let mut opts = options(&server);
        opts.timeout = timeout;
        let model = open(&hub(opts), &api_spec(&server, api));
        server.push_fault(fault.clone());
        let t0 = Instant::now();
        let c = model.generate(&ask("Still there?")).await.unwrap();
        let elapsed = t0.elapsed();
        assert!(elapsed >= timeout, "{api:?} {fault:?}: {elapsed:?}");
        assert!(
            elapsed < Duration::from_secs(4),
            "{api:?} {fault:?}: waited for the slow reply ({elapsed:?})"
        );
        assert_eq!(c.meta.attempts, 2, "{api:?} {fault:?}");
        assert_eq!(server.request_count(), 2);
    }
}

// ---------------------------------------------------------------- giving up

#[tokio::test]
async fn exhausting_the_attempts_reports_them_and_sends_exactly_that_many() {
    for api in [Api::Compatible, Api::Anthropic] {
        let server = MockServer::start().await.unwrap();
        let mut opts = options(&server);
        opts.retry = fast_retry(3);
        let model = open(&hub(opts), &api_spec(&server, api));
        server.push_faults(std::iter::repeat_n(Fault::Status(500), 5));
        let err = model.generate(&ask("Hello?")).await.unwrap_err();
        match &err {
            ModelError::Exhausted { attempts: 3, last } => {
                assert!(
                    matches!(**last, ModelError::Server { status: 500, .. }),
                    "{last:?}"
                )
            }
            other => panic!("{api:?}: {other:?}"),
        }
        assert!(err.to_string().contains("3 attempts"), "{err}");
        assert!(!err.is_retryable());
        assert_eq!(server.request_count(), 3);
        assert_eq!(server.pending_faults(), 2);
    }
}

/// With a single attempt, `Exhausted.last` shows how each fault was classified.
#[tokio::test]
async fn each_fault_is_classified() {
    type Check = fn(&ModelError) -> bool;
    let cases: Vec<(Api, Fault, Check)> = vec![
        (
            Api::Compatible,
            Fault::RateLimit {
                retry_after: Some(Duration::from_millis(1500)),
            },
            |e| matches!(e, ModelError::RateLimited { retry_after: Some(d), .. } if *d == Duration::from_millis(1500)),
        ),
        (
            Api::Anthropic,
            Fault::RateLimit { retry_after: None },
            |e| {
                matches!(
                    e,
                    ModelError::RateLimited {
                        retry_after: None,
                        ..
                    }
                )
            },
        ),
        (Api::Compatible, Fault::Status(500), |e| {
            matches!(e, ModelError::Server { status: 500, .. })
        }),
        (Api::Anthropic, Fault::Status(503), |e| {
            matches!(e, ModelError::Server { status: 503, .. })
        }),
        (Api::Compatible, Fault::Overloaded, |e| {
            matches!(e, ModelError::Server { status: 503, .. })
        }),
        (Api::Anthropic, Fault::Overloaded, |e| {
            matches!(e, ModelError::Overloaded { status: 529, .. }) && e.is_backpressure()
        }),
        (Api::Compatible, Fault::Reset, |e| {
            matches!(e, ModelError::Connection(_))
        }),
        (Api::Anthropic, Fault::MalformedJson, |e| {
            matches!(e, ModelError::Malformed(_))
        }),
        (Api::Compatible, Fault::Hang, |e| {
            matches!(e, ModelError::Timeout(_))
        }),
    ];
    for (api, fault, check) in cases {
        let server = MockServer::start().await.unwrap();
        let mut opts = options(&server);
        opts.retry = fast_retry(1);
        opts.timeout = Duration::from_millis(200);
        let model = open(&hub(opts), &api_spec(&server, api));
        server.push_fault(fault.clone());
        match model.generate(&ask("Hello?")).await.unwrap_err() {
            ModelError::Exhausted { attempts: 1, last } => {
                assert!(check(&last), "{api:?} {fault:?}: {last:?}");
                assert!(last.is_retryable(), "{api:?} {fault:?}: {last:?}");
            }
            other => panic!("{api:?} {fault:?}: {other:?}"),
        }
        assert_eq!(server.request_count(), 1);
    }
}

fn assert_no_secret(err: &ModelError, secret: &str) {
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains(secret), "API key leaked: {text}");
    }
}

#[tokio::test]
async fn client_errors_are_not_retried_and_never_show_the_key() {
    for api in [Api::Compatible, Api::Anthropic] {
        for status in [400u16, 401, 403, 404, 422] {
            let server = MockServer::start().await.unwrap();
            let mut opts = options(&server);
            opts.env.compatible_api_key = Some(shammie_models::ApiKey::new(COMPAT_KEY));
            let model = open(&hub(opts), &api_spec(&server, api));
            server.push_faults([Fault::Status(status), Fault::Status(500)]);
            let err = model.generate(&ask("Hello?")).await.unwrap_err();
            let ok = match status {
                401 | 403 => matches!(err, ModelError::Auth { status: s, .. } if s == status),
                _ => matches!(err, ModelError::Rejected { status: s, .. } if s == status),
            };
            assert!(ok, "{api:?} {status}: {err:?}");
            assert!(!err.is_retryable());
            assert_eq!(server.request_count(), 1, "{api:?} {status}");
            assert_eq!(server.pending_faults(), 1);
            assert_no_secret(&err, COMPAT_KEY);
            assert_no_secret(&err, ANTHROPIC_KEY);
        }
    }

    // A server that really checks keys, given the wrong ones.
    let server = MockServer::builder()
        .require_api_key(Some("sk-test-the-right-one".into()))
        .start()
        .await
        .unwrap();
    let hub = hub(options(&server));
    for (s, key) in [
        ("openai:gpt-test", OPENAI_KEY),
        ("anthropic:claude-test", ANTHROPIC_KEY),
    ] {
        let before = server.request_count();
        let err = open(&hub, &spec(s))
            .generate(&ask("Hello?"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ModelError::Auth { status: 401, .. }),
            "{s}: {err:?}"
        );
        assert_eq!(server.request_count(), before + 1, "{s}");
        assert_no_secret(&err, key);
    }
}

/// A bare HTTP server whose every answer quotes the API key it was sent (as real APIs
/// do with "Incorrect API key provided: sk-..."), to check that errors scrub it.
struct EchoKeyServer {
    addr: std::net::SocketAddr,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EchoKeyServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EchoKeyServer {
    async fn start(status: u16) -> EchoKeyServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let head_end = loop {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break p + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let mut length = 0;
                    let mut key = String::new();
                    for line in head.lines() {
                        let Some((name, value)) = line.split_once(':') else {
                            continue;
                        };
                        let value = value.trim();
                        match name.trim().to_ascii_lowercase().as_str() {
                            "content-length" => length = value.parse().unwrap_or(0),
                            "authorization" => {
                                key = value.trim_start_matches("Bearer ").to_string()
                            }
                            "x-api-key" => key = value.to_string(),
                            _ => {}
                        }
                    }
                    while buf.len() < head_end + length {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    let body = if status == 200 {
                        // A torn success body that mentions the key.
                        format!(r#"{{"id":"x","note":"sent with {key}","choices":[{{"#)
                    } else {
                        serde_json::json!({
                            "type": "error",
                            "error": {"type": "authentication_error", "message": format!("Incorrect API key provided: {key}.")},
                        })
                        .to_string()
                    };
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(resp.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        EchoKeyServer {
            addr,
            requests,
            task,
        }
    }
}

#[tokio::test]
async fn keys_quoted_back_by_the_server_are_scrubbed_from_errors() {
    for status in [401u16, 400, 500, 200] {
        let server = EchoKeyServer::start(status).await;
        let mut opts = options(&MockServer::start().await.unwrap());
        opts.env.openai_base_url = Some(format!("http://{}/v1", server.addr));
        opts.env.anthropic_base_url = Some(format!("http://{}", server.addr));
        opts.retry = fast_retry(2);
        let hub = hub(opts);
        for (s, key) in [
            ("openai:gpt-test", OPENAI_KEY),
            ("anthropic:claude-test", ANTHROPIC_KEY),
        ] {
            let before = server.requests.load(Ordering::SeqCst);
            let err = open(&hub, &spec(s))
                .generate(&ask("Hello?"))
                .await
                .unwrap_err();
            let sent = server.requests.load(Ordering::SeqCst) - before;
            match status {
                401 => assert!(
                    matches!(err, ModelError::Auth { status: 401, .. }),
                    "{err:?}"
                ),
                400 => assert!(
                    matches!(err, ModelError::Rejected { status: 400, .. }),
                    "{err:?}"
                ),
                _ => assert!(
                    matches!(err, ModelError::Exhausted { attempts: 2, .. }),
                    "{err:?}"
                ),
            }
            assert_eq!(
                sent,
                if matches!(status, 401 | 400) { 1 } else { 2 },
                "{s} {status}"
            );
            // The server's text did arrive (scrubbed), so the check below is not vacuous.
            let shown = err.to_string();
            assert!(shown.contains("***"), "{s} {status}: {shown}");
            assert_no_secret(&err, key);
        }
    }
}

// ---------------------------------------------------------------- adaptive concurrency

/// A mock whose every request stays `hold` at the server, recording arrival times.
async fn slow_server(hold: Duration) -> (MockServer, Arc<Mutex<Vec<Instant>>>) {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let log = arrivals.clone();
    let server = MockServer::builder()
        .latency(hold)
        .responder(responder(move |r| {
            log.lock().unwrap().push(Instant::now());
            default_reply(r)
        }))
        .start()
        .await
        .unwrap();
    (server, arrivals)
}

async fn run_all(models: &[Arc<dyn Model>], per_model: usize) -> Vec<Completion> {
    let calls = models.iter().flat_map(|m| {
        (0..per_model).map(move |i| {
            let m = m.clone();
            tokio::spawn(async move {
                let mut req = ask(&format!("Question number {i}?"));
                req.nonce = i as u64;
                m.generate(&req).await
            })
        })
    });
    let handles: Vec<_> = calls.collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap().expect("generate"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_more_requests_in_flight_than_max_connections() {
    let hold = Duration::from_millis(50);
    let (server, arrivals) = slow_server(hold).await;
    let mut opts = options(&server);
    opts.max_connections = 4;
    let model = open(&hub(opts), &compat_spec(&server, "mock"));

    let done = run_all(&[model], 40).await;

    assert_eq!(done.len(), 40);
    assert!(done.iter().all(|c| c.meta.attempts == 1));
    assert_eq!(server.request_count(), 40);
    let peak = peak_from_arrivals(arrivals.lock().unwrap().clone(), hold);
    assert_eq!(peak, 4, "peak requests at the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_on_one_endpoint_share_its_limit() {
    let hold = Duration::from_millis(40);
    let (server, arrivals) = slow_server(hold).await;
    let mut opts = options(&server);
    opts.max_connections = 3;
    let hub = hub(opts);
    let a = open(&hub, &compat_spec(&server, "mock-a"));
    let b = open(&hub, &compat_spec(&server, "mock-b"));
    assert_ne!(a.endpoint(), b.endpoint());

    run_all(&[a, b], 12).await;

    assert_eq!(server.request_count(), 24);
    let models: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.body["model"].as_str().unwrap().to_string())
        .collect();
    assert!(models.contains(&"mock-a".into()) && models.contains(&"mock-b".into()));
    let peak = peak_from_arrivals(arrivals.lock().unwrap().clone(), hold);
    assert!((2..=3).contains(&peak), "peak {peak}");
}

/// Eight requests all meet a 429 (or a 500). After 429s the endpoint's limit halves,
/// so the eight retries reach the server at most four at a time; 500s are no reason
/// to slow down, and the retries arrive together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_rate_limits_lowers_the_concurrency() {
    let hold = Duration::from_millis(60);
    for (fault, backpressure) in [
        (
            Fault::RateLimit {
                retry_after: Some(Duration::from_millis(100)),
            },
            true,
        ),
        (Fault::Status(500), false),
    ] {
        let (server, arrivals) = slow_server(hold).await;
        let mut opts = options(&server);
        opts.max_connections = 8;
        let model = open(&hub(opts), &compat_spec(&server, "mock"));
        server.push_faults(std::iter::repeat_n(fault.clone(), 8));

        let done = run_all(&[model], 8).await;

        assert!(done.iter().all(|c| c.meta.attempts == 2), "{fault:?}");
        assert_eq!(server.request_count(), 16);
        // `arrivals` only holds the answered (retried) requests.
        let peak = peak_from_arrivals(arrivals.lock().unwrap().clone(), hold);
        if backpressure {
            assert!(
                peak <= 4,
                "{fault:?}: {peak} retries at once despite the 429s"
            );
        } else {
            assert!(peak > 4, "{fault:?}: only {peak} retries at once");
        }
    }
}

#[test]
fn limiter_halves_under_backpressure_once_per_cooldown_and_blocks_at_the_limit() {
    let l = AdaptiveLimiter::new(4);
    assert_eq!(l.limit(), 4);
    let mut permits: Vec<_> = (0..4)
        .map(|_| l.acquire().now_or_never().expect("free slot"))
        .collect();
    assert_eq!(l.in_flight(), 4);
    assert!(
        l.acquire().now_or_never().is_none(),
        "a fifth slot at limit 4"
    );

    // A burst of rate limits within the cooldown counts once.
    for _ in 0..10 {
        l.on_backpressure();
    }
    assert_eq!(l.limit(), 2);
    permits.pop();
    permits.pop();
    assert_eq!(l.in_flight(), 2);
    assert!(
        l.acquire().now_or_never().is_none(),
        "a third slot at limit 2"
    );
    permits.pop();
    permits.push(l.acquire().now_or_never().expect("second slot at limit 2"));
    assert_eq!(l.in_flight(), 2);

    // Successes climb back, never past the maximum.
    for _ in 0..100 {
        l.on_success();
    }
    assert_eq!(l.limit(), 4);
    drop(permits);
    assert_eq!(l.in_flight(), 0);

    // Without a cooldown every signal halves, down to one slot and never to zero.
    let l = AdaptiveLimiter::new(16).with_cooldown(Duration::ZERO);
    l.on_backpressure();
    assert_eq!(l.limit(), 8);
    for _ in 0..10 {
        l.on_backpressure();
    }
    assert_eq!(l.limit(), 1);
    let p = l.acquire().now_or_never().expect("one slot");
    assert!(l.acquire().now_or_never().is_none());
    drop(p);
    assert_eq!(AdaptiveLimiter::new(0).limit(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limiter_wakes_waiters_when_a_slot_frees_or_the_limit_grows() {
    let l = Arc::new(AdaptiveLimiter::new(2).with_cooldown(Duration::ZERO));
    let p1 = l.acquire().await;
    let p2 = l.acquire().await;
    let waiter = {
        let l = l.clone();
        tokio::spawn(async move {
            let _p = l.acquire().await;
        })
    };
    tokio::task::yield_now().await;
    assert!(!waiter.is_finished());
    drop(p1);
    tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("woken by a freed slot")
        .unwrap();

    // Limit 1 with one slot taken; growth of the limit must wake the waiter.
    l.on_backpressure();
    assert_eq!(l.limit(), 1);
    let waiter = {
        let l = l.clone();
        tokio::spawn(async move {
            let _p = l.acquire().await;
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!waiter.is_finished(), "got a second slot at limit 1");
    l.on_success();
    assert_eq!(l.limit(), 2);
    tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("woken by a larger limit")
        .unwrap();
    drop(p2);
    assert_eq!(l.in_flight(), 0);
}

/// A provider stand-in that fails its first `failures` calls with `error`.
struct Flaky {
    failures: u32,
    error: ModelError,
    calls: AtomicU32,
    limiter: Arc<AdaptiveLimiter>,
    in_flight_seen: Mutex<Vec<usize>>,
}

#[async_trait]
impl Model for Flaky {
    fn name(&self) -> &str {
        "flaky:test"
    }
    fn endpoint(&self) -> &str {
        "flaky"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_top_logprobs: 0,
            prefill: false,
            stop_sequences: true,
            system_prompt: true,
            multi_turn: true,
            seed: false,
            score_continuations: false,
            native_tools: false,
        }
    }
    async fn generate(&self, _req: &GenerateRequest) -> Result<Completion, ModelError> {
        self.in_flight_seen
            .lock()
            .unwrap()
            .push(self.limiter.in_flight());
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.failures {
            return Err(self.error.clone());
        }
        Ok(Completion {
            text: "ok".into(),
            logprobs: None,
            continuations: None,
            tool_calls: Vec::new(),
            stop_reason: StopReason::EndTurn,
            usage: Default::default(),
            meta: Default::default(),
        })
    }
}

async fn resilient_run(
    error: ModelError,
    failures: u32,
) -> (
    Result<Completion, ModelError>,
    Arc<AdaptiveLimiter>,
    Arc<Flaky>,
) {
    let limiter = Arc::new(AdaptiveLimiter::new(8));
    let flaky = Arc::new(Flaky {
        failures,
        error,
        calls: AtomicU32::new(0),
        limiter: limiter.clone(),
        in_flight_seen: Mutex::new(Vec::new()),
    });
    let r = Resilient::new(flaky.clone(), fast_retry(6), limiter.clone());
    (r.generate(&ask("x")).await, limiter, flaky)
}

#[tokio::test]
async fn resilient_lowers_the_limit_only_for_backpressure() {
    let rate_limited = ModelError::RateLimited {
        retry_after: Some(Duration::from_millis(1)),
        message: "slow down".into(),
    };
    let (res, limiter, flaky) = resilient_run(rate_limited, 3).await;
    assert_eq!(res.unwrap().meta.attempts, 4);
    assert_eq!(
        limiter.limit(),
        4,
        "three 429s within one cooldown halve the limit once"
    );
    assert_eq!(limiter.in_flight(), 0);
    // Each attempt held exactly one slot.
    assert_eq!(*flaky.in_flight_seen.lock().unwrap(), vec![1, 1, 1, 1]);

    let overloaded = ModelError::Overloaded {
        status: 529,
        retry_after: None,
        message: "Overloaded".into(),
    };
    let (res, limiter, _) = resilient_run(overloaded, 1).await;
    assert_eq!(res.unwrap().meta.attempts, 2);
    assert_eq!(limiter.limit(), 4);

    let server_error = ModelError::Server {
        status: 500,
        retry_after: None,
        message: "oops".into(),
    };
    let (res, limiter, _) = resilient_run(server_error, 3).await;
    assert_eq!(res.unwrap().meta.attempts, 4);
    assert_eq!(limiter.limit(), 8);

    let rejected = ModelError::Rejected {
        status: 400,
        message: "bad".into(),
    };
    let (res, limiter, flaky) = resilient_run(rejected, 3).await;
    assert!(
        matches!(res, Err(ModelError::Rejected { status: 400, .. })),
        "{res:?}"
    );
    assert_eq!(flaky.calls.load(Ordering::SeqCst), 1);
    assert_eq!(limiter.limit(), 8);
}
