//! Stages and artifacts of a multi-stage run.
//!
//! A multi-stage run keeps each stage's records under `stages/NAME/` (`samples.jsonl`,
//! `steps.jsonl`, and `done.json` once the stage has finished) and the files its stages
//! produce — adapters, embeddings, clusters — under `artifacts/`, each listed in
//! `artifacts/manifest.json` with its SHA-256 and size.
//!
//! Invariants: an artifact is streamed to a temporary file while it is hashed, synced,
//! and renamed into place only by [`ArtifactWriter::finish`], which then records it in the
//! manifest (replaced atomically): a killed process never leaves a half-written artifact
//! under its name, and a listed artifact's digest is that of its bytes. A stage's
//! `done.json` is written after its artifacts, so a stage marked done has all of them.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{io, LogError, Records, RunDir, JOURNAL_FILE, SAMPLES_FILE};

pub const STAGES_DIR: &str = "stages";
pub const ARTIFACTS_DIR: &str = "artifacts";
const MANIFEST: &str = "artifacts/manifest.json";
const DONE_FILE: &str = "done.json";
/// Present in a stage whose records hold material its study keeps private (the raw
/// conversations Clio analyses): the viewer lists the stage but never its records. Its
/// text says what the records hold.
pub const PRIVATE_FILE: &str = "private.txt";

/// One artifact as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactInfo {
    /// Relative to `artifacts/`, `/`-separated (e.g. `adapter/adapter_model.safetensors`).
    pub name: String,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    pub bytes: u64,
    /// The stage that wrote it.
    pub stage: String,
}

/// What a finished stage leaves in its `done.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageDone {
    pub stage: String,
    pub finished_at: String,
    /// Records in the stage's `samples.jsonl` (0 for a stage without samples).
    pub records: u64,
    /// Artifacts the stage wrote, as listed in the manifest.
    pub artifacts: Vec<ArtifactInfo>,
}

/// Checks a relative, `/`-separated name stays inside its folder.
pub(crate) fn safe_rel(rel: &str) -> bool {
    !rel.is_empty()
        && rel
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != ".." && !part.contains('\\'))
}

/// A stage's folder in a run directory.
#[derive(Debug, Clone)]
pub struct StageDir {
    name: String,
    path: PathBuf,
}

impl StageDir {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn samples_path(&self) -> PathBuf {
        self.path.join(SAMPLES_FILE)
    }
    pub fn journal_path(&self) -> PathBuf {
        self.path.join(JOURNAL_FILE)
    }
    /// Streams the stage's records.
    pub fn records(&self) -> Result<Records, LogError> {
        Records::open(&self.samples_path())
    }
    /// Marks the stage's records private (see [`PRIVATE_FILE`]), saying what they hold.
    pub fn mark_private(&self, what: &str) -> Result<(), LogError> {
        let p = self.path.join(PRIVATE_FILE);
        let tmp = self.path.join(format!(".{PRIVATE_FILE}.tmp"));
        std::fs::write(&tmp, what).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &p).map_err(io(&p))
    }
    /// What the stage's records hold, when they are private.
    pub fn private(&self) -> Option<String> {
        std::fs::read_to_string(self.path.join(PRIVATE_FILE)).ok()
    }
    /// The stage's `done.json`, when it has finished.
    pub fn done(&self) -> Result<Option<StageDone>, LogError> {
        let p = self.path.join(DONE_FILE);
        if !p.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&p).map_err(io(&p))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| LogError::Corrupt {
                path: p,
                line: e.line() as u64,
                message: e.to_string(),
            })
    }
}

impl RunDir {
    /// The folder of stage `name` (created if missing). Stage names are lower-case
    /// letters, digits, `-` and `_`.
    pub fn stage(&self, name: &str) -> Result<StageDir, LogError> {
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !ok {
            return Err(LogError::BadName(name.to_string()));
        }
        let path = self.path().join(STAGES_DIR).join(name);
        std::fs::create_dir_all(&path).map_err(io(&path))?;
        Ok(StageDir {
            name: name.to_string(),
            path,
        })
    }

    /// Marks a stage finished (atomically), after its artifacts are in place.
    pub fn mark_stage_done(&self, done: &StageDone) -> Result<(), LogError> {
        let mut bytes = serde_json::to_vec_pretty(done).expect("serialisable");
        bytes.push(b'\n');
        self.write_file(&format!("{STAGES_DIR}/{}/{DONE_FILE}", done.stage), &bytes)?;
        Ok(())
    }

    /// The artifacts listed in the manifest, by name.
    pub fn artifacts(&self) -> Result<BTreeMap<String, ArtifactInfo>, LogError> {
        let p = self.path().join(MANIFEST);
        if !p.exists() {
            return Ok(BTreeMap::new());
        }
        let text = std::fs::read_to_string(&p).map_err(io(&p))?;
        serde_json::from_str(&text).map_err(|e| LogError::Corrupt {
            path: p,
            line: e.line() as u64,
            message: e.to_string(),
        })
    }

    /// Where artifact `name` lives (whether or not it exists yet).
    pub fn artifact_path(&self, name: &str) -> Result<PathBuf, LogError> {
        if !safe_rel(name) || name == "manifest.json" {
            return Err(LogError::BadName(name.to_string()));
        }
        Ok(self.path().join(ARTIFACTS_DIR).join(name))
    }

