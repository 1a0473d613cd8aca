//! The mock's batch APIs, answering every request exactly as the synchronous route would
//! (the server's responder, the same validation, the same response body):
//!
//! * Anthropic Message Batches: `POST /v1/messages/batches` (`{"requests": [{"custom_id",
//!   "params"}]}`), `GET /v1/messages/batches` (list), `GET /v1/messages/batches/{id}`
//!   (`processing_status` `in_progress` → `ended`, `request_counts`, `results_url`),
//!   `GET /v1/messages/batches/{id}/results` (JSONL `{"custom_id", "result": {"type":
//!   "succeeded", "message"} | {"type": "errored", "error": {"type": "error", "error":
//!   {…}}} | {"type": "expired"} | {"type": "canceled"}}`).
//! * OpenAI Batch: the input file uploaded with `POST /v1/files` (purpose `batch`),
//!   `POST /v1/batches` (`input_file_id`, `endpoint`, `completion_window`, `metadata`),
//!   `GET /v1/batches` (list, newest first, `limit`/`after`), `GET /v1/batches/{id}`
//!   (`validating` → `in_progress` → `completed`, or `expired` / `failed`), and the
//!   output and error files from `GET /v1/files/{id}/content` (lines `{"id", "custom_id",
//!   "response": {"status_code", "request_id", "body"}, "error"}`).
//!
//! Behaviour is scripted on the [`crate::MockServer`]: how many polls a batch stays in
//! progress ([`crate::MockServer::set_batch_polls`], default 1), holding every batch in
//! progress until released ([`crate::MockServer::hold_batches`]), ending the open ones at
//! once ([`crate::MockServer::end_batches`]), each request's outcome
//! ([`crate::MockServer::set_batch_outcome`]: succeed, a per-request error, expire,
//! cancel — decided from the request and how often its custom id was submitted before),
//! and whole-batch failure ([`crate::MockServer::fail_next_batch`]: OpenAI's `failed`
//! status; Anthropic, which has no such state, answers the create call with a 400).
//! Counters say what was paid for: batches created, requests submitted, every custom id.
//!
//! Answers are computed when the batch is created and revealed when it ends.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::finetune::FineTuneState;
use crate::{Api, ParsedRequest};

/// What happens to one request of a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchOutcome {
    /// Answered as the synchronous route would.
    Succeed,
    /// An error of this HTTP status (Anthropic: its error type, e.g. 529
    /// `overloaded_error`, 400 `invalid_request_error`; OpenAI: a response with that
    /// status code in the error file).
    Error { status: u16, message: String },
    /// Not processed before the batch expired.
    Expire,
    /// Not processed: the batch was canceled.
    Cancel,
}

/// Decides each request's outcome from the request and how many times its custom id was
/// submitted in earlier batches (0 the first time).
pub type BatchJudge = Arc<dyn Fn(&ParsedRequest, u32) -> BatchOutcome + Send + Sync>;

/// One request's answer, fixed when its batch was created.
#[derive(Debug, Clone)]
enum Answer {
    /// The body the synchronous route would have answered with.
    Ok(Value),
    /// Status and message of an error.
    Err(u16, String),
    Expired,
    Canceled,
}

struct MockBatch {
    api: Api,
    id: String,
    created_at: u64,
    /// `(custom_id, answer)` in input order.
    answers: Vec<(String, Answer)>,
    polls_left: u32,
    ended: bool,
    /// OpenAI: the batch failed validation (with this message).
    failed: Option<String>,
    metadata: Value,
    input_file_id: Option<String>,
    output_file_id: Option<String>,
    error_file_id: Option<String>,
}

/// The batch APIs' state.
pub(crate) struct BatchState {
    batches: Vec<MockBatch>,
    judge: Option<BatchJudge>,
    polls: u32,
    held: bool,
    fail_next: Option<String>,
    /// Times each custom id was submitted.
    seen: HashMap<String, u32>,
    submitted: Vec<String>,
    next: u64,
}

