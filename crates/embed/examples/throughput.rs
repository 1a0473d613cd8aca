//! Embedding throughput on short sentences (not a benchmark suite: one measurement).
//!
//! `cargo run --release -p shammie-embed --example throughput -- [MODEL_DIR] [N]`

// An example prints its results; the workspace denies printing in library code.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/shammie/models/all-minilm-l6-v2")
    });
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(256);
    let embedder = shammie_embed::Embedder::load(&dir)?;
    let subjects = [
        "The cat",
        "A researcher",
        "My neighbour",
        "The model",
        "An old fisherman",
        "The committee",
        "Our team",
        "The river",
    ];
    let verbs = [
        "sat quietly on",
        "wrote a report about",
        "looked carefully at",
        "argued at length over",
    ];
    let objects = [
        "the mat.",
        "the new proposal.",
        "a difficult question.",
        "the evening news.",
        "the results of the study.",
    ];
    let texts: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "{} {} {} ({i})",
                subjects[i % 8],
                verbs[(i / 8) % 4],
                objects[(i / 32) % 5]
            )
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    embedder.embed(&refs[..8.min(n)])?; // warm-up
    let start = Instant::now();
    let out = embedder.embed(&refs)?;
    let secs = start.elapsed().as_secs_f64();
    let tokens: usize = refs.iter().map(|t| embedder.tokenize(t).len()).sum();
    println!(
        "{} sentences ({} tokens, mean {:.1}) in {:.3} s: {:.1} sentences/s",
        out.len(),
        tokens,
        tokens as f64 / n as f64,
        secs,
        n as f64 / secs
    );
    Ok(())
}
