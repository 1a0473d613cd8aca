//! What a study's tests share (feature `testing`, for dev-dependencies only): running a
//! task with given models into a temporary run directory, all of it or its first samples.

use std::sync::Arc;

use shammie_core::{Results, SampleRecord};
use shammie_engine::{Lab, Models, RunOptions, Task};
use shammie_models::Model;

/// Runs every sample of `task` (one epoch, seed 7, four samples in flight) with `model` in
/// each of its roles, and `lab` as its lab when given, into a temporary run directory.
/// Returns the directory, the results and the temporary folder (the run lives while it
/// does).
pub async fn run_all(
    task: Arc<dyn Task>,
    model: Arc<dyn Model>,
    lab: Option<Arc<dyn Lab>>,
) -> (shammie_log::RunDir, Results, tempfile::TempDir) {
    let d = tempfile::tempdir().expect("a temporary folder");
    let opts = RunOptions {
        epochs: 1,
        limit: None,
        limit_counts: Default::default(),
        max_in_flight: 4,
        seed: 7,
    };
    let mut models = Models::new(
        task.roles()
            .iter()
            .map(|r| (r.name.to_string(), model.clone()))
            .collect(),
    );
    if let Some(lab) = lab {
        models = models.with_lab(lab);
    }
    let meta = shammie_engine::new_meta(&*task, &models, &opts).expect("the run's metadata");
    let dir = shammie_log::RunDir::create(d.path(), &meta).expect("the run directory");
    let dataset = task.dataset().expect("the dataset");
    let s = shammie_engine::run(task, dataset, models, &dir, &opts, Arc::new(()))
        .await
        .expect("the run finishes");
    (dir, s.results, d)
}

/// Runs the first `limit` samples of `task` one at a time (so in dataset order) with
/// `roles` bound, into a temporary run directory, and returns their records. Panics if a
/// sample failed or was not solved: a test's model should let every sample through.
pub async fn first_records(
    task: Arc<dyn Task>,
    roles: &[(&str, Arc<dyn Model>)],
    limit: u64,
) -> Vec<SampleRecord> {
    let d = tempfile::tempdir().expect("a temporary folder");
    let opts = RunOptions {
        epochs: 1,
        limit: Some(limit),
        // The first samples, whatever units they belong to.
        limit_counts: shammie_core::LimitCounts::Samples,
        max_in_flight: 1,
        seed: 0,
    };
    let models = roles
        .iter()
        .map(|(r, m)| (r.to_string(), m.clone()))
        .collect();
    let (dir, s) = shammie_engine::run_new(task, models, d.path(), &opts)
        .await
        .expect("the run finishes");
    assert_eq!(s.solved, limit, "every sample solved");
    let records: Vec<SampleRecord> = dir
        .records()
        .expect("the log opens")
        .map(|r| r.expect("a readable record"))
        .collect();
    for r in &records {
        assert!(r.error.is_none(), "{}: {:?}", r.id, r.error);
    }
    assert_labelled(&records);
    records
}

/// Panics unless every model call in `records` carries a step label (so a transcript
/// says which step of the protocol each call was).
pub fn assert_labelled(records: &[SampleRecord]) {
    for r in records {
        for (i, c) in r.transcript.calls().enumerate() {
            assert!(
                c.label.as_deref().is_some_and(|l| !l.is_empty()),
                "{}: call {i} ({} model) has no step label",
                r.id,
                c.role
            );
        }
    }
}
