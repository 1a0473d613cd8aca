//! Horizontal stacked bars: segment widths, hatching, shares inside segments, bad rows,
//! and the layout checks every chart gets.

use crate::common::*;
use shammie_plot::{with_n, Figure, Hatch, Legend, StackedBarChart, StackedRow};

fn chart(title: &str) -> StackedBarChart {
    StackedBarChart::new(title)
        .x_label("share of responses")
        .segment("refuses", Hatch::None)
        .segment("complies", Hatch::None)
        .segment("complies, alignment-faking reasoning", Hatch::Diagonal)
}

/// The alignment-faking figure: two prompt variants, training and unmonitored rows.
fn af(title: &str) -> StackedBarChart {
    chart(title)
        .row(
            StackedRow::new(with_n("training (free tier)", 120), [0.55, 0.30, 0.15])
                .group("default prompt"),
        )
        .row(StackedRow::new("unmonitored (paid tier)", [0.90, 0.10, 0.0]).group("default prompt"))
        .row(StackedRow::new("training (free tier)", [0.8, 0.15, 0.05]).group("no CoT"))
        .row(StackedRow::new("unmonitored (paid tier)", [0.97, 0.03, 0.0]).group("no CoT"))
}

#[derive(Debug)]
struct R {
    class: String,
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    fill: String,
}

/// Every `<rect>` with a class (track, segment, hatch, chip), in document order.
fn rects(svg: &str) -> Vec<R> {
    let doc = roxmltree::Document::parse(svg).unwrap();
    let f = |n: &roxmltree::Node<'_, '_>, a: &str| n.attribute(a).unwrap().parse::<f64>().unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("rect") && n.attribute("class").is_some())
        .map(|n| R {
            class: n.attribute("class").unwrap().to_string(),
            x: f(&n, "x"),
            y: f(&n, "y"),
            w: f(&n, "width"),
            h: f(&n, "height"),
            fill: n.attribute("fill").unwrap().to_string(),
        })
        .collect()
}

fn of<'a>(rs: &'a [R], class: &str) -> Vec<&'a R> {
    rs.iter().filter(|r| r.class == class).collect()
}

#[test]
fn stacked_charts_keep_text_on_the_canvas_and_apart() {
    let long = "a prompt variant with a rather long name (and details)";
    let svgs = [
        af("Helpful-only setting").to_svg(),
        af("t").legend(Legend::Right).to_svg(),
        af("t").legend(Legend::Hidden).width(80.0).to_svg(),
        af("t").bar_height(6.0).to_svg(),
        af("t").bar_height(60.0).to_svg(),
        Figure::panels(2, vec![af("Helpful-only"), af("Animal welfare")])
            .title("Alignment faking")
            .to_svg(),
        Figure::panels(1, vec![af("one"), af("two")]).to_svg(),
        chart(long)
            .x_label(long)
            .row(StackedRow::new(long, [0.2, 0.3, 0.5]).group(long))
            .row(StackedRow::new("<b>&\"'", [0.2, 0.3, 0.5]))
            .to_svg(),
        StackedBarChart::new("no segments").to_svg(),
        chart("one row")
            .row(StackedRow::new("x", [0.3, 0.3, 0.4]))
            .to_svg(),
        chart("no rows").to_svg(),
        chart("percent")
            .x_range(0.0, 100.0)
            .row(StackedRow::new("a", [33.3, 33.3, 33.4]))
            .to_svg(),
    ];
    for svg in &svgs {
        assert_text_layout(svg);
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }
    let t = texts(&svgs[7]);
    assert!(t.iter().any(|s| s == "<b>&\"'"), "{t:?}");
    assert!(texts(&svgs[8]).iter().any(|s| s == "no data"));
    assert!(texts(&svgs[10]).iter().any(|s| s == "no data"));
}

