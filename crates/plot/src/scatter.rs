//! Scatter plots with two-dimensional error bars and point labels.

use crate::panel::*;
use crate::svg::{Anchor, Svg, Text};
use crate::text::{self, clean_label};
use crate::Legend;

const MARKER_R: f64 = 4.0;
const POINT_LABEL_SIZE: f64 = 11.0;

/// One point with optional intervals on either axis and an optional label.
#[derive(Clone, Debug, PartialEq)]
pub struct ScatterPoint {
    pub x: f64,
    pub y: f64,
    /// Horizontal interval, in either order.
    pub x_ci: Option<(f64, f64)>,
    /// Vertical interval, in either order.
    pub y_ci: Option<(f64, f64)>,
    /// Text set next to the point, placed where it overlaps nothing if it can.
    pub label: Option<String>,
}

impl ScatterPoint {
    pub fn new(x: f64, y: f64) -> Self {
        ScatterPoint {
            x,
            y,
            x_ci: None,
            y_ci: None,
            label: None,
        }
    }
    pub fn x_ci(mut self, lo: f64, hi: f64) -> Self {
        self.x_ci = Some((lo, hi));
        self
    }
    pub fn y_ci(mut self, lo: f64, hi: f64) -> Self {
        self.y_ci = Some((lo, hi));
        self
    }
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }
}

impl From<(f64, f64)> for ScatterPoint {
    fn from((x, y): (f64, f64)) -> Self {
        ScatterPoint::new(x, y)
    }
}

/// A scatter plot; each series has a colour and marker shape.
#[derive(Clone, Debug, PartialEq)]
pub struct ScatterPlot {
    pub(crate) title: String,
    pub(crate) x_label: String,
    pub(crate) y_label: String,
    pub(crate) series: Vec<(String, Vec<ScatterPoint>)>,
    pub(crate) x_range: Option<(f64, f64)>,
    pub(crate) y_range: Option<(f64, f64)>,
    pub(crate) size: (f64, f64),
    pub(crate) legend: Legend,
}

impl ScatterPlot {
    pub fn new(title: impl Into<String>) -> Self {
        ScatterPlot {
            title: title.into(),
            x_label: String::new(),
            y_label: String::new(),
            series: Vec::new(),
            x_range: None,
            y_range: None,
            size: (340.0, 260.0),
            legend: Legend::Auto,
        }
    }
    pub fn x_label(mut self, label: impl Into<String>) -> Self {
        self.x_label = label.into();
        self
    }
    pub fn y_label(mut self, label: impl Into<String>) -> Self {
        self.y_label = label.into();
        self
    }
    pub fn series<P: Into<ScatterPoint>>(
        mut self,
        name: impl Into<String>,
        points: impl IntoIterator<Item = P>,
    ) -> Self {
        self.series
            .push((name.into(), points.into_iter().map(Into::into).collect()));
        self
    }
    pub fn x_range(mut self, lo: f64, hi: f64) -> Self {
        self.x_range = Some((lo, hi));
        self
    }
    pub fn y_range(mut self, lo: f64, hi: f64) -> Self {
        self.y_range = Some((lo, hi));
        self
    }
    /// Size of the plot area in pixels (default 340 × 260).
    pub fn size(mut self, width: f64, height: f64) -> Self {
        if width.is_finite() && height.is_finite() {
            self.size = (width.clamp(80.0, 4000.0), height.clamp(60.0, 4000.0));
        }
        self
    }
    pub fn legend(mut self, legend: Legend) -> Self {
        self.legend = legend;
        self
    }
}

chart_output!(ScatterPlot, Scatter);

struct Pt {
    series: usize,
    x: f64,
    y: f64,
    x_ci: Option<(f64, f64)>,
    y_ci: Option<(f64, f64)>,
    label: String,
}

pub(crate) struct ScatterPanel {
    title: String,
    x_label: String,
    y_label: String,
    names: Vec<String>,
    pts: Vec<Pt>,
    x_fixed: Option<(f64, f64)>,
    y_fixed: Option<(f64, f64)>,
    size: (f64, f64),
}

fn ordered(ci: Option<(f64, f64)>, bad: &mut usize) -> Option<(f64, f64)> {
    match ci {
        Some((a, b)) if a.is_finite() && b.is_finite() => Some((a.min(b), a.max(b))),
        Some(_) => {
            *bad += 1;
            None
        }
        None => None,
    }
}

