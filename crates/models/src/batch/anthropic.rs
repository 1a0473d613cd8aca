//! Anthropic Message Batches: `POST /v1/messages/batches` with
//! `{"requests": [{"custom_id", "params"}]}` (each `params` the body a synchronous
//! `POST /v1/messages` sends), `GET /v1/messages/batches/{id}` (`processing_status`
//! `in_progress` / `canceling` / `ended`, `request_counts`), and the results at the
//! batch's `results_url`: JSONL lines `{"custom_id", "result": {"type": "succeeded",
//! "message"} | {"type": "errored", "error"} | {"type": "canceled"} | {"type":
//! "expired"}}`.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use shammie_core::{Completion, GenerateRequest};

use super::{error_of_type, jsonl, BatchApi, Status};
use crate::anthropic::{parse_response, strip_trimmed_whitespace, Anthropic};
use crate::api::{path_segment, ApiClient, Auth, Idempotent};
use crate::spec::{ModelSpec, ProviderEnv};
use crate::{Model, ModelError, RetryPolicy};

/// Requests per batch.
const MAX_REQUESTS: usize = 100_000;
/// Bytes per batch (256 MB).
const MAX_BYTES: usize = 256_000_000;

pub(crate) struct AnthropicBatches {
    model: Anthropic,
    api: ApiClient,
}

impl AnthropicBatches {
    pub(crate) fn new(
        client: reqwest::Client,
        spec: &ModelSpec,
        env: &ProviderEnv,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self, ModelError> {
        let model = Anthropic::new(client.clone(), spec, env, timeout)?;
        let key = env
            .anthropic_api_key
            .clone()
            .expect("checked by Anthropic::new");
        let api = ApiClient::new(
            client,
            &spec.resolved_base_url(env),
            Auth::Anthropic(key),
            timeout,
            retry,
            crate::anthropic::classify,
        );
        Ok(AnthropicBatches { model, api })
    }
}

fn count(v: &Value, k: &str) -> u64 {
    v.pointer(&format!("/request_counts/{k}"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

#[async_trait]
impl BatchApi for AnthropicBatches {
    fn provider(&self) -> &'static str {
        "anthropic"
    }
    fn model(&self) -> &dyn Model {
        &self.model
    }
    fn limits(&self) -> (usize, usize) {
        (MAX_REQUESTS, MAX_BYTES)
    }
    fn findable(&self) -> bool {
        false
    }

    fn entry(&self, custom_id: &str, req: &GenerateRequest) -> Result<String, ModelError> {
        let params = self.model.body(req)?;
        Ok(serde_json::json!({"custom_id": custom_id, "params": params}).to_string())
    }

    async fn submit(&self, _local_id: &str, entries: &[String]) -> Result<String, ModelError> {
        let mut body =
            String::with_capacity(entries.iter().map(|e| e.len() + 1).sum::<usize>() + 16);
        body.push_str("{\"requests\":[");
        for (i, e) in entries.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(e);
        }
        body.push_str("]}");
        let url = self.api.url("/v1/messages/batches");
        let v = self
            .api
            .json(Idempotent::OnlyRefusals, || {
                self.api
                    .http()
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
            })
            .await?;
        v.get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ModelError::Malformed("message batch without an id".into()))
    }

    async fn find(&self, _local_id: &str) -> Result<Option<String>, ModelError> {
        Ok(None)
    }

    async fn poll(&self, provider_id: &str) -> Result<Status, ModelError> {
        let url = self.api.url(&format!(
            "/v1/messages/batches/{}",
            path_segment(provider_id)?
        ));
        let v = self
            .api
            .json(Idempotent::Yes, || self.api.http().get(&url))
            .await?;
        let status = v
            .get("processing_status")
            .and_then(Value::as_str)
            .ok_or_else(|| ModelError::Malformed("message batch without processing_status".into()))?
            .to_string();
        let processing = count(&v, "processing");
        let succeeded = count(&v, "succeeded");
        let failed = count(&v, "errored") + count(&v, "canceled") + count(&v, "expired");
        Ok(Status {
            ended: status == "ended",
            status,
            done: succeeded + failed,
            total: processing + succeeded + failed,
            failed,
            failure: None,
            raw: v,
        })
    }

    async fn results(
        &self,
        provider_id: &str,
        status: &Status,
    ) -> Result<Vec<(String, Result<Value, ModelError>)>, ModelError> {
        // The key goes only to this API's own host: a results_url elsewhere is not used.
        let own = self.api.url(&format!(
            "/v1/messages/batches/{}/results",
            path_segment(provider_id)?
        ));
        let url = match status.raw.get("results_url").and_then(Value::as_str) {
            Some(u) if u.starts_with(&format!("{}/", self.api.base())) => u.to_string(),
            _ => own,
        };
        let text = self
            .api
            .text(Idempotent::Yes, || self.api.http().get(&url))
            .await?;
        let mut out = Vec::new();
        for line in jsonl(&text, "message batch results")? {
            let Some(id) = line.get("custom_id").and_then(Value::as_str) else {
                return Err(ModelError::Malformed(
                    "message batch result without a custom_id".into(),
                ));
            };
            let result = &line["result"];
            let r = match result.get("type").and_then(Value::as_str) {
                Some("succeeded") => result
                    .get("message")
                    .cloned()
                    .ok_or_else(|| ModelError::Malformed("succeeded without a message".into())),
                Some("errored") => {
                    // `error` is an error response (`{"type": "error", "error": {…}}`) or
                    // the error object itself.
                    let e = result
                        .pointer("/error/error")
                        .or_else(|| result.get("error"))
                        .cloned()
                        .unwrap_or(Value::Null);
                    let kind = e.get("type").and_then(Value::as_str).unwrap_or("");
                    let message = e
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("no message")
                        .to_string();
                    Err(error_of_type(kind, message))
                }
                Some("expired") => Err(ModelError::Expired(format!(
                    "batch {provider_id} ended before this request was processed"
                ))),
                Some("canceled") => Err(ModelError::Canceled(format!(
                    "batch {provider_id} was canceled before this request was processed"
                ))),
                other => Err(ModelError::Malformed(format!(
                    "message batch result of unknown type {other:?}"
                ))),
            };
            out.push((id.to_string(), r));
        }
        Ok(out)
    }

    fn completion(&self, req: &GenerateRequest, body: &Value) -> Result<Completion, ModelError> {
        let mut c = parse_response(body)?;
        c.text = strip_trimmed_whitespace(req.prefill.as_deref(), c.text);
        Ok(c)
    }
}
