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
    #[arg(required_unless_present_any = ["config", "from"])]
    pub task: Option<String>,
    /// A model: SPEC for the target, or ROLE=SPEC for another of the task's roles (e.g. mistaker=anthropic:claude-sonnet-4-5; `shammie list` shows each task's roles).
    /// SPEC is anthropic:MODEL, openai:MODEL, openai-compatible:http://HOST:PORT/v1/MODEL
    /// (replicas as URL,URL/MODEL; server features as ?prefill=true&completions=true&n=true:
    /// docs/open-weight-servers.md) or local:NAME.
    /// With --from: replaces the model of that role.
    #[arg(long = "model", short = 'm', required_unless_present_any = ["config", "from"])]
    pub models: Vec<String>,
    /// Run only the first N units of the dataset, each with all its samples: a unit is a
    /// question (decomposition: under every strategy; cot-faithfulness: with every
    /// intervention; traits: in both answer orders), a prompt (discrim-eval/decisions:
    /// under every intervention) or a problem (agent-loop). Units interleave the datasets
    /// where a task has several, so a limit covers each.
    #[arg(long, value_parser = crate::setup::at_least_one::<u64>, allow_negative_numbers = true)]
    pub limit: Option<u64>,
    /// The run's seed (default 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Repeat every sample K times (default 1).
    #[arg(long, value_parser = crate::setup::at_least_one::<u32>, allow_negative_numbers = true)]
    pub epochs: Option<u32>,
    /// Parent folder of run directories.
    #[arg(long, default_value = "runs")]
    pub log_dir: PathBuf,
    /// Task option, key=value (repeatable; see `shammie list`). With --config or --from:
    /// added to (or replacing) theirs.
    #[arg(long = "set", short = 's')]
    pub sets: Vec<String>,
    /// Run what a TOML file describes (task, models, roles, options, limit, seed,
    /// epochs); several `models` run as a sweep, one run directory each.
    #[arg(long, conflicts_with_all = ["task", "models", "from"])]
    pub config: Option<PathBuf>,
    /// Repeat the configuration of an earlier run (task, models, options, limit, seed,
    /// epochs) as a new run; --model, --set, --limit, --seed and --epochs change it.
    #[arg(long, conflicts_with = "task")]
    pub from: Option<PathBuf>,
    /// Say what the run would call and cost (calls by role, cache hits, estimated tokens,
    /// cost at list price), running the study's protocol on empty replies; nothing is
    /// sent and nothing is written.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub call: CallArgs,
    #[command(flatten)]
    pub batch: setup::BatchArgs,
}

/// `--batch`: samples in flight at most (the larger provider limit on one batch).
const BATCH_IN_FLIGHT: u64 = 100_000;

/// One run to start: everything `run` needs besides the call settings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub task: String,
    /// `SPEC` or `ROLE=SPEC`, as --model takes them.
    pub models: Vec<String>,
    pub options: BTreeMap<String, String>,
    pub limit: Option<u64>,
    pub seed: u64,
    pub epochs: u32,
}

pub(crate) fn main(mut a: Args) -> Result<u8, Failure> {
    if let Some(b) = a.batch.settings(None)? {
        a.call.use_batches(&b);
    }
    let plans = plans(&a)?;
    let mut code = 0;
    for p in plans {
        code = code.max(start(&p, &a)?);
    }
    Ok(code)
}

