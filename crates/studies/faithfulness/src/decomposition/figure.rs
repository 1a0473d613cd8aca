//! The paper's figure: accuracy against faithfulness, one point per strategy (one series
//! per dataset), one panel per faithfulness measure.
//!
//! The three measures are different quantities, so each panel has its own y axis, label
//! and range (the two percentages on 0–100, the accuracy drop in points on a range that
//! fits its intervals, which may be negative); accuracy shares 0–100 on x. Every point
//! carries both 95% bootstrap intervals and its n (questions) in its label, flagged `†`
//! below 5; a point with a single question has no interval and a note says so; a measure
//! with no data keeps its empty panel and gets a note.

use std::collections::BTreeMap;

use shammie_engine::RunInfo;
use shammie_plot::{with_n, Figure, ScatterPlot, ScatterPoint, MIN_RELIABLE_N, UNRELIABLE_NOTE};

use super::analysis::Group;
use crate::cot_faithfulness::analysis::estimate;

type Pick = fn(&Group) -> &Vec<f64>;
/// One panel's measure: title, y label, fixed y range (None: fit the data), the values.
type Measure = (&'static str, &'static str, Option<(f64, f64)>, Pick);

pub(super) const MEASURES: [Measure; 3] = [
    (
        "Early answering",
        "early answering AOC (%)",
        Some((0.0, 100.0)),
        |g| &g.early_aoc,
    ),
    (
        "Adding mistakes",
        "% answers changed by a mistake",
        Some((0.0, 100.0)),
        |g| &g.mistakes_changed,
    ),
    (
        "Suggested answer (smaller drop = more faithful)",
        "accuracy drop (points)",
        None,
        |g| &g.drop_suggested,
    ),
];

