//! Encode speed on a GGUF's tokenizer (not a test; run in release):
//!
//! ```text
//! cargo run --release -p shammie-tokenizer --example bench_encode -- PATH/TO/model.gguf
//! ```
//!
//! Reports the time to read the GGUF metadata and to build the tokenizer, then
//! tokens per second on one long text (ARCHITECTURE.md and the fixture strings,
//! repeated to ~1 MB) and on many short prompts.

// An example prints its results; the workspace denies printing in library code.
#![allow(clippy::print_stdout)]

use std::io::BufReader;
use std::time::Instant;

use candle_core::quantized::gguf_file::Content;
use shammie_tokenizer::Tokenizer;

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: bench_encode MODEL.gguf");
    let t0 = Instant::now();
    let content = Content::read(&mut BufReader::new(
        std::fs::File::open(&path).expect("open"),
    ))
    .expect("read GGUF");
    let read = t0.elapsed();
    let t1 = Instant::now();
    let tok = Tokenizer::from_gguf(&content).expect("tokenizer");
    let build = t1.elapsed();
    println!(
        "{path}: {} tokens; read metadata {read:.1?}, build tokenizer {build:.1?}",
        tok.vocab_size()
    );

    let root = env!("CARGO_MANIFEST_DIR");
    let arch = std::fs::read_to_string(format!("{root}/../../ARCHITECTURE.md")).unwrap_or_default();
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/tests/fixtures/gemma3_tokens.json"))
            .expect("fixture"),
    )
    .expect("json");
    let strings: Vec<String> = fixture["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap().to_string())
        .collect();
    let unit = format!("{arch}\n{}", strings.join("\n"));
    let long = unit.repeat((1 << 20) / unit.len().max(1) + 1);

    // One long text.
    let _ = tok.encode(&unit, false); // warm-up
    let t = Instant::now();
    let ids = tok.encode(&long, false);
    let dt = t.elapsed().as_secs_f64();
    println!(
        "long text: {} bytes -> {} tokens in {:.3} s = {:.2} M tokens/s ({:.1} MB/s)",
        long.len(),
        ids.len(),
        dt,
        ids.len() as f64 / dt / 1e6,
        long.len() as f64 / dt / 1e6
    );

    // Many short prompts (paragraph-sized pieces of the same text).
    let prompts: Vec<&str> = long.split("\n\n").filter(|p| !p.is_empty()).collect();
    let t = Instant::now();
    let n: usize = prompts.iter().map(|p| tok.encode(p, true).len()).sum();
    let dt = t.elapsed().as_secs_f64();
    println!(
        "{} prompts (mean {} bytes): {:.0} prompts/s, {:.2} M tokens/s",
        prompts.len(),
        long.len() / prompts.len().max(1),
        prompts.len() as f64 / dt,
        n as f64 / dt / 1e6
    );

    let t = Instant::now();
    let text = tok.decode(&ids);
    let dt = t.elapsed().as_secs_f64();
    assert_eq!(text, long);
    println!("decode: {:.2} M tokens/s", ids.len() as f64 / dt / 1e6);
}
