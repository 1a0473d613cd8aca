//! The language-model records on the tiny random Gemma 3 (`shammie_train::testing`): each
//! sequence's weight gradient rebuilt from the taps, G = Σ_t s_t ā_tᵀ, equals the gradient
//! autograd computes for the projection's weight (the white box with every weight a
//! variable), with the base frozen or not, for the data's and for sampled labels; and a
//! fit and pairwise scores over a few sequences run through the same EK-FAC code as the
//! networks.

use std::io::Cursor;

use candle_core::quantized::gguf_file;
use candle_core::Device;
use faer::Mat;
use rand::SeedableRng;
use shammie_influence::ekfac::{self, Damping, Pass};
use shammie_influence::lm::{self, Labels};
use shammie_local::white_box::WhiteBox;

fn white_box() -> WhiteBox {
    let bytes = shammie_train::testing::tiny_gemma3_gguf(3, false);
    let mut r = Cursor::new(&bytes);
    let c = gguf_file::Content::read(&mut r).unwrap();
    WhiteBox::load(&c, &mut r, &Device::Cpu).unwrap()
}

fn mat(t: &candle_core::Tensor) -> Mat<f64> {
    let v: Vec<Vec<f32>> = t.to_vec2().unwrap();
    Mat::from_fn(v.len(), v[0].len(), |i, j| v[i][j] as f64)
}

const IDS: [u32; 9] = [1, 7, 3, 9, 12, 5, 33, 5, 2];

/// The loss over positions 2..8 (the last six next tokens), by autograd on the weights.
fn weight_gradients(wb: &WhiteBox, targets: &[u32]) -> Vec<(String, Mat<f64>)> {
    let positions: Vec<usize> = (2..8).collect();
    let loss = wb
        .token_losses_for(&IDS, &positions, targets)
        .unwrap()
        .sum_all()
        .unwrap();
    let g = loss.backward().unwrap();
    wb.params()
        .into_iter()
        .filter(|(n, _)| {
            ["ffn_gate.", "ffn_up.", "ffn_down."]
                .iter()
                .any(|k| n.contains(k))
        })
        .map(|(n, v)| (n, mat(g.get(v.as_tensor()).unwrap())))
        .collect()
}

