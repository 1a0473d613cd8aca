//! The engine: runs one study task over its dataset with bounded concurrency, records
//! every sample to the run log as it finishes, resumes a killed run, and hands the log
//! to the task's analysis.
//!
//! A study plugs in by implementing [`Task`]: a streaming [`Dataset`], a per-sample
//! protocol ([`Task::solve`], which calls models by role through a [`SampleContext`]
//! that records every call), and an analysis over the finished records.
//!
//! Invariants: each `(sample id, epoch)` is solved and recorded at most once per run
//! directory; a sample whose calls fail is recorded with its error and the run goes on;
//! the dataset is pulled lazily, so memory stays flat whatever its size; the engine never
//! prints (progress goes to a [`Progress`] sink).
//!
//! What is not here: no provider code, no file formats (the log crate), no statistics.

mod context;
mod estimate;
pub mod lab;
mod options;
pub mod pipeline;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use futures::FutureExt;
use shammie_core::{
    LimitCounts, ReportFileEntry, Results, Sample, SampleRecord, Scores, Table, Totals, Usage,
    SCHEMA_VERSION,
};
use shammie_log::{Journal, LogError, PendingSteps, RunDir, SampleWriter, StageDone};
use shammie_models::{Model, ModelError};

pub use context::{SampleContext, ToolOutput};
pub use estimate::{estimate, Estimate, RoleEstimate};
pub use lab::{
    Activations, FineTuneConfig, FineTuneJob, InfluenceConfig, InfluenceJob, InfluencePrompt,
    InfluenceResult, InfluenceText, Lab, PmJob, Trained, TrainedPm,
};
pub use options::{OptionGroup, OptionSpec, OptionValue, Options};
pub use pipeline::{LabStage, MapStage, ReduceStage, RunView, Stage, StageOutput};
pub use shammie_core::RunInfo;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("analysis failed: {0}")]
    Analysis(String),
    /// The run stopped early and cleanly (`--max-cost` reached): every finished sample
    /// is recorded, the rest are left for `shammie resume`.
    #[error("stopped before the cost cap: {reason} ({solved} samples solved in this invocation)")]
    Stopped { reason: String, solved: u64 },
}

/// A problem with input data. Always names the file and, where there is one, the line.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DataError {
    #[error("{path}:{line}: {message}")]
    Line {
        path: String,
        line: u64,
        message: String,
    },
    #[error("{path}: {message}")]
    File { path: String, message: String },
}

/// Why one sample could not be completed. Recorded in its record; the run goes on.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("{role} model: {source}")]
    Model { role: String, source: ModelError },
    #[error("{0}")]
    Protocol(String),
}

/// A task's samples, pulled lazily, unit-major: the samples of one unit
/// ([`Sample::unit_key`]: a question with all its strategies, a prompt with all its
/// interventions) come together, so `--limit N` (units) takes a prefix.
pub struct Dataset {
    /// Number of samples, when known without reading the data twice.
    pub total: Option<u64>,
    /// Number of units, when known (`None` with a known `total`: one sample per unit).
    pub units: Option<u64>,
    /// What one unit is, singular (`question`, `prompt`, `problem`), for messages.
    pub unit_name: &'static str,
    pub samples: Box<dyn Iterator<Item = Result<Sample, DataError>> + Send>,
}

impl Dataset {
    /// A dataset of `total` samples (when known), one unit each.
    pub fn new(
        total: Option<u64>,
        unit_name: &'static str,
        samples: impl Iterator<Item = Result<Sample, DataError>> + Send + 'static,
    ) -> Self {
        Dataset {
            total,
            units: total,
            unit_name,
            samples: Box::new(samples),
        }
    }

    /// A dataset of `units` units of `per_unit` samples each, listed unit by unit.
    pub fn per_unit(
        units: u64,
        per_unit: u64,
        unit_name: &'static str,
        samples: impl Iterator<Item = Result<Sample, DataError>> + Send + 'static,
    ) -> Self {
        Dataset {
            total: Some(units * per_unit),
            units: Some(units),
            unit_name,
            samples: Box::new(samples),
        }
    }

