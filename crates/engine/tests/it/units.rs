//! `--limit` counts units of a dataset (a question with all its strategies), not samples;
//! runs made when it counted samples resume with that meaning. Calls carry their step
//! labels in the transcript without the labels reaching the request.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use shammie_core::{GenerateRequest, LimitCounts, Sample, SampleRecord, Scores};
use shammie_engine::*;
use shammie_log::{RunDir, RunMeta};
use shammie_testkit::scripted::{text, ScriptedModel};

/// `questions` questions × `strategies` strategies, unit-major (or not, to check the guard).
struct Grid {
    questions: usize,
    strategies: &'static [&'static str],
    unit_major: bool,
}

#[async_trait]
impl Task for Grid {
    fn study(&self) -> &str {
        "test"
    }
    fn name(&self) -> &str {
        "grid"
    }
    fn roles(&self) -> Vec<RoleSpec> {
        vec![RoleSpec {
            name: "target",
            help: "",
            defaults_to: None,
        }]
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({})
    }
    fn dataset(&self) -> Result<Dataset, DataError> {
        let (q, st) = (self.questions, self.strategies);
        let mut v: Vec<(usize, &str)> = (0..q)
            .flat_map(|i| st.iter().map(move |s| (i, *s)))
            .collect();
        if !self.unit_major {
            // strategy-major: q0/a, q1/a, …, q0/b, …
            v.sort_by_key(|(i, s)| (*s, *i));
        }
        Ok(Dataset::per_unit(
            q as u64,
            st.len() as u64,
            "question",
            v.into_iter().map(|(i, s)| {
                Ok(Sample::new(format!("q{i}/{s}"), serde_json::json!(s)).in_unit(format!("q{i}")))
            }),
        ))
    }
    async fn solve(&self, cx: &SampleContext, s: &Sample) -> Result<Scores, SampleError> {
        let a = cx
            .labelled("cot")
            .generate("target", GenerateRequest::user(s.id.clone(), 4))
            .await?;
        let votes = cx
            .generate_all_labelled(
                "target",
                (1..=2)
                    .map(|k| (format!("vote {k}"), GenerateRequest::user("vote", 4)))
                    .collect(),
            )
            .await;
        cx.generate("target", GenerateRequest::user("plain", 4))
            .await?;
        Ok(Scores::from([
            ("answer".to_string(), serde_json::json!(a.text)),
            ("votes".to_string(), serde_json::json!(votes.len())),
        ]))
    }
    fn analyze(
        &self,
        _records: &mut dyn Iterator<Item = SampleRecord>,
        _run: &shammie_core::RunInfo,
    ) -> Result<Analysis, String> {
        Ok(Analysis::default())
    }
}

fn grid(questions: usize, unit_major: bool) -> Arc<Grid> {
    Arc::new(Grid {
        questions,
        strategies: &["none", "cot", "factored"],
        unit_major,
    })
}

fn meta() -> RunMeta {
    RunMeta {
        schema_version: shammie_core::SCHEMA_VERSION,
        shammie_version: "test".into(),
        study: "test".into(),
        task: "grid".into(),
        models: BTreeMap::new(),
        options: BTreeMap::new(),
        config: serde_json::json!({}),
        seed: 0,
        epochs: 1,
        limit: None,
        limit_counts_recorded: None,
        max_connections: 4,
        created_at: "now".into(),
        cache: None,
        inputs: BTreeMap::new(),
        batch: None,
    }
}

