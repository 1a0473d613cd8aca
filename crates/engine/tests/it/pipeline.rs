//! A three-stage task — map (model calls), reduce (an artifact), map again over what the
//! reduction produced — run, interrupted in its reduce stage, and resumed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use shammie_core::{Cell, GenerateRequest, Sample, Scores, Table};
use shammie_engine::*;
use shammie_log::{RunDir, RunMeta};
use shammie_models::Model;
use shammie_testkit::scripted::{self, ScriptedModel};

const N: usize = 6;

/// Squares: the model answers "What is i squared?" with i².
fn squares(req: &GenerateRequest) -> shammie_core::Completion {
    let q = &req.messages[0].content;
    if let Some(i) = q
        .strip_prefix("What is ")
        .and_then(|r| r.strip_suffix(" squared?"))
    {
        let i: u64 = i.parse().unwrap();
        return scripted::text((i * i).to_string());
    }
    // "Is S even?"
    let s: u64 = q
        .trim_start_matches("Is ")
        .trim_end_matches(" even?")
        .parse()
        .unwrap();
    scripted::text(if s.is_multiple_of(2) { "yes" } else { "no" })
}

struct Draw;

#[async_trait]
impl MapStage for Draw {
    fn name(&self) -> &str {
        "draw"
    }
    fn dataset(&self, _run: &RunView) -> Result<Dataset, DataError> {
        Ok(Dataset {
            total: Some(N as u64),
            units: None,
            unit_name: "sample",
            samples: Box::new((0..N).map(|i| {
                Ok(Sample {
                    id: format!("n{i}"),
                    unit: None,
                    input: serde_json::json!(i),
                })
            })),
        })
    }
    async fn solve(&self, cx: &SampleContext, s: &Sample) -> Result<Scores, SampleError> {
        let c = cx
            .generate(
                "target",
                GenerateRequest::user(format!("What is {} squared?", s.input), 5),
            )
            .await?;
        let v: u64 = c
            .text
            .trim()
            .parse()
            .map_err(|_| SampleError::Protocol("nan".into()))?;
        Ok(Scores::from([("value".to_string(), serde_json::json!(v))]))
    }
}

/// Sums the drawn values into `total.json`; fails once when asked to (a crash).
struct Total {
    fail_once: AtomicBool,
}

impl ReduceStage for Total {
    fn name(&self) -> &str {
        "total"
    }
    fn reduce(&self, run: &RunView, out: &mut StageOutput) -> Result<(), String> {
        let mut sum = 0u64;
        let mut n = 0u64;
        for r in run.records("draw").map_err(|e| e.to_string())? {
            let r = r.map_err(|e| e.to_string())?;
            sum += r.scores["value"].as_u64().unwrap();
            n += 1;
            out.progress(n, N as u64);
        }
        if self.fail_once.swap(false, Ordering::SeqCst) {
            // Half an artifact, then the crash: it must not appear under its name.
            let mut w = out.create("total.json")?;
            std::io::Write::write_all(&mut w, b"{\"sum\":").unwrap();
            return Err("simulated crash".into());
        }
        out.write(
            "total.json",
            serde_json::json!({"sum": sum, "n": n})
                .to_string()
                .as_bytes(),
        )?;
        Ok(())
    }
}

struct Check;

#[async_trait]
impl MapStage for Check {
    fn name(&self) -> &str {
        "check"
    }
    fn dataset(&self, run: &RunView) -> Result<Dataset, DataError> {
        let total: serde_json::Value =
            serde_json::from_slice(&run.artifact("total.json").map_err(|e| DataError::File {
                path: "total.json".into(),
                message: e.to_string(),
            })?)
            .unwrap();
        let sum = total["sum"].as_u64().unwrap();
        Ok(Dataset {
            total: Some(2),
            units: None,
            unit_name: "sample",
            samples: Box::new([sum, sum + 1].into_iter().map(|s| {
                Ok(Sample {
                    id: format!("even-{s}"),
                    unit: None,
                    input: serde_json::json!(s),
                })
            })),
        })
    }
    async fn solve(&self, cx: &SampleContext, s: &Sample) -> Result<Scores, SampleError> {
        let c = cx
            .generate(
                "target",
                GenerateRequest::user(format!("Is {} even?", s.input), 2),
            )
            .await?;
        Ok(Scores::from([(
            "even".to_string(),
            serde_json::json!(c.text == "yes"),
        )]))
    }
}

struct SumThenAsk {
    total: Arc<Total>,
}

