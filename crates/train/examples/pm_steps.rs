//! Times preference-model training steps on a real model and preference file, for
//! profiling: loads the GGUF's white box, reads the preference JSONL with the model's
//! prompt format, and runs `STEPS` steps of `Trainer::step_pairs` (batch 8, packing 512,
//! LoRA rank 8 on q_proj and v_proj), printing each step's time and tokens.
//!
//! ```sh
//! cargo build --release -p shammie-train --example pm_steps
//! target/release/examples/pm_steps MODEL.gguf prefs.jsonl 4
//! ```
#![allow(clippy::print_stdout)]

use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::Device;
use shammie_local::prompt::template_for;
use shammie_local::white_box::WhiteBox;
use shammie_train::pm::{load_preferences_jsonl, RewardHead};
use shammie_train::sft::{TrainConfig, Trainer};

/// Resident and peak memory, from /proc (Linux).
fn memory() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let get = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map_or("?".to_string(), |kb| format!("{} MB", kb / 1024))
    };
    format!("RSS {} peak {}", get("VmRSS:"), get("VmHWM:"))
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (model, data) = (
        args.next()
            .ok_or_else(|| anyhow::anyhow!("usage: pm_steps GGUF PREFS [STEPS]"))?,
        args.next()
            .ok_or_else(|| anyhow::anyhow!("usage: pm_steps GGUF PREFS [STEPS]"))?,
    );
    let steps: usize = args.next().map_or(Ok(4), |s| s.parse())?;
    let mut r = std::io::BufReader::new(std::fs::File::open(&model)?);
    let c = gguf_file::Content::read(&mut r)?;
    let tok = shammie_tokenizer::Tokenizer::from_gguf(&c)?;
    let format = template_for(&tok, "model")?;
    let t0 = Instant::now();
    let mut wb = WhiteBox::load(&c, &mut r, &Device::Cpu)?;
    println!("loaded in {:.1} s", t0.elapsed().as_secs_f64());
    let pairs = load_preferences_jsonl(std::path::Path::new(&data), &format, &tok)?;
    let longest = pairs
        .iter()
        .map(|p| p.a.len().max(p.b.len()))
        .max()
        .unwrap_or(0);
    println!(
        "{} pairs, longest reply sequence {longest} tokens; {}",
        pairs.len(),
        memory()
    );
    let head = RewardHead::init(&wb, 0)?;
    let cfg = TrainConfig {
        batch: 8,
        pack_tokens: 512,
        steps,
        warmup: 0,
        ..Default::default()
    };
    let mut tr = Trainer::with_extra(&mut wb, cfg, vec![head.w.clone()])?;
    for _ in 0..steps {
        let t0 = Instant::now();
        let rep = tr.step_pairs(&wb, &head, &pairs)?;
        println!(
            "step {} loss {:.4} tokens {} in {:.2} s; {}",
            rep.step,
            rep.loss,
            rep.tokens,
            t0.elapsed().as_secs_f64(),
            memory()
        );
    }
    Ok(())
}
