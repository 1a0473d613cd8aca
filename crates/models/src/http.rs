//! The HTTP plumbing shared by the API providers: one client, error classification,
//! `Retry-After` parsing, and scrubbing of secrets from anything that becomes an error.

use std::fmt;
use std::time::Duration;

use crate::ModelError;

/// An API key. Its `Debug` and `Display` print `ApiKey(***)`; the only way to the
/// secret is [`ApiKey::expose`], used when building a request header.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(s: impl Into<String>) -> Self {
        ApiKey(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Removes every occurrence of the key from `text`.
    pub fn scrub(&self, text: &str) -> String {
        if self.0.len() >= 4 {
            text.replace(&self.0, "***")
        } else {
            text.to_string()
        }
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}
impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// One pooled client for all providers. TLS uses the operating system's root store.
pub(crate) fn client(
    timeout: Duration,
    max_connections: usize,
) -> Result<reqwest::Client, ModelError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(30)))
        .pool_max_idle_per_host(max_connections.max(1))
        .tcp_nodelay(true)
        .user_agent(concat!("shammie/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ModelError::Config(format!("cannot build the HTTP client: {e}")))
}

/// Sends a JSON POST and returns the parsed body, classifying every failure.
pub(crate) async fn post_json(
    rb: reqwest::RequestBuilder,
    body: &serde_json::Value,
    key: Option<&ApiKey>,
    timeout: Duration,
    classify_status: impl Fn(u16, &str, Option<Duration>) -> ModelError,
) -> Result<serde_json::Value, ModelError> {
    let scrub = |s: String| match key {
        Some(k) => k.scrub(&s),
        None => s,
    };
    let resp = rb
        .json(body)
        .send()
        .await
        .map_err(|e| transport_error(e, timeout, &scrub))?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| transport_error(e, timeout, &scrub))?;
    if !(200..300).contains(&status) {
        let text = String::from_utf8_lossy(&bytes);
        let message = scrub(error_message(&text));
        return Err(classify_status(status, &message, retry_after));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        let excerpt: String = String::from_utf8_lossy(&bytes).chars().take(200).collect();
        ModelError::Malformed(scrub(format!("{e} in body starting {excerpt:?}")))
    })
}

fn transport_error(
    e: reqwest::Error,
    timeout: Duration,
    scrub: &impl Fn(String) -> String,
) -> ModelError {
    // Everything but a timeout is a connection problem: refused, reset, or a body cut
    // off after the headers.
    if e.is_timeout() {
        ModelError::Timeout(timeout)
    } else {
        ModelError::Connection(scrub(full_chain(&e)))
    }
}

fn full_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// `Retry-After` as delta-seconds (fractions accepted; providers send `0.5`-style values
/// in practice). HTTP-dates are rare for APIs and treated as absent.
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    let secs: f64 = v.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

/// The human message inside an error body of either API, or the body's start.
fn error_message(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        if let Some(m) = v.pointer("/error/message").and_then(|m| m.as_str()) {
            return m.to_string();
        }
    }
    body.chars().take(300).collect()
}

/// Default status classification shared by both APIs.
pub(crate) fn classify(status: u16, message: &str, retry_after: Option<Duration>) -> ModelError {
    let message = message.to_string();
    match status {
        429 => ModelError::RateLimited {
            retry_after,
            message,
        },
        529 => ModelError::Overloaded {
            status,
            retry_after,
            message,
        },
        401 | 403 => ModelError::Auth { status, message },
        408 => ModelError::Server {
            status,
            retry_after,
            message,
        },
        500..=599 => ModelError::Server {
            status,
            retry_after,
            message,
        },
        _ => ModelError::Rejected { status, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_never_print() {
        let k = ApiKey::new("sk-live-123456");
        assert_eq!(format!("{k:?} {k}"), "ApiKey(***) ***");
        assert_eq!(k.scrub("bad key sk-live-123456 given"), "bad key *** given");
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(" 0.25 "),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn classification() {
        assert!(classify(429, "x", None).is_backpressure());
        assert!(classify(529, "x", None).is_retryable());
        assert!(classify(503, "x", None).is_retryable());
        assert!(!classify(400, "x", None).is_retryable());
        assert!(!classify(401, "x", None).is_retryable());
    }
}
