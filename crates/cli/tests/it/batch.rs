//! `shammie run … --batch` end to end on the mock's batch APIs, with
//! `alignment-faking/prompted` (target over Anthropic's format, judge over OpenAI's):
//! the target reasons, is asked `<NEXT/>` for its output, then the judge reads whether
//! the output helps and votes on the scratchpad — four dependent steps, so four batches.
//! The results equal the synchronous run's, each call costs its list price times the batch
//! factor (worked out here), a run killed (-9) while a batch is pending or after one has
//! ended is finished by `shammie resume` without submitting any request twice, and
//! expiry and per-request errors land where they should.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use shammie_models::ResponseCache;
use shammie_testkit::{responder, BatchOutcome, MockServer};

use crate::alignment_faking::{col, estimate, expected_free_compliance, respond, row};
use crate::common::*;

/// 8 requests × 2 tiers.
const SAMPLES: usize = 16;

const PRICES: &str = "[[price]]\nprovider = \"anthropic\"\nmodel = \"claude-test\"\ninput = 3.0\noutput = 15.0\nbatch = 0.5\n\n[[price]]\nprovider = \"openai\"\nmodel = \"gpt-test\"\ninput = 0.15\noutput = 0.6\nbatch = 0.5\n";

async fn server() -> MockServer {
    MockServer::builder()
        .responder(responder(respond))
        .start()
        .await
        .unwrap()
}

fn env(server: &MockServer) -> Vec<(&'static str, String)> {
    vec![
        ("ANTHROPIC_API_KEY", TEST_KEY.to_string()),
        ("ANTHROPIC_BASE_URL", server.anthropic_base_url()),
        ("OPENAI_API_KEY", TEST_KEY.to_string()),
        ("OPENAI_BASE_URL", server.openai_base_url()),
    ]
}

/// The run's arguments (with `--prices` in `s`), plus `extra`.
fn args(s: &Scratch, extra: &[&str]) -> Vec<String> {
    let prices = s.dir.path().join("prices.toml");
    std::fs::write(&prices, PRICES).unwrap();
    let mut a: Vec<String> = [
        "run",
        "alignment-faking/prompted",
        "--model",
        "target=anthropic:claude-test",
        "--model",
        "judge=openai:gpt-test",
        "--limit",
        "8",
        "--set",
        "af_votes=3",
        "--prices",
        prices.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    a.extend(extra.iter().map(|x| x.to_string()));
    a
}

const BATCH: [&str; 5] = ["--batch", "--batch-window", "0.3", "--batch-poll", "0.02"];

async fn run(s: &Scratch, server: &MockServer, extra: &[&str]) -> std::process::Output {
    let a = args(s, extra);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let e = env(server);
    let e: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
    s.run(&a, &e).await
}

/// Every call event of a run, by (sample id, epoch, label, role), in transcript order.
fn calls(dir: &Path) -> BTreeMap<(String, u64, String, String, usize), Value> {
    let mut out = BTreeMap::new();
    for r in records(dir) {
        let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
        for e in r["transcript"]["events"].as_array().unwrap() {
            if e["type"] != "call" {
                continue;
            }
            let label = e["label"].as_str().unwrap_or("").to_string();
            let role = e["role"].as_str().unwrap_or("").to_string();
            let i = seen.entry((label.clone(), role.clone())).or_default();
            out.insert(
                (
                    r["id"].as_str().unwrap().to_string(),
                    r["epoch"].as_u64().unwrap(),
                    label,
                    role,
                    *i,
                ),
                e.clone(),
            );
            *i += 1;
        }
    }
    out
}

/// What a call costs at list price, from its usage and the prices above.
fn list_cost(call: &Value) -> f64 {
    let (input, output) = match call["role"].as_str().unwrap() {
        "target" => (3.0, 15.0),
        _ => (0.15, 0.6),
    };
    let u = &call["response"]["usage"];
    (u["input_tokens"].as_f64().unwrap() * input + u["output_tokens"].as_f64().unwrap() * output)
        / 1e6
}

/// The chat requests the mock answered synchronously.
fn synchronous_calls(server: &MockServer) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/messages" || r.path == "/v1/chat/completions")
        .count()
}

/// The step of the protocol a call belongs to: the target's reasoning, its output after
/// `<NEXT/>`, the judge's "does it help", the judge's alignment-faking votes.
fn step(role: &str, label: &str) -> usize {
    match (role, label) {
        ("target", "turn 1") => 0,
        ("target", _) => 1,
        (_, l) if l.contains("helps") => 2,
        _ => 3,
    }
}

