//! A retrying client for the providers' REST resources beyond a single chat call: the
//! Files API (multipart upload, download), fine-tuning jobs and message batches.
//!
//! Every call goes through [`http::send_text`] (error classification, `Retry-After`,
//! scrubbing of the key from errors and bodies) and is retried with the [`RetryPolicy`]'s
//! backoff: reads on any retryable failure, creations ([`Idempotent::OnlyRefusals`]) only
//! on answers that say the server did not act (429, 529, 5xx) — after a timeout or a
//! dropped connection the resource may exist, so that failure is returned instead.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::http::{self, ApiKey, Secrets};
use crate::{ModelError, RetryPolicy};

/// How requests are authenticated.
#[derive(Clone)]
pub(crate) enum Auth {
    /// `Authorization: Bearer KEY` (OpenAI).
    Bearer(ApiKey),
    /// `x-api-key: KEY` and `anthropic-version` (Anthropic).
    Anthropic(ApiKey),
}

/// How much of a retry-worthy failure may have reached the server.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Idempotent {
    /// A read, or a write that may be repeated: retried on every retryable failure.
    Yes,
    /// A creation: retried only on answers that say the request was not acted on.
    OnlyRefusals,
}

/// An uploaded file (`object: file`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileObject {
    pub id: String,
    #[serde(default)]
    pub bytes: u64,
    #[serde(default)]
    pub filename: String,
    #[serde(default)]
    pub purpose: String,
}

/// One account's API at one base URL.
pub(crate) struct ApiClient {
    client: reqwest::Client,
    /// `https://api.openai.com/v1`, `https://api.anthropic.com` (no trailing slash).
    base: String,
    auth: Auth,
    secrets: Secrets,
    timeout: Duration,
    retry: RetryPolicy,
    classify: fn(u16, &str, Option<Duration>) -> ModelError,
}

impl ApiClient {
    pub(crate) fn new(
        client: reqwest::Client,
        base: &str,
        auth: Auth,
        timeout: Duration,
        retry: RetryPolicy,
        classify: fn(u16, &str, Option<Duration>) -> ModelError,
    ) -> Self {
        let key = match &auth {
            Auth::Bearer(k) | Auth::Anthropic(k) => k,
        };
        ApiClient {
            secrets: Secrets::new(Some(key), None),
            client,
            base: base.trim_end_matches('/').to_string(),
            auth,
            timeout,
            retry,
            classify,
        }
    }

    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.client
    }

    /// `base` + `path` (which starts with `/`).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn authorize(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            Auth::Bearer(k) => rb.bearer_auth(k.expose()),
            Auth::Anthropic(k) => rb
                .header("x-api-key", k.expose())
                .header("anthropic-version", crate::anthropic::API_VERSION),
        }
    }

    /// Sends what `build` makes (authenticated here), retrying as `what` allows; the body
    /// as text.
    pub(crate) async fn text(
        &self,
        what: Idempotent,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<String, ModelError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let rb = self.authorize(build());
            let e = match http::send_text(rb, &self.secrets, self.timeout, self.classify).await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let refusal = matches!(
                e,
                ModelError::RateLimited { .. }
                    | ModelError::Overloaded { .. }
                    | ModelError::Server { .. }
            );
            if !(e.is_retryable() && (what == Idempotent::Yes || refusal)) {
                return Err(e);
            }
            if attempt >= self.retry.max_attempts {
                return Err(ModelError::Exhausted {
                    attempts: attempt,
                    last: Box::new(e),
                });
            }
            let wait = self.retry.delay(attempt, e.retry_after());
            tracing::debug!(attempt, ?wait, error = %e, "provider API: retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// [`ApiClient::text`], parsed as JSON. A body that does not parse is retried like a
    /// torn one when the call may be repeated.
    pub(crate) async fn json(
        &self,
        what: Idempotent,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Value, ModelError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let text = self.text(what, &build).await?;
            match serde_json::from_str(&text) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let excerpt: String = text.chars().take(200).collect();
                    let err = ModelError::Malformed(format!("{e} in body starting {excerpt:?}"));
                    if what != Idempotent::Yes || attempt >= self.retry.max_attempts {
                        return Err(err);
                    }
                    tokio::time::sleep(self.retry.delay(attempt, None)).await;
                }
            }
        }
    }

    /// Uploads `bytes` to the Files API (`POST {base}/files`, multipart) as `filename`
    /// with `purpose` (`fine-tune`, `batch`).
    pub(crate) async fn upload(
        &self,
        purpose: &str,
        filename: &str,
        bytes: &[u8],
    ) -> Result<FileObject, ModelError> {
        let (content_type, body) = multipart(purpose, filename, bytes);
        let url = self.url("/files");
        let v = self
            .json(Idempotent::OnlyRefusals, || {
                self.client
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, &content_type)
                    .body(body.clone())
            })
            .await?;
        serde_json::from_value(v).map_err(|e| ModelError::Malformed(format!("file object: {e}")))
    }

    /// A file's content (`GET {base}/files/{id}/content`).
    pub(crate) async fn download(&self, file_id: &str) -> Result<String, ModelError> {
        let url = self.url(&format!("/files/{}/content", path_segment(file_id)?));
        self.text(Idempotent::Yes, || self.client.get(&url)).await
    }
}

/// An id goes into a URL path: only the characters provider ids use.
pub(crate) fn path_segment(id: &str) -> Result<&str, ModelError> {
    if !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == ':')
    {
        Ok(id)
    } else {
        Err(ModelError::Malformed(format!(
            "`{id}` is not a provider id (letters, digits, -, _ and : only)"
        )))
    }
}

/// A `multipart/form-data` body with the fields `purpose` and `file` (RFC 7578); returns
/// the `Content-Type` value and the body.
pub(crate) fn multipart(purpose: &str, filename: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    // A boundary that does not occur in the file.
    let boundary = loop {
        let b = format!("shammie-{:032x}", rng.gen::<u128>());
        if !bytes.windows(b.len()).any(|w| w == b.as_bytes()) {
            break b;
        }
    };
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, '"' | '\\' | '\r' | '\n'))
            .collect()
    };
    let (purpose, filename) = (clean(purpose), clean(filename));
    let mut body = Vec::with_capacity(bytes.len() + 512);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n{purpose}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
             Content-Type: application/jsonl\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_names_purpose_and_file() {
        let (ct, body) = multipart("batch", "in\"put.jsonl", b"{\"a\":1}\n");
        let boundary = ct.strip_prefix("multipart/form-data; boundary=").unwrap();
        let text = String::from_utf8(body).unwrap();
        assert!(text.starts_with(&format!("--{boundary}\r\n")));
        assert!(text.contains("name=\"purpose\"\r\n\r\nbatch\r\n"));
        assert!(text.contains("filename=\"input.jsonl\""));
        assert!(text.ends_with(&format!("{{\"a\":1}}\n\r\n--{boundary}--\r\n")));
    }

    #[test]
    fn ids_cannot_change_the_path() {
        assert!(path_segment("batch_abc-123").is_ok());
        assert!(path_segment("../files").is_err());
        assert!(path_segment("a?b").is_err());
        assert!(path_segment("").is_err());
    }
}
