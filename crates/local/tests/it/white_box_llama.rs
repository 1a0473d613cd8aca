//! The white box on the Llama 3 / Qwen2 family (`white_box/llama.rs`), on the tiny random
//! F32 fixtures (`tests/fixtures/llama_family_*.gguf`: an untied Llama with pairwise RoPE,
//! a tied Qwen2 with q/k/v biases): its logits at every position are those of the
//! inference path (`llama.rs`, pinned to llama.cpp), every parameter — biases and the
//! untied head included — gets a gradient and the gradients are right (finite
//! differences), and LoRA factors in Hugging Face's row order give the logits of the same
//! deltas merged into the file's weights with the query/key permutation of llama.cpp's
//! conversion.

use std::io::Cursor;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor, Var};
use shammie_local::llama::{KvCache, Llama};
use shammie_local::lora::Adapter;
use shammie_local::model::LocalLm;
use shammie_local::white_box::{LoraVars, WhiteBox};

use crate::lora::{merged, write_adapter, FIXTURES};

/// F32 weights on both paths: the only differences left are summation order.
const TOL: f32 = 1e-4;

fn sequences() -> Vec<Vec<u32>> {
    vec![
        vec![256, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100],
        vec![256, 5, 17, 200, 3, 3, 3, 99, 180, 42],
        (0..40).map(|i| (i * 37 + 11) % 256).collect(),
    ]
}

fn white_box(bytes: &[u8]) -> WhiteBox {
    let mut r = Cursor::new(bytes);
    let c = gguf_file::Content::read(&mut r).unwrap();
    WhiteBox::load(&c, &mut r, &Device::Cpu).unwrap()
}

