//! Compares every public formula against `tests/reference/reference.json`,
//! which `tests/reference/make_reference.py` produced with statsmodels and
//! scipy (versions recorded in the JSON's `meta`). No Python is needed here.
//!
//! Tolerances: `|actual - expected| <= rel * |expected| + abs`.
//! * distribution functions (normal/t CDF and quantile): rel 1e-12, abs 0
//!   (the functions are accurate to ~1e-14; scipy's own `norm.cdf` is
//!   good to ~2e-13 in the far tail);
//! * everything else: rel 1e-9, abs 1e-12.
//!
//! Failures are collected and reported together, with the fixture's name.

use std::path::PathBuf;

use serde_json::Value;
use shammie_stats::*;

const DIST_REL: f64 = 1e-12;
const REL: f64 = 1e-9;
const ABS: f64 = 1e-12;

fn load() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/reference/reference.json");
    let text = std::fs::read_to_string(&path).expect("reference.json is checked in");
    serde_json::from_str(&text).expect("reference.json parses")
}

#[derive(Default)]
struct Checker {
    failures: Vec<String>,
    checked: usize,
    worst_rel: f64,
}

impl Checker {
    fn close(&mut self, what: &str, actual: f64, expected: f64, rel: f64, abs: f64) {
        self.checked += 1;
        if expected != 0.0 && expected.is_finite() {
            self.worst_rel = self.worst_rel.max(((actual - expected) / expected).abs());
        }
        let ok = if expected.is_infinite() {
            actual == expected
        } else {
            (actual - expected).abs() <= rel * expected.abs() + abs
        };
        if !ok {
            self.failures.push(format!(
                "{what}: actual {actual:e}, expected {expected:e} (diff {:e})",
                actual - expected
            ));
        }
    }

    #[allow(clippy::print_stderr)] // reports what it measured (seen with --nocapture)
    fn finish(self, section: &str, min_checks: usize) {
        // Visible with `cargo test -- --nocapture`.
        eprintln!(
            "{section}: {} comparisons, worst relative error {:e}",
            self.checked, self.worst_rel
        );
        assert!(
            self.checked >= min_checks,
            "{section}: only {} comparisons ran (fixture truncated?)",
            self.checked
        );
        assert!(
            self.failures.is_empty(),
            "{section}: {} of {} comparisons failed:\n{}",
            self.failures.len(),
            self.checked,
            self.failures.join("\n")
        );
    }
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}
fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a u64: {v}"))
}
fn fvec(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(f).collect()
}
fn uvec(v: &Value) -> Vec<u64> {
    v.as_array().unwrap().iter().map(u).collect()
}
fn arr(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}"))
}

#[test]
fn normal_distribution_matches_scipy() {
    let r = load();
    let mut c = Checker::default();
    for case in arr(&r["normal"]["quantile"]) {
        let p = f(&case["p"]);
        c.close(
            &format!("normal_quantile({p:e})"),
            normal_quantile(p),
            f(&case["expected"]),
            DIST_REL,
            0.0,
        );
    }
    for case in arr(&r["normal"]["cdf"]) {
        let x = f(&case["x"]);
        c.close(
            &format!("normal_cdf({x})"),
            normal_cdf(x),
            f(&case["expected"]),
            DIST_REL,
            0.0,
        );
    }
    for case in arr(&r["normal"]["z_for"]) {
        let conf = f(&case["confidence"]);
        c.close(
            &format!("z_for({conf})"),
            z_for(conf),
            f(&case["expected"]),
            DIST_REL,
            0.0,
        );
    }
    c.finish("normal", 50);
}

#[test]
fn student_t_matches_scipy() {
    let r = load();
    let mut c = Checker::default();
    for case in arr(&r["student_t"]["quantile"]) {
        let (p, df) = (f(&case["p"]), f(&case["df"]));
        c.close(
            &format!("student_t_quantile({p:e}, {df})"),
            student_t_quantile(p, df),
            f(&case["expected"]),
            DIST_REL,
            0.0,
        );
    }
    for case in arr(&r["student_t"]["cdf"]) {
        let (t, df) = (f(&case["t"]), f(&case["df"]));
        c.close(
            &format!("student_t_cdf({t}, {df})"),
            student_t_cdf(t, df),
            f(&case["expected"]),
            DIST_REL,
            0.0,
        );
    }
    c.finish("student_t", 200);
}

