//! The Parquet export, read back with the `parquet` crate's Arrow reader: column types,
//! nullability and values.

use std::fs::File;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use shammie_export::{export, Format};

use crate::fixture::{single_run, staged_run, SCRIPT_QUESTION};

fn read(path: &Path) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

fn strings(b: &RecordBatch, col: &str) -> Vec<Option<String>> {
    let a = b.column_by_name(col).unwrap().as_string::<i32>();
    (0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i).to_string()))
        .collect()
}

fn ints(b: &RecordBatch, col: &str) -> Vec<Option<i64>> {
    let a = b.column_by_name(col).unwrap().as_primitive::<Int64Type>();
    (0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i)))
        .collect()
}

fn floats(b: &RecordBatch, col: &str) -> Vec<Option<f64>> {
    let a = b.column_by_name(col).unwrap().as_primitive::<Float64Type>();
    (0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i)))
        .collect()
}

fn bools(b: &RecordBatch, col: &str) -> Vec<Option<bool>> {
    let a = b.column_by_name(col).unwrap().as_boolean();
    (0..a.len())
        .map(|i| a.is_valid(i).then(|| a.value(i)))
        .collect()
}

fn s(x: &str) -> Option<String> {
    Some(x.to_string())
}

#[test]
fn samples_have_typed_columns_and_known_values() {
    let tmp = tempfile::tempdir().unwrap();
    let run = single_run(tmp.path());
    let files = export(&run, Format::Parquet, None).unwrap();
    let out = run.join("export");
    assert_eq!(
        files,
        [
            out.join("samples.parquet"),
            out.join("table.accuracy.parquet"),
            out.join("table.by_model.parquet")
        ]
    );
    let batches = read(&files[0]);
    assert_eq!(batches.len(), 1);
    let b = &batches[0];
    assert_eq!(b.num_rows(), 4);
    let types: Vec<(String, DataType, bool)> = b
        .schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone(), f.is_nullable()))
        .collect();
    use DataType::*;
    let expected = [
        ("id", Utf8),
        ("epoch", Int64),
        ("stage", Utf8),
        ("input.choices", Utf8),
        ("input.meta", Utf8),
        ("input.question", Utf8),
        ("input.lang", Utf8),
        ("score.correct", Boolean),
        ("score.detail.a", Int64),
        ("score.detail.b", Utf8),
        ("score.detail.c", Utf8),
        ("score.label", Utf8),
        ("score.mixed", Utf8),
        ("score.p", Float64),
        ("input_tokens", Int64),
        ("output_tokens", Int64),
        ("calls", Int64),
        ("error", Utf8),
        ("started_at", Utf8),
        ("duration_ms", Int64),
    ];
    assert_eq!(
        types,
        expected
            .iter()
            .map(|(n, t)| (n.to_string(), t.clone(), true))
            .collect::<Vec<_>>()
    );
    assert_eq!(strings(b, "id"), [s("q1"), s("q2"), s("q3"), s("q1")]);
    assert_eq!(ints(b, "epoch"), [Some(1), Some(1), Some(1), Some(2)]);
    assert_eq!(strings(b, "stage"), [None, None, None, None]);
    assert_eq!(
        strings(b, "input.choices"),
        [s(r#"["3","4"]"#), None, None, s(r#"["3","4"]"#)]
    );
    assert_eq!(
        strings(b, "input.meta")[0],
        s(r#"{"level":1,"source":"arith"}"#)
    );
    assert_eq!(
        strings(b, "input.question"),
        [
            s("What is 2+2?"),
            s(SCRIPT_QUESTION),
            s("q3?"),
            s("What is 2+2?")
        ]
    );
    assert_eq!(strings(b, "input.lang"), [None, s("日本語"), None, None]);
    assert_eq!(
        bools(b, "score.correct"),
        [Some(true), Some(false), None, Some(false)]
    );
    assert_eq!(ints(b, "score.detail.a"), [Some(1), None, None, None]);
    assert_eq!(strings(b, "score.detail.c")[0], s("[1,2]"));
    assert_eq!(strings(b, "score.label"), [s("A"), None, None, None]);
    // Numbers and text in one column: Utf8, every value as JSON text.
    assert_eq!(strings(b, "score.mixed"), [s("1"), None, None, s("\"x\"")]);
    assert_eq!(
        floats(b, "score.p"),
        [Some(0.75), Some(0.5), None, Some(0.25)]
    );
    assert_eq!(
        ints(b, "input_tokens"),
        [Some(10), Some(24), Some(0), Some(0)]
    );
    assert_eq!(
        ints(b, "output_tokens"),
        [Some(2), Some(8), Some(0), Some(0)]
    );
    assert_eq!(ints(b, "calls"), [Some(1), Some(3), Some(1), Some(0)]);
    assert_eq!(
        strings(b, "error"),
        [None, None, s("provider error: HTTP 500: overloaded"), None]
    );
    assert_eq!(strings(b, "started_at")[1], s("2025-03-01T10:00:01.000Z"));
    assert_eq!(
        ints(b, "duration_ms"),
        [Some(1500), Some(2500), Some(300), Some(10)]
    );

    // Tables: estimates as three (four with n) Float64/Int64 columns.
    let t = &read(&files[1])[0];
    let names: Vec<&str> = t
        .schema_ref()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(
        names,
        [
            "dataset",
            "accuracy",
            "accuracy.lo",
            "accuracy.hi",
            "accuracy.n",
            "samples"
        ]
    );
    assert_eq!(strings(t, "dataset"), [s("arith"), s("all")]);
    assert_eq!(floats(t, "accuracy"), [Some(0.5), Some(0.5)]);
    assert_eq!(floats(t, "accuracy.lo"), [Some(0.1), Some(0.2)]);
    assert_eq!(floats(t, "accuracy.hi"), [Some(0.9), Some(0.8)]);
    assert_eq!(ints(t, "accuracy.n"), [Some(2), None]);
    assert_eq!(ints(t, "samples"), [Some(2), Some(3)]);
    let t = &read(&files[2])[0];
    assert_eq!(
        t.schema_ref().field_with_name("score").unwrap().data_type(),
        &Utf8
    );
    assert_eq!(strings(t, "score"), [s("0.25"), s("\"n/a\"")]);
    assert_eq!(strings(t, "note"), [s("ok"), None]);
}

#[test]
fn staged_rows_carry_their_stage() {
    let tmp = tempfile::tempdir().unwrap();
    let run = staged_run(tmp.path());
    let files = export(&run, Format::Parquet, None).unwrap();
    let b = &read(&files[0])[0];
    assert_eq!(strings(b, "stage"), [s("gen"), s("eval")]);
    assert_eq!(ints(b, "score.len"), [Some(2), None]);
    assert_eq!(bools(b, "score.ok"), [None, Some(true)]);
}

/// A run of more records than one batch: every row written once, in order, across
/// batches and row groups.
#[test]
fn many_records_cross_batches_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let run = single_run(tmp.path());
    let n = 10_000;
    let mut text = String::new();
    for i in 0..n {
        let scores = if i % 3 == 0 {
            serde_json::json!({"x": i})
        } else {
            serde_json::json!({"x": i as f64 + 0.5})
        };
        text.push_str(
            &serde_json::json!({
                "id": format!("s{i}"), "epoch": 1, "input": {"k": i},
                "transcript": {"events": []}, "scores": scores,
                "usage": {"input_tokens": 1, "output_tokens": 1},
                "started_at": "2025-03-01T10:00:00.000Z", "duration_ms": i
            })
            .to_string(),
        );
        text.push('\n');
    }
    std::fs::write(run.join("samples.jsonl"), text).unwrap();
    let files = export(&run, Format::Parquet, None).unwrap();
    let batches = read(&files[0]);
    let mut got = Vec::new();
    let mut xs = Vec::new();
    for b in &batches {
        got.extend(ints(b, "duration_ms").into_iter().map(Option::unwrap));
        xs.extend(floats(b, "score.x").into_iter().map(Option::unwrap));
    }
    assert_eq!(got, (0..n).collect::<Vec<i64>>());
    // Integers and floats in one column: Float64.
    assert_eq!(xs[3], 3.0);
    assert_eq!(xs[4], 4.5);
    let csv = export(&run, Format::Csv, None).unwrap();
    let lines = std::fs::read_to_string(&csv[0]).unwrap().lines().count();
    assert_eq!(lines, n as usize + 1);
}
