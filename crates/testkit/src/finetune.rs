//! The mock's OpenAI fine-tuning API: `POST /v1/files` (multipart, purpose
//! `fine-tune`, or `batch` for [`crate::batch`], which also keeps its output files here),
//! `POST /v1/fine_tuning/jobs`, `GET /v1/fine_tuning/jobs/{id}`,
//! `GET /v1/fine_tuning/jobs/{id}/events`, `POST /v1/fine_tuning/jobs/{id}/cancel`.
//!
//! A job advances one status per `GET` of it: `validating_files` (at creation) →
//! `queued` → `running` → the scripted [`FineTuneOutcome`] (`succeeded` with
//! `fine_tuned_model` `ft:MODEL:mock:SUFFIX:JOBNUMBER`, or `failed` with an `error`
//! object). Each transition adds an event.

use std::collections::HashMap;

use serde_json::{json, Value};

/// How the mock's fine-tuning jobs end (set with
/// [`crate::MockServer::set_fine_tune_outcome`]; default: succeed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FineTuneOutcome {
    Succeed,
    /// `status: failed` with `error: {code, message, param: null}`.
    Fail {
        code: String,
        message: String,
    },
}

/// An uploaded file as the mock keeps it.
#[derive(Debug, Clone)]
pub struct MockFile {
    pub id: String,
    pub filename: String,
    pub purpose: String,
    pub bytes: Vec<u8>,
}

struct Job {
    object: Value,
    events: Vec<Value>,
}

#[derive(Default)]
pub(crate) struct FineTuneState {
    files: Vec<MockFile>,
    jobs: HashMap<String, Job>,
    next: u64,
    pub(crate) outcome: Option<FineTuneOutcome>,
}

/// `true` for the paths this module answers.
pub(crate) fn is_fine_tune_path(path: &str) -> bool {
    path == "/v1/files" || path.starts_with("/v1/fine_tuning/")
}

fn err(status: u16, message: impl Into<String>) -> (u16, String) {
    (status, message.into())
}

impl FineTuneState {
    pub(crate) fn files(&self) -> Vec<MockFile> {
        self.files.clone()
    }

    /// The file with this id.
    pub(crate) fn file(&self, id: &str) -> Option<MockFile> {
        self.files.iter().find(|f| f.id == id).cloned()
    }

    /// Stores a file the server makes (a batch's output); its id.
    pub(crate) fn add_file(
        &mut self,
        purpose: &str,
        filename: &str,
        bytes: Vec<u8>,
        _now: u64,
    ) -> String {
        self.next += 1;
        let id = format!("file-mock{:06}", self.next);
        self.files.push(MockFile {
            id: id.clone(),
            filename: filename.to_string(),
            purpose: purpose.to_string(),
            bytes,
        });
        id
    }

    fn event(&mut self, job_id: &str, created_at: u64, message: &str) {
        self.next += 1;
        let ev = json!({
            "object": "fine_tuning.job.event",
            "id": format!("ftevent-mock{:06}", self.next),
            "created_at": created_at,
            "level": "info",
            "message": message,
            "data": {},
            "type": "message",
        });
        if let Some(j) = self.jobs.get_mut(job_id) {
            j.events.push(ev);
        }
    }

    /// Answers one request: `Ok(body)` is a 200, `Err((status, message))` an error.
    pub(crate) fn handle(
        &mut self,
        method: &str,
        path: &str,
        query: &str,
        content_type: Option<&str>,
        body: &[u8],
        now: u64,
    ) -> Result<Value, (u16, String)> {
        let rest = path.strip_prefix("/v1/fine_tuning/jobs");
        match (method, path, rest) {
            ("POST", "/v1/files", _) => self.upload(content_type, body, now),
            ("POST", _, Some("")) => self.create(body, now),
            (_, _, Some(r)) if r.starts_with('/') => {
                let r = &r[1..];
                let (id, tail) = r.split_once('/').unwrap_or((r, ""));
                if !self.jobs.contains_key(id) {
                    return Err(err(404, format!("No fine-tuning job found with id '{id}'")));
                }
                match (method, tail) {
                    ("GET", "") => Ok(self.poll(id, now)),
                    ("GET", "events") => Ok(self.events(id, query)),
                    ("POST", "cancel") => self.cancel(id, now),
                    _ => Err(err(405, format!("Method {method} not allowed for {path}"))),
                }
            }
            _ => Err(err(404, format!("Unknown path: {method} {path}"))),
        }
    }

