//! What a user is told when an export cannot be made.

use shammie_export::{export, ExportError, Format};

use crate::fixture::single_run;

#[test]
fn not_a_run_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let e = export(tmp.path(), Format::Csv, None)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        format!(
            "{} is not a run directory (no run.json)",
            tmp.path().display()
        )
    );
}

#[test]
fn unknown_format() {
    let e = "xlsx".parse::<Format>().unwrap_err();
    assert!(matches!(e, ExportError::UnknownFormat(_)));
    assert_eq!(
        e.to_string(),
        "unknown export format `xlsx` (one of: csv, parquet, inspect)"
    );
    assert_eq!("parquet".parse::<Format>().unwrap(), Format::Parquet);
}

#[test]
fn a_bad_line_is_named_by_file_and_line_and_nothing_is_left_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let run = single_run(tmp.path());
    let path = run.join("samples.jsonl");
    let mut text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    text = format!(
        "{}\n{}\n{{\"id\": oops}}\n{}\n",
        lines[0], lines[1], lines[2]
    );
    std::fs::write(&path, text).unwrap();
    for f in Format::ALL {
        let e = export(&run, f, None).unwrap_err().to_string();
        let want = format!("{}:3: not a valid record", path.display());
        assert!(e.starts_with(&want), "{f:?}: {e}");
    }
    // Neither a partial file nor a temporary one.
    let left: Vec<_> = std::fs::read_dir(run.join("export"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}