#[test]
fn segment_widths_are_proportional_to_the_values() {
    let rows = [
        [0.55, 0.30, 0.15],
        [0.90, 0.10, 0.0],
        [0.8, 0.15, 0.05],
        [0.97, 0.03, 0.0],
    ];
    let svg = af("w").width(400.0).to_svg();
    let (px, _, pw, _) = plot_areas(&svg)[0];
    let rs = rects(&svg);
    let segs = of(&rs, "segment");
    // Zero-width segments are not drawn.
    assert_eq!(segs.len(), 10);
    let colours = ["#0072B2", "#D55E00", "#009E73"];
    let mut k = 0;
    for row in rows {
        let mut x = px;
        for (v, c) in row.iter().zip(colours) {
            if *v == 0.0 {
                continue;
            }
            let s = segs[k];
            assert_eq!(s.fill, c);
            assert!((s.x - x).abs() < 0.02, "{s:?} starts at {x}");
            assert!((s.w - v * pw).abs() < 0.02, "{s:?}: {v} of {pw}");
            x += s.w;
            k += 1;
        }
        // Each row's segments fill the range exactly (these rows sum to 1).
        assert!((x - px - pw).abs() < 0.05);
    }
    // Segments of one row share their y; rows are apart.
    assert_eq!(segs[0].y, segs[2].y);
    assert!(segs[3].y > segs[0].y + segs[0].h);

    // Percent axis: the same geometry, labelled with the same shares.
    let p = StackedBarChart::new("p")
        .x_range(0.0, 100.0)
        .segment("a", Hatch::None)
        .segment("b", Hatch::None)
        .row(StackedRow::new("r", [25.0, 50.0]));
    let svg = p.to_svg();
    let (px, _, pw, _) = plot_areas(&svg)[0];
    let rs = rects(&svg);
    let segs = of(&rs, "segment");
    assert!((segs[0].w - pw / 4.0).abs() < 0.02 && (segs[1].w - pw / 2.0).abs() < 0.02);
    assert!((segs[1].x - px - pw / 4.0).abs() < 0.02);
    // The track shows the part of the range the segments leave empty.
    assert_eq!(of(&rs, "track")[0].w, pw);
    let t = texts(&svg);
    assert!(
        t.contains(&"25%".to_string()) && t.contains(&"50%".to_string()),
        "{t:?}"
    );
}

#[test]
fn bad_rows_are_noted_and_not_drawn() {
    let c = chart("bad")
        .row(StackedRow::new("ok", [0.5, 0.25, 0.25]))
        .row(StackedRow::new("nan", [f64::NAN, 0.2, 0.1]))
        .row(StackedRow::new("inf", [0.1, f64::INFINITY, 0.1]))
        .row(StackedRow::new("negative", [0.7, -0.1, 0.2]))
        .row(StackedRow::new("over", [0.7, 0.2, 0.2]))
        .row(StackedRow::new("short", [0.7, 0.3]))
        // Rounding in a sum of shares is not "more than 1".
        .row(StackedRow::new("rounding", [0.1, 0.2, 0.7]));
    let w = c.warnings();
    assert_eq!(
        w,
        vec![
            "1 row without exactly 3 values (one per segment) not drawn: \u{201C}short\u{201D}",
            "2 rows with a non-finite value not drawn: \u{201C}nan\u{201D}, \u{201C}inf\u{201D}",
            "1 row with a negative value not drawn: \u{201C}negative\u{201D}",
            "1 row whose values sum to more than the axis range (1) not drawn: \u{201C}over\u{201D}",
        ]
    );
    let svg = c.to_svg();
    assert_text_layout(&svg);
    let t = texts(&svg);
    for note in &w {
        assert!(
            t.iter()
                .any(|s| s.starts_with("Note:") && s.contains(&note[..12])),
            "{note} not shown in {t:?}"
        );
    }
    // Their labels stay, their bars read "omitted"; only "ok" and "rounding" are drawn.
    assert!(t.iter().any(|s| s == "over"));
    assert_eq!(t.iter().filter(|s| *s == "omitted").count(), 5);
    let rs = rects(&svg);
    assert_eq!(of(&rs, "track").len(), 2);
    assert_eq!(of(&rs, "segment").len(), 6);
    assert_eq!(of(&rs, "hatch").len(), 2);

    // In a group, the note names the group; in a figure, the panel.
    let c = chart("panel").row(StackedRow::new("x", [1.0, 1.0, 1.0]).group("g"));
    let w = Figure::panels(2, vec![c.clone(), c]).warnings();
    assert_eq!(w.len(), 2);
    assert!(
        w[0].starts_with("panel \u{201C}panel\u{201D}: 1 row whose")
            && w[0].ends_with("\u{201C}g: x\u{201D}")
    );

    // Nothing drawable: "no data" instead of a column of "omitted".
    let svg = chart("none")
        .row(StackedRow::new("nan", [f64::NAN; 3]))
        .x_range(f64::NAN, 1.0)
        .to_svg();
    assert_text_layout(&svg);
    let t = texts(&svg);
    assert!(t.iter().any(|s| s == "no data") && !t.iter().any(|s| s == "omitted"));
}