    fn upload(
        &mut self,
        content_type: Option<&str>,
        body: &[u8],
        now: u64,
    ) -> Result<Value, (u16, String)> {
        let boundary = content_type
            .filter(|c| c.starts_with("multipart/form-data"))
            .and_then(|c| {
                c.split(';')
                    .find_map(|p| p.trim().strip_prefix("boundary="))
            })
            .map(|b| b.trim_matches('"').to_string())
            .ok_or_else(|| err(400, "Expected a multipart/form-data body with a boundary"))?;
        let parts = parse_multipart(body, &boundary).map_err(|m| err(400, m))?;
        let mut purpose = None;
        let mut file = None;
        for p in parts {
            match p.name.as_str() {
                "purpose" => purpose = Some(String::from_utf8_lossy(&p.data).into_owned()),
                "file" => file = Some((p.filename.unwrap_or_default(), p.data)),
                _ => {}
            }
        }
        let purpose = purpose.ok_or_else(|| err(400, "Missing required parameter: 'purpose'."))?;
        let (filename, bytes) =
            file.ok_or_else(|| err(400, "Missing required parameter: 'file'."))?;
        if purpose != "fine-tune" && purpose != "batch" {
            return Err(err(
                400,
                format!("Invalid purpose '{purpose}' (mock: fine-tune or batch)"),
            ));
        }
        self.next += 1;
        let id = format!("file-mock{:06}", self.next);
        let obj = json!({
            "object": "file",
            "id": id,
            "bytes": bytes.len(),
            "created_at": now,
            "filename": filename,
            "purpose": purpose,
        });
        self.files.push(MockFile {
            id,
            filename,
            purpose,
            bytes,
        });
        Ok(obj)
    }

    fn create(&mut self, body: &[u8], now: u64) -> Result<Value, (u16, String)> {
        let v: Value = serde_json::from_slice(body).map_err(|e| {
            err(
                400,
                format!("We could not parse the JSON body of your request: {e}"),
            )
        })?;
        let model = v
            .get("model")
            .and_then(Value::as_str)
            .ok_or_else(|| err(400, "Missing required parameter: 'model'."))?;
        let training = v
            .get("training_file")
            .and_then(Value::as_str)
            .ok_or_else(|| err(400, "Missing required parameter: 'training_file'."))?;
        for f in [
            Some(training),
            v.get("validation_file").and_then(Value::as_str),
        ]
        .into_iter()
        .flatten()
        {
            if !self.files.iter().any(|x| x.id == f) {
                return Err(err(400, format!("Invalid file: '{f}' does not exist")));
            }
        }
        self.next += 1;
        let n = self.next;
        let id = format!("ftjob-mock{n:06}");
        let hp = v.get("hyperparameters").cloned().unwrap_or(json!({}));
        let pick = |k: &str| hp.get(k).cloned().unwrap_or(json!("auto"));
        let object = json!({
            "object": "fine_tuning.job",
            "id": id,
            "model": model,
            "created_at": now,
            "finished_at": null,
            "fine_tuned_model": null,
            "organization_id": "org-mock",
            "result_files": [],
            "status": "validating_files",
            "validation_file": v.get("validation_file").cloned().unwrap_or(Value::Null),
            "training_file": training,
            "hyperparameters": {
                "n_epochs": pick("n_epochs"),
                "batch_size": pick("batch_size"),
                "learning_rate_multiplier": pick("learning_rate_multiplier"),
            },
            "trained_tokens": null,
            "error": null,
            "seed": v.get("seed").cloned().unwrap_or(json!(n)),
            "suffix": v.get("suffix").cloned().unwrap_or(Value::Null),
            "estimated_finish": null,
            "integrations": [],
        });
        self.jobs.insert(
            id.clone(),
            Job {
                object: object.clone(),
                events: Vec::new(),
            },
        );
        self.event(&id, now, &format!("Created fine-tuning job: {id}"));
        Ok(object)
    }

