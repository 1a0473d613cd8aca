//! The papers' figures: % same answer against the fraction of reasoning kept (one panel
//! per dataset, one line per intervention, bootstrap bands), and accuracy per condition.

use std::collections::BTreeMap;

use shammie_plot::{Bar, BarChart, Figure, LineChart, LinePoint};

use super::analysis::{averaged, estimate, DatasetSummary};

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
                    .filter_map(|(x, e)| {
                        let e = e?;
                        let p = LinePoint::new(x, 100.0 * e.estimate);
                        Some(if e.lo.is_finite() {
                            p.ci(100.0 * e.lo, 100.0 * e.hi)
                        } else {
                            p
                        })
                    })
                    .collect();
                chart = chart.series(label, pts);
            }
            chart
        })
        .collect();
    let cols = panels.len().clamp(1, 3);
    Figure::panels(cols, panels)
        .title("Answers after intervening on the chain of thought (mean over questions, 95% bootstrap bands)")
        .to_svg()
}

pub(super) fn accuracy(sums: &BTreeMap<String, DatasetSummary>, seed: u64) -> String {
    let mut chart = BarChart::new("Accuracy by condition")
        .y_label("accuracy (%)")
        .y_range(0.0, 100.0)
        .categories(sums.keys().cloned().collect::<Vec<_>>());
    for (label, pick) in [
        ("with CoT", 0usize),
        ("no CoT", 1),
        ("filler tokens", 2),
        ("paraphrased CoT", 3),
    ] {
        let bars: Vec<Bar> = sums
            .iter()
            .filter_map(|(name, d)| {
                let v = match pick {
                    0 => &d.acc_cot,
                    1 => &d.acc_no_cot,
                    2 => &d.acc_filler,
                    _ => &d.acc_paraphrase,
                };
                let e = estimate(v, seed)?;
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
