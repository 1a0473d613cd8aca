//! Scores beyond the pairwise matrix, on synthetic records (two layers, examples of
//! several tokens), each checked against a computation that does not share its path:
//! per-token scores against ⟨P(G_q), s_t ā_tᵀ⟩ with P applied to the query's whole
//! gradient; the low-rank query approximation (from a Gram matrix's eigendecomposition)
//! against faer's SVD truncated; self-influence against ⟨P(G_z), G_z⟩; a checkpointed fit,
//! killed in either pass and resumed, against an uninterrupted one; factor files in f64
//! and f32.
#![allow(clippy::needless_range_loop)] // index loops mirror the formulas

use std::cell::Cell;

use faer::Mat;
use rand::{Rng, SeedableRng};
use shammie_influence::checkpoint::Checkpoint;
use shammie_influence::ekfac::{self, Batch, Damping, LayerRecord, LayerSpec, Pass};
use shammie_influence::io;
use shammie_influence::InfluenceError;

fn specs() -> Vec<LayerSpec> {
    vec![
        LayerSpec {
            name: "a".into(),
            inputs: 5,
            outputs: 4,
        },
        LayerSpec {
            name: "b".into(),
            inputs: 4,
            outputs: 6,
        },
    ]
}

/// Random records for examples of `tokens` tokens each.
fn batch(seed: u64, tokens: &[usize]) -> Batch {
    let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let rows: usize = tokens.iter().sum();
    Batch {
        layers: specs()
            .iter()
            .map(|s| LayerRecord {
                a: Mat::from_fn(rows, s.inputs, |_, _| r.gen_range(-1.0..1.0)),
                s: Mat::from_fn(rows, s.outputs, |_, _| r.gen_range(-1.0..1.0)),
            })
            .collect(),
        tokens: tokens.to_vec(),
    }
}

const TOKENS: [[usize; 3]; 4] = [[3, 2, 4], [1, 5, 2], [2, 2, 2], [4, 1, 3]];

fn fitted() -> Vec<ekfac::LayerFactors> {
    ekfac::fit(&specs(), TOKENS.len(), |i, p| {
        Ok(batch(
            i as u64 + 100 * u64::from(p == Pass::Lambda),
            &TOKENS[i],
        ))
    })
    .unwrap()
}

fn dot(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    let mut s = 0.0;
    for j in 0..a.ncols() {
        for i in 0..a.nrows() {
            s += a[(i, j)] * b[(i, j)];
        }
    }
    s
}

/// Each training example's rows at a layer as its own gradients s_t ā_tᵀ.
fn token_gradients(r: &LayerRecord, start: usize, t: usize) -> Vec<Mat<f64>> {
    (start..start + t)
        .map(|row| {
            Mat::from_fn(r.s.ncols(), r.a.ncols(), |i, j| {
                r.s[(row, i)] * r.a[(row, j)]
            })
        })
        .collect()
}

#[test]
fn per_token_scores_are_each_tokens_part_of_the_gradient() {
    let f = fitted();
    let d = Damping::Absolute(0.05);
    let q = batch(7, &[3, 2]);
    let train = batch(8, &[3, 2, 4]);
    let pre = ekfac::precondition_queries(&f, d, &q, None).unwrap();
    let got = ekfac::token_scores(&f, &pre, &train).unwrap();
    // Independently: P applied to each query's gradient, dotted with each token's part.
    let mut start = 0;
    for (z, &t) in train.tokens.iter().enumerate() {
        for qi in 0..2 {
            for k in 0..t {
                let mut want = 0.0;
                for (l, lf) in f.iter().enumerate() {
                    let gq = &ekfac::example_gradients(&q.layers[l], &q.tokens)[qi];
                    let p = ekfac::precondition(lf, 0.05, gq.as_ref());
                    want += dot(&p, &token_gradients(&train.layers[l], start, t)[k]);
                }
                let g = got[z][qi][k];
                assert!(
                    (g - want).abs() <= 1e-10 * want.abs().max(1.0),
                    "{z} {qi} {k}: {g} vs {want}"
                );
            }
        }
        start += t;
    }
    // They sum to the pairwise scores.
    let m = ekfac::pairwise(&f, d, &q, 1, |_| Ok(batch(8, &[3, 2, 4]))).unwrap();
    for z in 0..3 {
        for qi in 0..2 {
            let s: f64 = got[z][qi].iter().sum();
            assert!((s - m[(qi, z)]).abs() <= 1e-12 * s.abs().max(1.0));
        }
    }
}

