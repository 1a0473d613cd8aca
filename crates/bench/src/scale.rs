//! `shammie-bench scale`: a large API run against servers with a fixed number of batch
//! slots each (`shammie-mock --slots`, like a GPU server), one server against two
//! replicas behind one spec; then the same run repeated on a warm response cache, with
//! the share of calls it saved. Optionally the one-server run through Inspect AI, which
//! has no replicas.
//!
//! The workload is `constitution/traits` on the logprob path with the questions read as
//! written: one Chat Completions call per sample, so `--requests` is both.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{measure, start_mock_with, Measure};

#[derive(clap::Args)]
pub(crate) struct ScaleArgs {
    /// Requests (= samples) per run.
    #[arg(long, default_value_t = 10_000)]
    requests: usize,
    /// Replicas behind the spec in the replicated runs.
    #[arg(long, default_value_t = 2)]
    replicas: usize,
    /// Requests each server answers at once (its batch slots).
    #[arg(long, default_value_t = 64)]
    slots: usize,
    /// Latency of each response, in milliseconds (a slot is held for it).
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    /// Requests in flight from the harness (`--max-connections`).
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
    /// A script `SCRIPT PORT LIMIT MAX_CONNECTIONS` running the workload (one call per
    /// question) through Inspect AI against one server (bench/inspect/run_inspect.sh).
    #[arg(long)]
    inspect: Option<std::path::PathBuf>,
    /// Requests for the Inspect run.
    #[arg(long, default_value_t = 2000)]
    inspect_requests: usize,
}

struct Row {
    m: Measure,
    replicas: usize,
    /// Share of the run's calls answered by the response cache (from its results.json).
    cached: Option<f64>,
    /// Requests each server answered.
    served: Vec<u64>,
}

