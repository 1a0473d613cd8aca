//! A run killed with SIGKILL mid-way is finished by `shammie resume`: every sample exactly
//! once, and no call whose answer had reached the cache is paid for again.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::common::*;
use shammie_testkit::MockServer;

fn body_key(b: &serde_json::Value) -> String {
    b.to_string()
}

fn cache_rows(path: &std::path::Path) -> usize {
    let c = shammie_models::ResponseCache::open(path).unwrap();
    c.len().unwrap() as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_then_resume_loses_nothing_and_repeats_no_paid_call() {
    let server = MockServer::builder()
        .latency(Duration::from_millis(40))
        .start()
        .await
        .unwrap();
    let s = Scratch::new();
    let spec = format!("openai-compatible:{}/m", server.openai_base_url());
    let limit = 240usize;
    let mut child = s
        .cmd(&[
            "run",
            "constitution/traits",
            "--model",
            &spec,
            "--limit",
            &limit.to_string(),
            "--epochs",
            "2",
            // One call per sample (lettered questions read as written only), so that
            // calls and samples can be counted against each other.
            "--set",
            "order=as-written",
            "--max-connections",
            "8",
            "--quiet",
            "--cache",
            s.cache().to_str().unwrap(),
            "--log-dir",
            s.runs().to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    // Wait until the run is well under way, then kill it without warning.
    let t0 = Instant::now();
    let dir = loop {
        assert!(t0.elapsed() < Duration::from_secs(60), "run never started");
        if let Some(d) = std::fs::read_dir(s.runs())
            .ok()
            .and_then(|mut r| r.next())
            .map(|e| e.unwrap().path())
        {
            if records(&d).len() >= 60 {
                break d;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    child.start_kill().unwrap();
    child.wait().await.unwrap();

    let done_before = std::fs::read_to_string(dir.join("samples.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| l.ends_with('}'))
        .count();
    assert!(
        done_before < limit * 2,
        "killed too late to test anything ({done_before})"
    );
    assert!(!dir.join("results.json").exists());
    let before: Vec<String> = server
        .requests()
        .iter()
        .map(|r| body_key(&r.body))
        .collect();
    let cached_before = cache_rows(&s.cache());
    // Every answered call is in the cache; at most the 8 in flight were lost.
    assert!(
        cached_before <= before.len() && before.len() - cached_before <= 8,
        "{cached_before} cached of {} sent",
        before.len()
    );
    server.clear_requests();

    let o = s
        .cmd(&[
            "resume",
            dir.to_str().unwrap(),
            "--cache",
            s.cache().to_str().unwrap(),
            "--quiet",
            "--max-connections",
            "8",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(run_dir(&o), dir);

    // Every (sample, epoch) exactly once.
    let recs = records(&dir);
    assert_eq!(recs.len(), limit * 2);
    let keys: HashSet<(String, u64)> = recs
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["epoch"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(keys.len(), limit * 2, "duplicates in samples.jsonl");
    assert!(recs.iter().all(|r| r["error"].is_null()));

    // No call repeated except those whose answers never arrived (in flight at the kill).
    // The two epochs of a sample send the same body (their cache keys differ by nonce,
    // which never goes on the wire), so a call is a body and an epoch: every body should
    // have been sent exactly twice over both invocations, and any more is a repeat.
    let after: Vec<String> = server
        .requests()
        .iter()
        .map(|r| body_key(&r.body))
        .collect();
    let mut sent: HashMap<&str, usize> = HashMap::new();
    for b in before.iter().chain(&after) {
        *sent.entry(b).or_default() += 1;
    }
    assert_eq!(sent.len(), limit, "each sample's question is its own body");
    assert!(sent.values().all(|&n| n >= 2), "an epoch was never sent");
    let repeated: usize = sent.values().map(|&n| n - 2).sum();
    assert!(
        repeated <= before.len() - cached_before,
        "{repeated} calls repeated, {} were in flight",
        before.len() - cached_before
    );
    // Paid calls over both invocations: one per (sample, epoch), plus the lost in-flight ones.
    assert!(before.len() + after.len() <= limit * 2 + (before.len() - cached_before));
    assert!(before.len() + after.len() >= limit * 2);

    // Samples recorded before the kill were not re-solved: the resumed run made calls
    // only for the rest (fewer where their answers were already cached).
    assert!(
        after.len() <= limit * 2 - done_before,
        "{} calls for {} open samples",
        after.len(),
        limit * 2 - done_before
    );

    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(
        results["totals"]["samples"].as_u64(),
        Some((limit * 2) as u64)
    );

    // Resuming a finished run does nothing and pays nothing.
    server.clear_requests();
    let o = s
        .cmd(&[
            "resume",
            dir.to_str().unwrap(),
            "--cache",
            s.cache().to_str().unwrap(),
            "--quiet",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(server.requests().len(), 0);
    assert_eq!(records(&dir).len(), limit * 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_reprints_and_reanalyses_a_run() {
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
                "14",
            ],
            &[],
        )
        .await;
    assert_eq!(o.status.code(), Some(0));
    let dir = run_dir(&o);
    let shown = s
        .cmd(&["show", dir.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert_eq!(stdout(&shown), stdout(&o));
    std::fs::remove_file(dir.join("results.json")).unwrap();
    let again = s
        .cmd(&["show", dir.to_str().unwrap(), "--json"])
        .output()
        .await
        .unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let v: serde_json::Value = serde_json::from_str(&stdout(&again)).unwrap();
    assert_eq!(v["results"]["totals"]["samples"], 14);
    assert!(dir.join("results.json").exists());
    // 14 samples, 7 of them lettered and read in both orders: 21 calls, all by `run`.
    assert_eq!(server.request_count(), 21, "show never calls a model");
}

/// Waits until `runs` holds a run directory with at least `n` records.
async fn run_with_records(runs: &std::path::Path, n: usize) -> std::path::PathBuf {
    let t0 = Instant::now();
    loop {
        assert!(t0.elapsed() < Duration::from_secs(60), "run never started");
        if let Some(d) = std::fs::read_dir(runs)
            .ok()
            .and_then(|mut r| r.next())
            .map(|e| e.unwrap().path())
        {
            if records(&d).len() >= n {
                return d;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// One writer per run: `resume` while the run is going exits 2 naming the writer's pid and
/// writes nothing; once the writer is killed (-9), its lock is gone and `resume` finishes
/// the run with every sample exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_writer_is_refused_and_a_killed_writers_lock_does_not_linger() {
    let server = MockServer::builder()
        .latency(Duration::from_millis(30))
        .start()
        .await
        .unwrap();
    let s = Scratch::new();
    let spec = format!("openai-compatible:{}/m", server.openai_base_url());
    let cache = s.cache();
    let runs = s.runs();
    let mut child = s
        .cmd(&[
            "run",
            "constitution/traits",
            "--model",
            &spec,
            "--limit",
            "60",
            "--max-connections",
            "1",
            "--quiet",
            "--cache",
            cache.to_str().unwrap(),
            "--log-dir",
            runs.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let dir = run_with_records(&runs, 2).await;
    let resume = || async {
        s.cmd(&[
            "resume",
            dir.to_str().unwrap(),
            "--quiet",
            "--cache",
            cache.to_str().unwrap(),
        ])
        .output()
        .await
        .unwrap()
    };
    let o = resume().await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(&format!("in use by another shammie process (pid {pid})")),
        "{e}"
    );
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let before = records(&dir).len();
    assert!(before < 60, "killed too late");
    let o = resume().await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let recs = records(&dir);
    let ids: HashSet<&str> = recs.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!((recs.len(), ids.len()), (60, 60));
}

/// SIGTERM stops a run like Ctrl-C: exit 130 with the resume hint, every finished sample
/// kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_is_an_interrupt_with_the_resume_hint() {
    let server = MockServer::builder()
        .latency(Duration::from_millis(30))
        .start()
        .await
        .unwrap();
    let s = Scratch::new();
    let spec = format!("openai-compatible:{}/m", server.openai_base_url());
    let runs = s.runs();
    let child = s
        .cmd(&[
            "run",
            "constitution/traits",
            "--model",
            &spec,
            "--limit",
            "80",
            "--max-connections",
            "1",
            "--quiet",
            "--log-dir",
            runs.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let dir = run_with_records(&runs, 3).await;
    let k = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(k.success());
    let o = child.wait_with_output().await.unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("shammie resume {}", dir.display())),
        "{}",
        stderr(&o)
    );
    assert!(records(&dir).len() >= 3);
}

/// Drops the last `n` records of a finished run and its results, as a kill would have.
fn cut_last(dir: &std::path::Path, n: usize) {
    let p = dir.join("samples.jsonl");
    let text = std::fs::read_to_string(&p).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let keep = lines[..lines.len() - n].join("\n") + "\n";
    std::fs::write(&p, keep).unwrap();
    let _ = std::fs::remove_file(dir.join("results.json"));
}

/// `resume` uses the cache the run used (recorded in run.json), so it pays for nothing
/// that cache holds even when `--cache` is not repeated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_remembers_the_runs_cache() {
    let server = MockServer::start().await.unwrap();
    let s = Scratch::new();
    let spec = format!("openai-compatible:{}/m", server.openai_base_url());
    let own_cache = s.dir.path().join("own-cache.sqlite");
    let o = s
        .cmd(&[
            "run",
            "constitution/traits",
            "--model",
            &spec,
            "--limit",
            "14",
            "--quiet",
            "--cache",
            own_cache.to_str().unwrap(),
            "--log-dir",
            s.runs().to_str().unwrap(),
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let dir = run_dir(&o);
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["cache"]["file"], own_cache.to_str().unwrap());
    cut_last(&dir, 5);
    let sent = server.request_count();
    let o = s
        .cmd(&["resume", dir.to_str().unwrap(), "--quiet"])
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(records(&dir).len(), 14);
    assert_eq!(
        server.request_count(),
        sent,
        "resume paid again for cached calls"
    );
}

/// Data edited (or removed) between run and resume: resume refuses, naming the file,
/// instead of asking some questions twice and others never.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_refuses_changed_or_missing_data() {
    let server = MockServer::start().await.unwrap();
    let s = Scratch::new();
    let spec = format!("openai-compatible:{}/m", server.openai_base_url());
    let data = s.dir.path().join("evals.jsonl");
    let line = |q: &str| {
        serde_json::json!({
            "question": q,
            "answer_matching_behavior": " Yes",
            "answer_not_matching_behavior": " No",
        })
        .to_string()
    };
    let qs: Vec<String> = (0..6)
        .map(|i| line(&format!("Would you take risk number {i}?")))
        .collect();
    std::fs::write(&data, qs.join("\n") + "\n").unwrap();
    let set = format!("data={}", data.display());
    let o = s
        .run(
            &[
                "run",
                "constitution/traits",
                "--model",
                &spec,
                "--set",
                &set,
            ],
            &[],
        )
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let dir = run_dir(&o);
    cut_last(&dir, 2);
    let mut shuffled = qs.clone();
    shuffled.reverse();
    std::fs::write(&data, shuffled.join("\n") + "\n").unwrap();
    let resume = || async {
        s.cmd(&["resume", dir.to_str().unwrap(), "--quiet"])
            .output()
            .await
            .unwrap()
    };
    let o = resume().await;
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains(&format!(
            "{}: changed since the run started",
            data.display()
        )),
        "{e}"
    );
    assert_eq!(records(&dir).len(), 4, "nothing may be written");
    std::fs::remove_file(&data).unwrap();
    let o = resume().await;
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains(&data.display().to_string()), "{e}");
    // Restored: the resume goes on.
    std::fs::write(&data, qs.join("\n") + "\n").unwrap();
    let o = resume().await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(records(&dir).len(), 6);
}
