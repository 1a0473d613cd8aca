//! `shammie-mock`: the testkit's mock LLM server as a separate process, for
//! benchmarks. Serves the OpenAI (`/v1/chat/completions`) and Anthropic
//! (`/v1/messages`) endpoints on 127.0.0.1 with the default responder.
//!
//! Prints `listening on http://127.0.0.1:PORT` as its first stdout line, then
//! serves until SIGINT or SIGTERM, and prints `answered N` (successful responses) last.

use std::io::Write;
use std::time::Duration;

use clap::Parser;
use shammie_testkit::{default_reply, responder, MockServer};

#[derive(Parser, Debug)]
#[command(
    name = "shammie-mock",
    about = "Loopback mock of the OpenAI and Anthropic LLM APIs (tests and benchmarks only)"
)]
struct Args {
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Delay added before every response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Tokio worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Answer at most this many requests at once (the rest wait), like a GPU server's
    /// batch slots; default: no limit.
    #[arg(long)]
    slots: Option<usize>,
    /// Require this API key (Bearer token / x-api-key).
    #[arg(long)]
    api_key: Option<String>,
    /// Keep every request in memory (off by default: nothing can read it).
    #[arg(long)]
    record: bool,
    /// Answer sampled requests that carry no seed (e.g. every Anthropic request) as if
    /// they carried this one, so that two runs get the same answers
    /// (`scripts/compare-runs`). Without it they are drawn afresh.
    #[arg(long)]
    fixed_seed: Option<u64>,
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut builder = MockServer::builder();
        if let Some(seed) = args.fixed_seed {
            builder = builder.responder(responder(move |r| {
                let mut r = r.clone();
                r.seed.get_or_insert(seed);
                default_reply(&r)
            }));
        }
        if let Some(n) = args.slots {
            builder = builder.slots(n);
        }
        let server = builder
            .port(args.port)
            .latency(Duration::from_millis(args.latency_ms))
            .require_api_key(args.api_key)
            .record_requests(args.record)
            .start()
            .await?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "listening on http://{}", server.addr())?;
            out.flush()?;
        }
        wait_for_signal().await?;
        {
            // Nobody may be reading any more: the count is for those who are.
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "answered {}", server.successful_count());
            let _ = out.flush();
        }
        drop(server);
        Ok(())
    })
}

#[cfg(unix)]
async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_signal() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}
