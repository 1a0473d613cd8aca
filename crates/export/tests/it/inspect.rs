//! The Inspect export's fields, read as JSON (inspect_ai itself reads it in
//! `tests/read_exports.py`).

use serde_json::{json, Value};
use shammie_export::inspect::listed_by_inspect;
use shammie_export::{export, Format};

use crate::fixture::{single_run, staged_run, SCRIPT_QUESTION};

fn exported(staged: bool) -> (tempfile::TempDir, String) {
    let tmp = tempfile::tempdir().unwrap();
    let run = if staged {
        staged_run(tmp.path())
    } else {
        single_run(tmp.path())
    };
    let files = export(&run, Format::Inspect, None).unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].parent().unwrap(), run.join("export"));
    let text = std::fs::read_to_string(&files[0]).unwrap();
    (tmp, text)
}

/// Inspect's name for the log (which `inspect view` and `samples_df` need to list it),
/// in `RUN/export/` or a folder given; any other file name when one is given.
#[test]
fn the_log_is_named_as_inspect_names_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let run = single_run(tmp.path());
    let files = export(&run, Format::Inspect, None).unwrap();
    let name = files[0].file_name().unwrap().to_str().unwrap().to_string();
    let (stem, id) = name
        .strip_suffix(".json")
        .unwrap()
        .rsplit_once('_')
        .unwrap();
    assert_eq!(stem, "2025-03-01T09-59-00-00-00_fixture-task");
    assert!(
        id.len() == 22 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
    assert!(listed_by_inspect(&files[0]));
    let log: Value = serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    assert_eq!(log["eval"]["eval_id"], id);
    // The same run exports to the same name.
    assert_eq!(export(&run, Format::Inspect, None).unwrap(), files);

    let folder = tmp.path().join("logs");
    std::fs::create_dir(&folder).unwrap();
    assert_eq!(
        export(&run, Format::Inspect, Some(&folder)).unwrap(),
        [folder.join(&name)]
    );
    let file = tmp.path().join("new/mine.json");
    assert_eq!(
        export(&run, Format::Inspect, Some(&file)).unwrap(),
        std::slice::from_ref(&file)
    );
    assert!(!listed_by_inspect(&file));
    assert!(listed_by_inspect(std::path::Path::new(
        "2024-05-29T12:38:43+00:00_x_y.json"
    )));
    assert!(!listed_by_inspect(std::path::Path::new(
        "2024-05-29T12:38:43+00:00_x_y.eval.gz"
    )));
}

