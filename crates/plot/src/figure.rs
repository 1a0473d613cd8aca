//! The figure: one chart or a grid of panels, with titles, a shared legend and notes.

use std::io;
use std::path::Path;

use crate::bar::BarPanel;
use crate::interval::IntervalPanel;
use crate::line::LinePanel;
use crate::line::BAND_OPACITY;
use crate::panel::*;
use crate::scale::{axis_ticks, Ticks};
use crate::scatter::ScatterPanel;
use crate::stacked::{hatch_pattern, StackedPanel};
use crate::style::{style, Style};
use crate::svg::{centred_baseline, escape, num, Anchor, Svg, Text, FONT_FAMILY, GREY, INK};
use crate::text;
use crate::{BarChart, Hatch, IntervalPlot, LineChart, ScatterPlot, StackedBarChart};

/// Any chart that can be a panel of a [`Figure`].
#[derive(Clone, Debug, PartialEq)]
pub enum Chart {
    Interval(IntervalPlot),
    Line(LineChart),
    Scatter(ScatterPlot),
    Bar(BarChart),
    Stacked(StackedBarChart),
}

/// Where the legend goes. It is shown only when there is something to tell apart: with
/// [`Legend::Auto`], when at least two series have names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Legend {
    /// Line and scatter charts drawn alone: inside the plot area, in the first corner
    /// (top right, top left, bottom right, bottom left) where it covers no data,
    /// otherwise above the plot. Everything else, and every multi-panel figure: above
    /// the plot area(s), below the title.
    #[default]
    Auto,
    /// Above the plot area(s), below the title, in rows as wide as the figure.
    Top,
    /// In a column to the right of the plot area(s).
    Right,
    /// No legend.
    Hidden,
}

/// A figure: a grid of panels (or a single chart) that becomes one SVG document.
///
/// Panels of the same chart kind share their numeric scales unless
/// [`Figure::independent_scales`] is set (interval plots and stacked bars share x; line
/// and scatter charts x and y; bar charts y). Series are styled by name across the
/// whole figure, so a series keeps its colour and marker in every panel, and one legend
/// serves all.
/// Plot areas are aligned: all have the same width, panels in a grid row the same
/// height, and panels in a column the same left edge. Inner panels that share the y
/// axis (same kind, and for interval plots the same categories) leave its labels to
/// the leftmost panel of their row.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    title: String,
    subtitle: String,
    extra_notes: Vec<String>,
    min_width: f64,
    cols: usize,
    panels: Vec<Chart>,
    shared: bool,
    legend: Legend,
    single: bool,
}

const OUTER_X: f64 = 12.0;
const OUTER_Y: f64 = 10.0;
const HGAP: f64 = 18.0;
const VGAP: f64 = 16.0;
const TITLE_GAP: f64 = 6.0;
const SECTION_GAP: f64 = 10.0;
const GLYPH_W: f64 = 24.0;
const ITEM_GAP: f64 = 18.0;
const LEGEND_ROW: f64 = 18.0;
const SUBTITLE_SIZE: f64 = 11.0;

impl Figure {
    /// A grid of panels, `cols` per row (at least 1), filled row by row.
    pub fn panels<C: Into<Chart>>(cols: usize, charts: Vec<C>) -> Self {
        Figure {
            title: String::new(),
            subtitle: String::new(),
            extra_notes: Vec::new(),
            min_width: 0.0,
            cols: cols.max(1),
            panels: charts.into_iter().map(Into::into).collect(),
            shared: true,
            legend: Legend::Auto,
            single: false,
        }
    }

    /// One chart on its own; its title is the figure's title and its legend setting
    /// applies.
    pub fn single(chart: impl Into<Chart>) -> Self {
        let chart = chart.into();
        let legend = match &chart {
            Chart::Interval(c) => c.legend,
            Chart::Line(c) => c.legend,
            Chart::Scatter(c) => c.legend,
            Chart::Bar(c) => c.legend,
            Chart::Stacked(c) => c.legend,
        };
        Figure {
            title: String::new(),
            subtitle: String::new(),
            extra_notes: Vec::new(),
            min_width: 0.0,
            cols: 1,
            panels: vec![chart],
            shared: true,
            legend,
            single: true,
        }
    }