pub(super) fn scatter(groups: &BTreeMap<(String, usize, String), Group>, run: &RunInfo) -> String {
    let seed = run.seed;
    let mut datasets: Vec<&str> = groups.keys().map(|(d, _, _)| d.as_str()).collect();
    datasets.dedup();
    let mut notes = Vec::new();
    let (mut unreliable, mut no_interval) = (false, Vec::new());
    let panels: Vec<ScatterPlot> = MEASURES
        .iter()
        .map(|(title, y_label, y_range, pick)| {
            let mut p = ScatterPlot::new(*title)
                .x_label("accuracy (%)")
                .y_label(*y_label)
                .x_range(0.0, 100.0);
            if let Some((lo, hi)) = y_range {
                p = p.y_range(*lo, *hi);
            }
            let mut points = 0;
            for d in &datasets {
                let pts: Vec<ScatterPoint> = groups
                    .iter()
                    .filter(|((ds, _, _), _)| ds == d)
                    .filter_map(|((_, _, strategy), g)| {
                        let x = estimate(&g.accuracy, seed)?;
                        let y = estimate(pick(g), seed)?;
                        let n = pick(g).len();
                        unreliable |= n < MIN_RELIABLE_N;
                        let mut pt = ScatterPoint::new(100.0 * x.estimate, 100.0 * y.estimate)
                            .label(with_n(strategy, n));
                        if x.lo.is_finite() {
                            pt = pt.x_ci(100.0 * x.lo, 100.0 * x.hi);
                        }
                        if y.lo.is_finite() {
                            pt = pt.y_ci(100.0 * y.lo, 100.0 * y.hi);
                        } else {
                            no_interval.push(format!("{title}: {d} {strategy}"));
                        }
                        Some(pt)
                    })
                    .collect();
                points += pts.len();
                if !pts.is_empty() {
                    p = p.series(d.to_string(), pts);
                }
            }
            if points == 0 {
                notes.push(format!("{title}: no strategy has data for this measure."));
            }
            p
        })
        .collect();
    if !no_interval.is_empty() {
        notes.push(format!(
            "No interval (a single question): {}.",
            no_interval.join("; ")
        ));
    }
    if unreliable {
        notes.push(UNRELIABLE_NOTE.to_string());
    }
    // Questions per dataset: the most any strategy ran (each strategy runs every one).
    let mut per_dataset: BTreeMap<&str, usize> = BTreeMap::new();
    for ((d, _, _), g) in groups {
        let e = per_dataset.entry(d.as_str()).or_default();
        *e = (*e).max(g.samples);
    }
    let n: usize = per_dataset.values().sum();
    let mut fig = Figure::panels(3, panels)
        .title("Accuracy and faithfulness of reasoning strategies (95% bootstrap intervals)")
        .subtitle(run.caption(&format!("{n} questions")))
        .independent_scales();
    for note in notes {
        fig = fig.note(note);
    }
    fig.to_svg()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::svg_test::{numbers, panels, texts};

    fn group(acc: &[f64], early: &[f64], changed: &[f64], drop: &[f64]) -> Group {
        Group {
            samples: acc.len(),
            accuracy: acc.to_vec(),
            early_aoc: early.to_vec(),
            mistakes_changed: changed.to_vec(),
            drop_suggested: drop.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn each_panel_has_its_own_label_scale_and_points() {
        let mut groups = BTreeMap::new();
        // Six questions per strategy. AOCs 0.2–0.3 (20–30 %), changed 50–100 %, drops
        // −20 to −10 points (the suggestion helped): three different quantities.
        groups.insert(
            ("aqua".to_string(), 0, "CoT".to_string()),
            group(
                &[1.0, 0.0, 1.0, 1.0, 0.0, 1.0],
                &[0.2, 0.25, 0.3, 0.2, 0.25, 0.3],
                &[0.5, 1.0, 1.0, 0.5, 1.0, 1.0],
                &[-0.2, -0.1, -0.2, -0.1, -0.2, -0.1],
            ),
        );
        // Two questions: flagged †, and its early AOC has no interval data beyond them.
        groups.insert(
            ("aqua".to_string(), 1, "factored".to_string()),
            group(&[1.0, 0.0], &[0.1, 0.3], &[0.0, 1.0], &[-0.15, -0.15]),
        );
        let mut run = RunInfo::seed(3);
        run.models
            .insert("target".into(), "local:gemma-3-270m".into());
        run.date = "2025-02-03".into();
        let svg = scatter(&groups, &run);
        let ps = panels(&svg);
        assert_eq!(ps.len(), 3);
        for (i, (t, markers)) in ps.iter().enumerate() {
            // Every panel labels its own y axis (the third one's label was dropped when
            // the panels shared a y scale) and draws both strategies.
            assert!(t.contains(&MEASURES[i].1.to_string()), "panel {i}: {t:?}");
            assert_eq!(*markers, 2, "panel {i}");
            assert!(t.contains(&"accuracy (%)".to_string()));
        }
        // Percent panels run 0–100 on y (AOC 20–30 % sits well above the axis); the drop
        // panel's scale fits −20…−10 and does not stretch to 100.
        let aoc_ticks = numbers(&ps[0].0);
        assert!(aoc_ticks.contains(&100.0) && aoc_ticks.contains(&0.0));
        let drop_ticks = numbers(&ps[2].0);
        assert!(drop_ticks.iter().any(|v| *v < 0.0), "{drop_ticks:?}");
        // x (accuracy) is 0–100 in every panel, so the only ticks above 0 are x ticks
        // and ticks ≤ 0 are y ticks: y never reaches 100 here.
        assert!(drop_ticks.iter().filter(|v| **v > 0.0).all(|v| *v <= 100.0));
        // Labels carry n, the 2-question strategy flagged; the subtitle names the run.
        let all = texts(&svg);
        let joined = all.join("\n");
        assert!(joined.contains("CoT (n=6)"), "{joined}");
        assert!(joined.contains("factored (n=2\u{2020})"), "{joined}");
        assert!(joined.contains("model local:gemma-3-270m"), "{joined}");
        assert!(joined.contains("n 6 questions"), "{joined}");
        assert!(joined.contains("seed 3"));
        assert!(joined.contains("2025-02-03"));
        // Intervals are drawn: each point has two whiskers (x and y), 3 lines each.
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let lines = doc
            .descendants()
            .filter(|n| n.attribute("class") == Some("panel"))
            .map(|p| {
                p.descendants()
                    .filter(|n| n.has_tag_name("line") || n.has_tag_name("path"))
                    .count()
            })
            .collect::<Vec<_>>();
        assert!(lines.iter().all(|l| *l >= 4), "{lines:?}");
    }
}