    /// Starts writing artifact `name` for `stage`: bytes go to a temporary file and are
    /// hashed as they are written; nothing appears under the name until
    /// [`ArtifactWriter::finish`].
    pub fn create_artifact(&self, name: &str, stage: &str) -> Result<ArtifactWriter, LogError> {
        let target = self.artifact_path(name)?;
        let parent = target.parent().expect("artifact path has a parent");
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        let file_name = target.file_name().unwrap().to_string_lossy().into_owned();
        let tmp = parent.join(format!(".{file_name}.partial"));
        let file = File::create(&tmp).map_err(io(&tmp))?;
        Ok(ArtifactWriter {
            out: BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            bytes: 0,
            tmp,
            target,
            name: name.to_string(),
            stage: stage.to_string(),
            run: self.clone(),
        })
    }

    /// Opens a listed artifact for reading.
    pub fn open_artifact(&self, name: &str) -> Result<(ArtifactInfo, File), LogError> {
        let info = self
            .artifacts()?
            .remove(name)
            .ok_or_else(|| LogError::MissingArtifact(name.to_string()))?;
        let p = self.artifact_path(name)?;
        let f = File::open(&p).map_err(io(&p))?;
        Ok((info, f))
    }

    /// Reads a listed artifact whole, checking its bytes against the manifest's digest.
    pub fn read_artifact(&self, name: &str) -> Result<Vec<u8>, LogError> {
        let (info, mut f) = self.open_artifact(name)?;
        let mut buf = Vec::with_capacity(info.bytes as usize);
        let p = self.artifact_path(name)?;
        f.read_to_end(&mut buf).map_err(io(&p))?;
        let got = hex::encode(Sha256::digest(&buf));
        if got != info.sha256 {
            return Err(LogError::Corrupt {
                path: p,
                line: 0,
                message: format!("sha256 {got} differs from the manifest's {}", info.sha256),
            });
        }
        Ok(buf)
    }

    fn record_artifact(&self, info: &ArtifactInfo) -> Result<(), LogError> {
        let mut all = self.artifacts()?;
        all.insert(info.name.clone(), info.clone());
        let mut bytes = serde_json::to_vec_pretty(&all).expect("serialisable");
        bytes.push(b'\n');
        self.write_file(MANIFEST, &bytes)?;
        Ok(())
    }
}

/// An artifact being written: hashed as it streams, in place only after `finish`.
pub struct ArtifactWriter {
    out: BufWriter<File>,
    hasher: Sha256,
    bytes: u64,
    tmp: PathBuf,
    target: PathBuf,
    name: String,
    stage: String,
    run: RunDir,
}

impl Write for ArtifactWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

impl ArtifactWriter {
    /// Syncs the bytes, renames the file into place and lists it in the manifest.
    pub fn finish(self) -> Result<ArtifactInfo, LogError> {
        let f = self
            .out
            .into_inner()
            .map_err(|e| io(&self.tmp)(e.into_error()))?;
        f.sync_all().map_err(io(&self.tmp))?;
        drop(f);
        std::fs::rename(&self.tmp, &self.target).map_err(io(&self.target))?;
        let info = ArtifactInfo {
            name: self.name,
            sha256: hex::encode(self.hasher.finalize()),
            bytes: self.bytes,
            stage: self.stage,
        };
        self.run.record_artifact(&info)?;
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::meta;

    #[test]
    fn artifacts_appear_whole_with_their_digest_or_not_at_all() {
        let d = tempfile::tempdir().unwrap();
        let run = RunDir::create(d.path(), &meta()).unwrap();
        // Dropped before finish (a kill): nothing under the name, nothing listed.
        {
            let mut w = run.create_artifact("emb/vectors.f32", "embed").unwrap();
            w.write_all(b"half").unwrap();
        }
        assert!(!run.artifact_path("emb/vectors.f32").unwrap().exists());
        assert!(run.artifacts().unwrap().is_empty());
        assert!(matches!(
            run.open_artifact("emb/vectors.f32"),
            Err(LogError::MissingArtifact(_))
        ));
        let mut w = run.create_artifact("emb/vectors.f32", "embed").unwrap();
        for chunk in [&b"abc"[..], b"def"] {
            w.write_all(chunk).unwrap();
        }
        let info = w.finish().unwrap();
        // sha256("abcdef"), computed independently.
        assert_eq!(
            info.sha256,
            "bef57ec7f53a6d40beb640a780a639c83bc29ac8a9816f1fc6c5c6dcd93c4721"
        );
        assert_eq!(info.bytes, 6);
        assert_eq!(run.read_artifact("emb/vectors.f32").unwrap(), b"abcdef");
        assert_eq!(run.artifacts().unwrap()["emb/vectors.f32"], info);
        // Tampering is caught on read.
        std::fs::write(run.artifact_path("emb/vectors.f32").unwrap(), b"abcdeF").unwrap();
        let e = run
            .read_artifact("emb/vectors.f32")
            .unwrap_err()
            .to_string();
        assert!(e.contains("differs from the manifest"), "{e}");
        for bad in ["", "../x", "/x", "manifest.json", "a//b"] {
            assert!(run.create_artifact(bad, "s").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn stages_have_their_own_folders_and_done_markers() {
        let d = tempfile::tempdir().unwrap();
        let run = RunDir::create(d.path(), &meta()).unwrap();
        let s = run.stage("facets").unwrap();
        assert!(s.samples_path().ends_with("stages/facets/samples.jsonl"));
        assert_eq!(s.done().unwrap(), None);
        assert_eq!(s.records().unwrap().count(), 0);
        let done = StageDone {
            stage: "facets".into(),
            finished_at: "now".into(),
            records: 3,
            artifacts: vec![],
        };
        run.mark_stage_done(&done).unwrap();
        assert_eq!(s.done().unwrap(), Some(done));
        assert!(run.stage("Bad Name").is_err());
        assert!(run.stage("../x").is_err());
    }
}
