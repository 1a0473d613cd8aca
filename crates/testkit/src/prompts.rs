//! The requests a study sent, rendered as plain text for snapshot tests.
//!
//! A change of wording changes a study's results and misses the response cache, so the
//! first prompts of every task are snapshotted (in each study crate's `tests/it/`): this
//! is the one readable form they share. One block per call, with every field of the
//! request but the nonce. Text is shown line by line after `| `; a line that ends in
//! whitespace is quoted after `|~ `, so that whitespace is visible in review and
//! survives editors. Consecutive calls whose requests differ only in their nonce (the N
//! answers of a sampling path) are shown once, with their count.

use std::fmt::Write;

use shammie_core::{CallRecord, GenerateRequest, Role, SampleRecord};

/// Every call of `records`, one section per sample (`=== sample ID (epoch E) ===`).
pub fn render_records(records: &[SampleRecord]) -> String {
    let mut out = String::new();
    for r in records {
        let calls: Vec<(usize, &CallRecord)> = r.transcript.calls().enumerate().collect();
        out.push_str(&render_sample(r, &calls));
    }
    out
}

/// The section of one sample with only some of its calls (numbered from 0, as
/// `transcript.calls()` yields them; shown numbered from 1).
pub fn render_sample(record: &SampleRecord, calls: &[(usize, &CallRecord)]) -> String {
    let mut out = format!("=== sample {} (epoch {}) ===\n", record.id, record.epoch);
    if let Some(e) = &record.error {
        let _ = writeln!(out, "error: {e}");
    }
    let mut i = 0;
    while i < calls.len() {
        let (first, call) = calls[i];
        // Calls that differ from this one only in their nonce, with consecutive numbers.
        let mut j = i + 1;
        while j < calls.len()
            && calls[j].0 == first + (j - i)
            && calls[j].1.role == call.role
            && same_but_nonce(&calls[j].1.request, &call.request)
        {
            j += 1;
        }
        let header = if j - i == 1 {
            format!("call {}", first + 1)
        } else {
            format!(
                "calls {}-{}, {} requests identical but for their nonce",
                first + 1,
                first + j - i,
                j - i
            )
        };
        let _ = writeln!(out, "--- {header} (role {}) ---", call.role);
        out.push_str(&render_request(&call.request));
        i = j;
    }
    out.push('\n');
    out
}

fn same_but_nonce(a: &GenerateRequest, b: &GenerateRequest) -> bool {
    let mut a = a.clone();
    a.nonce = b.nonce;
    &a == b
}

fn text_block(out: &mut String, indent: &str, text: &str) {
    for line in text.split('\n') {
        if line.is_empty() {
            let _ = writeln!(out, "{indent}|");
        } else if line.ends_with(char::is_whitespace) {
            let _ = writeln!(out, "{indent}|~ {line:?}");
        } else {
            let _ = writeln!(out, "{indent}| {line}");
        }
    }
}

fn opt<T: std::fmt::Debug>(v: &Option<T>) -> String {
    match v {
        Some(v) => format!("{v:?}"),
        None => "none".into(),
    }
}

/// One request: every field but the nonce.
pub fn render_request(req: &GenerateRequest) -> String {
    let mut out = String::new();
    match &req.system {
        Some(s) => {
            out.push_str("system:\n");
            text_block(&mut out, "  ", s);
        }
        None => out.push_str("system: none\n"),
    }
    for (k, m) in req.messages.iter().enumerate() {
        let role = match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        let mut head = format!("message {} ({role}", k + 1);
        if let Some(r) = &m.tool_result {
            let _ = write!(
                head,
                ", result of {}{}",
                r.call_id,
                if r.is_error { ", error" } else { "" }
            );
        }
        head.push_str("):");
        let _ = writeln!(out, "{head}");
        text_block(&mut out, "  ", &m.content);
        for c in &m.tool_calls {
            let _ = writeln!(out, "  tool call {}: {}({})", c.id, c.name, c.arguments);
        }
    }
    match &req.prefill {
        Some(p) => {
            out.push_str("prefill:\n");
            text_block(&mut out, "  ", p);
        }
        None => out.push_str("prefill: none\n"),
    }
    let _ = writeln!(out, "stop: {:?}", req.stop);
    let _ = writeln!(out, "max_tokens: {}", req.max_tokens);
    let _ = writeln!(out, "temperature: {}", opt(&req.temperature));
    let _ = writeln!(out, "top_logprobs: {}", opt(&req.top_logprobs));
    if req.top_p.is_some() {
        let _ = writeln!(out, "top_p: {}", opt(&req.top_p));
    }
    if req.seed.is_some() {
        let _ = writeln!(out, "seed: {}", opt(&req.seed));
    }
    if !req.continuations.is_empty() {
        let _ = writeln!(out, "continuations: {:?}", req.continuations);
    }
    for t in &req.tools {
        let _ = writeln!(
            out,
            "tool: {} ({}) {}",
            t.name, t.description, t.input_schema
        );
    }
    out
}
