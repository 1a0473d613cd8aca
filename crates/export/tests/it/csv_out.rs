//! The CSV export, cell by cell.

use std::path::Path;

use shammie_export::{export, Format};

use crate::fixture::{single_run, staged_run, SCRIPT_QUESTION};

fn read(path: &Path) -> Vec<Vec<String>> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(path)
        .unwrap();
    r.records()
        .map(|rec| rec.unwrap().iter().map(str::to_string).collect())
        .collect()
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

#[test]
fn samples_and_tables_cell_by_cell() {
    let tmp = tempfile::tempdir().unwrap();
    let run = single_run(tmp.path());
    let files = export(&run, Format::Csv, None).unwrap();
    let out = run.join("export");
    assert_eq!(
        files,
        [
            out.join("samples.csv"),
            out.join("table.accuracy.csv"),
            out.join("table.by_model.csv")
        ]
    );
    let rows = read(&files[0]);
    assert_eq!(
        rows[0],
        row(&[
            "id",
            "epoch",
            "stage",
            "input.choices",
            "input.meta",
            "input.question",
            "input.lang",
            "score.correct",
            "score.detail.a",
            "score.detail.b",
            "score.detail.c",
            "score.label",
            "score.mixed",
            "score.p",
            "input_tokens",
            "output_tokens",
            "calls",
            "error",
            "started_at",
            "duration_ms",
        ])
    );
    assert_eq!(rows.len(), 5, "a header and one row per record");
    let q1 = [
        r#"["3","4"]"#,
        r#"{"level":1,"source":"arith"}"#,
        "What is 2+2?",
    ];
    assert_eq!(
        rows[1],
        row(&[
            "q1",
            "1",
            "",
            q1[0],
            q1[1],
            q1[2],
            "",
            "true",
            "1",
            "x",
            "[1,2]",
            "A",
            "1",
            "0.75",
            "10",
            "2",
            "1",
            "",
            "2025-03-01T10:00:00.000Z",
            "1500",
        ])
    );
    assert_eq!(
        rows[2],
        row(&[
            "q2",
            "1",
            "",
            "",
            "",
            SCRIPT_QUESTION,
            "日本語",
            "false",
            "",
            "",
            "",
            "",
            "",
            "0.5",
            "24",
            "8",
            "3",
            "",
            "2025-03-01T10:00:01.000Z",
            "2500",
        ])
    );
    assert_eq!(
        rows[3],
        row(&[
            "q3",
            "1",
            "",
            "",
            "",
            "q3?",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "0",
            "0",
            "1",
            "provider error: HTTP 500: overloaded",
            "2025-03-01T10:00:02.000Z",
            "300",
        ])
    );
    assert_eq!(
        rows[4],
        row(&[
            "q1",
            "2",
            "",
            q1[0],
            q1[1],
            q1[2],
            "",
            "false",
            "",
            "",
            "",
            "",
            "x",
            "0.25",
            "0",
            "0",
            "0",
            "",
            "2025-03-01T10:00:05.000Z",
            "10",
        ])
    );
    // Quotes, the comma and the newline are quoted as CSV quotes them; the text is UTF-8.
    let raw = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        raw.contains("\"<script>alert(\"\"x\"\")</script>, ünïcödé 日本語\nsecond line\""),
        "{raw}"
    );

    assert_eq!(
        read(&files[1]),
        [
            row(&[
                "dataset",
                "accuracy",
                "accuracy.lo",
                "accuracy.hi",
                "accuracy.n",
                "samples"
            ]),
            row(&["arith", "0.5", "0.1", "0.9", "2", "2"]),
            row(&["all", "0.5", "0.2", "0.8", "", "3"]),
        ]
    );
    assert_eq!(
        read(&files[2]),
        [
            row(&["model", "score", "note"]),
            row(&["m1", "0.25", "ok"]),
            row(&["m2", "n/a", ""]),
        ]
    );
    // No temporary files are left behind.
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
}

#[test]
fn staged_runs_name_the_stage_in_the_order_the_stages_finished() {
    let tmp = tempfile::tempdir().unwrap();
    let run = staged_run(tmp.path());
    let out = tmp.path().join("elsewhere");
    let files = export(&run, Format::Csv, Some(&out)).unwrap();
    assert_eq!(
        files,
        [out.join("samples.csv")],
        "no results.json: no tables"
    );
    let rows = read(&files[0]);
    assert_eq!(
        rows[0],
        row(&[
            "id",
            "epoch",
            "stage",
            "input.prompt",
            "input.variant",
            "score.len",
            "score.ok",
            "input_tokens",
            "output_tokens",
            "calls",
            "error",
            "started_at",
            "duration_ms",
        ])
    );
    let start = "2025-03-01T10:00:00.000Z";
    assert_eq!(
        rows[1..],
        [
            row(&["p1", "1", "gen", "hi", "", "2", "", "1", "1", "0", "", start, "5"]),
            row(&["p1", "1", "eval", "hi", "b", "", "true", "1", "1", "0", "", start, "5"]),
        ]
    );
}

#[test]
fn a_run_without_records_has_the_fixed_columns() {
    let tmp = tempfile::tempdir().unwrap();
    let run = single_run(tmp.path());
    std::fs::remove_file(run.join("samples.jsonl")).unwrap();
    let files = export(&run, Format::Csv, None).unwrap();
    assert_eq!(
        read(&files[0]),
        [row(&[
            "id",
            "epoch",
            "stage",
            "input_tokens",
            "output_tokens",
            "calls",
            "error",
            "started_at",
            "duration_ms",
        ])]
    );
}
