//! The engine's contract, with a small task defined here and real providers talking to
//! the loopback mock server.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use shammie_core::{Cell, GenerateRequest, Sample, SampleRecord, Scores, Table};
use shammie_engine::*;
use shammie_log::{RunDir, RunMeta};
use shammie_models::{ModelHub, OpenOptions, ProviderEnv, RetryPolicy};
use shammie_testkit::MockServer;

/// Asks the target one question per sample; sample "panic" panics, a line "bad" is a
/// data error.
struct Echo {
    n: usize,
    bad_at: Option<usize>,
    active: AtomicUsize,
    peak: AtomicUsize,
}

#[async_trait]
impl Task for Echo {
    fn study(&self) -> &str {
        "test"
    }
    fn name(&self) -> &str {
        "echo"
    }
    fn roles(&self) -> Vec<RoleSpec> {
        vec![
            RoleSpec {
                name: "target",
                help: "",
                defaults_to: None,
            },
            RoleSpec {
                name: "judge",
                help: "",
                defaults_to: Some("target"),
            },
        ]
    }
    fn config(&self) -> serde_json::Value {
        serde_json::json!({})
    }
    fn dataset(&self) -> Result<Dataset, DataError> {
        let (n, bad_at) = (self.n, self.bad_at);
        Ok(Dataset {
            total: Some(n as u64),
            units: None,
            unit_name: "sample",
            samples: Box::new((0..n).map(move |i| {
                if Some(i) == bad_at {
                    return Err(DataError::Line {
                        path: "data.jsonl".into(),
                        line: i as u64 + 1,
                        message: "bad".into(),
                    });
                }
                Ok(Sample {
                    id: format!("s{i}"),
                    unit: None,
                    input: serde_json::json!({"q": format!("Question {i}?")}),
                })
            })),
        })
    }
    async fn solve(&self, cx: &SampleContext, sample: &Sample) -> Result<Scores, SampleError> {
        let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        struct Dec<'a>(&'a AtomicUsize);
        impl Drop for Dec<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let _d = Dec(&self.active);
        if sample.id == "s3" {
            panic!("study bug on s3");
        }
        let q = sample.input["q"].as_str().unwrap();
        let a = cx.generate("target", GenerateRequest::user(q, 4)).await?;
        let j = cx
            .generate(
                "judge",
                GenerateRequest::user(format!("Grade: {}", a.text), 4),
            )
            .await?;
        Ok(Scores::from([
            ("answer".to_string(), serde_json::json!(a.text)),
            ("grade".to_string(), serde_json::json!(j.text)),
        ]))
    }
    fn analyze(
        &self,
        records: &mut dyn Iterator<Item = SampleRecord>,
        _run: &shammie_engine::RunInfo,
    ) -> Result<Analysis, String> {
        let n = records.filter(|r| r.error.is_none()).count();
        Ok(Analysis::from(vec![Table {
            name: "n".into(),
            caption: String::new(),
            decimals: None,
            title: "ok".into(),
            columns: vec!["ok".into()],
            rows: vec![vec![Cell::Int(n as i64)]],
            notes: vec![],
        }]))
    }
}

fn echo(n: usize, bad_at: Option<usize>) -> Arc<Echo> {
    Arc::new(Echo {
        n,
        bad_at,
        active: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
    })
}

fn meta() -> RunMeta {
    RunMeta {
        schema_version: shammie_core::SCHEMA_VERSION,
        shammie_version: "test".into(),
        study: "test".into(),
        task: "echo".into(),
        models: BTreeMap::new(),
        options: BTreeMap::new(),
        config: serde_json::json!({}),
        seed: 0,
        epochs: 1,
        limit: None,
        limit_counts_recorded: None,
        max_connections: 4,
        created_at: String::new(),
        cache: None,
        inputs: Default::default(),
        batch: None,
    }
}

fn models(server: &MockServer, max_connections: usize) -> Models {
    let hub = ModelHub::new(OpenOptions {
        prices: std::sync::Arc::new(shammie_models::pricing::PriceTable::builtin()),
        env: ProviderEnv::default(),
        max_connections,
        timeout: Duration::from_secs(10),
        retry: RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        },
        cache: None,
        local: None,
        budget: None,
        batch: None,
    })
    .unwrap();
    let spec = format!("openai-compatible:{}/m", server.openai_base_url())
        .parse()
        .unwrap();
    let m = hub.open(&spec).unwrap();
    Models::new(BTreeMap::from([("target".to_string(), m)]))
}

