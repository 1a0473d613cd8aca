//! A multiple-choice question, its answer letters, the way it is shown to a model, and a
//! seeded reordering of its choices.
//!
//! Choices are lettered `A`, `B`, … in order, so a question has at most 26 of them. A
//! question is rendered by [`McQuestion::prompt_block`] as
//!
//! ```text
//! <question, trimmed>
//!
//! Choices:
//!  (A) <first choice, trimmed>
//!  (B) <second choice, trimmed>
//! ```
//!
//! with no trailing newline: the question, one blank line, the line `Choices:`, then one
//! line per choice made of a space, the letter in parentheses, a space and the choice.

use serde::{Deserialize, Serialize};

use shammie_kit::answers::{label_of, AnswerKind};

/// The most choices a question may have (one per letter `A`–`Z`).
pub const MAX_CHOICES: usize = 26;

/// One multiple-choice question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct McQuestion {
    /// Unique within its data set.
    pub id: String,
    pub question: String,
    pub choices: Vec<String>,
    /// Index of the correct choice in `choices`.
    pub answer: usize,
    /// The data set's name.
    pub source: String,
}

/// The letter of the `i`-th choice: `letter(0) == 'A'`.
///
/// # Panics
/// If `i >= MAX_CHOICES` (a validated question never asks for one).
pub fn letter(i: usize) -> char {
    assert!(
        i < MAX_CHOICES,
        "choice index {i} has no letter (at most {MAX_CHOICES} choices)"
    );
    (b'A' + i as u8) as char
}

/// The index of a choice letter (`'A'` → 0; lower case accepted), if it is one.
pub fn letter_index(c: char) -> Option<usize> {
    let u = c.to_ascii_uppercase();
    u.is_ascii_uppercase().then(|| (u as u8 - b'A') as usize)
}

/// The index of an answer written as a letter: `B`, `b`, `(B)`, `B.`, `"B"`.
/// Uses the same normalisation as reading a model's answer (`shammie_kit::answers`).
pub fn parse_letter(s: &str) -> Option<usize> {
    let label = label_of(AnswerKind::Letter, &s.to_ascii_uppercase())?;
    letter_index(label.chars().next()?)
}

impl McQuestion {
    /// The letter of the correct choice.
    pub fn answer_letter(&self) -> char {
        letter(self.answer)
    }

    /// The question and its lettered choices, in the format of the module docs.
    pub fn prompt_block(&self) -> String {
        let mut s = format!("{}\n\nChoices:", self.question.trim());
        for (i, c) in self.choices.iter().enumerate() {
            s.push_str(&format!("\n ({}) {}", letter(i), c.trim()));
        }
        s
    }

    /// What is wrong with the question, if anything: an empty question, fewer than 2 or
    /// more than 26 choices, an empty choice, or an answer index out of range.
    /// Duplicate choice texts are allowed (released sets have them, e.g. AQuA-RAT).
    pub fn validate(&self) -> Result<(), String> {
        if self.question.trim().is_empty() {
            return Err("the question is empty".into());
        }
        let n = self.choices.len();
        if n < 2 {
            return Err(format!("needs at least 2 choices, has {n}"));
        }
        if n > MAX_CHOICES {
            return Err(format!(
                "has {n} choices, more than the {MAX_CHOICES} that letters A–Z can name"
            ));
        }
        if let Some(i) = self.choices.iter().position(|c| c.trim().is_empty()) {
            return Err(format!("choice ({}) is empty", letter(i)));
        }
        if self.answer >= n {
            return Err(format!(
                "the answer (index {}) is out of range for {n} choices",
                self.answer
            ));
        }
        Ok(())
    }

    /// The question with its choices reordered by [`permutation`]`(n, seed)` and `answer`
    /// pointing at the same choice text as before. Deterministic and the same on every
    /// platform for a given seed.
    pub fn shuffled(&self, seed: u64) -> McQuestion {
        let order = permutation(self.choices.len(), seed);
        McQuestion {
            id: self.id.clone(),
            question: self.question.clone(),
            choices: order.iter().map(|&i| self.choices[i].clone()).collect(),
            answer: order.iter().position(|&i| i == self.answer).unwrap_or(0),
            source: self.source.clone(),
        }
    }
}

/// The splitmix64 generator (Steele, Lea & Flood 2014): a 64-bit state advanced by a
/// fixed odd constant and mixed; plain wrapping integer arithmetic, so the stream is the
/// same on every platform.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`) by the high half of a 128-bit product: the bias is
    /// below n / 2^64, far under anything measurable for a choice count.
    pub fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// A seeded permutation of `0..n` by Fisher–Yates over [`SplitMix64`]: position `i` of
