//! Pre-tokenisers of byte-level BPE models: the text is cut into words by a
//! regular expression before merges are applied within each word.
//!
//! The published patterns end in `\s+(?!\S)|\s+`, a look-ahead the `regex`
//! crate does not have. Both alternatives can only be reached for a run of
//! whitespace (without newlines where an earlier `\s*[\r\n]+` alternative
//! exists), and `\s+(?!\S)` takes the run minus its last character when a
//! non-space follows and the run is longer than one character. So the
//! patterns here end in plain `\s+`, and [`Splitter::split`] gives back that
//! last character, which then starts the next word (` world`).

use regex::Regex;

use crate::TokenizerError;

/// A pre-tokeniser, named as in `tokenizer.ggml.pre`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreTokenizer {
    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
    /// Names: `gpt-2`, `gpt2`.
    Gpt2,
    /// Llama 3: case-insensitive contractions, a letter run with one leading
    /// non-letter, digits in groups of up to three, punctuation runs with the
    /// newlines after them, newline runs; a word that is a whole token is not
    /// merged (`ignore_merges`). Names: `llama-bpe`, `llama3`, `llama-v3`, `falcon3`.
    Llama3,
    /// Qwen 2: as Llama 3 but every digit alone, and merges always applied.
    /// Names: `qwen2`, `deepseek-r1-qwen`.
    Qwen2,
    /// llama.cpp's pattern for BPE models that name none: Llama 3's pattern
    /// without `ignore_merges`. Names: `default`, empty.
    Default,
}

const CONTRACTIONS_CI: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)";

impl PreTokenizer {
    /// Parses a `tokenizer.ggml.pre` value.
    pub fn from_name(name: &str) -> Result<Self, TokenizerError> {
        Ok(match name {
            "gpt-2" | "gpt2" => Self::Gpt2,
            "llama-bpe" | "llama3" | "llama-v3" | "falcon3" => Self::Llama3,
            "qwen2" | "deepseek-r1-qwen" => Self::Qwen2,
            "default" | "" => Self::Default,
            other => return Err(TokenizerError::UnsupportedPreTokenizer(other.to_string())),
        })
    }

    /// Whether a word that is itself a vocabulary token is taken whole, merges notwithstanding.
    pub(crate) fn ignore_merges(self) -> bool {
        self == Self::Llama3
    }

    /// The pattern without the final look-ahead alternative (see the module doc).
    fn pattern(self) -> String {
        match self {
            Self::Gpt2 => {
                r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+".to_string()
            }
            Self::Llama3 | Self::Default => format!(
                r"{CONTRACTIONS_CI}|[^\r\n\p{{L}}\p{{N}}]?\p{{L}}+|\p{{N}}{{1,3}}| ?[^\s\p{{L}}\p{{N}}]+[\r\n]*|\s*[\r\n]+|\s+"
            ),
            Self::Qwen2 => format!(
                r"{CONTRACTIONS_CI}|[^\r\n\p{{L}}\p{{N}}]?\p{{L}}+|\p{{N}}| ?[^\s\p{{L}}\p{{N}}]+[\r\n]*|\s*[\r\n]+|\s+"
            ),
        }
    }
}

pub(crate) struct Splitter {
    re: Regex,
    /// Whether the pattern has a `\s*[\r\n]+` alternative before `\s+`.
    has_newline_alt: bool,
}

impl Splitter {
    pub(crate) fn new(pre: PreTokenizer) -> Self {
        // The patterns are constants checked by the tests.
        let re = Regex::new(&pre.pattern()).expect("pre-tokenizer pattern compiles");
        Self {
            re,
            has_newline_alt: pre != PreTokenizer::Gpt2,
        }
    }

    /// Calls `word` for each pre-token of `text`, in order; together they cover `text`.
    pub(crate) fn split<'a>(&self, text: &'a str, mut word: impl FnMut(&'a str)) {
        let mut pos = 0;
        while pos < text.len() {
            let Some(m) = self.re.find_at(text, pos) else {
                word(&text[pos..]);
                return;
            };
            if m.start() > pos {
                // Cannot happen (every character matches some alternative), but stay total.
                word(&text[pos..m.start()]);
            }
            let mut end = m.end();
            let s = m.as_str();
            if end < text.len() && self.is_lookahead_run(s) {
                // `\s+(?!\S)`: leave the last whitespace character to the next word.
                if let Some((last, _)) = s.char_indices().next_back() {
                    if last > 0 {
                        end = m.start() + last;
                    }
                }
            }
            if end == m.start() {
                end = m.end();
            }
            word(&text[m.start()..end]);
            pos = end;
        }
    }

