//! An index of one `samples.jsonl`: where each complete line starts and the few fields the
//! viewer lists and filters by (id, epoch, error, dataset, scalar scores, tokens), so a
//! run of any size is paged from disk: the server reads one record by its offset and
//! never holds a whole log.
//!
//! The log is append-only while a run writes it, so [`LineIndex::refresh`] reads only the
//! bytes added since the last call (a torn last line waits for its newline); a file that
//! shrank or was replaced (`resume --retry-failed` rewrites it) is indexed again from the
//! start.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A score value short enough to list and filter by.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Scalar {
    Bool(bool),
    Num(f64),
    Text(String),
}

impl Scalar {
    fn of(v: &serde_json::Value) -> Option<Scalar> {
        match v {
            serde_json::Value::Bool(b) => Some(Scalar::Bool(*b)),
            serde_json::Value::Number(n) => n.as_f64().map(Scalar::Num),
            serde_json::Value::String(s) if s.chars().count() <= MAX_TEXT => {
                Some(Scalar::Text(s.clone()))
            }
            _ => None,
        }
    }

    /// As a filter compares it: `true`/`false`, the number as JSON writes it, the text.
    pub fn text(&self) -> String {
        match self {
            Scalar::Bool(b) => b.to_string(),
            Scalar::Num(n) => serde_json::Number::from_f64(*n)
                .map(|n| n.to_string())
                .unwrap_or_default(),
            Scalar::Text(t) => t.clone(),
        }
    }
}

/// Longest text score kept in the index.
const MAX_TEXT: usize = 80;

/// One record as indexed.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Position in the file (0 = first record).
    pub n: usize,
    #[serde(skip)]
    pub offset: u64,
    #[serde(skip)]
    pub len: usize,
    pub id: String,
    pub epoch: u32,
    pub error: bool,
    /// The input's `dataset` field, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    pub scores: Vec<(String, Scalar)>,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

#[derive(Deserialize)]
struct Light {
    id: String,
    epoch: u32,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    scores: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    input: LightInput,
    #[serde(default)]
    usage: LightUsage,
}

#[derive(Deserialize, Default)]
struct LightInput {
    #[serde(default)]
    dataset: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
struct LightUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
}

/// The index of one samples file.
#[derive(Debug)]
pub struct LineIndex {
    path: PathBuf,
    entries: Vec<Entry>,
    by_key: HashMap<(String, u32), usize>,
    /// Bytes of complete lines indexed so far.
    indexed_to: u64,
    /// Lines that did not parse (skipped; a log written by Shammie has none).
    pub unreadable: usize,
}