async fn ids(
    task: Arc<Grid>,
    limit: Option<u64>,
    counts: LimitCounts,
) -> Result<Vec<String>, EngineError> {
    let d = tempfile::tempdir().unwrap();
    let dir = RunDir::create(d.path(), &meta()).unwrap();
    let m: Arc<dyn shammie_models::Model> = Arc::new(ScriptedModel::new("m", |_| text("ok")));
    let models = Models::new(BTreeMap::from([("target".to_string(), m)]));
    let opts = RunOptions {
        epochs: 1,
        limit,
        limit_counts: counts,
        max_in_flight: 1,
        seed: 0,
    };
    run(
        task.clone(),
        task.dataset().unwrap(),
        models,
        &dir,
        &opts,
        Arc::new(()),
    )
    .await?;
    let mut v: Vec<String> = dir.records().unwrap().map(|r| r.unwrap().id).collect();
    v.sort();
    Ok(v)
}

#[tokio::test]
async fn limit_takes_whole_units_so_no_strategy_is_dropped() {
    // 5 questions × 3 strategies; --limit 2 = questions q0 and q1 with all 3 strategies
    // (6 samples). Counting samples, the old meaning, 2 would have been q0/none, q0/cot.
    let got = ids(grid(5, true), Some(2), LimitCounts::Units)
        .await
        .unwrap();
    assert_eq!(
        got,
        [
            "q0/cot",
            "q0/factored",
            "q0/none",
            "q1/cot",
            "q1/factored",
            "q1/none"
        ]
    );
    let got = ids(grid(5, true), Some(2), LimitCounts::Samples)
        .await
        .unwrap();
    assert_eq!(
        got,
        ["q0/cot", "q0/none"],
        "old runs keep their sample limit"
    );
    // A limit above the units is the whole dataset: 5 × 3.
    assert_eq!(
        ids(grid(5, true), Some(9), LimitCounts::Units)
            .await
            .unwrap()
            .len(),
        15
    );
}

#[test]
fn planned_counts_units_and_samples() {
    let d = grid(5, true).dataset().unwrap();
    // 2 units of 15/5 = 3 samples each.
    assert_eq!(d.planned(Some(2), LimitCounts::Units), (Some(2), Some(6)));
    assert_eq!(d.planned(None, LimitCounts::Units), (Some(5), Some(15)));
    assert_eq!(d.planned(Some(2), LimitCounts::Samples), (None, Some(2)));
}

/// (Caught when a unit comes back before the limit is reached: here all 3 units begin
/// with their `cot` sample, then `q0` reappears.)
#[tokio::test]
async fn a_dataset_that_is_not_unit_major_is_refused_under_a_limit() {
    let e = ids(grid(3, false), Some(3), LimitCounts::Units)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("lists unit `q0` in two places"),
        "{e}"
    );
}

#[tokio::test]
async fn calls_carry_step_labels_outside_the_request() {
    let d = tempfile::tempdir().unwrap();
    let dir = RunDir::create(d.path(), &meta()).unwrap();
    let task = grid(1, true);
    let m: Arc<dyn shammie_models::Model> = Arc::new(ScriptedModel::new("m", |_| text("ok")));
    let models = Models::new(BTreeMap::from([("target".to_string(), m)]));
    let opts = RunOptions {
        epochs: 1,
        limit: Some(1),
        limit_counts: LimitCounts::Units,
        max_in_flight: 1,
        seed: 0,
    };
    run(
        task.clone(),
        task.dataset().unwrap(),
        models,
        &dir,
        &opts,
        Arc::new(()),
    )
    .await
    .unwrap();
    let rec = dir.records().unwrap().next().unwrap().unwrap();
    let labels: Vec<Option<&str>> = rec.transcript.calls().map(|c| c.label.as_deref()).collect();
    assert_eq!(labels, [Some("cot"), Some("vote 1"), Some("vote 2"), None]);
    // The two votes are the same request: the label is not part of it (nor of its cache key).
    let reqs: Vec<&GenerateRequest> = rec.transcript.calls().map(|c| &c.request).collect();
    assert_eq!(reqs[1], reqs[2]);
    let line = std::fs::read_to_string(dir.samples_path()).unwrap();
    assert!(line.contains(r#""label":"vote 2""#));
    assert!(
        !line.contains("rendered_prompt"),
        "API-like models record no rendered prompt"
    );
}
