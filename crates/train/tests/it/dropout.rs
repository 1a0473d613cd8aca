//! LoRA dropout: masks drop the expected fraction and scale the rest by 1/(1 − p), act on
//! the LoRA branch's input only (checked against the same computation done by hand on the
//! factors), change training but never evaluation, and p = 0 is training without them.

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use shammie_local::lora::MODULES;
use shammie_local::white_box::LoraMasks;
use shammie_train::lora::dropout_masks;
use shammie_train::sft::{masked_loss_sum, packed_loss_sum, Packed, Trainer};

use crate::packing::{adapted, three_examples};
use crate::{examples, flat, run_config, run_with, tiny_gguf, white_box};

fn rng(seed: u64) -> rand_chacha::ChaCha8Rng {
    rand_chacha::ChaCha8Rng::seed_from_u64(seed)
}

/// p = 0.25 over 200 tokens through the 14 factors of the tiny model (48 000 inputs):
/// the dropped fraction is 0.25 within 0.01 (5 standard deviations of a binomial
/// fraction, √(0.25·0.75/48000) = 0.002), every kept input is multiplied by exactly
/// 1/(1 − 0.25) = 4/3, every factor has a (len, in) mask, draws are reproducible from the
/// seed, and p = 0 draws nothing.
#[test]
fn masks_drop_the_expected_fraction_and_scale_the_rest() {
    let (wb, set) = adapted(2);
    let p = 0.25;
    let masks = dropout_masks(&set, &wb, 200, p, &mut rng(1))
        .unwrap()
        .unwrap();
    let (mut zeros, mut total) = (0usize, 0usize);
    for f in &set.factors {
        let mi = MODULES.iter().position(|m| *m == f.module).unwrap();
        let m = masks[f.layer][mi].as_ref().expect("a mask per factor");
        let (_, inn) = wb.projection_dims(&f.module).unwrap();
        assert_eq!(m.dims(), [200, inn]);
        for x in flat(m) {
            total += 1;
            if x == 0.0 {
                zeros += 1;
            } else {
                assert_eq!(x, (1.0 / (1.0 - p)) as f32);
            }
        }
    }
    assert_eq!(total, 48_000);
    let frac = zeros as f64 / total as f64;
    assert!((frac - p).abs() < 0.01, "dropped {frac}");
    let again = dropout_masks(&set, &wb, 200, p, &mut rng(1))
        .unwrap()
        .unwrap();
    let other = dropout_masks(&set, &wb, 200, p, &mut rng(2))
        .unwrap()
        .unwrap();
    let first = |m: &LoraMasks| flat(m[0][0].as_ref().unwrap());
    assert_eq!(first(&masks), first(&again));
    assert_ne!(first(&masks), first(&other));
    let mut r = rng(1);
    assert!(dropout_masks(&set, &wb, 200, 0.0, &mut r)
        .unwrap()
        .is_none());
    assert_eq!(r.get_word_pos(), 0, "p = 0 drew random numbers");
}

/// Every factor's A with its columns multiplied by `c` (A·diag(c)).
fn scale_columns(a: &Tensor, c: &[f32]) -> Tensor {
    let cols = Tensor::from_vec(c.to_vec(), (1, c.len()), &Device::Cpu).unwrap();
    a.broadcast_mul(&cols).unwrap()
}

