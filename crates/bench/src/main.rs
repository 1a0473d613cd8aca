//! `shammie-bench`: reproducible benchmarks of Shammie's own overhead, side by side with
//! the reference it competes with. Not part of the shipped binary; not a test.
//!
//! `engine`: the harness cost of a study run against the loopback mock server (which
//! answers instantly or after a fixed latency, in its own process): samples per second,
//! CPU-seconds per 1,000 samples and peak memory of the `shammie` process, at several
//! numbers of requests in flight; optionally the same workload through Inspect AI.
//!
//! `scale`: a 10,000-request run against servers with fixed batch slots, one server
//! against replicas, and its repeat on a warm cache (see `scale.rs`).
//!
//! `clio`: the Clio pipeline's compute (embedding, k-means, map, hierarchy) against Kura's
//! on 10,000 and 100,000 texts (see `clio.rs`).
//!
//! `mixed`: the linear mixed model of the discrimination study (`shammie_stats::mixed_lm`)
//! against statsmodels MixedLM on 9,450 simulated rows (see `mixed.rs`).
//!
//! Build first: `cargo build --release -p shammie -p shammie-testkit -p shammie-bench`,
//! then `target/release/shammie-bench engine` (see `--help` and docs/benchmarks.md).
//!
//! What is not here: correctness checks (those are each crate's tests) or anything the
//! `shammie` binary needs.

// A benchmark runner reports on stdout and stderr (figures, progress). The workspace
// denies printing everywhere but here and the CLI.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

mod clio;
mod local;
mod mixed;
mod scale;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Harness overhead of `shammie run constitution/traits` against the mock server.
    Engine(EngineArgs),
    /// The embedded local engine against llama.cpp on the same GGUF.
    Local(local::LocalArgs),
    /// `shammie_stats::mixed_lm` against statsmodels MixedLM on the discrim-eval model.
    Mixed(mixed::MixedArgs),
    /// A 10,000-request run against one server and against replicas, and its repeat on a
    /// warm cache.
    Scale(scale::ScaleArgs),
    /// Clio's compute (embedding, k-means, map, hierarchy) against Kura's.
    Clio(clio::ClioArgs),
    /// One side of `clio` (run by it in a child process).
    #[command(hide = true)]
    ClioSide(clio::SideArgs),
}

#[derive(clap::Args)]
struct EngineArgs {
    /// Requests in flight to measure at (comma-separated).
    #[arg(long, default_value = "1,100,1000", value_delimiter = ',')]
    in_flight: Vec<usize>,
    /// Samples per measurement at 100 or more in flight (the built-in data has 12,005).
    #[arg(long, default_value_t = 12005)]
    samples: usize,
    /// Samples per measurement below 100 in flight (latency-bound).
    #[arg(long, default_value_t = 300)]
    samples_serial: usize,
    /// Mock server latency per response, in milliseconds.
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    /// Also measure with the response cache on (cold, then a fully cached repeat).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    with_cache: bool,
    /// A script `SCRIPT PORT LIMIT MAX_CONNECTIONS` that runs the same workload through
    /// Inspect AI (bench/inspect/run_inspect.sh).
    #[arg(long)]
    inspect: Option<PathBuf>,
    /// Samples for the Inspect runs (Inspect costs far more CPU per sample).
    #[arg(long, default_value_t = 2000)]
    inspect_samples: usize,
}

struct Measure {
    label: String,
    in_flight: usize,
    samples: usize,
    wall_s: f64,
    cpu_s: f64,
    max_rss_mb: f64,
}

impl Measure {
    /// CPU-seconds per 1,000 samples (= CPU-milliseconds per sample).
    fn cpu_per_1000(&self) -> f64 {
        self.cpu_s / self.samples as f64 * 1000.0
    }

    fn row(&self) -> String {
        format!(
            "| {} | {} | {} | {:.2} | {:.0} | {:.3} | {:.0} |",
            self.label,
            self.in_flight,
            self.samples,
            self.wall_s,
            self.samples as f64 / self.wall_s,
            self.cpu_per_1000(),
            self.max_rss_mb
        )
    }
}

/// Runs a command to completion and returns its wall time and resource usage.
fn measure(label: &str, in_flight: usize, samples: usize, cmd: &mut Command) -> Result<Measure> {
    let t0 = Instant::now();
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawning")?;
    let pid = child.id() as libc::pid_t;
    let mut stderr = child.stderr.expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).ok();
        s
    });
    let mut status = 0;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our child; wait4 fills `status` and `ru`.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let wall_s = t0.elapsed().as_secs_f64();
    let err = reader.join().unwrap_or_default();
    if r < 0 {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!("{label} failed (status {status}): {err}");
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(Measure {
        label: label.into(),
        in_flight,
        samples,
        wall_s,
        cpu_s: secs(ru.ru_utime) + secs(ru.ru_stime),
        max_rss_mb: ru.ru_maxrss as f64 / 1024.0,
    })
}

struct Mock {
    child: Child,
    base: String,
    out: Option<BufReader<std::process::ChildStdout>>,
}

