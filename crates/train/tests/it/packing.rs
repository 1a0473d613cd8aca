//! Sequence packing: a packed sequence's loss and gradients are the sums of its examples'
//! own (block-diagonal attention, the sliding window counted within each example, RoPE
//! positions restarting), and packed training follows unpacked training — on the tiny
//! Gemma 3, Llama 3 and Qwen2 alike.

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use shammie_local::white_box::WhiteBox;
use shammie_train::lora::{LoraConfig, LoraSet};
use shammie_train::sft::{masked_loss_sum, packed_loss_sum, Example, Packed};

use crate::llama_family::MODELS;
use crate::{examples, flat, run_config, run_tiny_with, tiny_gguf, white_box, Tiny};

/// Every family's tiny model: Gemma 3 (sliding windows), Llama 3 (pairwise RoPE with
/// frequency factors, permuted q/k LoRA rows, untied head), Qwen2 (q/k/v biases).
fn families() -> Vec<(&'static str, Tiny)> {
    let mut all: Vec<(&'static str, Tiny)> = vec![("gemma3", tiny_gguf)];
    all.extend(MODELS);
    all
}

/// The two examples of `examples()` and a third, 7 tokens long: all longer than the tiny
/// Gemma's sliding window (4), and both of its layers are windowed.
pub(crate) fn three_examples() -> Vec<Example> {
    let mut ex = examples();
    ex.push(Example::prompt_reply(&[1, 30, 31], &[4, 17, 9, 2]).unwrap());
    ex
}

/// LoRA factors on every projection of the tiny Gemma 3 with B drawn non-zero (at B = 0
/// the factors change nothing and A gets no gradient).
pub(crate) fn adapted(seed: u64) -> (WhiteBox, LoraSet) {
    adapted_tiny(tiny_gguf, seed)
}

/// [`adapted`] on any family's tiny model.
fn adapted_tiny(tiny: Tiny, seed: u64) -> (WhiteBox, LoraSet) {
    let mut wb = white_box(&tiny(seed));
    let cfg = LoraConfig {
        rank: 2,
        alpha: 8.0,
        targets: shammie_local::lora::MODULES.map(String::from).to_vec(),
        seed,
        init_from: None,
        dropout: 0.0,
    };
    let set = LoraSet::attach(&mut wb, cfg).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed + 100);
    for f in &set.factors {
        let b: Vec<f32> = (0..f.vars.b.elem_count())
            .map(|_| rng.gen_range(-0.3f32..0.3))
            .collect();
        f.vars
            .b
            .set(&Tensor::from_vec(b, f.vars.b.dims(), &Device::Cpu).unwrap())
            .unwrap();
    }
    (wb, set)
}

fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0f32, |m, x| m.max(x.abs()))
}

/// Packing the three examples into one 25-token sequence, on every family: the summed
/// trained-token loss equals the sum of the three computed separately within 1e-5
/// (relative), and so does the gradient of every LoRA factor (1e-5 of its largest entry);
/// the loss (output head only at trained positions) is also the masked sum of the packed
/// per-token losses (head on every row). Laying the same tokens out as one plain sequence
/// (no segments) changes trained tokens' losses by far more, so the comparison sees
/// attention across examples. (Positions that did not restart would not show here: RoPE
/// scores depend only on position differences within a segment; the restart is checked in
/// `shammie_local`.)
#[test]
fn a_packed_sequence_has_the_loss_and_gradients_of_its_examples() {
    for (name, tiny) in families() {
        check_packed_sequence(name, tiny);
    }
}

