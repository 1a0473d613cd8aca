//! `shammie resume RUN_DIR`: finish an interrupted run. Samples already in the log are
//! skipped; calls already answered come from the response cache.

use std::path::PathBuf;

use shammie_log::RunDir;

use crate::commands::run::{execute, specs_from_meta};
use crate::setup::{self, CallArgs};
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
}

pub(crate) fn main(a: Args) -> Result<u8, Failure> {
    let (dir, mut meta) = RunDir::open(&a.dir)?;
    // One writer per run: a second `run`/`resume` of this directory stops here.
    let _lock = dir.lock()?;
    let info = shammie_studies::find(&format!("{}/{}", meta.study, meta.task))?;
    let task = info.build(meta.options.clone())?;
    let specs = specs_from_meta(&meta.models)?;
    let models = setup::open_models(&specs, &a.call)?.resolve(&task.roles(), &info.path())?;
    if a.retry_failed {
        let n = dir.drop_failed()?;
        tracing::info!("retrying {n} failed samples");
    }
    let dataset = task.dataset()?;
    // A run written by an older schema gets new records in the current one.
    dir.upgrade(&mut meta)?;
    execute(task, dataset, models, &dir, &meta, &a.call)
}
