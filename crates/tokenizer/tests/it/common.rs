//! Shared by the integration tests: where the Gemma 3 GGUF is, and what to do
//! when it is not there.

use std::path::PathBuf;

/// Env var naming the Gemma 3 270M GGUF explicitly.
pub(crate) const MODEL_ENV: &str = "SHAMMIE_GEMMA_GGUF";
/// Env var that turns a missing model file from a failure into a skip.
pub(crate) const SKIP_ENV: &str = "SHAMMIE_SKIP_MODEL_TESTS";
const FILE_NAME: &str = "gemma-3-270m-q4_k_m.gguf";

/// The path of the Gemma 3 270M GGUF: `$SHAMMIE_GEMMA_GGUF`, else
/// `~/.cache/shammie/models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf` (where `shammie models pull` puts it).
///
/// This is the one switch deciding what a test does without the model file:
/// it **fails** (panics) with instructions for getting the file, unless
/// `SHAMMIE_SKIP_MODEL_TESTS=1` is set, in which case it prints that it
/// skipped and returns `None` (the test then returns early and passes).
#[allow(clippy::print_stdout)] // says why it is skipped
pub(crate) fn model_path_or_skip() -> Option<PathBuf> {
    let path = match std::env::var_os(MODEL_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            home.join(".cache/shammie/models/gemma-3-270m")
                .join(FILE_NAME)
        }
    };
    if path.is_file() {
        return Some(path);
    }
    if std::env::var(SKIP_ENV).is_ok_and(|v| v == "1") {
        println!("skipped: {} not found and {SKIP_ENV}=1", path.display());
        return None;
    }
    panic!(
        "the Gemma 3 270M GGUF is needed for this test but {} does not exist.\n\
         Get it with `shammie models pull gemma-3-270m` (or point {MODEL_ENV} at a copy of \
         {FILE_NAME}, sha256 a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818).\n\
         To skip tests that need model files instead, set {SKIP_ENV}=1.",
        path.display()
    );
}
