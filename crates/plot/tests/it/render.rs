//! Properties of rendered figures: valid XML, text inside the canvas and apart,
//! escaping, bad data, determinism, alignment of panels.

#[path = "../../examples/gallery.rs"]
#[allow(dead_code)]
mod gallery;

use crate::common::*;
use shammie_plot::{
    Bar, BarChart, Estimate, Figure, IntervalPlot, Legend, LineChart, LinePoint, ScatterPlot,
    ScatterPoint,
};

#[test]
#[allow(clippy::print_stderr)] // reports what it measured (seen with --nocapture)
fn every_gallery_figure_is_valid_and_its_text_fits_without_overlap() {
    for (name, svg) in gallery::figures() {
        eprintln!("checking {name}");
        assert_text_layout(&svg);
        assert!(
            !svg.contains("NaN") && !svg.contains("inf"),
            "{name} prints a non-finite number"
        );
    }
}

#[test]
fn output_is_deterministic() {
    let a = gallery::figures();
    let b = gallery::figures();
    assert_eq!(a, b);
}

#[test]
fn user_text_is_escaped_and_round_trips() {
    let nasty = [
        "<script>alert(1)</script>",
        "a & b",
        "say \"hi\"",
        "it's",
        "naïve café — 日本語",
        "]]> <!-- -->",
    ];
    let mut p = IntervalPlot::new(nasty[0]).x_label(nasty[1]);
    for (i, n) in nasty.iter().enumerate() {
        p = p.series(*n, [Estimate::new(*n, i as f64 * 0.1, -0.1, 0.5)]);
    }
    let svg = p.to_svg();
    assert_text_layout(&svg);
    let found = texts(&svg);
    for n in nasty {
        assert!(found.iter().any(|t| t == n), "{n:?} not found in {found:?}");
    }
    assert!(!svg.contains("<script>"));

    // Characters XML forbids become U+FFFD; tabs and newlines become spaces.
    let svg = BarChart::new("bell\u{7}\u{0}\ttab\nline")
        .series("s\u{1b}", [("c\u{FFFF}", 1.0)])
        .to_svg();
    assert!(!svg.chars().any(|c| (c as u32) < 0x20 && c != '\n'));
    let found = texts(&svg).join(" ");
    assert!(found.contains("bell\u{FFFD}\u{FFFD} tab line"), "{found:?}");
    assert!(found.contains("c\u{FFFD}"));
}

#[test]
fn escape_is_exported_and_complete() {
    assert_eq!(shammie_plot::escape("<&>\"'"), "&lt;&amp;&gt;&quot;&apos;");
}

#[test]
fn non_finite_values_are_skipped_with_a_visible_note() {
    let p = IntervalPlot::new("t")
        .series(
            "a",
            [
                Estimate::new("ok", 0.2, 0.1, 0.3),
                Estimate::new("nan", f64::NAN, 0.1, 0.3),
                Estimate::new("inf-ci", 0.2, f64::NEG_INFINITY, 0.3),
                Estimate::new("inf", f64::INFINITY, 0.0, 1.0),
            ],
        )
        .series("empty", Vec::<Estimate>::new());
    let w = p.warnings();
    assert_eq!(w.len(), 3, "{w:?}");
    assert!(w[0].contains("2 points with a non-finite estimate omitted") && w[0].contains("nan"));
    assert!(w[1].contains("without an interval") && w[1].contains("inf-ci"));
    assert!(w[2].contains("\u{201C}empty\u{201D} has no data"));
    let svg = p.to_svg();
    assert_text_layout(&svg);
    let found = texts(&svg);
    for note in &w {
        assert!(
            found
                .iter()
                .any(|t| t.starts_with("Note:") && t.contains(&note[..10])),
            "{note}"
        );
    }
    // The category rows stay, so the reader sees which ones are missing.
    assert!(found.iter().any(|t| t == "nan"));
}

