//! The built-in problems: multi-step arithmetic word problems with exact answers,
//! generated from a fixed seed so every build has the same 60 problems. The numbers are
//! large enough that a calculator helps.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// One problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub id: String,
    pub question: String,
    /// The exact answer.
    pub answer: f64,
    /// The expression that gives it (for reading transcripts; never shown to the model).
    pub expression: String,
}

/// How many built-in problems there are.
pub const COUNT: usize = 60;

/// The built-in problems, in a fixed order that cycles through the templates.
pub fn builtin() -> Vec<Problem> {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5ca1_ab1e);
    (0..COUNT)
        .map(|i| {
            let (question, expression, answer) = match i % 5 {
                0 => {
                    let (a, b) = (rng.gen_range(12..99), rng.gen_range(13..48));
                    let c = rng.gen_range(100..(a * b));
                    (
                        format!("A warehouse holds {a} crates with {b} bottles in each. {c} bottles are shipped out. How many bottles are left?"),
                        format!("{a} * {b} - {c}"),
                        (a * b - c) as f64,
                    )
                }
                1 => {
                    let (a, b, c) = (rng.gen_range(42..130), rng.gen_range(3..12), rng.gen_range(17..400));
                    (
                        format!("A train runs at {a} km per hour for {b} hours, then covers another {c} km. How many km does it travel in total?"),
                        format!("{a} * {b} + {c}"),
                        (a * b + c) as f64,
                    )
                }
                2 => {
                    let a = rng.gen_range(3..13);
                    let c = rng.gen_range(11..90);
                    // Tickets a multiple of the people, so the share is a whole number.
                    let b = a * rng.gen_range(2..9);
                    (
                        format!("{a} friends split the cost of {b} concert tickets at {c} dollars each equally. How many dollars does each friend pay?"),
                        format!("{b} * {c} / {a}"),
                        (b * c / a) as f64,
                    )
                }
                3 => {
                    let (a, b) = (rng.gen_range(14..60), rng.gen_range(16..45));
                    let c = rng.gen_range(20..(a * b / 2));
                    let d = rng.gen_range(30..300);
                    (
                        format!("A farmer plants {a} rows of {b} apple trees. A storm destroys {c} of them, and then the farmer plants {d} new trees. How many apple trees are there now?"),
                        format!("{a} * {b} - {c} + {d}"),
                        (a * b - c + d) as f64,
                    )
                }
                _ => {
                    let (a, b, c) = (rng.gen_range(101..999), rng.gen_range(101..999), rng.gen_range(7..40));
                    let d = rng.gen_range(1000..9999);
                    (
                        format!("What is ({a} + {b}) × {c} − {d}?"),
                        format!("({a} + {b}) * {c} - {d}"),
                        ((a + b) * c - d) as f64,
                    )
                }
            };
            Problem {
                id: format!("calc-{:02}", i + 1),
                question,
                answer,
                expression,
            }
        })
        .collect()
}

/// The number in a final answer: the first number in the text (thousands separators,
/// a leading currency sign and a trailing unit allowed), or `None`.
pub fn parse_number(text: &str) -> Option<f64> {
    let t = text.replace(',', "");
    let bytes = t.as_bytes();
    let start = bytes.iter().enumerate().position(|(i, b)| {
        b.is_ascii_digit() || (*b == b'-' && bytes.get(i + 1).is_some_and(|n| n.is_ascii_digit()))
    })?;
    let mut end = start + 1;
    while end < bytes.len() && (bytes[end].is_ascii_digit() || bytes[end] == b'.') {
        end += 1;
    }
    t[start..end].trim_end_matches('.').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_fixed_and_their_answers_match_their_expressions() {
        let a = builtin();
        assert_eq!(a, builtin());
        assert_eq!(a.len(), COUNT);
        for p in &a {
            let v = crate::calc::eval(&p.expression).unwrap();
            assert_eq!(v, p.answer, "{}", p.id);
            assert!(p.answer >= 0.0 && p.answer == p.answer.trunc(), "{}", p.id);
        }
        let ids: std::collections::BTreeSet<_> = a.iter().map(|p| &p.id).collect();
        assert_eq!(ids.len(), COUNT);
    }

    #[test]
    fn numbers_are_read_from_answers() {
        assert_eq!(parse_number("1,234"), Some(1234.0));
        assert_eq!(parse_number("$56 dollars"), Some(56.0));
        assert_eq!(parse_number("about -3.5 km."), Some(-3.5));
        assert_eq!(parse_number("12."), Some(12.0));
        assert_eq!(parse_number("none"), None);
        assert_eq!(parse_number("a-b"), None);
    }
}
