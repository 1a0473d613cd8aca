//! A run as an Inspect AI eval log (`EvalLog`, log format version 2, the `.json` file
//! format), which `inspect view`, `inspect log dump`, `inspect_ai.log.read_eval_log` and
//! `inspect_ai.analysis.samples_df` / `evals_df` read. Checked against inspect_ai 0.3.285
//! (`crates/export/tests/read_exports.py`).
//!
//! The file is written in the order of Inspect's own (`version`, `status`, `eval`, `plan`,
//! `results`, `stats`, `samples`), header first, then the samples one per line as the log
//! is streamed a second time; the first pass counts samples and adds up usage and scores.
//!
//! Field by field:
//! - `status`: `success` when the run has `results.json`, else `started` (not finished or
//!   not analysed).
//! - `eval`: `task` = `STUDY/TASK` (also `task_id`, `task_display_name`); `run_id` = the
//!   run directory's name, `eval_id` = 22 hex digits of the SHA-256 of its name and
//!   creation time (the `ID` of the file name); `created` = run.json's `created_at`;
//!   `model` = the `target` role's spec (else the first role's); `model_roles` = every
//!   role → its spec; `task_args` = the task's resolved configuration (run.json `config`),
//!   `task_args_passed` = the `--set` options; `dataset` = name `STUDY/TASK` and the
//!   number of samples (records of epoch 1); `config` = `epochs` and `limit`;
//!   `packages` = `{"shammie": VERSION}`; `metadata` = seed, Shammie version, the run
//!   directory's name and the stages.
//! - `plan`: one step per stage (solver = the stage's name), or one step (solver =
//!   `STUDY/TASK`, params = the configuration).
//! - `results`: `total_samples` (records), `completed_samples` (records without an
//!   error); `scores`: one `EvalScore` per table of results.json (name and scorer = the
//!   table's name), a metric per numeric cell named `ROW LABEL: COLUMN` (the row label is
//!   the row's leading text cells joined by ` / `); an estimate's metric has `value` = the
//!   estimate and `metadata` = `{lo, hi, n}`. Then one `EvalScore` per sample score whose
//!   values are numbers or booleans, with the metric `mean` (booleans as 0/1) and
//!   `scored_samples` / `unscored_samples`.
//! - `stats`: `started_at` = `created`, `completed_at` = the end of the last sample;
//!   `model_usage` (by the `provider:model` that answered) and `role_usage` (by role):
//!   input, output and total tokens of every answered call.
//! - `samples[]`: `id` (for a stage's record `STAGE/ID`), `epoch`; `input` = the first
//!   model call's system prompt and messages (a sample without calls: its input JSON as
//!   text); `target` = `""` (Shammie samples carry no single target); `messages` = the
//!   transcript flattened into one conversation: each call adds the messages of its
//!   request that the conversation does not have yet (a call that does not continue the
//!   previous one — a judge, another protocol step — adds its system prompt and all its
//!   messages), then its response as an assistant message (`model`, and `metadata` with the
//!   role, step label, prefill, cache hit and scored continuations); each tool event adds a
//!   tool message (`function` = the tool, `tool_call_id` when it answers a native call,
//!   `error` when it could not run); a native tool result already shown as a tool message
//!   is not repeated; `output` = the last call's response as a `ModelOutput` (`model`,
//!   one choice with `stop_reason` — end_turn and stop_sequence → `stop`, max_tokens →
//!   `max_tokens`, tool_use → `tool_calls`, other → `unknown` — and per-token `logprobs`
//!   with their top-k, `completion`, `usage`, `time`; a last call that failed: no choice
//!   and its `error`); `scores` = each Shammie score as `{"value": …}` (a null score is
//!   left out; arrays and objects nested deeper than Inspect's values allow become JSON
//!   text); `metadata` = the fields of the sample's input (an input that is not an
//!   object: `{"input": …}`) plus `shammie_error`, `shammie_stage`, `shammie_id` and
//!   `shammie_notes` where there are any; `error` = `{message: the record's error}`;
//!   `model_usage`, `role_usage`; `started_at`, `completed_at`, `total_time`,
//!   `working_time` (both the sample's duration).
//!
//! What is lost: Inspect `events` are not written (the viewer's transcript tab is empty;
//! its messages tab shows the conversation), nor attachments; a failed call's error shows
//! only when it was the last call; request parameters (max_tokens, temperature, stop
//! sequences, seed, offered tools) and local models' rendered prompts are dropped; text
//! sent after an assistant turn the protocol edited (e.g. an action cut at the first tag)
//! appears as the model answered it, not as edited; scores' nesting beyond one level is
//! JSON text; table titles, notes and non-numeric cells are not in `results`; cost is not
//! known to Shammie and is not set.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use serde::Serialize;
use serde_json::{json, Map, Value};
use shammie_core::{
    CallRecord, Cell, Event, Message, Role, SampleRecord, StopReason, Table, Usage,
};

