//! Publication-quality static SVG charts for study reports.
//!
//! What is here: typed builders for the figures study reports need — interval (forest)
//! plots with dodged series and grouped category headers ([`IntervalPlot`]), line charts
//! with shaded confidence bands ([`LineChart`]), scatter plots with two-dimensional
//! error bars and point labels ([`ScatterPlot`]), grouped bar charts with error bars
//! ([`BarChart`]), horizontal stacked bars with hatched segments ([`StackedBarChart`],
//! e.g. refuses / complies / complies with alignment-faking reasoning, per row and
//! prompt variant) — and [`Figure`], which lays one chart or a grid of panels out with
//! aligned plot areas, shared scales, one legend and an overall title. Every chart and
//! figure has `to_svg() -> String`, `write(path)` and `warnings()`.
//!
//! Guarantees: the output is a well-formed, self-contained SVG document; the same input
//! gives byte-identical output (no hashing of addresses, no clocks, numbers printed with
//! fixed precision); all user text is XML-escaped and stripped of characters XML forbids;
//! text is laid out from estimated widths ([`text`]) that are upper bounds for the fonts
//! asked for, so no label is clipped by the canvas or drawn over another label (scatter
//! point labels take the first free spot of eight around their point, or the least
//! crowded one when none is free); colours
//! are the colour-blind-safe Okabe–Ito palette with a distinct marker shape per series.
//! Bad data never panic and never break the document: a non-finite value is left out,
//! and so is an interval with a non-finite bound and a stacked bar with a negative value
//! or values summing past its axis range, an empty series draws nothing, an empty chart
//! says "no data" — and each omission is written as a note under the figure and
//! returned by `warnings()`. Interval bounds may be given in either order. Hatches are
//! `<pattern>`s in `<defs>` whose ids derive from the figure's content.
//!
//! ```
//! use shammie_plot::{Figure, IntervalPlot};
//!
//! let plot = IntervalPlot::new("Discrimination")
//!     .x_label("discrimination score (logit, vs white/male/60)")
//!     .series("explicit", [("female", 0.21, 0.05, 0.37), ("Black", 0.43, 0.21, 0.65)])
//!     .series("implicit", [("female", 0.12, -0.08, 0.32), ("Black", 0.30, 0.02, 0.58)])
//!     .group("Gender", ["female"])
//!     .group("Race", ["Black"]);
//! assert!(plot.to_svg().starts_with("<?xml"));
//! let fig = Figure::panels(2, vec![plot.clone(), plot.series("empty", Vec::<(&str, f64, f64, f64)>::new())])
//!     .title("Two panels sharing the x scale");
//! assert_eq!(fig.warnings(), vec!["panel \u{201C}Discrimination\u{201D}: series \u{201C}empty\u{201D} has no data"]);
//! // fig.write(run_dir.join("discrimination.svg"))?;
//! ```
//!
//! `cargo run -p shammie-plot --example gallery [DIR]` writes a sample of every chart kind.
//!
//! What is not here: no raster output, no fonts embedded, no interactivity, no reading
//! of run logs or results (the caller turns its numbers into chart data), no log or
//! date scales.

/// What every chart type shares: drawn alone, it is a one-panel [`Figure`]; and it can
/// be a panel of a larger figure ([`Chart`]).
macro_rules! chart_output {
    ($t:ident, $variant:ident) => {
        impl $t {
            /// The chart as a standalone SVG document.
            pub fn to_svg(&self) -> String {
                crate::Figure::single(self.clone()).to_svg()
            }
            /// Writes the chart's SVG to `path`.
            pub fn write(&self, path: impl AsRef<std::path::Path>) -> std::io::Result<()> {
                crate::Figure::single(self.clone()).write(path)
            }
            /// What was left out of the drawing and why (the notes the SVG shows).
            pub fn warnings(&self) -> Vec<String> {
                crate::Figure::single(self.clone()).warnings()
            }
        }
        impl From<$t> for crate::Chart {
            fn from(c: $t) -> crate::Chart {
                crate::Chart::$variant(c)
            }
        }
    };
}

mod bar;
mod figure;
mod interval;
mod line;
mod panel;
mod rows;
pub mod scale;
mod scatter;
mod stacked;
pub mod style;
mod svg;
pub mod text;

pub use bar::{Bar, BarChart};
pub use figure::{Chart, Figure, Legend};
pub use interval::{Estimate, IntervalPlot};
pub use line::{LineChart, LinePoint};
pub use scatter::{ScatterPlot, ScatterPoint};
pub use stacked::{Hatch, StackedBarChart, StackedRow};
pub use svg::escape;

/// Fewer units than this behind a plotted estimate and it is marked unreliable (the same
/// threshold as the result tables').
pub const MIN_RELIABLE_N: usize = 5;

/// The note a figure carries when some label is marked `†` by [`with_n`].
pub const UNRELIABLE_NOTE: &str =
    "\u{2020} fewer than 5 units (questions, prompts) behind the estimate: its interval is unreliable.";

/// `label (n=N)`, with `†` when `n` is below [`MIN_RELIABLE_N`]: how a category or a
/// series shows the number of units behind it.
pub fn with_n(label: &str, n: usize) -> String {
    if n < MIN_RELIABLE_N {
        format!("{label} (n={n}\u{2020})")
    } else {
        format!("{label} (n={n})")
    }
}