impl Default for BatchState {
    fn default() -> Self {
        BatchState {
            batches: Vec::new(),
            judge: None,
            polls: 1,
            held: false,
            fail_next: None,
            seen: HashMap::new(),
            submitted: Vec::new(),
            next: 0,
        }
    }
}

/// `true` for the paths this module answers (`POST /v1/files` stays with the files API of
/// [`crate::finetune`]).
pub(crate) fn is_batch_path(path: &str) -> bool {
    path.starts_with("/v1/messages/batches")
        || path == "/v1/batches"
        || path.starts_with("/v1/batches/")
        || path.starts_with("/v1/files/")
}

/// Which wire format's errors a batch path answers with.
pub(crate) fn api_of(path: &str) -> Api {
    if path.starts_with("/v1/messages") {
        Api::Anthropic
    } else {
        Api::OpenAi
    }
}

/// A successful answer: JSON, or a file's bytes.
pub(crate) enum Reply {
    Json(Value),
    Bytes(Vec<u8>),
}

fn err(status: u16, message: impl Into<String>) -> (u16, String) {
    (status, message.into())
}

/// What the synchronous route answers for one request body: `Ok(body)` or a 400 message.
pub(crate) type Answerer<'a> = dyn Fn(Api, &Value) -> Result<Value, String> + 'a;

impl BatchState {
    pub(crate) fn set_polls(&mut self, n: u32) {
        self.polls = n;
    }
    pub(crate) fn set_judge(&mut self, j: Option<BatchJudge>) {
        self.judge = j;
    }
    pub(crate) fn hold(&mut self, on: bool) {
        self.held = on;
    }
    pub(crate) fn fail_next(&mut self, message: String) {
        self.fail_next = Some(message);
    }
    pub(crate) fn created(&self) -> usize {
        self.batches.len()
    }
    pub(crate) fn submitted(&self) -> Vec<String> {
        self.submitted.clone()
    }
    pub(crate) fn sizes(&self) -> Vec<usize> {
        self.batches.iter().map(|b| b.answers.len()).collect()
    }
    /// Ends every open batch now (its files written on its next look).
    pub(crate) fn end_all(&mut self) {
        for b in &mut self.batches {
            b.polls_left = 0;
        }
        self.held = false;
    }

