//! The papers' figures: % same answer against the fraction of reasoning kept (one panel
//! per dataset, one line per intervention, bootstrap bands, and the % same of re-reading
//! the unmodified chain as a flat line: the noise floor), accuracy per condition, and
//! accuracy and % same answer against the number of filler tokens.
//!
//! Every figure's subtitle names the model, the questions, the seed and the date. A curve
//! has a point only where some chain has data; the notes say how many chains stand
//! behind each curve's points (flagged below 5) and which interventions have no data at
//! all (those get a note, never a line).

use std::collections::{BTreeMap, BTreeSet};

use shammie_engine::RunInfo;
use shammie_plot::{Bar, BarChart, Figure, LineChart, LinePoint, MIN_RELIABLE_N};

use super::analysis::{averaged, estimate_by_question, questions, ByQuestion, DatasetSummary};
use shammie_kit::cells::Interval;

/// The subtitle: model, questions (over all datasets), seed, date.
fn subtitle(sums: &BTreeMap<String, DatasetSummary>, run: &RunInfo) -> String {
    let n: usize = sums.values().map(|d| d.ids.len()).sum();
    run.caption(&format!("{n} questions"))
}

/// `n=3` or `n=2–40` over the points of a curve, flagged `†` when any is below 5.
fn n_range(ns: &[usize]) -> String {
    let (lo, hi) = (
        ns.iter().copied().min().unwrap_or(0),
        ns.iter().copied().max().unwrap_or(0),
    );
    let flag = if lo < MIN_RELIABLE_N {
        " \u{2020} (fewer than 5: unreliable)"
    } else {
        ""
    };
    if lo == hi {
        format!("n={lo} chains at each point{flag}")
    } else {
        format!("n={lo}\u{2013}{hi} chains per point{flag}")
    }
}

/// A plotted point (scaled to percent), with its band when it has an interval.
fn percent(x: f64, e: Interval) -> LinePoint {
    let p = LinePoint::new(x, 100.0 * e.estimate);
    if e.lo.is_finite() {
        p.ci(100.0 * e.lo, 100.0 * e.hi)
    } else {
        p
    }
}

pub(super) fn curves(sums: &BTreeMap<String, DatasetSummary>, run: &RunInfo) -> String {
    let seed = run.seed;
    let mut notes = Vec::new();
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
                let mut ns = Vec::new();
                let pts: Vec<LinePoint> = averaged(cs, seed)
                    .into_iter()
                    .filter_map(|(x, e, n)| {
                        let p = percent(x, e?);
                        ns.push(n);
                        Some(p)
                    })
                    .collect();
                if pts.is_empty() {
                    notes.push(format!(
                        "{name}: {label} has no data (no chain with an accepted edit or a readable answer); not drawn."
                    ));
                    continue;
                }
                notes.push(format!(
                    "{name}: {label}, {} point{}, {}.",
                    pts.len(),
                    if pts.len() == 1 { "" } else { "s" },
                    n_range(&ns)
                ));
                chart = chart.series(label, pts);
            }
            if let Some(e) = estimate_by_question(&d.reread_same, seed) {
                notes.push(format!(
                    "{name}: re-reading the full chain (a reference level, drawn across), {}.",
                    n_range(&[questions(&d.reread_same)]).replace("chains at each point", "questions")
                ));
                chart = chart.series(
                    "re-reading the full chain (noise)",
                    [percent(0.0, e), percent(1.0, e)],
                );
            }
            chart
        })
        .collect();
    let cols = panels.len().clamp(1, 3);
    let mut fig = Figure::panels(cols, panels)
        .title("Answers after intervening on the chain of thought (mean over chains, 95% bootstrap bands over questions)")
        .subtitle(subtitle(sums, run))
        .min_width(480.0);
    for n in notes {
        fig = fig.note(n);
    }
    fig.to_svg()
}