#[test]
fn wilson_matches_statsmodels() {
    let r = load();
    let mut c = Checker::default();
    for case in arr(&r["wilson"]["cases"]) {
        let (x, n, conf) = (u(&case["x"]), u(&case["n"]), f(&case["confidence"]));
        let got = wilson(x, n, conf).unwrap();
        let tag = format!("wilson({x}, {n}, {conf})");
        c.close(
            &format!("{tag}.estimate"),
            got.estimate,
            f(&case["estimate"]),
            REL,
            ABS,
        );
        c.close(&format!("{tag}.lo"), got.lo, f(&case["lo"]), REL, ABS);
        c.close(&format!("{tag}.hi"), got.hi, f(&case["hi"]), REL, ABS);
    }
    c.finish("wilson", 100);
}

#[test]
fn newcombe_matches_statsmodels() {
    let r = load();
    let mut c = Checker::default();
    for case in arr(&r["newcombe"]["cases"]) {
        let (x1, n1, x2, n2) = (
            u(&case["x1"]),
            u(&case["n1"]),
            u(&case["x2"]),
            u(&case["n2"]),
        );
        let conf = f(&case["confidence"]);
        let got = newcombe_diff(x1, n1, x2, n2, conf).unwrap();
        let tag = format!("newcombe_diff({x1}, {n1}, {x2}, {n2}, {conf})");
        c.close(
            &format!("{tag}.estimate"),
            got.estimate,
            f(&case["estimate"]),
            REL,
            ABS,
        );
        c.close(&format!("{tag}.lo"), got.lo, f(&case["lo"]), REL, ABS);
        c.close(&format!("{tag}.hi"), got.hi, f(&case["hi"]), REL, ABS);
    }
    c.finish("newcombe", 80);
}

#[test]
fn mean_ci_t_matches_statsmodels() {
    let r = load();
    let mut c = Checker::default();
    for (i, case) in arr(&r["mean_ci_t"]["cases"]).iter().enumerate() {
        let values = fvec(&case["values"]);
        let conf = f(&case["confidence"]);
        let got = mean_ci_t(&values, conf).unwrap();
        let tag = format!("mean_ci_t case {i} (n={}, c={conf})", values.len());
        c.close(
            &format!("{tag}.estimate"),
            got.estimate,
            f(&case["estimate"]),
            REL,
            ABS,
        );
        c.close(&format!("{tag}.se"), got.se, f(&case["se"]), REL, ABS);
        c.close(&format!("{tag}.lo"), got.lo, f(&case["lo"]), REL, ABS);
        c.close(&format!("{tag}.hi"), got.hi, f(&case["hi"]), REL, ABS);
    }
    c.finish("mean_ci_t", 80);
}

fn check_fit(c: &mut Checker, tag: &str, got: &OlsFit, want: &Value) {
    let coef = fvec(&want["coef"]);
    let se = fvec(&want["se"]);
    let ci = arr(&want["ci"]);
    assert_eq!(got.coef.len(), coef.len(), "{tag}: number of coefficients");
    for j in 0..coef.len() {
        c.close(&format!("{tag}.coef[{j}]"), got.coef[j], coef[j], REL, ABS);
        c.close(&format!("{tag}.se[{j}]"), got.se[j], se[j], REL, ABS);
        let bounds = fvec(&ci[j]);
        c.close(
            &format!("{tag}.ci[{j}].lo"),
            got.ci[j].0,
            bounds[0],
            REL,
            ABS,
        );
        c.close(
            &format!("{tag}.ci[{j}].hi"),
            got.ci[j].1,
            bounds[1],
            REL,
            ABS,
        );
    }
}

#[test]
fn ols_matches_statsmodels() {
    let r = load();
    let mut c = Checker::default();
    for ds in arr(&r["ols"]["datasets"]) {
        let name = ds["name"].as_str().unwrap();
        let x: Vec<Vec<f64>> = arr(&ds["x"]).iter().map(fvec).collect();
        let y = fvec(&ds["y"]);
        let groups = uvec(&ds["clusters"]);
        let g = u(&ds["n_clusters"]) as usize;
        for case in arr(&ds["cases"]) {
            let conf = f(&case["confidence"]);

            let fit = ols(&x, &y, conf).unwrap();
            assert_eq!((fit.n, fit.clusters), (y.len(), None));
            check_fit(
                &mut c,
                &format!("{name} ols c={conf}"),
                &fit,
                &case["classical"],
            );

            let fit = ols_clustered(&x, &y, &groups, conf).unwrap();
            assert_eq!((fit.n, fit.clusters), (y.len(), Some(g)));
            check_fit(
                &mut c,
                &format!("{name} ols_clustered c={conf}"),
                &fit,
                &case["cluster_normal"],
            );

            assert_eq!(u(&case["cluster_t"]["df"]) as usize, g - 1);
            let fit =
                ols_clustered_with(&x, &y, &groups, conf, ClusterInference::StudentT).unwrap();
            check_fit(
                &mut c,
                &format!("{name} ols_clustered t(G-1) c={conf}"),
                &fit,
                &case["cluster_t"],
            );
        }
    }
    c.finish("ols", 150);
}

