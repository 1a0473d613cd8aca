//! A minimal SVG writer: escaped text, fixed-precision numbers, a few shapes.

use std::fmt::Write as _;

use crate::style::{Marker, Style};
use crate::text;

/// Font stack of every text element (see [`crate::text`] for why this order).
pub(crate) const FONT_FAMILY: &str = "Helvetica, Arial, Liberation Sans, DejaVu Sans, sans-serif";
pub(crate) const INK: &str = "#222222";
pub(crate) const GREY: &str = "#555555";
pub(crate) const GRID: &str = "#e3e3e3";

/// Escapes text for XML character data and attribute values (both quotes included).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A coordinate with two decimals, trailing zeros dropped, never `-0` and never a
/// non-finite value (those become `0`; callers filter them out before drawing).
pub(crate) fn num(v: f64) -> String {
    if !v.is_finite() {
        return "0".to_string();
    }
    let mut s = format!("{:.2}", v);
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" {
        s = "0".to_string();
    }
    s
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Anchor {
    Start,
    Middle,
    End,
}

impl Anchor {
    fn as_str(self) -> &'static str {
        match self {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        }
    }
}

/// One line of text, positioned by its baseline.
#[derive(Clone, Debug)]
pub(crate) struct Text<'a> {
    pub x: f64,
    pub y: f64,
    pub s: &'a str,
    pub size: f64,
    pub anchor: Anchor,
    pub bold: bool,
    pub fill: &'a str,
    /// Rotated by -90° about (x, y): reads bottom to top.
    pub vertical: bool,
}

impl<'a> Text<'a> {
    pub(crate) fn new(x: f64, y: f64, s: &'a str, size: f64) -> Self {
        Text {
            x,
            y,
            s,
            size,
            anchor: Anchor::Start,
            bold: false,
            fill: INK,
            vertical: false,
        }
    }
    pub(crate) fn anchor(mut self, a: Anchor) -> Self {
        self.anchor = a;
        self
    }
    pub(crate) fn bold(mut self, b: bool) -> Self {
        self.bold = b;
        self
    }
    pub(crate) fn fill(mut self, f: &'a str) -> Self {
        self.fill = f;
        self
    }
    pub(crate) fn vertical(mut self) -> Self {
        self.vertical = true;
        self
    }
}

/// Baseline that vertically centres a line of text of `size` on `y`.
pub(crate) fn centred_baseline(y: f64, size: f64) -> f64 {
    y + (text::ASCENT - text::DESCENT) / 2.0 * size
}

#[derive(Default)]
pub(crate) struct Svg {
    pub buf: String,
}

impl Svg {
    pub(crate) fn raw(&mut self, s: &str) {
        self.buf.push_str(s);
        self.buf.push('\n');
    }

    pub(crate) fn text(&mut self, t: Text<'_>) {
        if t.s.is_empty() {
            return;
        }
        let _ = write!(
            self.buf,
            "<text x=\"{}\" y=\"{}\" font-size=\"{}\"",
            num(t.x),
            num(t.y),
            num(t.size)
        );
        if t.anchor != Anchor::Start {
            let _ = write!(self.buf, " text-anchor=\"{}\"", t.anchor.as_str());
        }
        if t.bold {
            self.buf.push_str(" font-weight=\"bold\"");
        }
        if t.fill != INK {
            let _ = write!(self.buf, " fill=\"{}\"", t.fill);
        }
        if t.vertical {
            let _ = write!(
                self.buf,
                " transform=\"rotate(-90 {} {})\"",
                num(t.x),
                num(t.y)
            );
        }
        let _ = writeln!(self.buf, ">{}</text>", escape(t.s));
    }

