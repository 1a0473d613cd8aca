//! `shammie run STUDY/TASK --model … [--limit N] [--seed S] [--epochs K] [--set key=value …]`

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use shammie_core::LimitCounts;
use shammie_engine::{Dataset, Models, RunOptions, Task};
use shammie_log::{CacheUse, RunDir, RunMeta};

use crate::setup::{self, CallArgs};
use crate::{progress, render, Failure};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The task to run, e.g. constitution/traits (see `shammie list`).
    pub task: String,
    /// A model: SPEC for the target, or ROLE=SPEC for another of the task's roles (e.g. mistaker=anthropic:claude-sonnet-4-5; `shammie list` shows each task's roles).
    /// SPEC is anthropic:MODEL, openai:MODEL, openai-compatible:http://HOST:PORT/v1/MODEL.
    #[arg(long = "model", short = 'm', required = true)]
    pub models: Vec<String>,
    /// Run only the first N units of the dataset, each with all its samples: a unit is a
    /// question (decomposition: under every strategy; cot-faithfulness: with every
    /// intervention; traits: in both answer orders), a prompt (discrim-eval/decisions:
    /// under every intervention) or a problem (agent-loop). Units interleave the datasets
    /// where a task has several, so a limit covers each.
    #[arg(long, value_parser = crate::setup::at_least_one::<u64>, allow_negative_numbers = true)]
    pub limit: Option<u64>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Repeat every sample K times.
    #[arg(long, default_value_t = 1, value_parser = crate::setup::at_least_one::<u32>, allow_negative_numbers = true)]
    pub epochs: u32,
    /// Parent folder of run directories.
    #[arg(long, default_value = "runs")]
    pub log_dir: PathBuf,
    /// Task option, key=value (repeatable; see `shammie list`).
    #[arg(long = "set", short = 's')]
    pub sets: Vec<String>,
    #[command(flatten)]
    pub call: CallArgs,
}

pub(crate) fn main(a: Args) -> Result<u8, Failure> {
    if !a.task.contains('/') {
        let known = shammie_studies::studies()
            .iter()
            .flat_map(|s| s.tasks.iter().map(|t| t.path()))
            .filter(|p| p.starts_with(&format!("{}/", a.task)))
            .collect::<Vec<_>>();
        return Err(anyhow::anyhow!(
            "name the task to run as STUDY/TASK{}; a whole study is never run by accident",
            if known.is_empty() {
                String::new()
            } else {
                format!(" ({})", known.join(", "))
            }
        )
        .into());
    }
    let info = shammie_studies::find(&a.task)?;
    let options = setup::parse_sets(&a.sets)?;
    let task = info.build(options.clone())?;
    let specs = setup::parse_role_specs(&a.models)?;
    let models = setup::open_models(&specs, &a.call)?.resolve(&task.roles(), &info.path())?;
    task.check_models(&models)?;
    // Validate the data before creating the run directory: a bad line costs nothing.
    let dataset = task.dataset()?;
    let opts = RunOptions {
        epochs: a.epochs,
        limit: a.limit,
        limit_counts: LimitCounts::Units,
        max_in_flight: a.call.samples_in_flight(),
        seed: a.seed,
    };
    if !a.call.quiet {
        match task.stages() {
            Some(stages) => eprintln!(
                "running {} stages ({}), measuring {}",
                stages.len(),
                stages
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>()
                    .join(", "),
                plan(&dataset, &opts).trim_start_matches("running ")
            ),
            None => eprintln!("{}", plan(&dataset, &opts)),
        }
    }
    let mut meta = shammie_engine::new_meta(&*task, &models, &opts)?;
    meta.options = options;
    meta.max_connections = a.call.max_connections;
    meta.cache = Some(if a.call.no_cache {
        CacheUse::Off
    } else {
        CacheUse::File(setup::cache_path(&a.call))
    });
    let dir = RunDir::create(&a.log_dir, &meta)?;
    let _lock = dir.lock()?;
    execute(task, dataset, models, &dir, &meta, &a.call)
}

/// Runs (or continues) a run directory to completion and prints its results.
pub(crate) fn execute(
    task: Arc<dyn Task>,
    dataset: Dataset,
    models: Models,
    dir: &RunDir,
    meta: &RunMeta,
    call: &CallArgs,
) -> Result<u8, Failure> {
    let opts = RunOptions {
        epochs: meta.epochs,
        limit: meta.limit,
        limit_counts: meta.limit_counts(),
        max_in_flight: call.samples_in_flight(),
        seed: meta.seed,
    };
    let bar = Arc::new(progress::Bar::new(call.quiet));
    let rt = setup::runtime()?;
    let outcome = rt.block_on(async {
        tokio::select! {
            r = shammie_engine::run(task, dataset, models, dir, &opts, bar.clone()) => Some(r),
            _ = interrupted() => None,
        }
    });
    bar.finish();
    let summary = match outcome {
        None => {
            return Err(Failure {
                code: 130,
                error: anyhow::anyhow!(
                    "interrupted; every finished sample is saved. Continue with: shammie resume {}",
                    dir.path().display()
                ),
            })
        }
        Some(Err(e)) => {
            return Err(Failure {
                code: 2,
                error: anyhow::Error::new(e).context(format!("run {}", dir.path().display())),
            })
        }
        Some(Ok(s)) => s,
    };
    print_outcome(dir.path(), &summary.results, call.json)?;
    Ok(if summary.results.totals.failed > 0 {
        1
    } else {
        0
    })
}

/// What a run will do, e.g. `running 3 of 254 questions × 4 samples each = 12 samples`.
fn plan(d: &Dataset, o: &RunOptions) -> String {
    let (units, samples) = d.planned(o.limit, o.limit_counts);
    let all_units = d.units.or(d.total);
    let unit = d.unit_name;
    let of = |n: u64| match all_units {
        Some(all) if all > n => format!("{n} of {all} {unit}s"),
        _ => format!("{n} {unit}{}", if n == 1 { "" } else { "s" }),
    };
    let mut line = match (units, samples) {
        (Some(u), Some(s)) if s != u => format!("running {} = {s} samples", of(u)),
        (Some(u), _) => format!("running {}", of(u)),
        (None, Some(s)) => format!("running {s} samples"),
        (None, None) => format!("running every {unit} of the dataset"),
    };
    if o.epochs > 1 {
        line.push_str(&format!(", × {} epochs", o.epochs));
    }
    line
}

/// Ctrl-C (SIGINT) or SIGTERM: the run stops where it is, every finished sample saved.
async fn interrupted() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

pub(crate) fn print_outcome(
    dir: &Path,
    results: &shammie_core::Results,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        let v = serde_json::json!({"run_dir": dir, "results": results});
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", render::results(results));
        println!("{}", dir.display());
    }
    Ok(())
}

/// Role → spec strings as stored in run.json, parsed back.
pub(crate) fn specs_from_meta(
    models: &BTreeMap<String, String>,
) -> anyhow::Result<BTreeMap<String, shammie_models::ModelSpec>> {
    models
        .iter()
        .map(|(r, s)| Ok((r.clone(), s.parse()?)))
        .collect()
}
