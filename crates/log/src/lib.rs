//! The run log: everything a run leaves on disk, in a versioned format.
//!
//! A run directory holds `run.json` ([`RunMeta`]: what was run, with which models and
//! options, never a secret), `samples.jsonl` (one complete [`SampleRecord`] per line,
//! appended and flushed as each sample finishes), `steps.jsonl` (the step journal: each
//! tool execution of a sample still in progress, appended as it happens, so a resumed
//! episode replays it instead of executing it again) and `results.json` (the analysis,
//! replaced atomically).
//!
//! Invariants: a line is written with one `write` call of the whole record plus its
//! newline, so a process killed at any moment leaves at most one torn final line, which
//! [`SampleWriter::open`] cuts off; each `(id, epoch)` appears at most once; readers
//! stream (a log never has to fit in memory). The journal follows the same one-write
//! rule; it only ever holds steps of samples that are not yet in `samples.jsonl`
//! ([`Journal::open`] drops the rest).
//!
//! What is not here: no analysis, no model calls, no printing.

mod lock;
mod stages;

pub use lock::RunLock;

pub use stages::{
    ArtifactInfo, ArtifactWriter, StageDir, StageDone, ARTIFACTS_DIR, PRIVATE_FILE, STAGES_DIR,
};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shammie_core::{Results, SampleRecord, ToolRecord, OLDEST_READABLE_SCHEMA, SCHEMA_VERSION};

pub const RUN_FILE: &str = "run.json";
pub const SAMPLES_FILE: &str = "samples.jsonl";
pub const RESULTS_FILE: &str = "results.json";
pub const JOURNAL_FILE: &str = "steps.jsonl";

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a valid record: {message}")]
    Corrupt {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error(
        "{path}: written by schema version {found}; this shammie reads versions {OLDEST_READABLE_SCHEMA} to {SCHEMA_VERSION}"
    )]
    Version { path: PathBuf, found: u32 },
    #[error("{0} is not a run directory (no run.json)")]
    NotARun(PathBuf),
    #[error(
        "`{0}`: report files, artifacts and stages must be relative names inside the run directory"
    )]
    BadName(String),
    #[error("no artifact `{0}` in this run (not written yet, or its stage did not finish)")]
    MissingArtifact(String),
    #[error("{path} is in use by another shammie process{}; wait for it to finish (or stop it) before resuming", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked { path: PathBuf, pid: Option<u32> },
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What was run. Enough to resume the run without the original command line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    pub schema_version: u32,
    pub shammie_version: String,
    pub study: String,
    pub task: String,
    /// Role → model spec (as printed: no credentials).
    pub models: BTreeMap<String, String>,
    /// The `--set key=value` options as given.
    pub options: BTreeMap<String, String>,
    /// The study's resolved configuration, defaults included.
    pub config: serde_json::Value,
    pub seed: u64,
    pub epochs: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// What `limit` counts. Absent with a limit: a run made before units existed, whose
    /// limit counted samples ([`RunMeta::limit_counts`] reads it so).
    #[serde(
        default,
        rename = "limit_counts",
        skip_serializing_if = "Option::is_none"
    )]
    pub limit_counts_recorded: Option<shammie_core::LimitCounts>,
    pub max_connections: usize,
    pub created_at: String,
    /// The response cache the run used (absent in runs written before it was recorded).
    /// `resume` uses the same one unless told otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheUse>,
    /// SHA-256 of every input file or folder the task reads (`--set data=…`), by path.
    /// `resume` refuses to continue when one of them changed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, String>,
    /// `--batch`: the run's API calls go through the providers' batch APIs, with these
    /// settings; `resume` does the same (absent: synchronous calls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchUse>,
}

/// How a `--batch` run collects and polls its batches (`run.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchUse {
    /// A batch is sent once no new call has come for this many seconds.
    pub window_secs: f64,
    /// The longest wait between two polls of a batch, in seconds.
    pub poll_secs: f64,
}

impl RunMeta {
    /// What the run's `limit` counts: as recorded, or samples for a run made before
    /// `--limit` counted units.
    pub fn limit_counts(&self) -> shammie_core::LimitCounts {
        self.limit_counts_recorded
            .unwrap_or(shammie_core::LimitCounts::Samples)
    }
}

/// How a run used the response cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheUse {
    /// `--no-cache`.
    Off,
    /// This cache file.
    File(PathBuf),
}