    /// (units, samples) one epoch runs under `limit`, when known.
    pub fn planned(&self, limit: Option<u64>, counts: LimitCounts) -> (Option<u64>, Option<u64>) {
        let units = self.units.or(self.total);
        match (limit, counts) {
            (None, _) => (units, self.total),
            (Some(l), LimitCounts::Samples) => (None, self.total.map(|t| t.min(l))),
            (Some(l), LimitCounts::Units) => {
                let samples = match (self.total, units) {
                    (Some(t), Some(u)) if u > 0 && t % u == 0 => Some(u.min(l) * (t / u)),
                    (Some(0), _) => Some(0),
                    _ => None,
                };
                (units.map(|u| u.min(l)), samples)
            }
        }
    }
}

/// A model role a task uses (`target`, `judge`, …).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RoleSpec {
    pub name: &'static str,
    pub help: &'static str,
    /// When not given on the command line, use the model of this role instead.
    pub defaults_to: Option<&'static str>,
}

/// The models of a run, by role.
#[derive(Clone, Default)]
pub struct Models {
    map: BTreeMap<String, Arc<dyn Model>>,
    lab: Option<Arc<dyn Lab>>,
}

impl std::fmt::Debug for Models {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.map.iter().map(|(r, m)| (r, m.name())))
            .finish()
    }
}

impl Models {
    pub fn new(map: BTreeMap<String, Arc<dyn Model>>) -> Self {
        Self { map, lab: None }
    }
    /// The same models with weight-level access (training, activations) for lab stages.
    pub fn with_lab(mut self, lab: Arc<dyn Lab>) -> Self {
        self.lab = Some(lab);
        self
    }
    pub fn lab(&self) -> Option<&Arc<dyn Lab>> {
        self.lab.as_ref()
    }
    /// The same models with `role` bound to `model`.
    pub fn rebind(&self, role: &str, model: Arc<dyn Model>) -> Self {
        let mut m = self.clone();
        m.map.insert(role.to_string(), model);
        m
    }
    pub fn get(&self, role: &str) -> Option<&Arc<dyn Model>> {
        self.map.get(role)
    }
    /// Checks every role the task needs is bound (filling defaults) and no unknown role was given.
    ///
    /// A bare `--model SPEC` arrives as the `target` role; for a task without a `target`
    /// role it binds to the task's first role (e.g. a generator's `writer`).
    pub fn resolve(mut self, roles: &[RoleSpec], task: &str) -> Result<Self, EngineError> {
        if !roles.iter().any(|r| r.name == "target") {
            if let (Some(first), Some(m)) = (roles.first(), self.map.get("target").cloned()) {
                if !self.map.contains_key(first.name) {
                    self.map.remove("target");
                    self.map.insert(first.name.to_string(), m);
                }
            }
        }
        for r in roles {
            if !self.map.contains_key(r.name) {
                match r.defaults_to.and_then(|d| self.map.get(d).cloned()) {
                    Some(m) => {
                        self.map.insert(r.name.to_string(), m);
                    }
                    None => {
                        return Err(EngineError::Config(format!(
                            "{task} needs a `{}` model: pass --model {}=SPEC{}",
                            r.name,
                            r.name,
                            if r.name == "target" {
                                " (or a bare --model SPEC)"
                            } else {
                                ""
                            }
                        )))
                    }
                }
            }
        }
        if let Some(extra) = self
            .map
            .keys()
            .find(|k| !roles.iter().any(|r| r.name == k.as_str()))
        {
            let known: Vec<&str> = roles.iter().map(|r| r.name).collect();
            return Err(EngineError::Config(format!(
                "{task} has no `{extra}` role; its roles are: {}",
                known.join(", ")
            )));
        }
        Ok(self)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Arc<dyn Model>)> {
        self.map.iter()
    }
}

