//! The runs the viewer shows: each folder given is a run directory (it has `run.json`)
//! or a folder of them, looked at again on every listing so new runs appear while the
//! viewer is open. A run's samples files (`samples.jsonl`, and `stages/NAME/samples.jsonl`
//! for a multi-stage run) are indexed lazily and kept up to date ([`LineIndex`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::index::LineIndex;

/// One run directory found under the roots.
#[derive(Debug, Clone)]
pub struct Found {
    /// Its id in URLs: the directory's name, made unique with `~2`, `~3` … when two
    /// roots hold runs of the same name (in root order, so ids are stable).
    pub id: String,
    pub dir: PathBuf,
}

/// Lists the run directories under `roots`, newest name first within a folder.
pub fn scan(roots: &[PathBuf]) -> Vec<Found> {
    let mut dirs = Vec::new();
    for root in roots {
        if root.join("run.json").is_file() {
            dirs.push(root.clone());
            continue;
        }
        let Ok(rd) = std::fs::read_dir(root) else {
            continue;
        };
        let mut inner: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("run.json").is_file())
            .collect();
        inner.sort();
        inner.reverse();
        dirs.extend(inner);
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    dirs.into_iter()
        .map(|dir| {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "run".into());
            let k = seen.entry(name.clone()).or_insert(0);
            *k += 1;
            let id = if *k == 1 { name } else { format!("{name}~{k}") };
            Found { id, dir }
        })
        .collect()
}

/// What a private stage's records hold (its `private.txt`), or `None` when they may be
/// shown. The run's own samples (`""`) are never private.
pub fn private_stage(dir: &Path, stage: &str) -> Option<String> {
    if stage.is_empty() {
        return None;
    }
    std::fs::read_to_string(
        dir.join(shammie_log::STAGES_DIR)
            .join(stage)
            .join(shammie_log::PRIVATE_FILE),
    )
    .ok()
}

/// The samples files of a run: `""` for `samples.jsonl`, else the stage's name.
pub fn sample_files(dir: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    let main = dir.join("samples.jsonl");
    if main.is_file() {
        out.insert(String::new(), main);
    }
    if let Ok(rd) = std::fs::read_dir(dir.join(shammie_log::STAGES_DIR)) {
        for e in rd.flatten() {
            let p = e.path().join("samples.jsonl");
            if p.is_file() {
                out.insert(e.file_name().to_string_lossy().into_owned(), p);
            }
        }
    }
    out
}

/// Whether a shammie process is writing the run now: the pid its lock file records is
/// alive and is a shammie process. (The lock itself is never touched: taking it, even
/// shared, could make a starting writer fail.)
pub fn writer_alive(dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join(".lock")) else {
        return false;
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        return false;
    };
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
        c.split(|b| *b == 0)
            .next()
            .is_some_and(|exe| String::from_utf8_lossy(exe).contains("shammie"))
    })
}

/// What the run list shows of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub id: String,
    pub path: String,
    pub study: String,
    pub task: String,
    pub models: BTreeMap<String, String>,
    pub created_at: String,
    pub seed: u64,
    pub samples: usize,
    pub failed: usize,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// `running` (a shammie process writes it now), `complete` (results written) or
    /// `incomplete` (stopped before its results).
    pub status: &'static str,
    pub stages: Vec<String>,
    /// Stages whose records are private (their `private.txt`: what they hold); the viewer
    /// never shows those records.
    pub private: BTreeMap<String, String>,
    /// From `results.json`: the run's cost at list price and what was paid (US dollars);
    /// absent before the results are written.
    pub cost_usd: Option<f64>,
    pub paid_cost_usd: Option<f64>,
}

/// The indexes of the runs seen so far, by directory.
#[derive(Debug, Default)]
pub struct Indexes {
    by_file: HashMap<PathBuf, LineIndex>,
}

impl Indexes {
    /// The up-to-date index of `path`.
    pub fn get(&mut self, path: &Path) -> std::io::Result<&LineIndex> {
        let idx = self
            .by_file
            .entry(path.to_path_buf())
            .or_insert_with(|| LineIndex::new(path));
        idx.refresh()?;
        Ok(idx)
    }
}

/// A JSON file of a run directory (`run.json`, `results.json`); null when absent or
/// unreadable.
pub fn read_json(dir: &Path, name: &str) -> serde_json::Value {
    std::fs::read(dir.join(name))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null)
}

/// The summary of `found` from its `run.json` and `results.json` as read (its samples
/// files indexed on the way); `None` when `run.json` is unreadable.
pub fn summary(
    found: &Found,
    idx: &mut Indexes,
    meta: &serde_json::Value,
    results: &serde_json::Value,
) -> Option<Summary> {
    if !meta.is_object() {
        return None;
    }
    let s = |k: &str| meta[k].as_str().unwrap_or_default().to_string();
    let files = sample_files(&found.dir);
    let (mut samples, mut failed, mut tin, mut tout) = (0, 0, 0, 0);
    for p in files.values() {
        if let Ok(i) = idx.get(p) {
            samples += i.entries().len();
            for e in i.entries() {
                failed += usize::from(e.error);
                tin += e.input_tokens;
                tout += e.output_tokens;
            }
        }
    }
    let cost = |k: &str| results["totals"][k].as_f64();
    let status = if writer_alive(&found.dir) {
        "running"
    } else if found.dir.join("results.json").is_file() {
        "complete"
    } else {
        "incomplete"
    };
    Some(Summary {
        id: found.id.clone(),
        path: found.dir.display().to_string(),
        study: s("study"),
        task: s("task"),
        models: serde_json::from_value(meta["models"].clone()).unwrap_or_default(),
        created_at: s("created_at"),
        seed: meta["seed"].as_u64().unwrap_or_default(),
        samples,
        failed,
        input_tokens: tin,
        output_tokens: tout,
        status,
        stages: files.keys().filter(|k| !k.is_empty()).cloned().collect(),
        private: files
            .keys()
            .filter_map(|k| private_stage(&found.dir, k).map(|w| (k.clone(), w)))
            .collect(),
        cost_usd: cost("cost_usd"),
        paid_cost_usd: cost("paid_cost_usd"),
    })
}
