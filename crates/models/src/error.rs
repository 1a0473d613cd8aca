use std::time::Duration;

/// Why a model call failed. Messages never contain API keys (provider bodies are
/// scrubbed of the key before they are stored here).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ModelError {
    #[error("rate limited (HTTP 429){}: {message}", retry_after.map(|d| format!(", retry after {:.2}s", d.as_secs_f64())).unwrap_or_default())]
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    #[error("provider overloaded (HTTP {status}): {message}")]
    Overloaded {
        status: u16,
        retry_after: Option<Duration>,
        message: String,
    },
    #[error("server error (HTTP {status}): {message}")]
    Server {
        status: u16,
        retry_after: Option<Duration>,
        message: String,
    },
    #[error("request timed out after {0:.1?}")]
    Timeout(Duration),
    #[error("connection failed: {0}")]
    Connection(String),
    #[error("malformed response: {0}")]
    Malformed(String),
    #[error("authentication failed (HTTP {status}): {message}")]
    Auth { status: u16, message: String },
    #[error("request rejected (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Config(String),
    #[error("response cache: {0}")]
    Cache(String),
    /// `--batch`: the request's batch expired before it was answered (submitted again in
    /// a later batch, up to a limit).
    #[error("expired in its batch: {0}")]
    Expired(String),
    /// `--batch`: the request's batch was canceled before it was answered.
    #[error("canceled with its batch: {0}")]
    Canceled(String),
    #[error("gave up after {attempts} attempts: {last}")]
    Exhausted {
        attempts: u32,
        last: Box<ModelError>,
    },
    /// `--max-cost`: this call could take the spend past the cap, so it was not sent.
    #[error(
        "not sent: it could cost up to ${needed_usd:.4}, and ${spent_usd:.4} of the \
         --max-cost ${limit_usd:.2} is spent"
    )]
    BudgetExhausted {
        limit_usd: f64,
        spent_usd: f64,
        needed_usd: f64,
    },
}

impl ModelError {
    /// Worth trying again: rate limits, overload, 5xx, timeouts, resets, torn bodies.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ModelError::RateLimited { .. }
                | ModelError::Overloaded { .. }
                | ModelError::Server { .. }
                | ModelError::Timeout(_)
                | ModelError::Connection(_)
                | ModelError::Malformed(_)
        )
    }

    /// A signal that the endpoint wants fewer requests in flight.
    pub fn is_backpressure(&self) -> bool {
        matches!(
            self,
            ModelError::RateLimited { .. } | ModelError::Overloaded { .. }
        )
    }

    /// The server's `Retry-After`, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ModelError::RateLimited { retry_after, .. }
            | ModelError::Overloaded { retry_after, .. }
            | ModelError::Server { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
