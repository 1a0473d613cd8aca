//! Five optimizer steps of LoRA SFT on a tiny random 6-layer Gemma 3 (five sliding-window
//! layers and one global), replayed from an independent PyTorch computation:
//! `crates/train/tests/reference/make_sft_reference.py` (plain torch, float64, its own
//! Gemma 3 written from transformers' definition, `torch.optim.AdamW`,
//! `clip_grad_norm_`, transformers' cosine schedule) wrote `sft_reference.json` — the
//! data, the initial LoRA factors (rank 2, alpha 8, all seven projections, B non-zero so
//! that A's gradient is live from step 1), and per step the loss, the gradient norm before
//! clipping and the learning rate, and the final factors.
//!
//! Shammie trains in f32; the script's own f32 run differs from its f64 one by under
//! 1e-6 on the factors, so the tolerances below (1e-5 relative on losses and norms, 1e-4
//! on the factors) leave room for summation order only. A wrong bias correction, alpha/r
//! scale, coupled weight decay, clipping rule or loss normalisation moves them by 1e-3 or
//! more.

use candle_core::{Device, Tensor};
use serde_json::Value;
use sha2::{Digest, Sha256};
use shammie_train::lora::LoraConfig;
use shammie_train::optim::{AdamWConfig, Decay};
use shammie_train::sft::{Example, TrainConfig, Trainer};

const FIXTURE: &str = include_str!("../reference/sft_reference.json");

fn f(v: &Value) -> f64 {
    v.as_f64().expect("a number")
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|x| f(x) as f32)
        .collect()
}

#[test]
#[allow(clippy::print_stderr)] // reports the largest differences (seen with --nocapture)
fn sft_steps_match_the_pytorch_reference() {
    let fx: Value = serde_json::from_str(FIXTURE).unwrap();
    let c = &fx["config"];
    let bytes = shammie_train::testing::tiny_gemma3_gguf_layers(
        c["model_seed"].as_u64().unwrap(),
        false,
        c["layers"].as_u64().unwrap() as usize,
    );
    assert_eq!(
        hex::encode(Sha256::digest(&bytes)),
        fx["gguf_sha256"].as_str().unwrap(),
        "the tiny model is not the one the reference was computed on: regenerate \
         sft_reference.json (see make_sft_reference.py)"
    );
    let mut wb = crate::white_box(&bytes);
    let g = shammie_local::gemma3::Config::from_gguf(
        &candle_core::quantized::gguf_file::Content::read(&mut std::io::Cursor::new(&bytes))
            .unwrap(),
    )
    .unwrap();
    assert!(g.is_global(5) && !g.is_global(4));
    let (l, o) = (&c["lora"], &c["optim"]);
    assert_eq!(c["decay"], "cosine");
    let cfg = TrainConfig {
        lora: LoraConfig {
            rank: l["rank"].as_u64().unwrap() as usize,
            alpha: f(&l["alpha"]),
            targets: l["targets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_string())
                .collect(),
            seed: 0,
            init_from: None,
            dropout: 0.0,
        },
        optim: AdamWConfig {
            lr: f(&o["lr"]),
            beta1: f(&o["beta1"]),
            beta2: f(&o["beta2"]),
            eps: f(&o["eps"]),
            weight_decay: f(&o["weight_decay"]),
        },
        batch: fx["data"].as_array().unwrap().len(),
        steps: c["steps"].as_u64().unwrap() as usize,
        warmup: c["warmup"].as_u64().unwrap() as usize,
        decay: Decay::Cosine,
        max_grad_norm: Some(f(&c["max_grad_norm"])),
        pack_tokens: 0,
        seed: 0,
    };
    let data: Vec<Example> = fx["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let ids = e["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect();
            let train = e["train"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_bool().unwrap())
                .collect();
            Example::new(ids, train).unwrap()
        })
        .collect();
    let mut tr = Trainer::new(&mut wb, cfg).unwrap();
    // Start from the reference's factors.
    let init = fx["init"].as_array().unwrap();
    assert_eq!(init.len(), tr.lora.factors.len());
    for (fac, want) in tr.lora.factors.iter().zip(init) {
        assert_eq!(
            (fac.layer as u64, fac.module.as_str()),
            (
                want["layer"].as_u64().unwrap(),
                want["module"].as_str().unwrap()
            )
        );
        for (var, key) in [(&fac.vars.a, "a"), (&fac.vars.b, "b")] {
            let v = floats(&want[key]);
            var.set(&Tensor::from_vec(v, var.dims(), &Device::Cpu).unwrap())
                .unwrap();
        }
    }
    let rel = |a: f64, b: f64| (a - b).abs() / b.abs().max(1e-12);
    let mut worst_step = 0f64;
    for want in fx["steps"].as_array().unwrap() {
        let r = tr.step(&wb, &data).unwrap();
        assert_eq!(r.tokens as u64, want["tokens"].as_u64().unwrap());
        let (wl, wn, wlr) = (f(&want["loss"]), f(&want["grad_norm"]), f(&want["lr"]));
        assert!(
            (r.lr - wlr).abs() < 1e-12,
            "step {}: lr {} vs {wlr}",
            r.step,
            r.lr
        );
        assert!(
            rel(r.loss, wl) < 1e-5,
            "step {}: loss {} vs PyTorch {wl}",
            r.step,
            r.loss
        );
        assert!(
            rel(r.grad_norm, wn) < 1e-5,
            "step {}: gradient norm {} vs PyTorch {wn}",
            r.step,
            r.grad_norm
        );
        worst_step = worst_step.max(rel(r.loss, wl)).max(rel(r.grad_norm, wn));
    }
    let mut worst = 0f64;
    for (fac, want) in tr.lora.factors.iter().zip(fx["final"].as_array().unwrap()) {
        for (var, key) in [(&fac.vars.a, "a"), (&fac.vars.b, "b")] {
            let got = crate::flat(var.as_tensor());
            let exp = floats(&want[key]);
            for (i, (g, e)) in got.iter().zip(&exp).enumerate() {
                let d = (*g as f64 - *e as f64).abs();
                worst = worst.max(d);
                assert!(
                    d < 1e-4,
                    "layer {} {} {key}[{i}]: {g} vs PyTorch {e}",
                    fac.layer,
                    fac.module
                );
            }
        }
    }
    eprintln!(
        "worst relative loss/norm difference {worst_step:.2e}; worst factor difference {worst:.2e}"
    );
}
