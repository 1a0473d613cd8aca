//! Grouped bar charts with error bars: categories along x, one bar per series in each.

use crate::panel::*;
use crate::svg::{num, Anchor, Svg, Text, GREY, INK};
use crate::text::{self, clean_label};
use crate::Legend;

/// One bar: a category's value and an optional interval.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    pub category: String,
    pub value: f64,
    /// Error bar bounds, in either order.
    pub ci: Option<(f64, f64)>,
}

impl Bar {
    pub fn new(category: impl Into<String>, value: f64) -> Self {
        Bar {
            category: category.into(),
            value,
            ci: None,
        }
    }
    pub fn ci(mut self, lo: f64, hi: f64) -> Self {
        self.ci = Some((lo, hi));
        self
    }
}

impl<S: Into<String>> From<(S, f64)> for Bar {
    fn from((c, v): (S, f64)) -> Self {
        Bar::new(c, v)
    }
}

impl<S: Into<String>> From<(S, f64, f64, f64)> for Bar {
    /// `(category, value, lo, hi)`.
    fn from((c, v, lo, hi): (S, f64, f64, f64)) -> Self {
        Bar::new(c, v).ci(lo, hi)
    }
}

/// A grouped bar chart. Categories run left to right in order of first appearance
/// (or as given by [`BarChart::categories`]); within a category the series' bars stand
/// side by side in series order. The value axis always includes 0, where bars start.
#[derive(Clone, Debug, PartialEq)]
pub struct BarChart {
    pub(crate) title: String,
    pub(crate) x_label: String,
    pub(crate) y_label: String,
    pub(crate) series: Vec<(String, Vec<Bar>)>,
    pub(crate) categories: Vec<String>,
    pub(crate) y_range: Option<(f64, f64)>,
    pub(crate) bar_width: f64,
    pub(crate) height: f64,
    pub(crate) legend: Legend,
}

impl BarChart {
    pub fn new(title: impl Into<String>) -> Self {
        BarChart {
            title: title.into(),
            x_label: String::new(),
            y_label: String::new(),
            series: Vec::new(),
            categories: Vec::new(),
            y_range: None,
            bar_width: 16.0,
            height: 220.0,
            legend: Legend::Auto,
        }
    }
    /// Title under the category labels.
    pub fn x_label(mut self, label: impl Into<String>) -> Self {
        self.x_label = label.into();
        self
    }
    pub fn y_label(mut self, label: impl Into<String>) -> Self {
        self.y_label = label.into();
        self
    }
    pub fn series<B: Into<Bar>>(
        mut self,
        name: impl Into<String>,
        bars: impl IntoIterator<Item = B>,
    ) -> Self {
        self.series
            .push((name.into(), bars.into_iter().map(Into::into).collect()));
        self
    }
    /// Category order (categories with data not listed here follow, in order of first
    /// appearance).
    pub fn categories<S: Into<String>>(mut self, order: impl IntoIterator<Item = S>) -> Self {
        self.categories = order.into_iter().map(Into::into).collect();
        self
    }
    /// Fixes the value axis range; drawing is clipped to it.
    pub fn y_range(mut self, lo: f64, hi: f64) -> Self {
        self.y_range = Some((lo, hi));
        self
    }
    /// Width of one bar in pixels (default 16); the plot is as wide as the bars need.
    pub fn bar_width(mut self, px: f64) -> Self {
        if px.is_finite() {
            self.bar_width = px.clamp(2.0, 200.0);
        }
        self
    }
    /// Height of the plot area in pixels (default 220).
    pub fn height(mut self, px: f64) -> Self {
        if px.is_finite() {
            self.height = px.clamp(60.0, 4000.0);
        }
        self
    }
    pub fn legend(mut self, legend: Legend) -> Self {
        self.legend = legend;
        self
    }
}

chart_output!(BarChart, Bar);

struct B {
    cat: usize,
    series: usize,
    v: f64,
    ci: Option<(f64, f64)>,
}