fn llama(bytes: &[u8]) -> Llama {
    let mut r = Cursor::new(bytes);
    let c = gguf_file::Content::read(&mut r).unwrap();
    Llama::load(&c, &mut r, &Device::Cpu).unwrap()
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The inference path's logits at every position, (len × vocab) flattened.
fn served_logits(m: &Llama, ids: &[u32]) -> Vec<f32> {
    let mut cache = KvCache::new(m.cfg.layers);
    let h = m
        .forward_hidden(&mut [(ids, &mut cache)])
        .unwrap()
        .remove(0);
    flat(&m.logits(&h).unwrap())
}

#[test]
#[allow(clippy::print_stderr)] // reports what it measured (seen with --nocapture)
fn logits_match_the_inference_path() {
    for (name, bytes) in FIXTURES {
        let wb = white_box(bytes);
        let m = llama(bytes);
        assert_eq!(wb.cfg.arch, name);
        assert_eq!(
            (wb.cfg.layers, wb.cfg.hidden, wb.cfg.vocab),
            (m.cfg.layers, m.cfg.hidden, m.cfg.vocab)
        );
        let mut worst = 0f32;
        for ids in sequences() {
            let out = wb.forward(&ids).unwrap();
            assert_eq!(out.logits.dims(), &[ids.len(), wb.cfg.vocab]);
            assert_eq!(out.residual.len(), wb.cfg.layers + 1);
            let d = max_diff(&flat(&out.logits), &served_logits(&m, &ids));
            worst = worst.max(d);
            assert!(d < TOL, "{name}: white box vs inference path differ by {d}");
        }
        eprintln!("{name}: worst max |logit diff| white box vs llama.rs = {worst:.2e}");
    }
}

/// Every parameter has a finite non-zero gradient (the untied head of the Llama, the
/// biases of the Qwen2 are parameters), and the gradients of the attention weights and
/// biases (through RoPE of either layout, grouped-query attention) and of the output head
/// equal central finite differences of the summed loss (f64 sums, f32 model, so h = 1e-2
/// and a tolerance of 2% of the largest gradient of the tensor plus 1e-4).
#[test]
#[allow(clippy::print_stderr)] // reports what it measured (seen with --nocapture)
fn gradients_reach_every_parameter_and_match_finite_differences() {
    let ids = &sequences()[1];
    for (name, bytes) in FIXTURES {
        let wb = white_box(bytes);
        let params = wb.params();
        let names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
        // 2 layers × 9 tensors, plus embedding, final norm, and the untied head or 2 × 3
        // biases.
        assert_eq!(
            params.len(),
            if name == "llama" { 21 } else { 26 },
            "{names:?}"
        );
        assert_eq!(names.contains(&"output.weight"), name == "llama");
        assert_eq!(names.contains(&"blk.1.attn_k.bias"), name == "qwen2");
        let loss = wb.token_losses(ids).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        for (n, v) in &params {
            let g = flat(
                grads
                    .get(v.as_tensor())
                    .unwrap_or_else(|| panic!("{n}: no gradient")),
            );
            assert!(g.iter().all(|x| x.is_finite()), "{name} {n}");
            assert!(g.iter().any(|x| *x != 0.0), "{name} {n}: zero gradient");
        }
        let loss_f64 = |wb: &WhiteBox| -> f64 {
            let l: Vec<f32> = wb.token_losses(ids).unwrap().to_vec1().unwrap();
            l.iter().map(|x| *x as f64).sum()
        };
        let set = |v: &Var, i: usize, x: f32| {
            let mut vals = flat(v.as_tensor());
            vals[i] = x;
            v.set(&Tensor::from_vec(vals, v.dims(), v.device()).unwrap())
                .unwrap();
        };
        let checked: &[&str] = if name == "llama" {
            &[
                "blk.0.attn_q.weight",
                "blk.1.attn_k.weight",
                "output.weight",
            ]
        } else {
            &[
                "blk.0.attn_q.bias",
                "blk.0.attn_k.bias",
                "blk.1.attn_v.bias",
                "blk.1.attn_q.weight",
            ]
        };
        let h = 1e-2f32;
        let mut worst = 0f64;
        for want in checked {
            let (_, v) = params.iter().find(|(n, _)| n == want).unwrap();
            let g = flat(grads.get(v.as_tensor()).unwrap());
            let gmax = g.iter().fold(0f32, |m, x| m.max(x.abs())) as f64;
            let step = (g.len() / 40).max(1);
            for i in (0..g.len()).step_by(step) {
                let x = flat(v.as_tensor())[i];
                set(v, i, x + h);
                let up = loss_f64(&wb);
                set(v, i, x - h);
                let down = loss_f64(&wb);
                set(v, i, x);
                let fd = (up - down) / (2.0 * h as f64);
                let err = (fd - g[i] as f64).abs();
                worst = worst.max(err / gmax);
                assert!(
                    err < 0.02 * gmax + 1e-4,
                    "{name} {want}[{i}]: backward {} vs finite difference {fd}",
                    g[i]
                );
            }
        }
        eprintln!("{name}: worst error / max |grad| = {worst:.2e}");
    }
}

/// LoRA factors (random, rank 4, alpha 8, on every projection of every layer) set on the
/// white box in PEFT's (Hugging Face's) row order give the logits of the white box of a
/// copy of the file with `scale·B·A` merged into each weight — the query/key deltas of the
/// `llama` file permuted as llama.cpp's conversion permutes weights (the test's own
/// implementation) — and those of the inference path with the same adapter.
#[test]
#[allow(clippy::print_stderr)] // reports what it measured (seen with --nocapture)
fn lora_factors_in_peft_order_equal_merged_weights() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, bytes) in FIXTURES {
        let c = gguf_file::Content::read(&mut Cursor::new(bytes)).unwrap();
        let dir = tmp.path().join(name);
        let deltas = write_adapter(&dir, &c, 4, 8.0, 21);
        let adapter = Adapter::read(&dir).unwrap();
        let mut wb = white_box(bytes);
        for ((layer, module), d) in &adapter.deltas {
            let v = |x: &[f32], s: (usize, usize)| Var::from_slice(x, s, &Device::Cpu).unwrap();
            let l = LoraVars {
                a: v(&d.a, (adapter.rank, d.inn)),
                b: v(&d.b, (d.out, adapter.rank)),
                scale: adapter.scale as f64,
            };
            wb.set_lora(*layer, module, Some(l)).unwrap();
        }
        let reference = white_box(&merged(bytes, &deltas, true));
        let base = white_box(bytes);
        let mut served = {
            let mut r = Cursor::new(bytes);
            let c = gguf_file::Content::read(&mut r).unwrap();
            LocalLm::load(&c, &mut r, &Device::Cpu).unwrap()
        };
        assert_eq!(served.apply_adapter(&adapter, false).unwrap(), deltas.len());
        let mut worst = 0f32;
        for ids in sequences() {
            let got = flat(&wb.forward(&ids).unwrap().logits);
            let want = flat(&reference.forward(&ids).unwrap().logits);
            let d = max_diff(&got, &want);
            let mut cache = KvCache::new(served.layers());
            let h = served
                .forward_hidden(&mut [(&ids[..], &mut cache)])
                .unwrap()
                .remove(0);
            let s = max_diff(&got, &flat(&served.logits(&h).unwrap()));
            worst = worst.max(d).max(s);
            assert!(d < TOL, "{name}: LoRA vs merged weights differ by {d}");
            assert!(s < TOL, "{name}: LoRA vs the served adapter differ by {s}");
            let moved = max_diff(&got, &flat(&base.forward(&ids).unwrap().logits));
            assert!(
                moved > 1e-2,
                "{name}: the factors changed nothing ({moved})"
            );
        }
        eprintln!("{name}: worst max |logit diff| with LoRA = {worst:.2e}");
    }
}

