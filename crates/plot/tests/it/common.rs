//! Checks on rendered SVG: well-formed XML, finite numbers, text boxes inside the
//! canvas and apart from each other.

#![allow(dead_code)]

use shammie_plot::text;

#[derive(Debug, Clone)]
pub(crate) struct TextBox {
    pub s: String,
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

impl TextBox {
    fn overlaps(&self, o: &TextBox) -> bool {
        let eps = 0.01;
        self.x0 < o.x1 - eps && o.x0 < self.x1 - eps && self.y0 < o.y1 - eps && o.y0 < self.y1 - eps
    }
}

fn attr(n: &roxmltree::Node<'_, '_>, name: &str) -> f64 {
    n.attribute(name)
        .unwrap_or_else(|| panic!("<{}> lacks {name}", n.tag_name().name()))
        .parse()
        .unwrap_or_else(|e| panic!("bad number in {name}: {e}"))
}

/// Parses `svg` (panics if it is not well-formed), checks its numbers are finite and
/// returns (width, height, text boxes).
pub(crate) fn parse(svg: &str) -> (f64, f64, Vec<TextBox>) {
    let doc = roxmltree::Document::parse(svg)
        .unwrap_or_else(|e| panic!("not well-formed XML: {e}\n{svg}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    let (w, h) = (attr(&root, "width"), attr(&root, "height"));
    assert!(w > 0.0 && h > 0.0);
    for n in doc.descendants().filter(|n| n.is_element()) {
        for a in n.attributes() {
            let v = a.value();
            if [
                "x", "y", "x1", "x2", "y1", "y2", "cx", "cy", "r", "width", "height",
            ]
            .contains(&a.name())
            {
                let f: f64 = v
                    .parse()
                    .unwrap_or_else(|_| panic!("attribute {}={v:?} is not a number", a.name()));
                assert!(f.is_finite());
            }
            if a.name() == "points" {
                for p in v.split([' ', ',']) {
                    assert!(
                        p.parse::<f64>().is_ok_and(f64::is_finite),
                        "bad point {p:?}"
                    );
                }
            }
        }
    }
    let mut boxes = Vec::new();
    for n in doc.descendants().filter(|n| n.has_tag_name("text")) {
        let s: String = n.text().unwrap_or("").to_string();
        let (x, y, size) = (attr(&n, "x"), attr(&n, "y"), attr(&n, "font-size"));
        let bold = n.attribute("font-weight") == Some("bold");
        let wd = text::width(&s, size, bold);
        let (a, b) = match n.attribute("text-anchor").unwrap_or("start") {
            "start" => (0.0, wd),
            "middle" => (-wd / 2.0, wd / 2.0),
            "end" => (-wd, 0.0),
            other => panic!("unknown anchor {other}"),
        };
        let (up, down) = (text::ASCENT * size, text::DESCENT * size);
        let b = match n.attribute("transform") {
            None => TextBox {
                s,
                x0: x + a,
                x1: x + b,
                y0: y - up,
                y1: y + down,
            },
            Some(t) => {
                assert!(t.starts_with("rotate(-90 "), "unexpected transform {t}");
                // (dx, dy) -> (dy, -dx)
                TextBox {
                    s,
                    x0: x - up,
                    x1: x + down,
                    y0: y - b,
                    y1: y - a,
                }
            }
        };
        boxes.push(b);
    }
    (w, h, boxes)
}

/// Asserts every text box lies inside the canvas and no two overlap.
pub(crate) fn assert_text_layout(svg: &str) {
    let (w, h, boxes) = parse(svg);
    for b in &boxes {
        assert!(
            b.x0 >= -0.01 && b.x1 <= w + 0.01 && b.y0 >= -0.01 && b.y1 <= h + 0.01,
            "text {:?} ({:.1},{:.1})-({:.1},{:.1}) leaves the {w}x{h} canvas",
            b.s,
            b.x0,
            b.y0,
            b.x1,
            b.y1
        );
    }
    for (i, a) in boxes.iter().enumerate() {
        for b in &boxes[i + 1..] {
            assert!(!a.overlaps(b), "texts overlap: {a:?} and {b:?}");
        }
    }
}

/// The `clipPath` rectangles of the plot areas (ids ending in `-e<panel>`), in panel order.
pub(crate) fn plot_areas(svg: &str) -> Vec<(f64, f64, f64, f64)> {
    let doc = roxmltree::Document::parse(svg).unwrap();
    let mut out = vec![];
    for n in doc.descendants().filter(|n| n.has_tag_name("clipPath")) {
        let id = n.attribute("id").unwrap();
        if let Some(k) = id
            .rsplit_once("-e")
            .map(|(_, k)| k.parse::<usize>().unwrap())
        {
            let r = n.first_element_child().unwrap();
            out.push((
                k,
                (
                    attr(&r, "x"),
                    attr(&r, "y"),
                    attr(&r, "width"),
                    attr(&r, "height"),
                ),
            ));
        }
    }
    out.sort_by_key(|(k, _)| *k);
    out.into_iter().map(|(_, r)| r).collect()
}

/// All text content, in document order.
pub(crate) fn texts(svg: &str) -> Vec<String> {
    parse(svg).2.into_iter().map(|b| b.s).collect()
}