fn roles_and_contents(messages: &Value) -> Vec<(String, String)> {
    messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_string(),
                m["content"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn header_maps_the_run() {
    let (_tmp, text) = exported(false);
    // Inspect's streaming header reader stops at `samples`: it must come last.
    let at = |k: &str| text.find(&format!("\"{k}\":")).unwrap();
    let samples = text.find("\"samples\":[").unwrap();
    for k in ["version", "status", "eval", "plan", "results", "stats"] {
        assert!(at(k) < samples, "{k} after samples");
    }
    let log: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(log["version"], 2);
    assert_eq!(log["status"], "success");
    let e = &log["eval"];
    assert_eq!(e["task"], "fixture/task");
    assert_eq!(e["model"], "openai:gpt-test");
    assert_eq!(e["model_roles"]["judge"]["model"], "openai:judge-model");
    assert_eq!(e["created"], "2025-03-01T09:59:00.000Z");
    assert_eq!(e["run_id"], "single");
    assert_eq!(e["task_args"], json!({"max_tokens": 50, "prompt": "plain"}));
    assert_eq!(e["task_args_passed"], json!({"limit_note": "x"}));
    assert_eq!(e["dataset"], json!({"name": "fixture/task", "samples": 3}));
    assert_eq!(e["config"], json!({"epochs": 2, "limit": 3}));
    assert_eq!(log["plan"]["steps"][0]["solver"], "fixture/task");

    let r = &log["results"];
    assert_eq!(r["total_samples"], 4);
    assert_eq!(r["completed_samples"], 3);
    let scores = r["scores"].as_array().unwrap();
    let names: Vec<&str> = scores.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["accuracy", "by model", "correct", "mixed", "p"]);
    let acc = &scores[0]["metrics"];
    assert_eq!(
        acc["arith: accuracy"],
        json!({"name": "arith: accuracy", "value": 0.5, "params": {},
               "metadata": {"lo": 0.1, "hi": 0.9, "n": 2}})
    );
    assert_eq!(acc["all: accuracy"]["metadata"]["n"], Value::Null);
    assert_eq!(acc["arith: samples"]["value"], 2);
    assert_eq!(
        scores[1]["metrics"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["m1: score"]
    );
    // Sample scores: the mean of the numbers and booleans.
    assert_eq!(scores[2]["metrics"]["mean"]["value"], 1.0 / 3.0);
    assert_eq!(scores[2]["scored_samples"], 3);
    assert_eq!(scores[2]["unscored_samples"], 1);
    assert_eq!(scores[4]["metrics"]["mean"]["value"], 0.5);

    let s = &log["stats"];
    assert_eq!(s["started_at"], "2025-03-01T09:59:00.000Z");
    assert_eq!(s["completed_at"], "2025-03-01T10:00:05.010Z");
    assert_eq!(
        s["model_usage"],
        json!({
            "openai:gpt-test": {"input_tokens": 27, "output_tokens": 9, "total_tokens": 36},
            "openai:judge-model": {"input_tokens": 7, "output_tokens": 1, "total_tokens": 8},
        })
    );
    assert_eq!(s["role_usage"]["judge"]["total_tokens"], 8);
}

#[test]
fn samples_carry_conversation_output_scores_and_errors() {
    let (_tmp, text) = exported(false);
    let log: Value = serde_json::from_str(&text).unwrap();
    let samples = log["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 4);

    let q1 = &samples[0];
    assert_eq!(
        (q1["id"].as_str(), q1["epoch"].as_u64()),
        (Some("q1"), Some(1))
    );
    assert_eq!(
        roles_and_contents(&q1["input"]),
        pairs(&[("system", "Answer briefly."), ("user", "What is 2+2?")])
    );
    assert_eq!(
        roles_and_contents(&q1["messages"]),
        pairs(&[
            ("system", "Answer briefly."),
            ("user", "What is 2+2?"),
            ("assistant", "The answer is 4"),
        ])
    );
    assert_eq!(q1["messages"][2]["metadata"]["prefill"], "The answer is");
    let out = &q1["output"];
    assert_eq!(out["model"], "openai:gpt-test");
    assert_eq!(out["completion"], "The answer is 4");
    assert_eq!(out["choices"][0]["stop_reason"], "stop");
    assert_eq!(
        out["choices"][0]["logprobs"]["content"][0]["top_logprobs"][1],
        json!({"token": " 5", "logprob": -2.5})
    );
    assert_eq!(
        out["usage"],
        json!({"input_tokens": 10, "output_tokens": 2, "total_tokens": 12})
    );
    assert_eq!(
        q1["scores"],
        json!({
            "correct": {"value": true},
            "detail": {"value": {"a": 1, "b": "x", "c": "[1,2]"}},
            "label": {"value": "A"},
            "mixed": {"value": 1},
            "p": {"value": 0.75},
        })
    );
    assert_eq!(q1["metadata"]["question"], "What is 2+2?");
    assert_eq!(q1["metadata"]["meta"]["source"], "arith");
    assert_eq!(q1["started_at"], "2025-03-01T10:00:00.000Z");
    assert_eq!(q1["completed_at"], "2025-03-01T10:00:01.500Z");
    assert_eq!(q1["total_time"], 1.5);
    assert!(q1.get("error").is_none());

    // The agent turn: the tool result the second request repeats is shown once, as
    // the tool message; the judge's call starts its own conversation.
    let q2 = &samples[1];
    assert_eq!(
        roles_and_contents(&q2["messages"]),
        pairs(&[
            ("system", "You are terse."),
            ("user", SCRIPT_QUESTION),
            ("assistant", "Let me check."),
            ("tool", "4"),
            ("assistant", "It is 4 \u{2713}"),
            ("user", "Is 'It is 4 \u{2713}' correct?"),
            ("assistant", "yes"),
        ])
    );
    let m = &q2["messages"];
    assert_eq!(
        m[2]["tool_calls"],
        json!([{"id": "call_1", "function": "calc", "type": "function",
                "arguments": {"expr": "2+2"}}])
    );
    assert_eq!(m[3]["tool_call_id"], "call_1");
    assert_eq!(m[3]["function"], "calc");
    assert_eq!(m[6]["model"], "openai:judge-model");
    assert_eq!(m[6]["metadata"]["cached"], true);
    assert_eq!(m[6]["metadata"]["role"], "judge");
    assert_eq!(q2["output"]["choices"][0]["stop_reason"], "max_tokens");
    assert_eq!(q2["output"]["completion"], "yes");
    assert_eq!(q2["metadata"]["shammie_notes"], json!(["parsed answer 4"]));
    assert_eq!(q2["metadata"]["lang"], "日本語");
    assert_eq!(
        q2["scores"]["label"],
        Value::Null,
        "null scores are left out"
    );
    assert_eq!(q2["model_usage"]["openai:gpt-test"]["input_tokens"], 17);
    assert_eq!(q2["role_usage"]["judge"]["output_tokens"], 1);
    // `<script>` is data: JSON-escaped only as JSON requires.
    assert!(text.contains(r#"<script>alert(\"x\")</script>"#));

    let q3 = &samples[2];
    assert_eq!(
        q3["error"],
        json!({"message": "provider error: HTTP 500: overloaded",
               "traceback": "", "traceback_ansi": ""})
    );
    assert_eq!(
        q3["metadata"]["shammie_error"],
        "provider error: HTTP 500: overloaded"
    );
    assert_eq!(q3["output"]["error"], "HTTP 500: overloaded");
    assert_eq!(q3["output"]["choices"], json!([]));
    assert_eq!(q3["scores"], json!({}));

    // No calls: the input is the sample's input JSON as text.
    let q1e2 = &samples[3];
    assert_eq!(q1e2["epoch"], 2);
    let input: Value = serde_json::from_str(q1e2["input"].as_str().unwrap()).unwrap();
    assert_eq!(input["question"], "What is 2+2?");
    assert_eq!(q1e2["messages"], json!([]));
}

#[test]
fn staged_samples_are_named_by_stage() {
    let (_tmp, text) = exported(true);
    let log: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(log["status"], "started", "no results.json");
    let ids: Vec<&str> = log["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["gen/p1", "eval/p1"]);
    assert_eq!(log["samples"][1]["metadata"]["shammie_stage"], "eval");
    assert_eq!(log["samples"][1]["metadata"]["shammie_id"], "p1");
    let steps: Vec<&str> = log["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["solver"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["gen", "eval"]);
    assert_eq!(log["results"]["total_samples"], 2);
}
