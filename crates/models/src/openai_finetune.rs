//! A client for OpenAI's fine-tuning API: upload a JSONL training file
//! (`POST /v1/files`, multipart, purpose `fine-tune`), create a job
//! (`POST /v1/fine_tuning/jobs`), poll it (`GET /v1/fine_tuning/jobs/{id}`), list its
//! events (`GET …/{id}/events`) and cancel it (`POST …/{id}/cancel`).
//!
//! **Resuming.** [`FineTuneClient::start`] uploads and creates, and returns the job id as
//! soon as OpenAI has accepted the job, *before* any polling. A caller records that id
//! (e.g. in its run directory) and then calls [`FineTuneClient::wait`]; after a crash it
//! calls [`FineTuneClient::resume`] with the recorded id, which only polls, instead of
//! creating (and paying for) a second job. Creating a job is retried only on answers that
//! say the server did not take it (429, 5xx); a timeout or dropped connection while
//! creating is returned, since the job may exist: list jobs on the dashboard before
//! starting again.
//!
//! Requests go through the same plumbing as the chat provider and the batch layer (the
//! crate's retrying API client: error classification, `Retry-After`, scrubbing of the key
//! from every error and body, the Files API upload) and are retried on 429/5xx/timeouts
//! with the same [`RetryPolicy`]. The key is sent only as the `Authorization` header and
//! never appears in an error.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::{ApiClient, Auth, Idempotent};
use crate::http::{self, ApiKey};
use crate::spec::OPENAI_DEFAULT_BASE;
use crate::{ModelError, RetryPolicy};

/// Why a fine-tuning call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FineTuneError {
    /// The API call failed (after retries where retryable). Never contains the key.
    #[error("OpenAI fine-tuning API: {0}")]
    Api(#[from] ModelError),
    /// The training or validation file is not valid fine-tuning JSONL; nothing was sent.
    #[error("{0}")]
    BadInput(String),
    #[error("fine-tuning job {job_id} failed{}: {message}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    JobFailed {
        job_id: String,
        code: Option<String>,
        message: String,
    },
    #[error("fine-tuning job {job_id} was cancelled")]
    JobCancelled { job_id: String },
    #[error("fine-tuning job {job_id} still `{status}` after waiting {waited:.1?}; resume it later with its id")]
    PollTimeout {
        job_id: String,
        status: String,
        waited: Duration,
    },
}

/// A job's status as the API reports it; unknown future values are kept as `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    ValidatingFiles,
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    #[serde(untagged)]
    Other(String),
}

impl JobStatus {
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

/// `error` of a failed job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobError {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub param: Option<String>,
}

/// A fine-tuning job object (`object: fine_tuning.job`). Unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FineTuneJob {
    pub id: String,
    pub status: JobStatus,
    /// The base model.
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub fine_tuned_model: Option<String>,
    #[serde(default)]
    pub training_file: Option<String>,
    #[serde(default)]
    pub validation_file: Option<String>,
    #[serde(default)]
    pub error: Option<JobError>,
    #[serde(default)]
    pub created_at: Option<u64>,
    #[serde(default)]
    pub finished_at: Option<u64>,
    #[serde(default)]
    pub trained_tokens: Option<u64>,
    /// As the API echoes them (numbers or `"auto"`).
    #[serde(default)]
    pub hyperparameters: Option<Value>,
    #[serde(default)]
    pub seed: Option<i64>,
}

pub use crate::api::FileObject;

/// One job event (`object: fine_tuning.job.event`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEvent {
    pub id: String,
    #[serde(default)]
    pub created_at: u64,
    #[serde(default)]
    pub level: String,
    #[serde(default)]
    pub message: String,
}

/// The job's `hyperparameters`; `None` leaves each to OpenAI (`"auto"`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Hyperparameters {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n_epochs: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learning_rate_multiplier: Option<f64>,
}

