//! Readable transcripts of a run's samples (`shammie show RUN --samples`): each sample's
//! id, scores and error, then its events in order — model calls with their step label,
//! role and model, the prompt (its last message, or every message with `--full`; a local
//! model's exact rendered text when recorded), the prefill and the answer; tool steps;
//! notes. Plain text, no colour, no timings (so it is the same every time it is shown).

use std::fmt::Write;

use shammie_core::{CallRecord, Event, Message, Role, SampleRecord};

/// Longest score value shown in full (longer ones are cut with `…`).
const MAX_SCORE: usize = 160;

pub(crate) fn render(r: &SampleRecord, full: bool) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "━━ {} (epoch {})", r.id, r.epoch);
    if let Some(e) = &r.error {
        let _ = writeln!(o, "error: {e}");
    }
    if !r.scores.is_empty() {
        let _ = writeln!(o, "scores:");
        for (k, v) in &r.scores {
            let v = serde_json::to_string(v).unwrap_or_default();
            let _ = writeln!(o, "  {k} = {}", cut(&v, MAX_SCORE));
        }
    }
    let mut calls = 0;
    for e in &r.transcript.events {
        match e {
            Event::Call(c) => {
                calls += 1;
                call(&mut o, calls, c, full);
            }
            Event::Tool(t) => {
                let _ = writeln!(
                    o,
                    "· tool {} {}{}",
                    t.name,
                    t.input,
                    if t.replayed { " (replayed)" } else { "" }
                );
                if let Some(e) = &t.error {
                    let _ = writeln!(o, "    could not run: {e}");
                }
                indent(&mut o, "    ", &t.output);
                if let Some(s) = t.exit_status.filter(|s| *s != 0) {
                    let _ = writeln!(o, "    (exit status {s})");
                }
            }
            Event::Note(n) => {
                let _ = writeln!(o, "· note: {}", n.text);
            }
        }
    }
    o.push('\n');
    o
}

fn call(o: &mut String, n: usize, c: &CallRecord, full: bool) {
    let cached = if c.response.as_ref().is_some_and(|r| r.meta.cached) {
        ", cached"
    } else {
        ""
    };
    let _ = writeln!(
        o,
        "[{n}] {} · {} ({}{cached})",
        c.label.as_deref().unwrap_or("(no label)"),
        c.role,
        c.model
    );
    let req = &c.request;
    match (&c.rendered_prompt, full) {
        (Some(p), true) => {
            let _ = writeln!(o, "  prompt as the model read it:");
            indent(o, "    ", p);
        }
        _ => {
            if full {
                if let Some(s) = &req.system {
                    let _ = writeln!(o, "  system:");
                    indent(o, "    ", s);
                }
            }
            let skip = if full {
                0
            } else {
                req.messages.len().saturating_sub(1)
            };
            if skip > 0 {
                let _ = writeln!(o, "  ({skip} earlier messages; --full shows them)");
            }
            for m in &req.messages[skip..] {
                message(o, m);
            }
            if let Some(p) = &req.prefill {
                let _ = writeln!(o, "  prefill:");
                indent(o, "    ", p);
            }
        }
    }
    if let Some(e) = &c.error {
        let _ = writeln!(o, "  error: {e}");
        return;
    }
    let Some(resp) = &c.response else {
        return;
    };
    if let Some(scores) = &resp.continuations {
        let _ = writeln!(o, "  scored continuations (log p):");
        for (text, s) in req.continuations.iter().zip(scores) {
            let _ = writeln!(o, "    {text:?}  {:.4}", s.logprob);
        }
        return;
    }
    let _ = writeln!(o, "  answer:");
    indent(o, "    ", &resp.text);
    if let Some(lp) = resp.logprobs.as_ref().and_then(|l| l.first()) {
        let top: Vec<String> = lp
            .top
            .iter()
            .take(5)
            .map(|t| format!("{:?} {:.3}", t.token, t.logprob))
            .collect();
        if !top.is_empty() {
            let _ = writeln!(o, "  first token top: {}", top.join(", "));
        }
    }
    for t in &resp.tool_calls {
        let _ = writeln!(o, "  calls tool {} {}", t.name, t.arguments);
    }
}

fn message(o: &mut String, m: &Message) {
    let who = match (m.role, &m.tool_result) {
        (_, Some(t)) => format!("tool result {}", t.call_id),
        (Role::User, None) => "user".into(),
        (Role::Assistant, None) => "assistant".into(),
    };
    let _ = writeln!(o, "  {who}:");
    indent(o, "    ", &m.content);
}

fn indent(o: &mut String, pad: &str, text: &str) {
    if text.is_empty() {
        let _ = writeln!(o, "{pad}(empty)");
    }
    for l in text.lines() {
        let _ = writeln!(o, "{pad}{l}");
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max).collect();
    t.push('…');
    t
}

/// Whether a score equals a `--where` value: as JSON (numbers compared as numbers, so
/// `2` matches `2.0`), else as text.
pub(crate) fn matches(score: &serde_json::Value, want: &str) -> bool {
    use serde_json::Value;
    match (score, serde_json::from_str::<Value>(want)) {
        (Value::Number(a), Ok(Value::Number(b))) => a.as_f64() == b.as_f64(),
        (Value::String(a), _) => a == want,
        (s, Ok(w)) => *s == w,
        (_, Err(_)) => false,
    }
}
