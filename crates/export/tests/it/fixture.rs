//! Hand-built run directories with known values, written as Shammie writes them.
//!
//! The single-stage run has four records: `q1` (a prefilled answer with logprobs, every
//! kind of score: bool, float, int, text, an object, a mix of int and text), `q2` (an
//! agent turn with a native tool call, its tool event, a note and a cached judge call;
//! its input holds `<script>`, quotes, a comma, a newline and non-Latin text), `q3` (a
//! failed sample whose only call failed) and `q1` epoch 2 (no calls). Its results have
//! two tables: estimates with and without n, and a column mixing numbers and text.
//! The staged run has stages `gen` (finished first) and `eval` (second), both with a
//! sample `p1`, and `train`, a stage without records. The Python script
//! `tests/read_exports.py` asserts the same values.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

pub(crate) const SCRIPT_QUESTION: &str =
    "<script>alert(\"x\")</script>, ünïcödé 日本語\nsecond line";

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn jsonl(records: &[Value]) -> String {
    records.iter().map(|r| format!("{r}\n")).collect()
}

fn run_json(study: &str, task: &str) -> Value {
    json!({
        "schema_version": 2,
        "shammie_version": "0.1.0",
        "study": study,
        "task": task,
        "models": {"judge": "openai:judge-model", "target": "openai:gpt-test"},
        "options": {"limit_note": "x"},
        "config": {"max_tokens": 50, "prompt": "plain"},
        "seed": 7,
        "epochs": 2,
        "limit": 3,
        "max_connections": 4,
        "created_at": "2025-03-01T09:59:00.000+00:00"
    })
}

fn usage(i: u64, o: u64) -> Value {
    json!({"input_tokens": i, "output_tokens": o})
}

fn q1(epoch: u32) -> Value {
    let input = json!({"choices": ["3", "4"], "meta": {"level": 1, "source": "arith"}, "question": "What is 2+2?"});
    if epoch == 2 {
        return json!({
            "id": "q1", "epoch": 2, "input": input,
            "transcript": {"events": []},
            "scores": {"correct": false, "mixed": "x", "p": 0.25},
            "usage": usage(0, 0),
            "started_at": "2025-03-01T10:00:05.000Z", "duration_ms": 10
        });
    }
    json!({
        "id": "q1", "epoch": 1, "input": input,
        "transcript": {"events": [{
            "type": "call", "role": "target", "label": "answer", "model": "openai:gpt-test",
            "request": {"system": "Answer briefly.", "messages": [{"role": "user", "content": "What is 2+2?"}],
                        "prefill": "The answer is", "max_tokens": 5, "top_logprobs": 2},
            "response": {"text": " 4",
                         "logprobs": [{"token": " 4", "logprob": -0.1,
                                       "top": [{"token": " 4", "logprob": -0.1}, {"token": " 5", "logprob": -2.5}]}],
                         "stop_reason": "end_turn", "usage": usage(10, 2),
                         "meta": {"cached": false, "attempts": 1, "latency_ms": 250}}
        }]},
        "scores": {"correct": true, "detail": {"a": 1, "b": "x", "c": [1, 2]}, "label": "A", "mixed": 1, "p": 0.75},
        "usage": usage(10, 2),
        "started_at": "2025-03-01T10:00:00.000Z", "duration_ms": 1500
    })
}

fn q2() -> Value {
    let user = json!({"role": "user", "content": SCRIPT_QUESTION});
    let tool_call = json!({"id": "call_1", "name": "calc", "arguments": "{\"expr\":\"2+2\"}"});
    json!({
        "id": "q2", "epoch": 1,
        "input": {"lang": "日本語", "question": SCRIPT_QUESTION},
        "transcript": {"events": [
            {"type": "call", "role": "target", "label": "turn 1", "model": "openai:gpt-test",
             "request": {"system": "You are terse.", "messages": [user], "max_tokens": 50},
             "response": {"text": "Let me check.", "tool_calls": [tool_call], "stop_reason": "tool_use",
                          "usage": usage(5, 3), "meta": {"cached": false, "attempts": 1, "latency_ms": 100}}},
            {"type": "tool", "name": "calc", "input": {"expr": "2+2"}, "output": "4", "exit_status": 0, "duration_ms": 1},
            {"type": "call", "role": "target", "label": "turn 2", "model": "openai:gpt-test",
             "request": {"system": "You are terse.", "messages": [
                 user,
                 {"role": "assistant", "content": "Let me check.", "tool_calls": [tool_call]},
                 {"role": "user", "content": "4", "tool_result": {"call_id": "call_1"}}
             ], "max_tokens": 50},
             "response": {"text": "It is 4 \u{2713}", "stop_reason": "end_turn", "usage": usage(12, 4),
                          "meta": {"cached": false, "attempts": 1, "latency_ms": 120}}},
            {"type": "note", "text": "parsed answer 4"},
            {"type": "call", "role": "judge", "label": "judge", "model": "openai:judge-model",
             "request": {"messages": [{"role": "user", "content": "Is 'It is 4 \u{2713}' correct?"}], "max_tokens": 1},
             "response": {"text": "yes", "stop_reason": "max_tokens", "usage": usage(7, 1),
                          "meta": {"cached": true, "attempts": 0, "latency_ms": 0}}}
        ]},
        "scores": {"correct": false, "label": null, "p": 0.5},
        "usage": usage(24, 8),
        "started_at": "2025-03-01T10:00:01.000Z", "duration_ms": 2500
    })
}

