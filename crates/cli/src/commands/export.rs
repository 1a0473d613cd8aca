//! `shammie export RUN --format csv|parquet|inspect [--out PATH]`: a run directory as
//! files other tools read — CSV or Parquet tables (one row per sample, one file per
//! results table) for pandas and polars, or an Inspect AI eval log for `inspect view` and
//! `inspect_ai.analysis`. The work is `shammie-export`'s; this prints the files written,
//! one per line on stdout.

use std::path::PathBuf;

use shammie_export::{inspect, Format};

use crate::Failure;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The run directory.
    pub dir: PathBuf,
    /// csv or parquet (samples.EXT and table.NAME.EXT in a folder), or inspect (one
    /// Inspect AI .json eval log).
    #[arg(long, value_parser = parse_format)]
    pub format: Format,
    /// Where to write: a folder for csv and parquet [default: RUN/export/]; for inspect
    /// the file, or a folder to hold it under the name Inspect gives logs,
    /// CREATED_TASK_ID.json (which `inspect view` and `samples_df` need to list it)
    /// [default: RUN/export/].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
        .map_err(|e: shammie_export::ExportError| e.to_string())
}

pub(crate) fn main(a: Args) -> Result<u8, Failure> {
    let files = shammie_export::export(&a.dir, a.format, a.out.as_deref())?;
    if a.format == Format::Inspect && !files.iter().all(|f| inspect::listed_by_inspect(f)) {
        eprintln!(
            "note: Inspect lists only .json logs whose name starts with a timestamp \
             (YYYY-MM-DDTHH-MM-SS…): read_eval_log reads this file, but `inspect view` and \
             samples_df of its folder will not list it; give --out a folder to get that name"
        );
    }
    for f in files {
        println!("{}", f.display());
    }
    Ok(0)
}
