//! EK-FAC against kronfluence's outputs and against exact solves.
//!
//! - `tests/fixtures/kronfluence_small.json` (made by `bench/influence/make_fixture.py`
//!   with kronfluence, float64, empirical Fisher): two small networks (regression with
//!   ReLU, classification with tanh). Shammie's factors, eigenvalues, Λ and pairwise scores
//!   must equal kronfluence's to rounding; the fixture's exact damped solves (plain torch)
//!   give the correlation of EK-FAC with the exact answer, recomputed here.
//! - A single linear layer whose inputs each lie along one axis: its Kronecker eigenbasis
//!   diagonalises the empirical Fisher, so EK-FAC has no approximation error and must equal
//!   the exact damped solve, computed here densely.

use std::collections::HashMap;
use std::path::Path;

use faer::linalg::solvers::Solve;
use faer::Mat;
use serde_json::Value;
use shammie_influence::data::Table;
use shammie_influence::ekfac::{Damping, LayerFactors};
use shammie_influence::net::Net;
use shammie_influence::{fit_network, score_network, Fisher};

const FIXTURE: &str = include_str!("../fixtures/kronfluence_small.json");

fn mat(v: &Value) -> Mat<f64> {
    let rows = v.as_array().unwrap();
    let r = rows.len();
    let c = rows[0].as_array().map_or(1, |x| x.len());
    Mat::from_fn(r, c, |i, j| match rows[i].as_array() {
        Some(row) => row[j].as_f64().unwrap(),
        None => rows[i].as_f64().unwrap(),
    })
}

