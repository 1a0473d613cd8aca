//! Line charts with markers and shaded confidence bands.

use crate::panel::*;
use crate::svg::Svg;
use crate::text::{self, clean_label};
use crate::Legend;

/// Opacity of confidence bands (and of their legend patches).
pub(crate) const BAND_OPACITY: f64 = 0.18;
const MARKER_R: f64 = 3.2;

/// One point of a line, with an optional confidence interval for `y`.
#[derive(Clone, Debug, PartialEq)]
pub struct LinePoint {
    pub x: f64,
    pub y: f64,
    /// Band bounds at `x`, in either order.
    pub ci: Option<(f64, f64)>,
}

impl LinePoint {
    pub fn new(x: f64, y: f64) -> Self {
        LinePoint { x, y, ci: None }
    }
    pub fn ci(mut self, lo: f64, hi: f64) -> Self {
        self.ci = Some((lo, hi));
        self
    }
}

impl From<(f64, f64)> for LinePoint {
    fn from((x, y): (f64, f64)) -> Self {
        LinePoint::new(x, y)
    }
}

impl From<(f64, f64, f64, f64)> for LinePoint {
    /// `(x, y, lo, hi)`.
    fn from((x, y, lo, hi): (f64, f64, f64, f64)) -> Self {
        LinePoint::new(x, y).ci(lo, hi)
    }
}

/// A line chart: one line with markers per series, joined in the order given, with a
/// shaded band where points carry intervals. A point with a non-finite `x` or `y`
/// breaks the line (and its band) and is noted.
#[derive(Clone, Debug, PartialEq)]
pub struct LineChart {
    pub(crate) title: String,
    pub(crate) x_label: String,
    pub(crate) y_label: String,
    pub(crate) series: Vec<(String, Vec<LinePoint>)>,
    pub(crate) x_range: Option<(f64, f64)>,
    pub(crate) y_range: Option<(f64, f64)>,
    pub(crate) size: (f64, f64),
    pub(crate) markers: bool,
    pub(crate) legend: Legend,
}

