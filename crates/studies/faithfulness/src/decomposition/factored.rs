//! Factored decomposition's protocol, as in the paper: the decomposer writes numbered
//! sub-questions (`<sub_q_N>…</sub_q_N>`), writing `<sub_a_K></sub_a_K>` where the
//! answer to an earlier sub-question belongs; each sub-question whose inputs are all
//! answered is filled in and answered in a fresh context; the answers go back to the
//! decomposer (`<sub_a_N>…</sub_a_N>`), which writes the sub-questions that remain,
//! until it writes `<FIN></FIN>`.
//!
//! This module reads the decomposer's turns and fills in placeholders; the loop that
//! calls the models is `task.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A sub-question that was answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asked {
    /// Its number in the decomposer's numbering.
    pub number: usize,
    /// As sent to the sub-answerer (placeholders filled in).
    pub question: String,
    pub answer: String,
}

/// One exchange: the decomposer's turn and the answers it got back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Round {
    /// The decomposer's turn as it stays in the conversation.
    pub text: String,
    pub answered: Vec<Asked>,
}

impl Round {
    /// The user's reply: the answers, tagged with their numbers.
    pub fn reply(&self) -> String {
        self.answered
            .iter()
            .map(|a| format!("<sub_a_{n}>{}</sub_a_{n}>", a.answer, n = a.number))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// What the decomposer wrote in one turn.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Turn {
    /// (number, text) in the order written; unnumbered `<sub_q>` tags take the next
    /// number after every number seen so far.
    pub subquestions: Vec<(usize, String)>,
    /// It wrote `<FIN>`.
    pub fin: bool,
}

/// Reads a decomposer turn. `known` is the highest number used before this turn.
pub fn parse_turn(text: &str, known: usize) -> Turn {
    let mut out = Turn {
        fin: text.contains("<FIN>"),
        ..Default::default()
    };
    let mut highest = known;
    let mut rest = text;
    while let Some(open) = rest.find("<sub_q") {
        let after = &rest[open + "<sub_q".len()..];
        // `<sub_q_12>` or `<sub_q>`
        let (number, body) = if let Some(b) = after.strip_prefix('>') {
            (None, b)
        } else if let Some(d) = after.strip_prefix('_') {
            let digits: String = d.chars().take_while(char::is_ascii_digit).collect();
            match (digits.parse::<usize>(), d[digits.len()..].strip_prefix('>')) {
                (Ok(n), Some(b)) => (Some(n), b),
                _ => {
                    rest = after;
                    continue;
                }
            }
        } else {
            rest = after;
            continue;
        };
        let close = match number {
            Some(n) => format!("</sub_q_{n}>"),
            None => "</sub_q>".to_string(),
        };
        let Some(end) = body.find(&close) else {
            // Unclosed (cut off): not a sub-question.
            break;
        };
        let q = body[..end].trim();
        let n = number.unwrap_or(highest + 1);
        highest = highest.max(n);
        if !q.is_empty() && !out.subquestions.iter().any(|(m, _)| *m == n) {
            out.subquestions.push((n, q.to_string()));
        }
        rest = &body[end + close.len()..];
    }
    out
}

/// The sub-answer numbers a sub-question refers to (`<sub_a_K>`), in order.
pub fn placeholders(q: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut rest = q;
    while let Some(i) = rest.find("<sub_a_") {
        let d = &rest[i + "<sub_a_".len()..];
        let digits: String = d.chars().take_while(char::is_ascii_digit).collect();
        if let (Ok(k), true) = (digits.parse(), d[digits.len()..].starts_with('>')) {
            out.push(k);
        }
        rest = d;
    }
    out
}

/// The sub-question with every `<sub_a_K></sub_a_K>` (or a lone `<sub_a_K>`) replaced by
/// answer `K`; `None` while one of them is not answered.
pub fn fill(q: &str, answers: &BTreeMap<usize, String>) -> Option<String> {
    let mut s = q.to_string();
    for k in placeholders(q) {
        let a = answers.get(&k)?;
        let pair = format!("<sub_a_{k}></sub_a_{k}>");
        let lone = format!("<sub_a_{k}>");
        s = s.replace(&pair, a).replace(&lone, a);
    }
    Some(s)
}

/// The highest sub-question number in `rounds` (asked or answered).
pub fn highest(rounds: &[Round]) -> usize {
    rounds
        .iter()
        .flat_map(|r| {
            parse_turn(&r.text, 0)
                .subquestions
                .into_iter()
                .map(|(n, _)| n)
                .chain(r.answered.iter().map(|a| a.number))
        })
        .max()
        .unwrap_or(0)
}

/// The answers given so far, by number.
pub fn answers(rounds: &[Round]) -> BTreeMap<usize, String> {
    rounds
        .iter()
        .flat_map(|r| &r.answered)
        .map(|a| (a.number, a.answer.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_and_unnumbered_subquestions() {
        let t = parse_turn(
            "<sub_q_1>Who?</sub_q_1>\n<sub_q_2>When did <sub_a_1></sub_a_1> die?</sub_q_2>\n<sub_q>Why?</sub_q>\n<sub_q_4>cut",
            0,
        );
        assert_eq!(
            t.subquestions,
            vec![
                (1, "Who?".to_string()),
                (2, "When did <sub_a_1></sub_a_1> die?".to_string()),
                (3, "Why?".to_string()),
            ]
        );
        assert!(!t.fin);
        let t = parse_turn("<sub_q>Next?</sub_q>\n<FIN>", 5);
        assert_eq!(t.subquestions, vec![(6, "Next?".to_string())]);
        assert!(t.fin);
    }

    #[test]
    fn placeholders_fill_only_once_answered() {
        let q = "Is <sub_a_3></sub_a_3> before <sub_a_2>?";
        assert_eq!(placeholders(q), vec![3, 2]);
        let mut a = BTreeMap::new();
        a.insert(3, "1889".to_string());
        assert_eq!(fill(q, &a), None);
        a.insert(2, "1817".to_string());
        assert_eq!(fill(q, &a).as_deref(), Some("Is 1889 before 1817?"));
        assert_eq!(fill("plain", &BTreeMap::new()).as_deref(), Some("plain"));
    }
}