impl ScatterPanel {
    pub(crate) fn new(c: &ScatterPlot, notes: &mut Vec<String>) -> Self {
        let names: Vec<String> = c.series.iter().map(|(n, _)| clean_label(n)).collect();
        let x_fixed = usable_range(c.x_range);
        let y_fixed = usable_range(c.y_range);
        let mut pts = Vec::new();
        for (si, (_, ps)) in c.series.iter().enumerate() {
            let who = if names.len() > 1 || !names[si].is_empty() {
                format!("series \u{201C}{}\u{201D}: ", names[si])
            } else {
                String::new()
            };
            let (mut bad, mut bad_ci, mut outside) = (vec![], 0usize, 0usize);
            for (k, p) in ps.iter().enumerate() {
                let label = p.label.as_deref().map(clean_label).unwrap_or_default();
                if !p.x.is_finite() || !p.y.is_finite() {
                    bad.push(if label.is_empty() {
                        format!("#{}", k + 1)
                    } else {
                        label
                    });
                    continue;
                }
                if x_fixed.is_some_and(|(a, b)| p.x < a || p.x > b)
                    || y_fixed.is_some_and(|(a, b)| p.y < a || p.y > b)
                {
                    outside += 1;
                }
                let x_ci = ordered(p.x_ci, &mut bad_ci);
                let y_ci = ordered(p.y_ci, &mut bad_ci);
                pts.push(Pt {
                    series: si,
                    x: p.x,
                    y: p.y,
                    x_ci,
                    y_ci,
                    label,
                });
            }
            if !bad.is_empty() {
                notes.push(format!(
                    "{who}{} with a non-finite coordinate omitted: {}",
                    plural(bad.len(), "point", "points"),
                    list_some(&bad)
                ));
            }
            if bad_ci > 0 {
                notes.push(format!(
                    "{who}{} omitted (non-finite bound)",
                    plural(bad_ci, "error bar", "error bars")
                ));
            }
            if outside > 0 {
                notes.push(format!(
                    "{who}{} outside the axis range not shown",
                    plural(outside, "point", "points")
                ));
            }
            if ps.is_empty() {
                notes.push(format!("series \u{201C}{}\u{201D} has no data", names[si]));
            }
        }
        ScatterPanel {
            title: clean_label(&c.title),
            x_label: clean_label(&c.x_label),
            y_label: clean_label(&c.y_label),
            names,
            pts,
            x_fixed,
            y_fixed,
            size: c.size,
        }
    }

    /// Rectangles of markers and error bars, in pixels.
    fn shapes(&self, axes: &Axes, plot: Rect) -> Vec<Rect> {
        let (Some(tx), Some(ty)) = (&axes.x, &axes.y) else {
            return vec![];
        };
        let (xs, ys) = (x_scale(tx, plot), y_scale(ty, plot));
        let mut out = Vec::new();
        for p in &self.pts {
            let (x, y) = (xs.map(p.x), ys.map(p.y));
            out.push(Rect::new(
                x - MARKER_R,
                y - MARKER_R,
                2.0 * MARKER_R,
                2.0 * MARKER_R,
            ));
            if let Some((a, b)) = p.x_ci {
                out.push(Rect::new(xs.map(a), y - 3.0, xs.map(b) - xs.map(a), 6.0));
            }
            if let Some((a, b)) = p.y_ci {
                out.push(Rect::new(x - 3.0, ys.map(b), 6.0, ys.map(a) - ys.map(b)));
            }
        }
        out
    }

    /// Boxes (and anchors) of the point labels: for each label the first of eight
    /// positions around its point that overlaps nothing and stays in the plot area;
    /// failing that, the position that overlaps least.
    fn label_boxes(&self, axes: &Axes, plot: Rect) -> Vec<(usize, Rect)> {
        let (Some(tx), Some(ty)) = (&axes.x, &axes.y) else {
            return vec![];
        };
        let (xs, ys) = (x_scale(tx, plot), y_scale(ty, plot));
        let shapes = self.shapes(axes, plot);
        let mut placed: Vec<(usize, Rect)> = Vec::new();
        let h = (text::ASCENT + text::DESCENT) * POINT_LABEL_SIZE;
        let d = MARKER_R + 3.0;
        for (i, p) in self.pts.iter().enumerate() {
            if p.label.is_empty() {
                continue;
            }
            let w = text::width(&p.label, POINT_LABEL_SIZE, false);
            let (x, y) = (xs.map(p.x), ys.map(p.y));
            let candidates = [
                Rect::new(x + d, y - h / 2.0, w, h),
                Rect::new(x - d - w, y - h / 2.0, w, h),
                Rect::new(x - w / 2.0, y - d - h, w, h),
                Rect::new(x - w / 2.0, y + d, w, h),
                Rect::new(x + d * 0.7, y - d * 0.7 - h, w, h),
                Rect::new(x - d * 0.7 - w, y - d * 0.7 - h, w, h),
                Rect::new(x + d * 0.7, y + d * 0.7, w, h),
                Rect::new(x - d * 0.7 - w, y + d * 0.7, w, h),
            ];
            let score = |r: &Rect| {
                let mut s = 0.0;
                if !plot.contains(r) {
                    s += 1e9;
                }
                for o in &placed {
                    s += 100.0 * r.overlap_area(&o.1.inflate(1.0));
                }
                for o in &shapes {
                    s += r.overlap_area(o);
                }
                s
            };
            let mut best = (f64::INFINITY, candidates[0]);
            for c in candidates {
                let sc = score(&c);
                if sc < best.0 {
                    best = (sc, c);
                }
                if sc == 0.0 {
                    break;
                }
            }
            placed.push((i, best.1));
        }
        placed
    }
}

