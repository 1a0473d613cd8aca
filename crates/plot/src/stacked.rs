//! Horizontal stacked bars: one bar per row, from the lower end of the axis, split into
//! segments (e.g. refuses / complies / complies with alignment-faking reasoning), each
//! labelled inside with its share when it is wide enough; hatched segments read in
//! greyscale too.

use std::fmt::Write as _;

use crate::panel::*;
use crate::rows::{self, GroupedRows, Row, MIN_PLOT_H};
use crate::style::ink_on;
use crate::svg::{centred_baseline, num, Anchor, Svg, Text, GREY, INK};
use crate::text::{self, clean_label};
use crate::Legend;

/// A pattern of stripes drawn over a segment's colour (in the colour of its labels), so
/// that segments differ in greyscale print too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hatch {
    /// Plain colour.
    #[default]
    None,
    /// Stripes at 45°.
    Diagonal,
    /// Stripes at 45° and −45°.
    Cross,
}

/// One bar of a [`StackedBarChart`]: its label, one value per segment (in segment
/// order) and, optionally, the group it is listed under.
#[derive(Clone, Debug, PartialEq)]
pub struct StackedRow {
    pub label: String,
    /// Width of each segment, in axis units (shares of the axis range).
    pub values: Vec<f64>,
    /// Header the row is listed under (`None`: no header, or "Other" when other rows
    /// have one).
    pub group: Option<String>,
}

impl StackedRow {
    pub fn new(label: impl Into<String>, values: impl IntoIterator<Item = f64>) -> Self {
        StackedRow {
            label: label.into(),
            values: values.into_iter().collect(),
            group: None,
        }
    }
    /// Lists the row under a bold group header (e.g. the prompt variant).
    pub fn group(mut self, header: impl Into<String>) -> Self {
        self.group = Some(header.into());
        self
    }
}

/// A horizontal stacked bar chart: rows top to bottom (gathered under their group
/// headers, groups in order of first appearance), each one bar that starts at the lower
/// end of the x range and is split into segments left to right in the order of
/// [`StackedBarChart::segment`] calls. A segment shows its share of the range (`55%`)
/// inside when the label fits; zero-width segments are not drawn.
///
/// A row is not drawn (its label stays, the bar reads "omitted", and a note says why)
/// when its number of values differs from the number of segments, when a value is
/// non-finite or negative, or when the values sum to more than the x range.
#[derive(Clone, Debug, PartialEq)]
pub struct StackedBarChart {
    pub(crate) title: String,
    pub(crate) x_label: String,
    pub(crate) segments: Vec<(String, Hatch)>,
    pub(crate) rows: Vec<StackedRow>,
    pub(crate) x_range: Option<(f64, f64)>,
    pub(crate) width: f64,
    pub(crate) bar_height: f64,
    pub(crate) legend: Legend,
}

impl StackedBarChart {
    pub fn new(title: impl Into<String>) -> Self {
        StackedBarChart {
            title: title.into(),
            x_label: String::new(),
            segments: Vec::new(),
            rows: Vec::new(),
            x_range: None,
            width: 320.0,
            bar_height: 20.0,
            legend: Legend::Auto,
        }
    }
    /// Title of the x axis.
    pub fn x_label(mut self, label: impl Into<String>) -> Self {
        self.x_label = label.into();
        self
    }
    /// The x axis range (default 0 to 1; e.g. 0 to 100 for percentages): bars start at
    /// `lo`, and a segment's label is its share of `hi - lo`. An unusable range
    /// (non-finite or empty) is ignored.
    pub fn x_range(mut self, lo: f64, hi: f64) -> Self {
        self.x_range = Some((lo, hi));
        self
    }
    /// Adds a segment: segments stack left to right, and are listed in the legend, in
    /// the order added.
    pub fn segment(mut self, name: impl Into<String>, hatch: Hatch) -> Self {
        self.segments.push((name.into(), hatch));
        self
    }
    /// Adds a row (a bar) below the others of its group.
    pub fn row(mut self, row: StackedRow) -> Self {
        self.rows.push(row);
        self
    }
    /// Width of the plot area in pixels (default 320; margins are added around it).
    pub fn width(mut self, px: f64) -> Self {
        if px.is_finite() {
            self.width = px.clamp(80.0, 4000.0);
        }
        self
    }
    /// Height of one bar in pixels (default 20); shares are printed inside bars at
    /// least 14 pixels high.
    pub fn bar_height(mut self, px: f64) -> Self {
        if px.is_finite() {
            self.bar_height = px.clamp(6.0, 200.0);
        }
        self
    }
    pub fn legend(mut self, legend: Legend) -> Self {
        self.legend = legend;
        self
    }
}

