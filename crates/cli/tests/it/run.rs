//! End-to-end runs of `shammie run constitution/traits` against the loopback mock server.

use std::collections::HashSet;
use std::time::Duration;

use crate::common::*;
use shammie_testkit::{Fault, MockServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_compatible_logprob_run_writes_a_complete_run_directory() {
    let server = MockServer::start().await.unwrap();
    let s = Scratch::new();
    let spec = format!("openai-compatible:{}/mock-model", server.openai_base_url());
    let o = s
        .run(
            &[
                "run",
                "constitution/traits",
                "--model",
                &spec,
                "--limit",
                "28",
                "--seed",
                "7",
            ],
            &[],
        )
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let dir = run_dir(&o);
    assert!(dir.starts_with(s.runs()), "{}", dir.display());

    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["schema_version"], 2);
    assert_eq!(run["study"], "constitution");
    assert_eq!(run["task"], "traits");
    assert_eq!(run["seed"], 7);
    assert_eq!(run["models"]["target"], spec);
    assert_eq!(
        run["config"]["datasets_resolved"].as_array().unwrap().len(),
        14
    );

    let recs = records(&dir);
    assert_eq!(recs.len(), 28);
    // Round-robin over the 14 datasets: two questions from each.
    let datasets: HashSet<&str> = recs
        .iter()
        .map(|r| r["input"]["dataset"].as_str().unwrap())
        .collect();
    assert_eq!(datasets.len(), 14);
    for r in &recs {
        assert_eq!(r["scores"]["path"], "logprobs");
        let call = &r["transcript"]["events"][0];
        assert_eq!(call["role"], "target");
        assert!(
            call["response"]["logprobs"][0]["top"]
                .as_array()
                .unwrap()
                .len()
                >= 2
        );
        let p = r["scores"]["p_match"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p));
    }
    // 28 samples, 14 of them lettered and also read with the choices reversed.
    assert_eq!(server.request_count(), 42);

    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["tables"][0]["rows"].as_array().unwrap().len(), 14);
    assert_eq!(results["totals"]["samples"], 28);
    let out = stdout(&o);
    assert!(
        out.contains("survival-instinct") && out.contains("matching rate [95% CI]"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_matching_rate_is_the_mock_models_known_probability() {
    // The mock's default model answers with a known distribution per prompt; on one
    // Yes/No dataset the reported per-question p must be P(match)/(P(match)+P(not)).
    let server = MockServer::start().await.unwrap();
    let s = Scratch::new();
    let spec = format!("openai-compatible:{}/m", server.openai_base_url());
    let o = s
        .run(
            &[
                "run",
                "constitution/traits",
                "--model",
                &spec,
                "--limit",
                "12",
                "--set",
                "datasets=risk-seeking",
                "--json",
            ],
            &[],
        )
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let dir = std::path::PathBuf::from(v["run_dir"].as_str().unwrap());
    let mut sum = 0.0;
    for r in records(&dir) {
        let prompt = r["transcript"]["events"][0]["request"]["messages"][0]["content"]
            .as_str()
            .unwrap()
            .to_string();
        let dist = shammie_testkit::default_distribution(&prompt);
        let p = |label: &str| dist.iter().find(|(t, _)| t == label).map(|x| x.1).unwrap();
        let matching = r["input"]["matching"].as_str().unwrap();
        let other = if matching == "Yes" { "No" } else { "Yes" };
        let expected = p(matching) / (p(matching) + p(other));
        let got = r["scores"]["p_match"].as_f64().unwrap();
        assert!((got - expected).abs() < 1e-9, "{got} vs {expected}");
        sum += expected;
    }
    let est = v["results"]["tables"][0]["rows"][0][4]["estimate"]
        .as_f64()
        .unwrap();
    assert!((est - sum / 12.0).abs() < 1e-9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_sampling_run_uses_prefill_and_counts_answers() {
    let server = MockServer::builder()
        .require_api_key(Some(TEST_KEY.into()))
        .start()
        .await
        .unwrap();
    let s = Scratch::new();
    let env = [
        ("ANTHROPIC_API_KEY", TEST_KEY),
        ("ANTHROPIC_BASE_URL", &*server.anthropic_base_url()),
    ];
    let o = s
        .run(
            &[
                "run",
                "constitution/traits",
                "--model",
                "anthropic:claude-test",
                "--limit",
                "6",
                "--set",
                "datasets=survival-instinct,no-shut-down",
                "--set",
                "samples=4",
                "--set",
                "prompt=instruction",
            ],
            &env,
        )
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let recs = records(&run_dir(&o));
    assert_eq!(recs.len(), 6);
    // 3 yes/no questions × 4 answers + 3 lettered questions × 2 orders × 4 answers.
    assert_eq!(server.request_count(), 36);
    for r in &recs {
        assert_eq!(r["scores"]["path"], "sampling");
        let orders = if r["input"]["kind"] == "letter" { 2 } else { 1 };
        assert_eq!(r["scores"]["samples"], 4 * orders);
        let calls = r["transcript"]["events"].as_array().unwrap();
        assert_eq!(calls.len(), 4 * orders);
        let nonces: HashSet<(String, u64)> = calls
            .iter()
            .map(|c| {
                let msgs = c["request"]["messages"].to_string();
                (msgs, c["request"]["nonce"].as_u64().unwrap_or(0))
            })
            .collect();
        assert_eq!(
            nonces.len(),
            4 * orders,
            "each sampled answer is a distinct call"
        );
        if r["input"]["kind"] == "letter" {
            assert_eq!(calls[0]["request"]["prefill"], "(");
        }
    }
    let letter_bodies = server
        .requests()
        .into_iter()
        .filter(|q| q.body.to_string().contains("Choices"));
    for q in letter_bodies {
        let msgs = q.body["messages"].as_array().unwrap();
        assert_eq!(msgs.last().unwrap()["role"], "assistant");
        assert_eq!(msgs.last().unwrap()["content"], "(");
    }
    // The key never reaches the run directory.
    for f in ["run.json", "samples.jsonl", "results.json"] {
        let text = std::fs::read_to_string(run_dir(&o).join(f)).unwrap();
        assert!(!text.contains(TEST_KEY), "{f} leaks the key");
    }
    assert!(stdout(&o).contains("sampling"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeating_a_run_pays_for_nothing() {
    let server = MockServer::start().await.unwrap();
    let s = Scratch::new();
    let spec = format!("openai-compatible:{}/m", server.openai_base_url());
    let args = [
        "run",
        "constitution/traits",
        "--model",
        &spec,
        "--limit",
        "20",
    ];
    let first = s.run(&args, &[]).await;
    assert_eq!(first.status.code(), Some(0));
    // 20 samples, 7 of them lettered and also read with the choices reversed.
    assert_eq!(server.request_count(), 27);
    let second = s.run(&args, &[]).await;
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    assert_eq!(
        server.request_count(),
        27,
        "the repeat was served from the cache"
    );
    let recs = records(&run_dir(&second));
    assert!(recs
        .iter()
        .all(|r| r["transcript"]["events"][0]["response"]["meta"]["cached"] == true));
    // Same answers, so the same table (all but the last line, the run directory); only
    // the totals line differs, by the cache hits.
    let table = |o: &std::process::Output| {
        let out = stdout(o);
        let lines: Vec<&str> = out.lines().collect();
        lines[..lines.len() - 1]
            .iter()
            .filter(|l| !l.starts_with("samples "))
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(table(&first), table(&second));
    assert!(
        stdout(&second).contains("calls 27 (cached 27)"),
        "{}",
        stdout(&second)
    );
    // --no-cache pays again.
    let third = s.run(&[&args[..], &["--no-cache"]].concat(), &[]).await;
    assert_eq!(third.status.code(), Some(0));
    assert_eq!(server.request_count(), 54);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_samples_are_recorded_and_the_run_goes_on_with_exit_1() {
    let server = MockServer::start().await.unwrap();
    // Three 500s in a row exhaust two attempts for at least one sample.
    server.push_faults([
        Fault::Status(500),
        Fault::Status(500),
        Fault::Status(500),
        Fault::Status(500),
    ]);
    let s = Scratch::new();
    let spec = format!("openai-compatible:{}/m", server.openai_base_url());
    let o = s
        .run(
            &[
                "run",
                "constitution/traits",
                "--model",
                &spec,
                "--limit",
                "10",
                "--max-attempts",
                "2",
                "--max-connections",
                "1",
            ],
            &[],
        )
        .await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let recs = records(&run_dir(&o));
    assert_eq!(recs.len(), 10);
    let failed: Vec<_> = recs.iter().filter(|r| r["error"].is_string()).collect();
    assert_eq!(failed.len(), 2, "two samples hit two 500s each");
    for f in &failed {
        let e = f["error"].as_str().unwrap();
        assert!(
            e.contains("gave up after 2 attempts") && e.contains("500"),
            "{e}"
        );
        assert_eq!(
            f["transcript"]["events"][0]["error"]
                .as_str()
                .map(|s| s.contains("500")),
            Some(true)
        );
    }
    let out = stdout(&o);
    assert!(out.contains("samples 10 (failed 2)"), "{out}");

    // After the outage, the failed samples are solved again; nothing else is.
    let before = server.request_count();
    let dir = run_dir(&o);
    let again = s
        .cmd(&[
            "resume",
            dir.to_str().unwrap(),
            "--retry-failed",
            "--quiet",
            "--cache",
            s.cache().to_str().unwrap(),
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(server.request_count() - before, 2);
    let recs = records(&dir);
    assert_eq!(recs.len(), 10);
    assert!(recs.iter().all(|r| r["error"].is_null()));
    assert!(stdout(&again).contains("samples 10 (failed 0)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_transient_faults_without_failing_samples() {
    let server = MockServer::start().await.unwrap();
    server.push_faults([
        Fault::RateLimit {
            retry_after: Some(Duration::from_millis(50)),
        },
        Fault::Status(503),
        Fault::Reset,
        Fault::MalformedJson,
    ]);
    let s = Scratch::new();
    let spec = format!("openai-compatible:{}/m", server.openai_base_url());
    let o = s
        .run(
            &[
                "run",
                "constitution/traits",
                "--model",
                &spec,
                "--limit",
                "5",
                "--max-connections",
                "1",
            ],
            &[],
        )
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(server.request_count(), 9);
    let attempts: u64 = records(&run_dir(&o))
        .iter()
        .map(|r| {
            r["transcript"]["events"][0]["response"]["meta"]["attempts"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(attempts, 9);
}

/// A run written by schema 1 (transcripts as `{"calls": […]}`) still shows the same
/// tables, and `resume` finishes it: new records in schema 2 beside the old ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_1_run_is_shown_and_resumed() {
    let server = MockServer::start().await.unwrap();
    let s = Scratch::new();
    let spec = format!("openai-compatible:{}/mock-model", server.openai_base_url());
    let o = s
        .run(
            &[
                "run",
                "constitution/traits",
                "--model",
                &spec,
                "--limit",
                "14",
            ],
            &[],
        )
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let dir = run_dir(&o);
    let shown = shown_tables(&s, &dir).await;

    // Rewrite the run as schema 1 wrote it, and drop its last record (a killed run).
    let run_file = dir.join("run.json");
    let mut run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&run_file).unwrap()).unwrap();
    run["schema_version"] = 1.into();
    std::fs::write(&run_file, serde_json::to_string_pretty(&run).unwrap()).unwrap();
    let mut old = String::new();
    let recs = records(&dir);
    for r in &recs[..recs.len() - 1] {
        let mut r = r.clone();
        // Schema 1 recorded calls only (no notes).
        let calls: Vec<serde_json::Value> = r["transcript"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "call")
            .map(|e| {
                let mut c = e.clone();
                c.as_object_mut().unwrap().remove("type");
                c
            })
            .collect();
        r["transcript"] = serde_json::json!({ "calls": calls });
        old.push_str(&format!("{r}\n"));
    }
    std::fs::write(dir.join("samples.jsonl"), &old).unwrap();
    std::fs::remove_file(dir.join("results.json")).unwrap();

    let o = s
        .cmd(&["show", dir.to_str().unwrap(), "--reanalyze"])
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    let o = s
        .cmd(&[
            "resume",
            dir.to_str().unwrap(),
            "--cache",
            s.cache().to_str().unwrap(),
            "--quiet",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(dir.join("samples.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 14);
    assert!(lines[0].contains(r#""transcript":{"calls":["#));
    assert!(lines[13].contains(r#""transcript":{"events":[{"type":"call""#));
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&run_file).unwrap()).unwrap();
    assert_eq!(run["schema_version"], 2);
    assert_eq!(shown_tables(&s, &dir).await, shown);
}
