//! Multi-stage tasks: map over samples with model calls, reduce (cluster, fit, train)
//! into artifacts, then map again over what the reduction produced.
//!
//! A task that returns stages from [`crate::Task::stages`] is run stage by stage. Each
//! stage has its own folder (`stages/NAME/`): a map stage records its samples and tool
//! steps there exactly like a single-stage run (so it resumes sample by sample); a
//! reduce stage writes artifacts through [`StageOutput`] (hashed, never half-written).
//! A stage is marked done only after everything it wrote is in place, and a stage
//! marked done is never run again: `resume` continues at the first unfinished stage.
//! A reduce stage that was killed runs again from its start, so it must be a
//! deterministic function of the earlier stages and the run's seed.
//!
//! The analysis of a multi-stage task reads every stage through a [`RunView`], which
//! has no models: analysis never calls a model.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use shammie_core::{RunInfo, Sample, Scores};
use shammie_log::{ArtifactInfo, ArtifactWriter, LogError, Records, RunDir};

use crate::lab::Lab;
use crate::{DataError, Dataset, Progress, ProgressEvent, SampleContext, SampleError};

/// One stage of a multi-stage task.
#[derive(Clone)]
pub enum Stage {
    /// Model calls over samples (records in `stages/NAME/samples.jsonl`).
    Map(Arc<dyn MapStage>),
    /// Computation over earlier stages into artifacts (no model calls).
    Reduce(Arc<dyn ReduceStage>),
    /// Work on model weights through the run's [`Lab`]: fine-tuning, activations.
    Lab(Arc<dyn LabStage>),
}

impl Stage {
    pub fn name(&self) -> &str {
        match self {
            Stage::Map(m) => m.name(),
            Stage::Reduce(r) => r.name(),
            Stage::Lab(l) => l.name(),
        }
    }
    pub fn kind(&self) -> &'static str {
        match self {
            Stage::Map(_) => "map",
            Stage::Reduce(_) => "reduce",
            Stage::Lab(_) => "lab",
        }
    }
}

/// A stage that solves samples with models, like a single-stage task.
#[async_trait]
pub trait MapStage: Send + Sync + 'static {
    /// Lower-case letters, digits, `-`, `_` (it names the stage's folder).
    fn name(&self) -> &str;
    /// The stage's samples, which may come from earlier stages' records and artifacts.
    fn dataset(&self, run: &RunView) -> Result<Dataset, DataError>;
    async fn solve(&self, cx: &SampleContext, sample: &Sample) -> Result<Scores, SampleError>;
    /// What the stage's records hold when they are private (the raw material a study
    /// analyses but never shows, e.g. Clio's conversations): the stage is marked so that
    /// the viewer never shows its records. `None` (the default): not private.
    fn private(&self) -> Option<&str> {
        None
    }
    /// Roles this stage binds to other models than the run's, as role → spec (e.g. the
    /// `target` role to the model a lab stage trained). Opened through the run's [`Lab`].
    fn models(&self, _run: &RunView) -> Result<BTreeMap<String, String>, DataError> {
        Ok(BTreeMap::new())
    }
}

/// A stage that works on model weights through the run's [`Lab`] (fine-tuning, reading
/// activations). Runs on a blocking thread. Like a reduction, a killed lab stage runs
/// again from its start, but the lab resumes its own long work (training from its last
/// checkpoint, an API job by its id) from the stage's work folder.
pub trait LabStage: Send + Sync + 'static {
    fn name(&self) -> &str;
    fn run(&self, run: &RunView, lab: &dyn Lab, out: &mut StageOutput) -> Result<(), String>;
}

/// A stage that computes artifacts from earlier stages (clustering, fitting, training).
/// Runs on a blocking thread; never calls a model.
pub trait ReduceStage: Send + Sync + 'static {
    fn name(&self) -> &str;
    /// Reads earlier stages through `run`, writes this stage's artifacts through `out`.
    /// Must be deterministic given its inputs and `run.seed()`: a killed reduction runs
    /// again from the start.
    fn reduce(&self, run: &RunView, out: &mut StageOutput) -> Result<(), String>;
}