chart_output!(StackedBarChart, Stacked);

pub(crate) struct StackedPanel {
    title: String,
    x_label: String,
    names: Vec<String>,
    hatches: Vec<Hatch>,
    /// The bars: each one's values, `None` when left out.
    rows: GroupedRows<Option<Vec<f64>>>,
    range: (f64, f64),
    width: f64,
    bar_h: f64,
}

/// Space between two bars.
const ROW_GAP: f64 = 10.0;
/// Font size of the shares printed inside segments.
const SHARE_SIZE: f64 = 11.0;
/// Room kept between a share label and its segment's ends.
const SHARE_PAD: f64 = 3.0;
/// Fill of the part of a bar's range its segments leave empty.
const TRACK: &str = "#f2f2f2";
/// Segments narrower than this (in pixels) get no white seam beside them.
const SEAM_MIN: f64 = 3.0;
/// Period of hatch stripes in pixels, and the width of one stripe.
const HATCH_PERIOD: f64 = 6.0;
const HATCH_STRIPE: f64 = 2.2;
const HATCH_OPACITY: f64 = 0.45;

impl StackedPanel {
    pub(crate) fn new(c: &StackedBarChart, notes: &mut Vec<String>) -> Self {
        let names: Vec<String> = c.segments.iter().map(|(n, _)| clean_label(n)).collect();
        let hatches: Vec<Hatch> = c.segments.iter().map(|(_, h)| *h).collect();
        let range = usable_range(c.x_range).unwrap_or((0.0, 1.0));
        let total = range.1 - range.0;
        // Groups in order of first appearance; rows without a group last.
        let mut groups: Vec<Option<String>> = Vec::new();
        for r in &c.rows {
            let g = r.group.as_deref().map(clean_label);
            if g.is_some() && !groups.contains(&g) {
                groups.push(g);
            }
        }
        let grouped = !groups.is_empty();
        if c.rows.iter().any(|r| r.group.is_none()) {
            groups.push(None);
        }
        let (mut count, mut bad, mut neg, mut over) = (vec![], vec![], vec![], vec![]);
        let mut rows = GroupedRows::new(grouped);
        for g in &groups {
            if grouped {
                rows.push_header(g.clone().unwrap_or_else(|| "Other".to_string()));
            }
            for r in c
                .rows
                .iter()
                .filter(|r| r.group.as_deref().map(clean_label) == *g)
            {
                let label = clean_label(&r.label);
                let who = match g {
                    Some(g) => format!("{g}: {label}"),
                    None => label.clone(),
                };
                let v = &r.values;
                let sum: f64 = v.iter().sum();
                let ok = if v.len() != names.len() {
                    count.push(who);
                    false
                } else if v.iter().any(|x| !x.is_finite()) {
                    bad.push(who);
                    false
                } else if v.iter().any(|x| *x < 0.0) {
                    neg.push(who);
                    false
                } else if sum > total * (1.0 + 1e-9) {
                    over.push(who);
                    false
                } else {
                    true
                };
                rows.push_item(label, ok.then(|| v.clone()));
            }
        }
        let rows_n = |v: &Vec<String>| plural(v.len(), "row", "rows");
        if !count.is_empty() {
            notes.push(format!(
                "{} without exactly {} (one per segment) not drawn: {}",
                rows_n(&count),
                plural(names.len(), "value", "values"),
                list_some(&count)
            ));
        }
        if !bad.is_empty() {
            notes.push(format!(
                "{} with a non-finite value not drawn: {}",
                rows_n(&bad),
                list_some(&bad)
            ));
        }
        if !neg.is_empty() {
            notes.push(format!(
                "{} with a negative value not drawn: {}",
                rows_n(&neg),
                list_some(&neg)
            ));
        }
        if !over.is_empty() {
            notes.push(format!(
                "{} whose values sum to more than the axis range ({total}) not drawn: {}",
                rows_n(&over),
                list_some(&over)
            ));
        }
        StackedPanel {
            title: clean_label(&c.title),
            x_label: clean_label(&c.x_label),
            names,
            hatches,
            rows,
            range,
            width: c.width,
            bar_h: c.bar_height,
        }
    }