/// The rank-r truncation of P from faer's singular value decomposition (the code under
/// test uses the eigendecomposition of a Gram matrix instead): P_r = Σ_{k<r} σ_k u_k v_kᵀ.
fn truncated(p: &Mat<f64>, r: usize) -> Mat<f64> {
    let svd = p.svd().unwrap();
    let s: Vec<f64> = svd.S().column_vector().iter().copied().collect();
    let mut order: Vec<usize> = (0..s.len()).collect();
    order.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
    let mut out = Mat::zeros(p.nrows(), p.ncols());
    for &k in order.iter().take(r) {
        for j in 0..p.ncols() {
            for i in 0..p.nrows() {
                out[(i, j)] += s[k] * svd.U()[(i, k)] * svd.V()[(j, k)];
            }
        }
    }
    out
}

#[test]
fn low_rank_queries_are_the_truncated_svd() {
    let f = fitted();
    let d = Damping::default();
    let q = batch(9, &[4, 3]);
    let train = batch(10, &[2, 3, 1]);
    for rank in [1usize, 2, 3] {
        let pre = ekfac::precondition_queries(&f, d, &q, Some(rank)).unwrap();
        let got = ekfac::token_scores(&f, &pre, &train).unwrap();
        for qi in 0..2 {
            for (z, g) in ekfac::example_gradients(&train.layers[0], &train.tokens)
                .iter()
                .enumerate()
            {
                let mut want = 0.0;
                for (l, lf) in f.iter().enumerate() {
                    let gq = &ekfac::example_gradients(&q.layers[l], &q.tokens)[qi];
                    let p = ekfac::precondition(lf, d.value(lf), gq.as_ref());
                    let gz = if l == 0 {
                        g.clone()
                    } else {
                        ekfac::example_gradients(&train.layers[l], &train.tokens)[z].clone()
                    };
                    want += dot(
                        &truncated(&p, rank.min(lf.spec.outputs.min(lf.spec.inputs))),
                        &gz,
                    );
                }
                let s: f64 = got[z][qi].iter().sum();
                assert!(
                    (s - want).abs() <= 1e-9 * want.abs().max(1e-3),
                    "rank {rank}, query {qi}, example {z}: {s} vs {want}"
                );
            }
        }
    }
    // At full rank (4 = min(outputs, inputs) of both layers) the approximation is exact.
    let exact = ekfac::pairwise(&f, d, &q, 1, |_| Ok(batch(10, &[2, 3, 1]))).unwrap();
    let pre = ekfac::precondition_queries(&f, d, &q, Some(4)).unwrap();
    let got = ekfac::token_scores(&f, &pre, &train).unwrap();
    for z in 0..3 {
        for qi in 0..2 {
            let s: f64 = got[z][qi].iter().sum();
            assert!((s - exact[(qi, z)]).abs() <= 1e-10 * s.abs().max(1.0));
        }
    }
}

#[test]
fn self_influence_is_the_preconditioned_norm() {
    let f = fitted();
    let d = Damping::Absolute(0.02);
    let b = batch(11, &[3, 1, 2]);
    let got = ekfac::self_influence(&f, d, &b).unwrap();
    for (z, g) in got.iter().enumerate() {
        let mut want = 0.0;
        for (l, lf) in f.iter().enumerate() {
            let gz = &ekfac::example_gradients(&b.layers[l], &b.tokens)[z];
            want += dot(&ekfac::precondition(lf, 0.02, gz.as_ref()), gz);
        }
        assert!(
            *g > 0.0 && (g - want).abs() <= 1e-10 * want,
            "{z}: {g} vs {want}"
        );
    }
    // And the diagonal of the pairwise matrix of the batch against itself.
    let m = ekfac::pairwise(&f, d, &b, 1, |_| Ok(batch(11, &[3, 1, 2]))).unwrap();
    for z in 0..3 {
        assert!((m[(z, z)] - got[z]).abs() <= 1e-10 * got[z]);
    }
}

