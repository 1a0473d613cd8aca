//! LoRA training on tiny random F32 models (`shammie_train::testing`): gradients against
//! finite differences, frozen base, training reduces the loss, and a saved adapter served
//! by `shammie_local`'s quantized-path loader gives the white box's logits — here on
//! Gemma 3, in `llama_family` on Llama 3 and Qwen2 with the same checks.

use std::io::Cursor;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use shammie_local::white_box::WhiteBox;
use shammie_train::lora::{LoraConfig, LoraSet};
use shammie_train::optim::{AdamWConfig, Decay};
use shammie_train::sft::{masked_loss_sum, Example, TrainConfig, Trainer};

mod chat;
mod dropout;
mod llama_family;
mod packing;
mod peft;
mod pm;
mod reference;
mod resume;

/// Writes a tiny random model of one architecture from a seed (40-token vocabulary, no
/// tokenizer).
pub(crate) type Tiny = fn(u64) -> Vec<u8>;

/// The tiny random Gemma 3.
pub(crate) fn tiny_gguf(seed: u64) -> Vec<u8> {
    shammie_train::testing::tiny_gemma3_gguf(seed, false)
}

pub(crate) fn white_box(bytes: &[u8]) -> WhiteBox {
    let mut r = Cursor::new(bytes);
    let c = gguf_file::Content::read(&mut r).unwrap();
    WhiteBox::load(&c, &mut r, &Device::Cpu).unwrap()
}

/// A 10-token example: 4 prompt tokens, 6 reply tokens.
pub(crate) fn examples() -> Vec<Example> {
    vec![
        Example::prompt_reply(&[1, 7, 3, 9], &[12, 5, 33, 5, 12, 2]).unwrap(),
        Example::prompt_reply(&[1, 8, 8], &[20, 21, 22, 23, 2]).unwrap(),
    ]
}

pub(crate) fn loss_f64(wb: &WhiteBox, ex: &Example) -> f64 {
    let l: Vec<f32> = wb.token_losses(&ex.ids).unwrap().to_vec1().unwrap();
    l.iter()
        .zip(&ex.train[1..])
        .filter(|(_, t)| **t)
        .map(|(x, _)| *x as f64)
        .sum()
}

pub(crate) fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

fn set_at(v: &Var, i: usize, x: f32) {
    let mut vals = flat(v.as_tensor());
    vals[i] = x;
    v.set(&Tensor::from_vec(vals, v.dims(), v.device()).unwrap())
        .unwrap();
}

/// The gradient `backward()` gives each LoRA factor equals the central finite difference
/// of the masked loss (summed in f64), for every coordinate of A and B of every target of
/// layer 0 and a sample of layer 1, with B made non-zero (at PEFT's B = 0 the gradient of A
/// vanishes, which would prove nothing about it). The model is f32 throughout (its
/// weights are f32 `Var`s), so the step is h = 1e-2 and the tolerance 2% of the largest
/// gradient of that factor plus 1e-4: an error in the scale (alpha/r = 4 here), a
/// transposed factor or a missing term moves gradients by far more.
#[test]
fn lora_gradients_match_finite_differences() {
    check_lora_gradients(tiny_gguf);
}

