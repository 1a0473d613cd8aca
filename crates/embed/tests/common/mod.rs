//! Where tests find the all-MiniLM-L6-v2 model folder.
#![allow(dead_code)]

use std::path::PathBuf;

/// The all-MiniLM-L6-v2 folder: `$SHAMMIE_MINILM_DIR`, or the copy `shammie models pull
/// all-minilm-l6-v2` leaves in `~/.cache/shammie/models/all-minilm-l6-v2`. Tests that need
/// it fail when it is missing, with the command that gets it, unless
/// `SHAMMIE_SKIP_MODEL_TESTS=1` (then they print "skipped" and return).
#[allow(clippy::print_stderr)] // says why it is skipped
pub(crate) fn model_dir_or_skip() -> Option<PathBuf> {
    let candidate = match std::env::var_os("SHAMMIE_MINILM_DIR") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".cache/shammie/models/all-minilm-l6-v2")),
    };
    if let Some(dir) = candidate.filter(|d| d.join("model.safetensors").exists()) {
        return Some(dir);
    }
    if std::env::var("SHAMMIE_SKIP_MODEL_TESTS").as_deref() == Ok("1") {
        eprintln!("skipped: all-minilm-l6-v2 not found and SHAMMIE_SKIP_MODEL_TESTS=1");
        return None;
    }
    panic!(
        "this test needs all-MiniLM-L6-v2: run `shammie models pull all-minilm-l6-v2` \
         (or set SHAMMIE_MINILM_DIR=/path/to/all-minilm-l6-v2)"
    );
}
