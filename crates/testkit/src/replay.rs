//! Recorded exchanges with a real server, served back on loopback: a request whose path
//! and JSON body equal a recording's gets that recording's status and JSON body, as the
//! real server sent them; any other request gets a 400 saying that nothing
//! was recorded for it (so a test whose requests changed fails, naming the body, until
//! its fixture is made again). Used for agreement tests against servers that cannot be
//! run in CI (the llama.cpp server's fixture in `crates/cli/tests/fixtures/`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One exchange with a real server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recording {
    /// Request path, e.g. `/v1/completions`.
    pub path: String,
    /// The request body.
    pub request: Value,
    /// The status the server answered with.
    pub status: u16,
    /// The response body, as the server sent it.
    pub response: Value,
}

/// The answer to a request when recordings are served: the recording's status and body,
/// or a 400 naming the request. `None` when no recordings are served.
pub(crate) fn answer(recordings: &[Recording], path: &str, body: &[u8]) -> Option<(u16, Value)> {
    if recordings.is_empty() {
        return None;
    }
    let sent: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match recordings
        .iter()
        .find(|r| r.path == path && r.request == sent)
    {
        Some(r) => Some((r.status, r.response.clone())),
        None => {
            let shown: String = sent.to_string().chars().take(300).collect();
            Some((
                400,
                serde_json::json!({"error": {
                    "message": format!("no recording of POST {path} with body {shown} (make the fixture again)"),
                    "type": "invalid_request_error", "param": null, "code": null}}),
            ))
        }
    }
}