    /// The overall title above all panels.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// A line under the title in smaller grey type: what the figure's numbers come from
    /// (model, n, seed, date). Wrapped to the figure's width.
    pub fn subtitle(mut self, subtitle: impl Into<String>) -> Self {
        self.subtitle = subtitle.into();
        self
    }

    /// A note of the caller's under the figure (e.g. a series that has no data, the
    /// meaning of a mark), before the notes of what was left out. Not a warning.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.extra_notes.push(note.into());
        self
    }

    /// The figure is at least `px` wide (its content centred), so a one-bar chart is
    /// not a sliver.
    pub fn min_width(mut self, px: f64) -> Self {
        self.min_width = px;
        self
    }

    /// Where the figure's one legend goes (panels' own legend settings are ignored in
    /// a multi-panel figure).
    pub fn legend(mut self, legend: Legend) -> Self {
        self.legend = legend;
        self
    }

    /// Gives every panel its own scales instead of sharing them by chart kind.
    pub fn independent_scales(mut self) -> Self {
        self.shared = false;
        self
    }

    /// The figure as a standalone SVG document (UTF-8, no external resources).
    pub fn to_svg(&self) -> String {
        self.render().0
    }

    /// Writes [`Figure::to_svg`] to `path`.
    pub fn write(&self, path: impl AsRef<Path>) -> io::Result<()> {
        std::fs::write(path, self.to_svg())
    }

    /// What was left out of the drawing and why; the SVG shows the same notes under
    /// the figure.
    pub fn warnings(&self) -> Vec<String> {
        self.render().1
    }

    fn render(&self) -> (String, Vec<String>) {
        let mut notes = Vec::new();
        let multi = self.panels.len() > 1;
        let preps: Vec<Box<dyn Panel>> = self
            .panels
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut n = Vec::new();
                let p: Box<dyn Panel> = match c {
                    Chart::Interval(c) => Box::new(IntervalPanel::new(c, &mut n)),
                    Chart::Line(c) => Box::new(LinePanel::new(c, &mut n)),
                    Chart::Scatter(c) => Box::new(ScatterPanel::new(c, &mut n)),
                    Chart::Bar(c) => Box::new(BarPanel::new(c, &mut n)),
                    Chart::Stacked(c) => Box::new(StackedPanel::new(c, &mut n)),
                };
                for note in n {
                    if multi {
                        let t = p.title();
                        if t.is_empty() {
                            notes.push(format!("panel {}: {note}", i + 1));
                        } else {
                            notes.push(format!("panel \u{201C}{t}\u{201D}: {note}"));
                        }
                    } else {
                        notes.push(note);
                    }
                }
                p
            })
            .collect();
        let shown: Vec<String> = self
            .extra_notes
            .iter()
            .map(|n| text::clean_label(n))
            .chain(notes.iter().cloned())
            .collect();
        let svg = self.layout(&preps, &shown, self.extra_notes.len());
        (svg, notes)
    }

    #[allow(clippy::needless_range_loop)] // cells are addressed by (row, column)
    /// `notes`: the caller's `own` notes first (shown as written), then warnings (shown
    /// as `Note: …`).
    fn layout(&self, preps: &[Box<dyn Panel>], notes: &[String], own: usize) -> String {
        let cols = self.cols.min(preps.len()).max(1);
        let nrows = preps.len().div_ceil(cols).max(1);
        let pos = |i: usize| (i / cols, i % cols);

        let prefix = format!("shp{:08x}", fnv1a(format!("{self:?}").as_bytes()) as u32);
        // Styles by series name across the figure; hatch patterns by style and hatch.
        let mut legend_items: Vec<(String, Glyph)> = Vec::new();
        let mut styles: Vec<Vec<Style>> = Vec::new();
        let mut patterns: Vec<Vec<Option<String>>> = Vec::new();
        let mut hatches: Vec<(String, Hatch, usize)> = Vec::new();
        for p in preps {
            let (mut s, mut pats) = (Vec::new(), Vec::new());
            for (k, name) in p.series_names().into_iter().enumerate() {
                let idx = match legend_items.iter().position(|(n, _)| *n == name) {
                    Some(i) => i,
                    None => {
                        legend_items.push((name, p.series_glyph(k)));
                        legend_items.len() - 1
                    }
                };
                s.push(style(idx));
                let glyph = p.series_glyph(k);
                let id = pattern_id(&prefix, glyph, idx);
                if let (Some(id), Glyph::Segment(h)) = (&id, glyph) {
                    if !hatches.iter().any(|(x, _, _)| x == id) {
                        hatches.push((id.clone(), h, idx));
                    }
                }
                pats.push(id);
            }
            styles.push(s);
            patterns.push(pats);
        }
        let legend_entries: Vec<(usize, &(String, Glyph))> = legend_items
            .iter()
            .enumerate()
            .filter(|(_, (n, _))| !n.is_empty())
            .collect();

        // Plot sizes: one width; one height per grid row.
        let pw = preps
            .iter()
            .map(|p| p.plot_size().0)
            .fold(0.0, f64::max)
            .max(80.0);
        let mut row_ph = vec![0.0f64; nrows];
        for (i, p) in preps.iter().enumerate() {
            let (r, _) = pos(i);
            row_ph[r] = row_ph[r].max(p.plot_size().1);
        }
        let min_ph = row_ph
            .iter()
            .copied()
            .filter(|h| *h > 0.0)
            .fold(f64::INFINITY, f64::min);

        // Scales.
        let axes = self.axes(preps, pw, if min_ph.is_finite() { min_ph } else { 200.0 });

        // Which panels label their y axis.
        let show_y: Vec<bool> = (0..preps.len())
            .map(|i| {
                let (r, c) = pos(i);
                if c == 0 || !self.shared {
                    return true;
                }
                let in_row: Vec<usize> = (r * cols..((r + 1) * cols).min(preps.len())).collect();
                let kind = preps[i].kind();
                let same_kind = in_row.iter().all(|&j| preps[j].kind() == kind);
                let same_cats = in_row
                    .iter()
                    .all(|&j| preps[j].y_categories() == preps[in_row[0]].y_categories());
                !(same_kind && same_cats)
            })
            .collect();

        // Margins aligned by column and grid row.
        let mut col_left = vec![0.0f64; cols];
        let mut col_right = vec![0.0f64; cols];
        let mut row_top = vec![0.0f64; nrows];
        let mut row_bottom = vec![0.0f64; nrows];
        for (i, p) in preps.iter().enumerate() {
            let (r, c) = pos(i);
            let m = p.margins(&axes[i], pw, row_ph[r], show_y[i]);
            col_left[c] = col_left[c].max(m.left);
            col_right[c] = col_right[c].max(m.right);
            row_top[r] = row_top[r].max(m.top);
            row_bottom[r] = row_bottom[r].max(m.bottom);
        }
        // Panel titles (a single chart's title is set larger, as the figure title).
        // A single chart's title is the figure title.
        let title_size = PANEL_TITLE_SIZE;
        let panel_title = |p: &dyn Panel| -> String {
            if self.single {
                String::new()
            } else {
                p.title().to_string()
            }
        };
        let figure_title = if self.single {
            preps
                .first()
                .map(|p| p.title().to_string())
                .unwrap_or_default()
        } else {
            text::clean_label(&self.title)
        };
        for (i, p) in preps.iter().enumerate() {
            let (_, c) = pos(i);
            let longest = longest_word(&panel_title(p.as_ref()), title_size, true);
            let cell = col_left[c] + pw + col_right[c];
            if longest > cell {
                col_right[c] += longest - cell;
            }
        }
        let cell_w = |c: usize| col_left[c] + pw + col_right[c];
        let titles: Vec<Vec<String>> = preps
            .iter()
            .enumerate()
            .map(|(i, p)| text::wrap(&panel_title(p.as_ref()), title_size, true, cell_w(pos(i).1)))
            .collect();
        let mut row_title = vec![0.0f64; nrows];
        for (i, t) in titles.iter().enumerate() {
            if !t.is_empty() {
                let (r, _) = pos(i);
                row_title[r] = row_title[r].max(lines_h(t.len(), title_size) + TITLE_GAP);
            }
        }

        let grid_w: f64 = (0..cols).map(cell_w).sum::<f64>() + HGAP * (cols - 1) as f64;
        let row_h = |r: usize| row_title[r] + row_top[r] + row_ph[r] + row_bottom[r];
        let grid_h: f64 = (0..nrows).map(row_h).sum::<f64>() + VGAP * (nrows - 1) as f64;

        // Legend placement.
        let show_legend = match self.legend {
            Legend::Hidden => false,
            Legend::Auto => legend_entries.len() >= 2,
            Legend::Top | Legend::Right => !legend_entries.is_empty(),
        };
        let item_w = |name: &str| GLYPH_W + 6.0 + text::width(name, LEGEND_SIZE, false);
        let mut inside: Option<Rect> = None; // relative to the plot area
        let mut placement = self.legend;
        if show_legend && self.legend == Legend::Auto {
            placement = Legend::Top;
            if self.single && matches!(preps[0].kind(), Kind::Line | Kind::Scatter) {
                let lw = legend_entries
                    .iter()
                    .map(|(_, (n, _))| item_w(n))
                    .fold(0.0, f64::max)
                    + 12.0;
                let lh = legend_entries.len() as f64 * LEGEND_ROW + 8.0;
                let ph = row_ph[0];
                let obstacles = preps[0].obstacles(&axes[0], Rect::new(0.0, 0.0, pw, ph));
                let m = 6.0;
                let corners = [
                    Rect::new(pw - lw - m, m, lw, lh),
                    Rect::new(m, m, lw, lh),
                    Rect::new(pw - lw - m, ph - lh - m, lw, lh),
                    Rect::new(m, ph - lh - m, lw, lh),
                ];
                if lw + 2.0 * m <= pw && lh + 2.0 * m <= ph {
                    inside = corners
                        .into_iter()
                        .find(|c| obstacles.iter().all(|o| !c.inflate(2.0).intersects(o)));
                }
                if inside.is_some() {
                    placement = Legend::Auto;
                }
            }
        }
        let right_w = if show_legend && placement == Legend::Right {
            legend_entries
                .iter()
                .map(|(_, (n, _))| item_w(n))
                .fold(0.0, f64::max)
                + HGAP
        } else {
            0.0
        };
        let mut content_w = grid_w + right_w;
        // Widen for anything that cannot wrap.
        if show_legend && placement == Legend::Top {
            for (_, (n, _)) in &legend_entries {
                content_w = content_w.max(item_w(n));
            }
        }
        content_w = content_w.max(longest_word(&figure_title, FIGURE_TITLE_SIZE, true));
        let subtitle = text::clean_label(&self.subtitle);
        content_w = content_w.max(longest_word(&subtitle, SUBTITLE_SIZE, false));
        let note_of = |k: usize, n: &str| {
            if k < own {
                n.to_string()
            } else {
                note_text(n)
            }
        };
        for (k, n) in notes.iter().enumerate() {
            content_w = content_w.max(longest_word(&note_of(k, n), NOTE_SIZE, false));
        }
        content_w = content_w.max(self.min_width - 2.0 * OUTER_X);
        let fig_title = text::wrap(&figure_title, FIGURE_TITLE_SIZE, true, content_w);
        let sub_lines = text::wrap(&subtitle, SUBTITLE_SIZE, false, content_w);
        let legend_rows: Vec<Vec<usize>> = if show_legend && placement == Legend::Top {
            let mut rows: Vec<Vec<usize>> = vec![];
            let mut w = 0.0;
            for (k, (_, (n, _))) in legend_entries.iter().enumerate() {
                let iw = item_w(n);
                match rows.last_mut() {
                    Some(row) if w + ITEM_GAP + iw <= content_w => {
                        row.push(k);
                        w += ITEM_GAP + iw;
                    }
                    _ => {
                        rows.push(vec![k]);
                        w = iw;
                    }
                }
            }
            rows
        } else {
            vec![]
        };
        let note_lines: Vec<String> = notes
            .iter()
            .enumerate()
            .take(own + 8)
            .flat_map(|(k, n)| text::wrap(&note_of(k, n), NOTE_SIZE, false, content_w))
            .chain(if notes.len() > own + 8 {
                Some(format!(
                    "Note: {} more not shown (see warnings()).",
                    notes.len() - own - 8
                ))
            } else {
                None
            })
            .collect();

        // Vertical stack.
        let mut y = OUTER_Y;
        let title_top = y;
        if !fig_title.is_empty() {
            y += lines_h(fig_title.len(), FIGURE_TITLE_SIZE) + SECTION_GAP;
        }
        let subtitle_top = y - if fig_title.is_empty() {
            0.0
        } else {
            SECTION_GAP / 2.0
        };
        if !sub_lines.is_empty() {
            y = subtitle_top + lines_h(sub_lines.len(), SUBTITLE_SIZE) + SECTION_GAP;
        }
        let legend_top = y;
        if !legend_rows.is_empty() {
            y += legend_rows.len() as f64 * LEGEND_ROW + SECTION_GAP - 4.0;
        }
        let grid_top = y;
        y += grid_h;
        let notes_top = y + SECTION_GAP;
        if !note_lines.is_empty() {
            y = notes_top + lines_h(note_lines.len(), NOTE_SIZE);
        }
        let height = (y + OUTER_Y).ceil();
        let width = (content_w + 2.0 * OUTER_X).ceil();
        let grid_x = OUTER_X + (content_w - grid_w - right_w) / 2.0;

        let mut svg = Svg::default();
        svg.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
        svg.raw(&format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"{FONT_FAMILY}\" fill=\"{INK}\">",
            w = num(width),
            h = num(height)
        ));
        if !figure_title.is_empty() {
            svg.raw(&format!("<title>{}</title>", escape(&figure_title)));
        }
        svg.raw(&format!(
            "<rect width=\"{}\" height=\"{}\" fill=\"#ffffff\"/>",
            num(width),
            num(height)
        ));
        if !hatches.is_empty() {
            svg.raw("<defs>");
            for (id, h, si) in &hatches {
                hatch_pattern(&mut svg, id, *h, style(*si).color);
            }
            svg.raw("</defs>");
        }

        // Title.
        let mut ty = title_top + text::ASCENT * FIGURE_TITLE_SIZE;
        for l in &fig_title {
            svg.text(
                Text::new(width / 2.0, ty, l, FIGURE_TITLE_SIZE)
                    .anchor(Anchor::Middle)
                    .bold(true),
            );
            ty += line_h(FIGURE_TITLE_SIZE);
        }
        let mut sy = subtitle_top + text::ASCENT * SUBTITLE_SIZE;
        for l in &sub_lines {
            svg.raw("<g class=\"subtitle\">");
            svg.text(
                Text::new(width / 2.0, sy, l, SUBTITLE_SIZE)
                    .anchor(Anchor::Middle)
                    .fill(GREY),
            );
            svg.raw("</g>");
            sy += line_h(SUBTITLE_SIZE);
        }
        // Legend above the grid.
        for (r, row) in legend_rows.iter().enumerate() {
            let total: f64 = row
                .iter()
                .map(|&k| item_w(&legend_entries[k].1 .0))
                .sum::<f64>()
                + ITEM_GAP * (row.len() - 1) as f64;
            let mut x = OUTER_X + (content_w - total) / 2.0;
            let cy = legend_top + r as f64 * LEGEND_ROW + LEGEND_ROW / 2.0;
            for &k in row {
                let (si, (name, glyph)) = legend_entries[k];
                let pat = pattern_id(&prefix, *glyph, si);
                legend_item(&mut svg, x, cy, name, *glyph, &style(si), pat.as_deref());
                x += item_w(name) + ITEM_GAP;
            }
        }

        // Panels.
        let mut row_y = grid_top;
        for r in 0..nrows {
            let mut cell_x = grid_x;
            for c in 0..cols {
                let i = r * cols + c;
                if i >= preps.len() {
                    break;
                }
                let p = &preps[i];
                let plot = Rect::new(
                    cell_x + col_left[c],
                    row_y + row_title[r] + row_top[r],
                    pw,
                    row_ph[r],
                );
                // Title centred over the plot area, kept inside the cell.
                let mut ty = row_y + text::ASCENT * title_size;
                for l in &titles[i] {
                    let w = text::width(l, title_size, true);
                    let cx = (plot.x + plot.w / 2.0)
                        .max(cell_x + w / 2.0)
                        .min(cell_x + cell_w(c) - w / 2.0);
                    svg.text(
                        Text::new(cx, ty, l, title_size)
                            .anchor(Anchor::Middle)
                            .bold(true),
                    );
                    ty += line_h(title_size);
                }
                let clip_exact = format!("{prefix}-e{i}");
                let clip_loose = format!("{prefix}-l{i}");
                clip_path(&mut svg, &clip_exact, plot);
                clip_path(&mut svg, &clip_loose, plot.inflate(7.0));
                svg.raw(&format!("<g class=\"panel\" id=\"{prefix}-p{i}\">"));
                p.draw(
                    &mut svg,
                    &DrawCtx {
                        plot,
                        axes: &axes[i],
                        styles: &styles[i],
                        show_y: show_y[i],
                        clip_exact: &clip_exact,
                        clip_loose: &clip_loose,
                        patterns: &patterns[i],
                    },
                );
                if let (Some(box_), true) = (inside, show_legend && i == 0) {
                    let b = Rect::new(plot.x + box_.x, plot.y + box_.y, box_.w, box_.h);
                    svg.raw(&format!(
                        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#ffffff\" fill-opacity=\"0.9\" stroke=\"#cccccc\" stroke-width=\"0.8\" rx=\"2\"/>",
                        num(b.x), num(b.y), num(b.w), num(b.h)
                    ));
                    for (k, (si, (name, glyph))) in legend_entries.iter().enumerate() {
                        let cy = b.y + 4.0 + LEGEND_ROW * k as f64 + LEGEND_ROW / 2.0;
                        let pat = pattern_id(&prefix, *glyph, *si);
                        legend_item(
                            &mut svg,
                            b.x + 6.0,
                            cy,
                            name,
                            *glyph,
                            &style(*si),
                            pat.as_deref(),
                        );
                    }
                }
                svg.raw("</g>");
                cell_x += cell_w(c) + HGAP;
            }
            row_y += row_h(r) + VGAP;
        }

        // Legend to the right.
        if show_legend && placement == Legend::Right {
            let x = grid_x + grid_w + HGAP;
            let total = legend_entries.len() as f64 * LEGEND_ROW;
            let top = grid_top + (grid_h - total).max(0.0) / 2.0;
            for (k, (si, (name, glyph))) in legend_entries.iter().enumerate() {
                let pat = pattern_id(&prefix, *glyph, *si);
                legend_item(
                    &mut svg,
                    x,
                    top + LEGEND_ROW * (k as f64 + 0.5),
                    name,
                    *glyph,
                    &style(*si),
                    pat.as_deref(),
                );
            }
        }

        // Notes.
        let mut ny = notes_top + text::ASCENT * NOTE_SIZE;
        for l in &note_lines {
            svg.text(Text::new(OUTER_X, ny, l, NOTE_SIZE).fill(GREY));
            ny += line_h(NOTE_SIZE);
        }
        svg.raw("</svg>");
        svg.buf
    }

    /// Ticks of every panel; panels of one kind share them unless scales are independent.
    fn axes(&self, preps: &[Box<dyn Panel>], pw: f64, ph: f64) -> Vec<Axes> {
        let group = |i: usize| -> Vec<usize> {
            if self.shared {
                (0..preps.len())
                    .filter(|&j| preps[j].kind() == preps[i].kind())
                    .collect()
            } else {
                vec![i]
            }
        };
        let union = |ids: &[usize], f: RangeOf<'_>| {
            let mut acc = None;
            for &j in ids {
                if let Some((a, b)) = f(preps[j].as_ref()) {
                    extend(&mut acc, a);
                    extend(&mut acc, b);
                }
            }
            acc
        };
        let first = |ids: &[usize], f: RangeOf<'_>| ids.iter().find_map(|&j| f(preps[j].as_ref()));
        (0..preps.len())
            .map(|i| {
                let ids = group(i);
                let kind = preps[i].kind();
                let pad = if kind == Kind::Scatter { 0.06 } else { 0.0 };
                let x = match kind {
                    Kind::Bar => None,
                    _ => Some(pick_ticks(
                        preps[i].x_fixed().or_else(|| {
                            if self.shared {
                                first(&ids, &|p| p.x_fixed())
                            } else {
                                None
                            }
                        }),
                        union(&ids, &|p| p.x_extent()),
                        pad,
                        |lo, hi, fixed| {
                            axis_ticks(lo, hi, fixed, pw, 65.0, |t| x_labels_fit(t, pw))
                        },
                    )),
                };
                let y = match kind {
                    Kind::Interval | Kind::Stacked => None,
                    _ => Some(pick_ticks(
                        preps[i].y_fixed().or_else(|| {
                            if self.shared {
                                first(&ids, &|p| p.y_fixed())
                            } else {
                                None
                            }
                        }),
                        union(&ids, &|p| p.y_extent()),
                        pad,
                        |lo, hi, fixed| {
                            axis_ticks(lo, hi, fixed, ph, 45.0, |t| y_labels_fit(t, ph))
                        },
                    )),
                };
                Axes { x, y }
            })
            .collect()
    }
}

