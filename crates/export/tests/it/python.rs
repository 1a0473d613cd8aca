//! The exports as researchers read them: pandas and polars read the CSV and Parquet
//! files, inspect_ai reads the eval log (`read_eval_log`, `samples_df`, `evals_df`), and
//! `tests/read_exports.py` asserts the fixture's known values in each.
//!
//! The Python is `SHAMMIE_TEST_PYTHON`, else `~/.cache/shammie/pyenv/bin/python`, which
//! `scripts/test` creates with pinned pandas, pyarrow, polars and inspect_ai. Without them
//! this test fails (it never skips), saying so.

use std::path::PathBuf;
use std::process::Command;

use shammie_export::{export, Format};

use crate::fixture::{single_run, staged_run};

fn python() -> PathBuf {
    match std::env::var_os("SHAMMIE_TEST_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => {
            let home = std::env::var_os("HOME").expect("HOME is set");
            PathBuf::from(home).join(".cache/shammie/pyenv/bin/python")
        }
    }
}

const HOW: &str = "scripts/test installs them (a venv at ~/.cache/shammie/pyenv with pinned \
                   pandas, pyarrow, polars and inspect_ai); or point SHAMMIE_TEST_PYTHON at a \
                   Python that has them";

#[test]
fn pandas_polars_and_inspect_ai_read_the_exports() {
    let py = python();
    assert!(
        py.exists(),
        "no Python at {} for the export tests: {HOW}",
        py.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    for run in [single_run(tmp.path()), staged_run(tmp.path())] {
        for f in Format::ALL {
            export(&run, f, None).unwrap();
        }
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/read_exports.py");
    let out = Command::new(&py)
        .arg(script)
        .arg(tmp.path())
        .env("INSPECT_LOG_DIR", tmp.path().join("inspect-logs"))
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}: {HOW}", py.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {}
        Some(3) => panic!("{} lacks packages ({}): {HOW}", py.display(), stderr.trim()),
        _ => panic!(
            "read_exports.py failed ({}):\n{stdout}\n{stderr}",
            out.status
        ),
    }
    assert!(stdout.contains("all exports read"), "{stdout}");
}