/// The body of `POST /v1/fine_tuning/jobs`: a supervised job. `hyperparameters` is sent
/// at the top level, which OpenAI still accepts though its reference now marks it
/// deprecated in favour of `method: {type: "supervised", supervised: {hyperparameters}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CreateJob {
    pub model: String,
    pub training_file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_file: Option<String>,
    #[serde(skip_serializing_if = "is_default")]
    pub hyperparameters: Hyperparameters,
    /// Up to 64 characters, part of the fine-tuned model's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
}

fn is_default(h: &Hyperparameters) -> bool {
    *h == Hyperparameters::default()
}

/// What [`FineTuneClient::start`] needs besides the files.
#[derive(Debug, Clone, Default)]
pub struct JobSpec {
    pub model: String,
    pub hyperparameters: Hyperparameters,
    pub suffix: Option<String>,
    pub seed: Option<i64>,
}

/// How [`FineTuneClient::wait`] polls.
#[derive(Debug, Clone)]
pub struct PollOptions {
    pub interval: Duration,
    /// Give up (with [`FineTuneError::PollTimeout`]; the job keeps running) after this long.
    pub timeout: Duration,
}

impl Default for PollOptions {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(24 * 3600),
        }
    }
}

/// A client for one OpenAI account's fine-tuning API.
pub struct FineTuneClient {
    api: ApiClient,
}

impl std::fmt::Debug for FineTuneClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FineTuneClient")
            .field("base", &self.api.base())
            .field("key", &format_args!("ApiKey(***)"))
            .finish()
    }
}

