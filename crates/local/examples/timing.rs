//! Times forward passes of the Gemma 3 code at several prompt lengths and batch sizes:
//! `cargo run --release -p shammie-local --example timing -- MODEL.gguf`

// An example prints its results; the workspace denies printing in library code.
#![allow(clippy::print_stdout)]
use std::io::BufReader;
use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::Device;
use shammie_local::gemma3::{Gemma3, KvCache};

fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).unwrap();
    let mut f = BufReader::new(std::fs::File::open(path)?);
    let content = gguf_file::Content::read(&mut f)?;
    let model = Gemma3::load(&content, &mut f, &Device::Cpu)?;
    for t in [1usize, 8, 32, 128] {
        let ids: Vec<u32> = (0..t as u32).map(|i| 1000 + i).collect();
        let mut best = f64::MAX;
        for _ in 0..3 {
            let mut cache = KvCache::new(model.cfg.layers);
            let t0 = Instant::now();
            let h = model
                .forward_hidden(&mut [(&ids[..], &mut cache)])?
                .remove(0);
            let _ = model.logits(&h.narrow(0, t - 1, 1)?)?;
            best = best.min(t0.elapsed().as_secs_f64());
        }
        println!(
            "prefill {t:>4} tokens: {:>8.1} ms  ({:.0} tok/s)",
            best * 1e3,
            t as f64 / best
        );
    }
    for b in [1usize, 8, 32] {
        let mut caches: Vec<KvCache> = (0..b).map(|_| KvCache::new(model.cfg.layers)).collect();
        let prompt: Vec<u32> = (0..16).map(|i| 2000 + i).collect();
        {
            let mut seqs: Vec<(&[u32], &mut KvCache)> =
                caches.iter_mut().map(|c| (&prompt[..], c)).collect();
            model.forward_hidden(&mut seqs)?;
        }
        let one = [7u32];
        let t0 = Instant::now();
        let steps = 8;
        for _ in 0..steps {
            let mut seqs: Vec<(&[u32], &mut KvCache)> =
                caches.iter_mut().map(|c| (&one[..], c)).collect();
            let hs = model.forward_hidden(&mut seqs)?;
            let last = candle_core::Tensor::cat(&hs, 0)?;
            let _ = model.logits(&last)?.to_vec2::<f32>()?;
        }
        let s = t0.elapsed().as_secs_f64() / steps as f64;
        println!(
            "decode batch {b:>3}: {:>8.1} ms/step  ({:.0} tok/s)",
            s * 1e3,
            b as f64 / s
        );
    }
    Ok(())
}
