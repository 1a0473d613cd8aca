//! `shammie resume RUN_DIR`: finish an interrupted run. Samples already in the log are
//! skipped; calls already answered come from the response cache.

use std::path::PathBuf;

use shammie_log::{CacheUse, RunDir};

use crate::commands::run::{execute, specs_from_meta};
use crate::setup::{self, BatchArgs, CallArgs};
use crate::Failure;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The run directory to continue.
    pub dir: PathBuf,
    /// Solve the samples that failed (e.g. during an outage) again.
    #[arg(long)]
    pub retry_failed: bool,
    #[command(flatten)]
    pub call: CallArgs,
    /// A `--batch` run resumes through the batch API (reconnecting to its pending
    /// batches); `--batch` here finishes any run that way, and is remembered.
    #[command(flatten)]
    pub batch: BatchArgs,
}

pub(crate) fn main(mut a: Args) -> Result<u8, Failure> {
    let (dir, mut meta) = RunDir::open(&a.dir)?;
    if meta.study == shammie_train::run::STUDY {
        return crate::commands::train::resume(&a.dir);
    }
    // One writer per run: a second `run`/`resume` of this directory stops here.
    let _lock = dir.lock()?;
    let info = shammie_studies::find(&format!("{}/{}", meta.study, meta.task))?;
    let task = info.build(meta.options.clone())?;
    // The response cache the run used, unless told otherwise: a resume never pays again
    // for calls that cache holds.
    if a.call.cache.is_none() && !a.call.no_cache {
        match &meta.cache {
            Some(CacheUse::Off) => a.call.no_cache = true,
            Some(CacheUse::File(p)) => a.call.cache = Some(p.clone()),
            None => {}
        }
    }
    let batch = a.batch.settings(meta.batch.as_ref())?;
    if let Some(b) = &batch {
        a.call.use_batches(b);
    }
    if batch != meta.batch {
        meta.batch = batch;
        dir.update_meta(&meta)?;
    }
    let specs = specs_from_meta(&meta.models)?;
    let models = setup::open_models(&specs, &a.call)?.resolve(&task.roles(), &info.path())?;
    if a.retry_failed {
        let n = dir.drop_failed()?;
        tracing::info!("retrying {n} failed samples");
    }
    // The data must be what the run started with, or the samples would not line up.
    for (path, recorded) in &meta.inputs {
        let p = std::path::Path::new(path);
        if !p.exists() {
            return Err(anyhow::anyhow!(
                "{path}: this run's input is gone; resuming needs the data it started with"
            )
            .into());
        }
        let now = shammie_log::input_digest(p)?;
        if &now != recorded {
            return Err(anyhow::anyhow!(
                "{path}: changed since the run started (sha256 {} → {}); resuming would ask \
                 some questions twice and others never. Restore it, or start a new run",
                &recorded[..12],
                &now[..12]
            )
            .into());
        }
    }
    // A finished run has nothing to resume: say so, with its results.
    if let Some(c) = crate::commands::show::completion(&*task, &dir, &meta)? {
        if c.complete() {
            if let Some(results) = dir.read_results()? {
                eprintln!(
                    "{} is complete: {} of {} samples recorded; nothing to resume{}",
                    dir.path().display(),
                    c.done,
                    c.total,
                    if results.totals.failed > 0 {
                        format!(
                            " ({} failed: `shammie resume --retry-failed` solves them again)",
                            results.totals.failed
                        )
                    } else {
                        String::new()
                    }
                );
                crate::commands::run::print_outcome(dir.path(), &results, a.call.json)?;
                return Ok(u8::from(results.totals.failed > 0));
            }
        }
    }
    let dataset = task.dataset()?;
    // A run written by an older schema gets new records in the current one.
    dir.upgrade(&mut meta)?;
    execute(task, dataset, models, &dir, &meta, &a.call)
}
