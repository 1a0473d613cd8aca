//! A training run on disk, laid out like a study run (`shammie_log::RunDir`):
//!
//! - `run.json`: study `train`, task `sft`, the base model, the full [`SftOptions`] as
//!   `config`, the seed, and the data file's SHA-256 under `inputs`;
//! - `train.jsonl`: one [`StepRecord`] per optimizer step (loss, gradient norm, learning
//!   rate, trained tokens), appended with one write per line;
//! - `checkpoints/step-NNNNNN/`: the full trainer state every `checkpoint_every` steps
//!   and at the end (`Trainer::save_state`), written into a temporary folder and renamed
//!   into place, so a checkpoint is whole or absent;
//! - `artifacts/adapter/`: the final PEFT adapter, listed in `artifacts/manifest.json`;
//! - `report/loss.svg`: the training curve.
//!
//! Resuming ([`train`] on an opened run) restores the last checkpoint, drops the
//! `train.jsonl` records of the steps after it, and continues: the order RNG, the
//! optimizer moments and the factors are restored exactly, so the losses are bit for bit
//! those of an uninterrupted run. The data file must be unchanged (its digest is checked).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use shammie_local::white_box::WhiteBox;
use shammie_log::{RunDir, RunMeta};

use crate::pm::{save_pm, PairExample, PmInfo, RewardHead};
use crate::sft::{Example, StepReport, TrainConfig, Trainer};
use crate::TrainError;

pub const STUDY: &str = "train";
pub const TASK: &str = "sft";
/// The task of a preference-model training run.
pub const PM_TASK: &str = "pm";
/// A preference model's folder under `artifacts/` (`crate::pm`'s layout).
pub const PM_ARTIFACT: &str = "pm";
pub const STEPS_FILE: &str = "train.jsonl";
pub const CHECKPOINTS_DIR: &str = "checkpoints";
/// The adapter's folder under `artifacts/`.
pub const ADAPTER_ARTIFACT: &str = "adapter";
pub const LOSS_PLOT: &str = "report/loss.svg";

/// Everything a training run is made from (stored in `run.json`'s `config`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SftOptions {
    /// The base model's spec (`local:gemma-3-270m`, `local:/path/model.gguf`).
    pub model: String,
    /// The chat-format JSONL file.
    pub data: PathBuf,
    pub train: TrainConfig,
    /// Checkpoint after every this many steps (0: only at the end).
    pub checkpoint_every: usize,
    /// What is trained: a language model on chat data (`sft`, the default, and what
    /// runs written before preference models read as) or a preference model on
    /// preference pairs (`preference`, `crate::pm`).
    #[serde(default)]
    pub objective: Objective,
}

/// What a training run optimises.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Objective {
    /// Next-token loss on assistant tokens (`crate::sft`); data: chat JSONL.
    #[default]
    Sft,
    /// Pairwise preference loss on a reward head (`crate::pm`); data: preference JSONL.
    Preference,
}

impl Objective {
    /// The run's task name in `run.json`.
    pub fn task(self) -> &'static str {
        match self {
            Objective::Sft => TASK,
            Objective::Preference => PM_TASK,
        }
    }
}

/// One line of `train.jsonl`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepRecord {
    pub step: usize,
    pub loss: f64,
    pub grad_norm: f64,
    pub lr: f64,
    pub tokens: usize,
    /// Preference models: the step's pairwise accuracy (`StepReport::accuracy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f64>,
}

impl From<&StepReport> for StepRecord {
    fn from(r: &StepReport) -> Self {
        StepRecord {
            step: r.step,
            loss: r.loss,
            grad_norm: r.grad_norm,
            lr: r.lr,
            tokens: r.tokens,
            accuracy: r.accuracy,
        }
    }
}

fn log_err(e: shammie_log::LogError) -> TrainError {
    TrainError::Io {
        path: "run directory".into(),
        why: e.to_string(),
    }
}

fn io(p: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |e| TrainError::Io {
        path: p.display().to_string(),
        why: e.to_string(),
    }
}

/// A training run directory.
pub struct SftRun {
    pub dir: RunDir,
    pub opts: SftOptions,
}

impl SftRun {
    /// Creates a run directory under `parent` for `opts` (the data file is digested).
    pub fn create(parent: &Path, opts: SftOptions) -> Result<Self, TrainError> {
        let digest = shammie_log::input_digest(&opts.data).map_err(log_err)?;
        let meta = RunMeta {
            schema_version: shammie_core::SCHEMA_VERSION,
            shammie_version: env!("CARGO_PKG_VERSION").into(),
            study: STUDY.into(),
            task: opts.objective.task().into(),
            models: BTreeMap::from([("base".to_string(), opts.model.clone())]),
            options: BTreeMap::new(),
            config: serde_json::to_value(&opts).expect("plain values"),
            seed: opts.train.seed,
            epochs: 1,
            limit: None,
            limit_counts_recorded: None,
            max_connections: 1,
            created_at: chrono::Utc::now().to_rfc3339(),
            cache: None,
            inputs: BTreeMap::from([(opts.data.display().to_string(), digest)]),
            batch: None,
        };
        let dir = RunDir::create(parent, &meta).map_err(log_err)?;
        Ok(SftRun { dir, opts })
    }