    /// (top, height) of each row within the plot area; a chart lower than the least
    /// plot height is centred in it.
    fn row_spans(&self) -> Vec<(f64, f64)> {
        let item_h = self.bar_h + ROW_GAP;
        let h = rows::height(&self.rows.spans(0.0, item_h));
        self.rows.spans(((MIN_PLOT_H - h) / 2.0).max(0.0), item_h)
    }
}

/// A segment's share of the axis range, as printed inside it.
fn share_label(v: f64, total: f64) -> String {
    let pct = v / total * 100.0;
    if pct > 0.0 && pct < 0.5 {
        "<1%".to_string()
    } else {
        format!("{pct:.0}%")
    }
}

/// The `<pattern>` a hatched segment of colour `color` is overlaid with.
pub(crate) fn hatch_pattern(svg: &mut Svg, id: &str, hatch: Hatch, color: &str) {
    let (p, s) = (num(HATCH_PERIOD), num(HATCH_STRIPE));
    let d = match hatch {
        Hatch::None => return,
        Hatch::Diagonal => format!("M0 0h{s}v{p}h-{s}z"),
        Hatch::Cross => format!("M0 0h{s}v{p}h-{s}z M0 0h{p}v{s}h-{p}z"),
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<pattern id=\"{id}\" patternUnits=\"userSpaceOnUse\" width=\"{p}\" height=\"{p}\" patternTransform=\"rotate(45)\"><path d=\"{d}\" fill=\"{}\" fill-opacity=\"{}\"/></pattern>",
        ink_on(color),
        num(HATCH_OPACITY)
    );
    svg.raw(&out);
}