    /// Answers one request to a batch path.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn handle(
        &mut self,
        method: &str,
        path: &str,
        query: &str,
        body: &[u8],
        now: u64,
        host: &str,
        files: &mut FineTuneState,
        answer: &Answerer<'_>,
    ) -> Result<Reply, (u16, String)> {
        if let Some(rest) = path.strip_prefix("/v1/files/") {
            let id = rest
                .strip_suffix("/content")
                .ok_or_else(|| err(404, format!("Unknown path: {method} {path}")))?;
            if method != "GET" {
                return Err(err(405, format!("Method {method} not allowed for {path}")));
            }
            return files
                .file(id)
                .map(|f| Reply::Bytes(f.bytes))
                .ok_or_else(|| err(404, format!("No such File object: {id}")));
        }
        if let Some(rest) = path.strip_prefix("/v1/messages/batches") {
            return match (method, rest) {
                ("POST", "") => self.create_anthropic(body, now, answer).map(Reply::Json),
                ("GET", "") => Ok(Reply::Json(self.list(Api::Anthropic, query, host))),
                ("GET", r) => {
                    let r = r.trim_start_matches('/');
                    let (id, tail) = r.split_once('/').unwrap_or((r, ""));
                    let i = self.find(Api::Anthropic, id)?;
                    match tail {
                        "" => {
                            self.advance(i, now, files);
                            Ok(Reply::Json(self.anthropic_object(i, host)))
                        }
                        "results" => self.anthropic_results(i).map(Reply::Bytes),
                        _ => Err(err(404, format!("Unknown path: {method} {path}"))),
                    }
                }
                _ => Err(err(405, format!("Method {method} not allowed for {path}"))),
            };
        }
        let rest = path.strip_prefix("/v1/batches").unwrap_or("");
        match (method, rest) {
            ("POST", "") => self
                .create_openai(body, now, files, answer)
                .map(Reply::Json),
            ("GET", "") => Ok(Reply::Json(self.list(Api::OpenAi, query, host))),
            ("GET", r) => {
                let id = r.trim_start_matches('/');
                let i = self.find(Api::OpenAi, id)?;
                self.advance(i, now, files);
                Ok(Reply::Json(self.openai_object(i)))
            }
            _ => Err(err(405, format!("Method {method} not allowed for {path}"))),
        }
    }

    fn find(&self, api: Api, id: &str) -> Result<usize, (u16, String)> {
        self.batches
            .iter()
            .position(|b| b.api == api && b.id == id)
            .ok_or_else(|| err(404, format!("No batch found with id '{id}'")))
    }

    /// Fixes the answers of a new batch's requests `(custom_id, params)`.
    fn answers(
        &mut self,
        api: Api,
        requests: Vec<(String, Value)>,
        answer: &Answerer<'_>,
    ) -> Vec<(String, Answer)> {
        let mut out = Vec::with_capacity(requests.len());
        for (id, params) in requests {
            let times = self.seen.entry(id.clone()).or_insert(0);
            let before = *times;
            *times += 1;
            self.submitted.push(id.clone());
            let outcome = match (
                &self.judge,
                crate::ParsedRequest::from_body(api, params.clone()),
            ) {
                (Some(j), Ok(parsed)) => j(&parsed, before),
                _ => BatchOutcome::Succeed,
            };
            let a = match outcome {
                BatchOutcome::Succeed => match answer(api, &params) {
                    Ok(body) => Answer::Ok(body),
                    Err(m) => Answer::Err(400, m),
                },
                BatchOutcome::Error { status, message } => Answer::Err(status, message),
                BatchOutcome::Expire => Answer::Expired,
                BatchOutcome::Cancel => Answer::Canceled,
            };
            out.push((id, a));
        }
        out
    }

    fn create_anthropic(
        &mut self,
        body: &[u8],
        now: u64,
        answer: &Answerer<'_>,
    ) -> Result<Value, (u16, String)> {
        let v: Value = serde_json::from_slice(body).map_err(|e| {
            err(
                400,
                format!("We could not parse the JSON body of your request: {e}"),
            )
        })?;
        let reqs = v
            .get("requests")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| err(400, "requests: at least one request is required"))?;
        let mut ids = std::collections::HashSet::new();
        let mut requests = Vec::with_capacity(reqs.len());
        for (i, r) in reqs.iter().enumerate() {
            let id = r
                .get("custom_id")
                .and_then(Value::as_str)
                .filter(|s| {
                    (1..=64).contains(&s.len())
                        && s.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                })
                .ok_or_else(|| {
                    err(
                        400,
                        format!("requests.{i}.custom_id: must match ^[a-zA-Z0-9_-]{{1,64}}$"),
                    )
                })?;
            if !ids.insert(id.to_string()) {
                return Err(err(
                    400,
                    format!("requests.{i}.custom_id: duplicate custom_id {id}"),
                ));
            }
            let params = r
                .get("params")
                .filter(|p| p.is_object())
                .ok_or_else(|| err(400, format!("requests.{i}.params: Field required")))?;
            requests.push((id.to_string(), params.clone()));
        }
        if let Some(m) = self.fail_next.take() {
            return Err(err(400, m));
        }
        let answers = self.answers(Api::Anthropic, requests, answer);
        self.next += 1;
        let id = format!("msgbatch_mock{:06}", self.next);
        self.batches.push(MockBatch {
            api: Api::Anthropic,
            id,
            created_at: now,
            answers,
            polls_left: self.polls,
            ended: false,
            failed: None,
            metadata: Value::Null,
            input_file_id: None,
            output_file_id: None,
            error_file_id: None,
        });
        Ok(self.anthropic_object(self.batches.len() - 1, ""))
    }

    fn create_openai(
        &mut self,
        body: &[u8],
        now: u64,
        files: &mut FineTuneState,
        answer: &Answerer<'_>,
    ) -> Result<Value, (u16, String)> {
        let v: Value = serde_json::from_slice(body).map_err(|e| {
            err(
                400,
                format!("We could not parse the JSON body of your request: {e}"),
            )
        })?;
        let field = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .ok_or_else(|| err(400, format!("Missing required parameter: '{k}'.")))
        };
        let input = field("input_file_id")?.to_string();
        let endpoint = field("endpoint")?;
        if endpoint != "/v1/chat/completions" {
            return Err(err(
                400,
                format!("Invalid endpoint '{endpoint}' (mock: only /v1/chat/completions)"),
            ));
        }
        if field("completion_window")? != "24h" {
            return Err(err(400, "completion_window: only '24h' is supported"));
        }
        let file = files
            .file(&input)
            .ok_or_else(|| err(400, format!("Invalid file: '{input}' does not exist")))?;
        if file.purpose != "batch" {
            return Err(err(
                400,
                format!("File '{input}' was not uploaded with purpose 'batch'"),
            ));
        }
        // Validation errors fail the batch (as the API does, after creating it).
        let mut failed = self.fail_next.take();
        let mut requests = Vec::new();
        let mut ids = std::collections::HashSet::new();
        let mut model: Option<String> = None;
        let text = String::from_utf8_lossy(&file.bytes).into_owned();
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let n = i + 1;
            let problem = match serde_json::from_str::<Value>(line) {
                Err(e) => Some(format!("line {n}: not JSON ({e})")),
                Ok(l) => {
                    let id = l.get("custom_id").and_then(Value::as_str).unwrap_or("");
                    let m = l
                        .pointer("/body/model")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    if id.is_empty() {
                        Some(format!("line {n}: custom_id is required"))
                    } else if !ids.insert(id.to_string()) {
                        Some(format!("line {n}: duplicate custom_id {id}"))
                    } else if l.get("method").and_then(Value::as_str) != Some("POST")
                        || l.get("url").and_then(Value::as_str) != Some(endpoint)
                    {
                        Some(format!("line {n}: method must be POST and url {endpoint}"))
                    } else if model.get_or_insert_with(|| m.to_string()) != m {
                        Some(format!(
                            "line {n}: every request of a batch must use the same model"
                        ))
                    } else {
                        requests.push((id.to_string(), l["body"].clone()));
                        None
                    }
                }
            };
            if let Some(p) = problem {
                failed.get_or_insert(p);
            }
        }
        if requests.is_empty() {
            failed.get_or_insert("the input file has no requests".into());
        }
        let answers = if failed.is_some() {
            Vec::new()
        } else {
            self.answers(Api::OpenAi, requests, answer)
        };
        self.next += 1;
        let id = format!("batch_mock{:06}", self.next);
        self.batches.push(MockBatch {
            api: Api::OpenAi,
            id,
            created_at: now,
            answers,
            polls_left: self.polls,
            ended: false,
            failed,
            metadata: v.get("metadata").cloned().unwrap_or(Value::Null),
            input_file_id: Some(input),
            output_file_id: None,
            error_file_id: None,
        });
        Ok(self.openai_object(self.batches.len() - 1))
    }

    /// One look at a batch: it moves on unless held, and ends when no polls are left.
    fn advance(&mut self, i: usize, now: u64, files: &mut FineTuneState) {
        let held = self.held;
        let b = &mut self.batches[i];
        if b.ended {
            return;
        }
        if b.polls_left > 0 {
            if !held {
                b.polls_left -= 1;
            }
            return;
        }
        b.ended = true;
        if b.api == Api::OpenAi && b.failed.is_none() {
            let mut out = String::new();
            let mut errs = String::new();
            for (k, (cid, a)) in b.answers.iter().enumerate() {
                let rid = format!("req_mock{}{k:06}", b.id);
                let (line, ok) = match a {
                    Answer::Ok(body) => (
                        json!({"id": format!("batch_req_{k}"), "custom_id": cid, "response": {"status_code": 200, "request_id": rid, "body": body}, "error": null}),
                        true,
                    ),
                    Answer::Err(s, m) => (
                        json!({"id": format!("batch_req_{k}"), "custom_id": cid, "response": {"status_code": s, "request_id": rid, "body": crate::wire::error_body(Api::OpenAi, *s, m)}, "error": null}),
                        false,
                    ),
                    Answer::Expired => (
                        json!({"id": format!("batch_req_{k}"), "custom_id": cid, "response": null, "error": {"code": "batch_expired", "message": "This request could not be executed before the completion window expired."}}),
                        false,
                    ),
                    Answer::Canceled => (
                        json!({"id": format!("batch_req_{k}"), "custom_id": cid, "response": null, "error": {"code": "batch_cancelled", "message": "This request was not executed because the batch was cancelled."}}),
                        false,
                    ),
                };
                let dest = if ok { &mut out } else { &mut errs };
                dest.push_str(&line.to_string());
                dest.push('\n');
            }
            if !out.is_empty() {
                b.output_file_id = Some(files.add_file(
                    "batch_output",
                    &format!("{}_output.jsonl", b.id),
                    out.into_bytes(),
                    now,
                ));
            }
            if !errs.is_empty() {
                b.error_file_id = Some(files.add_file(
                    "batch_output",
                    &format!("{}_error.jsonl", b.id),
                    errs.into_bytes(),
                    now,
                ));
            }
        }
    }

    fn counts(&self, i: usize) -> (u64, u64, u64, u64, u64) {
        // succeeded, errored, expired, canceled, processing
        let b = &self.batches[i];
        if !b.ended {
            return (0, 0, 0, 0, b.answers.len() as u64);
        }
        let mut c = (0, 0, 0, 0, 0);
        for (_, a) in &b.answers {
            match a {
                Answer::Ok(_) => c.0 += 1,
                Answer::Err(..) => c.1 += 1,
                Answer::Expired => c.2 += 1,
                Answer::Canceled => c.3 += 1,
            }
        }
        c
    }

    fn anthropic_object(&self, i: usize, host: &str) -> Value {
        let b = &self.batches[i];
        let (ok, errored, expired, canceled, processing) = self.counts(i);
        json!({
            "id": b.id,
            "type": "message_batch",
            "processing_status": if b.ended { "ended" } else { "in_progress" },
            "request_counts": {
                "processing": processing,
                "succeeded": ok,
                "errored": errored,
                "canceled": canceled,
                "expired": expired,
            },
            "ended_at": if b.ended { json!("2025-01-02T00:00:00Z") } else { Value::Null },
            "created_at": format!("1970-01-01T00:00:00Z+{}", b.created_at),
            "expires_at": "2099-01-01T00:00:00Z",
            "archived_at": null,
            "cancel_initiated_at": null,
            "results_url": if b.ended && !host.is_empty() {
                json!(format!("http://{host}/v1/messages/batches/{}/results", b.id))
            } else {
                Value::Null
            },
        })
    }

    fn anthropic_results(&self, i: usize) -> Result<Vec<u8>, (u16, String)> {
        let b = &self.batches[i];
        if !b.ended {
            return Err(err(
                400,
                format!("Message batch {} has not ended yet", b.id),
            ));
        }
        let mut out = String::new();
        for (cid, a) in &b.answers {
            let result = match a {
                Answer::Ok(m) => json!({"type": "succeeded", "message": m}),
                Answer::Err(s, m) => {
                    json!({"type": "errored", "error": crate::wire::error_body(Api::Anthropic, *s, m)})
                }
                Answer::Expired => json!({"type": "expired"}),
                Answer::Canceled => json!({"type": "canceled"}),
            };
            out.push_str(&json!({"custom_id": cid, "result": result}).to_string());
            out.push('\n');
        }
        Ok(out.into_bytes())
    }

    fn openai_object(&self, i: usize) -> Value {
        let b = &self.batches[i];
        let (ok, errored, expired, canceled, _) = self.counts(i);
        let status = match (&b.failed, b.ended) {
            (Some(_), true) => "failed",
            (_, false) if b.polls_left >= self.polls && self.polls > 0 => "validating",
            (_, false) => "in_progress",
            (None, true) if expired > 0 => "expired",
            (None, true) if canceled > 0 => "cancelled",
            (None, true) => "completed",
        };
        let errors = match (&b.failed, b.ended) {
            (Some(m), true) => {
                json!({"object": "list", "data": [{"code": "invalid_request", "message": m, "param": null, "line": null}]})
            }
            _ => Value::Null,
        };
        json!({
            "id": b.id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "errors": errors,
            "input_file_id": b.input_file_id,
            "completion_window": "24h",
            "status": status,
            "output_file_id": b.output_file_id,
            "error_file_id": b.error_file_id,
            "created_at": b.created_at,
            "request_counts": {
                "total": b.answers.len(),
                "completed": ok,
                "failed": errored + expired + canceled,
            },
            "metadata": b.metadata,
        })
    }

    /// Newest first; `limit` (default 20) and `after` (a batch id) apply.
    fn list(&self, api: Api, query: &str, host: &str) -> Value {
        let mut limit = 20usize;
        let mut after = None;
        for kv in query.split('&') {
            match kv.split_once('=') {
                Some(("limit", v)) => limit = v.parse().unwrap_or(20),
                Some(("after" | "after_id", v)) => after = Some(v.to_string()),
                _ => {}
            }
        }
        let mut all: Vec<usize> = (0..self.batches.len())
            .rev()
            .filter(|&i| self.batches[i].api == api)
            .collect();
        if let Some(a) = after {
            if let Some(p) = all.iter().position(|&i| self.batches[i].id == a) {
                all.drain(..=p);
            }
        }
        let has_more = all.len() > limit;
        all.truncate(limit);
        let data: Vec<Value> = all
            .iter()
            .map(|&i| match api {
                Api::Anthropic => self.anthropic_object(i, host),
                Api::OpenAi => self.openai_object(i),
            })
            .collect();
        let first = data
            .first()
            .and_then(|d| d.get("id"))
            .cloned()
            .unwrap_or(Value::Null);
        let last = data
            .last()
            .and_then(|d| d.get("id"))
            .cloned()
            .unwrap_or(Value::Null);
        json!({"object": "list", "data": data, "has_more": has_more, "first_id": first, "last_id": last})
    }
}