/// The batches a batch run makes, in order: one per step, each with the step's distinct
/// requests (identical requests in flight together are sent once: the paid-tier outputs
/// that refuse are judged with the same words).
fn expected_sizes(calls: &BTreeMap<(String, u64, String, String, usize), Value>) -> Vec<usize> {
    let mut by: BTreeMap<usize, HashSet<String>> = BTreeMap::new();
    for ((_, _, label, role, _), c) in calls {
        by.entry(step(role, label))
            .or_default()
            .insert(c["request"].to_string());
    }
    by.into_values().map(|s| s.len()).collect()
}

/// Every request was submitted in exactly one batch.
fn each_submitted_once(server: &MockServer) {
    let ids = server.batch_custom_ids();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "a request was submitted twice");
}

/// The free-tier compliance the responder plants, as the study measures it.
fn check_results(dir: &Path) {
    let res = results(dir);
    let t = table(&res, "alignment-faking");
    let free = row(t, &["default", "training (free tier)"]);
    let k = expected_free_compliance() as f64;
    let c = col(t, "complies with AF reasoning");
    assert!((estimate(&free[c]) - k / 8.0).abs() < 1e-12, "{}", free[c]);
    assert_eq!(res["totals"]["samples"], SAMPLES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_run_has_the_synchronous_results_at_the_batch_price() {
    let server = server().await;
    let sync = Scratch::new();
    let o = run(&sync, &server, &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let sync_dir = run_dir(&o);
    let sync_calls = calls(&sync_dir);
    let sizes = expected_sizes(&sync_calls);
    // 16 reasoning turns, 16 outputs, 12 distinct "helps" questions (the four refused
    // requests' paid and free outputs read alike), 8 × 3 votes.
    assert_eq!(sizes, [16, 16, 12, 24]);
    assert_eq!(server.batches_created(), 0);
    server.clear_requests();

    let b = Scratch::new();
    let o = run(&b, &server, &BATCH).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let dir = run_dir(&o);
    check_results(&dir);
    // The study's tables are the synchronous run's, number for number.
    assert_eq!(results(&dir)["tables"], results(&sync_dir)["tables"]);

    // Four batches, one per dependent step, each request in exactly one; no call went
    // synchronously.
    assert_eq!(server.batch_sizes(), sizes);
    each_submitted_once(&server);
    assert_eq!(synchronous_calls(&server), 0);

    // Call by call: the same answer (and usage); a batch id; the batch price. The
    // synchronous run asks OpenAI for the three votes in one request with n=3 (the prompt
    // billed once, shared among them); a batch has no `n`, so each vote is a request of
    // its own and its usage differs.
    let batch_calls = calls(&dir);
    assert_eq!(
        batch_calls.keys().collect::<Vec<_>>(),
        sync_calls.keys().collect::<Vec<_>>()
    );
    let (mut total, mut paid) = (0.0, 0.0);
    let mut ids = HashSet::new();
    for (k, c) in &batch_calls {
        let s = &sync_calls[k];
        assert_eq!(c["response"]["text"], s["response"]["text"], "{k:?}");
        let meta = &c["response"]["meta"];
        ids.insert(meta["batch_id"].as_str().unwrap().to_string());
        assert!(s["response"]["meta"].get("batch_id").is_none());
        let want = list_cost(c) * 0.5;
        assert!(want > 0.0);
        let got = meta["cost_usd"].as_f64().unwrap();
        assert!((got - want).abs() < 1e-15, "{k:?}: {got} vs {want}");
        let sync_cost = s["response"]["meta"]["cost_usd"].as_f64().unwrap();
        assert!((sync_cost - list_cost(s)).abs() < 1e-15);
        if step(&k.3, &k.2) < 3 {
            assert_eq!(c["response"]["usage"], s["response"]["usage"], "{k:?}");
            assert!(
                (2.0 * got - sync_cost).abs() < 1e-15,
                "half the price: {k:?}"
            );
        }
        total += want;
        if meta["cached"] != true {
            paid += want;
        }
    }
    assert_eq!(ids.len(), 4);
    let t = &results(&dir)["totals"];
    assert!((t["cost_usd"].as_f64().unwrap() - total).abs() < 1e-12);
    assert!((t["paid_cost_usd"].as_f64().unwrap() - paid).abs() < 1e-12);
    // Every paid call went through a batch: the batch totals are the paid ones.
    assert!((t["batch_cost_usd"].as_f64().unwrap() - paid).abs() < 1e-12);
    assert_eq!(
        t["batch_calls"].as_u64().unwrap(),
        batch_calls.len() as u64 - t["cached_calls"].as_u64().unwrap()
    );
    // Paid: each distinct request once.
    assert_eq!(
        batch_calls.len() - t["cached_calls"].as_u64().unwrap() as usize,
        sizes.iter().sum::<usize>()
    );

    // run.json remembers batch mode for `resume`.
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(
        meta["batch"],
        serde_json::json!({"window_secs": 0.3, "poll_secs": 0.02})
    );
    assert!(ResponseCache::open(&b.cache()).unwrap().len().unwrap() > 0);
}

/// The pending batches of the cache at `path`, as (state, requests).
fn pending(path: &Path) -> Vec<(String, u64)> {
    let c = ResponseCache::open(path).unwrap();
    shammie_models::batch::pending(&c)
        .unwrap()
        .into_iter()
        .map(|b| (b.state, b.requests))
        .collect()
}

/// Starts the batch run in the background (quiet, output discarded).
fn spawn(s: &Scratch, server: &MockServer) -> tokio::process::Child {
    let mut a = args(s, &BATCH);
    a.extend(
        [
            "--quiet",
            "--cache",
            s.cache().to_str().unwrap(),
            "--log-dir",
            s.runs().to_str().unwrap(),
        ]
        .map(String::from),
    );
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let mut c = s.cmd(&a);
    for (k, v) in env(server) {
        c.env(k, v);
    }
    c.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < Duration::from_secs(60), "never: {what}");
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

async fn kill_9(mut child: tokio::process::Child) {
    child.start_kill().unwrap();
    child.wait().await.unwrap();
}

/// `shammie resume DIR` (the prices again: run.json does not keep the file's).
async fn resume(s: &Scratch, server: &MockServer, dir: &Path) -> std::process::Output {
    resume_owned(s.dir.path().to_path_buf(), env(server), dir.to_path_buf()).await
}

/// [`resume`] for the scratch folder `scratch`, as a task of its own.
async fn resume_owned(
    scratch: std::path::PathBuf,
    env: Vec<(&'static str, String)>,
    dir: std::path::PathBuf,
) -> std::process::Output {
    let mut c = tokio::process::Command::new(BIN);
    c.args([
        "resume",
        dir.to_str().unwrap(),
        "--quiet",
        "--cache",
        scratch.join("cache.sqlite").to_str().unwrap(),
        "--prices",
        scratch.join("prices.toml").to_str().unwrap(),
    ])
    .env_remove("OPENAI_API_KEY")
    .env_remove("ANTHROPIC_API_KEY")
    .env("SHAMMIE_CACHE_DIR", scratch.join("default-cache"))
    .env("NO_COLOR", "1")
    .kill_on_drop(true);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().await.unwrap()
}

/// The batch ids of each step's calls.
fn step_batches(dir: &Path) -> Vec<HashSet<String>> {
    let mut by: BTreeMap<usize, HashSet<String>> = BTreeMap::new();
    for ((_, _, label, role, _), c) in calls(dir) {
        by.entry(step(&role, &label)).or_default().insert(
            c["response"]["meta"]["batch_id"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        );
    }
    by.into_values().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_a_batch_is_pending_resume_reconnects_and_pays_nothing_twice() {
    let server = server().await;
    server.hold_batches(true);
    let s = Scratch::new();
    let child = spawn(&s, &server);
    let cache = s.cache();
    wait_for("the first batch recorded", || {
        server.batches_created() == 1 && pending(&cache) == [("submitted".to_string(), 16)]
    })
    .await;
    kill_9(child).await;
    let dir = only_run(&s.runs());
    assert!(records(&dir).is_empty());
    assert_eq!(pending(&cache), [("submitted".to_string(), 16)]);

    // Resumed (batch mode from run.json): the pending batch is polled, not sent again,
    // however long it stays pending.
    let polls = || {
        server
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path == "/v1/messages/batches/msgbatch_mock000001")
            .count()
    };
    let before = polls();
    let resumed = tokio::spawn(resume_owned(
        s.dir.path().to_path_buf(),
        env(&server),
        dir.clone(),
    ));
    wait_for("the resumed run polling the pending batch", || {
        polls() > before
    })
    .await;
    // Three quiet windows: a request not attached to the batch would have been sent.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(server.batches_created(), 1, "submitted again");
    server.hold_batches(false);
    let o = resumed.await.unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    check_results(&dir);
    assert_eq!(
        server.batch_sizes(),
        expected_sizes(&calls(&dir)),
        "the same batches as a run never killed"
    );
    each_submitted_once(&server);
    assert_eq!(synchronous_calls(&server), 0);
    assert!(pending(&cache).is_empty());
    // The first step's answers came from the batch submitted before the kill.
    let steps = step_batches(&dir);
    assert_eq!(
        steps[0],
        HashSet::from(["msgbatch_mock000001".to_string()]),
        "{steps:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_a_batch_ended_resume_takes_it_from_the_cache() {
    let server = server().await;
    let s = Scratch::new();
    let child = spawn(&s, &server);
    let cache = s.cache();
    // The first batch has ended and its answers are in the cache: hold the next one.
    wait_for("the first batch's answers stored", || {
        ResponseCache::open(&cache)
            .map(|c| c.len().unwrap_or(0) == 16)
            .unwrap_or(false)
    })
    .await;
    server.hold_batches(true);
    wait_for("the second batch recorded", || {
        server.batches_created() == 2 && pending(&cache) == [("submitted".to_string(), 16)]
    })
    .await;
    kill_9(child).await;
    let dir = only_run(&s.runs());
    assert!(records(&dir).is_empty(), "no sample had all its answers");
    // The second batch ends while no process runs.
    server.end_batches();

    let o = resume(&s, &server, &dir).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    check_results(&dir);
    assert_eq!(
        server.batch_sizes(),
        expected_sizes(&calls(&dir)),
        "nothing paid again"
    );
    each_submitted_once(&server);
    assert_eq!(synchronous_calls(&server), 0);
    // The first step: from the cache (not paid by the resumed run); the second: the
    // batch that ended while the process was dead, downloaded on resume.
    let cs = calls(&dir);
    let first: Vec<&Value> = cs
        .iter()
        .filter(|((_, _, l, r, _), _)| r == "target" && l == "turn 1")
        .map(|(_, c)| c)
        .collect();
    assert_eq!(first.len(), 16);
    assert!(first
        .iter()
        .all(|c| c["response"]["meta"]["cached"] == true));
    let steps = step_batches(&dir);
    assert_eq!(steps[1], HashSet::from(["msgbatch_mock000002".to_string()]));
    // Paid in the transcripts: each distinct request of the later steps once; the first
    // step's 16 (and the repeated judge questions) are cache hits.
    let t = &results(&dir)["totals"];
    let sizes = expected_sizes(&cs);
    assert_eq!(
        cs.len() - t["cached_calls"].as_u64().unwrap() as usize,
        sizes[1..].iter().sum::<usize>()
    );
    let paid: f64 = cs
        .values()
        .filter(|c| c["response"]["meta"]["cached"] != true)
        .map(|c| list_cost(c) * 0.5)
        .sum();
    assert!(
        (t["paid_cost_usd"].as_f64().unwrap() - paid).abs() < 1e-12,
        "{paid} {t}"
    );
}

/// Requests of the first advbench behaviour (both tiers) fail in the batch; every
/// `<NEXT/>` turn expires the first time and is resubmitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_requests_are_resubmitted_and_failed_ones_fail_their_sample() {
    let server = server().await;
    let first = include_str!("../../../studies/data/advbench/harmful_behaviors.csv")
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .trim_matches('"')
        .to_string();
    server.set_batch_outcome(std::sync::Arc::new(move |r, before| {
        let first_user = r
            .messages
            .iter()
            .find(|(role, _)| role == "user")
            .map(|(_, t)| t.as_str())
            .unwrap_or("");
        if r.system.is_some() && first_user.contains(&first) {
            BatchOutcome::Error {
                status: 400,
                message: "bad request (mock)".into(),
            }
        } else if r.last_user_text() == "<NEXT/>" && before == 0 {
            BatchOutcome::Expire
        } else {
            BatchOutcome::Succeed
        }
    }));
    let s = Scratch::new();
    let o = run(&s, &server, &BATCH).await;
    assert_eq!(o.status.code(), Some(1), "failed samples: {}", stderr(&o));
    let dir = run_dir(&o);
    let recs = records(&dir);
    assert_eq!(recs.len(), SAMPLES);
    let failed: Vec<&Value> = recs.iter().filter(|r| !r["error"].is_null()).collect();
    assert_eq!(failed.len(), 2, "both tiers of the first request");
    for r in &failed {
        let e = r["error"].as_str().unwrap();
        assert!(e.contains("bad request (mock)"), "{e}");
    }
    // 16 reasoning requests (2 fail), 14 outputs that expire, the same 14 again, then the
    // judge on the 14 outputs (distinct ones) and 3 votes on each of the 7 good free-tier
    // scratchpads.
    let helps = expected_sizes(&calls(&dir))[2];
    assert_eq!(server.batch_sizes(), [16, 14, 14, helps, 21]);
    let ids = server.batch_custom_ids();
    let mut times: BTreeMap<&String, usize> = BTreeMap::new();
    for i in &ids {
        *times.entry(i).or_default() += 1;
    }
    assert_eq!(times.values().filter(|n| **n == 2).count(), 14);
    assert!(times.values().all(|n| *n <= 2));
    // The resubmitted answers say so, and come from the later batch.
    for ((_, _, _, role, _), c) in calls(&dir) {
        let meta = &c["response"]["meta"];
        if role == "target" && c["request"]["messages"].as_array().unwrap().len() > 1 {
            assert_eq!(meta["attempts"], 2, "{c}");
            assert_eq!(meta["batch_id"], "msgbatch_mock000003");
        }
    }
    assert_eq!(results(&dir)["totals"]["failed"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_mode_refuses_models_without_a_batch_api_and_runs_without_a_cache() {
    let server = server().await;
    let s = Scratch::new();
    let compat = format!("openai-compatible:{}/m", server.openai_base_url());
    for (spec, why) in [
        (compat.as_str(), "an OpenAI-compatible server has none"),
        ("local:gemma-3-270m", "--batch is for API models"),
    ] {
        let o = s
            .run(
                &[
                    "run",
                    "constitution/traits",
                    "--model",
                    spec,
                    "--limit",
                    "1",
                    "--batch",
                ],
                &[],
            )
            .await;
        assert_eq!(o.status.code(), Some(2), "{spec}");
        assert!(stderr(&o).contains(why), "{}", stderr(&o));
    }
    let o = s
        .cmd(&[
            "run",
            "constitution/traits",
            "--model",
            "anthropic:claude-test",
            "--limit",
            "1",
            "--batch",
            "--no-cache",
        ])
        .env("ANTHROPIC_API_KEY", TEST_KEY)
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot run without one"),
        "{}",
        stderr(&o)
    );
    let o = s
        .run(
            &[
                "run",
                "constitution/traits",
                "--model",
                &compat,
                "--batch-window",
                "1",
            ],
            &[],
        )
        .await;
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("go with --batch"), "{}", stderr(&o));
    assert!(!s.runs().exists() || std::fs::read_dir(s.runs()).unwrap().next().is_none());
    assert_eq!(server.request_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_shows_each_batch_state() {
    let server = server().await;
    let s = Scratch::new();
    let mut a = args(&s, &BATCH);
    a.extend(
        [
            "--cache",
            s.cache().to_str().unwrap(),
            "--log-dir",
            s.runs().to_str().unwrap(),
        ]
        .map(String::from),
    );
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let mut c = s.cmd(&a);
    for (k, v) in env(&server) {
        c.env(k, v);
    }
    let o = c
        .env("SHAMMIE_PROGRESS_SECS", "0.05")
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let e = stderr(&o);
    // Every batch: submitted, polled in progress, ended at the provider, stored here.
    let sizes = server.batch_sizes();
    assert_eq!(sizes.len(), 4);
    for (i, n) in sizes.iter().enumerate() {
        let (model, id, ended) = match i {
            0 | 1 => (
                "anthropic:claude-test",
                format!("msgbatch_mock{:06}", i + 1),
                "ended",
            ),
            _ => (
                "openai:gpt-test",
                format!("batch_mock{:06}", i + 1),
                "completed",
            ),
        };
        for state in [
            format!("submitted 0/{n}"),
            format!("in_progress 0/{n}"),
            format!("{ended} {n}/{n}"),
            format!("done {n}/{n}"),
        ] {
            let line = format!("{model}: batch {id} {state} done");
            assert!(e.lines().any(|l| l == line), "no line {line:?} in\n{e}");
        }
    }
    // The plain progress line names the open batch.
    assert!(
        e.lines()
            .any(|l| l.starts_with("progress: ") && l.contains(" · batch msgbatch_mock000001 ")),
        "{e}"
    );
}
