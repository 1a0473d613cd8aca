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

/// The text colour that reads best on a fill of `bg` (`#RRGGBB`): white or the ink,
/// whichever has the higher WCAG contrast ratio with it.
pub(crate) fn ink_on(bg: &str) -> &'static str {
    let lum = |hex: &str| -> f64 {
        let c = |i: usize| {
            let v = hex
                .get(i..i + 2)
                .and_then(|s| u8::from_str_radix(s, 16).ok())
                .map_or(0.0, |v| f64::from(v) / 255.0);
            if v <= 0.03928 {
                v / 12.92
            } else {
                ((v + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * c(1) + 0.7152 * c(3) + 0.0722 * c(5)
    };
    let l = lum(bg);
    let ink = lum(crate::svg::INK);
    if 1.05 / (l + 0.05) >= (l + 0.05) / (ink + 0.05) {
        "#ffffff"
    } else {
        crate::svg::INK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_on_dark_fills_are_white() {
        assert_eq!(ink_on("#0072B2"), "#ffffff");
        assert_eq!(ink_on("#000000"), "#ffffff");
        assert_eq!(ink_on("#F0E442"), crate::svg::INK);
        assert_eq!(ink_on("#E69F00"), crate::svg::INK);
        assert_eq!(ink_on("#ffffff"), crate::svg::INK);
    }
}
