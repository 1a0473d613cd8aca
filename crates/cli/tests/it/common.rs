//! Helpers for driving the `shammie` binary against the loopback mock server.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_shammie");
pub(crate) const TEST_KEY: &str = "sk-test-secret-0123456789";

/// A scratch folder with a cache file and a runs folder.
pub(crate) struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub(crate) fn new() -> Self {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    pub(crate) fn cache(&self) -> PathBuf {
        self.dir.path().join("cache.sqlite")
    }
    pub(crate) fn runs(&self) -> PathBuf {
        self.dir.path().join("runs")
    }
    /// A `shammie` command with the environment cleared of real keys and pointed here.
    pub(crate) fn cmd(&self, args: &[&str]) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(BIN);
        c.args(args)
            .env_remove("OPENAI_API_KEY")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("OPENAI_BASE_URL")
            .env_remove("ANTHROPIC_BASE_URL")
            .env("SHAMMIE_CACHE_DIR", self.dir.path().join("default-cache"))
            .env("NO_COLOR", "1")
            .kill_on_drop(true);
        c
    }
    /// Runs `shammie` with `--cache` and `--log-dir` pointing into the scratch folder.
    pub(crate) async fn run(&self, args: &[&str], envs: &[(&str, &str)]) -> Output {
        let cache = self.cache();
        let runs = self.runs();
        let mut all: Vec<&str> = args.to_vec();
        all.extend([
            "--cache",
            cache.to_str().unwrap(),
            "--log-dir",
            runs.to_str().unwrap(),
            "--quiet",
        ]);
        let mut c = self.cmd(&all);
        for (k, v) in envs {
            c.env(k, v);
        }
        c.output().await.unwrap()
    }
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The run directory: the last line of stdout.
pub(crate) fn run_dir(o: &Output) -> PathBuf {
    PathBuf::from(stdout(o).lines().last().expect("stdout has lines").trim())
}

pub(crate) fn records(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("samples.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `results.json` of a run directory.
pub(crate) fn results(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

/// The table named `name` in results (or in an `analyze --json` document).
pub(crate) fn table<'a>(res: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    res["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no table {name} in {res:#}"))
}

/// What `shammie show DIR` prints, without the last line (the run directory, which
/// differs per run) and the totals line (whether a repeated call was a cache hit depends
/// on timing when duplicates are in flight together): the tables users read.
pub(crate) async fn shown_tables(s: &Scratch, dir: &Path) -> String {
    let o = s
        .cmd(&["show", dir.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    lines[..lines.len() - 1]
        .iter()
        .filter(|l| !l.starts_with("samples "))
        .map(|l| redact_date(l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A table caption `(model … · seed S · YYYY-MM-DD)` with the run's date replaced by
/// `DATE` and the mock server's port by `PORT`, so snapshots do not change from run to run.
pub(crate) fn redact_date(line: &str) -> String {
    let line = &redact_port(line);
    match (
        line.starts_with('('),
        line.strip_suffix(')'),
        line.rfind(" \u{b7} "),
    ) {
        (true, Some(body), Some(i)) => {
            let date = &body[i + " \u{b7} ".len()..];
            if date.len() == 10 && date.chars().filter(|c| *c == '-').count() == 2 {
                format!("{} \u{b7} DATE)", &body[..i])
            } else {
                line.to_string()
            }
        }
        _ => line.to_string(),
    }
}

/// `127.0.0.1:46587` → `127.0.0.1:PORT`.
fn redact_port(line: &str) -> String {
    const HOST: &str = "127.0.0.1:";
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find(HOST) {
        out.push_str(&rest[..i + HOST.len()]);
        rest = rest[i + HOST.len()..].trim_start_matches(|c: char| c.is_ascii_digit());
        out.push_str("PORT");
    }
    out.push_str(rest);
    out
}

/// A `shammie` command for local-model tests: models under `dir/models`, no downloads,
/// the response cache in `dir/<cache>`.
pub(crate) fn offline_cmd(dir: &Path, cache: &str) -> std::process::Command {
    let mut c = std::process::Command::new(BIN);
    c.env("SHAMMIE_MODELS_DIR", dir.join("models"))
        .env("SHAMMIE_OFFLINE", "1")
        .env("SHAMMIE_CACHE_DIR", dir.join(cache))
        .env("NO_COLOR", "1");
    c
}

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The one run directory under `runs`.
pub(crate) fn only_run(runs: &Path) -> PathBuf {
    let all: Vec<_> = std::fs::read_dir(runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(all.len(), 1, "{all:?}");
    all[0].clone()
}

/// Waits until stage `target` of the (single) run under `runs` has begun and is not done:
/// true then; false if `child` ended first or the stage finished between two looks.
/// Panics after two minutes.
pub(crate) fn wait_for_stage(child: &mut std::process::Child, runs: &Path, target: &str) -> bool {
    let t0 = std::time::Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        let run = std::fs::read_dir(runs)
            .ok()
            .and_then(|mut r| r.next())
            .map(|e| e.unwrap().path());
        if let Some(r) = run {
            let sd = r.join("stages").join(target);
            if sd.join("done.json").exists() {
                return false;
            }
            if sd.exists() {
                return true;
            }
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(120),
            "{target} never began"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}