/// A read-only view of a run: the records of its stages and its artifacts.
#[derive(Clone)]
pub struct RunView {
    dir: RunDir,
    seed: u64,
    info: RunInfo,
}

impl RunView {
    pub fn new(dir: RunDir, seed: u64) -> Self {
        Self {
            dir,
            seed,
            info: RunInfo::seed(seed),
        }
    }
    /// The same view, described by `info` (models, date) for the analysis' captions.
    pub fn with_info(mut self, info: RunInfo) -> Self {
        self.seed = info.seed;
        self.info = info;
        self
    }
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// The run's description: seed, models per role, date.
    pub fn info(&self) -> &RunInfo {
        &self.info
    }
    /// The records of stage `stage`, streamed.
    pub fn records(&self, stage: &str) -> Result<Records, LogError> {
        self.dir.stage(stage)?.records()
    }
    /// Artifact `name` whole, checked against the manifest's digest.
    pub fn artifact(&self, name: &str) -> Result<Vec<u8>, LogError> {
        self.dir.read_artifact(name)
    }
    /// Artifact `name` as a file, for streaming large artifacts.
    pub fn open_artifact(&self, name: &str) -> Result<(ArtifactInfo, File), LogError> {
        self.dir.open_artifact(name)
    }
    /// Where artifact `name` lives on disk (to hand a file to a lab).
    pub fn artifact_path(&self, name: &str) -> Result<PathBuf, LogError> {
        self.dir.artifact_path(name)
    }
    /// Every artifact listed in the run's manifest.
    pub fn artifacts(&self) -> Result<Vec<ArtifactInfo>, LogError> {
        Ok(self.dir.artifacts()?.into_values().collect())
    }
}

/// Where a reduce stage writes its artifacts, and reports progress.
pub struct StageOutput {
    dir: RunDir,
    stage: String,
    written: Vec<ArtifactInfo>,
    progress: Arc<dyn Progress>,
}

impl StageOutput {
    pub(crate) fn new(dir: RunDir, stage: String, progress: Arc<dyn Progress>) -> Self {
        Self {
            dir,
            stage,
            written: Vec::new(),
            progress,
        }
    }

    /// Starts artifact `name`; pass the writer to [`StageOutput::commit`] when done.
    pub fn create(&mut self, name: &str) -> Result<ArtifactWriter, String> {
        self.dir
            .create_artifact(name, &self.stage)
            .map_err(|e| e.to_string())
    }

    /// Puts a finished artifact in place and lists it.
    pub fn commit(&mut self, w: ArtifactWriter) -> Result<ArtifactInfo, String> {
        let info = w.finish().map_err(|e| e.to_string())?;
        self.written.push(info.clone());
        Ok(info)
    }

    /// Writes a whole artifact at once.
    pub fn write(&mut self, name: &str, bytes: &[u8]) -> Result<ArtifactInfo, String> {
        use std::io::Write;
        let mut w = self.create(name)?;
        w.write_all(bytes)
            .map_err(|e| format!("artifact {name}: {e}"))?;
        self.commit(w)
    }

    /// The stage's own scratch folder (`stages/NAME/work/`, created): state a lab keeps
    /// to resume long work, never read by the analysis.
    pub fn work_dir(&self) -> Result<PathBuf, String> {
        let p = self
            .dir
            .path()
            .join("stages")
            .join(&self.stage)
            .join("work");
        std::fs::create_dir_all(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(p)
    }

    /// Where artifact `name` lives on disk.
    pub fn artifact_path(&self, name: &str) -> Result<PathBuf, String> {
        self.dir.artifact_path(name).map_err(|e| e.to_string())
    }

    /// The stage's name.
    pub fn stage(&self) -> &str {
        &self.stage
    }

    /// Progress of a long reduction (`done` of `total` units).
    pub fn progress(&self, done: u64, total: u64) {
        self.progress
            .event(ProgressEvent::StageProgress { done, total });
    }

    pub(crate) fn into_written(self) -> Vec<ArtifactInfo> {
        self.written
    }
}
