//! Exports of a run directory for the tools researchers already use: CSV and Parquet
//! tables for pandas and polars, and an Inspect AI eval log for `inspect view`,
//! `inspect log dump` and `inspect_ai.analysis`.
//!
//! What is exported:
//! - **csv** / **parquet** (a folder, `RUN/export/` by default): `samples.csv` /
//!   `samples.parquet`, one row per sample record (every stage of a multi-stage run, with
//!   its `stage`), and one `table.NAME.csv` / `.parquet` per table of `results.json`. The
//!   columns are listed in [`frame`]; the Inspect mapping in [`inspect`].
//! - **inspect** (a file, by default in `RUN/export/`, named as Inspect names its logs so
//!   that Inspect lists it): one Inspect `EvalLog` in its `.json` format (version 2),
//!   samples included.
//!
//! Invariants: records are streamed from the log ([`shammie_log::Records`]), twice where
//! the output needs something from every record before it can start (the column set of
//! the sample table; the usage totals of the Inspect header): memory is bounded by one
//! record plus one batch of rows ([`frame::BATCH_ROWS`]), whatever the run's size. Each
//! file is written under a temporary name and renamed into place when complete, so an
//! export killed half-way never leaves a truncated file under its name. The run directory
//! is only read (the output goes where the caller says). A bad line is an error naming
//! `FILE:LINE`, never skipped (a torn last line of a killed run is skipped, as every reader
//! of the log does).
//!
//! What is not here: no printing (the CLI lists the files written), no model calls, no
//! analysis (tables come from `results.json` as the run wrote them).

pub mod frame;
pub mod inspect;
mod parquet_out;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use shammie_core::SampleRecord;
use shammie_log::{LogError, Records, RunDir, RunMeta, SAMPLES_FILE, STAGES_DIR};

/// What to export to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Parquet,
    Inspect,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Csv, Format::Parquet, Format::Inspect];

    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
            Format::Inspect => "inspect",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = ExportError;
    fn from_str(s: &str) -> Result<Self, ExportError> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| ExportError::UnknownFormat(s.to_string()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("unknown export format `{0}` (one of: csv, parquet, inspect)")]
    UnknownFormat(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Write { path: PathBuf, message: String },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Exports the run directory `run` in `format` to `out`. Returns the files written, in
/// order.
///
/// csv and parquet: `out` is a folder (default `RUN/export/`). inspect: `out` is the file,
/// or a folder (an existing one, or a path ending in `/`) to hold it; by default
/// `RUN/export/`. In a folder the log is named as Inspect names its logs,
/// `CREATED_TASK_ID.json` ([`inspect::file_name`]): Inspect lists (`inspect view`, a folder
/// or a file given to `samples_df`) only `.json` logs whose name starts with a timestamp.
pub fn export(run: &Path, format: Format, out: Option<&Path>) -> Result<Vec<PathBuf>, ExportError> {
    let source = Source::open(run)?;
    let folder = || run.join("export");
    match format {
        Format::Csv | Format::Parquet => {
            let out = out.map(Path::to_path_buf).unwrap_or_else(folder);
            frame::export_tables(&source, format, &out)
        }
        Format::Inspect => {
            let in_folder = |d: &Path| d.join(inspect::file_name(&source));
            let out = match out {
                None => in_folder(&folder()),
                Some(p) if p.is_dir() || p.as_os_str().to_string_lossy().ends_with('/') => {
                    in_folder(p)
                }
                Some(p) => p.to_path_buf(),
            };
            inspect::export(&source, &out)?;
            Ok(vec![out])
        }
    }
}

/// A run directory opened for export: its metadata, its results (if analysed) and the
/// record files of its stages.
pub struct Source {
    pub dir: RunDir,
    pub meta: RunMeta,
    pub results: Option<shammie_core::Results>,
    /// `samples.jsonl` files in order: the run's own (stage `None`), then each stage's,
    /// in the order the stages finished (unfinished ones last, by name).
    pub logs: Vec<(Option<String>, PathBuf)>,
}

impl Source {
    pub fn open(run: &Path) -> Result<Self, ExportError> {
        let (dir, meta) = RunDir::open(run)?;
        let results = dir.read_results()?;
        let mut logs = Vec::new();
        let top = dir.samples_path();
        if top.exists() {
            logs.push((None, top));
        }
        let stages_dir = run.join(STAGES_DIR);
        if stages_dir.is_dir() {
            let mut stages = Vec::new();
            for e in std::fs::read_dir(&stages_dir).map_err(io_err(&stages_dir))? {
                let e = e.map_err(io_err(&stages_dir))?;
                let name = e.file_name().to_string_lossy().into_owned();
                let samples = e.path().join(SAMPLES_FILE);
                if !samples.exists() {
                    continue;
                }
                // Only a stage folder with a valid name is one of the run's stages.
                let finished = match dir.stage(&name) {
                    Ok(s) => s.done()?.map(|d| d.finished_at),
                    Err(LogError::BadName(_)) => continue,
                    Err(e) => return Err(e.into()),
                };
                stages.push((finished.is_none(), finished, name, samples));
            }
            stages.sort();
            logs.extend(stages.into_iter().map(|(_, _, n, p)| (Some(n), p)));
        }
        Ok(Source {
            dir,
            meta,
            results,
            logs,
        })
    }

    /// Whether the run has stages (then every row names its stage).
    pub fn staged(&self) -> bool {
        self.logs.iter().any(|(s, _)| s.is_some())
    }

    /// Streams every record of the run, with its stage, to `f`.
    pub fn for_each<F>(&self, mut f: F) -> Result<(), ExportError>
    where
        F: FnMut(Option<&str>, SampleRecord) -> Result<(), ExportError>,
    {
        for (stage, path) in &self.logs {
            for rec in Records::open(path)? {
                f(stage.as_deref(), rec?)?;
            }
        }
        Ok(())
    }
}

/// A file written under a temporary name in its folder and renamed into place by
/// [`AtomicFile::commit`]; dropped without commit, the temporary file is removed.
pub(crate) struct AtomicFile {
    target: PathBuf,
    tmp: PathBuf,
    file: Option<BufWriter<File>>,
}

impl AtomicFile {
    pub(crate) fn create(target: &Path) -> Result<Self, ExportError> {
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(io_err(&parent))?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "export".into());
        let tmp = parent.join(format!(".{name}.tmp"));
        let file = File::create(&tmp).map_err(io_err(&tmp))?;
        Ok(AtomicFile {
            target: target.to_path_buf(),
            tmp,
            file: Some(BufWriter::with_capacity(256 * 1024, file)),
        })
    }

    pub(crate) fn writer(&mut self) -> &mut BufWriter<File> {
        self.file.as_mut().expect("not committed")
    }

    pub(crate) fn commit(mut self) -> Result<PathBuf, ExportError> {
        let w = self.file.take().expect("not committed");
        let f = w
            .into_inner()
            .map_err(|e| io_err(&self.tmp)(e.into_error()))?;
        f.sync_all().map_err(io_err(&self.tmp))?;
        std::fs::rename(&self.tmp, &self.target).map_err(io_err(&self.target))?;
        Ok(self.target.clone())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.writer().flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