#[test]
fn all_bad_or_empty_charts_say_no_data() {
    let charts: Vec<String> = vec![
        IntervalPlot::new("i").to_svg(),
        IntervalPlot::new("i")
            .series("a", [("x", f64::NAN, 0.0, 1.0)])
            .to_svg(),
        LineChart::new("l")
            .series("a", [(f64::NAN, 1.0), (2.0, f64::INFINITY)])
            .to_svg(),
        ScatterPlot::new("s")
            .series("a", [(f64::NAN, f64::NAN)])
            .to_svg(),
        BarChart::new("b").series("a", [("x", f64::NAN)]).to_svg(),
        BarChart::new("b").to_svg(),
        Figure::panels(3, Vec::<IntervalPlot>::new()).to_svg(),
    ];
    for svg in &charts[..6] {
        assert_text_layout(svg);
        assert!(texts(svg).iter().any(|t| t == "no data"), "{svg}");
    }
    assert_text_layout(&charts[6]);
}

#[test]
fn extreme_and_odd_inputs_do_not_panic() {
    let svgs = [
        LineChart::new("huge")
            .series("a", [(0.0, 1e300), (1.0, -1e300)])
            .to_svg(),
        LineChart::new("tiny")
            .series("a", [(0.0, 1e-12), (1.0, 2e-12)])
            .to_svg(),
        LineChart::new("flat")
            .series("a", [(3.0, 5.0), (3.0, 5.0)])
            .to_svg(),
        LineChart::new("bad range")
            .x_range(f64::NAN, 1.0)
            .y_range(2.0, 2.0)
            .series("a", [(0.0, 1.0)])
            .to_svg(),
        ScatterPlot::new("one")
            .series("a", [ScatterPoint::new(1.0, 1.0).x_ci(2.0, 0.0).label("x")])
            .to_svg(),
        IntervalPlot::new("swapped")
            .series("a", [("c", 0.5, 1.0, 0.0)])
            .x_range(1.0, -1.0)
            .to_svg(),
        IntervalPlot::new("w")
            .width(f64::NAN)
            .reference(Some(f64::NAN))
            .series("a", [("c", 1.0, 0.0, 2.0)])
            .to_svg(),
        BarChart::new("neg")
            .series("a", [("x", -3.0, -4.0, -2.0), ("y", 2.0, 1.0, 3.0)])
            .to_svg(),
        Figure::panels(0, vec![BarChart::new("zero cols")]).to_svg(),
    ];
    for svg in &svgs {
        assert_text_layout(svg);
    }
}

#[test]
fn points_outside_a_fixed_range_are_noted() {
    let c = LineChart::new("r")
        .y_range(0.0, 1.0)
        .series("a", [(0.0, 0.5), (1.0, 2.0)]);
    assert!(c.warnings()[0].contains("1 point outside the axis range"));
}

#[test]
fn a_long_category_label_widens_the_left_margin() {
    let short = IntervalPlot::new("t").series("a", [("short", 0.1, 0.0, 0.2)]);
    let long_label = "a very long category label that goes on and on ".repeat(4);
    let long = IntervalPlot::new("t").series("a", [(long_label.as_str(), 0.1, 0.0, 0.2)]);
    let (ws, _, _) = parse(&short.to_svg());
    let svg = long.to_svg();
    assert_text_layout(&svg);
    let (wl, _, boxes) = parse(&svg);
    let label_w = shammie_plot::text::width(long_label.trim(), 12.0, false);
    assert!(wl > ws + label_w - 60.0, "{wl} vs {ws}");
    assert!(boxes.iter().all(|b| b.x1 <= wl));
    // The plot area keeps its width; only the margin grew.
    let (a, b) = (plot_areas(&short.to_svg())[0], plot_areas(&svg)[0]);
    assert_eq!(a.2, b.2);
    assert!(b.0 > a.0 + 200.0);
}