/// Packing on this family: the three sequences back to back (segments at their starts)
/// give each the logits of a pass over it alone (within `TOL`), with LoRA factors on every
/// projection (the permuted query/key rows of the `llama` file included); without the
/// segments the later sequences' logits move by far more. `token_losses_packed_at` gives
/// the picked rows of `token_losses_packed` and refuses a position that would predict the
/// next segment's first token.
#[test]
#[allow(clippy::print_stderr)] // reports what it measured (seen with --nocapture)
fn packed_segments_match_separate_passes() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, bytes) in FIXTURES {
        let c = gguf_file::Content::read(&mut Cursor::new(bytes)).unwrap();
        let dir = tmp.path().join(name);
        write_adapter(&dir, &c, 4, 8.0, 5);
        let adapter = Adapter::read(&dir).unwrap();
        let mut wb = white_box(bytes);
        for ((layer, module), d) in &adapter.deltas {
            let v = |x: &[f32], s: (usize, usize)| Var::from_slice(x, s, &Device::Cpu).unwrap();
            let l = LoraVars {
                a: v(&d.a, (adapter.rank, d.inn)),
                b: v(&d.b, (d.out, adapter.rank)),
                scale: adapter.scale as f64,
            };
            wb.set_lora(*layer, module, Some(l)).unwrap();
        }
        let seqs = sequences();
        let mut ids = Vec::new();
        let mut starts = Vec::new();
        for s in &seqs {
            starts.push(ids.len());
            ids.extend_from_slice(s);
        }
        let packed = flat(&wb.forward_packed(&ids, &starts).unwrap().logits);
        let plain = flat(&wb.forward(&ids).unwrap().logits);
        let vocab = wb.cfg.vocab;
        let (mut worst, mut moved) = (0f32, 0f32);
        for (s, &at) in seqs.iter().zip(&starts) {
            let alone = flat(&wb.forward(s).unwrap().logits);
            let rows = at * vocab..(at + s.len()) * vocab;
            worst = worst.max(max_diff(&alone, &packed[rows.clone()]));
            if at > 0 {
                moved = moved.max(max_diff(&alone, &plain[rows]));
            }
        }
        eprintln!("{name}: packed vs alone {worst:.2e}; unsegmented vs alone {moved:.2e}");
        assert!(worst < TOL, "{name}: packed logits differ by {worst}");
        assert!(
            moved > 1e-2,
            "{name}: the segments changed nothing ({moved})"
        );

        let all = flat(&wb.token_losses_packed(&ids, &starts, None).unwrap());
        let positions: Vec<usize> = (0..ids.len() - 1)
            .filter(|p| !starts.contains(&(p + 1)))
            .step_by(3)
            .collect();
        let at = flat(
            &wb.token_losses_packed_at(&ids, &starts, &positions, None)
                .unwrap(),
        );
        let picked: Vec<f32> = positions.iter().map(|&p| all[p]).collect();
        assert!(
            max_diff(&at, &picked) < 1e-5,
            "{name}: {at:?} vs {picked:?}"
        );
        assert!(wb
            .token_losses_packed_at(&ids, &starts, &[starts[1] - 1], None)
            .is_err());
        assert!(wb.forward_packed(&ids, &[1, 5]).is_err());
    }
}
