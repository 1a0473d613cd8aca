//! What every chart kind provides to the figure layout, and the axis drawing they share.

use crate::scale::{Scale, Ticks};
use crate::style::Style;
use crate::svg::{centred_baseline, Anchor, Svg, Text, GREY, GRID, INK};
use crate::text;
use crate::Hatch;

pub(crate) const TICK_SIZE: f64 = 12.0;
pub(crate) const LABEL_SIZE: f64 = 13.0;
pub(crate) const PANEL_TITLE_SIZE: f64 = 14.0;
pub(crate) const FIGURE_TITLE_SIZE: f64 = 16.0;
pub(crate) const LEGEND_SIZE: f64 = 12.0;
pub(crate) const NOTE_SIZE: f64 = 11.0;
pub(crate) const TICK_LEN: f64 = 4.0;
/// Gap between a tick and its label, and between an axis' labels and its title.
pub(crate) const GAP: f64 = 6.0;

/// An axis-aligned rectangle in pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    pub(crate) fn new(x: f64, y: f64, w: f64, h: f64) -> Self {
        Rect { x, y, w, h }
    }
    pub(crate) fn right(&self) -> f64 {
        self.x + self.w
    }
    pub(crate) fn bottom(&self) -> f64 {
        self.y + self.h
    }
    pub(crate) fn intersects(&self, o: &Rect) -> bool {
        self.x < o.right() && o.x < self.right() && self.y < o.bottom() && o.y < self.bottom()
    }
    pub(crate) fn overlap_area(&self, o: &Rect) -> f64 {
        let w = self.right().min(o.right()) - self.x.max(o.x);
        let h = self.bottom().min(o.bottom()) - self.y.max(o.y);
        if w > 0.0 && h > 0.0 {
            w * h
        } else {
            0.0
        }
    }
    pub(crate) fn contains(&self, o: &Rect) -> bool {
        o.x >= self.x && o.right() <= self.right() && o.y >= self.y && o.bottom() <= self.bottom()
    }
    pub(crate) fn inflate(&self, d: f64) -> Rect {
        Rect::new(self.x - d, self.y - d, self.w + 2.0 * d, self.h + 2.0 * d)
    }
}

/// Space a panel needs around its plot area (titles excluded).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Margins {
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
}

/// Which scales a chart kind shares with panels of the same kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Interval,
    Line,
    Scatter,
    Bar,
    Stacked,
}

/// How a series is shown in a legend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Glyph {
    Interval,
    Line,
    Point,
    Bar,
    /// A stacked bar's segment: a swatch of its colour, hatched or not.
    Segment(Hatch),
}

/// The ticks a panel is drawn with (numeric axes only).
#[derive(Clone, Debug, Default)]
pub(crate) struct Axes {
    pub x: Option<Ticks>,
    pub y: Option<Ticks>,
}

/// Everything a panel needs when it draws.
pub(crate) struct DrawCtx<'a> {
    pub plot: Rect,
    pub axes: &'a Axes,
    /// Style of each of the panel's series, in the panel's series order.
    pub styles: &'a [Style],
    /// Whether this panel labels its y axis (false for inner panels sharing it).
    pub show_y: bool,
    /// Clip-path ids: exactly the plot area, and the plot area plus room for markers.
    pub clip_exact: &'a str,
    pub clip_loose: &'a str,
    /// Id of the hatch `<pattern>` of each of the panel's series (`None`: not hatched).
    pub patterns: &'a [Option<String>],
}