fn same(a: &[ekfac::LayerFactors], b: &[ekfac::LayerFactors]) {
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.tokens, y.tokens);
        assert_eq!(x.examples, y.examples);
        for (p, q) in [
            (&x.activation_covariance, &y.activation_covariance),
            (&x.gradient_covariance, &y.gradient_covariance),
            (&x.lambda, &y.lambda),
            (&x.activation_eigenvectors, &y.activation_eigenvectors),
        ] {
            assert_eq!(p, q, "{}", x.spec.name);
        }
    }
}

#[test]
fn a_killed_fit_resumes_from_its_checkpoint() {
    let want = fitted();
    for (kill_pass, kill_at) in [(Pass::Covariance, 2), (Pass::Lambda, 1), (Pass::Lambda, 3)] {
        let dir = tempfile::tempdir().unwrap();
        let ckpt = Checkpoint::new(dir.path(), std::time::Duration::ZERO);
        let calls = Cell::new(0);
        let r = ekfac::fit_checkpointed(
            &specs(),
            TOKENS.len(),
            |i, p| {
                if p == kill_pass && i == kill_at {
                    return Err(InfluenceError::Data("killed".into()));
                }
                calls.set(calls.get() + 1);
                Ok(batch(
                    i as u64 + 100 * u64::from(p == Pass::Lambda),
                    &TOKENS[i],
                ))
            },
            Some(&ckpt),
        );
        assert!(r.is_err());
        let got = ekfac::fit_checkpointed(
            &specs(),
            TOKENS.len(),
            |i, p| {
                calls.set(calls.get() + 1);
                Ok(batch(
                    i as u64 + 100 * u64::from(p == Pass::Lambda),
                    &TOKENS[i],
                ))
            },
            Some(&ckpt),
        )
        .unwrap();
        same(&got, &want);
        // Batches counted before the kill are not asked for again.
        assert_eq!(calls.get(), 2 * TOKENS.len(), "{kill_pass:?} {kill_at}");
        // Another fit (other batch count) in the same folder is refused.
        let other = ekfac::fit_checkpointed(
            &specs(),
            3,
            |i, _| Ok(batch(i as u64, &TOKENS[i])),
            Some(&ckpt),
        );
        assert!(format!("{}", other.err().unwrap()).contains("another fit"),);
    }
}

#[test]
fn factor_files_in_f64_and_f32() {
    let f = fitted();
    let dir = tempfile::tempdir().unwrap();
    io::save_factors(dir.path(), &f, io::Dtype::F64).unwrap();
    same(&io::load_factors(dir.path()).unwrap(), &f);
    let d32 = dir.path().join("f32");
    io::save_factors(&d32, &f, io::Dtype::F32).unwrap();
    let g = io::load_factors(&d32).unwrap();
    for (x, y) in f.iter().zip(&g) {
        for (p, q) in [
            (&x.lambda, &y.lambda),
            (&x.gradient_eigenvectors, &y.gradient_eigenvectors),
        ] {
            for j in 0..p.ncols() {
                for i in 0..p.nrows() {
                    assert!((p[(i, j)] - q[(i, j)]).abs() <= 1e-7 * p[(i, j)].abs().max(1e-3));
                }
            }
        }
    }
    let big = std::fs::metadata(dir.path().join(io::FACTORS_FILE))
        .unwrap()
        .len();
    let small = std::fs::metadata(d32.join(io::FACTORS_FILE)).unwrap().len();
    // Four bytes fewer per number (the headers differ only in their offsets' digits).
    let numbers: u64 = f
        .iter()
        .map(|x| {
            let (i, o) = (x.spec.inputs as u64, x.spec.outputs as u64);
            2 * i * i + 2 * o * o + i + o + o * i
        })
        .sum();
    assert!((big - small).abs_diff(4 * numbers) < 64, "{small} vs {big}");
}
