//! `shammie export` on a real run (constitution/traits on the loopback mock server, one
//! sample failed by a 500): each format, one row or sample per record with its scores,
//! and the errors a user meets.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::common::*;
use shammie_testkit::{Fault, MockServer};

async fn export(s: &Scratch, args: &[&str]) -> std::process::Output {
    let mut all = vec!["export"];
    all.extend(args);
    s.cmd(&all).output().await.unwrap()
}

fn lines(o: &std::process::Output) -> Vec<PathBuf> {
    stdout(o).lines().map(PathBuf::from).collect()
}

/// The score columns the records call for: `score.NAME`, or `score.NAME.SUB` for an
/// object.
fn score_columns(recs: &[serde_json::Value]) -> BTreeSet<String> {
    let mut cols = BTreeSet::new();
    for r in recs {
        for (k, v) in r["scores"].as_object().unwrap() {
            match v.as_object() {
                Some(o) if !o.is_empty() => {
                    cols.extend(o.keys().map(|sub| format!("score.{k}.{sub}")))
                }
                _ => {
                    cols.insert(format!("score.{k}"));
                }
            }
        }
    }
    cols
}

fn parquet_rows_and_columns(path: &Path) -> (i64, Vec<String>) {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let r = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let meta = r.metadata().file_metadata();
    let cols = meta
        .schema_descr()
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    (meta.num_rows(), cols)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_run_exports_to_csv_parquet_and_inspect() {
    let server = MockServer::start().await.unwrap();
    server.push_faults([Fault::Status(500)]);
    let s = Scratch::new();
    let spec = format!("openai-compatible:{}/mock-model", server.openai_base_url());
    let o = s
        .run(
            &[
                "run",
                "constitution/traits",
                "--model",
                &spec,
                "--limit",
                "6",
                "--max-attempts",
                "1",
                "--max-connections",
                "1",
            ],
            &[],
        )
        .await;
    assert_eq!(
        o.status.code(),
        Some(1),
        "one failed sample: {}",
        stderr(&o)
    );
    let dir = run_dir(&o);
    let d = dir.to_str().unwrap();
    let recs = records(&dir);
    assert_eq!(recs.len(), 6);
    let ids: Vec<&str> = recs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let want_scores = score_columns(&recs);
    assert!(want_scores.contains("score.p_match"), "{want_scores:?}");
    let tables = results(&dir)["tables"].as_array().unwrap().len();

    // csv: samples.csv and a file per table, listed on stdout.
    let o = export(&s, &[d, "--format", "csv"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let files = lines(&o);
    assert_eq!(files[0], dir.join("export/samples.csv"));
    assert_eq!(files.len(), 1 + tables);
    let mut csv = csv::Reader::from_path(&files[0]).unwrap();
    let header: Vec<String> = csv.headers().unwrap().iter().map(String::from).collect();
    for c in want_scores
        .iter()
        .map(String::as_str)
        .chain(["id", "error"])
    {
        assert!(header.iter().any(|h| h == c), "no {c} in {header:?}");
    }
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), recs.len(), "one row per record");
    for (row, rec) in rows.iter().zip(&recs) {
        assert_eq!(&row[col("id")], rec["id"].as_str().unwrap());
        assert_eq!(&row[col("error")], rec["error"].as_str().unwrap_or(""));
        match rec["scores"]["p_match"].as_f64() {
            Some(p) => assert_eq!(row[col("score.p_match")].parse::<f64>().unwrap(), p),
            None => assert_eq!(&row[col("score.p_match")], ""),
        }
    }
    assert_eq!(
        rows.iter().filter(|r| !r[col("error")].is_empty()).count(),
        1
    );

    // parquet, into a folder of our choosing.
    let out = s.dir.path().join("pq");
    let o = export(
        &s,
        &[d, "--format", "parquet", "--out", out.to_str().unwrap()],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let files = lines(&o);
    assert_eq!(files[0], out.join("samples.parquet"));
    assert_eq!(files.len(), 1 + tables);
    let (n, cols) = parquet_rows_and_columns(&files[0]);
    assert_eq!(n, recs.len() as i64);
    assert_eq!(cols, header, "the same columns as the CSV");

    // inspect: one log named as Inspect names logs, a sample per record.
    let o = export(&s, &[d, "--format", "inspect"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "", "no note for Inspect's own file name");
    let files = lines(&o);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].parent().unwrap(), dir.join("export"));
    let name = files[0].file_name().unwrap().to_str().unwrap();
    assert!(name.contains("_constitution-traits_"), "{name}");
    let log: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    assert_eq!(log["eval"]["task"], "constitution/traits");
    assert_eq!(log["eval"]["model"], spec);
    let samples = log["samples"].as_array().unwrap();
    let got: Vec<&str> = samples.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(got, ids);
    for (sample, rec) in samples.iter().zip(&recs) {
        match rec["scores"]["p_match"].as_f64() {
            Some(p) => assert_eq!(sample["scores"]["p_match"]["value"].as_f64(), Some(p)),
            None => assert!(sample["scores"].get("p_match").is_none()),
        }
        assert_eq!(sample["error"].is_object(), rec["error"].is_string());
    }
    assert_eq!(log["results"]["total_samples"], 6);
    assert_eq!(log["results"]["completed_samples"], 5);

    // A file name Inspect does not list: written, with a note on stderr.
    let mine = s.dir.path().join("mine.json");
    let o = export(
        &s,
        &[d, "--format", "inspect", "--out", mine.to_str().unwrap()],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(lines(&o), [mine]);
    assert!(stderr(&o).contains("inspect view"), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_errors_are_one_clear_line_with_exit_2() {
    let s = Scratch::new();
    let d = s.dir.path().to_str().unwrap();
    let o = export(&s, &[d, "--format", "csv"]).await;
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stdout(&o), "");
    assert!(
        stderr(&o).contains(&format!("{d} is not a run directory")),
        "{}",
        stderr(&o)
    );
    let o = export(&s, &[d, "--format", "xlsx"]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("unknown export format `xlsx` (one of: csv, parquet, inspect)"),
        "{}",
        stderr(&o)
    );
    // A bad line is named by file and line.
    let run = s.dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::write(
        run.join("run.json"),
        serde_json::json!({
            "schema_version": 2, "shammie_version": "0", "study": "s", "task": "t",
            "models": {}, "options": {}, "config": {}, "seed": 1, "epochs": 1,
            "max_connections": 1, "created_at": "2025-01-01T00:00:00Z"
        })
        .to_string(),
    )
    .unwrap();
    std::fs::write(run.join("samples.jsonl"), "not json\n").unwrap();
    let o = export(&s, &[run.to_str().unwrap(), "--format", "inspect"]).await;
    assert_eq!(o.status.code(), Some(2));
    let want = format!(
        "{}:1: not a valid record",
        run.join("samples.jsonl").display()
    );
    assert!(stderr(&o).contains(&want), "{}", stderr(&o));
}
