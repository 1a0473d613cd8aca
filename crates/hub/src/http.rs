//! HTTP: one client, JSON fetches, and streaming downloads that hash as they write.

use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::io_err;
use crate::{HubError, Progress};

/// Report download progress at most every this many bytes.
const PROGRESS_STEP: u64 = 4 << 20;

pub(crate) fn client() -> Result<reqwest::Client, HubError> {
    reqwest::Client::builder()
        .user_agent(concat!("shammie-hub/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| HubError::Network {
            url: "(client setup)".to_string(),
            reason: describe(&e),
        })
}

/// A transport error with its causes, without the URL (callers name the URL themselves).
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A URL fit for messages: without any `user:password@`.
pub(crate) fn display_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => url.to_string(),
    }
}

async fn send(
    client: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
) -> Result<reqwest::Response, HubError> {
    let mut req = client.get(url);
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.map_err(|e| HubError::Network {
        url: display_url(url),
        reason: describe(&e.without_url()),
    })?;
    let status = resp.status();
    if !status.is_success() {
        return Err(HubError::HttpStatus {
            url: display_url(url),
            status: status.as_u16(),
        });
    }
    Ok(resp)
}

/// GET a JSON document.
pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
) -> Result<T, HubError> {
    let resp = send(client, url, None).await?;
    let bytes = resp.bytes().await.map_err(|e| HubError::Network {
        url: display_url(url),
        reason: describe(&e.without_url()),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| HubError::BadResponse {
        url: display_url(url),
        reason: e.to_string(),
    })
}

/// What a download produced.
pub(crate) struct Downloaded {
    pub sha256: String,
    pub size: u64,
}

/// Streams `url` into `dest` (created or truncated), hashing as it goes, reporting
/// progress as `what`. `expected_size` (e.g. from the index) is used when the server sends
/// no Content-Length; a body shorter than announced is [`HubError::Truncated`].
pub(crate) async fn download(
    client: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    dest: &Path,
    expected_size: Option<u64>,
    what: &str,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Downloaded, HubError> {
    let mut resp = send(client, url, bearer).await?;
    let total = resp.content_length().or(expected_size);
    let mut file = tokio::fs::File::create(dest).await.map_err(io_err(dest))?;
    let mut hasher = Sha256::new();
    let mut done = 0u64;
    let mut reported = 0u64;
    progress(Progress::Downloading {
        what: what.to_string(),
        done,
        total,
    });
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => {
                return Err(match total {
                    Some(expected) if done < expected => HubError::Truncated {
                        url: display_url(url),
                        received: done,
                        expected,
                    },
                    _ => HubError::Network {
                        url: display_url(url),
                        reason: describe(&e.without_url()),
                    },
                })
            }
        };
        file.write_all(&chunk).await.map_err(io_err(dest))?;
        hasher.update(&chunk);
        done += chunk.len() as u64;
        if done - reported >= PROGRESS_STEP {
            reported = done;
            progress(Progress::Downloading {
                what: what.to_string(),
                done,
                total,
            });
        }
    }
    if let Some(expected) = total {
        if done < expected {
            return Err(HubError::Truncated {
                url: display_url(url),
                received: done,
                expected,
            });
        }
    }
    if reported != done {
        progress(Progress::Downloading {
            what: what.to_string(),
            done,
            total,
        });
    }
    file.flush().await.map_err(io_err(dest))?;
    file.sync_all().await.map_err(io_err(dest))?;
    Ok(Downloaded {
        sha256: hex::encode(hasher.finalize()),
        size: done,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_credentials() {
        assert_eq!(
            display_url("https://u:p@example.org/a?b=1"),
            "https://example.org/a?b=1"
        );
        assert_eq!(display_url("not a url"), "not a url");
    }
}