/// A file an analysis produces (a figure, a generated dataset), written by the engine
/// into the run directory.
#[derive(Debug, Clone)]
pub struct ReportFile {
    /// Relative path inside the run directory, `/`-separated (e.g. `report/scores.svg`).
    pub path: String,
    pub description: String,
    pub content: Vec<u8>,
}

/// What a task's analysis produces: tables (into `results.json` and the terminal) and
/// report files.
#[derive(Debug, Clone, Default)]
pub struct Analysis {
    pub tables: Vec<Table>,
    pub files: Vec<ReportFile>,
}

impl From<Vec<Table>> for Analysis {
    fn from(tables: Vec<Table>) -> Self {
        Analysis {
            tables,
            files: Vec::new(),
        }
    }
}

/// One study task: data, per-sample protocol, analysis.
#[async_trait]
pub trait Task: Send + Sync + 'static {
    /// e.g. `constitution`.
    fn study(&self) -> &str;
    /// e.g. `traits`.
    fn name(&self) -> &str;
    fn roles(&self) -> Vec<RoleSpec>;
    /// The resolved configuration, defaults included (goes into run.json).
    fn config(&self) -> serde_json::Value;
    /// Checks the bound models can run this task's protocol (capabilities).
    fn check_models(&self, _models: &Models) -> Result<(), EngineError> {
        Ok(())
    }
    /// The samples of a single-stage task. A multi-stage task returns its input data
    /// here (or nothing), so that bad input is found before the run directory exists.
    fn dataset(&self) -> Result<Dataset, DataError>;
    /// Runs the protocol for one sample and scores it (single-stage tasks).
    async fn solve(&self, _cx: &SampleContext, _sample: &Sample) -> Result<Scores, SampleError> {
        Err(SampleError::Protocol(
            "this task is run by its stages, not per sample".into(),
        ))
    }
    /// The study's tables and report files, from the finished records (streamed).
    /// Single-stage tasks only; multi-stage tasks implement [`Task::analyze_stages`].
    /// `run` describes the run (seed, models, date) for figure subtitles; the engine puts
    /// the same description under every table's title ([`Table::caption`]).
    fn analyze(
        &self,
        _records: &mut dyn Iterator<Item = SampleRecord>,
        _run: &RunInfo,
    ) -> Result<Analysis, String> {
        Err("this task is analysed by its stages".into())
    }
    /// The files and folders the task reads its data from (`--set data=…`), so that a run
    /// records their digests and a resume refuses data that changed in between. Data
    /// built into the binary need not be listed.
    fn inputs(&self) -> Vec<std::path::PathBuf> {
        Vec::new()
    }
    /// A multi-stage task's stages, in order (`None`: a single-stage task, whose
    /// samples come from [`Task::dataset`] and are recorded in `samples.jsonl`).
    fn stages(&self) -> Option<Vec<Stage>> {
        None
    }
    /// A multi-stage task's analysis over its stages' records and artifacts.
    fn analyze_stages(&self, _run: &RunView) -> Result<Analysis, String> {
        Err("this task has no stages".into())
    }
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub epochs: u32,
    pub limit: Option<u64>,
    /// What `limit` counts: units of the dataset (new runs) or samples (runs made before
    /// units existed, resumed with the meaning they were started with).
    pub limit_counts: LimitCounts,
    /// Samples being solved at once (`--max-samples`). Separate from the connections per
    /// endpoint: an agent episode holds its slot for many calls and tool steps.
    pub max_in_flight: usize,
    pub seed: u64,
}

#[derive(Debug, Clone)]
pub enum ProgressEvent {
    Started {
        total: Option<u64>,
        already_done: u64,
    },
    SampleDone {
        failed: bool,
        calls: u64,
        cached_calls: u64,
        paid: Usage,
    },
    /// A stage of a multi-stage task begins (`index` counts from 0).
    StageStarted {
        name: String,
        kind: &'static str,
        index: usize,
        count: usize,
    },
    /// A stage finished in an earlier invocation: skipped.
    StageSkipped {
        name: String,
    },
    /// Progress inside a reduce stage.
    StageProgress {
        done: u64,
        total: u64,
    },
    Analyzing,
}

