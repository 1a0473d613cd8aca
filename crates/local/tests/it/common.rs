//! Where tests find the default model.
#![allow(dead_code)]

use std::path::PathBuf;

/// The Gemma 3 270M GGUF: `$SHAMMIE_GEMMA_GGUF`, or the copy `shammie models pull
/// gemma-3-270m` leaves in the cache. Tests that need it fail when it is missing, with the
/// command that gets it, unless `SHAMMIE_SKIP_MODEL_TESTS=1` (then they print and return).
#[allow(clippy::print_stderr)] // says why it is skipped
pub(crate) fn model_path_or_skip() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("SHAMMIE_GEMMA_GGUF").map(PathBuf::from),
        std::env::var_os("SHAMMIE_MODELS_DIR")
            .map(|d| PathBuf::from(d).join("gemma-3-270m/gemma-3-270m-q4_k_m.gguf")),
        std::env::var_os("HOME").map(|h| {
            PathBuf::from(h).join(".cache/shammie/models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf")
        }),
    ];
    if let Some(p) = candidates.into_iter().flatten().find(|p| p.exists()) {
        return Some(p);
    }
    if std::env::var("SHAMMIE_SKIP_MODEL_TESTS").as_deref() == Ok("1") {
        eprintln!("SKIPPED: Gemma 3 270M GGUF not found and SHAMMIE_SKIP_MODEL_TESTS=1");
        return None;
    }
    panic!(
        "this test needs the default model: run `shammie models pull gemma-3-270m` \
         (or set SHAMMIE_GEMMA_GGUF=/path/to/gemma-3-270m-q4_k_m.gguf)"
    );
}