impl crate::MockServer {
    /// How many looks (`GET` of the batch) a new batch answers as still in progress
    /// before it ends (default 1).
    pub fn set_batch_polls(&self, polls: u32) {
        self.batch_state().set_polls(polls);
    }

    /// Each batch request's outcome from now on (default: every request succeeds).
    pub fn set_batch_outcome(&self, judge: BatchJudge) {
        self.batch_state().set_judge(Some(judge));
    }

    /// The next batch created fails as a whole with `message`: OpenAI `failed` (its
    /// `errors`), Anthropic a 400 to the create call.
    pub fn fail_next_batch(&self, message: impl Into<String>) {
        self.batch_state().fail_next(message.into());
    }

    /// While on, every batch stays in progress however often it is polled.
    pub fn hold_batches(&self, on: bool) {
        self.batch_state().hold(on);
    }

    /// Ends every open batch (its results ready on its next look) and stops holding.
    pub fn end_batches(&self) {
        self.batch_state().end_all();
    }

    /// Batches created (both APIs).
    pub fn batches_created(&self) -> usize {
        self.batch_state().created()
    }

    /// Requests submitted in batches (both APIs), counting each resubmission.
    pub fn batch_requests_submitted(&self) -> usize {
        self.batch_state().submitted().len()
    }

    /// The custom id of every request submitted in a batch, in order.
    pub fn batch_custom_ids(&self) -> Vec<String> {
        self.batch_state().submitted()
    }

    /// The number of requests of each batch created, in order.
    pub fn batch_sizes(&self) -> Vec<usize> {
        self.batch_state().sizes()
    }
}