fn vec_of(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// Writes the case's network as files and loads it through `Net::load`.
fn network(case: &Value, dir: &Path) -> Net {
    let arch = dir.join("arch.json");
    std::fs::write(&arch, case["arch"].to_string()).unwrap();
    let mut t = HashMap::new();
    for (name, w) in case["weights"].as_object().unwrap() {
        let m = mat(&w["weight"]);
        let flat: Vec<f32> = (0..m.nrows())
            .flat_map(|i| (0..m.ncols()).map(move |j| (i, j)))
            .map(|(i, j)| m[(i, j)] as f32)
            .collect();
        t.insert(
            format!("{name}.weight"),
            candle_core::Tensor::from_vec(flat, (m.nrows(), m.ncols()), &candle_core::Device::Cpu)
                .unwrap(),
        );
        let b: Vec<f32> = vec_of(&w["bias"]).iter().map(|x| *x as f32).collect();
        let n = b.len();
        t.insert(
            format!("{name}.bias"),
            candle_core::Tensor::from_vec(b, n, &candle_core::Device::Cpu).unwrap(),
        );
    }
    let weights = dir.join("model.safetensors");
    candle_core::safetensors::save(&t, &weights).unwrap();
    Net::load(&arch, &weights).unwrap()
}

fn table(v: &Value) -> Table {
    Table {
        x: mat(&v["x"]),
        y: vec_of(&v["y"]),
    }
}

/// max |a − b| / max |b| over all entries.
fn rel(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    assert_eq!((a.nrows(), a.ncols()), (b.nrows(), b.ncols()));
    let (mut d, mut m) = (0f64, 0f64);
    for i in 0..a.nrows() {
        for j in 0..a.ncols() {
            d = d.max((a[(i, j)] - b[(i, j)]).abs());
            m = m.max(b[(i, j)].abs());
        }
    }
    d / m.max(1e-300)
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

fn flat(m: &Mat<f64>) -> Vec<f64> {
    (0..m.nrows())
        .flat_map(|i| (0..m.ncols()).map(move |j| m[(i, j)]))
        .collect()
}

#[test]
#[allow(clippy::print_stderr)] // reports EK-FAC's correlation with the exact solves (seen with --nocapture)
fn factors_and_scores_equal_kronfluences() {
    let fx: Value = serde_json::from_str(FIXTURE).unwrap();
    for case in fx["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let net = network(case, dir.path());
        let (train, query) = (table(&case["train"]), table(&case["query"]));
        let factors = fit_network(&net, &train, Fisher::Empirical, 0).unwrap();
        let k = &case["kronfluence"];
        for f in &factors {
            let kf = &k["factors"][&f.spec.name];
            let what = |w: &str| format!("{name} {} {w}", f.spec.name);
            for (w, ours) in [
                ("activation_covariance", &f.activation_covariance),
                ("gradient_covariance", &f.gradient_covariance),
                ("lambda", &f.lambda),
            ] {
                let e = rel(ours, &mat(&kf[w]));
                assert!(e < 1e-10, "{}: {e:e}", what(w));
            }
            for (w, ours) in [
                ("activation_eigenvalues", &f.activation_eigenvalues),
                ("gradient_eigenvalues", &f.gradient_eigenvalues),
            ] {
                let theirs = vec_of(&kf[w]);
                let scale = theirs.iter().fold(0f64, |m, x| m.max(x.abs()));
                for (a, b) in ours.iter().zip(&theirs) {
                    assert!(
                        (a - b).abs() <= 1e-10 * scale,
                        "{}: {ours:?} {theirs:?}",
                        what(w)
                    );
                }
            }
        }
        // Scores with each damping kronfluence was run with.
        for run in k["runs"].as_array().unwrap() {
            let damping = Damping::parse(run["damping"].as_str().unwrap()).unwrap();
            for f in &factors {
                let want = run["damping_per_layer"][&f.spec.name].as_f64().unwrap();
                assert!(
                    (damping.value(f) - want).abs() <= 1e-12 * want,
                    "{name}: damping"
                );
            }
            let s = score_network(&net, &factors, damping, &train, &query).unwrap();
            let e = rel(&s, &mat(&run["scores"]));
            assert!(
                e < 1e-9,
                "{name} damping {}: scores differ by {e:e}",
                run["damping"]
            );
        }
        // How far EK-FAC is from the exact solves (reported; the fixture's own r agrees).
        for ex in case["exact"].as_array().unwrap() {
            let damping = Damping::parse(ex["damping"].as_str().unwrap()).unwrap();
            let s = score_network(&net, &factors, damping, &train, &query).unwrap();
            let r = pearson(&flat(&s), &flat(&mat(&ex["scores"])));
            let theirs = ex["pearson_r_vs_kronfluence"].as_f64().unwrap();
            assert!(
                (r - theirs).abs() < 1e-9,
                "{name}: r {r} vs the fixture's {theirs}"
            );
            eprintln!(
                "{name}: EK-FAC vs exact {} ({}), damping {}: r = {r:.3}",
                ex["curvature"], ex["structure"], ex["damping"]
            );
        }
    }
}

/// One linear layer without a bias and one output (summed MSE), each input along one
/// axis (x_n = c_n e_{k(n)}): A = E[x xᵀ] is diagonal, S is a scalar, and the empirical
/// Fisher E[g gᵀ] (g_n = s_n x_n) is diagonal too, so the Kronecker eigenbasis
/// diagonalises it and EK-FAC's eigenvalue-corrected inverse is exact (with several
/// outputs each axis would have its own output covariance, which one Q_S cannot
/// diagonalise). Its scores must equal
/// g_qᵀ (F + λI)⁻¹ g_z computed densely (F built from the flattened per-example
/// gradients, solved by a Cholesky factorisation), for an absolute and the heuristic
/// damping.
#[test]
fn with_an_exact_eigenbasis_ekfac_is_the_damped_solve() {
    let dir = tempfile::tempdir().unwrap();
    let (inputs, outputs) = (4usize, 1usize);
    std::fs::write(
        dir.path().join("arch.json"),
        format!(
            r#"{{"layers": [{{"type": "linear", "in": {inputs}, "out": {outputs}, "name": "fc", "bias": false}}], "loss": "mse_sum"}}"#
        ),
    )
    .unwrap();
    let w: Vec<f32> = (0..inputs * outputs)
        .map(|i| ((i * 7 % 11) as f32 - 5.0) / 7.0)
        .collect();
    let t = HashMap::from([(
        "fc.weight".to_string(),
        candle_core::Tensor::from_vec(w, (outputs, inputs), &candle_core::Device::Cpu).unwrap(),
    )]);
    candle_core::safetensors::save(&t, dir.path().join("w.safetensors")).unwrap();
    let net = Net::load(
        &dir.path().join("arch.json"),
        &dir.path().join("w.safetensors"),
    )
    .unwrap();
    let n = 40;
    let rows: Vec<(usize, f64, f64)> = (0..n)
        .map(|i| {
            (
                i % inputs,
                0.5 + (i * 13 % 17) as f64 / 10.0,
                (i * 5 % 7) as f64 / 3.0 - 1.0,
            )
        })
        .collect();
    let train = Table {
        x: Mat::from_fn(
            n,
            inputs,
            |i, j| if rows[i].0 == j { rows[i].1 } else { 0.0 },
        ),
        y: rows.iter().map(|r| r.2).collect(),
    };
    let query = train.slice(0, 5);
    let factors: Vec<LayerFactors> = fit_network(&net, &train, Fisher::Empirical, 0).unwrap();
    let grads = net.flat_gradients(&train.x, &train.y);
    let qgrads = net.flat_gradients(&query.x, &query.y);
    let p = net.parameter_count();
    for damping in [Damping::Absolute(1e-2), Damping::default()] {
        let lam = damping.value(&factors[0]);
        let f = Mat::from_fn(p, p, |i, j| {
            grads.iter().map(|g| g[i] * g[j]).sum::<f64>() / n as f64
                + if i == j { lam } else { 0.0 }
        });
        let chol = f.llt(faer::Side::Lower).unwrap();
        let ours = score_network(&net, &factors, damping, &train, &query).unwrap();
        for (q, gq) in qgrads.iter().enumerate() {
            let rhs = Mat::from_fn(p, 1, |i, _| gq[i]);
            let x = chol.solve(&rhs);
            for (z, gz) in grads.iter().enumerate() {
                let exact: f64 = (0..p).map(|i| x[(i, 0)] * gz[i]).sum();
                let got = ours[(q, z)];
                assert!(
                    (got - exact).abs() <= 1e-9 * exact.abs().max(1e-6),
                    "q {q} z {z}: EK-FAC {got} vs exact {exact} ({damping:?})"
                );
            }
        }
    }
}
mod lm;
mod scoring;