    /// Advances the job one status and returns it.
    fn poll(&mut self, id: &str, now: u64) -> Value {
        let outcome = self.outcome.clone().unwrap_or(FineTuneOutcome::Succeed);
        let job = self.jobs.get_mut(id).expect("checked by the caller");
        let status = job.object["status"].as_str().unwrap_or("").to_string();
        let next = match status.as_str() {
            "validating_files" => Some("queued"),
            "queued" => Some("running"),
            "running" => Some(match outcome {
                FineTuneOutcome::Succeed => "succeeded",
                FineTuneOutcome::Fail { .. } => "failed",
            }),
            _ => None,
        };
        let mut message = None;
        if let Some(next) = next {
            let o = &mut job.object;
            o["status"] = json!(next);
            match (next, &outcome) {
                ("succeeded", _) => {
                    let base = o["model"].as_str().unwrap_or("model").to_string();
                    let suffix = o["suffix"].as_str().unwrap_or("").to_string();
                    let num = id.trim_start_matches("ftjob-mock");
                    o["fine_tuned_model"] = json!(format!("ft:{base}:mock:{suffix}:{num}"));
                    o["finished_at"] = json!(now);
                    o["trained_tokens"] = json!(1000);
                    message = Some("The job has successfully completed".to_string());
                }
                ("failed", FineTuneOutcome::Fail { code, message: m }) => {
                    o["error"] = json!({"code": code, "message": m, "param": null});
                    o["finished_at"] = json!(now);
                    message = Some(format!("The job failed: {m}"));
                }
                (s, _) => message = Some(format!("Job status is now {s}")),
            }
        }
        let object = job.object.clone();
        if let Some(m) = message {
            self.event(id, now, &m);
        }
        object
    }

    /// Newest first, like the API; `limit` (default 20) and `after` (an event id) apply.
    fn events(&self, id: &str, query: &str) -> Value {
        let mut limit = 20usize;
        let mut after = None;
        for kv in query.split('&') {
            match kv.split_once('=') {
                Some(("limit", v)) => limit = v.parse().unwrap_or(20),
                Some(("after", v)) => after = Some(v.to_string()),
                _ => {}
            }
        }
        let mut evs: Vec<Value> = self.jobs[id].events.iter().rev().cloned().collect();
        if let Some(a) = after {
            if let Some(i) = evs.iter().position(|e| e["id"] == a.as_str()) {
                evs.drain(..=i);
            }
        }
        let has_more = evs.len() > limit;
        evs.truncate(limit);
        json!({"object": "list", "data": evs, "has_more": has_more})
    }

    fn cancel(&mut self, id: &str, now: u64) -> Result<Value, (u16, String)> {
        let job = self.jobs.get_mut(id).expect("checked by the caller");
        let status = job.object["status"].as_str().unwrap_or("");
        if matches!(status, "succeeded" | "failed" | "cancelled") {
            return Err(err(
                400,
                format!("Job {id} has already {status}; it cannot be cancelled"),
            ));
        }
        job.object["status"] = json!("cancelled");
        job.object["finished_at"] = json!(now);
        let object = job.object.clone();
        self.event(id, now, "The job was cancelled");
        Ok(object)
    }
}

struct Part {
    name: String,
    filename: Option<String>,
    data: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// A strict RFC 7578 reader: parts between `--BOUNDARY` lines, ending `--BOUNDARY--`.
fn parse_multipart(body: &[u8], boundary: &str) -> Result<Vec<Part>, String> {
    let delim = format!("--{boundary}");
    let mut pos = find(body, delim.as_bytes(), 0).ok_or("no multipart boundary in the body")?;
    let mut parts = Vec::new();
    loop {
        pos += delim.len();
        if body.get(pos..pos + 2) == Some(b"--") {
            return Ok(parts);
        }
        if body.get(pos..pos + 2) != Some(b"\r\n") {
            return Err("a multipart boundary is not followed by CRLF".into());
        }
        pos += 2;
        let head_end = find(body, b"\r\n\r\n", pos).ok_or("a multipart part has no header end")?;
        let head = String::from_utf8_lossy(&body[pos..head_end]).into_owned();
        let data_start = head_end + 4;
        let next_delim = format!("\r\n{delim}");
        let data_end = find(body, next_delim.as_bytes(), data_start)
            .ok_or("a multipart part is not closed by a boundary")?;
        let mut name = None;
        let mut filename = None;
        for line in head.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            if !k.trim().eq_ignore_ascii_case("content-disposition") {
                continue;
            }
            for p in v.split(';').map(str::trim) {
                if let Some(n) = p.strip_prefix("name=") {
                    name = Some(n.trim_matches('"').to_string());
                } else if let Some(f) = p.strip_prefix("filename=") {
                    filename = Some(f.trim_matches('"').to_string());
                }
            }
        }
        parts.push(Part {
            name: name.ok_or("a multipart part has no name")?,
            filename,
            data: body[data_start..data_end].to_vec(),
        });
        pos = data_end + 2;
    }
}