pub(crate) struct BarPanel {
    title: String,
    x_label: String,
    y_label: String,
    names: Vec<String>,
    cats: Vec<String>,
    bars: Vec<B>,
    y_fixed: Option<(f64, f64)>,
    bar_w: f64,
    height: f64,
}

const CAT_GAP_MIN: f64 = 14.0;
/// The height of a bar whose value is zero (or rounds to less on screen).
const ZERO_BAR_H: f64 = 2.5;

impl BarPanel {
    pub(crate) fn new(c: &BarChart, notes: &mut Vec<String>) -> Self {
        let names: Vec<String> = c.series.iter().map(|(n, _)| clean_label(n)).collect();
        let mut cats: Vec<String> = Vec::new();
        for k in &c.categories {
            let k = clean_label(k);
            if !cats.contains(&k) {
                cats.push(k);
            }
        }
        let y_fixed = usable_range(c.y_range);
        let mut bars = Vec::new();
        for (si, (_, bs)) in c.series.iter().enumerate() {
            let who = if names.len() > 1 || !names[si].is_empty() {
                format!("series \u{201C}{}\u{201D}: ", names[si])
            } else {
                String::new()
            };
            let (mut bad, mut bad_ci, mut dup, mut outside) = (vec![], vec![], vec![], vec![]);
            for b in bs {
                let k = clean_label(&b.category);
                let cat = match cats.iter().position(|c| *c == k) {
                    Some(i) => i,
                    None => {
                        cats.push(k.clone());
                        cats.len() - 1
                    }
                };
                if !b.value.is_finite() {
                    bad.push(k);
                    continue;
                }
                if bars.iter().any(|x: &B| x.cat == cat && x.series == si) {
                    dup.push(k);
                    continue;
                }
                if y_fixed.is_some_and(|(a, z)| b.value < a || b.value > z) {
                    outside.push(k.clone());
                }
                let ci = match b.ci {
                    Some((a, z)) if a.is_finite() && z.is_finite() => Some((a.min(z), a.max(z))),
                    Some(_) => {
                        bad_ci.push(k);
                        None
                    }
                    None => None,
                };
                bars.push(B {
                    cat,
                    series: si,
                    v: b.value,
                    ci,
                });
            }
            if !bad.is_empty() {
                notes.push(format!(
                    "{who}{} with a non-finite value omitted: {}",
                    plural(bad.len(), "bar", "bars"),
                    list_some(&bad)
                ));
            }
            if !bad_ci.is_empty() {
                notes.push(format!(
                    "{who}{} omitted (non-finite bound): {}",
                    plural(bad_ci.len(), "error bar", "error bars"),
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
                    "{who}{} outside the axis range clipped: {}",
                    plural(outside.len(), "bar", "bars"),
                    list_some(&outside)
                ));
            }
            if bs.is_empty() {
                notes.push(format!("series \u{201C}{}\u{201D} has no data", names[si]));
            }
        }
        // A category a series has no bar in is marked on the chart (a grey cross on the
        // baseline) and named here, so that missing data never looks like a zero.
        if names.len() > 1 {
            for (si, name) in names.iter().enumerate() {
                if c.series[si].1.is_empty() {
                    continue;
                }
                let missing: Vec<String> = (0..cats.len())
                    .filter(|&ci| !bars.iter().any(|b: &B| b.cat == ci && b.series == si))
                    .map(|ci| cats[ci].clone())
                    .collect();
                if !missing.is_empty() {
                    notes.push(format!(
                        "series \u{201C}{name}\u{201D} has no data for {} (\u{00D7} on the baseline): {}",
                        plural(missing.len(), "category", "categories"),
                        list_some(&missing)
                    ));
                }
            }
        }
        BarPanel {
            title: clean_label(&c.title),
            x_label: clean_label(&c.x_label),
            y_label: clean_label(&c.y_label),
            names,
            cats,
            bars,
            y_fixed,
            bar_w: c.bar_width,
            height: c.height,
        }
    }

    fn bars_w(&self) -> f64 {
        self.names.len().max(1) as f64 * self.bar_w
    }

