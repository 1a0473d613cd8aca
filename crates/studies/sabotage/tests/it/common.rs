//! What the tests share: running a task on one scripted model, and reading result cells.

use std::sync::Arc;

use shammie_core::{Cell, Results};
use shammie_engine::Task;
use shammie_models::Model;

/// Runs `task` with `model` in every role, into a temporary run directory.
pub(crate) async fn run_task(
    task: Arc<dyn Task>,
    model: Arc<dyn Model>,
) -> (shammie_log::RunDir, Results, tempfile::TempDir) {
    shammie_kit::testing::run_all(task, model, None).await
}

pub(crate) fn table<'a>(r: &'a Results, name: &str) -> &'a shammie_core::Table {
    r.tables.iter().find(|t| t.name == name).unwrap()
}

pub(crate) fn estimate(c: &Cell) -> (f64, f64, f64) {
    match c {
        Cell::Estimate {
            estimate, lo, hi, ..
        } => (*estimate, *lo, *hi),
        other => panic!("not an estimate: {other:?}"),
    }
}

/// Equal to 1e-6: the t quantiles here are written to 16 digits, the library computes its
/// own (to about 1e-9).
pub(crate) fn close(got: (f64, f64, f64), want: (f64, f64, f64)) {
    for (g, w) in [(got.0, want.0), (got.1, want.1), (got.2, want.2)] {
        assert!((g - w).abs() < 1e-6, "{got:?} vs {want:?}");
    }
}

/// Mean and t 95% interval, `t` the quantile t(0.975, n − 1).
pub(crate) fn mean_t(xs: &[f64], t: f64) -> (f64, f64, f64) {
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    let sd = (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    (m, m - t * sd / n.sqrt(), m + t * sd / n.sqrt())
}

/// Wilson 95% interval of k of n, in percent.
pub(crate) fn wilson(k: f64, n: f64) -> (f64, f64, f64) {
    let z = 1.959963984540054;
    let p = k / n;
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    (100.0 * p, 100.0 * (centre - half), 100.0 * (centre + half))
}
