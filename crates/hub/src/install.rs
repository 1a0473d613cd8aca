//! Shared by every source: the context of one fetch, running blocking work, and moving a
//! verified download into place.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cache::{self, Cleanup, Stamp};
use crate::error::io_err;
use crate::registry::{Artifact, FileSpec};
use crate::{HubConfig, HubError, Progress};

/// One attempt to fetch one model from one source.
pub(crate) struct Ctx<'a> {
    pub cfg: &'a HubConfig,
    pub client: &'a reqwest::Client,
    pub progress: &'a (dyn Fn(Progress) + Send + Sync),
    /// The model's name, for messages.
    pub model: &'a str,
    /// The model's directory in the cache (for a folder artifact, the artifact itself).
    pub dir: &'a Path,
    pub artifact: &'a Artifact,
    /// The source, for the manifest and messages.
    pub source: String,
}

impl Ctx<'_> {
    pub(crate) fn report(&self, p: Progress) {
        (self.progress)(p)
    }
}

/// Runs blocking work (zip extraction, hashing) on the blocking pool.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, HubError>
where
    F: FnOnce() -> Result<T, HubError> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(HubError::Io {
            path: PathBuf::from("(blocking task)"),
            source: std::io::Error::other(e.to_string()),
        }),
    }
}

/// Checks a finished download of a single file against its spec.
pub(crate) fn check_file(
    what: &str,
    spec: &FileSpec,
    sha256: &str,
    size: u64,
) -> Result<(), HubError> {
    if let Some(want) = &spec.sha256 {
        if !want.eq_ignore_ascii_case(sha256) {
            return Err(HubError::ChecksumMismatch {
                what: what.to_string(),
                expected: want.to_ascii_lowercase(),
                actual: sha256.to_string(),
            });
        }
    }
    if let Some(want) = spec.size {
        if want != size {
            return Err(HubError::SizeMismatch {
                what: what.to_string(),
                expected: want,
                actual: size,
            });
        }
    }
    Ok(())
}

/// Renames a verified `partial` file into place and stamps it.
pub(crate) fn finish_file(
    ctx: &Ctx<'_>,
    cleanup: &mut Cleanup,
    partial: &Path,
    spec: &FileSpec,
    sha256: &str,
) -> Result<PathBuf, HubError> {
    let final_path = ctx.dir.join(&spec.path);
    fs::rename(partial, &final_path).map_err(io_err(&final_path))?;
    cleanup.forget(partial);
    let stamp = Stamp {
        files: vec![cache::entry_for(ctx.dir, &spec.path, sha256)?],
    };
    cache::write_stamp(&cache::stamp_path(ctx.dir, ctx.artifact), &stamp)?;
    Ok(final_path)
}

/// A file put into a staging folder: its path in the artifact, sha256 and size.
pub(crate) struct Staged {
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

#[derive(Serialize)]
struct Manifest<'a> {
    model: &'a str,
    source: &'a str,
    files: Vec<ManifestFile<'a>>,
}

#[derive(Serialize)]
struct ManifestFile<'a> {
    path: &'a str,
    size: u64,
    sha256: &'a str,
}

/// Verifies a staged folder against the artifact's file list, writes its `manifest.json`
/// and stamp, and renames it into place (replacing whatever was there).
pub(crate) fn finish_folder(
    ctx: &Ctx<'_>,
    cleanup: &mut Cleanup,
    staging: &Path,
    files: &[FileSpec],
    staged: &[Staged],
) -> Result<PathBuf, HubError> {
    for spec in files {
        match staged.iter().find(|s| s.path == spec.path) {
            Some(s) => {
                ctx.report(Progress::Verifying {
                    what: format!("{}/{}", ctx.model, spec.path),
                });
                check_file(
                    &format!("{}/{}", ctx.model, spec.path),
                    spec,
                    &s.sha256,
                    s.size,
                )?;
            }
            None if spec.required => {
                return Err(HubError::MissingFile {
                    model: ctx.model.to_string(),
                    source_name: ctx.source.clone(),
                    file: spec.path.clone(),
                })
            }
            None => {}
        }
    }
    let manifest = Manifest {
        model: ctx.model,
        source: &ctx.source,
        files: staged
            .iter()
            .map(|s| ManifestFile {
                path: &s.path,
                size: s.size,
                sha256: &s.sha256,
            })
            .collect(),
    };
    let json = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
    cache::write_atomic(&staging.join(cache::MANIFEST), &json)?;
    let mut stamp = Stamp::default();
    for s in staged {
        stamp
            .files
            .push(cache::entry_for(staging, &s.path, &s.sha256)?);
    }
    cache::write_stamp(&staging.join(cache::STAMP), &stamp)?;
    cache::remove(ctx.dir)?;
    fs::rename(staging, ctx.dir).map_err(io_err(ctx.dir))?;
    cleanup.forget(staging);
    Ok(ctx.dir.to_path_buf())
}

/// The last `/`-separated component of a path inside an archive or repository.
pub(crate) fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}