#[allow(clippy::print_stderr)] // reports the worst error (seen with --nocapture)
pub(crate) fn check_lora_gradients(tiny: Tiny) {
    let bytes = tiny(1);
    let mut wb = white_box(&bytes);
    let cfg = LoraConfig {
        rank: 2,
        alpha: 8.0,
        targets: shammie_local::lora::MODULES.map(String::from).to_vec(),
        seed: 3,
        init_from: None,
        dropout: 0.0,
    };
    let set = LoraSet::attach(&mut wb, cfg).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
    for f in &set.factors {
        let b = flat(f.vars.b.as_tensor())
            .iter()
            .map(|_| rng.gen_range(-0.3f32..0.3))
            .collect::<Vec<_>>();
        f.vars
            .b
            .set(&Tensor::from_vec(b, f.vars.b.dims(), &Device::Cpu).unwrap())
            .unwrap();
    }
    let ex = &examples()[0];
    let grads = masked_loss_sum(&wb, ex).unwrap().backward().unwrap();
    // The base is frozen: no gradient for any of its weights.
    for (name, v) in wb.params() {
        assert!(grads.get(v.as_tensor()).is_none(), "{name} got a gradient");
    }
    let h = 1e-2f32;
    let mut checked = 0;
    let mut worst = 0f64;
    for f in &set.factors {
        for (which, var) in [("A", &f.vars.a), ("B", &f.vars.b)] {
            let g = flat(grads.get(var.as_tensor()).expect("a LoRA gradient"));
            let gmax = g.iter().fold(0f32, |m, x| m.max(x.abs())) as f64;
            assert!(
                gmax > 1e-4,
                "layer {} {} {which}: zero gradient",
                f.layer,
                f.module
            );
            let step = if f.layer == 0 { 1 } else { 5 };
            for i in (0..g.len()).step_by(step) {
                let x = flat(var.as_tensor())[i];
                set_at(var, i, x + h);
                let up = loss_f64(&wb, ex);
                set_at(var, i, x - h);
                let down = loss_f64(&wb, ex);
                set_at(var, i, x);
                let fd = (up - down) / (2.0 * h as f64);
                let err = (fd - g[i] as f64).abs();
                worst = worst.max(err / gmax);
                assert!(
                    err < 0.02 * gmax + 1e-4,
                    "layer {} {} {which}[{i}]: backward {} vs finite difference {fd}",
                    f.layer,
                    f.module,
                    g[i]
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 500, "{checked}");
    eprintln!("{checked} coordinates; worst error / max |grad| = {worst:.2e}");
}

/// The loss covers the reply only: the summed masked loss is the sum of the per-token
/// losses at the reply's positions (here tokens 4..10 of example 0, i.e. entries 3..9 of
/// `token_losses`), and changing a prompt token's target does not enter it except through
/// the context.
#[test]
fn the_loss_covers_assistant_tokens_only() {
    let wb = white_box(&tiny_gguf(2));
    let ex = &examples()[0];
    let all: Vec<f32> = wb.token_losses(&ex.ids).unwrap().to_vec1().unwrap();
    let want: f32 = all[3..].iter().sum();
    let got = masked_loss_sum(&wb, ex)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    let everything: f32 = all.iter().sum();
    assert!((got - everything).abs() > 1e-2, "the mask removed nothing");
    assert_eq!(ex.trained(), 6);
    assert!(Example::new(vec![1, 2, 3], vec![true, false, false]).is_err());
    assert!(Example::new(vec![1, 2], vec![true]).is_err());
}

/// The configuration of [`run`]: rank 4 on q, v and down, both examples every step.
pub(crate) fn run_config(steps: usize, seed: u64) -> TrainConfig {
    TrainConfig {
        lora: LoraConfig {
            rank: 4,
            alpha: 8.0,
            targets: vec!["q_proj".into(), "v_proj".into(), "down_proj".into()],
            seed,
            init_from: None,
            dropout: 0.0,
        },
        optim: AdamWConfig {
            lr: 3e-2,
            weight_decay: 0.01,
            ..Default::default()
        },
        batch: 2,
        pack_tokens: 0,
        steps,
        warmup: 2,
        decay: Decay::Cosine,
        max_grad_norm: Some(1.0),
        seed,
    }
}

/// Trains a fresh tiny model of `tiny` (seed 4) with [`run_config`] on [`examples`].
pub(crate) fn run(tiny: Tiny, steps: usize, seed: u64) -> (Vec<f64>, WhiteBox, Trainer) {
    run_tiny_with(tiny, run_config(steps, seed), &examples())
}

/// [`run_tiny_with`] on the tiny Gemma 3.
pub(crate) fn run_with(cfg: TrainConfig, data: &[Example]) -> (Vec<f64>, WhiteBox, Trainer) {
    run_tiny_with(tiny_gguf, cfg, data)
}

/// Trains a fresh tiny model of `tiny` (seed 4) with `cfg` for its steps on `data`: the
/// losses.
pub(crate) fn run_tiny_with(
    tiny: Tiny,
    cfg: TrainConfig,
    data: &[Example],
) -> (Vec<f64>, WhiteBox, Trainer) {
    let mut wb = white_box(&tiny(4));
    let steps = cfg.steps;
    let mut tr = Trainer::new(&mut wb, cfg).unwrap();
    let losses = (0..steps)
        .map(|_| tr.step(&wb, data).unwrap().loss)
        .collect();
    (losses, wb, tr)
}

/// A few steps on a fixed batch (both examples every step) reduce its loss by at least 40%
/// (measured: Gemma 3 4.39 → 0.99, Llama 3 4.03 → 2.10 — its untied head is not adapted —
/// Qwen2 4.18 → 1.24), leave the base weights bit for bit as loaded, and are reproducible: the same seed gives the same
/// losses, another seed (another initialisation of A) different ones.
#[test]
fn training_reduces_the_loss_reproducibly() {
    check_training(tiny_gguf);
}

#[allow(clippy::print_stderr)] // reports the losses (seen with --nocapture)
pub(crate) fn check_training(tiny: Tiny) {
    let (losses, wb, _) = run(tiny, 30, 7);
    eprintln!("losses: {losses:?}");
    let (first, last) = (losses[0], *losses.last().unwrap());
    // Step 0 has learning rate 0 (warm-up from 0) and B = 0: the loss is the base model's.
    let base = white_box(&tiny(4));
    let ex = examples();
    let base_loss: f64 = ex.iter().map(|e| loss_f64(&base, e)).sum::<f64>()
        / ex.iter().map(|e| e.trained()).sum::<usize>() as f64;
    assert!((first - base_loss).abs() < 1e-4, "{first} vs {base_loss}");
    assert!(last < 0.6 * first, "loss went from {first} to {last}");
    for ((n, a), (_, b)) in wb.params().iter().zip(base.params().iter()) {
        assert_eq!(flat(a.as_tensor()), flat(b.as_tensor()), "{n} changed");
    }
    let (again, _, _) = run(tiny, 30, 7);
    assert_eq!(losses, again);
    let (other, _, _) = run(tiny, 30, 8);
    assert_ne!(losses, other);
}

/// The head run on chosen rows only gives those rows of the full per-token losses, on
/// every family; a position with no next token is an error.
#[test]
fn losses_at_positions_are_the_rows_of_the_full_losses() {
    let tinies: [(&str, Tiny); 3] = [
        ("gemma3", tiny_gguf),
        ("llama", |s| {
            shammie_train::testing::tiny_llama_gguf(s, false)
        }),
        ("qwen2", |s| {
            shammie_train::testing::tiny_qwen2_gguf(s, false)
        }),
    ];
    for (name, tiny) in tinies {
        let wb = white_box(&tiny(5));
        let ids = [1u32, 7, 3, 9, 12, 5, 33, 5, 12, 2];
        let all: Vec<f32> = wb.token_losses(&ids).unwrap().to_vec1().unwrap();
        let at = [0usize, 4, 5, 8];
        let got: Vec<f32> = wb.token_losses_at(&ids, &at).unwrap().to_vec1().unwrap();
        for (k, p) in at.iter().enumerate() {
            assert!((got[k] - all[*p]).abs() < 1e-5, "{name} position {p}");
        }
        assert!(wb.token_losses_at(&ids, &[9]).is_err(), "{name}");
    }
}

/// A LoRA started from a saved adapter (`init_from`) is that adapter: the same
/// per-token losses as the trained factors it was saved from.
#[test]
fn lora_initialised_from_a_saved_adapter_continues_where_it_was() {
    let (_, wb, tr) = run(tiny_gguf, 6, 3);
    let want: Vec<f32> = wb
        .token_losses(&examples()[0].ids)
        .unwrap()
        .to_vec1()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    tr.lora.save_peft(dir.path(), "tiny").unwrap();
    let mut fresh = white_box(&tiny_gguf(4));
    let mut cfg = tr.lora.cfg.clone();
    cfg.init_from = Some(dir.path().to_path_buf());
    cfg.seed = 99; // the initialisation is replaced, whatever its seed
    LoraSet::attach(&mut fresh, cfg.clone()).unwrap();
    let got: Vec<f32> = fresh
        .token_losses(&examples()[0].ids)
        .unwrap()
        .to_vec1()
        .unwrap();
    for (a, b) in got.iter().zip(&want) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    // A different rank is refused rather than silently reshaped.
    cfg.rank = 2;
    let mut other = white_box(&tiny_gguf(4));
    assert!(LoraSet::attach(&mut other, cfg).is_err());
}
