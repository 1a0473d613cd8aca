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

/// The driver over sequences (`lm::Lm`, `lm::Scorer`): a fit with sampled labels killed
/// after its second batch and resumed from its checkpoint equals an uninterrupted one
/// (the labels are drawn per sequence, so they do not depend on where a run started); a
/// training sequence identical to the query ranks first among random ones at every rank;
/// per-token scores sum to the exact pairwise score; the query's log-probability equals
/// the log-softmax of the model's logits summed over the completion.
#[test]
fn fits_resume_and_a_copy_of_the_query_ranks_first() {
    use shammie_influence::checkpoint::Checkpoint;
    use shammie_influence::lm::{Lm, Scorer, Sequence};
    use shammie_influence::Fisher;
    let mut wb = white_box();
    wb.set_frozen(true).unwrap();
    let (taps, specs) = lm::tap(&mut wb, lm::MLP, None).unwrap();
    let lm = Lm {
        wb: &wb,
        taps,
        specs,
        batch_tokens: 16,
    };
    let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(21);
    use rand::Rng;
    let mut corpus: Vec<Sequence> = (0..8)
        .map(|i| {
            let n = r.gen_range(6..12);
            let mut ids = vec![1u32];
            ids.extend((1..n).map(|_| r.gen_range(3..40u32)));
            Sequence {
                id: format!("doc-{i}"),
                ids,
                loss_from: 1,
            }
        })
        .collect();
    let query = Sequence {
        id: "q".into(),
        ids: vec![1, 9, 14, 22, 5, 31, 18, 7],
        loss_from: 4,
    };
    corpus.insert(
        5,
        Sequence {
            id: "copy".into(),
            ..query.clone()
        },
    );

    let whole = lm
        .fit(&corpus, Fisher::Sampled, 3, None, &mut |_, _| {})
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ckpt = Checkpoint::new(dir.path(), std::time::Duration::ZERO);
    let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        lm.fit(&corpus, Fisher::Sampled, 3, Some(&ckpt), &mut |done, _| {
            assert!(done < 3, "killed");
        })
    }));
    assert!(killed.is_err());
    let mut asked = 0;
    let resumed = lm
        .fit(&corpus, Fisher::Sampled, 3, Some(&ckpt), &mut |_, total| {
            asked += 1;
            assert!(total > 4);
        })
        .unwrap();
    let batches = lm::batch_ranges(&corpus, 16).len();
    assert!(batches >= 3, "{batches}");
    assert_eq!(
        asked,
        2 * batches - 2,
        "the two batches before the kill are not redone"
    );
    for (a, b) in whole.iter().zip(&resumed) {
        assert_eq!(a.lambda, b.lambda, "{}", a.spec.name);
        assert_eq!(a.gradient_covariance, b.gradient_covariance);
    }
    // With the data's labels the second pass reuses the first pass's records: the same
    // factors as a fit that computes them twice.
    let one = Lm {
        wb: &wb,
        taps: lm.taps.clone(),
        specs: lm.specs.clone(),
        batch_tokens: 1,
    };
    let cached = one
        .fit(&corpus, Fisher::Empirical, 0, None, &mut |_, _| {})
        .unwrap();
    let twice = ekfac::fit(&lm.specs, corpus.len(), |i, _| lm.records(&corpus[i])).unwrap();
    for (a, b) in cached.iter().zip(&twice) {
        assert_eq!(a.lambda, b.lambda, "{}", a.spec.name);
        assert_eq!(a.activation_covariance, b.activation_covariance);
    }
    // Another seed draws other labels.
    let other = lm
        .fit(&corpus, Fisher::Sampled, 4, None, &mut |_, _| {})
        .unwrap();
    assert_ne!(other[0].gradient_covariance, whole[0].gradient_covariance);

    let exact = Scorer::new(
        &lm,
        &whole,
        Damping::default(),
        std::slice::from_ref(&query),
        None,
    )
    .unwrap();
    let q_records = lm.records(&query).unwrap();
    let pairwise = ekfac::pairwise(&whole, Damping::default(), &q_records, corpus.len(), |i| {
        lm.records(&corpus[i])
    })
    .unwrap();
    for rank in [None, Some(1), Some(4)] {
        let scorer = Scorer::new(
            &lm,
            &whole,
            Damping::default(),
            std::slice::from_ref(&query),
            rank,
        )
        .unwrap();
        let scores: Vec<f64> = corpus
            .iter()
            .map(|s| scorer.score(s, false).unwrap().scores()[0])
            .collect();
        let best = (0..scores.len())
            .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
            .unwrap();
        assert_eq!(corpus[best].id, "copy", "rank {rank:?}: {scores:?}");
    }
    for (i, s) in corpus.iter().enumerate() {
        let got = exact.score(s, true).unwrap();
        assert_eq!(got.tokens[0].len(), s.ids.len());
        let sum: f64 = got.tokens[0].iter().sum();
        assert!((sum - pairwise[(0, i)]).abs() <= 1e-9 * sum.abs().max(1e-9));
        assert!(got.self_influence.unwrap() > 0.0);
    }
    // log p(completion | prompt) from the logits.
    let logits: Vec<Vec<f32>> = wb.forward(&query.ids).unwrap().logits.to_vec2().unwrap();
    let mut want = 0.0;
    for p in query.loss_from - 1..query.ids.len() - 1 {
        let row = &logits[p];
        let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
        let z: f64 = row.iter().map(|&x| (x as f64 - m).exp()).sum();
        want += row[query.ids[p + 1] as usize] as f64 - m - z.ln();
    }
    let got = lm.logprob(&query).unwrap();
    assert!((got - want).abs() < 1e-4, "{got} vs {want}");
}
