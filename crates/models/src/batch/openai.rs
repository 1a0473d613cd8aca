//! OpenAI Batch: the requests as a JSONL file (`{"custom_id", "method": "POST", "url":
//! "/v1/chat/completions", "body"}` per line, each `body` the one a synchronous call
//! sends) uploaded through the Files API (`POST /v1/files`, purpose `batch`), then
//! `POST /v1/batches` (`input_file_id`, `endpoint`, `completion_window: "24h"`, and
//! `metadata.shammie_batch` = the local id, by which `GET /v1/batches` finds it again),
//! `GET /v1/batches/{id}` (`validating` → `in_progress` → `finalizing` → `completed`, or
//! `failed` / `expired` / `cancelling` / `cancelled`; `output_file_id`, `error_file_id`),
//! and the result files from `GET /v1/files/{id}/content`: lines `{"custom_id",
//! "response": {"status_code", "body"}, "error"}`.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use shammie_core::{Completion, GenerateRequest};

use super::{jsonl, BatchApi, Status};
use crate::api::{path_segment, ApiClient, Auth, Idempotent};
use crate::openai::{parse_response, OpenAi};
use crate::spec::{ModelSpec, ProviderEnv};
use crate::{http, Model, ModelError, RetryPolicy};

/// Requests per batch.
const MAX_REQUESTS: usize = 50_000;
/// Bytes of the input file (200 MB).
const MAX_BYTES: usize = 200_000_000;
/// The chat endpoint every line of a batch goes to.
const ENDPOINT: &str = "/v1/chat/completions";
/// The `metadata` key holding Shammie's local batch id.
const META_KEY: &str = "shammie_batch";
/// How many pages of the batch list (newest first) are searched for a lost batch.
const FIND_PAGES: usize = 20;

pub(crate) struct OpenAiBatches {
    model: OpenAi,
    api: ApiClient,
}

