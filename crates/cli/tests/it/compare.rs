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