pub(crate) fn run(a: ScaleArgs) -> Result<()> {
    let exe = std::env::current_exe()?;
    let bin_dir = exe.parent().unwrap().to_path_buf();
    let shammie = bin_dir.join("shammie");
    if !shammie.exists() {
        bail!(
            "{} not built: cargo build --release -p shammie",
            shammie.display()
        );
    }
    let scratch = tempfile::tempdir()?;
    let mut rows = Vec::new();
    let cache = scratch.path().join("cache.sqlite");
    let runs = scratch.path().join("runs");
    // The replicated runs reuse their servers' ports: the cache identity of a spec is its
    // first server's address, so the repeat must name the same servers.
    let ports = std::cell::RefCell::new(vec![0u16; a.replicas]);
    let shammie_run = |label: &str, replicas: usize, extra: &[&str]| -> Result<Row> {
        let keep = replicas == a.replicas;
        let mocks = (0..replicas)
            .map(|i| {
                let port = if keep { ports.borrow()[i] } else { 0 };
                start_mock_with(&bin_dir, a.latency_ms, Some(a.slots), port)
            })
            .collect::<Result<Vec<_>>>()?;
        if keep {
            for (i, m) in mocks.iter().enumerate() {
                ports.borrow_mut()[i] = m.base.rsplit(':').next().unwrap().parse()?;
            }
        }
        let bases: Vec<String> = mocks.iter().map(|m| format!("{}/v1", m.base)).collect();
        let spec = format!("openai-compatible:{}/bench", bases.join(","));
        let mut cmd = Command::new(&shammie);
        cmd.args(["run", "constitution/traits", "--model", &spec, "--quiet"])
            .args(["--set", "path=logprobs", "--set", "order=as-written"])
            .args(["--limit", &a.requests.to_string()])
            .args(["--max-connections", &a.in_flight.to_string()])
            .arg("--log-dir")
            .arg(&runs)
            .args(extra);
        let m = measure(label, a.in_flight, a.requests, &mut cmd)?;
        let served = mocks
            .into_iter()
            .map(|m| m.stop())
            .collect::<Result<Vec<_>>>()?;
        let cached = match extra.contains(&"--no-cache") {
            true => None,
            false => newest_results(&runs)?.map(|t| {
                t["cached_calls"].as_f64().unwrap_or(0.0) / t["calls"].as_f64().unwrap_or(1.0)
            }),
        };
        let row = Row {
            m,
            replicas,
            cached,
            served,
        };
        eprintln!("{}", line(&row));
        Ok(row)
    };
    let cache_s = cache.to_str().unwrap();
    rows.push(shammie_run("shammie, no cache", 1, &["--no-cache"])?);
    rows.push(shammie_run(
        "shammie, no cache",
        a.replicas,
        &["--no-cache"],
    )?);
    rows.push(shammie_run(
        "shammie, cache (cold)",
        a.replicas,
        &["--cache", cache_s],
    )?);
    rows.push(shammie_run(
        "shammie, cache (repeat)",
        a.replicas,
        &["--cache", cache_s],
    )?);
    if let Some(script) = &a.inspect {
        let mock = start_mock_with(&bin_dir, a.latency_ms, Some(a.slots), 0)?;
        let port = mock.base.rsplit(':').next().unwrap().to_string();
        let mut cmd = Command::new("bash");
        cmd.arg(script).args([
            port,
            a.inspect_requests.to_string(),
            a.in_flight.to_string(),
        ]);
        let m = measure("Inspect AI", a.in_flight, a.inspect_requests, &mut cmd)?;
        let served = vec![mock.stop()?];
        let row = Row {
            m,
            replicas: 1,
            cached: None,
            served,
        };
        eprintln!("{}", line(&row));
        rows.push(row);
    }
    println!(
        "Servers: shammie-mock, {} slots each, {} ms per response (so one server answers at \
         most {:.0} requests/s); {} requests in flight; `shammie run constitution/traits` \
         (logprob path, as written: one call per sample).\n",
        a.slots,
        a.latency_ms,
        a.slots as f64 * 1000.0 / a.latency_ms as f64,
        a.in_flight
    );
    println!("| harness | servers | requests | wall (s) | requests/s | CPU-s per 1,000 | peak RSS (MB) | from cache | answered per server |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!("{}", line(r));
    }
    let one = rows
        .iter()
        .find(|r| r.replicas == 1 && r.m.label == "shammie, no cache");
    let two = rows
        .iter()
        .find(|r| r.replicas == a.replicas && r.m.label == "shammie, no cache");
    if let (Some(one), Some(two)) = (one, two) {
        println!(
            "\n{} replicas ÷ 1 server, requests/s: {:.2}×",
            a.replicas,
            rate(&two.m) / rate(&one.m)
        );
    }
    if let (Some(i), Some(one)) = (rows.iter().find(|r| r.m.label == "Inspect AI"), one) {
        println!(
            "shammie ÷ Inspect AI on one server, requests/s: {:.1}×; CPU per request: {:.1}× less",
            rate(&one.m) / rate(&i.m),
            i.m.cpu_per_1000() / one.m.cpu_per_1000()
        );
    }
    Ok(())
}

fn rate(m: &Measure) -> f64 {
    m.samples as f64 / m.wall_s
}

fn line(r: &Row) -> String {
    format!(
        "| {} | {} | {} | {:.2} | {:.0} | {:.3} | {:.0} | {} | {} |",
        r.m.label,
        r.replicas,
        r.m.samples,
        r.m.wall_s,
        rate(&r.m),
        r.m.cpu_per_1000(),
        r.m.max_rss_mb,
        r.cached
            .map_or("–".to_string(), |c| format!("{:.1}%", c * 100.0)),
        r.served
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(" / ")
    )
}

/// The totals of the newest run under `runs`.
fn newest_results(runs: &Path) -> Result<Option<serde_json::Value>> {
    let mut dirs: Vec<_> = std::fs::read_dir(runs)
        .with_context(|| format!("reading {}", runs.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    dirs.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    let Some(d) = dirs.last() else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(d.join("results.json"))?;
    let v: serde_json::Value = serde_json::from_str(&text)?;
    Ok(Some(v["totals"].clone()))
}