    /// Opens an existing training run; its data file must still have the recorded digest.
    pub fn open(path: &Path) -> Result<Self, TrainError> {
        let (dir, meta) = RunDir::open(path).map_err(log_err)?;
        if meta.study != STUDY || (meta.task != TASK && meta.task != PM_TASK) {
            return Err(TrainError::Config(format!(
                "{} is a `{}/{}` run, not a training run",
                path.display(),
                meta.study,
                meta.task
            )));
        }
        let opts: SftOptions = serde_json::from_value(meta.config)
            .map_err(|e| TrainError::Config(format!("{}/run.json: config: {e}", path.display())))?;
        if opts.objective.task() != meta.task {
            return Err(TrainError::Config(format!(
                "{}/run.json: task `{}` but objective `{}`",
                path.display(),
                meta.task,
                opts.objective.task()
            )));
        }
        let key = opts.data.display().to_string();
        if let Some(want) = meta.inputs.get(&key) {
            let got = shammie_log::input_digest(&opts.data).map_err(log_err)?;
            if &got != want {
                return Err(TrainError::Data(format!(
                    "{key} changed since the run started (sha256 {got}, recorded {want}); \
                     a resumed run must train on the same data"
                )));
            }
        }
        Ok(SftRun { dir, opts })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The newest complete checkpoint: `(steps done, folder)`.
    pub fn latest_checkpoint(&self) -> Result<Option<(usize, PathBuf)>, TrainError> {
        let root = self.path().join(CHECKPOINTS_DIR);
        if !root.exists() {
            return Ok(None);
        }
        let mut best: Option<(usize, PathBuf)> = None;
        for e in std::fs::read_dir(&root).map_err(io(&root))? {
            let e = e.map_err(io(&root))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(n) = name.strip_prefix("step-").and_then(|n| n.parse().ok()) {
                if best.as_ref().is_none_or(|(b, _)| n > *b) {
                    best = Some((n, e.path()));
                }
            }
        }
        Ok(best)
    }

    /// Writes `tr`'s state as `checkpoints/step-NNNNNN` (temporary folder, then rename).
    pub fn checkpoint(&self, tr: &Trainer) -> Result<PathBuf, TrainError> {
        let root = self.path().join(CHECKPOINTS_DIR);
        let name = format!("step-{:06}", tr.steps_done());
        let tmp = root.join(format!(".{name}.tmp"));
        let target = root.join(&name);
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        tr.save_state(&tmp)?;
        for f in std::fs::read_dir(&tmp).map_err(io(&tmp))? {
            let p = f.map_err(io(&tmp))?.path();
            std::fs::File::open(&p)
                .and_then(|f| f.sync_all())
                .map_err(io(&p))?;
        }
        if target.exists() {
            std::fs::remove_dir_all(&target).map_err(io(&target))?;
        }
        std::fs::rename(&tmp, &target).map_err(io(&target))?;
        Ok(target)
    }

    /// The records of `train.jsonl` (a torn last line, from a killed process, is skipped).
    pub fn steps(&self) -> Result<Vec<StepRecord>, TrainError> {
        let p = self.path().join(STEPS_FILE);
        if !p.exists() {
            return Ok(Vec::new());
        }
        let text = std::fs::read_to_string(&p).map_err(io(&p))?;
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }

    /// The final adapter's folder (for a preference model, the PM folder, which holds
    /// the adapter with the head).
    pub fn adapter_path(&self) -> PathBuf {
        self.path()
            .join(shammie_log::ARTIFACTS_DIR)
            .join(self.artifact())
    }

    fn artifact(&self) -> &'static str {
        match self.opts.objective {
            Objective::Sft => ADAPTER_ARTIFACT,
            Objective::Preference => PM_ARTIFACT,
        }
    }
}

/// How [`train`] ended.
pub enum Outcome {
    /// All steps done; the adapter is in place.
    Finished(Trainer),
    /// `on_step` asked to stop; the run continues from its last checkpoint.
    Stopped(Trainer),
}

/// Trains (or continues training) `run` on `data` over `wb`, calling `on_step` after
/// every step (return `false` to stop there, as an interruption would). Finishing writes
/// a last checkpoint, the adapter artifact and `report/loss.svg`.
pub fn train(
    run: &SftRun,
    wb: &mut WhiteBox,
    data: &[Example],
    on_step: impl FnMut(&StepReport) -> bool,
) -> Result<Outcome, TrainError> {
    if run.opts.objective != Objective::Sft {
        return Err(TrainError::Config(
            "a preference-model run trains with `train_pm`".into(),
        ));
    }
    let tr = Trainer::new(wb, run.opts.train.clone())?;
    drive(
        run,
        wb,
        tr,
        |tr, wb| tr.step(wb, data),
        on_step,
        |tr| finish(run, tr, None),
    )
}