/// The digest of an input: a file's SHA-256, or for a folder the SHA-256 of its files'
/// relative paths and digests, in sorted order (so any change to any file in it shows).
pub fn input_digest(path: &Path) -> Result<String, LogError> {
    use sha2::{Digest, Sha256};
    fn file(p: &Path) -> Result<String, LogError> {
        let mut f = File::open(p).map_err(io(p))?;
        let mut h = Sha256::new();
        std::io::copy(&mut f, &mut h).map_err(io(p))?;
        Ok(hex::encode(h.finalize()))
    }
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) -> Result<(), LogError> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .collect::<Result<_, _>>()
            .map_err(io(dir))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out)?;
            } else {
                let rel = p
                    .strip_prefix(root)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, file(&p)?));
            }
        }
        Ok(())
    }
    if path.is_dir() {
        let mut files = Vec::new();
        walk(path, path, &mut files)?;
        let mut h = Sha256::new();
        for (rel, d) in files {
            h.update(rel.as_bytes());
            h.update([0]);
            h.update(d.as_bytes());
            h.update([b'\n']);
        }
        Ok(hex::encode(h.finalize()))
    } else {
        file(path)
    }
}

/// A run directory on disk.
#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Creates `parent/<timestamp>-<study>-<task>` (with a numeric suffix if taken) and
    /// writes `run.json`.
    pub fn create(parent: &Path, meta: &RunMeta) -> Result<Self, LogError> {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let slug: String = format!("{}-{}", meta.study, meta.task)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        for n in 0.. {
            let name = if n == 0 {
                format!("{stamp}-{slug}")
            } else {
                format!("{stamp}-{slug}-{n}")
            };
            let path = parent.join(name);
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    let dir = RunDir { path };
                    dir.write_json(RUN_FILE, meta)?;
                    return Ok(dir);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io(&path)(e)),
            }
        }
        unreachable!()
    }

    /// Opens an existing run directory, checking its schema version: any version from
    /// [`OLDEST_READABLE_SCHEMA`] to [`SCHEMA_VERSION`] is read (older records are
    /// converted as they are read). Before appending to an older run, call
    /// [`RunDir::upgrade`].
    pub fn open(path: &Path) -> Result<(Self, RunMeta), LogError> {
        let file = path.join(RUN_FILE);
        if !file.exists() {
            return Err(LogError::NotARun(path.to_path_buf()));
        }
        let text = std::fs::read_to_string(&file).map_err(io(&file))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| LogError::Corrupt {
            path: file.clone(),
            line: e.line() as u64,
            message: e.to_string(),
        })?;
        let found = v
            .get("schema_version")
            .and_then(|x| x.as_u64())
            .unwrap_or(0) as u32;
        if !(OLDEST_READABLE_SCHEMA..=SCHEMA_VERSION).contains(&found) {
            return Err(LogError::Version { path: file, found });
        }
        let meta = serde_json::from_value(v).map_err(|e| LogError::Corrupt {
            path: file.clone(),
            line: 1,
            message: e.to_string(),
        })?;
        Ok((
            RunDir {
                path: path.to_path_buf(),
            },
            meta,
        ))
    }

    /// Replaces `run.json` with `meta` (atomically), e.g. a run resumed with `--batch`.
    pub fn update_meta(&self, meta: &RunMeta) -> Result<(), LogError> {
        self.write_json(RUN_FILE, meta)
    }

    /// Marks a run written by an older schema as the current one, before new records are
    /// appended to it. Old and new records can share a log: readers take both.
    pub fn upgrade(&self, meta: &mut RunMeta) -> Result<(), LogError> {
        if meta.schema_version != SCHEMA_VERSION {
            meta.schema_version = SCHEMA_VERSION;
            self.write_json(RUN_FILE, meta)?;
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn journal_path(&self) -> PathBuf {
        self.path.join(JOURNAL_FILE)
    }
    pub fn samples_path(&self) -> PathBuf {
        self.path.join(SAMPLES_FILE)
    }

    /// Writes `name` atomically (temporary file, then rename).
    pub fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<(), LogError> {
        let target = self.path.join(name);
        let tmp = self.path.join(format!(".{name}.tmp"));
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        serde_json::to_writer_pretty(&mut f, value).expect("serialisable");
        f.write_all(b"\n")
            .and_then(|_| f.sync_all())
            .map_err(io(&tmp))?;
        std::fs::rename(&tmp, &target).map_err(io(&target))
    }

    /// Writes a report file at `rel` (a relative, `/`-separated path inside the run
    /// directory, e.g. `report/scores.svg`) atomically, creating its folders.
    pub fn write_file(&self, rel: &str, content: &[u8]) -> Result<PathBuf, LogError> {
        if !stages::safe_rel(rel) {
            return Err(LogError::BadName(rel.to_string()));
        }
        let target = self.path.join(rel);
        let parent = target.parent().expect("joined path has a parent");
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        let name = target.file_name().unwrap().to_string_lossy().into_owned();
        let tmp = parent.join(format!(".{name}.tmp"));
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(content)
            .and_then(|_| f.sync_all())
            .map_err(io(&tmp))?;
        std::fs::rename(&tmp, &target).map_err(io(&target))?;
        Ok(target)
    }

    pub fn write_results(&self, r: &Results) -> Result<(), LogError> {
        self.write_json(RESULTS_FILE, r)
    }

    pub fn read_results(&self) -> Result<Option<Results>, LogError> {
        let p = self.path.join(RESULTS_FILE);
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

    /// Streams the finished samples.
    pub fn records(&self) -> Result<Records, LogError> {
        Records::open(&self.samples_path())
    }

    /// Removes the records of failed samples (so a resume solves them again), by
    /// rewriting `samples.jsonl` through a temporary file. Returns how many were removed.
    pub fn drop_failed(&self) -> Result<u64, LogError> {
        let path = self.samples_path();
        if !path.exists() {
            return Ok(0);
        }
        // Cut a torn tail first so the rewrite only sees whole records.
        drop(SampleWriter::open(&path)?);
        let tmp = self.path.join(format!(".{SAMPLES_FILE}.tmp"));
        let mut out = std::io::BufWriter::new(File::create(&tmp).map_err(io(&tmp))?);
        let mut dropped = 0;
        let mut line = Vec::new();
        for rec in Records::open(&path)? {
            let rec = rec?;
            if rec.error.is_some() {
                dropped += 1;
                continue;
            }
            line.clear();
            serde_json::to_writer(&mut line, &rec).expect("records serialise");
            line.push(b'\n');
            out.write_all(&line).map_err(io(&tmp))?;
        }
        let f = out.into_inner().map_err(|e| io(&tmp)(e.into_error()))?;
        f.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        Ok(dropped)
    }
}

/// Cuts a torn final line (bytes after the last newline) off an append-only JSONL file
/// left by a killed process. Returns how many bytes were cut.
fn cut_torn_tail(file: &mut File, path: &Path) -> Result<u64, LogError> {
    let len = file.metadata().map_err(io(path))?.len();
    if len == 0 {
        return Ok(0);
    }
    // Find the end of the last complete line by scanning back from the end.
    let mut end = len;
    let mut chunk = vec![0u8; 64 * 1024];
    let keep = loop {
        let start = end.saturating_sub(chunk.len() as u64);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start)).map_err(io(path))?;
        file.read_exact(&mut chunk[..n]).map_err(io(path))?;
        if let Some(i) = chunk[..n].iter().rposition(|&b| b == b'\n') {
            break start + i as u64 + 1;
        }
        if start == 0 {
            break 0;
        }
        end = start;
    };
    if keep < len {
        file.set_len(keep).map_err(io(path))?;
    }
    Ok(len - keep)
}

