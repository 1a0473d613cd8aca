//! What a researcher reads about a run: `--limit` in units of the dataset, `show` on an
//! interrupted run, `resume` on a finished one, readable transcripts with step labels,
//! and plain progress when stderr is not a terminal.

use std::path::Path;
use std::time::Duration;

use crate::common::*;
use shammie_testkit::MockServer;

fn anthropic(server: &MockServer) -> Vec<(&'static str, String)> {
    vec![
        ("ANTHROPIC_API_KEY", TEST_KEY.to_string()),
        ("ANTHROPIC_BASE_URL", server.anthropic_base_url()),
    ]
}

async fn shammie(s: &Scratch, args: &[&str], server: &MockServer) -> std::process::Output {
    let env = anthropic(server);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    s.run(args, &env).await
}

/// `shammie resume DIR` with the scratch cache.
async fn resume(s: &Scratch, dir: &str, server: &MockServer) -> std::process::Output {
    let mut c = s.cmd(&[
        "resume",
        dir,
        "--cache",
        s.cache().to_str().unwrap(),
        "--quiet",
    ]);
    for (k, v) in anthropic(server) {
        c.env(k, v);
    }
    c.output().await.unwrap()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn count_by(recs: &[serde_json::Value], key: &str) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for r in recs {
        *m.entry(r["scores"][key].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    m
}

/// `decomposition --limit 3` used to run 3 samples (question 1 under three strategies,
/// `factored` dropped). Now it runs 3 questions under each of the 4 strategies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_counts_questions_each_under_every_strategy() {
    let server = MockServer::start().await.unwrap();
    let s = Scratch::new();
    let o = shammie(
        &s,
        &[
            "run",
            "decomposition/strategies",
            "--model",
            "anthropic:claude-test",
            "--limit",
            "3",
        ],
        &server,
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let dir = run_dir(&o);
    let recs = records(&dir);
    assert_eq!(recs.len(), 12, "3 questions × 4 strategies");
    let by = count_by(&recs, "strategy");
    assert_eq!(
        by.into_iter().collect::<Vec<_>>(),
        [
            ("cot".to_string(), 3),
            ("cot-decomposition".to_string(), 3),
            ("factored".to_string(), 3),
            ("few-shot".to_string(), 3)
        ]
    );
    let run = json(&dir.join("run.json"));
    assert_eq!(run["limit"], 3);
    assert_eq!(run["limit_counts"], "units");
    // Every call says which step it was.
    for r in &recs {
        for e in r["transcript"]["events"].as_array().unwrap() {
            if e["type"] == "call" {
                assert!(e["label"].as_str().is_some_and(|l| !l.is_empty()), "{e}");
            }
        }
    }
    let labels: std::collections::BTreeSet<String> = recs
        .iter()
        .flat_map(|r| r["transcript"]["events"].as_array().unwrap().clone())
        .filter_map(|e| e["label"].as_str().map(str::to_string))
        .collect();
    for want in [
        "cot",
        "decomposition",
        "decompose 1",
        "answer sample 1",
        "early k=0 sample 1",
        "mistake@0 edit",
        "mistake@0 continue",
        "mistake@0 sample 1",
        "suggested cot",
        "suggested answer sample 1",
    ] {
        assert!(labels.contains(want), "no `{want}` in {labels:?}");
    }

    // Without --quiet, `run` says what it will run, on stderr.
    let env = anthropic(&server);
    let mut c = s.cmd(&[
        "run",
        "decomposition/strategies",
        "--model",
        "anthropic:claude-test",
        "--limit",
        "2",
        "--log-dir",
        s.runs().to_str().unwrap(),
        "--cache",
        s.cache().to_str().unwrap(),
    ]);
    for (k, v) in &env {
        c.env(k, v);
    }
    let o = c.output().await.unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("running 2 of 254 questions = 8 samples"),
        "{}",
        stderr(&o)
    );
}

/// A run made when `--limit` counted samples (run.json without `limit_counts`) resumes
/// with that meaning: the same samples, not N questions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_limited_in_samples_resumes_with_its_own_meaning() {
    let server = MockServer::start().await.unwrap();
    let s = Scratch::new();
    let o = shammie(
        &s,
        &[
            "run",
            "decomposition/strategies",
            "--model",
            "anthropic:claude-test",
            "--limit",
            "2",
        ],
        &server,
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let dir = run_dir(&o);
    // Rewrite it as an older version wrote it: `--limit 6` meaning six samples.
    let mut run = json(&dir.join("run.json"));
    run.as_object_mut().unwrap().remove("limit_counts");
    run["limit"] = 6.into();
    std::fs::write(dir.join("run.json"), run.to_string()).unwrap();
    // Killed after question 1's four samples.
    let text = std::fs::read_to_string(dir.join("samples.jsonl")).unwrap();
    let first: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(r#""id":"aqua:1/"#))
        .collect();
    assert_eq!(first.len(), 4);
    std::fs::write(dir.join("samples.jsonl"), first.join("\n") + "\n").unwrap();
    std::fs::remove_file(dir.join("results.json")).unwrap();

    let o = resume(&s, dir.to_str().unwrap(), &server).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut ids: Vec<String> = records(&dir)
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    // The first six samples: question 1 under its 4 strategies, question 2 under 2
    // (counting units, `--limit 6` would have been 24 samples).
    assert_eq!(
        ids,
        [
            "aqua:1/cot",
            "aqua:1/cot-decomposition",
            "aqua:1/factored",
            "aqua:1/few-shot",
            "aqua:2/cot",
            "aqua:2/few-shot"
        ]
    );
}

/// `show` on an interrupted run says how far it got and how to continue; `resume` on a
/// finished run says it is complete; `show --json` carries run.json.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_says_incomplete_and_resume_says_complete() {
    let server = MockServer::start().await.unwrap();
    let s = Scratch::new();
    let o = shammie(
        &s,
        &[
            "run",
            "constitution/traits",
            "--model",
            "anthropic:claude-test",
            "--limit",
            "10",
        ],
        &server,
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let dir = run_dir(&o);
    let d = dir.to_str().unwrap();
    // As if killed after 6 of its 10 samples.
    let text = std::fs::read_to_string(dir.join("samples.jsonl")).unwrap();
    let first: Vec<&str> = text.lines().take(6).collect();
    std::fs::write(dir.join("samples.jsonl"), first.join("\n") + "\n").unwrap();
    std::fs::remove_file(dir.join("results.json")).unwrap();

    let o = s.cmd(&["show", d]).output().await.unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with(&format!(
            "incomplete: 6 of 10 samples. Continue with: shammie resume {d}\n"
        )),
        "{out}"
    );
    let o = s.cmd(&["show", d, "--json"]).output().await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["run"]["study"], "constitution");
    assert_eq!(v["run"]["limit"], 10);
    assert_eq!(v["complete"], false);
    assert_eq!(v["progress"]["done"], 6);
    assert_eq!(v["progress"]["total"], 10);

    let o = resume(&s, d, &server).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(records(&dir).len(), 10);
    let o = s.cmd(&["show", d]).output().await.unwrap();
    assert!(!stdout(&o).contains("incomplete"), "{}", stdout(&o));

    let o = resume(&s, d, &server).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "{d} is complete: 10 of 10 samples recorded; nothing to resume"
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(records(&dir).len(), 10);
}

