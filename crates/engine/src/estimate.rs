//! `shammie run … --dry-run`: what a run would call, and cost, before anything is sent.
//!
//! The study's own protocol is run over the dataset (with the run's limit and epochs)
//! against models that never send (`shammie_models::dry_run`): each call is counted by
//! role, answered from the response cache when it holds it (free) or with an empty
//! estimated reply. Nothing is written: no run directory, no log, no cache entry.
//!
//! Multi-stage tasks are estimated stage by stage as far as a stage's samples can be
//! built without the results of the stages before it; the rest are listed as not
//! estimated, with the reason.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use shammie_core::Sample;

use crate::{
    solve_one, Dataset, EngineError, Limiter, Models, RunOptions, Solve, Solved, StageSolver, Task,
    TaskSolver,
};

/// The calls of one role's model.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RoleEstimate {
    pub model: String,
    /// Calls the protocol makes (on empty replies).
    pub calls: u64,
    /// Of those, answered by the response cache: free.
    pub cached: u64,
    /// Estimated prompt tokens of the calls not cached.
    pub input_tokens: u64,
    /// Reply tokens of the calls not cached, each at its full `max_tokens` (an upper bound).
    pub max_output_tokens: u64,
    /// What the calls not cached cost at list price with those tokens; `None` when the
    /// model's price is unknown and some call is not cached.
    pub cost_usd: Option<f64>,
}

/// What a run would do.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Estimate {
    pub samples: u64,
    /// By role.
    pub roles: BTreeMap<String, RoleEstimate>,
    /// Samples whose protocol ended in an error on the empty replies (their later calls,
    /// if any, are not counted).
    pub ended_early: u64,
    /// Stages not estimated, with why (multi-stage tasks).
    pub not_estimated: Vec<String>,
}

impl Estimate {
    pub fn calls(&self) -> u64 {
        self.roles.values().map(|r| r.calls).sum()
    }
    pub fn cached(&self) -> u64 {
        self.roles.values().map(|r| r.cached).sum()
    }
    /// The total cost, when every role's price is known.
    pub fn cost_usd(&self) -> Option<f64> {
        self.roles.values().map(|r| r.cost_usd).sum()
    }

    fn add(&mut self, t: &shammie_core::Transcript) {
        for c in t.calls() {
            let r = self
                .roles
                .entry(c.role.clone())
                .or_insert_with(|| RoleEstimate {
                    model: c.model.clone(),
                    cost_usd: Some(0.0),
                    ..RoleEstimate::default()
                });
            r.calls += 1;
            let Some(resp) = &c.response else { continue };
            if resp.meta.cached {
                r.cached += 1;
                continue;
            }
            r.input_tokens += resp.usage.input_tokens;
            r.max_output_tokens += resp.usage.output_tokens;
            r.cost_usd = match (r.cost_usd, resp.meta.cost_usd) {
                (Some(a), Some(c)) => Some(a + c),
                _ => None,
            };
        }
    }
}

/// Estimates a run of `task` over `dataset` with `models` opened by
/// `shammie_models::ModelHub::open_dry`.
pub async fn estimate(
    task: Arc<dyn Task>,
    dataset: Dataset,
    models: Models,
    opts: &RunOptions,
) -> Result<Estimate, EngineError> {
    task.check_models(&models)?;
    let models = Arc::new(models);
    let mut est = Estimate::default();
    match task.stages() {
        None => {
            let solver: Arc<dyn Solve> = Arc::new(TaskSolver(task.clone()));
            map(solver, dataset, &models, opts, &mut est).await?;
        }
        Some(stages) => {
            drop(dataset);
            let scratch = tempfile::tempdir()
                .map_err(|e| EngineError::Config(format!("a scratch folder: {e}")))?;
            let meta = crate::new_meta(&*task, &models, opts)?;
            let dir = shammie_log::RunDir::create(scratch.path(), &meta)?;
            let view = crate::RunView::new(dir, opts.seed);
            for stage in stages {
                let crate::Stage::Map(m) = &stage else {
                    est.not_estimated.push(format!(
                        "{} ({} stage: no API calls estimated; the stages after it need its results)",
                        stage.name(),
                        stage.kind()
                    ));
                    break;
                };
                let rebinds = m.models(&view).map(|b| !b.is_empty()).unwrap_or(true);
                let dataset = match m.dataset(&view) {
                    Ok(d) if !rebinds => d,
                    _ => {
                        est.not_estimated.push(format!(
                            "{} (needs the results of the stages before it)",
                            m.name()
                        ));
                        break;
                    }
                };
                let solver: Arc<dyn Solve> = Arc::new(StageSolver(m.clone()));
                map(solver, dataset, &models, opts, &mut est).await?;
            }
        }
    }
    Ok(est)
}

async fn map(
    solver: Arc<dyn Solve>,
    dataset: Dataset,
    models: &Arc<Models>,
    opts: &RunOptions,
    est: &mut Estimate,
) -> Result<(), EngineError> {
    let mut limit = Limiter::new(opts.limit, opts.limit_counts);
    let epochs = opts.epochs.max(1);
    let mut work: Vec<(Arc<Sample>, u32)> = Vec::new();
    for item in dataset.samples {
        let sample = Arc::new(item?);
        if !limit.admit(&sample)? {
            break;
        }
        for epoch in 1..=epochs {
            work.push((sample.clone(), epoch));
        }
    }
    let seed = opts.seed;
    let mut results = futures::stream::iter(work)
        .map(|(sample, epoch)| {
            let (solver, models) = (solver.clone(), models.clone());
            async move { solve_one(&*solver, &models, &sample, epoch, seed, None).await }
        })
        .buffer_unordered(opts.max_in_flight.max(1));
    while let Some(solved) = results.next().await {
        est.samples += 1;
        match solved {
            Solved::Record(rec) => {
                if rec.error.is_some() {
                    est.ended_early += 1;
                }
                est.add(&rec.transcript);
            }
            Solved::Halted(why) => return Err(EngineError::Config(why)),
        }
    }
    Ok(())
}
