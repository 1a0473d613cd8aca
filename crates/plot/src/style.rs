//! Colours and marker shapes: the Okabe–Ito colour-blind-safe palette.

/// The Okabe–Ito palette, reordered so the first colours have the most contrast on
/// white (yellow, the weakest, is last).
pub const PALETTE: [&str; 8] = [
    "#0072B2", // blue
    "#D55E00", // vermillion
    "#009E73", // bluish green
    "#E69F00", // orange
    "#CC79A7", // reddish purple
    "#56B4E9", // sky blue
    "#000000", // black
    "#F0E442", // yellow
];

/// Marker shapes, cycled alongside the colours so series differ in shape too (for
/// greyscale printing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    Circle,
    Square,
    Triangle,
    Diamond,
    TriangleDown,
}

const MARKERS: [Marker; 5] = [
    Marker::Circle,
    Marker::Square,
    Marker::Triangle,
    Marker::Diamond,
    Marker::TriangleDown,
];

/// How one series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    pub color: &'static str,
    pub marker: Marker,
}

/// The style of the `i`-th series of a figure (series are numbered by first appearance
/// of their name across all panels, so a name keeps its style in every panel).
pub fn style(i: usize) -> Style {
    Style {
        color: PALETTE[i % PALETTE.len()],
        marker: MARKERS[i % MARKERS.len()],
    }
}