#[async_trait]
impl Task for SumThenAsk {
    fn study(&self) -> &str {
        "test"
    }
    fn name(&self) -> &str {
        "stages"
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
        Ok(Dataset {
            total: Some(0),
            units: None,
            unit_name: "sample",
            samples: Box::new(std::iter::empty()),
        })
    }
    fn stages(&self) -> Option<Vec<Stage>> {
        Some(vec![
            Stage::Map(Arc::new(Draw)),
            Stage::Reduce(self.total.clone()),
            Stage::Map(Arc::new(Check)),
        ])
    }
    fn analyze_stages(&self, run: &RunView) -> Result<Analysis, String> {
        let total: serde_json::Value =
            serde_json::from_slice(&run.artifact("total.json").map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
        let mut rows = vec![vec![
            Cell::text("sum"),
            Cell::Int(total["sum"].as_i64().unwrap()),
        ]];
        for r in run.records("check").map_err(|e| e.to_string())? {
            let r = r.map_err(|e| e.to_string())?;
            rows.push(vec![
                Cell::text(r.id),
                Cell::text(r.scores["even"].to_string()),
            ]);
        }
        Ok(vec![Table {
            name: "stages".into(),
            caption: String::new(),
            decimals: None,
            title: "t".into(),
            columns: vec!["what".into(), "value".into()],
            rows,
            notes: vec![],
        }]
        .into())
    }
}

fn meta() -> RunMeta {
    RunMeta {
        schema_version: shammie_core::SCHEMA_VERSION,
        shammie_version: "test".into(),
        study: "test".into(),
        task: "stages".into(),
        models: BTreeMap::from([("target".into(), "scripted:squares".into())]),
        options: BTreeMap::new(),
        config: serde_json::json!({}),
        seed: 0,
        epochs: 1,
        limit: None,
        limit_counts_recorded: None,
        max_connections: 2,
        created_at: "now".into(),
        cache: None,
        inputs: Default::default(),
        batch: None,
    }
}

async fn go(
    task: Arc<dyn Task>,
    model: Arc<ScriptedModel>,
    dir: &RunDir,
) -> Result<RunSummary, EngineError> {
    let m: Arc<dyn Model> = model;
    let models = Models::new(BTreeMap::from([("target".to_string(), m)]));
    let opts = RunOptions {
        epochs: 1,
        limit: None,
        limit_counts: Default::default(),
        max_in_flight: 2,
        seed: 0,
    };
    let dataset = task.dataset().unwrap();
    run(task, dataset, models, dir, &opts, Arc::new(())).await
}

#[tokio::test]
async fn stages_run_in_order_and_a_crashed_reduction_resumes_without_repeating_calls() {
    let d = tempfile::tempdir().unwrap();
    let dir = RunDir::create(d.path(), &meta()).unwrap();
    let model = Arc::new(ScriptedModel::new("squares", squares));
    let task = Arc::new(SumThenAsk {
        total: Arc::new(Total {
            fail_once: AtomicBool::new(true),
        }),
    });
    // First attempt: the draw stage finishes, the reduction crashes.
    let e = go(task.clone(), model.clone(), &dir)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("stage total: simulated crash"), "{e}");
    assert_eq!(model.calls(), N as u64);
    assert!(dir.stage("draw").unwrap().done().unwrap().is_some());
    assert!(dir.stage("total").unwrap().done().unwrap().is_none());
    assert!(!dir.artifact_path("total.json").unwrap().exists());
    assert!(dir.artifacts().unwrap().is_empty());

    // Resume: the finished map stage is not run again (no new calls for it).
    let s = go(task, model.clone(), &dir).await.unwrap();
    assert_eq!(model.calls(), N as u64 + 2);
    assert_eq!(s.solved, 2);
    // sum of i² for i < 6 = 0+1+4+9+16+25 = 55 (odd): "55 even?" no, "56 even?" yes.
    let t = &s.results.tables[0];
    assert_eq!(t.rows[0][1], Cell::Int(55));
    let answers: BTreeMap<String, String> = t.rows[1..]
        .iter()
        .map(|r| (r[0].render(), r[1].render()))
        .collect();
    assert_eq!(answers["even-55"], "false");
    assert_eq!(answers["even-56"], "true");
    // Totals cover every stage's records.
    assert_eq!(s.results.totals.samples, N as u64 + 2);
    assert_eq!(s.results.totals.calls, N as u64 + 2);
    // The artifact's digest is that of its bytes, and the stage that wrote it lists it.
    let bytes = std::fs::read(dir.artifact_path("total.json").unwrap()).unwrap();
    assert_eq!(bytes, br#"{"n":6,"sum":55}"#);
    let digest = hex::encode(Sha256::digest(&bytes));
    let listed = &dir.artifacts().unwrap()["total.json"];
    assert_eq!(listed.sha256, digest);
    assert_eq!(listed.stage, "total");
    let done = dir.stage("total").unwrap().done().unwrap().unwrap();
    assert_eq!(done.artifacts, vec![listed.clone()]);
    assert_eq!(
        dir.stage("check").unwrap().done().unwrap().unwrap().records,
        2
    );

    // Re-analysing reads the stages again and calls no model.
    let again = analyze(
        &SumThenAsk {
            total: Arc::new(Total {
                fail_once: AtomicBool::new(false),
            }),
        },
        &dir,
        0,
    )
    .unwrap();
    assert_eq!(again.tables, s.results.tables);
    assert_eq!(model.calls(), N as u64 + 2);
}