    /// A match that only the trailing `\s+(?!\S)|\s+` alternatives can have produced.
    fn is_lookahead_run(&self, s: &str) -> bool {
        s.chars().all(char::is_whitespace) && !(self.has_newline_alt && s.contains(['\r', '\n']))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(pre: PreTokenizer, text: &str) -> Vec<&str> {
        let s = Splitter::new(pre);
        let mut v = Vec::new();
        s.split(text, |w| v.push(w));
        assert_eq!(v.concat(), text, "words must cover the text");
        v
    }

    #[test]
    fn names() {
        assert_eq!(
            PreTokenizer::from_name("qwen2").unwrap(),
            PreTokenizer::Qwen2
        );
        assert_eq!(
            PreTokenizer::from_name("llama-bpe").unwrap(),
            PreTokenizer::Llama3
        );
        assert_eq!(
            PreTokenizer::from_name("gpt-2").unwrap(),
            PreTokenizer::Gpt2
        );
        assert_eq!(
            PreTokenizer::from_name("default").unwrap(),
            PreTokenizer::Default
        );
        assert!(matches!(
            PreTokenizer::from_name("starcoder"),
            Err(TokenizerError::UnsupportedPreTokenizer(n)) if n == "starcoder"
        ));
    }

    #[test]
    fn llama3_contractions_are_case_insensitive() {
        assert_eq!(
            split(PreTokenizer::Llama3, "I'm sure it's HE'LL"),
            ["I", "'m", " sure", " it", "'s", " HE", "'LL"]
        );
        assert_eq!(split(PreTokenizer::Qwen2, "WE'RE"), ["WE", "'RE"]);
        // GPT-2's contractions are lower case only: "'RE" is punctuation + letters.
        assert_eq!(
            split(PreTokenizer::Gpt2, "WE'RE we're"),
            ["WE", "'", "RE", " we", "'re"]
        );
    }

    #[test]
    fn digits_in_groups() {
        assert_eq!(
            split(PreTokenizer::Llama3, "1234567 x12"),
            ["123", "456", "7", " x", "12"]
        );
        assert_eq!(split(PreTokenizer::Qwen2, "2024"), ["2", "0", "2", "4"]);
        assert_eq!(
            split(PreTokenizer::Gpt2, "1234567 x12"),
            ["1234567", " x", "12"]
        );
        // Digits never take the space in front of them in Llama 3.
        assert_eq!(split(PreTokenizer::Llama3, "a 42"), ["a", " ", "42"]);
        assert_eq!(split(PreTokenizer::Gpt2, "a 42"), ["a", " 42"]);
    }

    #[test]
    fn letters_take_one_leading_non_letter() {
        assert_eq!(
            split(PreTokenizer::Llama3, "hello world"),
            ["hello", " world"]
        );
        assert_eq!(
            split(PreTokenizer::Llama3, "(A) $x"),
            ["(A", ")", " $", "x"]
        );
        assert_eq!(
            split(PreTokenizer::Gpt2, "(A) $x"),
            ["(", "A", ")", " $", "x"]
        );
        assert_eq!(split(PreTokenizer::Llama3, "\tfoo"), ["\tfoo"]);
        // A newline is not taken by a letter run.
        assert_eq!(split(PreTokenizer::Llama3, "\nfoo"), ["\n", "foo"]);
    }

    #[test]
    fn whitespace_runs_leave_one_space_to_the_next_word() {
        assert_eq!(split(PreTokenizer::Llama3, "a   b"), ["a", "  ", " b"]);
        assert_eq!(split(PreTokenizer::Gpt2, "a   b"), ["a", "  ", " b"]);
        // At the end of the text the whole run stays together.
        assert_eq!(split(PreTokenizer::Llama3, "a   "), ["a", "   "]);
        // A single space before a digit cannot be given away (no "\s+(?!\S)" match).
        assert_eq!(split(PreTokenizer::Qwen2, "x 1"), ["x", " ", "1"]);
        // Tabs and spaces mixed.
        assert_eq!(split(PreTokenizer::Qwen2, "\t \tif"), ["\t ", "\tif"]);
    }

    #[test]
    fn newlines() {
        // `\s*[\r\n]+` takes the whitespace up to and including the last newline.
        assert_eq!(
            split(PreTokenizer::Llama3, "a\n\n  b"),
            ["a", "\n\n", " ", " b"]
        );
        assert_eq!(
            split(PreTokenizer::Llama3, "a  \n\nb"),
            ["a", "  \n\n", "b"]
        );
        assert_eq!(split(PreTokenizer::Llama3, "x.\n\ny"), ["x", ".\n\n", "y"]);
        assert_eq!(split(PreTokenizer::Llama3, "a\r\nb"), ["a", "\r\n", "b"]);
        // GPT-2 has no newline alternative: the run gives its last character away.
        assert_eq!(split(PreTokenizer::Gpt2, "a\n\nb"), ["a", "\n", "\n", "b"]);
    }

    #[test]
    fn cjk_and_punctuation() {
        assert_eq!(
            split(PreTokenizer::Qwen2, "你好，世界!"),
            ["你好", "，世界", "!"]
        );
        assert_eq!(
            split(PreTokenizer::Llama3, "日本語 テキスト"),
            ["日本語", " テキスト"]
        );
        assert_eq!(
            split(PreTokenizer::Llama3, "... ok?!"),
            ["...", " ok", "?!"]
        );
        assert_eq!(
            split(PreTokenizer::Llama3, "x = y;\n"),
            ["x", " =", " y", ";\n"]
        );
    }

    #[test]
    fn empty_and_whitespace_only() {
        assert!(split(PreTokenizer::Llama3, "").is_empty());
        assert_eq!(split(PreTokenizer::Llama3, "   "), ["   "]);
        assert_eq!(split(PreTokenizer::Gpt2, " "), [" "]);
    }
}