/// Where progress goes (the CLI draws a bar; tests and benchmarks ignore it).
pub trait Progress: Send + Sync {
    fn event(&self, e: ProgressEvent);
}

impl Progress for () {
    fn event(&self, _: ProgressEvent) {}
}

#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Samples solved in this invocation.
    pub solved: u64,
    /// Samples found already done in the log (resume).
    pub skipped: u64,
    pub results: Results,
}

/// Runs (or continues) `task` in `dir` over `dataset` (from [`Task::dataset`]): every
/// `(sample, epoch)` not yet in the log is solved and appended; then the whole log is
/// analysed into `results.json`. A multi-stage task ([`Task::stages`]) is run stage by
/// stage instead, continuing at its first unfinished stage.
pub async fn run(
    task: Arc<dyn Task>,
    dataset: Dataset,
    models: Models,
    dir: &RunDir,
    opts: &RunOptions,
    progress: Arc<dyn Progress>,
) -> Result<RunSummary, EngineError> {
    task.check_models(&models)?;
    let models = Arc::new(models);
    if let Some(stages) = task.stages() {
        drop(dataset);
        return run_stages(task, stages, models, dir, opts, progress).await;
    }
    let solver: Arc<dyn Solve> = Arc::new(TaskSolver(task.clone()));
    let paths = MapPaths {
        samples: dir.samples_path(),
        journal: dir.journal_path(),
    };
    let (solved, skipped) =
        map_samples(solver, dataset, models, &paths, opts, progress.clone()).await?;
    progress.event(ProgressEvent::Analyzing);
    let results = analyze(&*task, dir, opts.seed)?;
    Ok(RunSummary {
        solved,
        skipped,
        results,
    })
}

/// What solves one sample: a single-stage task or a map stage.
#[async_trait]
trait Solve: Send + Sync + 'static {
    async fn solve(&self, cx: &SampleContext, sample: &Sample) -> Result<Scores, SampleError>;
}

struct TaskSolver(Arc<dyn Task>);

#[async_trait]
impl Solve for TaskSolver {
    async fn solve(&self, cx: &SampleContext, sample: &Sample) -> Result<Scores, SampleError> {
        self.0.solve(cx, sample).await
    }
}

struct StageSolver(Arc<dyn MapStage>);

#[async_trait]
impl Solve for StageSolver {
    async fn solve(&self, cx: &SampleContext, sample: &Sample) -> Result<Scores, SampleError> {
        self.0.solve(cx, sample).await
    }
}

struct MapPaths {
    samples: std::path::PathBuf,
    journal: std::path::PathBuf,
}

