//! `shammie show RUN_DIR`: the results table of a run (re-analysed when the run has no
//! results yet, e.g. it was interrupted).

use std::path::PathBuf;

use shammie_log::RunDir;

use crate::commands::run::print_outcome;
use crate::Failure;

#[derive(clap::Args)]
pub(crate) struct Args {
    pub dir: PathBuf,
    /// Machine-readable JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Recompute the analysis from samples.jsonl even if results.json exists.
    #[arg(long)]
    pub reanalyze: bool,
}

pub(crate) fn main(a: Args) -> Result<u8, Failure> {
    let (dir, meta) = RunDir::open(&a.dir)?;
    let results = match (a.reanalyze, dir.read_results()?) {
        (false, Some(r)) => r,
        _ => {
            let info = shammie_studies::find(&format!("{}/{}", meta.study, meta.task))?;
            let task = info.build(meta.options.clone())?;
            shammie_engine::analyze(&*task, &dir, meta.seed)?
        }
    };
    print_outcome(dir.path(), &results, a.json)?;
    Ok(0)
}