/// A mask multiplies the LoRA branch's input, not the base projection's: with a mask that
/// is the same for every token, `(x ∘ c)·Aᵀ = x·(A·diag(c))ᵀ`, so the masked loss and the
/// gradients of B equal those of the unmasked model whose A has its columns scaled by c,
/// computed by hand here. c is a dropout draw (0 or 1/(1 − p), p = 0.5), so this also pins
/// the 1/(1 − p) scale entering the branch. A mask of all zeros leaves the base model;
/// a mask whose token rows from 5 on are zero (and 1 before) gives the first 5 positions
/// the adapted model's losses (attention is causal) and later ones something else.
#[test]
fn a_mask_acts_on_the_lora_branch_input_only() {
    let (wb, set) = adapted(3);
    let ex = &examples()[0];
    let t = ex.ids.len();
    let p = 0.5;
    let mut r = rng(4);
    let mut masks: LoraMasks = (0..wb.cfg.layers).map(|_| Default::default()).collect();
    let mut cols = Vec::new();
    for f in &set.factors {
        let (_, inn) = wb.projection_dims(&f.module).unwrap();
        let c: Vec<f32> = (0..inn)
            .map(|_| {
                if r.gen_bool(p) {
                    0.0
                } else {
                    (1.0 / (1.0 - p)) as f32
                }
            })
            .collect();
        assert!(c.contains(&0.0) && c.contains(&2.0));
        let rows: Vec<f32> = (0..t).flat_map(|_| c.clone()).collect();
        let mi = MODULES.iter().position(|m| *m == f.module).unwrap();
        masks[f.layer][mi] = Some(Tensor::from_vec(rows, (t, inn), &Device::Cpu).unwrap());
        cols.push(c);
    }
    let one = Packed::new(&[ex]);
    let masked = packed_loss_sum(&wb, &one, Some(&masks)).unwrap();
    let gm = masked.backward().unwrap();
    let masked = masked.to_scalar::<f32>().unwrap();
    let plain = masked_loss_sum(&wb, ex)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();

    // By hand: A·diag(c), no mask.
    let saved: Vec<Tensor> = set
        .factors
        .iter()
        .map(|f| f.vars.a.as_detached_tensor().copy().unwrap())
        .collect();
    for (f, c) in set.factors.iter().zip(&cols) {
        f.vars
            .a
            .set(&scale_columns(f.vars.a.as_tensor(), c))
            .unwrap();
    }
    let hand = masked_loss_sum(&wb, ex).unwrap();
    let gh = hand.backward().unwrap();
    let hand = hand.to_scalar::<f32>().unwrap();
    for (f, a) in set.factors.iter().zip(&saved) {
        f.vars.a.set(a).unwrap();
    }
    assert!(
        (masked - hand).abs() < 1e-5 * hand.abs(),
        "masked {masked} vs by hand {hand}"
    );
    assert!(
        (masked - plain).abs() > 1e-2 * plain.abs(),
        "the mask changed nothing"
    );
    for f in &set.factors {
        let (a, b) = (
            flat(gm.get(f.vars.b.as_tensor()).unwrap()),
            flat(gh.get(f.vars.b.as_tensor()).unwrap()),
        );
        let scale = a.iter().fold(0f32, |m, x| m.max(x.abs()));
        let d = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(
            d <= 1e-5 * scale + 1e-7,
            "layer {} {}: dB differs by {d}",
            f.layer,
            f.module
        );
    }

    // All zeros: the base model (B ≠ 0 but its branch gets no input).
    let base = white_box(&tiny_gguf(3));
    let zeros: LoraMasks = masks
        .iter()
        .map(|row| row.clone().map(|m| m.map(|m| m.zeros_like().unwrap())))
        .collect();
    let z = packed_loss_sum(&wb, &one, Some(&zeros))
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let b = masked_loss_sum(&base, ex)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!((z - b).abs() < 1e-5 * b.abs(), "zero mask {z} vs base {b}");

    // Rows 0..5 kept (×1), rows 5.. dropped.
    let rows: LoraMasks = masks
        .iter()
        .map(|row| {
            row.clone().map(|m| {
                m.map(|m| {
                    let inn = m.dim(1).unwrap();
                    let v: Vec<f32> = (0..t * inn)
                        .map(|i| if i / inn < 5 { 1.0 } else { 0.0 })
                        .collect();
                    Tensor::from_vec(v, (t, inn), &Device::Cpu).unwrap()
                })
            })
        })
        .collect();
    let lr: Vec<f32> = wb
        .token_losses_packed(&ex.ids, &[0], Some(&rows))
        .unwrap()
        .to_vec1()
        .unwrap();
    let la: Vec<f32> = wb.token_losses(&ex.ids).unwrap().to_vec1().unwrap();
    for i in 0..5 {
        assert!(
            (lr[i] - la[i]).abs() < 1e-5 * la[i].abs().max(1.0),
            "position {i}"
        );
    }
    assert!(
        (5..t - 1).any(|i| (lr[i] - la[i]).abs() > 1e-3),
        "rows from 5 on made no difference"
    );
}

/// p = 0 is training without dropout: a step's loss is the token-weighted sum of the
/// examples' own masked losses computed here without the trainer (each term bit for bit;
/// the trainer adds them in its shuffled order, so the sum may differ in the last bits). With p = 0.5
/// the losses differ from step 2 on (step 0 has learning rate 0, the warm-up's start, so
/// at steps 0 and 1 B is still 0 and the branch is 0 whatever its input), are
/// reproducible from the seed, and still fall; evaluation after training
/// (`token_losses`) has no dropout: it is deterministic and the saved adapter served on
/// the inference path gives the same logits (checked in `peft`).
#[test]
fn dropout_changes_training_but_not_evaluation() {
    let data = three_examples();
    let cfg = |p: f64| {
        let mut c = run_config(12, 8);
        c.batch = 3;
        c.lora.dropout = p;
        c
    };
    // p = 0: one step by the trainer and by hand.
    let mut wb = white_box(&tiny_gguf(4));
    let mut tr = Trainer::new(&mut wb, cfg(0.0)).unwrap();
    let tokens: usize = data.iter().map(|e| e.trained()).sum();
    let by_hand: f64 = data
        .iter()
        .map(|e| {
            (masked_loss_sum(&wb, e).unwrap() / tokens as f64)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap() as f64
        })
        .collect::<Vec<_>>()
        .iter()
        .sum();
    let r = tr.step(&wb, &data).unwrap();
    // The order of the batch is shuffled; the sum of three f64 terms may round
    // differently in another order, by at most a few ulps.
    assert!(
        (r.loss - by_hand).abs() <= 4.0 * f64::EPSILON * by_hand,
        "{} vs {by_hand}",
        r.loss
    );

    let (plain, _, _) = run_with(cfg(0.0), &data);
    let (drop, wb, _) = run_with(cfg(0.5), &data);
    let (again, _, _) = run_with(cfg(0.5), &data);
    assert_eq!(drop, again);
    assert_eq!(plain[..2], drop[..2]);
    assert!(plain.iter().zip(&drop).skip(2).all(|(a, b)| a != b));
    assert!(drop[11] < 0.8 * drop[0], "{drop:?}");
    let ids = &data[0].ids;
    assert_eq!(
        flat(&wb.token_losses(ids).unwrap()),
        flat(&wb.token_losses(ids).unwrap())
    );
}
