//! The agent loop through the binary: a run of `agent-loop/arithmetic` killed with
//! SIGKILL mid-episode is finished by `shammie resume`, and the calculator — whose
//! audit file counts its real executions — never runs twice for one recorded step.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::common::*;
use shammie_study_agent_loop::problems;
use shammie_testkit::{responder, MockReply, MockServer};

/// Two calculator steps, then the answer: `<calc>EXPR</calc>`, `<calc>RESULT + 0</calc>`,
/// `<answer>RESULT</answer>`.
fn two_step_responder() -> shammie_testkit::Responder {
    let by_question: HashMap<String, problems::Problem> = problems::builtin()
        .into_iter()
        .map(|p| (format!("Problem: {}", p.question), p))
        .collect();
    responder(move |req| {
        // The worked example takes the first four turns.
        let own = &req.messages[4..];
        let p = &by_question[&own[0].1];
        let text = match own.len() {
            1 => format!("<calc>{}</calc>", p.expression),
            3 => format!("<calc>{} + 0</calc>", p.answer),
            _ => format!("<answer>{}</answer>", p.answer),
        };
        MockReply::for_request(req, text)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_episode_then_resume_replays_tool_steps_instead_of_rerunning_them() {
    let server = MockServer::builder()
        .latency(Duration::from_millis(120))
        .responder(two_step_responder())
        .start()
        .await
        .unwrap();
    let s = Scratch::new();
    let audit = s.dir.path().join("audit.jsonl");
    let spec = format!("openai-compatible:{}/m", server.openai_base_url());
    let audit_set = format!("audit={}", audit.display());
    let limit = 12usize;
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = extra.iter().map(|x| x.to_string()).collect();
        v.extend(
            [
                "--max-connections",
                "2",
                "--max-samples",
                "4",
                "--quiet",
                "--cache",
                s.cache().to_str().unwrap(),
            ]
            .map(String::from),
        );
        v
    };
    let run_args = args(&[
        "run",
        "agent-loop/arithmetic",
        "--model",
        &spec,
        "--limit",
        &limit.to_string(),
        "--set",
        &audit_set,
        "--log-dir",
        s.runs().to_str().unwrap(),
    ]);
    let mut child = s
        .cmd(&run_args.iter().map(String::as_str).collect::<Vec<_>>())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let audit_lines = || {
        std::fs::read_to_string(&audit)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // Kill when several steps have run but the run is far from done.
    let t0 = Instant::now();
    while audit_lines().len() < 7 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "run never got going"
        );
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let dir = std::fs::read_dir(s.runs())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let done_before = records(&dir).len();
    assert!(done_before < limit, "killed too late ({done_before} done)");
    assert!(dir.join("steps.jsonl").exists());
    let sent_before = server.request_count();

    let resume_args = args(&["resume", dir.to_str().unwrap()]);
    let o = s
        .cmd(&resume_args.iter().map(String::as_str).collect::<Vec<_>>())
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // Every sample once, every answer right.
    let recs = records(&dir);
    assert_eq!(recs.len(), limit);
    assert!(
        recs.iter().all(|r| r["scores"]["correct"] == true),
        "{recs:?}"
    );
    // The calculator ran exactly once per step: 2 steps x 12 episodes, no repeats.
    let lines = audit_lines();
    let mut unique = lines.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), lines.len(), "a step ran twice: {lines:#?}");
    assert_eq!(lines.len(), 2 * limit);
    // Episodes cut by the kill went on from their journal.
    let replayed: u64 = recs
        .iter()
        .map(|r| r["scores"]["replayed_tool_calls"].as_u64().unwrap())
        .sum();
    assert!(replayed >= 1, "no step was replayed");
    let events = &recs
        .iter()
        .find(|r| r["scores"]["replayed_tool_calls"].as_u64().unwrap() > 0)
        .unwrap()["transcript"]["events"];
    assert!(events
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["type"] == "tool" && e["replayed"] == true));
    // No model call answered before the kill was paid again: 3 calls per episode, plus
    // at most the calls in flight at the kill (--max-connections 2).
    let sent = server.request_count();
    assert!(
        sent <= 3 * limit + 2,
        "{sent} requests ({sent_before} before the kill) for {} calls",
        3 * limit
    );
    // The journal only held work in progress: all of it is finished now.
    let journal = std::fs::read_to_string(dir.join("steps.jsonl")).unwrap();
    let (_, meta) = shammie_log::RunDir::open(&dir).unwrap();
    assert_eq!(meta.schema_version, shammie_core::SCHEMA_VERSION);
    let done: std::collections::HashSet<String> = recs
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    for l in journal.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(done.contains(v["id"].as_str().unwrap()));
    }
}

/// Native tool calling over both real wire formats: the mock checks, as the APIs do,
/// that every tool call is answered by a result with its id right after it, and
/// answers with tool calls of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_tool_calls_round_trip_through_both_provider_formats() {
    let by_question: HashMap<String, problems::Problem> = problems::builtin()
        .into_iter()
        .map(|p| (format!("Problem: {}", p.question), p))
        .collect();
    let server = MockServer::builder()
        .responder(responder(move |req| {
            assert_eq!(req.tools, ["calc"], "the calculator is offered natively");
            let own = &req.messages[4..];
            let p = &by_question[&own[0].1];
            match own.len() {
                1 => {
                    let mut r = MockReply::for_request(req, "");
                    r.tool_calls = vec![(
                        "calc".into(),
                        serde_json::json!({ "expression": p.expression }),
                    )];
                    r
                }
                // The result comes back as a tool turn: answer with what it says.
                _ => {
                    let (role, result) = own.last().unwrap();
                    assert_eq!(role, "tool");
                    MockReply::for_request(req, format!("<answer>{result}</answer>"))
                }
            }
        }))
        .start()
        .await
        .unwrap();
    for (spec, envs) in [
        (
            "anthropic:claude-test",
            [
                ("ANTHROPIC_API_KEY", TEST_KEY.to_string()),
                ("ANTHROPIC_BASE_URL", server.anthropic_base_url()),
            ],
        ),
        (
            "openai:gpt-test",
            [
                ("OPENAI_API_KEY", TEST_KEY.to_string()),
                ("OPENAI_BASE_URL", server.openai_base_url()),
            ],
        ),
    ] {
        let s = Scratch::new();
        let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let o = s
            .run(
                &[
                    "run",
                    "agent-loop/arithmetic",
                    "--model",
                    spec,
                    "--limit",
                    "3",
                ],
                &envs,
            )
            .await;
        assert_eq!(o.status.code(), Some(0), "{spec}: {}", stderr(&o));
        let recs = records(&run_dir(&o));
        assert_eq!(recs.len(), 3);
        for r in &recs {
            assert_eq!(r["scores"]["correct"], true, "{spec}: {r}");
            assert_eq!(r["scores"]["tool_calls"], 1);
            let calls: Vec<&serde_json::Value> = r["transcript"]["events"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["type"] == "call")
                .collect();
            assert_eq!(calls[0]["response"]["stop_reason"], "tool_use");
            assert_eq!(calls[0]["response"]["tool_calls"][0]["name"], "calc");
        }
    }
}