impl Mock {
    /// Stops the server (SIGTERM) and returns how many requests it answered.
    fn stop(mut self) -> Result<u64> {
        // SAFETY: the pid is our child's, not yet reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let mut line = String::new();
        if let Some(out) = self.out.as_mut() {
            out.read_line(&mut line)?;
        }
        let _ = self.child.wait();
        line.trim()
            .strip_prefix("answered ")
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("unexpected last line from shammie-mock: {line:?}"))
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_mock(bin_dir: &Path, latency_ms: u64) -> Result<Mock> {
    start_mock_with(bin_dir, latency_ms, None, 0)
}

/// A `shammie-mock` process (one worker thread) on `port` (0: any free one) answering
/// after `latency_ms`, at most `slots` requests at once when given.
fn start_mock_with(
    bin_dir: &Path,
    latency_ms: u64,
    slots: Option<usize>,
    port: u16,
) -> Result<Mock> {
    let mut cmd = Command::new(bin_dir.join("shammie-mock"));
    cmd.args([
        "--port",
        &port.to_string(),
        "--threads",
        "1",
        "--latency-ms",
        &latency_ms.to_string(),
    ]);
    if let Some(n) = slots {
        cmd.args(["--slots", &n.to_string()]);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .context("starting shammie-mock (build it: cargo build --release -p shammie-testkit)")?;
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line)?;
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .context("unexpected mock banner")?
        .to_string();
    Ok(Mock {
        child,
        base,
        out: Some(out),
    })
}

fn engine(a: EngineArgs) -> Result<()> {
    let exe = std::env::current_exe()?;
    let bin_dir = exe.parent().unwrap().to_path_buf();
    let shammie = bin_dir.join("shammie");
    if !shammie.exists() {
        bail!(
            "{} not built: cargo build --release -p shammie",
            shammie.display()
        );
    }
    let mock = start_mock(&bin_dir, a.latency_ms)?;
    let scratch = tempfile::tempdir()?;
    let spec = format!("openai-compatible:{}/v1/bench", mock.base);
    let mut rows = Vec::new();
    for &c in &a.in_flight {
        let n = if c < 100 { a.samples_serial } else { a.samples };
        let run = |label: &str, extra: &[&str]| -> Result<Measure> {
            let mut cmd = Command::new(&shammie);
            cmd.args(["run", "constitution/traits", "--model", &spec, "--quiet"])
                .args([
                    "--limit",
                    &n.to_string(),
                    "--max-connections",
                    &c.to_string(),
                ])
                .arg("--log-dir")
                .arg(scratch.path().join("runs"))
                .args(extra);
            let m = measure(label, c, n, &mut cmd)?;
            eprintln!("{}", m.row());
            Ok(m)
        };
        rows.push(run("shammie, no cache", &["--no-cache"])?);
        if a.with_cache {
            let cache = scratch.path().join(format!("cache-{c}.sqlite"));
            let cache = cache.to_str().unwrap();
            rows.push(run("shammie, cache (cold)", &["--cache", cache])?);
            rows.push(run("shammie, cache (all hits)", &["--cache", cache])?);
        }
        if let Some(script) = &a.inspect {
            let n = if c < 100 {
                a.samples_serial.min(a.inspect_samples)
            } else {
                a.inspect_samples
            };
            let port = mock.base.rsplit(':').next().unwrap().to_string();
            let mut cmd = Command::new("bash");
            cmd.arg(script).args([port, n.to_string(), c.to_string()]);
            let m = measure("Inspect AI", c, n, &mut cmd)?;
            eprintln!("{}", m.row());
            rows.push(m);
        }
    }
    println!(
        "Mock latency {} ms; `shammie run constitution/traits` (logprob path: one call per sample).\n",
        a.latency_ms
    );
    println!("| harness | in flight | samples | wall (s) | samples/s | CPU-s per 1,000 samples | peak RSS (MB) |");
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        println!("{}", r.row());
    }
    let inspect: Vec<&Measure> = rows.iter().filter(|r| r.label == "Inspect AI").collect();
    if !inspect.is_empty() {
        println!("\nRatios, Inspect AI ÷ shammie (no cache), same mock, same in-flight count:\n");
        println!("| in flight | CPU per sample | samples/s (shammie ÷ Inspect) | peak RSS |");
        println!("|---|---|---|---|");
        for i in inspect {
            if let Some(s) = rows
                .iter()
                .find(|r| r.in_flight == i.in_flight && r.label == "shammie, no cache")
            {
                println!(
                    "| {} | {:.1}× | {:.1}× | {:.1}× |",
                    i.in_flight,
                    i.cpu_per_1000() / s.cpu_per_1000(),
                    (s.samples as f64 / s.wall_s) / (i.samples as f64 / i.wall_s),
                    i.max_rss_mb / s.max_rss_mb
                );
            }
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Engine(a) => engine(a),
        Cmd::Local(a) => local::run(a),
        Cmd::Mixed(a) => mixed::run(a),
        Cmd::Scale(a) => scale::run(a),
        Cmd::Clio(a) => clio::run(a),
        Cmd::ClioSide(a) => clio::side_main(a),
    }
}