impl LineIndex {
    pub fn new(path: &Path) -> Self {
        LineIndex {
            path: path.to_path_buf(),
            entries: Vec::new(),
            by_key: HashMap::new(),
            indexed_to: 0,
            unreadable: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The record `(id, epoch)`'s position.
    pub fn find(&self, id: &str, epoch: u32) -> Option<&Entry> {
        self.by_key
            .get(&(id.to_string(), epoch))
            .map(|&i| &self.entries[i])
    }

    /// Reads what was appended since the last call (or everything, when the file is new,
    /// shrank or was replaced). A missing file is an empty log.
    pub fn refresh(&mut self) -> std::io::Result<()> {
        let len = match std::fs::metadata(&self.path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.reset();
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if len < self.indexed_to || !self.still_same_file()? {
            self.reset();
        }
        if len == self.indexed_to {
            return Ok(());
        }
        let mut f = File::open(&self.path)?;
        f.seek(SeekFrom::Start(self.indexed_to))?;
        let mut r = BufReader::with_capacity(1 << 20, f);
        let mut line = Vec::new();
        loop {
            line.clear();
            let got = r.read_until(b'\n', &mut line)?;
            if got == 0 || line.last() != Some(&b'\n') {
                // End of file, or a line still being written: wait for its newline.
                break;
            }
            let offset = self.indexed_to;
            self.indexed_to += got as u64;
            let body = trim_line(&line);
            if body.is_empty() {
                continue;
            }
            match serde_json::from_slice::<Light>(body) {
                Ok(l) => self.push(l, offset, body.len()),
                Err(_) => self.unreadable += 1,
            }
        }
        Ok(())
    }

    /// The first record must still be where it was: a rewritten file (same length or
    /// longer) starts with other bytes or is another record.
    fn still_same_file(&self) -> std::io::Result<bool> {
        let Some(first) = self.entries.first() else {
            return Ok(true);
        };
        let mut f = File::open(&self.path)?;
        let mut buf = vec![0u8; first.len];
        f.seek(SeekFrom::Start(first.offset))?;
        if f.read_exact(&mut buf).is_err() {
            return Ok(false);
        }
        Ok(serde_json::from_slice::<Light>(&buf)
            .is_ok_and(|l| l.id == first.id && l.epoch == first.epoch))
    }

    fn reset(&mut self) {
        self.entries.clear();
        self.by_key.clear();
        self.indexed_to = 0;
        self.unreadable = 0;
    }

    fn push(&mut self, l: Light, offset: u64, len: usize) {
        let n = self.entries.len();
        let dataset = l.input.dataset.as_ref().and_then(|d| match d {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        });
        let scores = l
            .scores
            .iter()
            .filter_map(|(k, v)| Scalar::of(v).map(|s| (k.clone(), s)))
            .collect();
        self.by_key.insert((l.id.clone(), l.epoch), n);
        self.entries.push(Entry {
            n,
            offset,
            len,
            id: l.id,
            epoch: l.epoch,
            error: l.error.is_some(),
            dataset,
            scores,
            input_tokens: l.usage.input_tokens,
            output_tokens: l.usage.output_tokens,
        });
    }

    /// The raw JSON of one record.
    pub fn read(&self, e: &Entry) -> std::io::Result<Vec<u8>> {
        let mut f = File::open(&self.path)?;
        f.seek(SeekFrom::Start(e.offset))?;
        let mut buf = vec![0u8; e.len];
        f.read_exact(&mut buf)?;
        Ok(buf)
    }

    /// The entries among `candidates` (in file order) whose raw line contains `needle`,
    /// ASCII case-insensitively, read sequentially from disk.
    pub fn search<'a>(
        &'a self,
        candidates: impl Iterator<Item = &'a Entry>,
        needle: &str,
    ) -> std::io::Result<Vec<&'a Entry>> {
        let needle = needle.to_ascii_lowercase().into_bytes();
        let mut out = Vec::new();
        let mut f = BufReader::with_capacity(1 << 20, File::open(&self.path)?);
        let mut pos = 0u64;
        let mut buf = Vec::new();
        for e in candidates {
            if e.offset >= pos {
                // Forward within the buffer where it can (the next record is usually
                // just past this one's newline): a plain seek would drop the buffer.
                f.seek_relative((e.offset - pos) as i64)?;
            } else {
                f.seek(SeekFrom::Start(e.offset))?;
            }
            buf.resize(e.len, 0);
            f.read_exact(&mut buf)?;
            pos = e.offset + e.len as u64;
            buf.make_ascii_lowercase();
            if contains(&buf, &needle) {
                out.push(e);
            }
        }
        Ok(out)
    }
}

fn trim_line(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r' | b' ' | b'\t') {
        end -= 1;
    }
    &line[..end]
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() {
        return true;
    }
    let first = needle[0];
    let last = hay.len().saturating_sub(needle.len());
    let mut i = 0;
    while i <= last && hay.len() >= needle.len() {
        match hay[i..=last].iter().position(|&b| b == first) {
            Some(j) => {
                let at = i + j;
                if &hay[at..at + needle.len()] == needle {
                    return true;
                }
                i = at + 1;
            }
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn line(id: &str, epoch: u32, error: bool, text: &str) -> String {
        let mut v = serde_json::json!({
            "id": id, "epoch": epoch, "input": {"dataset": "d1", "q": text},
            "transcript": {"events": []}, "scores": {"correct": !error, "p": 0.25, "long": "x".repeat(200)},
            "usage": {"input_tokens": 3, "output_tokens": 4}, "started_at": "", "duration_ms": 1
        });
        if error {
            v["error"] = "boom".into();
        }
        format!("{v}\n")
    }

    #[test]
    fn appends_are_indexed_incrementally_and_rewrites_from_scratch() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("samples.jsonl");
        let mut idx = LineIndex::new(&p);
        idx.refresh().unwrap();
        assert!(idx.entries().is_empty());
        let mut f = std::fs::File::create(&p).unwrap();
        f.write_all(line("a", 1, false, "Hello").as_bytes())
            .unwrap();
        // A torn last line waits for its newline.
        let b = line("b", 1, true, "World");
        f.write_all(&b.as_bytes()[..20]).unwrap();
        idx.refresh().unwrap();
        assert_eq!(idx.entries().len(), 1);
        f.write_all(&b.as_bytes()[20..]).unwrap();
        idx.refresh().unwrap();
        assert_eq!(idx.entries().len(), 2);
        let e = idx.find("b", 1).unwrap();
        assert!(e.error);
        assert_eq!(e.dataset.as_deref(), Some("d1"));
        assert_eq!(e.scores.len(), 2, "the long text score is not indexed");
        let raw = idx.read(e).unwrap();
        assert_eq!(raw, b.trim_end().as_bytes());
        let hits = idx.search(idx.entries().iter(), "WORLD").unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].id, "b");
        // Rewritten (as `resume --retry-failed` does): indexed again.
        drop(f);
        std::fs::write(&p, line("c", 1, false, "x") + &line("a", 1, false, "y")).unwrap();
        idx.refresh().unwrap();
        assert_eq!(
            idx.entries()
                .iter()
                .map(|e| e.id.as_str())
                .collect::<Vec<_>>(),
            ["c", "a"]
        );
        assert!(idx.find("b", 1).is_none());
    }

    #[test]
    fn substring_search() {
        assert!(contains(b"abcabd", b"abd"));
        assert!(!contains(b"abcab", b"abd"));
        assert!(contains(b"x", b""));
        assert!(!contains(b"", b"a"));
        assert!(contains(b"aaab", b"aab"));
    }
}
