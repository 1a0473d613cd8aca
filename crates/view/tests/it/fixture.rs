//! A run directory built by hand with known contents: 30 samples over two datasets, every
//! seventh failed, one whose model output holds a script tag, token logprobs, a tool
//! step and a note; results with an estimate cell and a figure; and a two-stage run.

use std::path::{Path, PathBuf};

use shammie_core::SampleRecord;

pub(crate) const SAMPLES: usize = 30;
pub(crate) const RUN: &str = "20261206T000000Z-demo-task";
pub(crate) const STAGED: &str = "20261206T000100Z-demo-staged";
/// What sample 5's model said: it must show as text, and never run.
pub(crate) const SCRIPT: &str =
    "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">";

pub(crate) fn failed(i: usize) -> bool {
    i % 7 == 3
}

pub(crate) fn correct(i: usize) -> bool {
    i.is_multiple_of(3)
}

pub(crate) fn record(i: usize) -> SampleRecord {
    let reply = if i == 5 {
        SCRIPT.to_string()
    } else {
        format!(
            "The answer to question {i} is ({}).",
            if correct(i) { "A" } else { "B" }
        )
    };
    let mut v = serde_json::json!({
        "id": format!("q{i:02}/cot"),
        "epoch": 1,
        "input": {"dataset": if i.is_multiple_of(2) { "even-set" } else { "odd-set" }, "question": format!("Question number {i}: which is it?")},
        "transcript": {"events": [
            {"type": "call", "role": "target", "label": "answer", "model": "scripted:demo",
             "request": {"system": "Be brief.", "messages": [{"role": "user", "content": format!("Question number {i}: which is it?")}], "max_tokens": 20, "temperature": 0.0},
             "response": {"text": reply, "logprobs": [
                 {"token": "The", "logprob": -0.1, "top": [{"token": "The", "logprob": -0.1}, {"token": "A", "logprob": -2.5}]},
                 {"token": " answer", "logprob": -0.7, "top": []}],
               "stop_reason": "end_turn", "usage": {"input_tokens": 10, "output_tokens": 7}}},
            {"type": "tool", "name": "calc", "input": {"text": "2+2"}, "output": "4", "exit_status": 0, "duration_ms": 3},
            {"type": "note", "text": format!("note for sample {i}")}
        ]},
        "scores": {"correct": correct(i), "p": (i as f64) / 100.0, "path": "sampling"},
        "usage": {"input_tokens": 10, "output_tokens": 7},
        "started_at": "2026-12-06T00:00:00Z",
        "duration_ms": 12
    });
    if failed(i) {
        v["error"] = "target model: HTTP 503 after 5 attempts".into();
        v["scores"] = serde_json::json!({});
    }
    serde_json::from_value(v).expect("a valid record")
}

fn run_json(task: &str) -> String {
    serde_json::json!({
        "schema_version": 2, "shammie_version": "0.1.0", "study": "demo", "task": task,
        "models": {"target": "scripted:demo"}, "options": {"k": "v"}, "config": {},
        "seed": 7, "epochs": 1, "max_connections": 4, "created_at": "2026-12-06T00:00:00Z"
    })
    .to_string()
}

/// A folder holding two runs; returns it.
pub(crate) fn runs(root: &Path) -> PathBuf {
    let dir = root.join(RUN);
    std::fs::create_dir_all(dir.join("report")).unwrap();
    std::fs::write(dir.join("run.json"), run_json("task")).unwrap();
    let mut lines = String::new();
    for i in 0..SAMPLES {
        lines.push_str(&serde_json::to_string(&record(i)).unwrap());
        lines.push('\n');
    }
    std::fs::write(dir.join("samples.jsonl"), lines).unwrap();
    std::fs::write(
        dir.join("results.json"),
        serde_json::json!({
            "schema_version": 2, "study": "demo", "task": "task",
            "tables": [{"name": "accuracy", "title": "Accuracy by dataset", "caption": "model scripted:demo · seed 7",
                "columns": ["dataset", "accuracy [95% CI]", "n"],
                "rows": [["even-set", {"estimate": 0.4, "lo": 0.2, "hi": 0.61, "n": 13}, 13], ["odd-set", {"estimate": 0.25, "lo": 0.1, "hi": 0.5, "n": 13}, 13]],
                "notes": ["Wilson intervals."]}],
            "files": [{"path": "report/accuracy.svg", "description": "accuracy per dataset"}],
            "totals": {"samples": SAMPLES, "failed": 4, "calls": SAMPLES, "cached_calls": 0,
                "usage": {"input_tokens": 0, "output_tokens": 0}, "paid_usage": {"input_tokens": 0, "output_tokens": 0},
                "cost_usd": 0.25, "paid_cost_usd": 0.1, "unpriced_calls": 0}
        })
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("report/accuracy.svg"),
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"200\" height=\"60\"><rect width=\"120\" height=\"30\" fill=\"#0072b2\"/><text x=\"4\" y=\"50\">accuracy</text></svg>",
    )
    .unwrap();
    let staged = root.join(STAGED);
    std::fs::create_dir_all(staged.join("stages/measure")).unwrap();
    std::fs::write(staged.join("run.json"), run_json("staged")).unwrap();
    std::fs::write(
        staged.join("stages/measure/samples.jsonl"),
        serde_json::to_string(&record(0)).unwrap() + "\n",
    )
    .unwrap();
    root.to_path_buf()
}