async fn run_stages(
    task: Arc<dyn Task>,
    stages: Vec<Stage>,
    models: Arc<Models>,
    dir: &RunDir,
    opts: &RunOptions,
    progress: Arc<dyn Progress>,
) -> Result<RunSummary, EngineError> {
    let mut names = std::collections::BTreeSet::new();
    for s in &stages {
        if !names.insert(s.name().to_string()) {
            return Err(EngineError::Config(format!(
                "{}/{}: two stages are named `{}`",
                task.study(),
                task.name(),
                s.name()
            )));
        }
    }
    let view = RunView::new(dir.clone(), opts.seed).with_info(run_info(dir, opts.seed));
    let (mut solved, mut skipped) = (0, 0);
    let count = stages.len();
    for (index, stage) in stages.into_iter().enumerate() {
        let sd = dir.stage(stage.name())?;
        if sd.done()?.is_some() {
            progress.event(ProgressEvent::StageSkipped {
                name: stage.name().to_string(),
            });
            continue;
        }
        progress.event(ProgressEvent::StageStarted {
            name: stage.name().to_string(),
            kind: stage.kind(),
            index,
            count,
        });
        let artifacts = match &stage {
            Stage::Map(m) => {
                if let Some(what) = m.private() {
                    sd.mark_private(what)?;
                }
                let dataset = m.dataset(&view)?;
                let mut stage_models = models.clone();
                for (role, spec) in m.models(&view)? {
                    let lab = models.lab().ok_or_else(|| {
                        EngineError::Config(format!(
                            "stage {} binds `{role}` to {spec}, which needs weight access \
                             (not available to this run)",
                            m.name()
                        ))
                    })?;
                    let model = lab.open(&spec).map_err(|e| {
                        EngineError::Config(format!("stage {}: opening {spec}: {e}", m.name()))
                    })?;
                    stage_models = Arc::new(stage_models.rebind(&role, model));
                }
                let paths = MapPaths {
                    samples: sd.samples_path(),
                    journal: sd.journal_path(),
                };
                let solver: Arc<dyn Solve> = Arc::new(StageSolver(m.clone()));
                let (a, b) = map_samples(
                    solver,
                    dataset,
                    stage_models,
                    &paths,
                    opts,
                    progress.clone(),
                )
                .await?;
                solved += a;
                skipped += b;
                Vec::new()
            }
            Stage::Reduce(r) => {
                let (r, view, dir, progress) =
                    (r.clone(), view.clone(), dir.clone(), progress.clone());
                let name = r.name().to_string();
                tokio::task::spawn_blocking(move || {
                    let mut out = StageOutput::new(dir, name.clone(), progress);
                    r.reduce(&view, &mut out)
                        .map(|()| out.into_written())
                        .map_err(|e| EngineError::Analysis(format!("stage {name}: {e}")))
                })
                .await
                .map_err(|e| EngineError::Analysis(format!("stage did not finish: {e}")))??
            }
            Stage::Lab(l) => {
                let lab = models.lab().cloned().ok_or_else(|| {
                    EngineError::Config(format!(
                        "stage {} trains or reads a model's weights, which this run has no \
                         access to (a local model, or an API with fine-tuning, is needed)",
                        l.name()
                    ))
                })?;
                let (l, view, dir, progress) =
                    (l.clone(), view.clone(), dir.clone(), progress.clone());
                let name = l.name().to_string();
                tokio::task::spawn_blocking(move || {
                    let mut out = StageOutput::new(dir, name.clone(), progress);
                    l.run(&view, &*lab, &mut out)
                        .map(|()| out.into_written())
                        .map_err(|e| EngineError::Analysis(format!("stage {name}: {e}")))
                })
                .await
                .map_err(|e| EngineError::Analysis(format!("stage did not finish: {e}")))??
            }
        };
        let records = sd.records()?.count() as u64;
        dir.mark_stage_done(&StageDone {
            stage: stage.name().to_string(),
            finished_at: chrono::Utc::now().to_rfc3339(),
            records,
            artifacts,
        })?;
    }
    progress.event(ProgressEvent::Analyzing);
    let results = analyze(&*task, dir, opts.seed)?;
    Ok(RunSummary {
        solved,
        skipped,
        results,
    })
}

