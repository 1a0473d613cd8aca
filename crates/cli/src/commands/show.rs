//! `shammie show RUN_DIR`: the results table of a run (re-analysed when the run has no
//! results yet, e.g. it was interrupted), with a line saying whether the run is complete
//! and how to continue it; `--samples [ID…]` prints readable transcripts instead.

use std::io::Write;
use std::path::PathBuf;

use shammie_core::SampleRecord;
use shammie_engine::Task;
use shammie_log::{RunDir, RunMeta};

use crate::commands::run::print_outcome;
use crate::{transcript, Failure};

#[derive(clap::Args)]
pub(crate) struct Args {
    pub dir: PathBuf,
    /// Machine-readable JSON on stdout (with run.json as `run`).
    #[arg(long)]
    pub json: bool,
    /// Recompute the analysis from samples.jsonl even if results.json exists.
    #[arg(long)]
    pub reanalyze: bool,
    /// Print the transcripts of the samples (all, or those whose id is ID or starts with
    /// `ID/`, e.g. a question with all its strategies) instead of the results.
    #[arg(long, num_args = 0.., value_name = "ID")]
    pub samples: Option<Vec<String>>,
    /// With --samples: only the samples that failed.
    #[arg(long, requires = "samples")]
    pub errors: bool,
    /// With --samples: only the samples whose score KEY equals VALUE (a number, true,
    /// false, null or text; repeatable, all must hold), e.g. --where strategy=factored.
    #[arg(long = "where", value_name = "KEY=VALUE", requires = "samples")]
    pub filters: Vec<String>,
    /// With --samples: every message of each prompt (default: the last one).
    #[arg(long, requires = "samples")]
    pub full: bool,
}

/// How much of a run's planned work is in its log.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Completion {
    pub done: u64,
    pub total: u64,
    /// What is counted: samples, or the stages of a multi-stage task.
    pub unit: &'static str,
}

impl Completion {
    pub(crate) fn complete(&self) -> bool {
        self.done >= self.total
    }
}

/// Samples recorded against samples planned (the dataset under the run's limit, × epochs),
/// for a single-stage task whose dataset size is known; for a multi-stage task, the
/// stages done against its stages.
pub(crate) fn completion(
    task: &dyn Task,
    dir: &RunDir,
    meta: &RunMeta,
) -> anyhow::Result<Option<Completion>> {
    if let Some(stages) = task.stages() {
        let mut done = 0;
        for s in &stages {
            if dir.stage(s.name())?.done()?.is_some() {
                done += 1;
            }
        }
        return Ok(Some(Completion {
            done,
            total: stages.len() as u64,
            unit: "stages",
        }));
    }
    let Some(planned) = task.dataset()?.planned(meta.limit, meta.limit_counts()).1 else {
        return Ok(None);
    };
    let mut done = 0;
    for r in dir.records()? {
        r?;
        done += 1;
    }
    Ok(Some(Completion {
        done,
        total: planned * meta.epochs.max(1) as u64,
        unit: "samples",
    }))
}

pub(crate) fn main(a: Args) -> Result<u8, Failure> {
    let (dir, meta) = RunDir::open(&a.dir)?;
    if meta.study == shammie_train::run::STUDY {
        return crate::commands::train::show(&a.dir);
    }
    if let Some(ids) = &a.samples {
        return show_samples(&a, &dir, ids);
    }
    let task = || -> anyhow::Result<std::sync::Arc<dyn Task>> {
        let info = shammie_studies::find(&format!("{}/{}", meta.study, meta.task))?;
        Ok(info.build(meta.options.clone())?)
    };
    let results = match (a.reanalyze, dir.read_results()?) {
        (false, Some(r)) => r,
        _ => shammie_engine::analyze(&*task()?, &dir, meta.seed)?,
    };
    // Whether the run is complete needs its data; a run whose data is gone (or whose
    // task this version no longer has) is still shown, without the status line.
    let status = task()
        .and_then(|t| completion(&*t, &dir, &meta))
        .unwrap_or_else(|e| {
            tracing::debug!("completion of {} unknown: {e:#}", dir.path().display());
            None
        });
    if a.json {
        let v = serde_json::json!({
            "run_dir": dir.path(),
            "run": meta,
            "complete": status.map(|c| c.complete()),
            "progress": status.map(|c| serde_json::json!({"done": c.done, "total": c.total})),
            "results": results,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    if let Some(c) = status.filter(|c| !c.complete()) {
        println!(
            "incomplete: {} of {} {}. Continue with: shammie resume {}\n",
            c.done,
            c.total,
            c.unit,
            dir.path().display()
        );
    }
    print_outcome(dir.path(), &results, false)?;
    Ok(0)
}

fn show_samples(a: &Args, dir: &RunDir, ids: &[String]) -> Result<u8, Failure> {
    let filters = a
        .filters
        .iter()
        .map(|f| {
            let (k, v) = f
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--where {f}: expected KEY=VALUE"))?;
            Ok((k.to_string(), v.to_string()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let keep = |r: &SampleRecord| {
        (ids.is_empty()
            || ids
                .iter()
                .any(|i| r.id == *i || r.id.starts_with(&format!("{i}/"))))
            && (!a.errors || r.error.is_some())
            && filters
                .iter()
                .all(|(k, v)| r.scores.get(k).is_some_and(|s| transcript::matches(s, v)))
    };
    let mut shown = 0u64;
    let mut all = Vec::new();
    let mut out = std::io::stdout().lock();
    for r in dir.records()? {
        let r = r?;
        if !keep(&r) {
            continue;
        }
        shown += 1;
        if a.json {
            all.push(r);
        } else if let Err(e) = out.write_all(transcript::render(&r, a.full).as_bytes()) {
            // A reader that stopped early (`| head`) is not an error.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(0);
            }
            return Err(anyhow::Error::new(e).into());
        }
    }
    drop(out);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else if shown == 0 {
        eprintln!("no sample matches");
    }
    Ok(0)
}