#[allow(clippy::print_stderr)] // reports the differences (seen with --nocapture)
fn check_packed_sequence(name: &str, tiny: Tiny) {
    let (wb, set) = adapted_tiny(tiny, 6);
    let ex = three_examples();
    let packed = Packed::new(&ex.iter().collect::<Vec<_>>());
    assert_eq!(packed.starts, [0, 10, 18]);

    let sep_losses: Vec<Tensor> = ex
        .iter()
        .map(|e| masked_loss_sum(&wb, e).unwrap())
        .collect();
    let sep_sum: f64 = sep_losses
        .iter()
        .map(|l| l.to_scalar::<f32>().unwrap() as f64)
        .sum();
    let mut sep_grads: Vec<Vec<f32>> = Vec::new();
    for l in &sep_losses {
        let g = l.backward().unwrap();
        for (k, v) in set.vars().iter().enumerate() {
            let gv = flat(g.get(v.as_tensor()).unwrap());
            match sep_grads.get_mut(k) {
                Some(acc) => acc.iter_mut().zip(&gv).for_each(|(a, b)| *a += b),
                None => sep_grads.push(gv),
            }
        }
    }

    let pl = packed_loss_sum(&wb, &packed, None).unwrap();
    let p_sum = pl.to_scalar::<f32>().unwrap() as f64;
    let rel = (p_sum - sep_sum).abs() / sep_sum;
    eprintln!("{name}: packed {p_sum} vs separate {sep_sum}: relative difference {rel:.1e}");
    assert!(rel < 1e-5, "{name}: packed {p_sum} vs separate {sep_sum}");

    let g = pl.backward().unwrap();
    let mut worst = 0f32;
    for (k, v) in set.vars().iter().enumerate() {
        let gp = flat(g.get(v.as_tensor()).unwrap());
        let scale = max_abs(&sep_grads[k]);
        assert!(scale > 1e-3, "{name}: factor {k} has no gradient");
        let d = gp
            .iter()
            .zip(&sep_grads[k])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        worst = worst.max(d / scale);
        assert!(
            d < 1e-5 * scale,
            "{name}: factor {k}: gradients differ by {d} (max {scale})"
        );
    }
    eprintln!("{name}: worst gradient difference / max |grad|: {worst:.1e}");

    // Control: one plain sequence of the same tokens, where the first tokens of the second
    // and third examples attend to the end of the one before (within the window).
    let per_token = |starts: &[usize]| -> Vec<f32> {
        flat(&wb.token_losses_packed(&packed.ids, starts, None).unwrap())
    };
    let (seg, plain) = (per_token(&packed.starts), per_token(&[0]));
    let masked: f64 = seg
        .iter()
        .zip(&packed.train[1..])
        .filter(|(_, t)| **t)
        .map(|(l, _)| *l as f64)
        .sum();
    assert!(
        (masked - p_sum).abs() < 1e-5 * p_sum,
        "{name}: head at trained rows {p_sum} vs masked full losses {masked}"
    );
    let moved = seg
        .iter()
        .zip(&plain)
        .zip(&packed.train[1..])
        .filter(|(_, t)| **t)
        .map(|((a, b), _)| (a - b).abs())
        .fold(0f32, f32::max);
    eprintln!("{name}: largest change of a trained token's loss without the segments: {moved:.3}");
    assert!(
        moved > 1e-2,
        "{name}: crossing the boundaries changed nothing ({moved})"
    );
}

/// Packed training (the step's examples in one sequence) follows unpacked training: the
/// same examples per step and the same token-weighted loss, so over 12 steps every step's
/// loss agrees within 1e-4 (relative; the packed pass rounds differently,
/// and 12 updates carry the difference along), with and without dropout (its masks are
/// drawn per example, before packing), on every family.
#[test]
fn packed_training_follows_unpacked_training() {
    let data = three_examples();
    for ((name, tiny), dropout) in families().into_iter().flat_map(|f| [(f, 0.0), (f, 0.4)]) {
        let run_with = |c, d: &[Example]| run_tiny_with(tiny, c, d);
        let cfg = |pack: usize| {
            let mut c = run_config(12, 5);
            c.batch = 3;
            c.pack_tokens = pack;
            c.lora.dropout = dropout;
            c
        };
        let (plain, _, _) = run_with(cfg(0), &data);
        let (packed, _, _) = run_with(cfg(32), &data);
        for (s, (a, b)) in plain.iter().zip(&packed).enumerate() {
            assert!(
                (a - b).abs() < 1e-4 * a.abs(),
                "{name}, dropout {dropout}, step {s}: unpacked {a} vs packed {b}"
            );
        }
        assert!(plain[11] < 0.8 * plain[0], "{name}: {plain:?}");
        // Packing into 20 tokens: {10, 8} and {7}: the same again.
        let (two, _, _) = run_with(cfg(20), &data);
        for (a, b) in plain.iter().zip(&two) {
            assert!((a - b).abs() < 1e-4 * a.abs(), "{name}: {a} vs {b}");
        }
    }
}