/// Solves every `(sample, epoch)` of `dataset` not yet recorded at `paths.samples`, at
/// most `opts.max_in_flight` at once, appending each record as it finishes. Returns
/// (solved now, found already done).
async fn map_samples(
    solver: Arc<dyn Solve>,
    dataset: Dataset,
    models: Arc<Models>,
    paths: &MapPaths,
    opts: &RunOptions,
    progress: Arc<dyn Progress>,
) -> Result<(u64, u64), EngineError> {
    let (writer, done) = SampleWriter::open(&paths.samples)?;
    let writer = Arc::new(Mutex::new(writer));
    let (journal, mut pending) = Journal::open(&paths.journal, &done)?;
    let journal = Arc::new(Mutex::new(journal));
    let epochs = opts.epochs.max(1);
    let total = dataset
        .planned(opts.limit, opts.limit_counts)
        .1
        .map(|t| t * epochs as u64);
    progress.event(ProgressEvent::Started {
        total,
        already_done: done.len() as u64,
    });

    let mut set = tokio::task::JoinSet::new();
    let mut solved = 0u64;
    let mut skipped = 0u64;
    let mut first_error: Option<EngineError> = None;
    let max_in_flight = opts.max_in_flight.max(1);
    let mut limit = Limiter::new(opts.limit, opts.limit_counts);
    // Set when a sample's call was refused under --max-cost: no new sample starts.
    let halt: Arc<Mutex<Option<String>>> = Arc::default();

    'data: for item in dataset.samples {
        let sample = match item {
            Ok(s) => Arc::new(s),
            Err(e) => {
                first_error = Some(e.into());
                break;
            }
        };
        match limit.admit(&sample) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                first_error = Some(e);
                break;
            }
        }
        for epoch in 1..=epochs {
            if done.contains(&(sample.id.clone(), epoch)) {
                skipped += 1;
                continue;
            }
            while set.len() >= max_in_flight {
                if let Some(e) = reap(set.join_next().await, &mut solved) {
                    first_error = Some(e);
                    break 'data;
                }
            }
            if halt.lock().unwrap().is_some() {
                break 'data;
            }
            let (solver, models, writer, progress, sample) = (
                solver.clone(),
                models.clone(),
                writer.clone(),
                progress.clone(),
                sample.clone(),
            );
            let steps = context::StepLog {
                journal: journal.clone(),
                recorded: take_steps(&mut pending, &sample.id, epoch),
            };
            let seed = opts.seed;
            let halt = halt.clone();
            set.spawn(async move {
                let rec =
                    match solve_one(&*solver, &models, &sample, epoch, seed, Some(steps)).await {
                        Solved::Record(rec) => rec,
                        Solved::Halted(why) => {
                            halt.lock().unwrap().get_or_insert(why);
                            return Ok(false);
                        }
                    };
                let ev = ProgressEvent::SampleDone {
                    failed: rec.error.is_some(),
                    calls: rec.transcript.calls().count() as u64,
                    cached_calls: rec
                        .transcript
                        .calls()
                        .filter(|c| c.response.as_ref().is_some_and(|r| r.meta.cached))
                        .count() as u64,
                    paid: rec.transcript.paid_usage(),
                };
                writer.lock().unwrap().append(&rec)?;
                progress.event(ev);
                Ok::<bool, LogError>(true)
            });
        }
    }
    while let Some(r) = set.join_next().await {
        if let Some(e) = reap(Some(r), &mut solved) {
            first_error.get_or_insert(e);
        }
    }
    writer.lock().unwrap().sync()?;
    if let Some(e) = first_error {
        return Err(e);
    }
    if let Some(reason) = halt.lock().unwrap().take() {
        return Err(EngineError::Stopped { reason, solved });
    }
    Ok((solved, skipped))
}

/// Takes the first N units (or, for old runs, samples) of a unit-major dataset.
struct Limiter {
    limit: Option<u64>,
    counts: LimitCounts,
    /// Samples admitted (sample counting) or units begun (unit counting).
    taken: u64,
    current: Option<String>,
    /// Units already finished, to catch a dataset that is not unit-major (a study bug:
    /// the first N units would not be a prefix).
    finished: std::collections::HashSet<String>,
}

impl Limiter {
    fn new(limit: Option<u64>, counts: LimitCounts) -> Self {
        Self {
            limit,
            counts,
            taken: 0,
            current: None,
            finished: Default::default(),
        }
    }