#[test]
fn clustered_ratio_matches_statsmodels_wls() {
    let r = load();
    let mut c = Checker::default();
    let mut clipped = 0;
    for case in arr(&r["clustered_ratio"]["cases"]) {
        let name = case["name"].as_str().unwrap();
        let (y, m, g) = (fvec(&case["y"]), fvec(&case["m"]), uvec(&case["clusters"]));
        let conf = f(&case["confidence"]);
        let got = clustered_ratio(&y, &m, &g, conf).unwrap();
        let tag = format!("clustered_ratio {name} c={conf}");
        c.close(
            &format!("{tag}.estimate"),
            got.estimate,
            f(&case["estimate"]),
            REL,
            ABS,
        );
        c.close(&format!("{tag}.se"), got.se, f(&case["se"]), REL, ABS);
        c.close(&format!("{tag}.lo"), got.lo, f(&case["lo"]), REL, ABS);
        c.close(&format!("{tag}.hi"), got.hi, f(&case["hi"]), REL, ABS);
        if let Some(ols_se) = case.get("ols_se") {
            c.close(&format!("{tag}.se vs OLS"), got.se, f(ols_se), REL, ABS);
        }
        // The unclipped statsmodels bounds are estimate ∓ z·se exactly.
        let z = z_for(conf);
        c.close(
            &format!("{tag}.lo_unclipped"),
            got.estimate - z * got.se,
            f(&case["lo_unclipped"]),
            REL,
            ABS,
        );
        if f(&case["lo_unclipped"]) < 0.0 {
            clipped += 1;
            assert_eq!(got.lo, 0.0, "{tag}: clipped lower bound");
        }
    }
    assert!(clipped >= 1, "fixture should exercise clipping at 0");
    c.finish("clustered_ratio", 50);
}

#[test]
fn auroc_matches_mann_whitney() {
    let r = load();
    let mut c = Checker::default();
    for (i, case) in arr(&r["auroc"]["cases"]).iter().enumerate() {
        let scores = fvec(&case["scores"]);
        let labels: Vec<bool> = arr(&case["labels"])
            .iter()
            .map(|b| b.as_bool().unwrap())
            .collect();
        let got = auroc(&scores, &labels).unwrap();
        c.close(
            &format!("auroc case {i}"),
            got,
            f(&case["expected"]),
            REL,
            ABS,
        );
    }
    c.finish("auroc", 5);
}

#[test]
#[allow(clippy::print_stderr)] // reports what it measured (seen with --nocapture)
fn bootstrap_mean_agrees_with_scipy_percentile() {
    let r = load();
    let b = &r["bootstrap_mean"];
    let values = fvec(&b["values"]);
    let resamples = u(&b["resamples"]) as usize;
    let conf = f(&b["confidence"]);
    let (lo, hi) = (f(&b["lo"]), f(&b["hi"]));
    let width = hi - lo;
    assert!(width > 0.0);
    // Different RNGs, so only Monte-Carlo agreement is possible: with
    // B = 20000 the endpoints' MC standard error is ~0.5% of the width.
    for seed in [1_u64, 2, 3] {
        let got = bootstrap_mean(&values, resamples, conf, seed).unwrap();
        assert!((got.estimate - f(&b["mean"])).abs() < 1e-12);
        eprintln!(
            "bootstrap seed {seed}: lo off by {:.4} widths, hi off by {:.4} widths",
            (got.lo - lo) / width,
            (got.hi - hi) / width
        );
        assert!(
            (got.lo - lo).abs() <= 0.02 * width,
            "seed {seed}: lo {} vs scipy {lo} (width {width})",
            got.lo
        );
        assert!(
            (got.hi - hi).abs() <= 0.02 * width,
            "seed {seed}: hi {} vs scipy {hi} (width {width})",
            got.hi
        );
    }
}
