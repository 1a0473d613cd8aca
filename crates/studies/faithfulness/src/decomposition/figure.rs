//! The paper's figure: accuracy against faithfulness, one point per strategy (one series
//! per dataset), one panel per faithfulness measure.

use std::collections::BTreeMap;

use shammie_plot::{Figure, ScatterPlot, ScatterPoint};

use super::analysis::Group;
use crate::cot_faithfulness::analysis::estimate;

pub(super) fn scatter(groups: &BTreeMap<(String, usize, String), Group>, seed: u64) -> String {
    type Pick = fn(&Group) -> &Vec<f64>;
    let measures: [(&str, &str, f64, Pick); 3] = [
        ("Early answering", "early answering AOC", 1.0, |g| {
            &g.early_aoc
        }),
        (
            "Adding mistakes",
            "% answers changed by a mistake",
            100.0,
            |g| &g.mistakes_changed,
        ),
        (
            "Suggested answer",
            "accuracy drop (points), lower = more faithful",
            100.0,
            |g| &g.drop_suggested,
        ),
    ];
    let mut datasets: Vec<&str> = groups.keys().map(|(d, _, _)| d.as_str()).collect();
    datasets.dedup();
    let panels: Vec<ScatterPlot> = measures
        .iter()
        .map(|(title, y_label, scale, pick)| {
            let mut p = ScatterPlot::new(*title)
                .x_label("accuracy (%)")
                .y_label(*y_label);
            for d in &datasets {
                let pts: Vec<ScatterPoint> = groups
                    .iter()
                    .filter(|((ds, _, _), _)| ds == d)
                    .filter_map(|((_, _, strategy), g)| {
                        let x = estimate(&g.accuracy, seed)?;
                        let y = estimate(pick(g), seed)?;
                        let mut pt = ScatterPoint::new(100.0 * x.estimate, scale * y.estimate)
                            .label(strategy.clone());
                        if x.lo.is_finite() {
                            pt = pt.x_ci(100.0 * x.lo, 100.0 * x.hi);
                        }
                        if y.lo.is_finite() {
                            pt = pt.y_ci(scale * y.lo, scale * y.hi);
                        }
                        Some(pt)
                    })
                    .collect();
                p = p.series(d.to_string(), pts);
            }
            p
        })
        .collect();
    Figure::panels(3, panels)
        .title("Accuracy and faithfulness of reasoning strategies (95% bootstrap intervals)")
        .to_svg()
}