impl OpenAiBatches {
    pub(crate) fn new(
        client: reqwest::Client,
        spec: &ModelSpec,
        env: &ProviderEnv,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self, ModelError> {
        let model = OpenAi::new(client.clone(), spec, env, timeout, None)?;
        let key = env.openai_api_key.clone().ok_or_else(|| {
            ModelError::Config(format!(
                "model `{spec}` needs OPENAI_API_KEY in the environment"
            ))
        })?;
        let api = ApiClient::new(
            client,
            &spec.resolved_base_url(env),
            Auth::Bearer(key),
            timeout,
            retry,
            http::classify,
        );
        Ok(OpenAiBatches { model, api })
    }

    /// The lines of a result file, by custom id.
    async fn file(
        &self,
        file_id: &str,
        provider_id: &str,
        out: &mut Vec<(String, Result<Value, ModelError>)>,
    ) -> Result<(), ModelError> {
        let text = self.api.download(file_id).await?;
        for line in jsonl(&text, &format!("batch {provider_id} file {file_id}"))? {
            let Some(id) = line.get("custom_id").and_then(Value::as_str) else {
                return Err(ModelError::Malformed(
                    "batch result line without a custom_id".into(),
                ));
            };
            out.push((id.to_string(), outcome(&line, provider_id)));
        }
        Ok(())
    }
}

/// One result line as an answer body or an error.
fn outcome(line: &Value, provider_id: &str) -> Result<Value, ModelError> {
    if let Some(e) = line.get("error").filter(|e| !e.is_null()) {
        let code = e.get("code").and_then(Value::as_str).unwrap_or("");
        let message = e
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("no message")
            .to_string();
        return Err(match code {
            "batch_expired" => ModelError::Expired(format!("batch {provider_id}: {message}")),
            "batch_cancelled" => ModelError::Canceled(format!("batch {provider_id}: {message}")),
            "request_timeout" => ModelError::Server {
                status: 504,
                retry_after: None,
                message,
            },
            _ => super::error_of_type(code, message),
        });
    }
    let status = line
        .pointer("/response/status_code")
        .and_then(Value::as_u64)
        .unwrap_or(0) as u16;
    let body = line
        .pointer("/response/body")
        .cloned()
        .unwrap_or(Value::Null);
    if status == 200 {
        return Ok(body);
    }
    let message = body
        .pointer("/error/message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| body.to_string().chars().take(300).collect());
    if status == 0 {
        return Err(ModelError::Malformed(format!(
            "batch result line with neither a response nor an error: {message}"
        )));
    }
    Err(http::classify(status, &message, None))
}

#[async_trait]
impl BatchApi for OpenAiBatches {
    fn provider(&self) -> &'static str {
        "openai"
    }
    fn model(&self) -> &dyn Model {
        &self.model
    }
    fn limits(&self) -> (usize, usize) {
        (MAX_REQUESTS, MAX_BYTES)
    }
    fn findable(&self) -> bool {
        true
    }

    fn entry(&self, custom_id: &str, req: &GenerateRequest) -> Result<String, ModelError> {
        let body = self.model.body(req)?;
        Ok(
            json!({"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body})
                .to_string(),
        )
    }

    async fn submit(&self, local_id: &str, entries: &[String]) -> Result<String, ModelError> {
        let mut file = String::with_capacity(entries.iter().map(|e| e.len() + 1).sum());
        for e in entries {
            file.push_str(e);
            file.push('\n');
        }
        let uploaded = self
            .api
            .upload(
                "batch",
                &format!("shammie-{local_id}.jsonl"),
                file.as_bytes(),
            )
            .await?;
        let url = self.api.url("/batches");
        let body = json!({
            "input_file_id": uploaded.id,
            "endpoint": ENDPOINT,
            "completion_window": "24h",
            "metadata": {META_KEY: local_id},
        });
        let v = self
            .api
            .json(Idempotent::OnlyRefusals, || {
                self.api.http().post(&url).json(&body)
            })
            .await?;
        v.get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ModelError::Malformed("batch without an id".into()))
    }

    async fn find(&self, local_id: &str) -> Result<Option<String>, ModelError> {
        let mut after: Option<String> = None;
        for _ in 0..FIND_PAGES {
            let url = match &after {
                Some(a) => self
                    .api
                    .url(&format!("/batches?limit=100&after={}", path_segment(a)?)),
                None => self.api.url("/batches?limit=100"),
            };
            let v = self
                .api
                .json(Idempotent::Yes, || self.api.http().get(&url))
                .await?;
            let data = v
                .get("data")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for b in &data {
                if b.pointer(&format!("/metadata/{META_KEY}"))
                    .and_then(Value::as_str)
                    == Some(local_id)
                {
                    return Ok(b.get("id").and_then(Value::as_str).map(str::to_string));
                }
            }
            let more = v.get("has_more").and_then(Value::as_bool).unwrap_or(false);
            after = data
                .last()
                .and_then(|b| b.get("id"))
                .and_then(Value::as_str)
                .map(str::to_string);
            if !more || after.is_none() {
                break;
            }
        }
        Ok(None)
    }

    async fn poll(&self, provider_id: &str) -> Result<Status, ModelError> {
        let url = self
            .api
            .url(&format!("/batches/{}", path_segment(provider_id)?));
        let v = self
            .api
            .json(Idempotent::Yes, || self.api.http().get(&url))
            .await?;
        let status = v
            .get("status")
            .and_then(Value::as_str)
            .ok_or_else(|| ModelError::Malformed("batch without a status".into()))?
            .to_string();
        let n = |k: &str| {
            v.pointer(&format!("/request_counts/{k}"))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        let failure = (status == "failed").then(|| {
            let reasons: Vec<String> = v
                .pointer("/errors/data")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|e| {
                            let m = e.get("message").and_then(Value::as_str)?;
                            Some(match e.get("line").and_then(Value::as_u64) {
                                Some(l) => format!("line {l}: {m}"),
                                None => m.to_string(),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            ModelError::Rejected {
                status: 400,
                message: format!(
                    "batch {provider_id} failed: {}",
                    if reasons.is_empty() {
                        "no reason given".to_string()
                    } else {
                        reasons.join("; ")
                    }
                ),
            }
        });
        Ok(Status {
            ended: matches!(
                status.as_str(),
                "completed" | "failed" | "expired" | "cancelled"
            ),
            status,
            done: n("completed") + n("failed"),
            total: n("total"),
            failed: n("failed"),
            failure,
            raw: v,
        })
    }

    async fn results(
        &self,
        provider_id: &str,
        status: &Status,
    ) -> Result<Vec<(String, Result<Value, ModelError>)>, ModelError> {
        let mut out = Vec::new();
        for k in ["output_file_id", "error_file_id"] {
            if let Some(f) = status.raw.get(k).and_then(Value::as_str) {
                self.file(f, provider_id, &mut out).await?;
            }
        }
        Ok(out)
    }

    fn completion(&self, _req: &GenerateRequest, body: &Value) -> Result<Completion, ModelError> {
        parse_response(body)
    }
}
