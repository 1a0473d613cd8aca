//! Text measurement without a font engine: per-character advance widths.
//!
//! Every label's width is estimated from a table of advance widths (in thousandths of
//! an em) that is, character by character, the larger of DejaVu Sans and Liberation
//! Sans (metric-compatible with Arial and Helvetica), regular and bold. The SVG asks for
//! `Helvetica, Arial, Liberation Sans, DejaVu Sans, sans-serif`, so whichever of those the
//! viewer picks, the real text is at most as wide as the estimate and a layout that
//! keeps estimated boxes apart keeps the real text apart. Characters outside the table
//! get a conservative class width (CJK and emoji a full em).

/// Height above the baseline of a text box, as a fraction of the font size (covers
/// accented capitals).
pub const ASCENT: f64 = 0.93;
/// Depth below the baseline of a text box, as a fraction of the font size.
pub const DESCENT: f64 = 0.24;
/// Distance between baselines of wrapped lines, as a fraction of the font size.
pub const LINE_HEIGHT: f64 = 1.25;

/// Regular advance widths of ASCII 32..=126 in 1/1000 em.
const REGULAR: [u16; 95] = [
    318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318, 337, 636, 636, 636,
    636, 636, 636, 636, 636, 636, 636, 337, 337, 838, 838, 838, 556, 1015, 684, 686, 722, 770, 667,
    611, 778, 752, 295, 500, 667, 557, 863, 748, 787, 667, 787, 722, 667, 611, 732, 684, 989, 685,
    667, 685, 390, 337, 390, 838, 556, 500, 613, 635, 550, 635, 615, 352, 635, 634, 278, 278, 579,
    278, 974, 634, 612, 635, 635, 411, 521, 392, 634, 592, 818, 592, 592, 525, 636, 337, 636, 838,
];

/// Bold advance widths of ASCII 32..=126 in 1/1000 em.
const BOLD: [u16; 95] = [
    348, 456, 521, 838, 696, 1002, 872, 306, 457, 457, 523, 838, 380, 415, 380, 365, 696, 696, 696,
    696, 696, 696, 696, 696, 696, 696, 400, 400, 838, 838, 838, 611, 1000, 774, 762, 734, 830, 683,
    683, 821, 837, 372, 556, 775, 637, 995, 837, 850, 733, 850, 770, 720, 682, 812, 774, 1103, 771,
    724, 725, 457, 365, 457, 838, 556, 500, 675, 716, 593, 716, 678, 435, 716, 712, 343, 343, 665,
    343, 1042, 712, 687, 716, 716, 493, 595, 478, 712, 652, 924, 645, 652, 582, 712, 365, 712, 838,
];

/// Advance width of one character in em.
pub fn char_width(c: char, bold: bool) -> f64 {
    let code = c as u32;
    if (32..=126).contains(&code) {
        let table = if bold { &BOLD } else { &REGULAR };
        return f64::from(table[(code - 32) as usize]) / 1000.0;
    }
    let w = match c {
        '\u{2212}' | '\u{00D7}' | '\u{00B1}' | '\u{2248}' | '\u{2264}' | '\u{2265}' => 0.838,
        '\u{2013}' => 0.556,
        '\u{2014}' | '\u{2026}' => 1.0,
        '\u{00B7}' | '\u{2018}' | '\u{2019}' => 0.38,
        '\u{201C}' | '\u{201D}' => 0.657,
        '\u{00A0}' => 0.348,
        // Combining marks and zero-width characters take no advance.
        '\u{0300}'..='\u{036F}' | '\u{200B}'..='\u{200F}' | '\u{FE00}'..='\u{FE0F}' => 0.0,
        // East Asian wide characters, Hangul, fullwidth forms, emoji: a full em.
        '\u{1100}'..='\u{115F}'
        | '\u{2E80}'..='\u{A4CF}'
        | '\u{AC00}'..='\u{D7A3}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{FE30}'..='\u{FE4F}'
        | '\u{FF00}'..='\u{FF60}'
        | '\u{FFE0}'..='\u{FFE6}'
        | '\u{1F000}'..='\u{1FAFF}'
        | '\u{20000}'..='\u{3FFFD}' => 1.0,
        _ if c.is_uppercase() => 0.85,
        _ => 0.72,
    };
    if bold && w > 0.0 && w < 1.0 {
        (w * 1.1_f64).min(1.0)
    } else {
        w
    }
}

/// Estimated width in pixels of `s` set at `size` pixels.
pub fn width(s: &str, size: f64, bold: bool) -> f64 {
    s.chars().map(|c| char_width(c, bold)).sum::<f64>() * size
}

/// Splits `s` at spaces into lines no wider than `max_width` where possible. A single
/// word wider than `max_width` gets a line of its own (callers widen the layout to it).
pub fn wrap(s: &str, size: f64, bold: bool, max_width: f64) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in s.split(' ').filter(|w| !w.is_empty()) {
        if cur.is_empty() {
            cur.push_str(word);
            continue;
        }
        let candidate = format!("{cur} {word}");
        if width(&candidate, size, bold) <= max_width {
            cur = candidate;
        } else {
            lines.push(std::mem::take(&mut cur));
            cur.push_str(word);
        }
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// Width of the widest space-separated word of `s` (what [`wrap`] cannot break).
pub(crate) fn longest_word(s: &str, size: f64, bold: bool) -> f64 {
    s.split(' ')
        .map(|w| width(w, size, bold))
        .fold(0.0, f64::max)
}

/// Replaces characters that XML 1.0 forbids and all control characters (tabs and
/// newlines included) by spaces or U+FFFD, so a label is one line of valid text.
pub(crate) fn clean_label(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => ' ',
            c if (c as u32) < 0x20 || c == '\u{7F}' => '\u{FFFD}',
            '\u{FFFE}' | '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_follow_the_table() {
        assert!((width("0", 10.0, false) - 6.36).abs() < 1e-9);
        assert!(width("W", 12.0, false) > width("i", 12.0, false) * 3.0);
        assert!(width("bold", 12.0, true) > width("bold", 12.0, false));
        assert_eq!(width("", 12.0, false), 0.0);
        assert!((width("漢字", 10.0, false) - 20.0).abs() < 1e-9);
        assert_eq!(width("e\u{0301}", 10.0, false), width("e", 10.0, false));
    }

    #[test]
    fn wrap_breaks_at_spaces_and_keeps_long_words() {
        let lines = wrap("one two three four", 10.0, false, 40.0);
        assert!(lines.len() > 1);
        assert_eq!(lines.join(" "), "one two three four");
        for l in &lines {
            assert!(width(l, 10.0, false) <= 40.0 || !l.contains(' '));
        }
        assert_eq!(
            wrap("supercalifragilistic", 10.0, false, 20.0),
            vec!["supercalifragilistic"]
        );
        assert!(wrap("   ", 10.0, false, 20.0).is_empty());
    }

    #[test]
    fn clean_label_removes_control_characters() {
        assert_eq!(
            clean_label(" a\tb\nc\u{1}\u{FFFF} "),
            "a b c\u{FFFD}\u{FFFD}"
        );
    }
}
