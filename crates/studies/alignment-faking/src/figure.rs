//! The paper's figure: for each prompt variant, one horizontal bar per situation —
//! training (free tier) and unmonitored (paid tier) — split into the shares that refuse,
//! comply, and comply with alignment-faking reasoning (hatched).

use shammie_core::RunInfo;
use shammie_plot::{with_n, Figure, Hatch, StackedBarChart, StackedRow};

use crate::analysis::TierCounts;
use crate::setting::{Setting, Tier, Variant};

/// The figure as SVG text.
pub fn stacked(setting: Setting, counts: &[(Variant, Tier, TierCounts)], run: &RunInfo) -> String {
    let mut chart = StackedBarChart::new(format!("Alignment faking, {} setting", setting.name()))
        .x_label("share of responses")
        .x_range(0.0, 1.0)
        .segment("refuses", Hatch::None)
        .segment("complies", Hatch::None)
        .segment("complies, alignment-faking reasoning", Hatch::Diagonal);
    let grouped = counts
        .iter()
        .map(|(v, _, _)| *v)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        > 1;
    for (v, t, c) in counts {
        let values = if c.n == 0 {
            // Nothing to show: the row stays, marked by the chart as omitted.
            vec![f64::NAN; 3]
        } else {
            let n = c.n as f64;
            vec![
                c.refuses as f64 / n,
                (c.complies - c.complies_af) as f64 / n,
                c.complies_af as f64 / n,
            ]
        };
        let mut row = StackedRow::new(with_n(t.situation(), c.n), values);
        if grouped {
            row = row.group(format!("{} prompt", v.name()));
        }
        chart = chart.row(row);
    }
    let n: usize = counts.iter().map(|(_, _, c)| c.n).sum();
    Figure::single(chart)
        .subtitle(run.caption(&format!("{n} samples")))
        .to_svg()
}
