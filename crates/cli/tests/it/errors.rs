//! Bad input gets one clear message and exit code 2, and costs nothing.

use crate::common::*;
use shammie_testkit::MockServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_data_line_names_file_and_line_before_any_call() {
    let server = MockServer::start().await.unwrap();
    let s = Scratch::new();
    let data = s.dir.path().join("mine.jsonl");
    std::fs::write(
        &data,
        concat!(
            r#"{"question": "Q1?", "answer_matching_behavior": " Yes", "answer_not_matching_behavior": " No"}"#, "\n",
            "\n",
            r#"{"question": "Q2?", "answer_matching_behavior": " Yes"}"#, "\n",
        ),
    )
    .unwrap();
    let spec = format!("openai-compatible:{}/m", server.openai_base_url());
    let o = s
        .run(
            &[
                "run",
                "constitution/traits",
                "--model",
                &spec,
                "--set",
                &format!("data={}", data.display()),
            ],
            &[],
        )
        .await;
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains(&format!("{}:3:", data.display())) && e.contains("answer_not_matching_behavior"),
        "{e}"
    );
    assert_eq!(server.request_count(), 0);
    assert!(
        !s.runs().exists(),
        "no run directory for a run that never started"
    );

    std::fs::write(
        &data,
        "{\"question\": \"Q1?\", \"answer_matching_behavior\": \" Yes\"\n",
    )
    .unwrap();
    let o = s
        .run(
            &[
                "run",
                "constitution/traits",
                "--model",
                &spec,
                "--set",
                &format!("data={}", data.display()),
            ],
            &[],
        )
        .await;
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains(":1: not valid JSON"), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_file_of_the_same_format_runs() {
    let server = MockServer::start().await.unwrap();
    let s = Scratch::new();
    let data = s.dir.path().join("custom-trait.jsonl");
    let line = |q: &str, m: &str, n: &str| {
        serde_json::json!({"question": q, "answer_matching_behavior": m, "answer_not_matching_behavior": n}).to_string()
    };
    std::fs::write(
        &data,
        [
            line("Do you like tea?", " Yes", " No"),
            line("Pick one:\n (A) x\n (B) y", " (B)", " (A)"),
        ]
        .join("\n"),
    )
    .unwrap();
    let spec = format!("openai-compatible:{}/m", server.openai_base_url());
    let o = s
        .run(
            &[
                "run",
                "constitution/traits",
                "--model",
                &spec,
                "--set",
                &format!("data={}", data.display()),
            ],
            &[],
        )
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(records(&run_dir(&o)).len(), 2);
    assert!(stdout(&o).contains("custom-trait"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_and_config_errors_exit_2_with_one_message() {
    let s = Scratch::new();
    let cases: &[(&[&str], &str)] = &[
        (
            &["run", "constitution/nope", "--model", "openai:m"],
            "has no task `nope`",
        ),
        (
            &["run", "nostudy/x", "--model", "openai:m"],
            "no study `nostudy`",
        ),
        (
            &["run", "constitution/traits", "--model", "gpt-4"],
            "invalid model spec `gpt-4`",
        ),
        (
            &["run", "constitution/traits", "--model", "openai:m"],
            "needs OPENAI_API_KEY",
        ),
        (
            &[
                "run",
                "constitution/traits",
                "--model",
                "openai-compatible:http://127.0.0.1:9/v1/m",
                "--set",
                "smaples=3",
            ],
            "unknown option smaples",
        ),
        (
            &[
                "run",
                "constitution/traits",
                "--model",
                "openai-compatible:http://127.0.0.1:9/v1/m",
                "--set",
                "samples=many",
            ],
            "samples=\"many\"",
        ),
        (
            &[
                "run",
                "constitution/traits",
                "--model",
                "openai-compatible:http://127.0.0.1:9/v1/m",
                "--set",
                "datasets=nope",
            ],
            "no dataset named `nope`",
        ),
        (
            &[
                "run",
                "constitution/traits",
                "--model",
                "judge=openai-compatible:http://127.0.0.1:9/v1/m",
            ],
            "needs a `target` model",
        ),
        (
            &[
                "run",
                "constitution/traits",
                "--model",
                "openai-compatible:http://127.0.0.1:9/v1/m",
                "--model",
                "judge=openai-compatible:http://127.0.0.1:9/v1/m",
            ],
            "no `judge` role",
        ),
        (&["run", "constitution/traits"], "--model"),
    ];
    for (args, want) in cases {
        let o = s.run(args, &[]).await;
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(want), "{args:?}: wanted {want:?} in {e}");
        assert!(o.stdout.is_empty(), "{args:?} printed to stdout");
    }
    let analyze: &[(&[&str], &str)] = &[
        (
            &["analyze", "nostudy", "x.csv"],
            "study `nostudy` has no offline analysis; studies that offer one: discrim-eval, sabotage",
        ),
        (
            &["analyze", "discrim-eval", "x.csv", "--method", "fast"],
            "option method=\"fast\": expected one of reml, ml",
        ),
        (
            &[
                "analyze",
                "discrim-eval",
                "x.csv",
                "--set",
                "confidence=0.9",
            ],
            "unknown option confidence",
        ),
    ];
    for (args, want) in analyze {
        let o = s.cmd(args).output().await.unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(want), "{args:?}: wanted {want:?} in {e}");
        assert!(o.stdout.is_empty(), "{args:?} printed to stdout");
    }
    let o = s
        .cmd(&["resume", "/nonexistent/run"])
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("/nonexistent/run is not a run directory"),
        "{}",
        stderr(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_path_logprobs_is_refused_up_front() {
    let s = Scratch::new();
    let o = s
        .run(
            &[
                "run",
                "constitution/traits",
                "--model",
                "anthropic:claude-test",
                "--set",
                "path=logprobs",
            ],
            &[
                ("ANTHROPIC_API_KEY", TEST_KEY),
                ("ANTHROPIC_BASE_URL", "http://127.0.0.1:9"),
            ],
        )
        .await;
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("no token log-probabilities") && e.contains("path=sampling"),
        "{e}"
    );
    assert!(!e.contains(TEST_KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_reported_without_the_key() {
    let server = MockServer::builder()
        .require_api_key(Some("the-right-key-000".into()))
        .start()
        .await
        .unwrap();
    let s = Scratch::new();
    let o = s
        .run(
            &[
                "run",
                "constitution/traits",
                "--model",
                "anthropic:claude-test",
                "--limit",
                "2",
                "--set",
                "samples=1",
            ],
            &[
                ("ANTHROPIC_API_KEY", TEST_KEY),
                ("ANTHROPIC_BASE_URL", &server.anthropic_base_url()),
            ],
        )
        .await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let dir = run_dir(&o);
    let text = std::fs::read_to_string(dir.join("samples.jsonl")).unwrap();
    assert!(text.contains("authentication failed (HTTP 401)"), "{text}");
    assert!(
        !text.contains(TEST_KEY)
            && !stderr(&o).contains(TEST_KEY)
            && !stdout(&o).contains(TEST_KEY)
    );
    assert_eq!(server.request_count(), 2, "401 is not retried");
}

/// Values that used to be sent, silently clamped or crash: every one is exit 2 with one
/// message naming the problem, before any call and without a run directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_values_are_refused_before_anything_runs() {
    let server = MockServer::start().await.unwrap();
    let s = Scratch::new();
    let spec = format!("openai-compatible:{}/m", server.openai_base_url());
    let run = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["run", "constitution/traits", "--model", spec.as_str()]
            .iter()
            .map(|x| x.to_string())
            .collect();
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            run(&["--set", "temperature=-1"]),
            "temperature=\"-1\": must be between 0 and 2",
        ),
        (
            run(&["--set", "temperature=NaN"]),
            "temperature=\"NaN\": expected a finite number",
        ),
        (run(&["--set", "temperature=inf"]), "temperature=\"inf\""),
        (
            run(&["--set", "samples=0"]),
            "samples=\"0\": must be between 1",
        ),
        (
            run(&["--set", "samples=3", "--set", "samples=4"]),
            "--set samples: given twice",
        ),
        (run(&["--timeout", "1e20"]), "at most 86400 seconds"),
        (run(&["--timeout", "0"]), "must be more than 0"),
        (run(&["--max-connections", "0"]), "must be at least 1"),
        (run(&["--max-attempts", "0"]), "must be at least 1"),
        (run(&["--max-samples", "0"]), "must be at least 1"),
        (run(&["--limit", "0"]), "must be at least 1"),
        (run(&["--limit", "-1"]), "must be at least 1 (got -1)"),
        (run(&["--epochs", "0"]), "must be at least 1"),
        (
            vec![
                "run".into(),
                "constitution".into(),
                "--model".into(),
                spec.clone(),
            ],
            "name the task to run as STUDY/TASK (constitution/traits, constitution/feedback, constitution/pm, constitution/evaluate)",
        ),
        (
            run(&[
                "--model",
                "judge=openai-compatible:http://127.0.0.1:99999/v1/m",
            ]),
            "the server address is not a valid URL",
        ),
        (
            vec![
                "generate".into(),
                "hi".into(),
                "--max-tokens".into(),
                "0".into(),
            ],
            "must be at least 1",
        ),
        (
            vec![
                "generate".into(),
                "hi".into(),
                "--temperature".into(),
                "-0.5".into(),
            ],
            "must be between 0 and 2",
        ),
    ];
    for (args, want) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = s.run(&args, &[]).await;
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(want), "{args:?}: wanted {want:?} in {e}");
        assert!(o.stdout.is_empty(), "{args:?} printed to stdout");
    }
    assert_eq!(server.request_count(), 0, "a refused run sent a request");
    assert!(!s.runs().exists() || std::fs::read_dir(s.runs()).unwrap().next().is_none());
}