    pub(crate) fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, stroke: &str, width: f64) {
        let _ = writeln!(
            self.buf,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"{}\"/>",
            num(x1),
            num(y1),
            num(x2),
            num(y2),
            stroke,
            num(width)
        );
    }

    pub(crate) fn dashed_line(
        &mut self,
        x1: f64,
        y1: f64,
        x2: f64,
        y2: f64,
        stroke: &str,
        width: f64,
    ) {
        let _ = writeln!(
            self.buf,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"{}\" stroke-dasharray=\"4 3\"/>",
            num(x1),
            num(y1),
            num(x2),
            num(y2),
            stroke,
            num(width)
        );
    }

    pub(crate) fn rect(
        &mut self,
        x: f64,
        y: f64,
        w: f64,
        h: f64,
        fill: &str,
        stroke: Option<&str>,
    ) {
        let _ = write!(
            self.buf,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"",
            num(x),
            num(y),
            num(w.max(0.0)),
            num(h.max(0.0)),
            fill
        );
        if let Some(s) = stroke {
            let _ = write!(self.buf, " stroke=\"{}\" stroke-width=\"0.8\"", s);
        }
        self.buf.push_str("/>\n");
    }

    /// A filled rectangle with `opacity`.
    pub(crate) fn rect_alpha(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, opacity: f64) {
        let _ = writeln!(
            self.buf,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\" fill-opacity=\"{}\"/>",
            num(x),
            num(y),
            num(w.max(0.0)),
            num(h.max(0.0)),
            fill,
            num(opacity)
        );
    }

    pub(crate) fn polyline(&mut self, pts: &[(f64, f64)], stroke: &str, width: f64) {
        if pts.len() < 2 {
            return;
        }
        let _ = writeln!(
            self.buf,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\" stroke-linejoin=\"round\" stroke-linecap=\"round\"/>",
            points(pts),
            stroke,
            num(width)
        );
    }

    pub(crate) fn polygon(&mut self, pts: &[(f64, f64)], fill: &str, opacity: f64) {
        if pts.len() < 3 {
            return;
        }
        let _ = writeln!(
            self.buf,
            "<polygon points=\"{}\" fill=\"{}\" fill-opacity=\"{}\" stroke=\"none\"/>",
            points(pts),
            fill,
            num(opacity)
        );
    }

    /// A whisker from (x1, y1) to (x2, y2) with perpendicular caps of half-length `cap`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn whisker(
        &mut self,
        x1: f64,
        y1: f64,
        x2: f64,
        y2: f64,
        cap: f64,
        stroke: &str,
        width: f64,
    ) {
        self.line(x1, y1, x2, y2, stroke, width);
        if cap > 0.0 {
            if (y1 - y2).abs() < 1e-9 {
                self.line(x1, y1 - cap, x1, y1 + cap, stroke, width);
                self.line(x2, y2 - cap, x2, y2 + cap, stroke, width);
            } else {
                self.line(x1 - cap, y1, x1 + cap, y1, stroke, width);
                self.line(x2 - cap, y2, x2 + cap, y2, stroke, width);
            }
        }
    }

    /// A marker of `style` centred on (x, y) with radius about `r`.
    pub(crate) fn marker(&mut self, style: &Style, x: f64, y: f64, r: f64) {
        // Grouped so that a reader (and the structure tests) can count the points drawn.
        self.buf.push_str("<g class=\"marker\">");
        let fill = style.color;
        let stroke = "#ffffff";
        let sw = "0.8";
        match style.marker {
            Marker::Circle => {
                let _ = writeln!(
                    self.buf,
                    "<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{sw}\"/>",
                    num(x),
                    num(y),
                    num(r)
                );
            }
            Marker::Square => {
                let h = r * 0.9;
                let _ = writeln!(
                    self.buf,
                    "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{sw}\"/>",
                    num(x - h),
                    num(y - h),
                    num(2.0 * h),
                    num(2.0 * h)
                );
            }
            Marker::Triangle | Marker::TriangleDown => {
                let s = if style.marker == Marker::Triangle {
                    1.0
                } else {
                    -1.0
                };
                let r = r * 1.2;
                let pts = [
                    (x, y - s * r),
                    (x + r * 0.866, y + s * r * 0.5),
                    (x - r * 0.866, y + s * r * 0.5),
                ];
                let _ = writeln!(
                    self.buf,
                    "<polygon points=\"{}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{sw}\"/>",
                    points(&pts)
                );
            }
            Marker::Diamond => {
                let r = r * 1.2;
                let pts = [(x, y - r), (x + r, y), (x, y + r), (x - r, y)];
                let _ = writeln!(
                    self.buf,
                    "<polygon points=\"{}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{sw}\"/>",
                    points(&pts)
                );
            }
        }
        self.buf.push_str("</g>");
    }
}

fn points(pts: &[(f64, f64)]) -> String {
    let mut s = String::new();
    for (i, (x, y)) in pts.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{},{}", num(*x), num(*y));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("a<b & \"c\" 'd' >"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos; &gt;"
        );
        assert_eq!(escape("Ünïcødé — 漢字"), "Ünïcødé — 漢字");
    }

    #[test]
    fn numbers_have_fixed_precision() {
        assert_eq!(num(1.0), "1");
        assert_eq!(num(1.234567), "1.23");
        assert_eq!(num(-0.001), "0");
        assert_eq!(num(2.5), "2.5");
        assert_eq!(num(f64::NAN), "0");
        assert_eq!(num(-12.346), "-12.35");
    }
}