#[test]
fn tapped_records_rebuild_the_weight_gradients() {
    let positions: Vec<usize> = (2..8).collect();
    let data: Vec<u32> = positions.iter().map(|&p| IDS[p + 1]).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    // The data-label gradients of the first layer's gate, unfrozen then frozen.
    let mut gates: Vec<Mat<f64>> = Vec::new();
    for frozen in [false, true] {
        let mut wb = white_box();
        wb.set_frozen(frozen).unwrap();
        let (taps, specs) = lm::tap(&mut wb, lm::MLP, None).unwrap();
        assert_eq!(specs.len(), 3 * wb.cfg.layers);
        assert_eq!(specs[0].name, "model.layers.0.mlp.gate_proj");
        // The data's labels, then sampled ones (drawn again below for the reference).
        let sampled_rng = rng.clone();
        for (which, b) in [
            (
                "data",
                lm::records(
                    &wb,
                    &taps,
                    &specs,
                    &IDS,
                    &positions,
                    Labels::<rand_chacha::ChaCha8Rng>::Data,
                )
                .unwrap(),
            ),
            (
                "sampled",
                lm::records(
                    &wb,
                    &taps,
                    &specs,
                    &IDS,
                    &positions,
                    Labels::Sampled(&mut rng),
                )
                .unwrap(),
            ),
        ] {
            assert_eq!(b.tokens, [IDS.len()]);
            if which == "data" {
                gates.push(ekfac::example_gradients(&b.layers[0], &b.tokens).remove(0));
            }
            // The targets the records used: the data's, or the same draws again.
            let targets = if which == "data" {
                data.clone()
            } else {
                let mut r = sampled_rng.clone();
                let logits = wb.forward(&IDS).unwrap().logits;
                let v: Vec<Vec<f32>> = logits.to_vec2().unwrap();
                positions
                    .iter()
                    .map(|&p| {
                        use rand::Rng;
                        let m = v[p].iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                        let e: Vec<f64> = v[p].iter().map(|x| ((x - m) as f64).exp()).collect();
                        let mut u = r.gen::<f64>() * e.iter().sum::<f64>();
                        for (k, q) in e.iter().enumerate() {
                            if u < *q {
                                return k as u32;
                            }
                            u -= q;
                        }
                        (e.len() - 1) as u32
                    })
                    .collect()
            };
            if frozen {
                continue; // autograd has no weight gradients with a frozen base
            }
            wb.set_taps(None);
            let want = weight_gradients(&wb, &targets);
            wb.set_taps(Some(taps.clone()));
            for (l, spec) in specs.iter().enumerate() {
                let g = ekfac::example_gradients(&b.layers[l], &b.tokens).remove(0);
                let layer: usize = spec.name.split('.').nth(2).unwrap().parse().unwrap();
                let gguf = match spec.name.rsplit('.').next().unwrap() {
                    "gate_proj" => "ffn_gate",
                    "up_proj" => "ffn_up",
                    _ => "ffn_down",
                };
                let (_, w) = want
                    .iter()
                    .find(|(n, _)| n == &format!("blk.{layer}.{gguf}.weight"))
                    .unwrap();
                let (mut d, mut m) = (0f64, 0f64);
                for i in 0..w.nrows() {
                    for j in 0..w.ncols() {
                        d = d.max((g[(i, j)] - w[(i, j)]).abs());
                        m = m.max(w[(i, j)].abs());
                    }
                }
                assert!(
                    m > 0.0 && d <= 1e-4 * m,
                    "{which} {}: {d} of {m}",
                    spec.name
                );
            }
        }
    }
    // The frozen path (other kernels, base weights as constants) gives the same records.
    let (a, b) = (&gates[0], &gates[1]);
    let (mut d, mut m) = (0f64, 0f64);
    for i in 0..a.nrows() {
        for j in 0..a.ncols() {
            d = d.max((a[(i, j)] - b[(i, j)]).abs());
            m = m.max(a[(i, j)].abs());
        }
    }
    assert!(d <= 1e-4 * m, "frozen vs not: {d} of {m}");
}

/// Factors over four sequences and pairwise scores of two queries: finite, one row
/// per query, and a sequence's self-score under the heuristic damping positive.
#[test]
fn factors_and_scores_over_sequences() {
    let seqs: Vec<Vec<u32>> = vec![
        vec![1, 7, 3, 9, 12, 5],
        vec![1, 8, 8, 20, 21, 22, 23, 2],
        vec![1, 30, 31, 4, 4, 2],
        vec![1, 7, 3, 9, 15, 16, 2],
    ];
    let mut wb = white_box();
    wb.set_frozen(true).unwrap();
    let (taps, specs) = lm::tap(&mut wb, lm::MLP, Some(&[0, 1])).unwrap();
    let all = |ids: &[u32]| (0..ids.len() - 1).collect::<Vec<_>>();
    let data = |i: usize| {
        lm::records(
            &wb,
            &taps,
            &specs,
            &seqs[i],
            &all(&seqs[i]),
            Labels::<rand_chacha::ChaCha8Rng>::Data,
        )
    };
    let factors = ekfac::fit(&specs, seqs.len(), |i, _pass: Pass| data(i)).unwrap();
    assert_eq!(
        factors[0].tokens,
        seqs.iter().map(|s| s.len() as u64).sum::<u64>()
    );
    assert_eq!(factors[0].examples, 4);
    let queries = data(0).unwrap();
    let s = ekfac::pairwise(&factors, Damping::default(), &queries, seqs.len(), data).unwrap();
    assert_eq!((s.nrows(), s.ncols()), (1, 4));
    assert!(s[(0, 0)] > 0.0, "self-score {}", s[(0, 0)]);
    for z in 0..4 {
        assert!(s[(0, z)].is_finite());
    }
    // The self-score is the largest: the sequence is most like itself.
    assert!(
        (1..4).all(|z| s[(0, 0)] > s[(0, z)]),
        "{:?}",
        (0..4).map(|z| s[(0, z)]).collect::<Vec<_>>()
    );
}