/// Credentials in a server URL are sent as HTTP Basic only (no Bearer key besides), and a
/// server that echoes what it was sent leaves no form of them in the run: not the
/// header, not the base64, not the password, not a piece of the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_credentials_are_one_scheme_and_never_stored() {
    use shammie_testkit::{responder, MockReply};
    let server = MockServer::builder()
        .responder(responder(|req| {
            let auth = req.header("authorization").unwrap_or("").to_string();
            MockReply::for_request(req, format!("Yes. You sent {auth} and sk-compat-secret-99"))
        }))
        .start()
        .await
        .unwrap();
    let s = Scratch::new();
    let base = server.openai_base_url();
    let with_creds = base.replacen("http://", "http://ann:hunter2-long-pass@", 1);
    let spec = format!("openai-compatible:{with_creds}/m");
    let o = s
        .run(
            &[
                "run",
                "constitution/traits",
                "--model",
                &spec,
                "--limit",
                "2",
                "--set",
                "path=sampling",
                "--set",
                "samples=1",
            ],
            &[("OPENAI_COMPATIBLE_API_KEY", "sk-compat-secret-99")],
        )
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let reqs = server.requests();
    assert!(!reqs.is_empty());
    for r in &reqs {
        let auths: Vec<&(String, String)> = r
            .headers
            .iter()
            .filter(|(k, _)| k == "authorization")
            .collect();
        assert_eq!(auths.len(), 1, "{:?}", r.headers);
        assert!(auths[0].1.starts_with("Basic "), "{}", auths[0].1);
    }
    let dir = run_dir(&o);
    let mut stored = String::new();
    for f in ["samples.jsonl", "run.json", "results.json"] {
        stored.push_str(&std::fs::read_to_string(dir.join(f)).unwrap());
    }
    stored.push_str(&stdout(&o));
    stored.push_str(&stderr(&o));
    for secret in [
        "hunter2-long-pass",
        "hunter2-l",
        "Basic ",
        "YW5uOmh1bnRlcjItbG9uZy1wYXNz",
        "sk-compat-secret-99",
        "compat-secret",
    ] {
        assert!(!stored.contains(secret), "{secret} was stored");
    }
    assert!(
        stored.contains("You sent *** and ***"),
        "the echo is gone altogether"
    );
}
