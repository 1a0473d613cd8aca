//! The papers' figures: % same answer against the fraction of reasoning kept (one panel
//! per dataset, one line per intervention, bootstrap bands, and the % same of re-reading
//! the unmodified chain as a flat line: the noise floor), accuracy per condition, and
//! accuracy and % same answer against the number of filler tokens.

use std::collections::BTreeMap;

use shammie_plot::{Bar, BarChart, Figure, LineChart, LinePoint};

use super::analysis::{averaged, estimate_by_question, ByQuestion, DatasetSummary};
use shammie_kit::cells::Interval;

/// A plotted point (scaled to percent), with its band when it has an interval.
fn percent(x: f64, e: Interval) -> LinePoint {
    let p = LinePoint::new(x, 100.0 * e.estimate);
    if e.lo.is_finite() {
        p.ci(100.0 * e.lo, 100.0 * e.hi)
    } else {
        p
    }
}

pub(super) fn curves(sums: &BTreeMap<String, DatasetSummary>, seed: u64) -> String {
    let panels: Vec<LineChart> = sums
        .iter()
        .filter(|(_, d)| !d.early_curves.is_empty() || !d.mistakes_curves.is_empty())
        .map(|(name, d)| {
            let mut chart = LineChart::new(name.clone())
                .x_label("fraction of the reasoning kept")
                .y_label("% same answer as the full chain")
                .x_range(0.0, 1.0)
                .y_range(0.0, 100.0);
            for (label, cs) in [
                ("early answering", &d.early_curves),
                ("adding mistakes", &d.mistakes_curves),
                ("paraphrasing", &d.paraphrase_curves),
            ] {
                if cs.is_empty() {
                    continue;
                }
                let pts: Vec<LinePoint> = averaged(cs, seed)
                    .into_iter()
                    .filter_map(|(x, e)| Some(percent(x, e?)))
                    .collect();
                chart = chart.series(label, pts);
            }
            if let Some(e) = estimate_by_question(&d.reread_same, seed) {
                chart = chart.series(
                    "re-reading the full chain (noise)",
                    [percent(0.0, e), percent(1.0, e)],
                );
            }
            chart
        })
        .collect();
    let cols = panels.len().clamp(1, 3);
    Figure::panels(cols, panels)
        .title("Answers after intervening on the chain of thought (mean over chains, 95% bootstrap bands over questions)")
        .to_svg()
}

pub(super) fn accuracy(sums: &BTreeMap<String, DatasetSummary>, seed: u64) -> String {
    let mut chart = BarChart::new("Accuracy by condition")
        .y_label("accuracy (%)")
        .y_range(0.0, 100.0)
        .categories(sums.keys().cloned().collect::<Vec<_>>());
    let pick = |d: &DatasetSummary, i: usize| -> ByQuestion {
        match i {
            0 => d.acc_cot.clone(),
            1 => d.acc_no_cot.clone(),
            2 => d.filler_chain.accuracy.clone(),
            _ => d.acc_paraphrase.clone(),
        }
    };
    for (i, label) in [
        "with CoT",
        "no CoT",
        "filler tokens (chain's length)",
        "paraphrased CoT",
    ]
    .into_iter()
    .enumerate()
    {
        let bars: Vec<Bar> = sums
            .iter()
            .filter_map(|(name, d)| {
                let e = estimate_by_question(&pick(d, i), seed)?;
                let b = Bar::new(name.clone(), 100.0 * e.estimate);
                Some(if e.lo.is_finite() {
                    b.ci(100.0 * e.lo, 100.0 * e.hi)
                } else {
                    b
                })
            })
            .collect();
        if !bars.is_empty() {
            chart = chart.series(label, bars);
        }
    }
    chart.to_svg()
}

pub(super) fn filler(sums: &BTreeMap<String, DatasetSummary>, seed: u64) -> String {
    let panels: Vec<LineChart> = sums
        .iter()
        .filter(|(_, d)| !d.filler_fixed.is_empty())
        .map(|(name, d)| {
            let mut chart = LineChart::new(name.clone())
                .x_label("filler tokens (\" ...\")")
                .y_label("%")
                .y_range(0.0, 100.0);
            for (label, same) in [
                ("accuracy with filler", false),
                ("% same as the CoT answer", true),
            ] {
                let pts: Vec<LinePoint> = d
                    .filler_fixed
                    .iter()
                    .filter_map(|(k, f)| {
                        let v = if same { &f.same } else { &f.accuracy };
                        Some(percent(*k as f64, estimate_by_question(v, seed)?))
                    })
                    .collect();
                if !pts.is_empty() {
                    chart = chart.series(label, pts);
                }
            }
            let lo = d.filler_fixed.keys().next().copied().unwrap_or(0) as f64;
            let hi = d.filler_fixed.keys().last().copied().unwrap_or(0) as f64;
            for (label, v) in [
                ("accuracy with CoT", &d.acc_cot),
                ("accuracy without CoT", &d.acc_no_cot),
            ] {
                if let Some(e) = estimate_by_question(v, seed) {
                    chart = chart.series(label, [percent(lo, e), percent(hi, e)]);
                }
            }
            chart
        })
        .collect();
    let cols = panels.len().clamp(1, 3);
    Figure::panels(cols, panels)
        .title("Filler tokens instead of the chain of thought (mean over chains, 95% bootstrap bands over questions)")
        .to_svg()
}