pub(crate) const CLUSTERS: &str = "20261206T000300Z-clio-usage";

/// A folder holding one run with a cluster tree and map (as `clio/usage` writes them):
/// two top-level categories; "Cooking" has two shown clusters, "Software" one shown and
/// one withheld (4 conversations), whose points are not on the map. A cluster name holds
/// markup, which must show as text.
pub(crate) fn clusters(root: &Path) -> PathBuf {
    let dir = root.join(CLUSTERS);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("run.json"), run_json("usage")).unwrap();
    std::fs::write(
        dir.join("results.json"),
        serde_json::json!({
            "schema_version": 2, "study": "clio", "task": "usage", "tables": [],
            "files": [
                {"path": "data/tree.json", "description": "the cluster tree"},
                {"path": "data/map.json", "description": "the map"}
            ]
        })
        .to_string(),
    )
    .unwrap();
    let leaf = |id: &str, name: &str, n: usize| {
        serde_json::json!({"level": 0, "id": id, "name": name, "description": format!("About {name}."),
            "conversations": n, "users": n, "audit": 5, "children": [], "withheld_children": 0, "withheld_conversations": 0})
    };
    let tree = serde_json::json!({
        "conversations": 40, "levels": 1,
        "roots": [
            {"level": 1, "id": "L1-0", "name": "Cooking", "description": "Food.", "conversations": 24, "users": 24, "audit": 5,
             "children": [leaf("L0-0", "Bake bread", 14), leaf("L0-1", "<img src=x onerror=window.__pwned=1>", 10)],
             "withheld_children": 0, "withheld_conversations": 0},
            {"level": 1, "id": "L1-1", "name": "Software", "description": "Code.", "conversations": 16, "users": 16, "audit": 4,
             "children": [leaf("L0-2", "Fix Python errors", 12)],
             "withheld_children": 1, "withheld_conversations": 4,
             "facets": {"concerning": {"counts": [10, 4, 2, 0, 0], "n": 16, "mean": 1.5, "lo": 1.1, "hi": 1.9},
                        "languages": [{"language": "English", "conversations": 12}, {"language": "<b>French</b>", "conversations": 4}]}}
        ]
    });
    std::fs::write(dir.join("data/tree.json"), tree.to_string()).unwrap();
    let mut points = Vec::new();
    for (c, n, x, y) in [
        ("L0-0", 14, 0.0, 0.0),
        ("L0-1", 10, 5.0, 0.0),
        ("L0-2", 12, 0.0, 8.0),
    ] {
        for i in 0..n {
            points.push(serde_json::json!({"x": x + 0.1 * i as f64, "y": y + 0.05 * i as f64, "cluster": c}));
        }
    }
    let map = serde_json::json!({
        "points": points, "sampled": 40,
        "clusters": [
            {"id": "L0-0", "name": "Bake bread", "x": 0.65, "y": 0.3, "conversations": 14, "top": "L1-0"},
            {"id": "L0-1", "name": "<img src=x onerror=window.__pwned=1>", "x": 5.45, "y": 0.2, "conversations": 10, "top": "L1-0"},
            {"id": "L0-2", "name": "Fix Python errors", "x": 0.55, "y": 8.3, "conversations": 12, "top": "L1-1"}
        ]
    });
    std::fs::write(dir.join("data/map.json"), map.to_string()).unwrap();
    root.to_path_buf()
}