impl FineTuneClient {
    /// `base_url` is `https://api.openai.com/v1` when `None` (a loopback mock in tests).
    pub fn new(
        base_url: Option<&str>,
        key: ApiKey,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self, FineTuneError> {
        let api = ApiClient::new(
            http::client(timeout, 4)?,
            base_url.unwrap_or(OPENAI_DEFAULT_BASE),
            Auth::Bearer(key),
            timeout,
            retry,
            http::classify,
        );
        Ok(Self { api })
    }

    async fn call(
        &self,
        what: Idempotent,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Value, FineTuneError> {
        Ok(self.api.json(what, build).await?)
    }

    fn parse<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> Result<T, FineTuneError> {
        serde_json::from_value(v).map_err(|e| ModelError::Malformed(format!("{what}: {e}")).into())
    }

    /// Uploads `bytes` as a fine-tuning file named `filename` (multipart, purpose
    /// `fine-tune`). The bytes are checked first ([`validate_jsonl`]); bad ones send nothing.
    pub async fn upload(&self, filename: &str, bytes: &[u8]) -> Result<FileObject, FineTuneError> {
        validate_jsonl(filename, bytes)?;
        Ok(self.api.upload("fine-tune", filename, bytes).await?)
    }

    /// Reads and uploads a JSONL file (errors name the path and line).
    pub async fn upload_path(&self, path: &Path) -> Result<FileObject, FineTuneError> {
        let bytes = std::fs::read(path).map_err(|e| {
            FineTuneError::BadInput(format!("{}: cannot read: {e}", path.display()))
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "train.jsonl".into());
        validate_jsonl(&path.display().to_string(), &bytes)?;
        self.upload(&name, &bytes).await
    }

    /// Creates a job. Record the returned id before polling (see the module comment).
    pub async fn create_job(&self, req: &CreateJob) -> Result<FineTuneJob, FineTuneError> {
        if req.model.trim().is_empty() {
            return Err(FineTuneError::BadInput(
                "fine-tuning job: empty model".into(),
            ));
        }
        if req.suffix.as_ref().is_some_and(|s| s.chars().count() > 64) {
            return Err(FineTuneError::BadInput(
                "fine-tuning job: the suffix is longer than 64 characters".into(),
            ));
        }
        let url = self.api.url("/fine_tuning/jobs");
        let v = self
            .call(Idempotent::OnlyRefusals, || {
                self.api.http().post(&url).json(req)
            })
            .await?;
        Self::parse(v, "fine-tuning job")
    }

    /// The job as it is now.
    pub async fn job(&self, job_id: &str) -> Result<FineTuneJob, FineTuneError> {
        let url = self
            .api
            .url(&format!("/fine_tuning/jobs/{}", path_segment(job_id)?));
        let v = self
            .call(Idempotent::Yes, || self.api.http().get(&url))
            .await?;
        Self::parse(v, "fine-tuning job")
    }

    /// The job's newest `limit` events, newest first.
    pub async fn events(&self, job_id: &str, limit: u32) -> Result<Vec<JobEvent>, FineTuneError> {
        let url = self.api.url(&format!(
            "/fine_tuning/jobs/{}/events?limit={limit}",
            path_segment(job_id)?
        ));
        let v = self
            .call(Idempotent::Yes, || self.api.http().get(&url))
            .await?;
        let data = v.get("data").cloned().unwrap_or(Value::Array(Vec::new()));
        Self::parse(data, "event list")
    }

    /// Cancels a job that has not finished.
    pub async fn cancel(&self, job_id: &str) -> Result<FineTuneJob, FineTuneError> {
        let url = self.api.url(&format!(
            "/fine_tuning/jobs/{}/cancel",
            path_segment(job_id)?
        ));
        let v = self
            .call(Idempotent::Yes, || self.api.http().post(&url))
            .await?;
        Self::parse(v, "fine-tuning job")
    }

    /// Uploads the training (and validation) file and creates the job; returns the job at
    /// once, without polling, so its id can be recorded.
    pub async fn start(
        &self,
        training: &Path,
        validation: Option<&Path>,
        spec: &JobSpec,
    ) -> Result<FineTuneJob, FineTuneError> {
        // Check both files before uploading either.
        for p in std::iter::once(training).chain(validation) {
            let bytes = std::fs::read(p).map_err(|e| {
                FineTuneError::BadInput(format!("{}: cannot read: {e}", p.display()))
            })?;
            validate_jsonl(&p.display().to_string(), &bytes)?;
        }
        let training_file = self.upload_path(training).await?.id;
        let validation_file = match validation {
            Some(p) => Some(self.upload_path(p).await?.id),
            None => None,
        };
        self.create_job(&CreateJob {
            model: spec.model.clone(),
            training_file,
            validation_file,
            hyperparameters: spec.hyperparameters.clone(),
            suffix: spec.suffix.clone(),
            seed: spec.seed,
        })
        .await
    }

    /// Polls until the job ends: the succeeded job (with `fine_tuned_model`), or an error
    /// carrying OpenAI's message for a failed job.
    pub async fn wait(
        &self,
        job_id: &str,
        poll: &PollOptions,
    ) -> Result<FineTuneJob, FineTuneError> {
        let start = Instant::now();
        loop {
            let job = self.job(job_id).await?;
            match job.status {
                JobStatus::Succeeded => {
                    if job.fine_tuned_model.as_deref().is_none_or(str::is_empty) {
                        return Err(ModelError::Malformed(format!(
                            "job {job_id} succeeded without a fine_tuned_model"
                        ))
                        .into());
                    }
                    return Ok(job);
                }
                JobStatus::Failed => {
                    let (code, message) = match job.error {
                        Some(e) => (e.code, e.message),
                        None => (None, "no error message given".into()),
                    };
                    return Err(FineTuneError::JobFailed {
                        job_id: job.id,
                        code,
                        message,
                    });
                }
                JobStatus::Cancelled => return Err(FineTuneError::JobCancelled { job_id: job.id }),
                ref s => {
                    let waited = start.elapsed();
                    if waited + poll.interval > poll.timeout {
                        return Err(FineTuneError::PollTimeout {
                            job_id: job.id.clone(),
                            status: status_str(s),
                            waited,
                        });
                    }
                    tracing::debug!(job_id, status = %status_str(s), "fine-tuning job not done");
                    tokio::time::sleep(poll.interval).await;
                }
            }
        }
    }

    /// Picks up a job created earlier (e.g. before a crash) by its recorded id: only
    /// polls, never creates.
    pub async fn resume(
        &self,
        job_id: &str,
        poll: &PollOptions,
    ) -> Result<FineTuneJob, FineTuneError> {
        self.wait(job_id, poll).await
    }
}

fn status_str(s: &JobStatus) -> String {
    match s {
        JobStatus::Other(o) => o.clone(),
        other => serde_json::to_value(other)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
    }
}

/// A job id goes into a URL path: only the characters OpenAI ids use.
fn path_segment(id: &str) -> Result<&str, FineTuneError> {
    if !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == ':')
    {
        Ok(id)
    } else {
        Err(FineTuneError::BadInput(format!(
            "`{id}` is not a fine-tuning job id"
        )))
    }
}

/// Checks that `bytes` is fine-tuning JSONL in the chat format: one JSON object per
/// line with a non-empty `messages` array whose items have a string `role` (the jobs
/// made here are supervised; preference/DPO files are not accepted). Errors name
/// `name:LINE`.
pub fn validate_jsonl(name: &str, bytes: &[u8]) -> Result<(), FineTuneError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| FineTuneError::BadInput(format!("{name}: not UTF-8 ({e})")))?;
    let body = text.strip_suffix('\n').unwrap_or(text);
    let body = body.strip_suffix('\r').unwrap_or(body);
    if body.trim().is_empty() {
        return Err(FineTuneError::BadInput(format!("{name}: no examples")));
    }
    for (i, line) in body.split('\n').enumerate() {
        let bad = |why: String| FineTuneError::BadInput(format!("{name}:{}: {why}", i + 1));
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            return Err(bad("empty line".into()));
        }
        let v: Value = serde_json::from_str(line).map_err(|e| bad(format!("not JSON ({e})")))?;
        let Some(obj) = v.as_object() else {
            return Err(bad("not a JSON object".into()));
        };
        if let Some(m) = obj.get("messages") {
            let msgs = m
                .as_array()
                .filter(|a| !a.is_empty())
                .ok_or_else(|| bad("`messages` is not a non-empty array".into()))?;
            for (j, msg) in msgs.iter().enumerate() {
                if msg.get("role").and_then(Value::as_str).is_none() {
                    return Err(bad(format!("message {} has no string `role`", j + 1)));
                }
            }
        } else {
            return Err(bad("no `messages` (a supervised chat example)".into()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_errors_name_file_and_line() {
        let ok = b"{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}\n";
        assert!(validate_jsonl("t.jsonl", ok).is_ok());
        let bad = b"{\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}\n{\"messages\":[]}\n";
        let e = validate_jsonl("t.jsonl", bad).unwrap_err().to_string();
        assert!(e.starts_with("t.jsonl:2: "), "{e}");
        let e = validate_jsonl("t.jsonl", b"{}\n\nx")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("t.jsonl:1: "), "{e}");
        let e = validate_jsonl("t.jsonl", b"").unwrap_err().to_string();
        assert_eq!(e, "t.jsonl: no examples");
    }

    #[test]
    fn unknown_status_and_fields_are_tolerated() {
        let j: FineTuneJob = serde_json::from_value(serde_json::json!({
            "id": "ftjob-1", "status": "pausing", "new_field": {"x": 1}, "model": "m"
        }))
        .unwrap();
        assert_eq!(j.status, JobStatus::Other("pausing".into()));
        assert!(!j.status.is_terminal());
        let j: FineTuneJob =
            serde_json::from_value(serde_json::json!({"id": "a", "status": "validating_files"}))
                .unwrap();
        assert_eq!(j.status, JobStatus::ValidatingFiles);
    }

    #[test]
    fn create_body_omits_unset_fields() {
        let c = CreateJob {
            model: "gpt-4o-mini-2024-07-18".into(),
            training_file: "file-1".into(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            serde_json::json!({"model": "gpt-4o-mini-2024-07-18", "training_file": "file-1"})
        );
    }

    #[test]
    fn job_ids_cannot_change_the_path() {
        assert!(path_segment("ftjob-abc_123").is_ok());
        assert!(path_segment("../files").is_err());
        assert!(path_segment("a?b").is_err());
    }
}
