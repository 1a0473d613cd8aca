//! Helpers for the format tests: files in a temporary folder, loaded or failing.

use std::path::PathBuf;

use super::{load, Format, Loaded};
use crate::mcq::McQuestion;

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn fixture(name: &str, text: impl AsRef<[u8]>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    Fixture { _dir: dir, path }
}

pub(super) fn ok(name: &str, text: &str, format: Option<Format>) -> Loaded {
    let f = fixture(name, text);
    load(&f.path, format, "set").unwrap_or_else(|e| panic!("{e}"))
}

/// The error's text with the file's path replaced by `FILE`.
pub(super) fn err(name: &str, text: &str, format: Option<Format>) -> String {
    err_bytes(name, text.as_bytes(), format)
}

/// [`err`] for a file of any bytes.
pub(super) fn err_bytes(name: &str, bytes: &[u8], format: Option<Format>) -> String {
    let f = fixture(name, bytes);
    let e = load(&f.path, format, "set")
        .expect_err("should fail")
        .to_string();
    e.replace(&f.path.display().to_string(), "FILE")
}

pub(super) fn choices(q: &McQuestion) -> Vec<&str> {
    q.choices.iter().map(String::as_str).collect()
}

pub(super) const AQUA: &str = r#"{"question": "What is 1 + 1?", "options": ["A)1", "B) 2 ", "C)3", "D)4", "E)5"], "rationale": "1 + 1 = 2.", "correct": "B"}

{"question": "Pick E.", "options": ["A)a", "B)b", "C)c", "D)d", "E)e"], "rationale": "", "correct": "E"}
"#;
