//! Prints the top-k next-token logits for a sequence of token ids, and greedy
//! continuation ids: `cargo run --release -p shammie-local --example logits -- MODEL.gguf 2 9259 ...`

// An example prints its results and its progress; the workspace denies printing in library code.
#![allow(clippy::print_stdout, clippy::print_stderr)]
use std::io::BufReader;

use candle_core::quantized::gguf_file;
use candle_core::Device;
use shammie_local::gemma3::{Gemma3, KvCache};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let path = &args[1];
    let ids: Vec<u32> = args[2..].iter().map(|s| s.parse().unwrap()).collect();
    let mut f = BufReader::new(std::fs::File::open(path)?);
    let content = gguf_file::Content::read(&mut f)?;
    let t0 = std::time::Instant::now();
    let model = Gemma3::load(&content, &mut f, &Device::Cpu)?;
    eprintln!("loaded in {:?}", t0.elapsed());
    let mut cache = KvCache::new(model.cfg.layers);
    let t0 = std::time::Instant::now();
    let h = model
        .forward_hidden(&mut [(&ids[..], &mut cache)])?
        .remove(0);
    let last = h.narrow(0, ids.len() - 1, 1)?;
    let logits = model.logits(&last)?.squeeze(0)?.to_vec1::<f32>()?;
    eprintln!("prefill {} tokens in {:?}", ids.len(), t0.elapsed());
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_by(|a, b| logits[*b].total_cmp(&logits[*a]));
    let top: Vec<(usize, f32)> = idx[..5].iter().map(|&i| (i, logits[i])).collect();
    println!("{}", serde_json::json!({"top5": top}));
    let mut next = idx[0] as u32;
    let mut greedy = vec![next];
    let t0 = std::time::Instant::now();
    for _ in 0..15 {
        let h = model
            .forward_hidden(&mut [(&[next][..], &mut cache)])?
            .remove(0);
        let l = model.logits(&h)?.squeeze(0)?.to_vec1::<f32>()?;
        next = l
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0 as u32;
        greedy.push(next);
    }
    eprintln!("decode 15 tokens in {:?}", t0.elapsed());
    println!("{}", serde_json::json!({"greedy": greedy}));
    Ok(())
}