impl Panel for StackedPanel {
    fn kind(&self) -> Kind {
        Kind::Stacked
    }
    fn glyph(&self) -> Glyph {
        Glyph::Segment(Hatch::None)
    }
    fn series_glyph(&self, i: usize) -> Glyph {
        Glyph::Segment(self.hatches.get(i).copied().unwrap_or_default())
    }
    fn title(&self) -> &str {
        &self.title
    }
    fn series_names(&self) -> Vec<String> {
        self.names.clone()
    }
    fn x_extent(&self) -> Option<(f64, f64)> {
        Some(self.range)
    }
    fn y_extent(&self) -> Option<(f64, f64)> {
        None
    }
    fn x_fixed(&self) -> Option<(f64, f64)> {
        Some(self.range)
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
        if ctx.show_y {
            self.rows.draw_labels(svg, plot, &spans);
        }
        if !self.rows.iter().any(|r| matches!(r, Row::Item(_, Some(_)))) {
            draw_no_data(svg, plot);
            return;
        }
        let (lo, hi) = self.range;
        let total = hi - lo;
        let x_lo = xs.map(lo);
        // Bars: the range's track, then the segments (hatch over colour), then the
        // white seams between segments.
        let mut shares = Vec::new();
        let mut omitted = Vec::new();
        svg.raw(&format!("<g clip-path=\"url(#{})\">", ctx.clip_exact));
        for (r, (top, h)) in self.rows.iter().zip(&spans) {
            let Row::Item(_, vals) = r else { continue };
            let cy = plot.y + top + h / 2.0;
            let y = cy - self.bar_h / 2.0;
            let Some(vals) = vals else {
                omitted.push(cy);
                continue;
            };
            svg.raw(&format!(
                "<rect class=\"track\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{TRACK}\"/>",
                num(x_lo),
                num(y),
                num(xs.map(hi) - x_lo),
                num(self.bar_h)
            ));
            let mut acc = lo;
            // White seams between segments, except next to slivers they would hide.
            let mut seams = Vec::new();
            let mut prev_w = 0.0;
            for (k, v) in vals.iter().enumerate() {
                let (x0, x1) = (xs.map(acc), xs.map(acc + v));
                acc += v;
                if *v <= 0.0 {
                    continue;
                }
                let color = ctx.styles[k].color;
                svg.raw(&format!(
                    "<rect class=\"segment\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{color}\"/>",
                    num(x0),
                    num(y),
                    num(x1 - x0),
                    num(self.bar_h)
                ));
                let pattern = ctx.patterns.get(k).and_then(|p| p.as_deref());
                if let Some(id) = pattern {
                    svg.raw(&format!(
                        "<rect class=\"hatch\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"url(#{id})\"/>",
                        num(x0),
                        num(y),
                        num(x1 - x0),
                        num(self.bar_h)
                    ));
                }
                if prev_w >= SEAM_MIN && x1 - x0 >= SEAM_MIN {
                    seams.push(x0);
                }
                prev_w = x1 - x0;
                let label = share_label(*v, total);
                let fits_h = self.bar_h >= (text::ASCENT + text::DESCENT) * SHARE_SIZE + 1.0;
                if fits_h && text::width(&label, SHARE_SIZE, false) + 2.0 * SHARE_PAD <= x1 - x0 {
                    shares.push(((x0 + x1) / 2.0, cy, label, color, pattern.is_some()));
                }
            }
            for x in seams {
                svg.line(x, y, x, y + self.bar_h, "#ffffff", 1.0);
            }
        }
        svg.raw("</g>");
        // The bars' common start.
        svg.line(x_lo, plot.y, x_lo, plot.bottom(), INK, 1.0);
        for (x, cy, label, color, hatched) in &shares {
            if *hatched {
                // A chip of the plain colour keeps the stripes off the digits.
                let w = text::width(label, SHARE_SIZE, false) + 2.0 * (SHARE_PAD - 1.0);
                let h = (text::ASCENT + text::DESCENT) * SHARE_SIZE;
                svg.raw(&format!(
                    "<rect class=\"chip\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"2\" fill=\"{color}\"/>",
                    num(x - w / 2.0),
                    num(cy - h / 2.0),
                    num(w),
                    num(h)
                ));
            }
            svg.text(
                Text::new(*x, centred_baseline(*cy, SHARE_SIZE), label, SHARE_SIZE)
                    .anchor(Anchor::Middle)
                    .fill(ink_on(color)),
            );
        }
        for cy in omitted {
            svg.text(
                Text::new(
                    x_lo + 6.0,
                    centred_baseline(cy, SHARE_SIZE),
                    "omitted",
                    SHARE_SIZE,
                )
                .fill(GREY),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_whole_percentages_of_the_range() {
        assert_eq!(share_label(0.55, 1.0), "55%");
        assert_eq!(share_label(30.0, 100.0), "30%");
        assert_eq!(share_label(0.004, 1.0), "<1%");
        assert_eq!(share_label(1.0, 1.0), "100%");
    }
}