/// One step of a sample in progress, as written to the step journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub id: String,
    pub epoch: u32,
    /// The step's position among the sample's tool executions (0, 1, …).
    pub seq: u32,
    pub tool: ToolRecord,
}

/// The steps recorded for samples in progress, by `(id, epoch)`, each in `seq` order.
pub type PendingSteps = HashMap<(String, u32), Vec<ToolRecord>>;

/// The step journal (`steps.jsonl`): every tool execution of a sample in progress,
/// appended and flushed before the protocol sees its result, so a sample cut short by a
/// kill can be resumed without running its tools again.
pub struct Journal {
    file: File,
    path: PathBuf,
    buf: Vec<u8>,
}

impl Journal {
    /// Opens (or creates) the journal at `path`. A torn final line is cut off; entries of
    /// samples in `done` (already recorded in full) are dropped by rewriting the file
    /// through a temporary one, so the journal only ever holds work in progress. Returns
    /// the remaining steps by sample.
    pub fn open(
        path: &Path,
        done: &HashSet<(String, u32)>,
    ) -> Result<(Self, PendingSteps), LogError> {
        let mut pending: PendingSteps = HashMap::new();
        let mut dropped = 0u64;
        if path.exists() {
            let mut f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .map_err(io(path))?;
            cut_torn_tail(&mut f, path)?;
            drop(f);
            let reader = BufReader::new(File::open(path).map_err(io(path))?);
            for (i, line) in reader.lines().enumerate() {
                let line = line.map_err(io(path))?;
                if line.trim().is_empty() {
                    continue;
                }
                let e: JournalEntry =
                    serde_json::from_str(&line).map_err(|e| LogError::Corrupt {
                        path: path.to_path_buf(),
                        line: i as u64 + 1,
                        message: e.to_string(),
                    })?;
                let key = (e.id, e.epoch);
                if done.contains(&key) {
                    dropped += 1;
                    continue;
                }
                let steps = pending.entry(key).or_default();
                // A step is journaled once; a duplicate seq would be a bug: keep the first.
                if e.seq as usize == steps.len() {
                    steps.push(e.tool);
                }
            }
        }
        if dropped > 0 {
            let tmp = path.with_extension("jsonl.tmp");
            let mut out = std::io::BufWriter::new(File::create(&tmp).map_err(io(&tmp))?);
            for ((id, epoch), steps) in &pending {
                for (seq, tool) in steps.iter().enumerate() {
                    let e = JournalEntry {
                        id: id.clone(),
                        epoch: *epoch,
                        seq: seq as u32,
                        tool: tool.clone(),
                    };
                    serde_json::to_writer(&mut out, &e).expect("entries serialise");
                    out.write_all(b"\n").map_err(io(&tmp))?;
                }
            }
            let f = out.into_inner().map_err(|e| io(&tmp)(e.into_error()))?;
            f.sync_all().map_err(io(&tmp))?;
            std::fs::rename(&tmp, path).map_err(io(path))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io(path))?;
        Ok((
            Journal {
                file,
                path: path.to_path_buf(),
                buf: Vec::with_capacity(4096),
            },
            pending,
        ))
    }