#[test]
fn long_titles_and_axis_labels_wrap_instead_of_overflowing() {
    let t = "A title that is much longer than the plot is wide, so it has to wrap onto more lines";
    let c = LineChart::new(t)
        .x_label(t)
        .y_label(t)
        .series("a", [(0.0, 1.0), (1.0, 2.0)])
        .size(150.0, 100.0);
    let svg = c.to_svg();
    assert_text_layout(&svg);
    let (w, _, _) = parse(&svg);
    assert!(w < 400.0, "width {w}");
    let single_word = "x".repeat(150);
    let svg = BarChart::new(&single_word)
        .y_label(&single_word)
        .series("a", [(single_word.as_str(), 1.0)])
        .to_svg();
    assert_text_layout(&svg);
}

#[test]
fn panels_are_aligned_and_share_the_x_scale() {
    let a = IntervalPlot::new("narrow").series("s", [("female", 0.1, 0.05, 0.15)]);
    let b = IntervalPlot::new("wide").series("s", [("female", 2.0, -3.0, 4.0)]);
    let c = IntervalPlot::new("third")
        .series("s", [("female", 0.0, -0.1, 0.1), ("male", 0.2, 0.1, 0.3)]);
    let fig = Figure::panels(2, vec![a, b, c]).title("aligned");
    let svg = fig.to_svg();
    assert_text_layout(&svg);
    let areas = plot_areas(&svg);
    assert_eq!(areas.len(), 3);
    // Same width everywhere, same left edge in a column, same top in a row.
    assert!(areas.iter().all(|r| r.2 == areas[0].2));
    assert_eq!(areas[0].0, areas[2].0);
    assert_eq!(areas[0].1, areas[1].1);
    // Shared x: every panel has the same tick labels, which reach past -3 and 4.
    let t = texts(&svg);
    assert_eq!(t.iter().filter(|s| *s == "4").count(), 3, "{t:?}");
    assert!(t.iter().any(|s| s == "\u{2212}3"));
    // Independent scales: the narrow panel gets its own ticks.
    let svg = Figure::panels(
        2,
        vec![
            IntervalPlot::new("narrow").series("s", [("f", 0.1, 0.05, 0.15)]),
            IntervalPlot::new("wide").series("s", [("f", 2.0, -3.0, 4.0)]),
        ],
    )
    .independent_scales()
    .to_svg();
    assert_eq!(texts(&svg).iter().filter(|s| *s == "4").count(), 1);
}

#[test]
fn inner_panels_sharing_categories_leave_labels_to_the_first_column() {
    let p = |t: &str| {
        IntervalPlot::new(t).series("s", [("female", 0.1, 0.0, 0.2), ("Black", 0.3, 0.1, 0.5)])
    };
    let svg = Figure::panels(2, vec![p("one"), p("two")]).to_svg();
    assert_eq!(texts(&svg).iter().filter(|s| *s == "female").count(), 1);
    let q = IntervalPlot::new("other").series("s", [("Asian", 0.1, 0.0, 0.2)]);
    let svg = Figure::panels(2, vec![p("one"), q]).to_svg();
    assert_text_layout(&svg);
    assert_eq!(texts(&svg).iter().filter(|s| *s == "female").count(), 1);
    assert_eq!(texts(&svg).iter().filter(|s| *s == "Asian").count(), 1);
}

#[test]
fn a_series_keeps_its_style_across_panels_and_the_legend_is_shared() {
    let p1 = LineChart::new("p1")
        .series("A", [(0.0, 1.0), (1.0, 2.0)])
        .series("B", [(0.0, 2.0), (1.0, 1.0)]);
    let p2 = LineChart::new("p2")
        .series("B", [(0.0, 1.0), (1.0, 2.0)])
        .series("A", [(0.0, 2.0), (1.0, 1.0)]);
    let svg = Figure::panels(2, vec![p1, p2]).to_svg();
    let t = texts(&svg);
    assert_eq!(
        t.iter().filter(|s| *s == "A").count(),
        1,
        "one legend: {t:?}"
    );
    // B's polyline is vermillion in both panels.
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let strokes: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .map(|n| n.attribute("stroke").unwrap())
        .collect();
    assert_eq!(strokes, vec!["#0072B2", "#D55E00", "#D55E00", "#0072B2"]);
}