/// The runs `a` asks for: one from the command line or from an earlier run, or one per
/// target model of a config file.
pub(crate) fn plans(a: &Args) -> anyhow::Result<Vec<Plan>> {
    let sets = setup::parse_sets(&a.sets)?;
    let overlay = |mut p: Plan| -> Plan {
        p.options.extend(sets.clone());
        if a.limit.is_some() {
            p.limit = a.limit;
        }
        if let Some(s) = a.seed {
            p.seed = s;
        }
        if let Some(e) = a.epochs {
            p.epochs = e;
        }
        p
    };
    if let Some(path) = &a.config {
        return Ok(crate::run_config::read(path)?
            .into_iter()
            .map(overlay)
            .collect());
    }
    if let Some(dir) = &a.from {
        let (_, meta) = RunDir::open(dir)?;
        let mut roles: BTreeMap<String, String> = meta.models.clone();
        for m in &a.models {
            let (role, spec) = match m.split_once('=') {
                Some((r, s)) if !r.contains(':') && !r.is_empty() => (r.trim().to_string(), s),
                _ => ("target".to_string(), m.as_str()),
            };
            let role = if role == "target" && !roles.contains_key("target") {
                // A task without a target role binds a bare spec to its first role.
                let info = shammie_studies::find(&format!("{}/{}", meta.study, meta.task))?;
                (info.roles)().first().map_or(role, |r| r.name.to_string())
            } else {
                role
            };
            roles.insert(role, spec.to_string());
        }
        return Ok(vec![overlay(Plan {
            task: format!("{}/{}", meta.study, meta.task),
            models: roles.into_iter().map(|(r, s)| format!("{r}={s}")).collect(),
            options: meta.options.clone(),
            limit: meta.limit,
            seed: meta.seed,
            epochs: meta.epochs,
        })]);
    }
    let task = a.task.clone().expect("clap requires a task");
    Ok(vec![overlay(Plan {
        task,
        models: a.models.clone(),
        options: BTreeMap::new(),
        limit: None,
        seed: 0,
        epochs: 1,
    })])
}

fn start(p: &Plan, a: &Args) -> Result<u8, Failure> {
    if !p.task.contains('/') {
        let known = shammie_studies::studies()
            .iter()
            .flat_map(|s| s.tasks.iter().map(|t| t.path()))
            .filter(|t| t.starts_with(&format!("{}/", p.task)))
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
    let info = shammie_studies::find(&p.task)?;
    let options = p.options.clone();
    let task = info.build(options.clone())?;
    let specs = setup::parse_role_specs(&p.models)?;
    if a.dry_run {
        return crate::dry_run::main(p, task, &specs, &a.call);
    }
    let models = setup::open_models(&specs, &a.call)?.resolve(&task.roles(), &info.path())?;
    task.check_models(&models)
        .map_err(|e| setup::with_feature_hints(e, &specs))?;
    // Validate the data before creating the run directory: a bad line costs nothing.
    let dataset = task.dataset()?;
    let opts = RunOptions {
        epochs: p.epochs,
        limit: p.limit,
        limit_counts: LimitCounts::Units,
        max_in_flight: a.call.samples_in_flight(),
        seed: p.seed,
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
    meta.batch = a.batch.settings(None)?;
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
        max_in_flight: match &meta.batch {
            Some(_) => batch_in_flight(&dataset, meta, call),
            None => call.samples_in_flight(),
        },
        seed: meta.seed,
    };
    let bar =
        Arc::new(progress::Bar::new(call.quiet).with_batches(call.batches.clone(), call.quiet));
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
        Some(Err(shammie_engine::EngineError::Stopped { reason, solved })) => {
            let spent = call.budget().map_or(0.0, |b| b.spent_usd());
            return Err(Failure {
                code: 3,
                error: anyhow::anyhow!(
                    "stopped before the --max-cost cap: {reason}. This invocation paid \
                     ${spent:.4} and recorded {solved} samples; every finished sample is \
                     saved. Continue with: shammie resume {} --max-cost USD (or `shammie \
                     analyze` for results so far)",
                    dir.path().display()
                ),
            });
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

/// `--batch`: every sample of the run at once (up to [`BATCH_IN_FLIGHT`]), so that each
/// stage's calls go out in one batch; `--max-samples` says otherwise.
fn batch_in_flight(d: &Dataset, meta: &RunMeta, call: &CallArgs) -> usize {
    if let Some(n) = call.max_samples {
        return n.max(1);
    }
    let samples = d.planned(meta.limit, meta.limit_counts()).1;
    samples.map_or(BATCH_IN_FLIGHT, |n| {
        n.saturating_mul(u64::from(meta.epochs.max(1)))
            .clamp(1, BATCH_IN_FLIGHT)
    }) as usize
}

/// What a run will do, e.g. `running 3 of 254 questions × 4 samples each = 12 samples`.
pub(crate) fn plan(d: &Dataset, o: &RunOptions) -> String {
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