fn opts(epochs: u32, max_in_flight: usize) -> RunOptions {
    RunOptions {
        epochs,
        limit: None,
        limit_counts: Default::default(),
        max_in_flight,
        seed: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_each_sample_and_epoch_once_with_bounded_concurrency() {
    let server = MockServer::builder()
        .latency(Duration::from_millis(5))
        .start()
        .await
        .unwrap();
    let d = tempfile::tempdir().unwrap();
    let dir = RunDir::create(d.path(), &meta()).unwrap();
    let task = echo(30, None);
    let ms = models(&server, 64)
        .resolve(&task.roles(), "test/echo")
        .unwrap();
    let s = run(
        task.clone(),
        task.dataset().unwrap(),
        ms,
        &dir,
        &opts(2, 5),
        Arc::new(()),
    )
    .await
    .unwrap();
    assert_eq!(s.solved, 60);
    assert_eq!(s.results.totals.samples, 60);
    assert_eq!(s.results.totals.failed, 2, "s3 panics in both epochs");
    assert!(task.peak.load(Ordering::SeqCst) <= 5);
    assert!(
        task.peak.load(Ordering::SeqCst) >= 2,
        "samples ran concurrently"
    );

    let recs: Vec<SampleRecord> = dir.records().unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(recs.len(), 60);
    let s3: Vec<&SampleRecord> = recs.iter().filter(|r| r.id == "s3").collect();
    assert!(s3
        .iter()
        .all(|r| r.error.as_deref().unwrap().contains("study bug on s3")));
    let ok = recs.iter().find(|r| r.id == "s1" && r.epoch == 2).unwrap();
    // The judge role defaulted to the target model; both calls are in the transcript.
    assert_eq!(ok.transcript.calls().count(), 2);
    assert_eq!(ok.transcript.calls().nth(1).unwrap().role, "judge");
    assert_eq!(
        ok.transcript.calls().next().unwrap().request.nonce,
        1 << 32,
        "epoch 2 calls are distinct"
    );
    let e1 = recs.iter().find(|r| r.id == "s1" && r.epoch == 1).unwrap();
    assert_eq!(e1.transcript.calls().next().unwrap().request.nonce, 0);
    assert_eq!(server.request_count(), 29 * 2 * 2);

    // Running again in the same directory solves nothing.
    let again = run(
        task.clone(),
        task.dataset().unwrap(),
        models(&server, 4).resolve(&task.roles(), "t").unwrap(),
        &dir,
        &opts(2, 5),
        Arc::new(()),
    )
    .await
    .unwrap();
    assert_eq!((again.solved, again.skipped), (0, 60));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_error_mid_stream_stops_the_run_but_keeps_finished_samples() {
    let server = MockServer::start().await.unwrap();
    let d = tempfile::tempdir().unwrap();
    let dir = RunDir::create(d.path(), &meta()).unwrap();
    let task = echo(20, Some(10));
    let ms = models(&server, 4).resolve(&task.roles(), "t").unwrap();
    let e = run(
        task.clone(),
        task.dataset().unwrap(),
        ms,
        &dir,
        &opts(1, 3),
        Arc::new(()),
    )
    .await
    .unwrap_err();
    assert_eq!(e.to_string(), "data.jsonl:11: bad");
    let recs: Vec<SampleRecord> = dir.records().unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(
        recs.len(),
        10,
        "the samples before the bad line are all recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_failures_become_sample_errors() {
    let server = MockServer::start().await.unwrap();
    server.push_faults([shammie_testkit::Fault::Status(400)]);
    let d = tempfile::tempdir().unwrap();
    let dir = RunDir::create(d.path(), &meta()).unwrap();
    let task = echo(3, None);
    let ms = models(&server, 1).resolve(&task.roles(), "t").unwrap();
    let s = run(
        task.clone(),
        task.dataset().unwrap(),
        ms,
        &dir,
        &opts(1, 1),
        Arc::new(()),
    )
    .await
    .unwrap();
    assert_eq!(s.results.totals.failed, 1);
    let recs: Vec<SampleRecord> = dir.records().unwrap().map(|r| r.unwrap()).collect();
    let bad = recs.iter().find(|r| r.error.is_some()).unwrap();
    assert_eq!(bad.id, "s0");
    assert!(
        bad.error
            .as_deref()
            .unwrap()
            .starts_with("target model: request rejected (HTTP 400)"),
        "{:?}",
        bad.error
    );
    assert!(bad.transcript.calls().next().unwrap().error.is_some());
    assert_eq!(s.results.tables[0].rows[0][0], Cell::Int(2));
}

#[test]
fn missing_and_unknown_roles_are_config_errors() {
    let task = echo(1, None);
    let e = Models::default()
        .resolve(&task.roles(), "test/echo")
        .unwrap_err()
        .to_string();
    assert!(e.contains("needs a `target` model"), "{e}");
}