use crate::{io_err, AtomicFile, ExportError, Source};

/// The name Inspect gives a log, `CREATED_TASK_ID.json` (the creation time with `:` and
/// `+` as `-`, `STUDY-TASK`, the eval id), which `inspect view` and `samples_df` list.
pub fn file_name(src: &Source) -> String {
    let created = utc(&src.meta.created_at)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
    let clean = |s: &str| s.replace(['_', '/', ':', '+'], "-");
    format!(
        "{}_{}_{}.json",
        clean(&created),
        clean(&task_name(src)),
        eval_id(src)
    )
}

/// Whether Inspect lists a log of this name: a `.json` name that starts with a full
/// timestamp (`YYYY-MM-DDTHH-MM-SS`, `:` or `-` between the time's parts).
pub fn listed_by_inspect(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let b = name.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    let at = |i: usize, cs: &[u8]| b.get(i).is_some_and(|c| cs.contains(c));
    name.ends_with(".json")
        && [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
            .into_iter()
            .all(digit)
        && at(4, b"-")
        && at(7, b"-")
        && at(10, b"T")
        && at(13, b":-")
        && at(16, b":-")
}

fn run_name(src: &Source) -> String {
    src.dir
        .path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// 22 hex digits of the SHA-256 of the run directory's name and creation time: the same
/// run exports under the same id (and file name).
fn eval_id(src: &Source) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(run_name(src).as_bytes());
    h.update([0]);
    h.update(src.meta.created_at.as_bytes());
    hex::encode(h.finalize())[..22].to_string()
}

/// Token counts as Inspect's `ModelUsage`.
#[derive(Debug, Clone, Copy, Default, Serialize)]
struct ModelUsage {
    input_tokens: u64,
    output_tokens: u64,
    total_tokens: u64,
}

impl ModelUsage {
    fn add(&mut self, u: Usage) {
        self.input_tokens += u.input_tokens;
        self.output_tokens += u.output_tokens;
        self.total_tokens += u.input_tokens + u.output_tokens;
    }
}

/// Usage by model and by role.
#[derive(Debug, Default)]
struct UsageBy {
    model: BTreeMap<String, ModelUsage>,
    role: BTreeMap<String, ModelUsage>,
}

impl UsageBy {
    fn add(&mut self, r: &SampleRecord) {
        for c in r.transcript.calls() {
            if let Some(resp) = &c.response {
                self.model
                    .entry(c.model.clone())
                    .or_default()
                    .add(resp.usage);
                self.role.entry(c.role.clone()).or_default().add(resp.usage);
            }
        }
    }
}

/// What the first pass learns.
#[derive(Debug, Default)]
struct Totals {
    samples: u64,
    completed: u64,
    first_epoch: u64,
    usage: UsageBy,
    /// The latest end of a sample (RFC 3339, UTC).
    completed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Per score name: (sum, count) of numeric and boolean values, in order of appearance.
    score_sums: Vec<(String, f64, u64)>,
    score_index: HashMap<String, usize>,
}

/// Writes the run in `src` as an Inspect eval log at `out`.
pub(crate) fn export(src: &Source, out: &Path) -> Result<(), ExportError> {
    let mut t = Totals::default();
    src.for_each(|_, r| {
        t.samples += 1;
        if r.error.is_none() {
            t.completed += 1;
        }
        if r.epoch <= 1 {
            t.first_epoch += 1;
        }
        t.usage.add(&r);
        if let Some(end) = times(&r).1 {
            t.completed_at = Some(t.completed_at.map_or(end, |c| c.max(end)));
        }
        for (name, v) in &r.scores {
            let x = match v {
                Value::Bool(b) => f64::from(u8::from(*b)),
                Value::Number(n) => match n.as_f64() {
                    Some(x) => x,
                    None => continue,
                },
                _ => continue,
            };
            let i = *t.score_index.entry(name.clone()).or_insert_with(|| {
                t.score_sums.push((name.clone(), 0.0, 0));
                t.score_sums.len() - 1
            });
            t.score_sums[i].1 += x;
            t.score_sums[i].2 += 1;
        }
        Ok(())
    })?;

    let mut file = AtomicFile::create(out)?;
    let path = out.to_path_buf();
    let created = utc(&src.meta.created_at)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let header = json!({
        "version": 2,
        "status": if src.results.is_some() { "success" } else { "started" },
    });
    let header = header.as_object().expect("object");
    let eval = eval_spec(src, &t, &created);
    let plan = plan(src);
    let results = results(src, &t);
    let stats = json!({
        "started_at": created,
        "completed_at": t
            .completed_at
            .map(|c| c.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_default(),
        "model_usage": t.usage.model,
        "role_usage": t.usage.role,
    });
    // Key order matters to Inspect's streaming header reader: samples come last.
    let mut w = |bytes: &[u8]| file.write_all(bytes).map_err(io_err(&path));
    w(b"{")?;
    for (k, v) in header {
        w(format!("{}:{},", json!(k), v).as_bytes())?;
    }
    for (k, v) in [
        ("eval", &eval),
        ("plan", &plan),
        ("results", &results),
        ("stats", &stats),
    ] {
        w(format!("\"{k}\":").as_bytes())?;
        w(&serde_json::to_vec(v).expect("serialisable"))?;
        w(b",\n")?;
    }
    w(b"\"samples\":[")?;
    let mut first = true;
    src.for_each(|stage, r| {
        let s = sample(stage, &r);
        let mut line = Vec::with_capacity(4096);
        if !first {
            line.push(b',');
        }
        first = false;
        line.push(b'\n');
        serde_json::to_writer(&mut line, &s).expect("serialisable");
        file.write_all(&line).map_err(io_err(&path))
    })?;
    file.write_all(b"\n]}\n").map_err(io_err(&path))?;
    file.commit()?;
    Ok(())
}

/// A timestamp read as RFC 3339 (or `None`).
fn utc(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&chrono::Utc))
}

