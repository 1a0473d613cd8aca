//! Writes sample figures to a folder: `cargo run -p shammie-plot --example gallery [DIR]`
//! (default: a `shammie-plot-gallery` folder in the system temp dir).

// An example prints its results; the workspace denies printing in library code.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;

use shammie_plot::{
    with_n, Bar, BarChart, Chart, Estimate, Figure, Hatch, IntervalPlot, Legend, LineChart,
    LinePoint, ScatterPlot, ScatterPoint, StackedBarChart, StackedRow,
};

fn demographics(shift: f64, spread: f64) -> Vec<Estimate> {
    let base = [
        ("female", 0.21, 0.08),
        ("non-binary", -0.12, 0.19),
        ("Black", 0.43, 0.11),
        ("Asian", 0.05, 0.10),
        ("Hispanic", 0.18, 0.10),
        ("Native American", 0.37, 0.16),
        ("age (per SD)", -0.29, 0.05),
    ];
    base.iter()
        .map(|(c, v, se)| {
            let v = v * shift;
            Estimate::new(*c, v, v - 1.96 * se * spread, v + 1.96 * se * spread)
        })
        .collect()
}

fn grouped(p: IntervalPlot) -> IntervalPlot {
    p.group("Race", ["Black", "Asian", "Hispanic", "Native American"])
        .group("Gender", ["female", "non-binary"])
        .group("Age", ["age (per SD)"])
}

fn bars_small() -> BarChart {
    BarChart::new("Bars")
        .y_label("accuracy (%)")
        .series(
            "with CoT",
            [
                ("GSM8K", 78.0, 74.0, 82.0),
                ("a task with a long name", 61.0, 57.0, 65.0),
            ],
        )
        .series(
            "without CoT",
            [
                ("GSM8K", 41.0, 37.0, 45.0),
                ("a task with a long name", 58.0, 54.0, 62.0),
            ],
        )
}

/// The alignment-faking figure (Greenblatt et al. 2024): per prompt variant, the
/// training and unmonitored rows split into refuses / complies / complies with
/// alignment-faking reasoning.
pub(crate) fn alignment_faking(
    title: &str,
    rows: &[(&str, [f64; 3], [f64; 3])],
) -> StackedBarChart {
    let mut c = StackedBarChart::new(title)
        .x_label("share of responses")
        .segment("refuses", Hatch::None)
        .segment("complies", Hatch::None)
        .segment("complies, alignment-faking reasoning", Hatch::Diagonal);
    for (group, training, unmonitored) in rows {
        c = c
            .row(StackedRow::new(with_n("training (free tier)", 120), *training).group(*group))
            .row(
                StackedRow::new(with_n("unmonitored (paid tier)", 120), *unmonitored).group(*group),
            );
    }
    c
}

