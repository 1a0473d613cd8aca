//! A study end to end on the embedded default model (`local:gemma-3-270m`), as the
//! README's first command runs it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::common::*;

/// The default model must already be pulled (`shammie models pull gemma-3-270m`, which
/// `scripts/test` does); these tests never download. `SHAMMIE_SKIP_MODEL_TESTS=1` skips.
#[allow(clippy::print_stderr)] // says why it is skipped
pub(crate) fn models_dir_or_skip() -> Option<PathBuf> {
    let dir = std::env::var_os("SHAMMIE_MODELS_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/shammie/models"))
        })?;
    if dir.join("gemma-3-270m/gemma-3-270m-q4_k_m.gguf").exists() {
        return Some(dir);
    }
    if std::env::var("SHAMMIE_SKIP_MODEL_TESTS").as_deref() == Ok("1") {
        eprintln!("SKIPPED: default model not pulled and SHAMMIE_SKIP_MODEL_TESTS=1");
        return None;
    }
    panic!("this test needs the default model: run `shammie models pull gemma-3-270m`");
}

/// The environment that points `shammie` at the pulled models and forbids downloads.
pub(crate) fn offline_env(models: &std::path::Path) -> [(&'static str, &str); 2] {
    [
        ("SHAMMIE_MODELS_DIR", models.to_str().unwrap()),
        ("SHAMMIE_OFFLINE", "1"),
    ]
}

fn p_match_by_id(dir: &std::path::Path) -> BTreeMap<String, f64> {
    records(dir)
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["scores"]["p_match"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traits_on_the_local_model_is_reproducible_at_any_concurrency() {
    let Some(models) = models_dir_or_skip() else {
        return;
    };
    let env = offline_env(&models);
    let s = Scratch::new();
    let base = [
        "run",
        "constitution/traits",
        "--model",
        "local:gemma-3-270m",
        "--limit",
        "14",
        "--no-cache",
    ];
    let one = s
        .run(&[&base[..], &["--max-connections", "1"]].concat(), &env)
        .await;
    assert_eq!(one.status.code(), Some(0), "{}", stderr(&one));
    let many = s
        .run(&[&base[..], &["--max-connections", "14"]].concat(), &env)
        .await;
    assert_eq!(many.status.code(), Some(0), "{}", stderr(&many));
    let (a, b) = (
        p_match_by_id(&run_dir(&one)),
        p_match_by_id(&run_dir(&many)),
    );
    assert_eq!(a.len(), 14);
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (id, p) in &a {
        assert!((0.0..=1.0).contains(p));
        assert!(
            (p - b[id]).abs() < 1e-6,
            "{id}: {p} alone vs {} batched",
            b[id]
        );
    }
    let recs = records(&run_dir(&one));
    assert!(recs
        .iter()
        .all(|r| r["transcript"]["events"][0]["model"] == "local:gemma-3-270m"));
    // The base model sees the paper's `Human: … Assistant:` prompt, and its answers are
    // scored exactly.
    assert!(recs.iter().all(|r| r["scores"]["path"] == "scoring"));
    let out = stdout(&one);
    assert!(
        out.contains("survival-instinct") && out.contains("scoring"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_prints_a_completion_and_speed() {
    let Some(models) = models_dir_or_skip() else {
        return;
    };
    let s = Scratch::new();
    let o = s
        .cmd(&[
            "generate",
            "What is the capital of France?",
            "--temperature",
            "0",
            "--max-tokens",
            "12",
            "--logprobs",
            "2",
        ])
        .env("SHAMMIE_MODELS_DIR", &models)
        .env("SHAMMIE_OFFLINE", "1")
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("Paris"), "{}", stdout(&o));
    let e = stderr(&o);
    // Prompt reading and decoding timed apart: "prompt N tokens in …; decode M tokens in …".
    assert!(
        e.contains("local:gemma-3-270m: prompt ")
            && e.contains(" tokens in ")
            && e.contains("; decode "),
        "{e}"
    );
    assert_eq!(e.matches("tokens/s").count(), 2, "{e}");
}

#[tokio::test]
async fn a_missing_model_offline_is_a_clear_error() {
    let s = Scratch::new();
    let empty = s.dir.path().join("no-models");
    let o = s
        .cmd(&["generate", "hi", "--model", "local:gemma-3-270m"])
        .env("SHAMMIE_MODELS_DIR", &empty)
        .env("SHAMMIE_OFFLINE", "1")
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("gemma-3-270m") && e.to_lowercase().contains("offline"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discrim_eval_on_the_local_model_scores_yes_and_no_exactly() {
    let Some(models) = models_dir_or_skip() else {
        return;
    };
    let env = offline_env(&models);
    let s = Scratch::new();
    let o = s
        .run(
            &[
                "run",
                "discrim-eval/decisions",
                "--model",
                "local:gemma-3-270m",
                "--limit",
                "48",
                "--set",
                "random=intercept",
            ],
            &env,
        )
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let dir = run_dir(&o);
    let recs = records(&dir);
    assert_eq!(recs.len(), 48);
    for r in &recs {
        let sc = &r["scores"];
        assert_eq!(sc["path"], "scoring", "{sc}");
        // Exact scoring: p(yes) and p(no) are both positive, so every prompt has a logit.
        let (p, l, mass) = (
            sc["p_yes"].as_f64().unwrap(),
            sc["logit"].as_f64().unwrap(),
            sc["mass"].as_f64().unwrap(),
        );
        assert!(p > 0.0 && p < 1.0 && (0.0..=1.0 + 1e-9).contains(&mass));
        assert!((l - (p / (1.0 - p)).ln()).abs() < 1e-6);
        let call = &r["transcript"]["events"][0];
        assert_eq!(
            call["request"]["continuations"],
            serde_json::json!(["yes", "Yes", "YES", "no", "No", "NO"])
        );
        assert_eq!(
            call["response"]["continuations"].as_array().unwrap().len(),
            6
        );
    }
    let res = results(&dir);
    let t = table(&res, "scores/explicit/none");
    assert_eq!(t["rows"].as_array().unwrap().len(), 7);
    assert!(dir.join("report/discrimination-scores.svg").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reasoning_studies_run_on_the_local_model() {
    let Some(models) = models_dir_or_skip() else {
        return;
    };
    let env = offline_env(&models);
    let s = Scratch::new();
    // One AQuA question, a short chain, every intervention.
    let o = s
        .run(
            &[
                "run",
                "cot-faithfulness/interventions",
                "--model",
                "local:gemma-3-270m",
                "--limit",
                "1",
                "--set",
                "cot_tokens=40",
                "--set",
                "max_points=1",
            ],
            &env,
        )
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let dir = run_dir(&o);
    let rec = &records(&dir)[0];
    let sc = &rec["scores"];
    assert_eq!(sc["path"], "scoring");
    let n = sc["sentences"].as_u64().unwrap() as usize;
    assert_eq!(sc["early"].as_array().unwrap().len(), n + 1);
    assert!(sc["original"].is_u64() && sc["no_cot"]["choice"].is_u64());
    let calls = rec["transcript"]["events"].as_array().unwrap();
    assert!(calls.iter().any(|c| c["role"] == "mistaker"));
    assert!(dir.join("report/accuracy.svg").exists());

    // One question under each decomposition strategy (--limit counts questions).
    let o = s
        .run(
            &[
                "run",
                "decomposition/strategies",
                "--model",
                "local:gemma-3-270m",
                "--limit",
                "1",
                "--set",
                "reasoning_tokens=40",
                "--set",
                "max_points=1",
                "--set",
                "max_subquestions=2",
                "--set",
                "shots=3",
                "--set",
                "biases=none",
            ],
            &env,
        )
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let dir = run_dir(&o);
    let strategies: std::collections::BTreeSet<String> = records(&dir)
        .iter()
        .map(|r| r["scores"]["strategy"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(strategies.len(), 4, "{strategies:?}");
    assert!(dir.join("report/accuracy-vs-faithfulness.svg").exists());
    // Every local call records the exact text the model read, and its step.
    for r in records(&dir) {
        for e in r["transcript"]["events"].as_array().unwrap() {
            if e["type"] == "call" {
                let p = e["rendered_prompt"].as_str().unwrap_or_default();
                assert!(p.contains("Human: ") && p.contains("\n\nAssistant:"), "{e}");
                assert!(e["label"].is_string(), "{e}");
            }
        }
    }
}

/// The agent loop on the embedded model: a base model follows the tag protocol from the
/// worked example, the calculator's real results come back to it, and the stop
/// sequences end each turn at the closing tag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_loop_runs_on_the_local_model() {
    let Some(models) = models_dir_or_skip() else {
        return;
    };
    let env = offline_env(&models);
    let s = Scratch::new();
    let o = s
        .run(
            &[
                "run",
                "agent-loop/arithmetic",
                "--model",
                "local:gemma-3-270m",
                "--limit",
                "2",
                "--set",
                "max_turns=3",
                "--set",
                "max_tokens=48",
            ],
            &env,
        )
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let recs = records(&run_dir(&o));
    assert_eq!(recs.len(), 2);
    let mut tools = 0;
    for r in &recs {
        let events = r["transcript"]["events"].as_array().unwrap();
        assert_eq!(events[0]["type"], "call");
        for (i, e) in events.iter().enumerate() {
            if e["type"] != "tool" {
                continue;
            }
            tools += 1;
            // The calculator's result is what the next turn shows the model.
            let out = e["output"].as_str().unwrap();
            let next = events[i + 1..]
                .iter()
                .find(|x| x["type"] == "call")
                .expect("a turn follows a tool step within max_turns");
            let msgs = next["request"]["messages"].as_array().unwrap();
            let last = msgs.last().unwrap()["content"].as_str().unwrap();
            assert_eq!(last, format!("<output exit_status=\"0\">{out}</output>"));
        }
    }
    assert!(tools >= 1, "the model never used the calculator: {recs:?}");
}
