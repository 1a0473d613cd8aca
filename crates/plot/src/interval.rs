//! Interval (forest / dot-and-whisker) plots: categories down the y axis, a point
//! estimate and its confidence interval each, several series dodged side by side.

use crate::panel::*;
use crate::rows::GroupedRows;
use crate::svg::Svg;
use crate::text::clean_label;
use crate::Legend;

/// One category's point estimate and confidence interval.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    pub category: String,
    pub value: f64,
    /// Interval bounds, in either order; `None` for a point without an interval. A
    /// non-finite bound drops the whisker (with a note).
    pub ci: Option<(f64, f64)>,
}

impl Estimate {
    pub fn new(category: impl Into<String>, value: f64, lo: f64, hi: f64) -> Self {
        Estimate {
            category: category.into(),
            value,
            ci: Some((lo, hi)),
        }
    }

    /// A point estimate without an interval.
    pub fn point(category: impl Into<String>, value: f64) -> Self {
        Estimate {
            category: category.into(),
            value,
            ci: None,
        }
    }
}

impl<S: Into<String>> From<(S, f64, f64, f64)> for Estimate {
    fn from((c, v, lo, hi): (S, f64, f64, f64)) -> Self {
        Estimate::new(c, v, lo, hi)
    }
}

/// A horizontal interval plot.
///
/// Categories run top to bottom in the order of [`IntervalPlot::group`] calls, then in
/// order of first appearance across series. Each series gets a colour and a marker
/// shape, and within a category row the series are dodged vertically in series order.
#[derive(Clone, Debug, PartialEq)]
pub struct IntervalPlot {
    pub(crate) title: String,
    pub(crate) x_label: String,
    pub(crate) series: Vec<(String, Vec<Estimate>)>,
    pub(crate) groups: Vec<(String, Vec<String>)>,
    pub(crate) reference: Option<f64>,
    pub(crate) x_range: Option<(f64, f64)>,
    pub(crate) width: f64,
    pub(crate) legend: Legend,
}

impl IntervalPlot {
    pub fn new(title: impl Into<String>) -> Self {
        IntervalPlot {
            title: title.into(),
            x_label: String::new(),
            series: Vec::new(),
            groups: Vec::new(),
            reference: Some(0.0),
            x_range: None,
            width: 340.0,
            legend: Legend::Auto,
        }
    }

    /// Title of the x axis (the estimate's scale).
    pub fn x_label(mut self, label: impl Into<String>) -> Self {
        self.x_label = label.into();
        self
    }

    /// Adds a series; series are dodged within each category row in the order added.
    pub fn series<E: Into<Estimate>>(
        mut self,
        name: impl Into<String>,
        points: impl IntoIterator<Item = E>,
    ) -> Self {
        self.series
            .push((name.into(), points.into_iter().map(Into::into).collect()));
        self
    }

    /// Adds a group of categories under a bold header, in this order. Categories with
    /// data but in no group are listed last, under the header "Other".
    pub fn group<S: Into<String>>(
        mut self,
        header: impl Into<String>,
        categories: impl IntoIterator<Item = S>,
    ) -> Self {
        self.groups.push((
            header.into(),
            categories.into_iter().map(Into::into).collect(),
        ));
        self
    }

    /// Position of the dashed reference line (default `Some(0.0)`); the axis always
    /// includes it.
    pub fn reference(mut self, at: Option<f64>) -> Self {
        self.reference = at;
        self
    }

    /// Fixes the x axis range instead of fitting it to the intervals; data outside it
    /// are clipped and noted.
    pub fn x_range(mut self, lo: f64, hi: f64) -> Self {
        self.x_range = Some((lo, hi));
        self
    }

    /// Width of the plot area in pixels (default 340; margins are added around it).
    pub fn width(mut self, px: f64) -> Self {
        if px.is_finite() {
            self.width = px.clamp(80.0, 4000.0);
        }
        self
    }

    pub fn legend(mut self, legend: Legend) -> Self {
        self.legend = legend;
        self
    }
}

chart_output!(IntervalPlot, Interval);

struct Point {
    row: usize,
    series: usize,
    v: f64,
    ci: Option<(f64, f64)>,
}

pub(crate) struct IntervalPanel {
    title: String,
    x_label: String,
    names: Vec<String>,
    /// The category rows; items carry nothing, points name their row.
    rows: GroupedRows<()>,
    points: Vec<Point>,
    reference: Option<f64>,
    x_fixed: Option<(f64, f64)>,
    width: f64,
}