/// Reads one of a panel's ranges.
type RangeOf<'a> = &'a dyn Fn(&dyn Panel) -> Option<(f64, f64)>;

fn pick_ticks(
    fixed: Option<(f64, f64)>,
    extent: Option<(f64, f64)>,
    pad: f64,
    f: impl Fn(f64, f64, bool) -> Ticks,
) -> Ticks {
    match (fixed, extent) {
        (Some((a, b)), _) => f(a, b, true),
        // Padded ranges (scatter plots) are tight: ticks inside, no extension.
        (None, Some((a, b))) => {
            let d = (b - a) * pad;
            f(a - d, b + d, pad > 0.0)
        }
        (None, None) => f(0.0, 1.0, false),
    }
}

fn note_text(n: &str) -> String {
    format!("Note: {n}.")
}

fn longest_word(s: &str, size: f64, bold: bool) -> f64 {
    s.split(' ')
        .map(|w| text::width(&text::clean_label(w), size, bold))
        .fold(0.0, f64::max)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// The id of the hatch pattern of series `si` drawn as `glyph` (`None`: not hatched).
fn pattern_id(prefix: &str, glyph: Glyph, si: usize) -> Option<String> {
    match glyph {
        Glyph::Segment(Hatch::Diagonal) => Some(format!("{prefix}-hd{si}")),
        Glyph::Segment(Hatch::Cross) => Some(format!("{prefix}-hx{si}")),
        _ => None,
    }
}

/// One legend entry: a glyph in a `GLYPH_W` box starting at `x`, then the name;
/// `pattern` is the id of the hatch drawn over a segment's swatch.
fn legend_item(
    svg: &mut Svg,
    x: f64,
    cy: f64,
    name: &str,
    glyph: Glyph,
    st: &Style,
    pattern: Option<&str>,
) {
    let mid = x + GLYPH_W / 2.0;
    match glyph {
        Glyph::Interval => {
            svg.whisker(x + 3.0, cy, x + GLYPH_W - 3.0, cy, 2.5, st.color, 1.5);
            svg.marker(st, mid, cy, 3.8);
        }
        Glyph::Line => {
            svg.rect_alpha(x, cy - 5.0, GLYPH_W, 10.0, st.color, BAND_OPACITY);
            svg.line(x, cy, x + GLYPH_W, cy, st.color, 1.8);
            svg.marker(st, mid, cy, 3.2);
        }
        Glyph::Point => svg.marker(st, mid, cy, 4.0),
        Glyph::Bar => svg.rect(x + 5.0, cy - 6.0, GLYPH_W - 10.0, 12.0, st.color, None),
        Glyph::Segment(_) => {
            svg.rect(x + 3.0, cy - 6.0, GLYPH_W - 6.0, 12.0, st.color, None);
            if let Some(id) = pattern {
                svg.raw(&format!(
                    "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"12\" fill=\"url(#{id})\"/>",
                    num(x + 3.0),
                    num(cy - 6.0),
                    num(GLYPH_W - 6.0)
                ));
            }
        }
    }
    svg.text(Text::new(
        x + GLYPH_W + 6.0,
        centred_baseline(cy, LEGEND_SIZE),
        name,
        LEGEND_SIZE,
    ));
}
