//! Reading a discrete answer (Yes/No, or a choice letter) from a model's output.
//!
//! Logprob path: the answer position ([`AnswerAt`]) — either the first generated
//! position that is not just punctuation or whitespace (so `(` then `A` works as well as
//! `A`), or strictly the first generated token (after a named opener such as `(`) — with
//! the probability of each answer summed over its surface forms in that position's top-k
//! list (`Yes`, ` yes`, `YES`…), each listed form kept so a reading can be explained.
//! Sampling path: the answer the text starts with. Anything else is *unparseable* and is
//! counted as such, never guessed.

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

/// Which generated position holds the answer on the logprob path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerAt {
    /// The first position whose token is not only whitespace or `(\"'*`[`: lenient, for
    /// answers that may open with a quote or a parenthesis.
    FirstNonFiller,
    /// The first generated token, or the second when the first is exactly one of
    /// `openers` (e.g. `(` and ` (` before a letter): the answer position itself. An
    /// answer the model gives only later (`"Yes`, `**Yes**`) is not read.
    First { openers: &'static [&'static str] },
}

impl AnswerAt {
    /// The index of the answer position in `tokens`, if there is one.
    pub fn position(self, tokens: &[TokenLogprob]) -> Option<usize> {
        match self {
            AnswerAt::FirstNonFiller => tokens.iter().position(|t| !is_filler(&t.token)),
            AnswerAt::First { openers } => match tokens.first() {
                None => None,
                Some(t) if openers.contains(&t.token.as_str()) => (tokens.len() > 1).then_some(1),
                Some(_) => Some(0),
            },
        }
    }
}

/// Probability of each label at the answer position, from top-k log-probabilities.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelProbs {
    pub probs: BTreeMap<String, f64>,
    /// Per label, the listed tokens that made up its probability, with theirs (in list
    /// order).
    pub forms: BTreeMap<String, Vec<(String, f64)>>,
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
    label_probs_at(kind, tokens, AnswerAt::FirstNonFiller)
}

/// Reads label probabilities at the answer position `at` of `tokens`.
pub fn label_probs_at(
    kind: AnswerKind,
    tokens: &[TokenLogprob],
    at: AnswerAt,
) -> Option<LabelProbs> {
    let position = at.position(tokens)?;
    let tok = &tokens[position];
    let mut probs: BTreeMap<String, f64> = BTreeMap::new();
    let mut forms: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    let mut add = |l: String, token: &str, p: f64| {
        *probs.entry(l.clone()).or_default() += p;
        forms.entry(l).or_default().push((token.to_string(), p));
    };
    let mut seen_chosen = false;
    for alt in &tok.top {
        if alt.token == tok.token {
            seen_chosen = true;
        }
        if let Some(l) = label_of(kind, &alt.token) {
            add(l, &alt.token, alt.logprob.exp());
        }
    }
    // Some servers omit the chosen token from its own top list.
    if !seen_chosen {
        if let Some(l) = label_of(kind, &tok.token) {
            add(l, &tok.token, tok.logprob.exp());
        }
    }
    (!probs.is_empty()).then_some(LabelProbs {
        probs,
        forms,
        position,
    })
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
    fn the_strict_position_reads_the_first_token_or_the_one_after_an_opener() {
        // `"` then `Yes`: the lenient reader skips the quote; the strict one reads the
        // quote's position, where no answer is listed.
        let quoted = vec![
            tok("\"", &[("\"", 0.9), ("Yes", 0.02)]),
            tok("Yes", &[("Yes", 0.8), ("No", 0.1)]),
        ];
        let lenient = label_probs(AnswerKind::YesNo, &quoted).unwrap();
        assert_eq!(lenient.position, 1);
        let strict = AnswerAt::First { openers: &[] };
        let p = label_probs_at(AnswerKind::YesNo, &quoted, strict).unwrap();
        assert_eq!(p.position, 0);
        assert_eq!(p.forms["Yes"].len(), 1);
        assert!((p.forms["Yes"][0].1 - 0.02).abs() < 1e-12);
        assert!(!p.probs.contains_key("No"));
        // A named opener is stepped over, once.
        let paren = vec![
            tok(" (", &[(" (", 0.95)]),
            tok("B", &[("B", 0.6), (" B", 0.1), ("A", 0.3)]),
        ];
        let open = AnswerAt::First {
            openers: &["(", " ("],
        };
        let p = label_probs_at(AnswerKind::Letter, &paren, open).unwrap();
        assert_eq!(p.position, 1);
        // B = 0.6 + 0.1, from two listed forms.
        assert!((p.probs["B"] - 0.7).abs() < 1e-12);
        let forms: Vec<(&str, f64)> = p.forms["B"].iter().map(|(t, p)| (t.as_str(), *p)).collect();
        assert_eq!((forms[0].0, forms[1].0), ("B", " B"));
        assert!((forms[0].1 - 0.6).abs() < 1e-12 && (forms[1].1 - 0.1).abs() < 1e-12);
        assert!(label_probs_at(AnswerKind::Letter, &paren[..1], open).is_none());
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