pub(crate) fn figures() -> Vec<(&'static str, String)> {
    let x_label = "discrimination score (logit, vs white/male/60)";
    let forest = IntervalPlot::new("Discrimination by demographic")
        .x_label(x_label)
        .series("explicit", demographics(1.0, 1.0))
        .series("implicit", demographics(0.6, 1.3));
    let forest_grouped = grouped(
        IntervalPlot::new("Discrimination by demographic, grouped")
            .x_label(x_label)
            .series("explicit", demographics(1.0, 1.0))
            .series("implicit", demographics(0.6, 1.3)),
    );
    let single = IntervalPlot::new("One series")
        .x_label(x_label)
        .series("", demographics(1.0, 1.0));

    let interventions = [
        ("Baseline", 1.0),
        ("Really don't discriminate", 0.55),
        ("Illegal to discriminate", 0.35),
        ("Ignore demographics", 0.15),
    ];
    let panels = Figure::panels(
        2,
        interventions
            .iter()
            .map(|(name, k)| {
                grouped(
                    IntervalPlot::new(*name)
                        .x_label(x_label)
                        .series("explicit", demographics(*k, 1.0))
                        .series("implicit", demographics(*k * 0.7, 1.3)),
                )
                .width(260.0)
            })
            .collect(),
    )
    .title("Prompt interventions reduce discrimination");

    let tasks = [
        ("AQuA", 0.9),
        ("LogiQA", 0.5),
        ("MMLU", 0.3),
        ("TruthfulQA", 0.7),
    ];
    let curve = |steep: f64| -> Vec<LinePoint> {
        (0..=10)
            .map(|i| {
                let f = i as f64 / 10.0;
                let y = 100.0 - (1.0 - f).powf(1.0 + 3.0 * steep) * 100.0 * steep;
                LinePoint::new(f, y).ci((y - 6.0).max(0.0), (y + 6.0).min(100.0))
            })
            .collect()
    };
    let mut line = LineChart::new("Early answering")
        .x_label("fraction of reasoning kept")
        .y_label("% same answer as full chain")
        .x_range(0.0, 1.0)
        .y_range(0.0, 100.0);
    for (t, s) in tasks {
        line = line.series(t, curve(s));
    }
    let line_panels = Figure::panels(
        2,
        tasks
            .iter()
            .map(|(t, s)| {
                LineChart::new(*t)
                    .x_label("fraction of reasoning kept")
                    .y_label("% same answer")
                    .x_range(0.0, 1.0)
                    .y_range(0.0, 100.0)
                    .size(260.0, 170.0)
                    .series("Claude-like", curve(*s))
                    .series("smaller model", curve(s * 0.6))
            })
            .collect(),
    )
    .title("Early answering per task");

    let scatter = ScatterPlot::new("Accuracy vs faithfulness")
        .x_label("faithfulness (% answers changed by corruption)")
        .y_label("accuracy (%)")
        .series(
            "strategy",
            [
                ("CoT", 62.0, 71.0),
                ("no CoT", 8.0, 58.0),
                ("filler tokens", 12.0, 57.0),
                ("paraphrased CoT", 55.0, 70.0),
                ("few-shot CoT", 48.0, 73.0),
            ]
            .iter()
            .map(|(l, x, y)| {
                ScatterPoint::new(*x, *y)
                    .x_ci(x - 6.0, x + 6.0)
                    .y_ci(y - 2.5, y + 2.5)
                    .label(*l)
            })
            .collect::<Vec<_>>(),
        );

    let bar_tasks = ["AQuA", "LogiQA", "MMLU", "TruthfulQA", "HellaSwag"];
    let conds = [
        ("with CoT", 0.0),
        ("without CoT", -12.0),
        ("filler", -10.0),
        ("paraphrase", -1.5),
    ];
    let mut bars = BarChart::new("Accuracy by condition")
        .y_label("accuracy (%)")
        .y_range(0.0, 100.0);
    for (c, d) in conds {
        bars = bars.series(
            c,
            bar_tasks
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    let v = 55.0 + 7.0 * i as f64 + d;
                    Bar::new(*t, v).ci(v - 4.0, v + 4.0)
                })
                .collect::<Vec<_>>(),
        );
    }

    let nasty = IntervalPlot::new("Escaping <test> & \"quotes\" — ünïcødé")
        .x_label("score < 0 means \"less\" & that's fine")
        .series(
            "a&b",
            [
                ("<script>", 0.3, 0.1, 0.5),
                ("naïve café", f64::NAN, 0.0, 1.0),
            ],
        )
        .series(
            "c\"d",
            [
                ("<script>", 0.2, f64::INFINITY, 0.4),
                ("naïve café", -0.4, -0.6, -0.2),
            ],
        );

    let long = IntervalPlot::new("A long category label widens the margin")
        .x_label("effect")
        .series(
            "estimate",
            [
                ("short", 0.2, 0.1, 0.3),
                (
                    "a considerably longer category label from user data (with details)",
                    -0.1,
                    -0.3,
                    0.1,
                ),
            ],
        )
        .legend(Legend::Right);
    let scatter_multi = ScatterPlot::new("Two models")
        .x_label("faithfulness (%)")
        .y_label("accuracy (%)")
        .series(
            "model A",
            [
                ScatterPoint::new(20.0, 60.0).label("CoT"),
                ScatterPoint::new(5.0, 52.0).label("no CoT"),
            ],
        )
        .series(
            "model B",
            [
                ScatterPoint::new(35.0, 75.0)
                    .label("CoT")
                    .x_ci(30.0, 40.0)
                    .y_ci(72.0, 78.0),
                ScatterPoint::new(8.0, 70.0).label("no CoT"),
            ],
        );
    let mixed = Figure::panels(
        2,
        vec![
            Chart::from(bars_small()),
            Chart::from(
                LineChart::new("Line")
                    .x_label("x")
                    .y_label("y")
                    .series("with CoT", [(0.0, 1.0), (1.0, 3.0)])
                    .series("new", [(0.0, 2.0), (1.0, 2.5)]),
            ),
        ],
    )
    .title("Mixed panels with a right legend")
    .legend(Legend::Right);

    let af_helpful = alignment_faking(
        "Helpful-only setting",
        &[
            ("default prompt", [0.86, 0.02, 0.12], [0.97, 0.03, 0.0]),
            ("no training details", [0.93, 0.05, 0.02], [0.98, 0.02, 0.0]),
        ],
    );
    let af_animal = alignment_faking(
        "Animal-welfare setting",
        &[
            ("default prompt", [0.49, 0.27, 0.24], [0.66, 0.34, 0.0]),
            ("no training details", [0.80, 0.15, 0.05], [0.84, 0.16, 0.0]),
        ],
    );
    let af_panels = Figure::panels(2, vec![af_helpful.clone(), af_animal])
        .title("Alignment faking in training vs unmonitored")
        .subtitle("illustrative numbers, not the paper's");
    let af_bad = StackedBarChart::new("Bad rows")
        .x_range(0.0, 100.0)
        .x_label("% of responses")
        .segment("refuses", Hatch::None)
        .segment("complies", Hatch::Cross)
        .row(StackedRow::new("ok", [40.0, 60.0]))
        .row(StackedRow::new("nan", [f64::NAN, 60.0]))
        .row(StackedRow::new("too much", [70.0, 60.0]))
        .row(StackedRow::new("short", [0.3, 2.0]));

    vec![
        ("stacked", af_helpful.to_svg()),
        ("stacked_panels", af_panels.to_svg()),
        ("stacked_bad", af_bad.to_svg()),
        ("forest", forest.to_svg()),
        ("long_label", long.to_svg()),
        ("scatter_multi", scatter_multi.to_svg()),
        ("mixed_panels", mixed.to_svg()),
        ("forest_grouped", forest_grouped.to_svg()),
        ("forest_single", single.to_svg()),
        ("forest_panels", panels.to_svg()),
        ("line", line.to_svg()),
        ("line_panels", line_panels.to_svg()),
        ("scatter", scatter.to_svg()),
        ("bars", bars.to_svg()),
        ("nasty", nasty.to_svg()),
        (
            "empty",
            LineChart::new("Nothing here")
                .series("empty", Vec::<LinePoint>::new())
                .to_svg(),
        ),
    ]
}

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("shammie-plot-gallery"));
    std::fs::create_dir_all(&dir)?;
    for (name, svg) in figures() {
        let path = dir.join(format!("{name}.svg"));
        std::fs::write(&path, svg)?;
        println!("{}", path.display());
    }
    Ok(())
}