    /// Whether `s` is within the limit; `Ok(false)` ends the dataset.
    fn admit(&mut self, s: &Sample) -> Result<bool, EngineError> {
        let Some(limit) = self.limit else {
            return Ok(true);
        };
        match self.counts {
            LimitCounts::Samples => {
                self.taken += 1;
                Ok(self.taken <= limit)
            }
            LimitCounts::Units => {
                let unit = s.unit_key();
                if self.current.as_deref() == Some(unit) {
                    return Ok(true);
                }
                if self.finished.contains(unit) {
                    return Err(EngineError::Config(format!(
                        "the dataset lists unit `{unit}` in two places (sample {}): a study's \
                         samples of one unit must come together for --limit to count units",
                        s.id
                    )));
                }
                if self.taken == limit {
                    return Ok(false);
                }
                self.taken += 1;
                if let Some(prev) = self.current.replace(unit.to_string()) {
                    self.finished.insert(prev);
                }
                Ok(true)
            }
        }
    }
}

/// Runs `task` from its start in a new run directory under `parent`, with `models` by
/// role (defaults filled, checked against the task's roles) — the run directory, its
/// `run.json` and the engine run that `shammie run` makes, for callers that have no
/// command line (study tests, scripts). Returns the directory and the summary.
pub async fn run_new(
    task: Arc<dyn Task>,
    models: BTreeMap<String, Arc<dyn Model>>,
    parent: &std::path::Path,
    opts: &RunOptions,
) -> Result<(RunDir, RunSummary), EngineError> {
    let path = format!("{}/{}", task.study(), task.name());
    let models = Models::new(models).resolve(&task.roles(), &path)?;
    task.check_models(&models)?;
    let dataset = task.dataset()?;
    let meta = new_meta(&*task, &models, opts)?;
    let dir = RunDir::create(parent, &meta)?;
    let summary = run(task, dataset, models, &dir, opts, Arc::new(())).await?;
    Ok((dir, summary))
}

/// What `run.json` records for a new run of `task` with `models` and `opts`: the task,
/// its resolved config, the models by role, the seed, epochs and limit, and the digest of
/// every input the task reads (so `resume` can refuse changed data). The `--set` options
/// as given and the cache are left empty for the caller to fill; `max_connections` is
/// the samples in flight.
pub fn new_meta(
    task: &dyn Task,
    models: &Models,
    opts: &RunOptions,
) -> Result<shammie_log::RunMeta, EngineError> {
    let mut inputs = BTreeMap::new();
    for p in task.inputs() {
        inputs.insert(p.display().to_string(), shammie_log::input_digest(&p)?);
    }
    Ok(shammie_log::RunMeta {
        schema_version: SCHEMA_VERSION,
        shammie_version: env!("CARGO_PKG_VERSION").into(),
        study: task.study().into(),
        task: task.name().into(),
        models: models
            .iter()
            .map(|(r, m)| (r.clone(), m.name().to_string()))
            .collect(),
        options: BTreeMap::new(),
        config: task.config(),
        seed: opts.seed,
        epochs: opts.epochs,
        limit: opts.limit,
        limit_counts_recorded: opts.limit.map(|_| opts.limit_counts),
        max_connections: opts.max_in_flight,
        created_at: chrono::Utc::now().to_rfc3339(),
        cache: None,
        inputs,
        batch: None,
    })
}

fn take_steps(pending: &mut PendingSteps, id: &str, epoch: u32) -> Vec<shammie_core::ToolRecord> {
    if pending.is_empty() {
        return Vec::new();
    }
    pending.remove(&(id.to_string(), epoch)).unwrap_or_default()
}

/// Counts a finished sample task (`true`: its record was written; `false`: left for
/// resume), or the error that ends the run.
fn reap(
    r: Option<Result<Result<bool, LogError>, tokio::task::JoinError>>,
    solved: &mut u64,
) -> Option<EngineError> {
    match r? {
        Ok(Ok(written)) => {
            *solved += u64::from(written);
            None
        }
        Ok(Err(e)) => Some(e.into()),
        // Panics are caught inside the task; this is a cancelled runtime.
        Err(e) => Some(EngineError::Analysis(format!(
            "sample task did not finish: {e}"
        ))),
    }
}

/// What solving one sample gave: its record, or a stop under `--max-cost` (not recorded).
enum Solved {
    Record(SampleRecord),
    Halted(String),
}