    /// Width of one category slot when the plot is `plot_w` wide.
    fn slot(&self, plot_w: f64) -> f64 {
        plot_w / self.cats.len().max(1) as f64
    }

    fn cat_lines(&self, plot_w: f64) -> Vec<Vec<String>> {
        let slot = self.slot(plot_w);
        self.cats
            .iter()
            .map(|c| text::wrap(c, TICK_SIZE, false, slot - 6.0))
            .collect()
    }
}

impl Panel for BarPanel {
    fn kind(&self) -> Kind {
        Kind::Bar
    }
    fn glyph(&self) -> Glyph {
        Glyph::Bar
    }
    fn title(&self) -> &str {
        &self.title
    }
    fn series_names(&self) -> Vec<String> {
        self.names.clone()
    }
    fn x_extent(&self) -> Option<(f64, f64)> {
        None
    }
    fn y_extent(&self) -> Option<(f64, f64)> {
        let mut acc = Some((0.0, 0.0));
        for b in &self.bars {
            extend(&mut acc, b.v);
            if let Some((a, z)) = b.ci {
                extend(&mut acc, a);
                extend(&mut acc, z);
            }
        }
        acc
    }
    fn x_fixed(&self) -> Option<(f64, f64)> {
        None
    }
    fn y_fixed(&self) -> Option<(f64, f64)> {
        self.y_fixed
    }
    fn plot_size(&self) -> (f64, f64) {
        let gap = self.bar_w.max(CAT_GAP_MIN);
        let longest_word = self
            .cats
            .iter()
            .flat_map(|c| c.split(' '))
            .map(|w| text::width(w, TICK_SIZE, false))
            .fold(0.0, f64::max);
        // Wide enough for the bars and the longest word of any label; long labels
        // wrap to at most about three words' width.
        let slot = (self.bars_w() + gap).max(longest_word + 8.0).max(
            self.cats
                .iter()
                .map(|c| text::width(c, TICK_SIZE, false) / 3.0 + 8.0)
                .fold(0.0, f64::max),
        );
        crate::line::fit_labels(
            (slot * self.cats.len().max(1) as f64, self.height),
            &self.x_label,
            &self.y_label,
        )
    }
    fn margins(&self, axes: &Axes, plot_w: f64, plot_h: f64, show_y: bool) -> Margins {
        let yw = axes
            .y
            .as_ref()
            .map(|t| y_axis_width(t, &self.y_label, plot_h, show_y))
            .unwrap_or(0.0);
        let slot = self.slot(plot_w);
        let lines = self.cat_lines(plot_w);
        let n = lines.iter().map(Vec::len).max().unwrap_or(0);
        let widest = lines
            .iter()
            .flatten()
            .map(|l| text::width(l, TICK_SIZE, false))
            .fold(0.0, f64::max);
        let overhang = ((widest - slot) / 2.0).max(0.0) + 2.0;
        let mut bottom = TICK_LEN + 3.0 + lines_h(n, TICK_SIZE);
        let xl = text::wrap(&self.x_label, LABEL_SIZE, false, plot_w.max(60.0));
        if !xl.is_empty() {
            bottom += GAP + lines_h(xl.len(), LABEL_SIZE);
        }
        Margins {
            left: yw.max(overhang),
            right: overhang.max(6.0),
            top: TICK_SIZE * 0.6,
            bottom: bottom + 2.0,
        }
    }
    fn draw(&self, svg: &mut Svg, ctx: &DrawCtx<'_>) {
        let plot = ctx.plot;
        let Some(ty) = &ctx.axes.y else { return };
        draw_y_axis(svg, ty, plot, &self.y_label, true, ctx.show_y);
        let ys = y_scale(ty, plot);
        let slot = self.slot(plot.w);
        // Category labels.
        let lines = self.cat_lines(plot.w);
        let mut max_lines = 0;
        for (i, ls) in lines.iter().enumerate() {
            let cx = plot.x + slot * (i as f64 + 0.5);
            let mut y = plot.bottom() + TICK_LEN + 3.0 + text::ASCENT * TICK_SIZE;
            for l in ls {
                svg.text(Text::new(cx, y, l, TICK_SIZE).anchor(Anchor::Middle));
                y += line_h(TICK_SIZE);
            }
            max_lines = max_lines.max(ls.len());
        }
        let xl = text::wrap(&self.x_label, LABEL_SIZE, false, plot.w.max(60.0));
        let mut y = plot.bottom()
            + TICK_LEN
            + 3.0
            + lines_h(max_lines, TICK_SIZE)
            + GAP
            + text::ASCENT * LABEL_SIZE;
        for l in &xl {
            svg.text(Text::new(plot.x + plot.w / 2.0, y, l, LABEL_SIZE).anchor(Anchor::Middle));
            y += line_h(LABEL_SIZE);
        }
        if self.bars.is_empty() {
            svg.line(plot.x, plot.bottom(), plot.right(), plot.bottom(), INK, 1.0);
            draw_no_data(svg, plot);
            return;
        }
        let zero = 0.0f64.clamp(ty.lo, ty.hi);
        let y0 = ys.map(zero);
        let n = self.names.len().max(1) as f64;
        // Bars grow to fill about 55% of a wide slot, and never fill more than 80%.
        let bw = self.bar_w.max(slot * 0.55 / n).min(slot * 0.8 / n);
        svg.raw(&format!("<g clip-path=\"url(#{})\">", ctx.clip_exact));
        for b in &self.bars {
            let x = plot.x + slot * (b.cat as f64 + 0.5) + (b.series as f64 - n / 2.0) * bw;
            let y1 = ys.map(b.v);
            if (y1 - y0).abs() < ZERO_BAR_H {
                // A zero (or near-zero) value: a stub in the series' colour, outlined, that
                // stands on the baseline where a missing bar would leave nothing.
                svg.raw(&format!(
                    "<rect class=\"zero-bar\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" stroke=\"{INK}\" stroke-width=\"0.8\"/>",
                    num(x + 0.5),
                    num(y0 - ZERO_BAR_H),
                    num(bw - 1.0),
                    num(ZERO_BAR_H),
                    ctx.styles[b.series].color
                ));
                continue;
            }
            svg.rect(
                x + 0.5,
                y1.min(y0),
                bw - 1.0,
                (y1 - y0).abs(),
                ctx.styles[b.series].color,
                None,
            );
        }
        svg.raw("</g>");
        // Missing bars (a series with data elsewhere but none here): a grey cross.
        if self.names.len() > 1 {
            for si in 0..self.names.len() {
                if !self.bars.iter().any(|b| b.series == si) {
                    continue;
                }
                for ci in 0..self.cats.len() {
                    if self.bars.iter().any(|b| b.cat == ci && b.series == si) {
                        continue;
                    }
                    let cx = plot.x + slot * (ci as f64 + 0.5) + (si as f64 - n / 2.0 + 0.5) * bw;
                    let r = (bw * 0.3).clamp(2.0, 4.0);
                    let cy = y0 - r - 1.5;
                    svg.raw("<g class=\"missing-bar\">");
                    svg.line(cx - r, cy - r, cx + r, cy + r, GREY, 1.2);
                    svg.line(cx - r, cy + r, cx + r, cy - r, GREY, 1.2);
                    svg.raw("</g>");
                }
            }
        }
        // Baseline at zero (or at the bottom when zero is not in range).
        svg.line(plot.x, y0, plot.right(), y0, INK, 1.0);
        svg.raw(&format!("<g clip-path=\"url(#{})\">", ctx.clip_loose));
        for b in &self.bars {
            if let Some((a, z)) = b.ci {
                let x =
                    plot.x + slot * (b.cat as f64 + 0.5) + (b.series as f64 - n / 2.0 + 0.5) * bw;
                svg.whisker(x, ys.map(a), x, ys.map(z), (bw * 0.25).min(4.0), INK, 1.2);
            }
        }
        svg.raw("</g>");
    }
}