    /// Writes one step as one line, in a single write, and flushes it to the OS.
    pub fn append(&mut self, e: &JournalEntry) -> Result<(), LogError> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, e).expect("entries serialise");
        self.buf.push(b'\n');
        self.file.write_all(&self.buf).map_err(io(&self.path))?;
        self.file.flush().map_err(io(&self.path))
    }
}

/// Appends sample records, one flushed line each.
pub struct SampleWriter {
    file: File,
    path: PathBuf,
    buf: Vec<u8>,
    /// Bytes of a torn final line cut off by [`SampleWriter::open`].
    pub torn_bytes: u64,
}

impl SampleWriter {
    /// Opens (or creates) `samples.jsonl` for appending. A torn final line left by a
    /// killed process is cut off. Returns the `(id, epoch)` pairs already recorded.
    pub fn open(path: &Path) -> Result<(Self, HashSet<(String, u32)>), LogError> {
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(io(path))?;
        let torn_bytes = cut_torn_tail(&mut file, path)?;
        let mut done = HashSet::new();
        for rec in Records::open(path)? {
            let rec = rec?;
            done.insert((rec.id, rec.epoch));
        }
        Ok((
            SampleWriter {
                file,
                path: path.to_path_buf(),
                buf: Vec::with_capacity(8192),
                torn_bytes,
            },
            done,
        ))
    }

    /// Writes one record as one line, in a single write, and flushes it to the OS.
    pub fn append(&mut self, rec: &SampleRecord) -> Result<(), LogError> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, rec).expect("records serialise");
        self.buf.push(b'\n');
        self.file.write_all(&self.buf).map_err(io(&self.path))?;
        self.file.flush().map_err(io(&self.path))
    }

    /// Forces everything written so far to stable storage.
    pub fn sync(&self) -> Result<(), LogError> {
        self.file.sync_data().map_err(io(&self.path))
    }
}

/// Streaming reader over `samples.jsonl`. A torn final line (no newline, not JSON) is
/// skipped; any other bad line is an error naming the line.
pub struct Records {
    reader: Option<BufReader<File>>,
    path: PathBuf,
    line: u64,
    buf: String,
}

