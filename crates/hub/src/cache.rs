//! The cache on disk: where artifacts live, `.verified` stamps, and cleaning up
//! unfinished downloads.
//!
//! A stamp records, per file, the size, modification time and sha256 seen when the file was
//! last verified. A file whose size and mtime still match its stamp is trusted without
//! rehashing; otherwise it is hashed again (and the stamp rewritten if it still verifies).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::io_err;
use crate::registry::{Artifact, FileSpec};
use crate::HubError;

/// Suffix of every file or folder that is not finished.
pub(crate) const PARTIAL: &str = "partial";
/// Name of a folder artifact's stamp, and suffix of a file artifact's.
pub(crate) const STAMP: &str = ".verified";
/// Name of a folder artifact's manifest.
pub(crate) const MANIFEST: &str = "manifest.json";

/// One file as last verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StampEntry {
    pub path: String,
    pub size: u64,
    pub mtime_ns: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Stamp {
    pub files: Vec<StampEntry>,
}

/// `path` with `.partial` appended to its file name.
pub(crate) fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(PARTIAL);
    path.with_file_name(name)
}

/// Where an artifact's stamp lives: `FILE.verified` next to a file, `DIR/.verified` in a
/// folder.
pub(crate) fn stamp_path(dir: &Path, artifact: &Artifact) -> PathBuf {
    match artifact {
        Artifact::File(f) => {
            let file = dir.join(&f.path);
            let mut name = file.file_name().unwrap_or_default().to_os_string();
            name.push(STAMP);
            file.with_file_name(name)
        }
        Artifact::Folder(_) => dir.join(STAMP),
    }
}

/// The path a pull returns for an artifact in `dir`.
pub(crate) fn artifact_path(dir: &Path, artifact: &Artifact) -> PathBuf {
    match artifact {
        Artifact::File(f) => dir.join(&f.path),
        Artifact::Folder(_) => dir.to_path_buf(),
    }
}

pub(crate) fn mtime_ns(meta: &fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// sha256 (hex) and size of a file.
pub(crate) fn hash_file(path: &Path) -> Result<(String, u64), HubError> {
    let mut file = fs::File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// A stamp entry for a file just verified to have `sha256`.
pub(crate) fn entry_for(dir: &Path, rel: &str, sha256: &str) -> Result<StampEntry, HubError> {
    let path = dir.join(rel);
    let meta = fs::metadata(&path).map_err(io_err(&path))?;
    Ok(StampEntry {
        path: rel.to_string(),
        size: meta.len(),
        mtime_ns: mtime_ns(&meta),
        sha256: sha256.to_string(),
    })
}

/// Writes a stamp atomically (temporary file, then rename).
pub(crate) fn write_stamp(path: &Path, stamp: &Stamp) -> Result<(), HubError> {
    let json = serde_json::to_vec_pretty(stamp).expect("a stamp serialises");
    write_atomic(path, &json)
}

/// Writes `bytes` to `path` through `path.partial` and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), HubError> {
    let tmp = partial_path(path);
    fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))
}