impl LineChart {
    pub fn new(title: impl Into<String>) -> Self {
        LineChart {
            title: title.into(),
            x_label: String::new(),
            y_label: String::new(),
            series: Vec::new(),
            x_range: None,
            y_range: None,
            size: (340.0, 220.0),
            markers: true,
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
    pub fn series<P: Into<LinePoint>>(
        mut self,
        name: impl Into<String>,
        points: impl IntoIterator<Item = P>,
    ) -> Self {
        self.series
            .push((name.into(), points.into_iter().map(Into::into).collect()));
        self
    }
    /// Fixes the x range (ticks are placed inside it); drawing is clipped to it.
    pub fn x_range(mut self, lo: f64, hi: f64) -> Self {
        self.x_range = Some((lo, hi));
        self
    }
    /// Fixes the y range (ticks are placed inside it); drawing is clipped to it.
    pub fn y_range(mut self, lo: f64, hi: f64) -> Self {
        self.y_range = Some((lo, hi));
        self
    }
    /// Size of the plot area in pixels (default 340 × 220).
    pub fn size(mut self, width: f64, height: f64) -> Self {
        if width.is_finite() && height.is_finite() {
            self.size = (width.clamp(80.0, 4000.0), height.clamp(60.0, 4000.0));
        }
        self
    }
    /// Whether points get markers (default true).
    pub fn markers(mut self, on: bool) -> Self {
        self.markers = on;
        self
    }
    pub fn legend(mut self, legend: Legend) -> Self {
        self.legend = legend;
        self
    }
}

chart_output!(LineChart, Line);

/// A run of consecutive valid points (x, y, band).
type Run = Vec<(f64, f64, Option<(f64, f64)>)>;

pub(crate) struct LinePanel {
    title: String,
    x_label: String,
    y_label: String,
    names: Vec<String>,
    runs: Vec<Vec<Run>>,
    x_fixed: Option<(f64, f64)>,
    y_fixed: Option<(f64, f64)>,
    size: (f64, f64),
    markers: bool,
}

impl LinePanel {
    pub(crate) fn new(c: &LineChart, notes: &mut Vec<String>) -> Self {
        let names: Vec<String> = c.series.iter().map(|(n, _)| clean_label(n)).collect();
        let y_fixed = usable_range(c.y_range);
        let x_fixed = usable_range(c.x_range);
        let mut runs = Vec::new();
        for (si, (_, pts)) in c.series.iter().enumerate() {
            let who = if names.len() > 1 || !names[si].is_empty() {
                format!("series \u{201C}{}\u{201D}: ", names[si])
            } else {
                String::new()
            };
            let mut series_runs: Vec<Run> = vec![vec![]];
            let (mut bad, mut bad_ci, mut outside) = (0usize, 0usize, 0usize);
            for p in pts {
                if !p.x.is_finite() || !p.y.is_finite() {
                    bad += 1;
                    if !series_runs.last().is_some_and(|r| r.is_empty()) {
                        series_runs.push(vec![]);
                    }
                    continue;
                }
                let out_x = x_fixed.is_some_and(|(a, b)| p.x < a || p.x > b);
                let out_y = y_fixed.is_some_and(|(a, b)| p.y < a || p.y > b);
                if out_x || out_y {
                    outside += 1;
                }
                let ci = match p.ci {
                    Some((a, b)) if a.is_finite() && b.is_finite() => Some((a.min(b), a.max(b))),
                    Some(_) => {
                        bad_ci += 1;
                        None
                    }
                    None => None,
                };
                series_runs
                    .last_mut()
                    .expect("never empty")
                    .push((p.x, p.y, ci));
            }
            series_runs.retain(|r| !r.is_empty());
            if bad > 0 {
                notes.push(format!(
                    "{who}{} with a non-finite coordinate omitted (the line is broken there)",
                    plural(bad, "point", "points")
                ));
            }
            if bad_ci > 0 {
                notes.push(format!(
                    "{who}{} without a band (non-finite bound)",
                    plural(bad_ci, "point", "points")
                ));
            }
            if outside > 0 {
                notes.push(format!(
                    "{who}{} outside the axis range not shown",
                    plural(outside, "point", "points")
                ));
            }
            if pts.is_empty() {
                notes.push(format!("series \u{201C}{}\u{201D} has no data", names[si]));
            }
            runs.push(series_runs);
        }
        LinePanel {
            title: clean_label(&c.title),
            x_label: clean_label(&c.x_label),
            y_label: clean_label(&c.y_label),
            names,
            runs,
            x_fixed,
            y_fixed,
            size: c.size,
            markers: c.markers,
        }
    }

    fn points(&self) -> impl Iterator<Item = &(f64, f64, Option<(f64, f64)>)> {
        self.runs.iter().flatten().flatten()
    }
}

impl Panel for LinePanel {
    fn kind(&self) -> Kind {
        Kind::Line
    }
    fn glyph(&self) -> Glyph {
        Glyph::Line
    }
    fn title(&self) -> &str {
        &self.title
    }
    fn series_names(&self) -> Vec<String> {
        self.names.clone()
    }
    fn x_extent(&self) -> Option<(f64, f64)> {
        let mut acc = None;
        for p in self.points() {
            extend(&mut acc, p.0);
        }
        acc
    }
    fn y_extent(&self) -> Option<(f64, f64)> {
        let mut acc = None;
        for p in self.points() {
            extend(&mut acc, p.1);
            if let Some((a, b)) = p.2 {
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
        fit_labels(self.size, &self.x_label, &self.y_label)
    }
    fn margins(&self, axes: &Axes, plot_w: f64, plot_h: f64, show_y: bool) -> Margins {
        xy_margins(axes, plot_w, plot_h, show_y, &self.x_label, &self.y_label)
    }
    fn obstacles(&self, axes: &Axes, plot: Rect) -> Vec<Rect> {
        let (Some(tx), Some(ty)) = (&axes.x, &axes.y) else {
            return vec![];
        };
        let (xs, ys) = (x_scale(tx, plot), y_scale(ty, plot));
        let mut out = Vec::new();
        for run in self.runs.iter().flatten() {
            let px: Vec<(f64, f64)> = run.iter().map(|p| (xs.map(p.0), ys.map(p.1))).collect();
            for p in &px {
                out.push(Rect::new(
                    p.0 - MARKER_R,
                    p.1 - MARKER_R,
                    2.0 * MARKER_R,
                    2.0 * MARKER_R,
                ));
            }
            for w in px.windows(2) {
                let n = ((w[1].0 - w[0].0).hypot(w[1].1 - w[0].1) / 4.0)
                    .ceil()
                    .max(1.0) as usize;
                for k in 0..=n {
                    let t = k as f64 / n as f64;
                    let (x, y) = (
                        w[0].0 + t * (w[1].0 - w[0].0),
                        w[0].1 + t * (w[1].1 - w[0].1),
                    );
                    out.push(Rect::new(x - 1.5, y - 1.5, 3.0, 3.0));
                }
            }
            for w in run.windows(2) {
                if let (Some(a), Some(b)) = (w[0].2, w[1].2) {
                    let (x0, x1) = (xs.map(w[0].0), xs.map(w[1].0));
                    let (y0, y1) = (ys.map(a.1.max(b.1)), ys.map(a.0.min(b.0)));
                    out.push(Rect::new(
                        x0.min(x1),
                        y0.min(y1),
                        (x1 - x0).abs(),
                        (y1 - y0).abs(),
                    ));
                }
            }
        }
        out
    }
    fn draw(&self, svg: &mut Svg, ctx: &DrawCtx<'_>) {
        let plot = ctx.plot;
        let (Some(tx), Some(ty)) = (&ctx.axes.x, &ctx.axes.y) else {
            return;
        };
        draw_y_axis(svg, ty, plot, &self.y_label, true, ctx.show_y);
        draw_x_axis(svg, tx, plot, &self.x_label, false);
        if self.points().next().is_none() {
            draw_no_data(svg, plot);
            return;
        }
        let (xs, ys) = (x_scale(tx, plot), y_scale(ty, plot));
        svg.raw(&format!("<g clip-path=\"url(#{})\">", ctx.clip_exact));
        for (si, runs) in self.runs.iter().enumerate() {
            for run in runs {
                // Bands over maximal stretches of points that have intervals.
                for stretch in run.split(|p| p.2.is_none()) {
                    if stretch.len() < 2 {
                        continue;
                    }
                    let mut poly: Vec<(f64, f64)> = stretch
                        .iter()
                        .map(|p| (xs.map(p.0), ys.map(p.2.map(|c| c.1).unwrap_or(p.1))))
                        .collect();
                    poly.extend(
                        stretch
                            .iter()
                            .rev()
                            .map(|p| (xs.map(p.0), ys.map(p.2.map(|c| c.0).unwrap_or(p.1)))),
                    );
                    svg.polygon(&poly, ctx.styles[si].color, BAND_OPACITY);
                }
            }
        }
        svg.raw("</g>");
        svg.raw(&format!("<g clip-path=\"url(#{})\">", ctx.clip_loose));
        for (si, runs) in self.runs.iter().enumerate() {
            for run in runs {
                let pts: Vec<(f64, f64)> = run.iter().map(|p| (xs.map(p.0), ys.map(p.1))).collect();
                svg.polyline(&pts, ctx.styles[si].color, 1.8);
            }
        }
        if self.markers {
            for (si, runs) in self.runs.iter().enumerate() {
                for p in runs.iter().flatten() {
                    svg.marker(&ctx.styles[si], xs.map(p.0), ys.map(p.1), MARKER_R);
                }
            }
        } else {
            // A lone point has no line: give it a marker anyway.
            for (si, runs) in self.runs.iter().enumerate() {
                for run in runs.iter().filter(|r| r.len() == 1) {
                    svg.marker(
                        &ctx.styles[si],
                        xs.map(run[0].0),
                        ys.map(run[0].1),
                        MARKER_R,
                    );
                }
            }
        }
        svg.raw("</g>");
    }
}

/// Grows a plot area so the axis titles' longest words fit along it.
pub(crate) fn fit_labels(size: (f64, f64), x_label: &str, y_label: &str) -> (f64, f64) {
    (
        size.0
            .max(text::longest_word(x_label, LABEL_SIZE, false) + 4.0),
        size.1
            .max(text::longest_word(y_label, LABEL_SIZE, false) + 4.0),
    )
}

/// Margins of a chart with numeric x and y axes.
pub(crate) fn xy_margins(
    axes: &Axes,
    plot_w: f64,
    plot_h: f64,
    show_y: bool,
    x_label: &str,
    y_label: &str,
) -> Margins {
    let (oh0, oh1) = axes
        .x
        .as_ref()
        .map(|t| x_overhang(t, plot_w))
        .unwrap_or((0.0, 0.0));
    let yw = axes
        .y
        .as_ref()
        .map(|t| y_axis_width(t, y_label, plot_h, show_y))
        .unwrap_or(0.0);
    Margins {
        left: yw.max(oh0),
        right: oh1.max(6.0),
        top: TICK_SIZE * 0.6,
        bottom: x_axis_height(x_label, plot_w),
    }
}