/// [`train`] for a preference model (`crate::pm`) on `data`: the same checkpoints,
/// resume and log (each step's pairwise accuracy besides its loss); finishing writes the
/// PM folder (adapter, head, `pm.json`) as the `pm/` artifact.
pub fn train_pm(
    run: &SftRun,
    wb: &mut WhiteBox,
    data: &[PairExample],
    on_step: impl FnMut(&StepReport) -> bool,
) -> Result<Outcome, TrainError> {
    if run.opts.objective != Objective::Preference {
        return Err(TrainError::Config(
            "a supervised run trains with `train`".into(),
        ));
    }
    let head = RewardHead::init(wb, run.opts.train.lora.seed)?;
    let tr = Trainer::with_extra(wb, run.opts.train.clone(), vec![head.w.clone()])?;
    let info = PmInfo {
        base: run.opts.model.clone(),
        hidden: wb.cfg.hidden,
        reads: "the final hidden state at the last token of prompt + reply + end of turn".into(),
        pairs: data.len(),
        steps: run.opts.train.steps,
    };
    drive(
        run,
        wb,
        tr,
        |tr, wb| tr.step_pairs(wb, &head, data),
        on_step,
        |tr| finish(run, tr, Some((&head, &info))),
    )
}

/// The loop both objectives share: restore, log, checkpoint, finish.
fn drive(
    run: &SftRun,
    wb: &mut WhiteBox,
    mut tr: Trainer,
    mut step: impl FnMut(&mut Trainer, &WhiteBox) -> Result<StepReport, TrainError>,
    mut on_step: impl FnMut(&StepReport) -> bool,
    done: impl FnOnce(&Trainer) -> Result<(), TrainError>,
) -> Result<Outcome, TrainError> {
    let cfg = run.opts.train.clone();
    if let Some((_, ck)) = run.latest_checkpoint()? {
        tr.load_state(&ck)?;
    }
    // Keep the records of the steps the checkpoint covers, as written (re-serialising a
    // parsed f64 need not give the same digits); later ones are redone.
    let lp = run.path().join(STEPS_FILE);
    let old = if lp.exists() {
        std::fs::read_to_string(&lp).map_err(io(&lp))?
    } else {
        String::new()
    };
    let mut text = String::new();
    for l in old.lines() {
        if let Ok(r) = serde_json::from_str::<StepRecord>(l) {
            if r.step < tr.steps_done() {
                text.push_str(l);
                text.push('\n');
            }
        }
    }
    run.dir
        .write_file(STEPS_FILE, text.as_bytes())
        .map_err(log_err)?;
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(&lp)
        .map_err(io(&lp))?;
    while tr.steps_done() < cfg.steps {
        let r = step(&mut tr, wb)?;
        let mut line = serde_json::to_string(&StepRecord::from(&r)).expect("plain values");
        line.push('\n');
        log.write_all(line.as_bytes()).map_err(io(&lp))?;
        let every = run.opts.checkpoint_every;
        if every > 0 && tr.steps_done().is_multiple_of(every) {
            log.sync_all().map_err(io(&lp))?;
            run.checkpoint(&tr)?;
        }
        if !on_step(&r) {
            return Ok(Outcome::Stopped(tr));
        }
    }
    log.sync_all().map_err(io(&lp))?;
    let last = run.latest_checkpoint()?.map(|(n, _)| n);
    if last != Some(tr.steps_done()) {
        run.checkpoint(&tr)?;
    }
    done(&tr)?;
    Ok(Outcome::Finished(tr))
}

/// Writes the adapter (or, with a head, the PM folder) artifact and the loss curve.
fn finish(
    run: &SftRun,
    tr: &Trainer,
    pm: Option<(&RewardHead, &PmInfo)>,
) -> Result<(), TrainError> {
    let tmp = run.path().join(".adapter.tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    let mut files = vec!["adapter_config.json", "adapter_model.safetensors"];
    match pm {
        None => tr.lora.save_peft(&tmp, &run.opts.model)?,
        Some((head, info)) => {
            save_pm(&tmp, &tr.lora, head, info)?;
            files.extend([crate::pm::HEAD_FILE, crate::pm::INFO_FILE]);
        }
    }
    let folder = run.artifact();
    for name in files {
        let src = tmp.join(name);
        let bytes = std::fs::read(&src).map_err(io(&src))?;
        let mut w = run
            .dir
            .create_artifact(&format!("{folder}/{name}"), run.opts.objective.task())
            .map_err(log_err)?;
        w.write_all(&bytes).map_err(io(&src))?;
        w.finish().map_err(log_err)?;
    }
    std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    let steps = run.steps()?;
    let y = match pm {
        None => "loss per trained token",
        Some(_) => "loss per pair",
    };
    let chart = shammie_plot::LineChart::new("Training loss")
        .x_label("step")
        .y_label(y)
        .markers(steps.len() <= 50)
        .series("loss", steps.iter().map(|r| (r.step as f64, r.loss)));
    run.dir
        .write_file(LOSS_PLOT, chart.to_svg().as_bytes())
        .map_err(log_err)?;
    Ok(())
}