impl Records {
    pub fn open(path: &Path) -> Result<Self, LogError> {
        let reader = match File::open(path) {
            Ok(f) => Some(BufReader::with_capacity(256 * 1024, f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(path)(e)),
        };
        Ok(Records {
            reader,
            path: path.to_path_buf(),
            line: 0,
            buf: String::new(),
        })
    }
}

impl Iterator for Records {
    type Item = Result<SampleRecord, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        let reader = self.reader.as_mut()?;
        loop {
            self.buf.clear();
            match reader.read_line(&mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => return Some(Err(io(&self.path)(e))),
            }
            self.line += 1;
            let complete = self.buf.ends_with('\n');
            let text = self.buf.trim();
            if text.is_empty() {
                continue;
            }
            return match serde_json::from_str::<SampleRecord>(text) {
                Ok(r) => Some(Ok(r)),
                Err(_) if !complete => None,
                Err(e) => Some(Err(LogError::Corrupt {
                    path: self.path.clone(),
                    line: self.line,
                    message: e.to_string(),
                })),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shammie_core::{Transcript, Usage};

    fn rec(id: &str, epoch: u32) -> SampleRecord {
        SampleRecord {
            id: id.into(),
            epoch,
            input: serde_json::json!({"q": id}),
            transcript: Transcript::default(),
            scores: Default::default(),
            usage: Usage::default(),
            error: None,
            started_at: "t".into(),
            duration_ms: 1,
        }
    }

    pub(crate) fn meta() -> RunMeta {
        RunMeta {
            schema_version: SCHEMA_VERSION,
            shammie_version: "0".into(),
            study: "s".into(),
            task: "t/x".into(),
            models: BTreeMap::from([("target".into(), "openai:m".into())]),
            options: BTreeMap::new(),
            config: serde_json::json!({}),
            seed: 1,
            epochs: 1,
            limit: None,
            limit_counts_recorded: None,
            max_connections: 4,
            created_at: "now".into(),
            cache: None,
            inputs: Default::default(),
            batch: None,
        }
    }

    #[test]
    fn torn_tail_is_cut_and_done_set_is_exact() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(SAMPLES_FILE);
        {
            let (mut w, done) = SampleWriter::open(&p).unwrap();
            assert!(done.is_empty());
            w.append(&rec("a", 1)).unwrap();
            w.append(&rec("b", 1)).unwrap();
        }
        // Simulate a kill in the middle of a write.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(br#"{"id":"c","epoch":1,"inp"#).unwrap();
        drop(f);
        assert_eq!(Records::open(&p).unwrap().count(), 2);
        let (mut w, done) = SampleWriter::open(&p).unwrap();
        assert_eq!(w.torn_bytes, 24);
        assert_eq!(
            done,
            HashSet::from([("a".to_string(), 1), ("b".to_string(), 1)])
        );
        w.append(&rec("c", 1)).unwrap();
        let ids: Vec<String> = Records::open(&p).unwrap().map(|r| r.unwrap().id).collect();
        assert_eq!(ids, ["a", "b", "c"]);
    }

    #[test]
    fn drop_failed_keeps_only_successes() {
        let d = tempfile::tempdir().unwrap();
        let dir = RunDir::create(d.path(), &meta()).unwrap();
        let (mut w, _) = SampleWriter::open(&dir.samples_path()).unwrap();
        let mut bad = rec("b", 1);
        bad.error = Some("boom".into());
        for r in [rec("a", 1), bad, rec("c", 1)] {
            w.append(&r).unwrap();
        }
        drop(w);
        assert_eq!(dir.drop_failed().unwrap(), 1);
        let ids: Vec<String> = dir.records().unwrap().map(|r| r.unwrap().id).collect();
        assert_eq!(ids, ["a", "c"]);
        assert_eq!(dir.drop_failed().unwrap(), 0);
    }

    #[test]
    fn corrupt_middle_line_names_the_line() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(SAMPLES_FILE);
        std::fs::write(
            &p,
            format!(
                "{}\nnot json\n",
                serde_json::to_string(&rec("a", 1)).unwrap()
            ),
        )
        .unwrap();
        let errs: Vec<String> = Records::open(&p)
            .unwrap()
            .filter_map(|r| r.err())
            .map(|e| e.to_string())
            .collect();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].contains("samples.jsonl:2:"), "{}", errs[0]);
    }

    #[test]
    fn run_dir_round_trip_and_version_check() {
        let d = tempfile::tempdir().unwrap();
        let a = RunDir::create(d.path(), &meta()).unwrap();
        let b = RunDir::create(d.path(), &meta()).unwrap();
        assert_ne!(a.path(), b.path());
        assert!(a
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .ends_with("-s-t-x"));
        let (_, m) = RunDir::open(a.path()).unwrap();
        assert_eq!(m, meta());
        let mut old = meta();
        old.schema_version = 99;
        a.write_json(RUN_FILE, &old).unwrap();
        let e = RunDir::open(a.path()).unwrap_err().to_string();
        assert!(e.contains("schema version 99"), "{e}");
        assert!(matches!(RunDir::open(d.path()), Err(LogError::NotARun(_))));
    }

    fn step(seq: u32, id: &str, out: &str) -> JournalEntry {
        JournalEntry {
            id: id.into(),
            epoch: 1,
            seq,
            tool: ToolRecord {
                name: "calc".into(),
                input: serde_json::json!({"text": out}),
                output: out.into(),
                exit_status: Some(0),
                error: None,
                duration_ms: 1,
                replayed: false,
            },
        }
    }

    #[test]
    fn journal_keeps_steps_in_progress_and_drops_finished_samples() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(JOURNAL_FILE);
        {
            let (mut j, pending) = Journal::open(&p, &HashSet::new()).unwrap();
            assert!(pending.is_empty());
            j.append(&step(0, "a", "1")).unwrap();
            j.append(&step(0, "b", "2")).unwrap();
            j.append(&step(1, "a", "3")).unwrap();
        }
        // A kill in the middle of a write leaves a torn line: cut, not an error.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(br#"{"id":"a","epoch":1,"seq":2,"to"#).unwrap();
        drop(f);
        let (_, pending) = Journal::open(&p, &HashSet::new()).unwrap();
        let outs = |k: &str| -> Vec<String> {
            pending[&(k.to_string(), 1)]
                .iter()
                .map(|t| t.output.clone())
                .collect()
        };
        assert_eq!(outs("a"), ["1", "3"]);
        assert_eq!(outs("b"), ["2"]);
        // Once `a` is recorded in full its steps leave the journal for good.
        let done = HashSet::from([("a".to_string(), 1)]);
        let (mut j, pending) = Journal::open(&p, &done).unwrap();
        assert_eq!(pending.len(), 1);
        j.append(&step(1, "b", "4")).unwrap();
        drop(j);
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        let (_, pending) = Journal::open(&p, &HashSet::new()).unwrap();
        assert_eq!(pending[&("b".to_string(), 1)].len(), 2);
        // A corrupt complete line is named, never skipped.
        std::fs::write(&p, "not json\n").unwrap();
        let e = Journal::open(&p, &HashSet::new())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("steps.jsonl:1:"), "{e}");
    }

    #[test]
    fn older_schemas_open_and_upgrade() {
        let d = tempfile::tempdir().unwrap();
        let a = RunDir::create(d.path(), &meta()).unwrap();
        let mut old = meta();
        old.schema_version = 1;
        a.write_json(RUN_FILE, &old).unwrap();
        let (dir, mut m) = RunDir::open(a.path()).unwrap();
        assert_eq!(m.schema_version, 1);
        dir.upgrade(&mut m).unwrap();
        assert_eq!(
            RunDir::open(a.path()).unwrap().1.schema_version,
            SCHEMA_VERSION
        );
    }

    #[test]
    fn report_files_stay_inside_the_run_directory() {
        let d = tempfile::tempdir().unwrap();
        let dir = RunDir::create(d.path(), &meta()).unwrap();
        let p = dir.write_file("report/a.svg", b"<svg/>").unwrap();
        assert_eq!(p, dir.path().join("report/a.svg"));
        assert_eq!(std::fs::read(&p).unwrap(), b"<svg/>");
        // Rewriting replaces the file; no temporary file is left behind.
        dir.write_file("report/a.svg", b"<svg></svg>").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"<svg></svg>");
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
        for bad in [
            "",
            "/etc/x",
            "../x",
            "report/../../x",
            "a//b",
            "./a",
            "a\\b",
        ] {
            assert!(
                matches!(dir.write_file(bad, b"x"), Err(LogError::BadName(_))),
                "{bad:?} accepted"
            );
        }
    }
}
