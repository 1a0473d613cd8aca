//! What a study's tests share (feature `testing`, for dev-dependencies only): running the
//! first samples of a task with given models into a temporary run directory.

use std::sync::Arc;

use shammie_core::SampleRecord;
use shammie_engine::{RunOptions, Task};
use shammie_models::Model;

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