/// Off a terminal, progress is a plain line every few seconds (here 0.2 s), and `-vv`
/// diagnostics carry no ANSI colour codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_a_terminal_progress_is_plain_lines_without_colour() {
    let server = MockServer::builder()
        .latency(Duration::from_millis(40))
        .start()
        .await
        .unwrap();
    // One retried fault, so that -vv has a diagnostic line to print.
    server.push_faults([shammie_testkit::Fault::Status(503)]);
    let s = Scratch::new();
    let env = anthropic(&server);
    let mut c = s.cmd(&[
        "-vv",
        "run",
        "constitution/traits",
        "--model",
        "anthropic:claude-test",
        "--limit",
        "40",
        "--max-connections",
        "2",
        "--log-dir",
        s.runs().to_str().unwrap(),
        "--no-cache",
    ]);
    for (k, v) in &env {
        c.env(k, v);
    }
    c.env("SHAMMIE_PROGRESS_SECS", "0.2").env_remove("NO_COLOR");
    let o = c.output().await.unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("progress: "))
        .collect();
    assert!(lines.len() >= 2, "{err}");
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("progress: 40/40 samples · failed 0 · calls "),
        "{err}"
    );
    assert!(
        err.contains("DEBUG") && err.contains("retrying"),
        "-vv logs: {err}"
    );
    assert!(!err.contains('\u{1b}'), "ANSI codes in {err:?}");
}
