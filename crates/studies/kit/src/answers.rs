//! Reading a discrete answer (Yes/No, or a choice letter) from a model's output.
//!
//! Logprob path: the first generated position that is not just punctuation or
//! whitespace (so `(` then `A` works as well as `A`), with the probability of each
//! answer summed over its surface forms in that position's top-k list (`Yes`, ` yes`,
//! `YES`…). Sampling path: the answer the text starts with. Anything else is
//! *unparseable* and is counted as such, never guessed.

use std::collections::BTreeMap;

use shammie_core::TokenLogprob;

/// The kind of answer a question expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerKind {
    YesNo,
    Letter,
}

/// Normalises one answer surface form to its label (`Yes`, `No`, `A`…), if it is one.
pub fn label_of(kind: AnswerKind, surface: &str) -> Option<String> {
    let t = surface
        .trim()
        .trim_matches(|c: char| c == '"' || c == '\'' || c == '*' || c == '.' || c == ':');
    match kind {
        AnswerKind::YesNo => match t.to_ascii_lowercase().as_str() {
            "yes" => Some("Yes".into()),
            "no" => Some("No".into()),
            _ => None,
        },
        AnswerKind::Letter => {
            let inner = t.trim_start_matches('(').trim_end_matches(')').trim();
            let mut cs = inner.chars();
            match (cs.next(), cs.next()) {
                (Some(c), None) if c.is_ascii_uppercase() => Some(c.to_string()),
                _ => None,
            }
        }
    }
}

fn is_filler(token: &str) -> bool {
    !token.is_empty()
        && token
            .chars()
            .all(|c| c.is_whitespace() || "(\"'*`[".contains(c))
}

/// Probability of each label at the answer position, from top-k log-probabilities.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelProbs {
    pub probs: BTreeMap<String, f64>,
    /// Index of the token position that was read.
    pub position: usize,
}

impl LabelProbs {
    /// p(a) / (p(a) + p(b)); `None` when neither label appears.
    pub fn normalised(&self, a: &str, b: &str) -> Option<f64> {
        let pa = self.probs.get(a).copied().unwrap_or(0.0);
        let pb = self.probs.get(b).copied().unwrap_or(0.0);
        (pa + pb > 0.0).then(|| pa / (pa + pb))
    }
    /// Total probability on any label of the kind.
    pub fn mass(&self) -> f64 {
        self.probs.values().sum()
    }
}

/// Reads label probabilities at the first non-filler position of `tokens`.
pub fn label_probs(kind: AnswerKind, tokens: &[TokenLogprob]) -> Option<LabelProbs> {
    let position = tokens.iter().position(|t| !is_filler(&t.token))?;
    let tok = &tokens[position];
    let mut probs: BTreeMap<String, f64> = BTreeMap::new();
    let mut seen_chosen = false;
    for alt in &tok.top {
        if alt.token == tok.token {
            seen_chosen = true;
        }
        if let Some(l) = label_of(kind, &alt.token) {
            *probs.entry(l).or_default() += alt.logprob.exp();
        }
    }
    // Some servers omit the chosen token from its own top list.
    if !seen_chosen {
        if let Some(l) = label_of(kind, &tok.token) {
            *probs.entry(l).or_default() += tok.logprob.exp();
        }
    }
    (!probs.is_empty()).then_some(LabelProbs { probs, position })
}

/// The answer a sampled text gives, read from its start: `Yes.`, `(B) because…`, `B`.
pub fn parse_text(kind: AnswerKind, text: &str) -> Option<String> {
    let t = text.trim_start().trim_start_matches(['"', '*', '\'']);
    match kind {
        AnswerKind::YesNo => {
            let word: String = t.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
            label_of(kind, &word)
        }
        AnswerKind::Letter => {
            // `(X` anywhere at the start, or a bare `X` closed by punctuation or the end:
            // "I think…" must not read as choice I.
            let (t, opened) = match t.strip_prefix('(') {
                Some(rest) => (rest, true),
                None => (t, false),
            };
            let mut cs = t.chars();
            let c = cs.next()?;
            let closed = match cs.next() {
                None => true,
                Some(n) => {
                    opened && !n.is_ascii_alphanumeric()
                        || matches!(n, ')' | '.' | ':' | ',' | '\n')
                }
            };
            (c.is_ascii_uppercase() && closed).then(|| c.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shammie_core::TopLogprob;

    fn tok(token: &str, top: &[(&str, f64)]) -> TokenLogprob {
        TokenLogprob {
            token: token.into(),
            logprob: top
                .iter()
                .find(|t| t.0 == token)
                .map(|t| t.1.ln())
                .unwrap_or(-1.0),
            top: top
                .iter()
                .map(|(t, p)| TopLogprob {
                    token: t.to_string(),
                    logprob: p.ln(),
                })
                .collect(),
        }
    }

    #[test]
    fn surface_forms_are_summed() {
        let t = vec![tok(
            "Yes",
            &[("Yes", 0.5), (" yes", 0.1), ("No", 0.2), ("Maybe", 0.1)],
        )];
        let p = label_probs(AnswerKind::YesNo, &t).unwrap();
        assert!((p.probs["Yes"] - 0.6).abs() < 1e-12);
        assert!((p.normalised("Yes", "No").unwrap() - 0.75).abs() < 1e-12);
        assert!((p.mass() - 0.8).abs() < 1e-12);
    }

    #[test]
    fn skips_an_opening_parenthesis() {
        let t = vec![
            tok("(", &[("(", 0.9), ("A", 0.05)]),
            tok("B", &[("B", 0.7), ("A", 0.2), ("C", 0.05)]),
        ];
        let p = label_probs(AnswerKind::Letter, &t).unwrap();
        assert_eq!(p.position, 1);
        assert!((p.normalised("B", "A").unwrap() - 0.7 / 0.9).abs() < 1e-12);
    }

    #[test]
    fn nothing_recognisable_is_none() {
        let t = vec![tok("I", &[("I", 0.6), ("As", 0.3)])];
        assert!(label_probs(AnswerKind::YesNo, &t).is_none());
        assert!(label_probs(AnswerKind::Letter, &[]).is_none());
    }

    #[test]
    fn text_answers() {
        assert_eq!(
            parse_text(AnswerKind::YesNo, " Yes, I would."),
            Some("Yes".into())
        );
        assert_eq!(parse_text(AnswerKind::YesNo, "no"), Some("No".into()));
        assert_eq!(parse_text(AnswerKind::YesNo, "Not sure"), None);
        assert_eq!(parse_text(AnswerKind::YesNo, "Yesterday"), None);
        assert_eq!(
            parse_text(AnswerKind::Letter, "(B) because"),
            Some("B".into())
        );
        assert_eq!(parse_text(AnswerKind::Letter, "A)"), Some("A".into()));
        assert_eq!(parse_text(AnswerKind::Letter, "As an AI"), None);
        assert_eq!(parse_text(AnswerKind::Letter, "I think (A)"), None);
        assert_eq!(
            parse_text(AnswerKind::Letter, "B.\nBecause"),
            Some("B".into())
        );
        assert_eq!(parse_text(AnswerKind::Letter, "(C "), Some("C".into()));
    }

    #[test]
    fn labels() {
        assert_eq!(label_of(AnswerKind::Letter, " (C)"), Some("C".into()));
        assert_eq!(label_of(AnswerKind::Letter, "AB"), None);
        assert_eq!(label_of(AnswerKind::YesNo, " YES"), Some("Yes".into()));
    }
}
