//! `shammie show RUN --samples [ID…]`: readable transcripts (step labels, prefill,
//! answers, scores, errors), filtered by id, error or score. The run directory is written
//! here by hand, as an older version would have left it (one call has no label), so the
//! rendering is fixed and old logs are covered.

use std::path::Path;

use crate::common::*;

fn usage() -> serde_json::Value {
    serde_json::json!({"input_tokens": 10, "output_tokens": 2})
}

fn write_run(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let run = serde_json::json!({
        "schema_version": 2, "shammie_version": "0.1.0", "study": "agent-loop",
        "task": "arithmetic", "models": {"target": "anthropic:claude-test"}, "options": {},
        "config": {}, "seed": 0, "epochs": 1, "limit": 2, "max_connections": 4,
        "created_at": "2026-01-01T00:00:00Z"
    });
    std::fs::write(dir.join("run.json"), run.to_string()).unwrap();
    let cot = serde_json::json!({
        "id": "q1/cot", "epoch": 1, "input": {},
        "transcript": {"events": [
            {"type": "call", "role": "target", "label": "cot", "model": "anthropic:claude-test",
             "request": {"system": "Answer carefully.", "messages": [
                 {"role": "user", "content": "Example: 1+1?"},
                 {"role": "assistant", "content": "2"},
                 {"role": "user", "content": "Question: 2+3?\nChoices: (A) 5 (B) 6"}],
              "prefill": "Let's think step by step.", "max_tokens": 64},
             "response": {"text": " 2 and 3 make 5.", "stop_reason": "end_turn", "usage": usage(),
                          "meta": {"cached": true}}},
            {"type": "call", "role": "target", "label": "early k=0", "model": "local:gemma-3-270m",
             "request": {"messages": [{"role": "user", "content": "Question: 2+3?"}],
                         "max_tokens": 1, "continuations": [" A", " B"]},
             "rendered_prompt": "Human: Question: 2+3?\n\nAssistant: The answer is (",
             "response": {"text": "", "continuations": [{"logprob": -0.1, "tokens": 1},
                                                        {"logprob": -2.5, "tokens": 1}],
                          "stop_reason": "end_turn", "usage": usage()}},
            {"type": "note", "text": "the reader found (A)"}
        ]},
        "scores": {"strategy": "cot", "correct": true, "units": 2}, "usage": usage(),
        "started_at": "2026-01-01T00:00:01Z", "duration_ms": 12
    });
    let factored = serde_json::json!({
        "id": "q1/factored", "epoch": 1, "input": {},
        "transcript": {"events": [
            {"type": "call", "role": "decomposer", "model": "anthropic:claude-test",
             "request": {"messages": [{"role": "user", "content": "Decompose: 2+3?"}], "max_tokens": 64},
             "error": "HTTP 500: overloaded"},
            {"type": "tool", "name": "calc", "input": {"text": "2+3"}, "output": "5",
             "exit_status": 0, "duration_ms": 1}
        ]},
        "scores": {"strategy": "factored"}, "usage": usage(), "error": "decomposer model: HTTP 500: overloaded",
        "started_at": "2026-01-01T00:00:02Z", "duration_ms": 30
    });
    std::fs::write(dir.join("samples.jsonl"), format!("{cot}\n{factored}\n")).unwrap();
}

async fn show(s: &Scratch, args: &[&str]) -> String {
    let o = s.cmd(args).output().await.unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    stdout(&o)
}

#[tokio::test]
async fn samples_render_as_labelled_transcripts_and_filter() {
    let s = Scratch::new();
    let dir = s.dir.path().join("run");
    write_run(&dir);
    let d = dir.to_str().unwrap();
    insta::assert_snapshot!("transcripts_all", show(&s, &["show", d, "--samples"]).await);
    insta::assert_snapshot!(
        "transcripts_full",
        show(&s, &["show", d, "--samples", "q1/cot", "--full"]).await
    );
    // Filters: errors only; a score equal to a value; an id prefix (a question with all
    // its strategies).
    let errors = show(&s, &["show", d, "--samples", "--errors"]).await;
    assert!(
        errors.starts_with("━━ q1/factored") && !errors.contains("q1/cot"),
        "{errors}"
    );
    let cot = show(
        &s,
        &[
            "show",
            d,
            "--samples",
            "--where",
            "strategy=cot",
            "--where",
            "units=2",
        ],
    )
    .await;
    assert!(
        cot.starts_with("━━ q1/cot") && !cot.contains("q1/factored"),
        "{cot}"
    );
    let none = show(&s, &["show", d, "--samples", "--where", "correct=false"]).await;
    assert_eq!(none, "");
    let both = show(&s, &["show", d, "--samples", "q1"]).await;
    assert_eq!(both.matches("━━ ").count(), 2, "{both}");
    // --json gives the records themselves.
    let json: serde_json::Value =
        serde_json::from_str(&show(&s, &["show", d, "--samples", "--errors", "--json"]).await)
            .unwrap();
    assert_eq!(json.as_array().unwrap().len(), 1);
    assert_eq!(json[0]["id"], "q1/factored");
}
