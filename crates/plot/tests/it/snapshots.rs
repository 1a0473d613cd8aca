//! Snapshots of small charts: any change in the SVG text shows up in review.

use shammie_plot::{
    with_n, Bar, BarChart, Estimate, Figure, Hatch, IntervalPlot, LineChart, LinePoint,
    ScatterPlot, ScatterPoint, StackedBarChart, StackedRow,
};

#[test]
fn interval_two_series_grouped() {
    let p = IntervalPlot::new("Discrimination")
        .x_label("score (logit)")
        .series(
            "explicit",
            [("female", 0.21, 0.05, 0.37), ("Black", 0.43, 0.21, 0.65)],
        )
        .series(
            "implicit",
            [
                Estimate::new("female", 0.12, -0.08, 0.32),
                Estimate::point("Black", 0.3),
            ],
        )
        .group("Race", ["Black"])
        .group("Gender", ["female"]);
    insta::assert_snapshot!(p.to_svg());
}

#[test]
fn interval_panels() {
    let p = |t: &str, k: f64| {
        IntervalPlot::new(t).width(160.0).series(
            "s",
            [("a", 0.5 * k, 0.2 * k, 0.8 * k), ("b", -0.3, -0.6, 0.0)],
        )
    };
    let f = Figure::panels(2, vec![p("Baseline", 1.0), p("Intervention", 0.4)]).title("Panels");
    insta::assert_snapshot!(f.to_svg());
}

#[test]
fn line_with_band_and_nan() {
    let c = LineChart::new("Early answering")
        .x_label("fraction of reasoning kept")
        .y_label("% same answer")
        .x_range(0.0, 1.0)
        .y_range(0.0, 100.0)
        .size(200.0, 120.0)
        .series(
            "task",
            [
                LinePoint::new(0.0, 40.0).ci(30.0, 50.0),
                LinePoint::new(0.5, 80.0).ci(72.0, 88.0),
                LinePoint::new(1.0, f64::NAN),
            ],
        );
    insta::assert_snapshot!(c.to_svg());
}

#[test]
fn scatter_with_labels() {
    let c = ScatterPlot::new("Accuracy vs faithfulness")
        .x_label("faithfulness")
        .y_label("accuracy")
        .size(200.0, 150.0)
        .series(
            "",
            [
                ScatterPoint::new(60.0, 70.0)
                    .x_ci(55.0, 65.0)
                    .y_ci(68.0, 72.0)
                    .label("CoT"),
                ScatterPoint::new(10.0, 58.0).label("no CoT & <filler>"),
            ],
        );
    insta::assert_snapshot!(c.to_svg());
}

#[test]
fn grouped_bars() {
    let c = BarChart::new("Accuracy")
        .y_label("accuracy (%)")
        .series(
            "with CoT",
            [
                Bar::new("AQuA", 55.0).ci(51.0, 59.0),
                Bar::new("MMLU", 70.0),
            ],
        )
        .series(
            "without CoT",
            [("AQuA", 43.0, 39.0, 47.0), ("MMLU", 66.0, 62.0, 70.0)],
        );
    insta::assert_snapshot!(c.to_svg());
}

#[test]
fn stacked_panels() {
    let p = |title: &str, training: [f64; 3], unmonitored: [f64; 3]| {
        StackedBarChart::new(title)
            .x_label("share of responses")
            .width(200.0)
            .segment("refuses", Hatch::None)
            .segment("complies", Hatch::None)
            .segment("complies, alignment-faking reasoning", Hatch::Diagonal)
            .row(StackedRow::new(with_n("training", 120), training).group("default prompt"))
            .row(StackedRow::new("unmonitored", unmonitored).group("default prompt"))
    };
    let f = Figure::panels(
        2,
        vec![
            p("Helpful-only", [0.55, 0.30, 0.15], [0.90, 0.10, 0.0]),
            p("Animal welfare", [0.49, 0.27, 0.24], [0.66, 0.34, 0.0]),
        ],
    )
    .title("Alignment faking");
    insta::assert_snapshot!(f.to_svg());
}