async fn solve_one(
    task: &dyn Solve,
    models: &Models,
    sample: &Sample,
    epoch: u32,
    seed: u64,
    steps: Option<context::StepLog>,
) -> Solved {
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let t0 = Instant::now();
    let mut cx = SampleContext::new(models, &sample.id, epoch, seed);
    if let Some(steps) = steps {
        cx = cx.with_steps(steps);
    }
    let outcome = std::panic::AssertUnwindSafe(task.solve(&cx, sample))
        .catch_unwind()
        .await;
    let (scores, error) = match outcome {
        Ok(Ok(scores)) => (scores, None),
        Ok(Err(e)) => (Scores::new(), Some(e.to_string())),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            (
                Scores::new(),
                Some(format!("internal error (bug in the study): {msg}")),
            )
        }
    };
    if let Some(why) = cx.halted() {
        return Solved::Halted(why);
    }
    let transcript = cx.into_transcript();
    Solved::Record(SampleRecord {
        id: sample.id.clone(),
        epoch,
        input: sample.input.clone(),
        usage: transcript.usage(),
        transcript,
        scores,
        error,
        started_at,
        duration_ms: t0.elapsed().as_millis() as u64,
    })
}

/// What the analysis of the run in `dir` is told about it: the seed, and from its
/// `run.json` (when readable) the models per role, the epochs and the creation date.
pub fn run_info(dir: &RunDir, seed: u64) -> RunInfo {
    let mut info = RunInfo::seed(seed);
    if let Ok((_, meta)) = RunDir::open(dir.path()) {
        info.models = meta.models;
        info.epochs = meta.epochs;
        info.date = meta.created_at.chars().take(10).collect();
    }
    info
}

/// Re-runs the task's analysis over the log in `dir` and writes `results.json`.
/// For a multi-stage task the totals cover every stage's records. Every table gets the
/// run's caption (models, samples, seed, date) unless the study wrote its own.
pub fn analyze(task: &dyn Task, dir: &RunDir, seed: u64) -> Result<Results, EngineError> {
    let info = run_info(dir, seed);
    let mut totals = Totals::default();
    let analysis = if let Some(stages) = task.stages() {
        for s in &stages {
            for r in dir.stage(s.name())?.records()? {
                totals.add(&r?);
            }
        }
        task.analyze_stages(&RunView::new(dir.clone(), seed).with_info(info.clone()))
            .map_err(EngineError::Analysis)?
    } else {
        let mut read_error: Option<LogError> = None;
        let analysis = {
            let mut records = dir.records()?.map_while(|r| match r {
                Ok(r) => Some(r),
                Err(e) => {
                    read_error = Some(e);
                    None
                }
            });
            let mut counted = std::iter::from_fn(|| {
                let r = records.next()?;
                totals.add(&r);
                Some(r)
            });
            let analysis = task
                .analyze(&mut counted, &info)
                .map_err(EngineError::Analysis)?;
            // Drain whatever the analysis did not read so the totals cover the whole log.
            counted.for_each(drop);
            analysis
        };
        if let Some(e) = read_error {
            return Err(e.into());
        }
        analysis
    };
    let mut files = Vec::with_capacity(analysis.files.len());
    for f in &analysis.files {
        dir.write_file(&f.path, &f.content)?;
        files.push(ReportFileEntry {
            path: f.path.clone(),
            description: f.description.clone(),
        });
    }
    let mut tables = analysis.tables;
    let samples = if totals.failed > 0 {
        format!("{} samples ({} failed)", totals.samples, totals.failed)
    } else {
        format!("{} samples", totals.samples)
    };
    for t in &mut tables {
        if t.caption.is_empty() {
            t.caption = info.caption(&samples);
        }
    }
    let results = Results {
        schema_version: SCHEMA_VERSION,
        study: task.study().to_string(),
        task: task.name().to_string(),
        tables,
        files,
        totals,
    };
    dir.write_results(&results)?;
    Ok(results)
}