#[test]
fn hatched_segments_use_one_pattern_defined_in_defs() {
    let svg = af("h").to_svg();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let patterns: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("pattern"))
        .map(|n| n.attribute("id").unwrap())
        .collect();
    assert_eq!(patterns.len(), 1);
    assert!(doc
        .descendants()
        .find(|n| n.has_tag_name("pattern"))
        .unwrap()
        .parent()
        .unwrap()
        .has_tag_name("defs"));
    // Every url(#…) reference resolves; the legend swatch and both hatched segments
    // use the pattern.
    let refs: Vec<&str> = doc
        .descendants()
        .filter_map(|n| n.attribute("fill"))
        .filter_map(|f| f.strip_prefix("url(#")?.strip_suffix(')'))
        .collect();
    assert_eq!(refs.len(), 3);
    assert!(refs.iter().all(|r| patterns.contains(r)));
    let rs = rects(&svg);
    let hatches = of(&rs, "hatch");
    let segs = of(&rs, "segment");
    let hatched: Vec<&&R> = segs.iter().filter(|s| s.fill == "#009E73").collect();
    for s in &hatched {
        assert!(hatches
            .iter()
            .any(|h| h.x == s.x && h.w == s.w && h.y == s.y));
    }
    assert_eq!(hatched.len(), 2);
    // Deterministic id; no defs at all without hatching.
    assert_eq!(af("h").to_svg(), svg);
    let plain = StackedBarChart::new("p")
        .segment("a", Hatch::None)
        .segment("b", Hatch::None)
        .row(StackedRow::new("r", [0.5, 0.5]))
        .to_svg();
    assert!(!plain.contains("<defs>") && !plain.contains("fill=\"url(#"));
    // A cross hatch and a diagonal one of the same colour are two patterns.
    let svg = Figure::panels(
        2,
        vec![
            StackedBarChart::new("a")
                .segment("s", Hatch::Diagonal)
                .row(StackedRow::new("r", [1.0])),
            StackedBarChart::new("b")
                .segment("s", Hatch::Cross)
                .row(StackedRow::new("r", [1.0])),
        ],
    )
    .to_svg();
    assert_eq!(svg.matches("<pattern ").count(), 2);
    assert_text_layout(&svg);
}

#[test]
fn shares_show_inside_wide_segments_in_a_contrasting_colour() {
    let svg = chart("s")
        .width(300.0)
        .row(StackedRow::new("r", [0.55, 0.02, 0.43]))
        .to_svg();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let label = |s: &str| {
        doc.descendants()
            .find(|n| n.has_tag_name("text") && n.text() == Some(s))
            .map(|n| n.attribute("fill").unwrap_or("#222222").to_string())
    };
    // White on blue; ink on the (hatched) green, over a plain chip.
    assert_eq!(label("55%").as_deref(), Some("#ffffff"));
    assert_eq!(label("43%").as_deref(), Some("#222222"));
    assert_eq!(
        label("2%"),
        None,
        "a 6 px segment has no room for its share"
    );
    assert_eq!(of(&rects(&svg), "chip").len(), 1);
    // Bars too low for the text show no shares.
    let svg = chart("s")
        .bar_height(10.0)
        .row(StackedRow::new("r", [0.55, 0.02, 0.43]))
        .to_svg();
    assert!(!texts(&svg).iter().any(|t| t.ends_with('%')));
}

#[test]
fn panels_share_the_x_scale_and_the_row_labels() {
    let svg = Figure::panels(2, vec![af("Helpful-only"), af("Animal welfare")]).to_svg();
    assert_text_layout(&svg);
    let t = texts(&svg);
    // Row labels and group headers once, in the first panel; one legend.
    assert_eq!(t.iter().filter(|s| *s == "no CoT").count(), 1);
    assert_eq!(t.iter().filter(|s| *s == "refuses").count(), 1);
    assert_eq!(
        t.iter()
            .filter(|s| *s == "training (free tier) (n=120)")
            .count(),
        1
    );
    // Same plot widths, same ticks.
    let areas = plot_areas(&svg);
    assert_eq!(areas[0].2, areas[1].2);
    assert_eq!(areas[0].1, areas[1].1);
    assert_eq!(t.iter().filter(|s| *s == "1.0").count(), 2, "{t:?}");
    // Different rows: both panels label theirs.
    let b = chart("b").row(StackedRow::new("another row", [0.5, 0.5, 0.0]));
    let svg = Figure::panels(2, vec![af("a"), b]).to_svg();
    assert_text_layout(&svg);
    assert!(texts(&svg).iter().any(|s| s == "another row"));
    // Rows without a group are listed last, under "Other".
    let svg = chart("o")
        .row(StackedRow::new("first given", [1.0, 0.0, 0.0]))
        .row(StackedRow::new("grouped", [1.0, 0.0, 0.0]).group("g"))
        .to_svg();
    let t = texts(&svg);
    let at = |s: &str| t.iter().position(|x| x == s).unwrap();
    assert!(at("g") < at("grouped") && at("grouped") < at("Other"));
    assert!(at("Other") < at("first given"));
}