fn q3() -> Value {
    json!({
        "id": "q3", "epoch": 1, "input": {"question": "q3?"},
        "transcript": {"events": [
            {"type": "call", "role": "target", "model": "openai:gpt-test",
             "request": {"messages": [{"role": "user", "content": "q3?"}], "max_tokens": 50},
             "error": "HTTP 500: overloaded"}
        ]},
        "scores": {},
        "usage": usage(0, 0),
        "error": "provider error: HTTP 500: overloaded",
        "started_at": "2025-03-01T10:00:02.000Z", "duration_ms": 300
    })
}

fn results(study: &str, task: &str) -> Value {
    json!({
        "schema_version": 2, "study": study, "task": task,
        "tables": [
            {"name": "accuracy", "title": "Accuracy by dataset", "columns": ["dataset", "accuracy", "samples"],
             "rows": [
                 ["arith", {"estimate": 0.5, "lo": 0.1, "hi": 0.9, "n": 2}, 2],
                 ["all", {"estimate": 0.5, "lo": 0.2, "hi": 0.8}, 3]
             ]},
            {"name": "by model", "title": "Mixed", "columns": ["model", "score", "note"],
             "rows": [["m1", 0.25, "ok"], ["m2", "n/a", null]]}
        ],
        "totals": {"samples": 4, "failed": 1, "calls": 5, "cached_calls": 1,
                   "usage": usage(34, 10), "paid_usage": usage(27, 9)}
    })
}

/// The single-stage run, in `parent/single`.
pub(crate) fn single_run(parent: &Path) -> PathBuf {
    let dir = parent.join("single");
    write(
        &dir.join("run.json"),
        &run_json("fixture", "task").to_string(),
    );
    write(
        &dir.join("samples.jsonl"),
        &jsonl(&[q1(1), q2(), q3(), q1(2)]),
    );
    write(
        &dir.join("results.json"),
        &results("fixture", "task").to_string(),
    );
    dir
}

/// The staged run, in `parent/staged`.
pub(crate) fn staged_run(parent: &Path) -> PathBuf {
    let dir = parent.join("staged");
    write(
        &dir.join("run.json"),
        &run_json("fixture", "staged").to_string(),
    );
    let rec = |input: Value, scores: Value| {
        json!({"id": "p1", "epoch": 1, "input": input, "transcript": {"events": []},
               "scores": scores, "usage": usage(1, 1),
               "started_at": "2025-03-01T10:00:00.000Z", "duration_ms": 5})
    };
    let done = |stage: &str, at: &str| {
        json!({"stage": stage, "finished_at": at, "records": 1, "artifacts": []}).to_string()
    };
    let gen = dir.join("stages/gen");
    write(
        &gen.join("samples.jsonl"),
        &jsonl(&[rec(json!({"prompt": "hi"}), json!({"len": 2}))]),
    );
    write(&gen.join("done.json"), &done("gen", "2025-03-01T10:00:00Z"));
    let eval = dir.join("stages/eval");
    write(
        &eval.join("samples.jsonl"),
        &jsonl(&[rec(
            json!({"prompt": "hi", "variant": "b"}),
            json!({"ok": true}),
        )]),
    );
    write(
        &eval.join("done.json"),
        &done("eval", "2025-03-01T11:00:00Z"),
    );
    write(
        &dir.join("stages/train/done.json"),
        &done("train", "2025-03-01T10:30:00Z"),
    );
    dir
}
