//! Rows down the y axis, optionally gathered under bold group headers: the layout,
//! margins, separators and labels that interval plots and stacked bars share.

use crate::panel::*;
use crate::scale::{Scale, Ticks};
use crate::svg::{centred_baseline, Anchor, Svg, Text, GRID};
use crate::text;

/// Height of a group header row.
const HEADER_H: f64 = 22.0;
/// Space above a group header that follows other rows (a separator line runs through it).
const GROUP_GAP: f64 = 6.0;
/// Space above the first row and below the last.
const PAD: f64 = 6.0;
/// Indent of an item's label under its group header.
const INDENT: f64 = 12.0;
/// Gap between the row labels and the plot area.
const LABEL_GAP: f64 = 10.0;
/// The least height of the plot area.
pub(crate) const MIN_PLOT_H: f64 = 60.0;

/// One row: a bold group header, or an item with its label and whatever the chart
/// draws in it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Row<T> {
    Header(String),
    Item(String, T),
}

/// The rows of a chart, top to bottom; when grouped, item labels are indented under
/// their headers, otherwise they are right-aligned against the plot area.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct GroupedRows<T> {
    rows: Vec<Row<T>>,
    grouped: bool,
}

/// Height of the plot area that rows laid out in `spans` fill: to the bottom of the
/// last row, plus padding.
pub(crate) fn height(spans: &[(f64, f64)]) -> f64 {
    spans.last().map(|(y, h)| y + h).unwrap_or(0.0) + PAD
}

impl<T> GroupedRows<T> {
    /// No rows yet; `grouped` says whether items are listed under headers.
    pub(crate) fn new(grouped: bool) -> Self {
        GroupedRows {
            rows: Vec::new(),
            grouped,
        }
    }

    /// Whether items are listed under group headers.
    pub(crate) fn grouped(&self) -> bool {
        self.grouped
    }

    /// Adds a group header row.
    pub(crate) fn push_header(&mut self, header: String) {
        self.rows.push(Row::Header(header));
    }

    /// Adds an item row and returns its index.
    pub(crate) fn push_item(&mut self, label: String, data: T) -> usize {
        self.rows.push(Row::Item(label, data));
        self.rows.len() - 1
    }

    /// The rows, top to bottom.
    pub(crate) fn iter(&self) -> std::slice::Iter<'_, Row<T>> {
        self.rows.iter()
    }

    /// (top, height) of each row within the plot area, the first row `top` (plus
    /// padding) from its top edge, each item `item_h` high.
    pub(crate) fn spans(&self, top: f64, item_h: f64) -> Vec<(f64, f64)> {
        let mut y = top + PAD;
        let mut out = Vec::with_capacity(self.rows.len());
        for (i, r) in self.rows.iter().enumerate() {
            let h = match r {
                Row::Header(_) => {
                    if i > 0 {
                        y += GROUP_GAP;
                    }
                    HEADER_H
                }
                Row::Item(..) => item_h,
            };
            out.push((y, h));
            y += h;
        }
        out
    }

    /// The plot area's size: `width` (or the x axis title's longest word) by the rows'
    /// height (at least [`MIN_PLOT_H`]).
    pub(crate) fn plot_size(&self, spans: &[(f64, f64)], width: f64, x_label: &str) -> (f64, f64) {
        (
            width.max(text::longest_word(x_label, LABEL_SIZE, false) + 4.0),
            height(spans).max(MIN_PLOT_H),
        )
    }

    /// Width of the widest row label (headers bold, items indented when grouped).
    fn label_width(&self) -> f64 {
        self.rows
            .iter()
            .map(|r| match r {
                Row::Header(h) => text::width(h, TICK_SIZE, true),
                Row::Item(c, _) => {
                    text::width(c, TICK_SIZE, false) + if self.grouped { INDENT } else { 0.0 }
                }
            })
            .fold(0.0, f64::max)
    }

    /// The rows as category keys (`h:` header, `c:` item), for telling whether panels
    /// list the same rows.
    pub(crate) fn keys(&self) -> Vec<String> {
        self.rows
            .iter()
            .map(|r| match r {
                Row::Header(h) => format!("h:{h}"),
                Row::Item(c, _) => format!("c:{c}"),
            })
            .collect()
    }

    /// Margins around the plot area: the row labels on the left (when shown), the x
    /// axis (with its title `x_label`) below.
    pub(crate) fn margins(&self, axes: &Axes, plot_w: f64, show_y: bool, x_label: &str) -> Margins {
        let (oh0, oh1) = axes
            .x
            .as_ref()
            .map(|t| x_overhang(t, plot_w))
            .unwrap_or((0.0, 0.0));
        let labels = if show_y {
            self.label_width() + LABEL_GAP + 2.0
        } else {
            8.0
        };
        Margins {
            left: labels.max(oh0),
            right: oh1.max(4.0),
            top: 2.0,
            bottom: x_axis_height(x_label, plot_w),
        }
    }

    /// What is drawn under the data: a grid line across the plot area above each group
    /// header but the first, then the x axis `t` with its grid and its title `x_label`.
    /// Returns the x scale.
    pub(crate) fn draw_frame(
        &self,
        svg: &mut Svg,
        plot: Rect,
        spans: &[(f64, f64)],
        t: &Ticks,
        x_label: &str,
    ) -> Scale {
        for (i, r) in self.rows.iter().enumerate() {
            if i > 0 && matches!(r, Row::Header(_)) {
                let y = plot.y + spans[i].0 - GROUP_GAP / 2.0;
                svg.line(plot.x, y, plot.right(), y, GRID, 0.8);
            }
        }
        draw_x_axis(svg, t, plot, x_label, true);
        x_scale(t, plot)
    }

    /// The row labels left of the plot area: headers bold, items indented under them
    /// when grouped, right-aligned otherwise.
    pub(crate) fn draw_labels(&self, svg: &mut Svg, plot: Rect, spans: &[(f64, f64)]) {
        let x0 = plot.x - LABEL_GAP - self.label_width();
        for (r, (top, h)) in self.rows.iter().zip(spans) {
            let yb = centred_baseline(plot.y + top + h / 2.0, TICK_SIZE);
            match r {
                Row::Header(hd) => svg.text(Text::new(x0, yb, hd, TICK_SIZE).bold(true)),
                Row::Item(c, _) if self.grouped => {
                    svg.text(Text::new(x0 + INDENT, yb, c, TICK_SIZE))
                }
                Row::Item(c, _) => {
                    svg.text(Text::new(plot.x - LABEL_GAP, yb, c, TICK_SIZE).anchor(Anchor::End))
                }
            }
        }
    }
}