impl Panel for ScatterPanel {
    fn kind(&self) -> Kind {
        Kind::Scatter
    }
    fn glyph(&self) -> Glyph {
        Glyph::Point
    }
    fn title(&self) -> &str {
        &self.title
    }
    fn series_names(&self) -> Vec<String> {
        self.names.clone()
    }
    fn x_extent(&self) -> Option<(f64, f64)> {
        let mut acc = None;
        for p in &self.pts {
            extend(&mut acc, p.x);
            if let Some((a, b)) = p.x_ci {
                extend(&mut acc, a);
                extend(&mut acc, b);
            }
        }
        acc
    }
    fn y_extent(&self) -> Option<(f64, f64)> {
        let mut acc = None;
        for p in &self.pts {
            extend(&mut acc, p.y);
            if let Some((a, b)) = p.y_ci {
                extend(&mut acc, a);
                extend(&mut acc, b);
            }
        }
        acc
    }
    fn x_fixed(&self) -> Option<(f64, f64)> {
        self.x_fixed
    }
    fn y_fixed(&self) -> Option<(f64, f64)> {
        self.y_fixed
    }
    fn plot_size(&self) -> (f64, f64) {
        crate::line::fit_labels(self.size, &self.x_label, &self.y_label)
    }
    fn margins(&self, axes: &Axes, plot_w: f64, plot_h: f64, show_y: bool) -> Margins {
        crate::line::xy_margins(axes, plot_w, plot_h, show_y, &self.x_label, &self.y_label)
    }
    fn obstacles(&self, axes: &Axes, plot: Rect) -> Vec<Rect> {
        let mut out = self.shapes(axes, plot);
        out.extend(self.label_boxes(axes, plot).into_iter().map(|(_, r)| r));
        out
    }
    fn draw(&self, svg: &mut Svg, ctx: &DrawCtx<'_>) {
        let plot = ctx.plot;
        let (Some(tx), Some(ty)) = (&ctx.axes.x, &ctx.axes.y) else {
            return;
        };
        draw_y_axis(svg, ty, plot, &self.y_label, true, ctx.show_y);
        draw_x_axis(svg, tx, plot, &self.x_label, true);
        if self.pts.is_empty() {
            draw_no_data(svg, plot);
            return;
        }
        let (xs, ys) = (x_scale(tx, plot), y_scale(ty, plot));
        svg.raw(&format!("<g clip-path=\"url(#{})\">", ctx.clip_loose));
        for p in &self.pts {
            let st = &ctx.styles[p.series];
            let (x, y) = (xs.map(p.x), ys.map(p.y));
            if let Some((a, b)) = p.x_ci {
                svg.whisker(xs.map(a), y, xs.map(b), y, 3.0, st.color, 1.3);
            }
            if let Some((a, b)) = p.y_ci {
                svg.whisker(x, ys.map(a), x, ys.map(b), 3.0, st.color, 1.3);
            }
        }
        for p in &self.pts {
            svg.marker(&ctx.styles[p.series], xs.map(p.x), ys.map(p.y), MARKER_R);
        }
        svg.raw("</g>");
        for (i, r) in self.label_boxes(ctx.axes, plot) {
            svg.text(
                Text::new(
                    r.x,
                    r.y + text::ASCENT * POINT_LABEL_SIZE,
                    &self.pts[i].label,
                    POINT_LABEL_SIZE,
                )
                .anchor(Anchor::Start)
                .fill("#333333"),
            );
        }
    }
}
