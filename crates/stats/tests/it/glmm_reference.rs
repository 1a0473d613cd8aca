//! Compares `glmm_binomial` against `tests/reference/glmm_reference.json`, which
//! `tests/reference/make_glmm_reference.py` produced with an independent numpy/scipy
//! implementation of the Laplace-approximated logistic mixed model (dense Hessians per
//! group, scipy optimisers, Richardson-extrapolated finite-difference Hessian for the
//! standard errors). No Python is needed here.
//!
//! Cases: a random intercept whose variance ends on the boundary (0); a random
//! intercept with an observation-level effect (over-dispersion); a random intercept
//! and slope (2×2 covariance). Tolerances: the log-likelihood to 1e-6, coefficients
//! to 1e-4, standard errors and variances to 1e-3 relative (the two optimisers stop
//! within ~1e-6 of the optimum; finite-difference Hessians differ at ~1e-5).

use std::path::PathBuf;

use serde_json::Value;
use shammie_stats::*;

fn load() -> Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/reference/glmm_reference.json");
    let text = std::fs::read_to_string(&path).expect("glmm_reference.json is checked in");
    serde_json::from_str(&text).expect("glmm_reference.json parses")
}

fn close(what: &str, got: f64, want: f64, rel: f64, abs: f64) {
    assert!(
        (got - want).abs() <= rel * want.abs() + abs,
        "{what}: got {got}, want {want}"
    );
}

#[test]
fn laplace_fits_match_an_independent_implementation() {
    let v = load();
    for (i, c) in v["cases"].as_array().unwrap().iter().enumerate() {
        let slope = c["slope"].as_bool().unwrap();
        let obs = c["obs"].as_bool().unwrap();
        let rows = c["rows"].as_array().unwrap();
        let col = |k: usize| -> Vec<f64> { rows.iter().map(|r| r[k].as_f64().unwrap()).collect() };
        let (g, x1, x2, k, n) = (col(0), col(1), col(2), col(3), col(4));
        let x: Vec<Vec<f64>> = (0..rows.len()).map(|j| vec![1.0, x1[j], x2[j]]).collect();
        let z: Vec<Vec<f64>> = (0..rows.len())
            .map(|j| if slope { vec![1.0, x2[j]] } else { vec![1.0] })
            .collect();
        let groups: Vec<usize> = g.iter().map(|v| *v as usize).collect();
        let fit = glmm_binomial(&k, &n, &x, &z, &groups, obs, 0.95).unwrap();
        let case = format!("case {i}");
        assert!(fit.converged, "{case}: {fit:?}");
        close(
            &format!("{case} llf"),
            fit.log_likelihood,
            c["llf"].as_f64().unwrap(),
            0.0,
            1e-6,
        );
        for j in 0..3 {
            close(
                &format!("{case} coef {j}"),
                fit.coef[j],
                c["coef"][j].as_f64().unwrap(),
                0.0,
                1e-4,
            );
            close(
                &format!("{case} se {j}"),
                fit.se[j],
                c["se"][j].as_f64().unwrap(),
                1e-3,
                1e-5,
            );
            let iv = fit.intervals[j];
            close(
                &format!("{case} lo {j}"),
                iv.lo,
                fit.coef[j] - 1.959963984540054 * fit.se[j],
                0.0,
                1e-12,
            );
        }
        let want_re = c["cov_re"].as_array().unwrap();
        assert_eq!(want_re.len(), fit.cov_re.len());
        for (a, (got_row, want_row)) in fit.cov_re.iter().zip(want_re).enumerate() {
            for (b, got) in got_row.iter().enumerate() {
                close(
                    &format!("{case} cov_re {a}{b}"),
                    *got,
                    want_row[b].as_f64().unwrap(),
                    1e-3,
                    1e-4,
                );
            }
        }
        match c["obs_var"].as_f64() {
            Some(w) => close(
                &format!("{case} obs_var"),
                fit.obs_var.unwrap(),
                w,
                1e-3,
                1e-5,
            ),
            None => assert_eq!(fit.obs_var, None),
        }
    }
}

#[test]
fn bad_counts_are_refused() {
    let x = vec![vec![1.0]; 4];
    let z = vec![vec![1.0]; 4];
    let g = [0, 0, 1, 1];
    for (k, n) in [
        ([1.0, 2.0, 3.0, 5.0], [4.0; 4]),
        ([0.5, 1.0, 1.0, 1.0], [4.0; 4]),
        ([0.0; 4], [0.0, 1.0, 1.0, 1.0]),
    ] {
        assert!(matches!(
            glmm_binomial(&k, &n, &x, &z, &g, false, 0.95),
            Err(StatsError::InvalidArgument(_))
        ));
    }
    assert!(matches!(
        glmm_binomial(&[1.0; 4], &[2.0; 4], &x, &z, &[0; 4], false, 0.95),
        Err(StatsError::TooFewClusters(1))
    ));
}