/// A chart after its data were checked: what the figure layout asks of it.
pub(crate) trait Panel {
    fn kind(&self) -> Kind;
    fn glyph(&self) -> Glyph;
    /// How the `i`-th series is shown in the legend, when series differ.
    fn series_glyph(&self, _i: usize) -> Glyph {
        self.glyph()
    }
    fn title(&self) -> &str;
    /// Series names in drawing order (empty series included).
    fn series_names(&self) -> Vec<String>;
    /// Data extents on numeric axes, reference lines included.
    fn x_extent(&self) -> Option<(f64, f64)>;
    fn y_extent(&self) -> Option<(f64, f64)>;
    /// User-fixed axis ranges.
    fn x_fixed(&self) -> Option<(f64, f64)>;
    fn y_fixed(&self) -> Option<(f64, f64)>;
    /// Preferred plot-area size in pixels.
    fn plot_size(&self) -> (f64, f64);
    /// Category rows (interval plots), compared to decide if panels share y labels.
    fn y_categories(&self) -> Option<Vec<String>> {
        None
    }
    fn margins(&self, axes: &Axes, plot_w: f64, plot_h: f64, show_y: bool) -> Margins;
    /// Rectangles of drawn data (for placing a legend inside the plot area).
    fn obstacles(&self, _axes: &Axes, _plot: Rect) -> Vec<Rect> {
        Vec::new()
    }
    fn draw(&self, svg: &mut Svg, ctx: &DrawCtx<'_>);
}

pub(crate) fn x_scale(t: &Ticks, plot: Rect) -> Scale {
    Scale::new(t.lo, t.hi, plot.x, plot.right())
}

pub(crate) fn y_scale(t: &Ticks, plot: Rect) -> Scale {
    Scale::new(t.lo, t.hi, plot.bottom(), plot.y)
}

/// Whether horizontal tick labels are far enough apart on an axis `len` pixels long.
pub(crate) fn x_labels_fit(t: &Ticks, len: f64) -> bool {
    let labels = t.labels();
    let span = t.hi - t.lo;
    if span <= 0.0 {
        return true;
    }
    labels.windows(2).zip(t.values.windows(2)).all(|(l, v)| {
        let dist = (v[1] - v[0]) / span * len;
        let need = (text::width(&l[0], TICK_SIZE, false) + text::width(&l[1], TICK_SIZE, false))
            / 2.0
            + 12.0;
        dist >= need
    })
}

/// Whether stacked tick labels are far enough apart on a vertical axis.
pub(crate) fn y_labels_fit(t: &Ticks, len: f64) -> bool {
    let span = t.hi - t.lo;
    if span <= 0.0 || t.values.len() < 2 {
        return true;
    }
    (t.values[1] - t.values[0]) / span * len >= TICK_SIZE * 2.0
}

pub(crate) fn max_label_width(labels: &[String], size: f64, bold: bool) -> f64 {
    labels
        .iter()
        .map(|l| text::width(l, size, bold))
        .fold(0.0, f64::max)
}

pub(crate) fn line_h(size: f64) -> f64 {
    size * text::LINE_HEIGHT
}

/// Height of `n` wrapped lines of `size` (the last without leading).
pub(crate) fn lines_h(n: usize, size: f64) -> f64 {
    if n == 0 {
        0.0
    } else {
        (n - 1) as f64 * line_h(size) + (text::ASCENT + text::DESCENT) * size
    }
}

/// Space below the plot for a horizontal numeric axis and its title.
pub(crate) fn x_axis_height(label: &str, plot_w: f64) -> f64 {
    let mut h = TICK_LEN + 4.5 + (text::ASCENT + text::DESCENT) * TICK_SIZE;
    let lines = text::wrap(label, LABEL_SIZE, false, plot_w.max(60.0));
    if !lines.is_empty() {
        h += GAP + lines_h(lines.len(), LABEL_SIZE);
    }
    h + 2.0
}

/// How far the first and last x tick labels hang beyond the plot area's edges.
pub(crate) fn x_overhang(t: &Ticks, len: f64) -> (f64, f64) {
    let labels = t.labels();
    let span = t.hi - t.lo;
    if labels.is_empty() || span <= 0.0 {
        return (0.0, 0.0);
    }
    let w0 = text::width(&labels[0], TICK_SIZE, false) / 2.0;
    let w1 = text::width(&labels[labels.len() - 1], TICK_SIZE, false) / 2.0;
    let d0 = (t.values[0] - t.lo) / span * len;
    let d1 = (t.hi - t.values[t.values.len() - 1]) / span * len;
    ((w0 - d0).max(0.0) + 2.0, (w1 - d1).max(0.0) + 2.0)
}

/// Width left of the plot for numeric y tick labels and the y axis title.
pub(crate) fn y_axis_width(t: &Ticks, label: &str, plot_h: f64, show: bool) -> f64 {
    if !show {
        return TICK_LEN + 4.0;
    }
    let mut w = TICK_LEN + 3.0 + max_label_width(&t.labels(), TICK_SIZE, false);
    let lines = text::wrap(label, LABEL_SIZE, false, plot_h.max(60.0));
    if !lines.is_empty() {
        w += GAP + 2.0 + lines_h(lines.len(), LABEL_SIZE);
    }
    w + 2.0
}

/// Draws a numeric x axis along the bottom of the plot: line, ticks, labels, title.
pub(crate) fn draw_x_axis(svg: &mut Svg, t: &Ticks, plot: Rect, label: &str, grid: bool) {
    let s = x_scale(t, plot);
    if grid {
        for v in &t.values {
            let x = s.map(*v);
            svg.line(x, plot.y, x, plot.bottom(), GRID, 0.8);
        }
    }
    svg.line(plot.x, plot.bottom(), plot.right(), plot.bottom(), INK, 1.0);
    let labels = t.labels();
    let base = plot.bottom() + TICK_LEN + 4.5 + text::ASCENT * TICK_SIZE;
    for (v, l) in t.values.iter().zip(&labels) {
        let x = s.map(*v);
        svg.line(x, plot.bottom(), x, plot.bottom() + TICK_LEN, INK, 1.0);
        svg.text(Text::new(x, base, l, TICK_SIZE).anchor(Anchor::Middle));
    }
    let lines = text::wrap(label, LABEL_SIZE, false, plot.w.max(60.0));
    let mut y = base + text::DESCENT * TICK_SIZE + GAP + text::ASCENT * LABEL_SIZE;
    for l in &lines {
        svg.text(Text::new(plot.x + plot.w / 2.0, y, l, LABEL_SIZE).anchor(Anchor::Middle));
        y += line_h(LABEL_SIZE);
    }
}

/// Draws a numeric y axis along the left of the plot: line, ticks, labels, title.
pub(crate) fn draw_y_axis(
    svg: &mut Svg,
    t: &Ticks,
    plot: Rect,
    label: &str,
    grid: bool,
    show: bool,
) {
    let s = y_scale(t, plot);
    if grid {
        for v in &t.values {
            let y = s.map(*v);
            svg.line(plot.x, y, plot.right(), y, GRID, 0.8);
        }
    }
    svg.line(plot.x, plot.y, plot.x, plot.bottom(), INK, 1.0);
    let labels = t.labels();
    for (v, l) in t.values.iter().zip(&labels) {
        let y = s.map(*v);
        svg.line(plot.x - TICK_LEN, y, plot.x, y, INK, 1.0);
        if show {
            svg.text(
                Text::new(
                    plot.x - TICK_LEN - 3.0,
                    centred_baseline(y, TICK_SIZE),
                    l,
                    TICK_SIZE,
                )
                .anchor(Anchor::End),
            );
        }
    }
    if !show {
        return;
    }
    let lines = text::wrap(label, LABEL_SIZE, false, plot.h.max(60.0));
    let label_w = max_label_width(&labels, TICK_SIZE, false);
    // Rotated text: the baseline runs upwards; the last line sits nearest the axis.
    let mut x = plot.x - TICK_LEN - 3.0 - label_w - GAP - 2.0 - text::DESCENT * LABEL_SIZE;
    for l in lines.iter().rev() {
        svg.text(
            Text::new(x, plot.y + plot.h / 2.0, l, LABEL_SIZE)
                .anchor(Anchor::Middle)
                .vertical(),
        );
        x -= line_h(LABEL_SIZE);
    }
}

/// Writes a clip path for `r`.
pub(crate) fn clip_path(svg: &mut Svg, id: &str, r: Rect) {
    svg.raw(&format!(
        "<clipPath id=\"{id}\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/></clipPath>",
        crate::svg::num(r.x),
        crate::svg::num(r.y),
        crate::svg::num(r.w),
        crate::svg::num(r.h)
    ));
}

/// A centred grey message in an empty plot area.
pub(crate) fn draw_no_data(svg: &mut Svg, plot: Rect) {
    svg.text(
        Text::new(
            plot.x + plot.w / 2.0,
            centred_baseline(plot.y + plot.h / 2.0, TICK_SIZE),
            "no data",
            TICK_SIZE,
        )
        .anchor(Anchor::Middle)
        .fill(GREY),
    );
}

/// Extends `acc` by `v` if finite.
pub(crate) fn extend(acc: &mut Option<(f64, f64)>, v: f64) {
    if !v.is_finite() {
        return;
    }
    *acc = Some(match *acc {
        None => (v, v),
        Some((a, b)) => (a.min(v), b.max(v)),
    });
}

/// A user-given axis range, if usable (finite and of positive width).
pub(crate) fn usable_range(r: Option<(f64, f64)>) -> Option<(f64, f64)> {
    match r {
        Some((a, b)) if a.is_finite() && b.is_finite() && a != b => Some((a.min(b), a.max(b))),
        _ => None,
    }
}

/// Formats the categories in a note: up to three, then a count.
pub(crate) fn list_some(items: &[String]) -> String {
    let mut s = items
        .iter()
        .take(3)
        .map(|c| format!("\u{201C}{c}\u{201D}"))
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > 3 {
        s.push_str(&format!(" and {} more", items.len() - 3));
    }
    s
}

pub(crate) fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}