#[test]
fn legends_follow_their_setting() {
    let c = || {
        LineChart::new("c")
            .series("A", [(0.0, 1.0), (1.0, 2.0)])
            .series("B", [(0.0, 2.0), (1.0, 3.0)])
    };
    for l in [Legend::Auto, Legend::Top, Legend::Right] {
        let svg = c().legend(l).to_svg();
        assert_text_layout(&svg);
        assert!(texts(&svg).iter().any(|t| t == "A"), "{l:?}");
    }
    assert!(!texts(&c().legend(Legend::Hidden).to_svg())
        .iter()
        .any(|t| t == "A"));
    // One unnamed series: no legend with Auto.
    let svg = LineChart::new("c")
        .series("", [(0.0, 1.0), (1.0, 2.0)])
        .to_svg();
    assert_eq!(texts(&svg).iter().filter(|t| t.is_empty()).count(), 0);
    // A right legend widens the figure.
    let (w_top, _, _) = parse(&c().legend(Legend::Top).to_svg());
    let (w_right, _, _) = parse(&c().legend(Legend::Right).to_svg());
    assert!(w_right > w_top);
}

#[test]
fn inside_legend_avoids_the_data() {
    // Data fill the top right and bottom left: the legend must go elsewhere.
    let c = LineChart::new("c")
        .series(
            "rising",
            (0..=10).map(|i| (i as f64, i as f64)).collect::<Vec<_>>(),
        )
        .series(
            "also rising",
            (0..=10)
                .map(|i| (i as f64, i as f64 * 0.9))
                .collect::<Vec<_>>(),
        );
    let svg = c.to_svg();
    assert_text_layout(&svg);
    let (_, _, boxes) = parse(&svg);
    let area = plot_areas(&svg)[0];
    let legend = boxes.iter().find(|b| b.s == "rising").unwrap();
    // Inside the plot area, in its top-left quarter.
    assert!(
        legend.x0 > area.0 && legend.x1 < area.0 + area.2 / 2.0,
        "{legend:?} {area:?}"
    );
    assert!(legend.y1 < area.1 + area.3 / 2.0);
}

#[test]
fn write_creates_the_file() {
    let dir = std::env::temp_dir().join(format!("shammie-plot-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bars.svg");
    let c = BarChart::new("b").series("a", [Bar::new("x", 1.0).ci(0.5, 1.5)]);
    c.write(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), c.to_svg());
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(c.write(dir.join("missing/dir/x.svg")).is_err());
}

#[test]
fn line_points_break_at_bad_values() {
    let c = LineChart::new("gap").series(
        "a",
        [
            LinePoint::new(0.0, 1.0).ci(0.5, 1.5),
            LinePoint::new(1.0, 2.0).ci(1.5, 2.5),
            LinePoint::new(2.0, f64::NAN),
            LinePoint::new(3.0, 2.0).ci(f64::NAN, 2.5),
            LinePoint::new(4.0, 3.0),
        ],
    );
    let svg = c.to_svg();
    assert_text_layout(&svg);
    let doc = roxmltree::Document::parse(&svg).unwrap();
    assert_eq!(
        doc.descendants()
            .filter(|n| n.has_tag_name("polyline"))
            .count(),
        2
    );
    assert_eq!(
        doc.descendants()
            .filter(|n| n.has_tag_name("polygon") && n.attribute("fill-opacity").is_some())
            .count(),
        1
    );
    let w = c.warnings();
    assert_eq!(w.len(), 2, "{w:?}");
}
