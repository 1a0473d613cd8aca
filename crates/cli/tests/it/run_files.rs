//! `shammie run --config FILE.toml` (one run per model of a sweep) and `shammie run
//! --from RUN_DIR` (the same configuration again, on another model), through the binary
//! on the mock server.

use crate::common::*;
use shammie_testkit::MockServer;

fn meta(dir: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap()
}

fn run_dirs(runs: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(runs)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_from_a_file_and_a_repeat_on_another_model() {
    let server = MockServer::start().await.unwrap();
    let s = Scratch::new();
    let base = server.openai_base_url();
    let cfg = s.dir.path().join("sweep.toml");
    std::fs::write(
        &cfg,
        format!(
            "task = \"constitution/traits\"\nmodels = [\"openai-compatible:{base}/model-a\", \"openai-compatible:{base}/model-b\"]\nlimit = 2\nseed = 5\n\n[set]\npath = \"sampling\"\nsamples = 3\n"
        ),
    )
    .unwrap();
    let o = s
        .run(&["run", "--config", cfg.to_str().unwrap()], &[])
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let dirs = run_dirs(&s.runs());
    assert_eq!(dirs.len(), 2);
    let metas: Vec<serde_json::Value> = dirs.iter().map(|d| meta(d)).collect();
    let mut targets: Vec<&str> = metas
        .iter()
        .map(|m| m["models"]["target"].as_str().unwrap())
        .collect();
    targets.sort();
    assert_eq!(
        targets,
        [
            format!("openai-compatible:{base}/model-a"),
            format!("openai-compatible:{base}/model-b")
        ]
    );
    for (m, d) in metas.iter().zip(&dirs) {
        assert_eq!(m["seed"], 5);
        assert_eq!(m["limit"], 2);
        assert_eq!(m["options"]["path"], "sampling");
        assert_eq!(m["options"]["samples"], "3");
        assert_eq!(records(d)[0]["scores"]["path"], "sampling");
    }

    // The first run again, on model-c, with one more option.
    let o = s
        .run(
            &[
                "run",
                "--from",
                dirs[0].to_str().unwrap(),
                "--model",
                &format!("openai-compatible:{base}/model-c"),
                "--set",
                "samples=4",
            ],
            &[],
        )
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let again = meta(&run_dir(&o));
    assert_eq!(again["task"], "traits");
    assert_eq!(
        again["models"]["target"],
        format!("openai-compatible:{base}/model-c")
    );
    assert_eq!(again["seed"], 5);
    assert_eq!(again["limit"], 2);
    assert_eq!(again["options"]["path"], "sampling");
    assert_eq!(again["options"]["samples"], "4");

    // A typo in the file: an error naming file and line, and no run.
    std::fs::write(
        &cfg,
        format!(
            "task = \"constitution/traits\"\nmodel = \"openai-compatible:{base}/m\"\nseeed = 1\n"
        ),
    )
    .unwrap();
    let before = run_dirs(&s.runs()).len();
    let o = s
        .run(&["run", "--config", cfg.to_str().unwrap()], &[])
        .await;
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("sweep.toml:3") && err.contains("seeed"),
        "{err}"
    );
    assert_eq!(run_dirs(&s.runs()).len(), before);
}
