//! Times the parts of one LoRA training step on the white box, for profiling (`perf record`
//! around it): the trunk's forward pass alone, the loss forward (trunk and output head) and
//! the backward pass, five times over a packed sequence shaped like `bench/train`'s (455
//! tokens in 8 segments, about two thirds of positions trained), LoRA rank 8 on q_proj and
//! v_proj, base weights frozen.
//!
//! ```sh
//! cargo build --release -p shammie-local --example train_step
//! RAYON_NUM_THREADS=2 target/release/examples/train_step ~/.cache/shammie/models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf
//! ```
#![allow(clippy::print_stdout)]

use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Var};
use shammie_local::white_box::{LoraVars, WhiteBox};

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: train_step GGUF"))?;
    let mut r = std::io::BufReader::new(std::fs::File::open(&path)?);
    let c = gguf_file::Content::read(&mut r)?;
    let dev = Device::Cpu;
    let mut wb = WhiteBox::load(&c, &mut r, &dev)?;
    for layer in 0..wb.cfg.layers {
        for m in ["q_proj", "v_proj"] {
            let (out, inn) = wb.projection_dims(m).expect("a known module");
            let vars = LoraVars {
                a: Var::randn(0f32, 0.02, (8, inn), &dev)?,
                b: Var::randn(0f32, 0.02, (out, 8), &dev)?,
                scale: 2.0,
            };
            wb.set_lora(layer, m, Some(vars))?;
        }
    }
    wb.set_frozen(true)?;
    let t = 455usize;
    let vocab = wb.cfg.vocab;
    let ids: Vec<u32> = (0..t)
        .map(|i| ((i * 7919) % vocab.min(20_000)) as u32)
        .collect();
    let starts: Vec<usize> = (0..8).map(|k| k * 60).collect();
    let pos: Vec<usize> = (0..t - 1)
        .filter(|p| p % 3 != 0 && !starts.contains(&(p + 1)))
        .collect();
    println!("{t} tokens, {} trained positions", pos.len());
    for _ in 0..5 {
        let t0 = Instant::now();
        drop(wb.activations(&ids, wb.cfg.layers)?);
        let trunk = t0.elapsed().as_secs_f64();
        let t0 = Instant::now();
        let l = wb
            .token_losses_packed_at(&ids, &starts, &pos, None)?
            .sum_all()?;
        let fwd = t0.elapsed().as_secs_f64();
        let t0 = Instant::now();
        drop(l.backward()?);
        let bwd = t0.elapsed().as_secs_f64();
        println!("trunk forward {trunk:.3} s   loss forward {fwd:.3} s   backward {bwd:.3} s");
    }
    // A preference model's reward: the final hidden state at each segment's last token
    // times a trained vector.
    let head = Var::randn(0f32, 0.02, (wb.cfg.hidden, 1), &dev)?;
    let last: Vec<usize> = starts
        .iter()
        .skip(1)
        .map(|s| s - 1)
        .chain([t - 1])
        .collect();
    for _ in 0..3 {
        let t0 = Instant::now();
        let h = wb.final_hidden_packed_at(&ids, &starts, &last, None)?;
        let r = h.matmul(head.as_tensor())?.sum_all()?;
        let fwd = t0.elapsed().as_secs_f64();
        let t0 = Instant::now();
        drop(r.backward()?);
        let bwd = t0.elapsed().as_secs_f64();
        println!("reward forward {fwd:.3} s   backward {bwd:.3} s");
    }
    Ok(())
}