impl IntervalPanel {
    pub(crate) fn new(p: &IntervalPlot, notes: &mut Vec<String>) -> Self {
        let names: Vec<String> = p.series.iter().map(|(n, _)| clean_label(n)).collect();
        let mut rows = GroupedRows::new(!p.groups.is_empty());
        let mut index: Vec<(String, usize)> = Vec::new();
        let find = |index: &Vec<(String, usize)>, c: &str| {
            index.iter().find(|(k, _)| k == c).map(|(_, i)| *i)
        };
        for (h, cats) in &p.groups {
            rows.push_header(clean_label(h));
            for c in cats {
                let c = clean_label(c);
                if find(&index, &c).is_none() {
                    let row = rows.push_item(c.clone(), ());
                    index.push((c, row));
                }
            }
        }
        let mut other_header = false;
        let mut points = Vec::new();
        let x_fixed = usable_range(p.x_range);
        for (si, (_, pts)) in p.series.iter().enumerate() {
            let (mut bad_v, mut bad_ci, mut dup, mut outside) = (vec![], vec![], vec![], vec![]);
            for e in pts {
                let c = clean_label(&e.category);
                let row = match find(&index, &c) {
                    Some(r) => r,
                    None => {
                        if rows.grouped() && !other_header {
                            rows.push_header("Other".to_string());
                            other_header = true;
                        }
                        let row = rows.push_item(c.clone(), ());
                        index.push((c.clone(), row));
                        row
                    }
                };
                if !e.value.is_finite() {
                    bad_v.push(c);
                    continue;
                }
                if points
                    .iter()
                    .any(|q: &Point| q.row == row && q.series == si)
                {
                    dup.push(c);
                    continue;
                }
                if let Some((a, b)) = x_fixed {
                    if e.value < a || e.value > b {
                        outside.push(c.clone());
                    }
                }
                let ci = match e.ci {
                    Some((lo, hi)) if lo.is_finite() && hi.is_finite() => {
                        Some((lo.min(hi), lo.max(hi)))
                    }
                    Some(_) => {
                        bad_ci.push(c);
                        None
                    }
                    None => None,
                };
                points.push(Point {
                    row,
                    series: si,
                    v: e.value,
                    ci,
                });
            }
            let who = series_ctx(&names[si], names.len());
            if !bad_v.is_empty() {
                notes.push(format!(
                    "{who}{} with a non-finite estimate omitted: {}",
                    plural(bad_v.len(), "point", "points"),
                    list_some(&bad_v)
                ));
            }
            if !bad_ci.is_empty() {
                notes.push(format!(
                    "{who}{} drawn without an interval (non-finite bound): {}",
                    plural(bad_ci.len(), "point", "points"),
                    list_some(&bad_ci)
                ));
            }
            if !dup.is_empty() {
                notes.push(format!(
                    "{who}{} ignored: {}",
                    plural(dup.len(), "duplicate category", "duplicate categories"),
                    list_some(&dup)
                ));
            }
            if !outside.is_empty() {
                notes.push(format!(
                    "{who}{} outside the axis range not shown: {}",
                    plural(outside.len(), "estimate", "estimates"),
                    list_some(&outside)
                ));
            }
            if pts.is_empty() {
                notes.push(format!("series \u{201C}{}\u{201D} has no data", names[si]));
            }
        }
        IntervalPanel {
            title: clean_label(&p.title),
            x_label: clean_label(&p.x_label),
            names,
            rows,
            points,
            reference: p.reference.filter(|r| r.is_finite()),
            x_fixed,
            width: p.width,
        }
    }

    fn cat_height(&self) -> f64 {
        let n = self.names.len().max(1) as f64;
        (9.0 * n + 12.0).max(22.0)
    }

    /// (top, height) of each row within the plot area.
    fn row_spans(&self) -> Vec<(f64, f64)> {
        self.rows.spans(0.0, self.cat_height())
    }
}

fn series_ctx(name: &str, n: usize) -> String {
    if n > 1 || !name.is_empty() {
        format!("series \u{201C}{name}\u{201D}: ")
    } else {
        String::new()
    }
}

impl Panel for IntervalPanel {
    fn kind(&self) -> Kind {
        Kind::Interval
    }
    fn glyph(&self) -> Glyph {
        Glyph::Interval
    }
    fn title(&self) -> &str {
        &self.title
    }
    fn series_names(&self) -> Vec<String> {
        self.names.clone()
    }
    fn x_extent(&self) -> Option<(f64, f64)> {
        let mut acc = None;
        for p in &self.points {
            extend(&mut acc, p.v);
            if let Some((a, b)) = p.ci {
                extend(&mut acc, a);
                extend(&mut acc, b);
            }
        }
        if let Some(r) = self.reference {
            extend(&mut acc, r);
        }
        acc
    }
    fn y_extent(&self) -> Option<(f64, f64)> {
        None
    }
    fn x_fixed(&self) -> Option<(f64, f64)> {
        self.x_fixed
    }
    fn y_fixed(&self) -> Option<(f64, f64)> {
        None
    }
    fn plot_size(&self) -> (f64, f64) {
        self.rows
            .plot_size(&self.row_spans(), self.width, &self.x_label)
    }
    fn y_categories(&self) -> Option<Vec<String>> {
        Some(self.rows.keys())
    }
    fn margins(&self, axes: &Axes, plot_w: f64, _plot_h: f64, show_y: bool) -> Margins {
        self.rows.margins(axes, plot_w, show_y, &self.x_label)
    }
    fn draw(&self, svg: &mut Svg, ctx: &DrawCtx<'_>) {
        let plot = ctx.plot;
        let Some(t) = ctx.axes.x.as_ref() else { return };
        let spans = self.row_spans();
        let xs = self.rows.draw_frame(svg, plot, &spans, t, &self.x_label);
        if let Some(r) = self.reference {
            if r >= t.lo && r <= t.hi {
                let x = xs.map(r);
                svg.dashed_line(x, plot.y, x, plot.bottom(), "#777777", 1.0);
            }
        }
        if ctx.show_y {
            self.rows.draw_labels(svg, plot, &spans);
        }
        if self.points.is_empty() {
            draw_no_data(svg, plot);
            return;
        }
        let n = self.names.len().max(1) as f64;
        let dodge = if n > 1.0 {
            ((self.cat_height() - 12.0) / n).min(10.0)
        } else {
            0.0
        };
        svg.raw(&format!("<g clip-path=\"url(#{})\">", ctx.clip_loose));
        for p in &self.points {
            let style = &ctx.styles[p.series];
            let (top, h) = spans[p.row];
            let y = plot.y + top + h / 2.0 + (p.series as f64 - (n - 1.0) / 2.0) * dodge;
            if let Some((a, b)) = p.ci {
                let cap = if n > 1.0 { 2.5 } else { 3.5 };
                svg.whisker(xs.map(a), y, xs.map(b), y, cap, style.color, 1.5);
            }
            svg.marker(style, xs.map(p.v), y, 3.8);
        }
        svg.raw("</g>");
    }
}
