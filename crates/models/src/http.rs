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
    /// Removes every form of the key from `text` (see [`Secrets::scrub`]).
    pub fn scrub(&self, text: &str) -> String {
        Secrets::new(Some(self), None).scrub(text)
    }
}

/// Everything secret about how a provider authenticates, in every form it could come
/// back in: the key, its `Bearer` header, base64 of it; for credentials in a URL the
/// password, `user:password`, its base64 and `Basic` header. [`Secrets::scrub`] removes
/// them, and any run of 8 or more characters of a key or password, from text before it
/// is stored or printed.
#[derive(Clone, Default)]
pub(crate) struct Secrets {
    /// Whole forms, longest first.
    forms: Vec<String>,
    /// Secrets whose every 8-character (or longer) piece is also removed.
    pieces: Vec<String>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets({} forms)", self.forms.len())
    }
}

/// Standard base64 with padding (what HTTP Basic authentication sends).
pub(crate) fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl Secrets {
    /// The forms of `key` and of URL credentials `(user, password)`.
    pub(crate) fn new(key: Option<&ApiKey>, basic: Option<(&str, &str)>) -> Self {
        let mut s = Secrets::default();
        if let Some(k) = key.map(ApiKey::expose).filter(|k| k.len() >= 4) {
            s.forms.push(format!("Bearer {k}"));
            s.forms.push(base64(k.as_bytes()));
            s.forms.push(k.to_string());
            s.pieces.push(k.to_string());
        }
        if let Some((user, pass)) = basic {
            s.add_basic(user, pass);
        }
        s.forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        s
    }

    /// Adds the forms of URL credentials `user:pass` (one more server's, for replicas).
    pub(crate) fn add_basic(&mut self, user: &str, pass: &str) {
        if pass.is_empty() {
            return;
        }
        let pair = format!("{user}:{pass}");
        let b = base64(pair.as_bytes());
        self.forms.push(format!("Basic {b}"));
        self.forms.push(b);
        self.forms.push(pair);
        if pass.len() >= 4 {
            self.forms.push(pass.to_string());
            self.pieces.push(pass.to_string());
        }
        self.forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    }

    /// `text` without any secret form: each is replaced by `***`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut t = text.to_string();
        for f in &self.forms {
            if t.contains(f.as_str()) {
                t = t.replace(f.as_str(), "***");
            }
        }
        for p in &self.pieces {
            let cs: Vec<char> = p.chars().collect();
            // Longest pieces first, so a long echo is replaced whole.
            for len in (8..cs.len()).rev() {
                for start in 0..=cs.len() - len {
                    let piece: String = cs[start..start + len].iter().collect();
                    if t.contains(&piece) {
                        t = t.replace(&piece, "***");
                    }
                }
            }
        }
        t
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
    secrets: &Secrets,
    timeout: Duration,
    classify_status: impl Fn(u16, &str, Option<Duration>) -> ModelError,
) -> Result<serde_json::Value, ModelError> {
    send_json(rb.json(body), secrets, timeout, classify_status).await
}

/// Sends a built request (any method and body) and returns the parsed JSON body,
/// classifying every failure and scrubbing `secrets` from errors and the body.
pub(crate) async fn send_json(
    rb: reqwest::RequestBuilder,
    secrets: &Secrets,
    timeout: Duration,
    classify_status: impl Fn(u16, &str, Option<Duration>) -> ModelError,
) -> Result<serde_json::Value, ModelError> {
    let clean = send_text(rb, secrets, timeout, classify_status).await?;
    serde_json::from_str(&clean).map_err(|e| {
        let excerpt: String = clean.chars().take(200).collect();
        ModelError::Malformed(format!("{e} in body starting {excerpt:?}"))
    })
}

/// Sends a built request and returns its body as text (e.g. a JSONL file), classifying
/// every failure and scrubbing `secrets` from errors and the body.
pub(crate) async fn send_text(
    rb: reqwest::RequestBuilder,
    secrets: &Secrets,
    timeout: Duration,
    classify_status: impl Fn(u16, &str, Option<Duration>) -> ModelError,
) -> Result<String, ModelError> {
    let scrub = |s: String| secrets.scrub(&s);
    let resp = rb
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
    // A server may echo what it was sent: no secret reaches a transcript either.
    let text = String::from_utf8_lossy(&bytes);
    Ok(scrub(text.to_string()))
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
    fn base64_and_basic_credentials() {
        // RFC 4648 test vectors.
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
        let s = Secrets::new(None, Some(("ann", "hunter2-long-pass")));
        let header = format!("Basic {}", base64(b"ann:hunter2-long-pass"));
        assert_eq!(
            s.scrub(&format!("Authorization: {header}")),
            "Authorization: ***"
        );
        assert_eq!(s.scrub("pw hunter2-long was wrong"), "pw *** was wrong");
        assert_eq!(s.scrub("ann:hunter2-long-pass@host"), "***@host");
    }

    #[test]
    fn keys_never_print() {
        let k = ApiKey::new("sk-live-123456");
        assert_eq!(format!("{k:?} {k}"), "ApiKey(***) ***");
        assert_eq!(k.scrub("bad key sk-live-123456 given"), "bad key *** given");
        // Echoed in part (8+ characters), as a header, or base64-encoded.
        let k = ApiKey::new("sk-live-abcdefghijklmnop");
        assert_eq!(
            k.scrub("key sk-live-abcdefgh... rejected"),
            "key ***... rejected"
        );
        assert_eq!(k.scrub("got Bearer sk-live-abcdefghijklmnop"), "got ***");
        let b = base64(b"sk-live-abcdefghijklmnop");
        assert_eq!(k.scrub(&format!("echo {b}")), "echo ***");
        assert_eq!(k.scrub("short sk-live ok"), "short sk-live ok");
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