/// A record's start and end.
fn times(
    r: &SampleRecord,
) -> (
    Option<chrono::DateTime<chrono::Utc>>,
    Option<chrono::DateTime<chrono::Utc>>,
) {
    let start = utc(&r.started_at);
    let end = start.map(|s| s + chrono::Duration::milliseconds(r.duration_ms as i64));
    (start, end)
}

fn stamp(d: chrono::DateTime<chrono::Utc>) -> String {
    d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn task_name(src: &Source) -> String {
    format!("{}/{}", src.meta.study, src.meta.task)
}

fn eval_spec(src: &Source, t: &Totals, created: &str) -> Value {
    let m = &src.meta;
    let run_name = run_name(src);
    let model = m
        .models
        .get("target")
        .or_else(|| m.models.values().next())
        .cloned()
        .unwrap_or_default();
    let task_args = match &m.config {
        Value::Object(o) => Value::Object(o.clone()),
        Value::Null => json!({}),
        v => json!({ "config": v }),
    };
    let roles: Map<String, Value> = m
        .models
        .iter()
        .map(|(role, spec)| (role.clone(), json!({ "model": spec })))
        .collect();
    let stages: Vec<&str> = src.logs.iter().filter_map(|(s, _)| s.as_deref()).collect();
    let mut config = json!({ "epochs": m.epochs });
    if let Some(l) = m.limit {
        config["limit"] = json!(l);
    }
    let mut metadata = json!({
        "shammie_version": m.shammie_version,
        "seed": m.seed,
        "run_dir": run_name,
    });
    if !stages.is_empty() {
        metadata["stages"] = json!(stages);
    }
    json!({
        "eval_id": eval_id(src),
        "run_id": run_name,
        "created": created,
        "task": task_name(src),
        "task_id": task_name(src),
        "task_version": 0,
        "task_display_name": task_name(src),
        "task_args": task_args,
        "task_args_passed": m.options,
        "dataset": { "name": task_name(src), "samples": t.first_epoch },
        "model": model,
        "model_roles": roles,
        "config": config,
        "packages": { "shammie": m.shammie_version },
        "metadata": metadata,
    })
}

fn plan(src: &Source) -> Value {
    let stages: Vec<&str> = src.logs.iter().filter_map(|(s, _)| s.as_deref()).collect();
    let steps: Vec<Value> = if stages.is_empty() {
        vec![json!({ "solver": task_name(src), "params": src.meta.config })]
    } else {
        stages
            .iter()
            .map(|s| json!({ "solver": s, "params": {} }))
            .collect()
    };
    json!({ "name": "plan", "steps": steps, "config": {} })
}

fn finite(x: f64) -> Option<Value> {
    serde_json::Number::from_f64(x).map(Value::Number)
}

/// One table as an Inspect `EvalScore`: a metric per numeric cell.
fn table_score(table: &Table) -> Option<Value> {
    let mut metrics = Map::new();
    for row in &table.rows {
        let label: Vec<&str> = row
            .iter()
            .map_while(|c| match c {
                Cell::Text(s) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        let label = label.join(" / ");
        for (col, cell) in table.columns.iter().zip(row) {
            let (value, meta) = match cell {
                Cell::Estimate {
                    estimate,
                    lo,
                    hi,
                    n,
                } => (
                    finite(*estimate),
                    Some(json!({ "lo": finite(*lo), "hi": finite(*hi), "n": n })),
                ),
                Cell::Count { count, of, unit } => {
                    (Some(json!(count)), Some(json!({ "of": of, "unit": unit })))
                }
                Cell::Int(i) => (Some(json!(i)), None),
                Cell::Float(x) => (finite(*x), None),
                Cell::Text(_) | Cell::Empty => continue,
            };
            let Some(value) = value else { continue };
            let base = if label.is_empty() {
                col.clone()
            } else {
                format!("{label}: {col}")
            };
            let mut name = base.clone();
            let mut k = 1;
            while metrics.contains_key(&name) {
                k += 1;
                name = format!("{base} ({k})");
            }
            let mut m = json!({ "name": name, "value": value, "params": {} });
            if let Some(meta) = meta {
                m["metadata"] = meta;
            }
            metrics.insert(name, m);
        }
    }
    if metrics.is_empty() {
        return None;
    }
    Some(json!({
        "name": table.name,
        "scorer": table.name,
        "params": {},
        "metrics": metrics,
        "metadata": { "title": table.title },
    }))
}

fn results(src: &Source, t: &Totals) -> Value {
    let mut scores: Vec<Value> = src
        .results
        .iter()
        .flat_map(|r| r.tables.iter())
        .filter_map(table_score)
        .collect();
    let table_names: HashSet<&str> = src
        .results
        .iter()
        .flat_map(|r| r.tables.iter().map(|t| t.name.as_str()))
        .collect();
    for (name, sum, n) in &t.score_sums {
        let Some(mean) = finite(sum / *n as f64) else {
            continue;
        };
        // A sample score never shadows a table of the same name.
        let scorer = if table_names.contains(name.as_str()) {
            format!("{name} (samples)")
        } else {
            name.clone()
        };
        scores.push(json!({
            "name": scorer,
            "scorer": scorer,
            "scored_samples": n,
            "unscored_samples": t.samples - n,
            "params": {},
            "metrics": { "mean": { "name": "mean", "value": mean, "params": {} } },
        }));
    }
    json!({
        "total_samples": t.samples,
        "completed_samples": t.completed,
        "scores": scores,
    })
}

/// A Shammie score as an Inspect score value (`None` for null, which Inspect has no value
/// for): scalars as they are, flat arrays of scalars and objects of scalars (or null) as
/// they are; anything nested deeper is JSON text at the level where Inspect stops.
fn score_value(v: &Value) -> Option<Value> {
    let scalar = |v: &Value| matches!(v, Value::Bool(_) | Value::Number(_) | Value::String(_));
    match v {
        Value::Null => None,
        Value::Array(a) if a.iter().all(scalar) => Some(v.clone()),
        Value::Array(_) => Some(Value::String(v.to_string())),
        Value::Object(o) => Some(Value::Object(
            o.iter()
                .map(|(k, x)| {
                    let x = if scalar(x) || x.is_null() {
                        x.clone()
                    } else {
                        Value::String(x.to_string())
                    };
                    (k.clone(), x)
                })
                .collect(),
        )),
        v => Some(v.clone()),
    }
}

fn stop_reason(s: StopReason) -> &'static str {
    match s {
        StopReason::EndTurn | StopReason::StopSequence => "stop",
        StopReason::MaxTokens => "max_tokens",
        StopReason::ToolUse => "tool_calls",
        StopReason::Other => "unknown",
    }
}

fn tool_call(c: &shammie_core::ToolCall) -> Value {
    let mut v = json!({ "id": c.id, "function": c.name, "type": "function" });
    match serde_json::from_str::<Value>(&c.arguments) {
        Ok(Value::Object(o)) => v["arguments"] = Value::Object(o),
        Ok(other) => {
            v["arguments"] = json!({ "value": other });
            v["parse_error"] = json!("the arguments are not a JSON object");
        }
        Err(e) => {
            v["arguments"] = json!({});
            v["parse_error"] = json!(format!("{e}: {}", c.arguments));
        }
    }
    v
}

/// The text of a call's answer: the prefill, then what the model added.
fn answer_text(c: &CallRecord) -> Option<String> {
    let r = c.response.as_ref()?;
    Some(format!(
        "{}{}",
        c.request.prefill.as_deref().unwrap_or(""),
        r.text
    ))
}

/// A call's response as an Inspect assistant message.
fn assistant(c: &CallRecord) -> Option<Value> {
    let r = c.response.as_ref()?;
    let mut meta = json!({ "role": c.role, "cached": r.meta.cached });
    if let Some(l) = &c.label {
        meta["label"] = json!(l);
    }
    if let Some(p) = &c.request.prefill {
        meta["prefill"] = json!(p);
    }
    if let Some(cs) = &r.continuations {
        let scored: Vec<Value> = c
            .request
            .continuations
            .iter()
            .zip(cs)
            .map(|(text, s)| json!({ "continuation": text, "logprob": s.logprob, "tokens": s.tokens }))
            .collect();
        meta["continuations"] = json!(scored);
    }
    let mut m = json!({
        "role": "assistant",
        "content": answer_text(c)?,
        "source": "generate",
        "model": c.model,
        "metadata": meta,
    });
    if !r.tool_calls.is_empty() {
        m["tool_calls"] = r.tool_calls.iter().map(tool_call).collect();
    }
    Some(m)
}

/// A request message as an Inspect chat message.
fn message(m: &Message, tool_names: &HashMap<String, String>) -> Value {
    match (m.role, &m.tool_result) {
        (Role::User, Some(tr)) => {
            let mut v = json!({
                "role": "tool",
                "content": m.content,
                "source": "input",
                "tool_call_id": tr.call_id,
            });
            if let Some(f) = tool_names.get(&tr.call_id) {
                v["function"] = json!(f);
            }
            if tr.is_error {
                v["error"] = json!({ "type": "unknown", "message": m.content });
            }
            v
        }
        (Role::User, None) => json!({ "role": "user", "content": m.content, "source": "input" }),
        (Role::Assistant, _) => {
            let mut v = json!({ "role": "assistant", "content": m.content, "source": "input" });
            if !m.tool_calls.is_empty() {
                v["tool_calls"] = m.tool_calls.iter().map(tool_call).collect();
            }
            v
        }
    }
}

fn system(s: &str) -> Value {
    json!({ "role": "system", "content": s, "source": "input" })
}

/// The transcript flattened into one conversation (see the module documentation).
fn conversation(r: &SampleRecord) -> Vec<Value> {
    let mut out = Vec::new();
    // The previous call's request (system, messages) and whether it was answered.
    let mut prev: Option<(&Option<String>, &[Message], bool)> = None;
    // Native tool calls of the last answer not yet matched by a tool event: (id, name).
    let mut open: Vec<(String, String)> = Vec::new();
    let mut tool_names: HashMap<String, String> = HashMap::new();
    let mut answered: HashSet<String> = HashSet::new();
    for e in &r.transcript.events {
        match e {
            Event::Call(c) => {
                let req = &c.request;
                let new: &[Message] = match prev {
                    Some((sys, msgs, was_answered))
                        if *sys == req.system && req.messages.starts_with(msgs) =>
                    {
                        let rest = &req.messages[msgs.len()..];
                        // The previous answer, as the protocol sent it back, is shown.
                        match rest.first() {
                            Some(m) if was_answered && m.role == Role::Assistant => &rest[1..],
                            _ => rest,
                        }
                    }
                    _ => {
                        if let Some(s) = &req.system {
                            out.push(system(s));
                        }
                        &req.messages
                    }
                };
                for m in new {
                    if let Some(tr) = &m.tool_result {
                        if answered.contains(&tr.call_id) {
                            continue;
                        }
                    }
                    out.push(message(m, &tool_names));
                }
                if let Some(a) = assistant(c) {
                    out.push(a);
                }
                open.clear();
                if let Some(resp) = &c.response {
                    for tc in &resp.tool_calls {
                        tool_names.insert(tc.id.clone(), tc.name.clone());
                        open.push((tc.id.clone(), tc.name.clone()));
                    }
                }
                prev = Some((&req.system, &req.messages, c.response.is_some()));
            }
            Event::Tool(t) => {
                let mut v = json!({
                    "role": "tool",
                    "content": t.output,
                    "source": "generate",
                    "function": t.name,
                });
                if let Some(i) = open.iter().position(|(_, n)| *n == t.name) {
                    let (id, _) = open.remove(i);
                    v["tool_call_id"] = json!(id);
                    answered.insert(id);
                }
                if let Some(err) = &t.error {
                    v["error"] = json!({ "type": "unknown", "message": err });
                }
                let mut meta = json!({ "input": t.input });
                if let Some(s) = t.exit_status {
                    meta["exit_status"] = json!(s);
                }
                if t.replayed {
                    meta["replayed"] = json!(true);
                }
                v["metadata"] = meta;
                out.push(v);
            }
            Event::Note(_) => {}
        }
    }
    out
}

/// A call's response (or failure) as an Inspect `ModelOutput`.
fn output(c: &CallRecord) -> Value {
    let Some(r) = &c.response else {
        return json!({
            "model": c.model,
            "choices": [],
            "completion": "",
            "error": c.error.clone().unwrap_or_else(|| "no response".into()),
        });
    };
    let mut choice = json!({
        "message": assistant(c),
        "stop_reason": stop_reason(r.stop_reason),
    });
    if let Some(lps) = &r.logprobs {
        let content: Vec<Value> = lps
            .iter()
            .map(|t| {
                json!({
                    "token": t.token,
                    "logprob": t.logprob,
                    "top_logprobs": t.top.iter()
                        .map(|x| json!({ "token": x.token, "logprob": x.logprob }))
                        .collect::<Vec<_>>(),
                })
            })
            .collect();
        choice["logprobs"] = json!({ "content": content });
    }
    let mut usage = ModelUsage::default();
    usage.add(r.usage);
    json!({
        "model": c.model,
        "choices": [choice],
        "completion": answer_text(c),
        "usage": usage,
        "time": r.meta.latency_ms as f64 / 1000.0,
    })
}

/// One record as an Inspect `EvalSample`.
fn sample(stage: Option<&str>, r: &SampleRecord) -> Value {
    let first = r.transcript.calls().next();
    let input = match first {
        Some(c) => {
            let mut msgs = Vec::new();
            if let Some(s) = &c.request.system {
                msgs.push(system(s));
            }
            msgs.extend(
                c.request
                    .messages
                    .iter()
                    .map(|m| message(m, &HashMap::new())),
            );
            Value::Array(msgs)
        }
        None => match &r.input {
            Value::String(s) => Value::String(s.clone()),
            v => Value::String(v.to_string()),
        },
    };
    let mut metadata = match &r.input {
        Value::Object(o) => o.clone(),
        Value::Null => Map::new(),
        v => Map::from_iter([("input".to_string(), v.clone())]),
    };
    if let Some(e) = &r.error {
        metadata.insert("shammie_error".into(), json!(e));
    }
    if let Some(s) = stage {
        metadata.insert("shammie_stage".into(), json!(s));
        metadata.insert("shammie_id".into(), json!(r.id));
    }
    let notes: Vec<&str> = r.transcript.notes().collect();
    if !notes.is_empty() {
        metadata.insert("shammie_notes".into(), json!(notes));
    }
    let scores: Map<String, Value> = r
        .scores
        .iter()
        .filter_map(|(k, v)| score_value(v).map(|v| (k.clone(), json!({ "value": v }))))
        .collect();
    let mut usage = UsageBy::default();
    usage.add(r);
    let (start, end) = times(r);
    let seconds = r.duration_ms as f64 / 1000.0;
    let mut s = json!({
        "id": match stage { Some(st) => format!("{st}/{}", r.id), None => r.id.clone() },
        "epoch": r.epoch,
        "input": input,
        "target": "",
        "messages": conversation(r),
        "output": r.transcript.calls().last().map(output)
            .unwrap_or_else(|| json!({ "model": "", "choices": [], "completion": "" })),
        "scores": scores,
        "metadata": metadata,
        "model_usage": usage.model,
        "role_usage": usage.role,
        "total_time": seconds,
        "working_time": seconds,
    });
    if let Some(st) = start {
        s["started_at"] = json!(stamp(st));
    }
    if let Some(en) = end {
        s["completed_at"] = json!(stamp(en));
    }
    if let Some(e) = &r.error {
        s["error"] = json!({ "message": e, "traceback": "", "traceback_ansi": "" });
    }
    s
}