fn read_stamp(path: &Path) -> Option<Stamp> {
    let bytes = fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Whether `sha256` satisfies `spec` (an unpinned spec accepts anything).
fn matches_spec(spec: &FileSpec, sha256: &str, size: u64) -> bool {
    spec.sha256
        .as_deref()
        .is_none_or(|want| want.eq_ignore_ascii_case(sha256))
        && spec.size.is_none_or(|want| want == size)
}

/// The artifact in `dir`, if it is there and verifies. Trusts a matching stamp; otherwise
/// rehashes and, if the files still verify, rewrites the stamp.
pub(crate) fn verified(dir: &Path, artifact: &Artifact) -> Result<Option<PathBuf>, HubError> {
    let path = artifact_path(dir, artifact);
    if !path.exists() {
        return Ok(None);
    }
    let specs: Vec<&FileSpec> = match artifact {
        Artifact::File(f) => vec![f],
        Artifact::Folder(files) => files.iter().collect(),
    };
    let stamp_file = stamp_path(dir, artifact);
    if let Some(stamp) = read_stamp(&stamp_file) {
        if stamp_holds(dir, &specs, &stamp) {
            return Ok(Some(path));
        }
    }
    // No stamp, or the files changed since: hash them again.
    let mut stamp = Stamp::default();
    for spec in &specs {
        let file = dir.join(&spec.path);
        if !file.is_file() {
            if spec.required {
                return Ok(None);
            }
            continue;
        }
        let (sha, size) = hash_file(&file)?;
        if !matches_spec(spec, &sha, size) {
            tracing::debug!(file = %file.display(), "cached file fails verification");
            return Ok(None);
        }
        stamp.files.push(entry_for(dir, &spec.path, &sha)?);
    }
    // Best effort: a read-only cache still resolves, it is just rehashed each time.
    if let Err(e) = write_stamp(&stamp_file, &stamp) {
        tracing::debug!(error = %e, "could not rewrite the verification stamp");
    }
    Ok(Some(path))
}

/// Every required file is in the stamp, matches the spec, and is unchanged on disk; every
/// other stamped file is unchanged too.
fn stamp_holds(dir: &Path, specs: &[&FileSpec], stamp: &Stamp) -> bool {
    let unchanged = |e: &StampEntry| {
        fs::metadata(dir.join(&e.path))
            .map(|m| m.is_file() && m.len() == e.size && mtime_ns(&m) == e.mtime_ns)
            .unwrap_or(false)
    };
    let required_ok = specs.iter().filter(|s| s.required).all(|spec| {
        stamp
            .files
            .iter()
            .find(|e| e.path == spec.path)
            .is_some_and(|e| matches_spec(spec, &e.sha256, e.size))
    });
    let optional_ok = specs.iter().filter(|s| !s.required).all(|spec| {
        match stamp.files.iter().find(|e| e.path == spec.path) {
            Some(e) => matches_spec(spec, &e.sha256, e.size),
            None => !dir.join(&spec.path).exists(),
        }
    });
    required_ok && optional_ok && stamp.files.iter().all(unchanged)
}

/// Removes unfinished downloads (files and folders) when dropped, unless disarmed. Runs
/// when a pull fails and when its future is dropped (e.g. Ctrl-C).
#[derive(Default)]
pub(crate) struct Cleanup {
    paths: Vec<PathBuf>,
}

impl Cleanup {
    /// Removes what is at `path` now (a leftover from a killed pull) and again on drop.
    pub(crate) fn track(&mut self, path: PathBuf) -> Result<PathBuf, HubError> {
        remove(&path)?;
        self.paths.push(path.clone());
        Ok(path)
    }

    /// Removes it now, no longer tracked.
    pub(crate) fn done_with(&mut self, path: &Path) -> Result<(), HubError> {
        self.paths.retain(|p| p != path);
        remove(path)
    }

    /// Forgets a path that has been renamed into place.
    pub(crate) fn forget(&mut self, path: &Path) {
        self.paths.retain(|p| p != path);
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for path in self.paths.drain(..) {
            let _ = remove(&path);
        }
    }
}

/// Removes a file or folder if it exists.
pub(crate) fn remove(path: &Path) -> Result<(), HubError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(io_err(path)),
        Ok(_) => fs::remove_file(path).map_err(io_err(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(HubError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_and_stamp_names() {
        let dir = Path::new("/c/m");
        let file = Artifact::File(FileSpec::pinned("sub/x.gguf", "00", 1));
        assert_eq!(
            partial_path(&dir.join("x.gguf")),
            Path::new("/c/m/x.gguf.partial")
        );
        assert_eq!(
            stamp_path(dir, &file),
            Path::new("/c/m/sub/x.gguf.verified")
        );
        assert_eq!(
            stamp_path(dir, &Artifact::Folder(vec![])),
            Path::new("/c/m/.verified")
        );
        assert_eq!(artifact_path(dir, &file), Path::new("/c/m/sub/x.gguf"));
    }

    #[test]
    fn stamp_trusted_until_the_file_changes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        fs::write(dir.join("a.bin"), b"hello").unwrap();
        let sha = hash_file(&dir.join("a.bin")).unwrap().0;
        let art = Artifact::File(FileSpec::pinned("a.bin", &sha, 5));
        // No stamp: rehash, then a stamp is written.
        assert!(verified(dir, &art).unwrap().is_some());
        assert!(dir.join("a.bin.verified").exists());
        // A stamp claiming the wrong sha for an unchanged file is not believed.
        let bad = Artifact::File(FileSpec::pinned("a.bin", &"0".repeat(64), 5));
        assert!(verified(dir, &bad).unwrap().is_none());
        // Same size, other content, stamp stale by mtime: rehash finds the change.
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(dir.join("a.bin"), b"HELLO").unwrap();
        assert!(verified(dir, &art).unwrap().is_none());
    }
}