pub(super) fn accuracy(sums: &BTreeMap<String, DatasetSummary>, run: &RunInfo) -> String {
    let seed = run.seed;
    let mut chart = BarChart::new("Accuracy by condition")
        .y_label("accuracy (%)")
        .y_range(0.0, 100.0)
        .height(220.0)
        .bar_width(26.0)
        .categories(sums.keys().map(|k| k.to_string()).collect::<Vec<_>>());
    let pick = |d: &DatasetSummary, i: usize| -> ByQuestion {
        match i {
            0 => d.acc_cot.clone(),
            1 => d.acc_no_cot.clone(),
            2 => d.filler_chain.accuracy.clone(),
            _ => d.acc_paraphrase.clone(),
        }
    };
    let mut notes = Vec::new();
    let mut small = BTreeSet::new();
    for (i, label) in [
        "with CoT",
        "no CoT",
        "filler tokens (chain's length)",
        "paraphrased CoT",
    ]
    .into_iter()
    .enumerate()
    {
        let mut ns = Vec::new();
        let bars: Vec<Bar> = sums
            .iter()
            .filter_map(|(name, d)| {
                let v = pick(d, i);
                let e = estimate_by_question(&v, seed)?;
                let n = questions(&v);
                ns.push(format!("{name} {n}"));
                if n < MIN_RELIABLE_N {
                    small.insert(format!("{label} ({name}, n={n})"));
                }
                let b = Bar::new(name.clone(), 100.0 * e.estimate);
                Some(if e.lo.is_finite() {
                    b.ci(100.0 * e.lo, 100.0 * e.hi)
                } else {
                    b
                })
            })
            .collect();
        if bars.is_empty() {
            notes.push(format!(
                "{label}: no data (not run, or no answer read); no bar."
            ));
        } else {
            notes.push(format!("{label}: n = {} questions.", ns.join(", ")));
            chart = chart.series(label, bars);
        }
    }
    if !small.is_empty() {
        notes.push(format!(
            "\u{2020} fewer than 5 questions, the interval is unreliable: {}.",
            small.into_iter().collect::<Vec<_>>().join("; ")
        ));
    }
    notes.push(
        "A 0% bar is drawn as an outlined stub on the baseline; a missing bar as a grey \u{00D7}."
            .into(),
    );
    let mut fig = Figure::single(chart)
        .subtitle(subtitle(sums, run))
        .min_width(420.0);
    for n in notes {
        fig = fig.note(n);
    }
    fig.to_svg()
}

pub(super) fn filler(sums: &BTreeMap<String, DatasetSummary>, run: &RunInfo) -> String {
    let seed = run.seed;
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
        .subtitle(subtitle(sums, run))
        .min_width(480.0)
        .to_svg()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::svg_test::{panels, texts, width};

    /// Six chains of 2 sentences answering the same from the first sentence on:
    /// (0, 0) (½, 1) (1, 1); and one accepted paraphrase, at ⅓ of a 3-sentence chain.
    fn summary() -> DatasetSummary {
        let mut d = DatasetSummary::default();
        for q in 0..6 {
            let id = format!("q{q}");
            d.ids.insert(id.clone());
            d.early_curves
                .push((id.clone(), vec![(0.0, 0.0), (0.5, 1.0), (1.0, 1.0)]));
            d.acc_cot.push((id.clone(), 1.0));
            d.acc_no_cot.push((id, 0.0));
        }
        d.paraphrase_curves
            .push(("q0".into(), vec![(1.0 / 3.0, 1.0)]));
        d
    }

    #[test]
    fn curves_show_only_points_with_data_and_say_which_have_none() {
        let mut sums = BTreeMap::new();
        sums.insert("aqua".to_string(), summary());
        let svg = curves(&sums, &RunInfo::seed(1));
        let ps = panels(&svg);
        assert_eq!(ps.len(), 1);
        // Early answering: 11 grid points, all inside its chains' span. Paraphrasing:
        // one point (its bin, 0.3), not 11 extrapolated from one edit. Mistakes: none.
        assert_eq!(ps[0].1, 11 + 1, "{:?}", ps[0]);
        let t = texts(&svg).join("\n");
        assert!(t.contains("adding mistakes has no data"), "{t}");
        assert!(
            t.contains("paraphrasing, 1 point, n=1 chains at each point \u{2020}"),
            "{t}"
        );
        assert!(
            t.contains("early answering, 11 points, n=6 chains at each point."),
            "{t}"
        );
        assert!(t.contains("n 6 questions"), "{t}");
    }

    #[test]
    fn the_accuracy_chart_is_readable_and_zero_is_not_missing() {
        let mut sums = BTreeMap::new();
        sums.insert("aqua".to_string(), summary());
        // A second dataset without no-CoT answers: its bar is missing, not zero.
        let mut other = summary();
        other.acc_no_cot.clear();
        sums.insert("truthfulqa".to_string(), other);
        let svg = accuracy(&sums, &RunInfo::seed(1));
        assert!(width(&svg) >= 420.0, "{}", width(&svg));
        let doc = roxmltree::Document::parse(&svg).unwrap();
        let count = |class: &str| {
            doc.descendants()
                .filter(|n| n.attribute("class") == Some(class))
                .count()
        };
        // aqua's no-CoT accuracy is 0 %: a visible stub; truthfulqa's is missing: a cross.
        assert_eq!(count("zero-bar"), 1);
        assert_eq!(count("missing-bar"), 1);
        let t = texts(&svg).join("\n");
        assert!(t.contains("no CoT: n = aqua 6 questions."), "{t}");
        assert!(t.contains("paraphrased CoT: no data"), "{t}");
    }
}
