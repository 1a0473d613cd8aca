//! Snapshots of what users read: `shammie list`, `--help`, and a results table.

use crate::common::*;
use shammie_testkit::MockServer;

#[tokio::test]
async fn list_text_and_json() {
    let s = Scratch::new();
    let o = s.cmd(&["list"]).output().await.unwrap();
    assert_eq!(o.status.code(), Some(0));
    insta::assert_snapshot!("list", stdout(&o));
    let o = s.cmd(&["list", "--json"]).output().await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    insta::assert_json_snapshot!("list_json", v);
}

#[tokio::test]
async fn run_help() {
    let s = Scratch::new();
    let o = s.cmd(&["run", "--help"]).output().await.unwrap();
    assert_eq!(o.status.code(), Some(0));
    insta::assert_snapshot!("run_help", stdout(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_table_for_a_fixed_mock_run() {
    // The mock's answers are a fixed function of the prompt and the bootstrap is seeded,
    // so the whole table is reproducible.
    let server = MockServer::start().await.unwrap();
    let s = Scratch::new();
    let spec = format!("openai-compatible:{}/m", server.openai_base_url());
    let o = s
        .run(
            &[
                "run",
                "constitution/traits",
                "--model",
                &spec,
                "--limit",
                "70",
                "--seed",
                "3",
            ],
            &[],
        )
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let table: Vec<String> = out.lines().map(redact_date).collect();
    insta::assert_snapshot!("traits_table", table[..table.len() - 1].join("\n"));
}
