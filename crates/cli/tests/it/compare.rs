//! `shammie compare` on two real runs of `agent-loop/arithmetic` on the mock server: model
//! `good` answers every problem right, model `half` only the even-numbered ones. The
//! accuracy difference and the flipped samples are computed here from that rule; runs of
//! different tasks are refused.

use std::collections::HashMap;

use shammie_study_agent_loop::problems;
use shammie_testkit::{responder, MockReply, MockServer};

use crate::common::*;

const LIMIT: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paired_differences_and_flips() {
    let all = problems::builtin();
    let index: HashMap<String, (usize, f64)> = all
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("Problem: {}", p.question), (i, p.answer)))
        .collect();
    let server = MockServer::builder()
        .responder(responder(move |req| {
            // The worked example takes the first four turns (the other task's prompts
            // get a plain answer).
            let Some((i, answer)) = req.messages.get(4).and_then(|m| index.get(&m.1)).copied()
            else {
                return MockReply::for_request(req, "A");
            };
            let right = req.model == "good" || i % 2 == 0;
            let given = if right { answer } else { answer + 1.0 };
            MockReply::for_request(req, format!("<answer>{given}</answer>"))
        }))
        .start()
        .await
        .unwrap();
    let s = Scratch::new();
    let mut dirs = Vec::new();
    for model in ["good", "half"] {
        let spec = format!("openai-compatible:{}/{model}", server.openai_base_url());
        let o = s
            .run(
                &[
                    "run",
                    "agent-loop/arithmetic",
                    "--model",
                    &spec,
                    "--limit",
                    &LIMIT.to_string(),
                ],
                &[],
            )
            .await;
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        dirs.push(run_dir(&o));
    }
    let o = s
        .cmd(&[
            "compare",
            dirs[0].to_str().unwrap(),
            dirs[1].to_str().unwrap(),
            "--json",
            "--resamples",
            "100",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["shared_samples"], LIMIT);
    let odd: Vec<String> = all
        .iter()
        .take(LIMIT)
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, p)| format!("{} (epoch 1)", p.id))
        .collect();
    let want = -(odd.len() as f64) / LIMIT as f64;
    let acc = v["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["table"] == "arithmetic" && m["row"] == "accuracy")
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(acc["a"], 1.0);
    assert!(
        (acc["difference"].as_f64().unwrap() - want).abs() < 1e-12,
        "{acc}"
    );
    let (lo, hi) = (acc["lo"].as_f64().unwrap(), acc["hi"].as_f64().unwrap());
    assert!(lo <= want && want <= hi && hi < 0.0, "[{lo}, {hi}]");
    let correct = v["scores"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["score"] == "correct")
        .unwrap();
    assert_eq!(correct["flipped_to_false"], serde_json::json!(odd));
    assert_eq!(correct["flipped_to_true"], serde_json::json!([]));
    assert!((correct["difference"].as_f64().unwrap() - want).abs() < 1e-12);

    // The text form names the flipped samples too.
    let o = s
        .cmd(&[
            "compare",
            dirs[0].to_str().unwrap(),
            dirs[1].to_str().unwrap(),
            "--resamples",
            "20",
        ])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("B − A [95% CI]") && text.contains(&odd[0]),
        "{text}"
    );

    // Runs of another task are refused, with the reason.
    let spec = format!("openai-compatible:{}/good", server.openai_base_url());
    let other = s
        .run(
            &[
                "run",
                "constitution/traits",
                "--model",
                &spec,
                "--limit",
                "2",
            ],
            &[],
        )
        .await;
    let o = s
        .cmd(&[
            "compare",
            dirs[0].to_str().unwrap(),
            run_dir(&other).to_str().unwrap(),
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains("not comparable") && err.contains("constitution/traits"),
        "{err}"
    );
}

/// A multi-stage task (constitution/evaluate): its tables are not compared (its analysis
/// reads stage artifacts), its stage samples' scores are.
#[test]
fn multi_stage_runs_compare_their_scores() {
    let d = tempfile::tempdir().unwrap();
    let make = |name: &str, prefers: &[bool]| {
        let dir = d.path().join(name);
        std::fs::create_dir_all(dir.join("stages/feedback")).unwrap();
        std::fs::write(
            dir.join("run.json"),
            serde_json::json!({"schema_version": 2, "shammie_version": "0.1.0", "study": "constitution",
                "task": "evaluate", "models": {"feedback": "scripted:x"}, "options": {}, "config": {},
                "seed": 1, "epochs": 1, "max_connections": 1, "created_at": "2026-12-06T00:00:00Z"})
            .to_string(),
        )
        .unwrap();
        let mut lines = String::new();
        for (i, p) in prefers.iter().enumerate() {
            lines.push_str(
                &serde_json::json!({"id": format!("q{i}"), "epoch": 1, "input": {},
                    "transcript": {"events": []}, "scores": {"prefers_harmless": p},
                    "usage": {"input_tokens": 0, "output_tokens": 0}, "started_at": "", "duration_ms": 0})
                .to_string(),
            );
            lines.push('\n');
        }
        std::fs::write(dir.join("stages/feedback/samples.jsonl"), lines).unwrap();
        dir
    };
    let a = make("a", &[true, true, false, true]);
    let b = make("b", &[true, false, false, false]);
    let o = std::process::Command::new(BIN)
        .args([
            "compare",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["tables_compared"], false);
    assert_eq!(v["metrics"], serde_json::json!([]));
    let s = &v["scores"][0];
    assert_eq!(s["score"], "prefers_harmless");
    assert_eq!(s["pairs"], 4);
    assert!((s["difference"].as_f64().unwrap() + 0.5).abs() < 1e-12);
    assert_eq!(
        s["flipped_to_false"],
        serde_json::json!(["feedback/q1 (epoch 1)", "feedback/q3 (epoch 1)"])
    );
}