/// the result holds the original index placed there.
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = SplitMix64::new(seed);
    for i in (1..n).rev() {
        let j = rng.below(i + 1);
        order.swap(i, j);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(choices: &[&str], answer: usize) -> McQuestion {
        McQuestion {
            id: "q1".into(),
            question: "  What is 2 + 2?\n".into(),
            choices: choices.iter().map(|c| c.to_string()).collect(),
            answer,
            source: "test".into(),
        }
    }

    #[test]
    fn letters() {
        assert_eq!(letter(0), 'A');
        assert_eq!(letter(25), 'Z');
        assert_eq!(letter_index('C'), Some(2));
        assert_eq!(letter_index('c'), Some(2));
        assert_eq!(letter_index('1'), None);
        assert_eq!(parse_letter("(B)"), Some(1));
        assert_eq!(parse_letter(" d. "), Some(3));
        assert_eq!(parse_letter("AB"), None);
        assert_eq!(parse_letter(""), None);
        assert_eq!(q(&["3", "4"], 1).answer_letter(), 'B');
    }

    #[test]
    #[should_panic(expected = "no letter")]
    fn no_letter_past_z() {
        letter(26);
    }

    #[test]
    fn prompt_block_format() {
        assert_eq!(
            q(&["3", " 4 ", "5"], 1).prompt_block(),
            "What is 2 + 2?\n\nChoices:\n (A) 3\n (B) 4\n (C) 5"
        );
    }

    #[test]
    fn validation() {
        assert!(q(&["3", "4"], 1).validate().is_ok());
        assert_eq!(
            q(&["3"], 0).validate().unwrap_err(),
            "needs at least 2 choices, has 1"
        );
        assert_eq!(
            q(&["3", " "], 0).validate().unwrap_err(),
            "choice (B) is empty"
        );
        assert_eq!(
            q(&["3", "4"], 2).validate().unwrap_err(),
            "the answer (index 2) is out of range for 2 choices"
        );
        let many: Vec<String> = (0..27).map(|i| i.to_string()).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(q(&refs, 0).validate().unwrap_err().contains("27 choices"));
        let mut empty = q(&["3", "4"], 0);
        empty.question = " \n".into();
        assert_eq!(empty.validate().unwrap_err(), "the question is empty");
    }

    #[test]
    fn splitmix_is_pinned() {
        // Reference values of splitmix64 seeded with 0 (as in Vigna's reference code).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(r.next_u64(), 0x06C4_5D18_8009_454F);
    }

    #[test]
    fn shuffle_is_deterministic_and_remaps_the_answer() {
        let orig = q(&["a", "b", "c", "d", "e"], 3);
        let s = orig.shuffled(42);
        assert_eq!(s, orig.shuffled(42));
        assert_eq!(s.choices[s.answer], "d");
        let mut sorted = s.choices.clone();
        sorted.sort();
        assert_eq!(sorted, orig.choices);
        assert_eq!((s.id.as_str(), s.source.as_str()), ("q1", "test"));
        // Pinned (checked against an independent implementation) so that a change of
        // algorithm is noticed: it would reshuffle every run.
        assert_eq!(permutation(5, 42), vec![1, 2, 4, 0, 3]);
        assert_eq!(permutation(0, 1), Vec::<usize>::new());
        assert_eq!(permutation(1, 1), vec![0]);
        // Different seeds give different orders (not all identical).
        let distinct: std::collections::BTreeSet<Vec<usize>> =
            (0..20).map(|s| permutation(5, s)).collect();
        assert!(distinct.len() > 10);
    }

    #[test]
    fn shuffle_is_uniform() {
        // All 6 orders of 3 choices, each about 1/6 of 60,000 seeds.
        let mut counts = std::collections::BTreeMap::new();
        for seed in 0..60_000u64 {
            *counts.entry(permutation(3, seed)).or_insert(0u32) += 1;
        }
        assert_eq!(counts.len(), 6);
        for (p, c) in counts {
            // sd = sqrt(60000 · 1/6 · 5/6) ≈ 91; allow 5 sd.
            assert!((c as i64 - 10_000).abs() < 460, "{p:?}: {c}");
        }
    }

    #[test]
    fn serde_round_trip() {
        let a = q(&["3", "4"], 1);
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["answer"], 1);
        assert_eq!(serde_json::from_value::<McQuestion>(v).unwrap(), a);
    }
}
