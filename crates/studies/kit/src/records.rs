//! Checks every loader applies to each record it reads, so that every study accepts and
//! refuses the same things:
//! - [`check_prompt_size`]: the text a record puts into a prompt is at most
//!   [`MAX_PROMPT_BYTES`] (a 50 MB "question" is a broken file, not a question);
//! - [`Duplicates`]: no observation is read twice. Each loader says what makes two records
//!   the same observation (an id, or the content a model is shown) and the second copy is
//!   an error at its line, naming the first.
//!
//! [`check_prompt_size`] returns the message of a `FILE:LINE: …` error (the loader knows
//! file and line); [`Duplicates::check`] returns the whole error.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use shammie_engine::DataError;

/// The most bytes of text one record may put into a prompt: 1 MiB, about 250,000 tokens
/// of English, more than most models' context windows. Not an option: every study
/// shares this one limit.
pub const MAX_PROMPT_BYTES: usize = 1 << 20;

/// Refuses a record whose prompt text (everything it shows the model: question, choices,
/// template…) is longer than [`MAX_PROMPT_BYTES`].
pub fn check_prompt_size(bytes: usize) -> Result<(), String> {
    if bytes > MAX_PROMPT_BYTES {
        return Err(format!(
            "the prompt text is {bytes} bytes, over the limit of {MAX_PROMPT_BYTES} bytes (1 MiB) for one record"
        ));
    }
    Ok(())
}

/// The records seen so far, by key, with where each was first seen. A key is kept as the
/// SHA-256 of its parts, so memory stays small however long the records are.
#[derive(Debug, Default)]
pub struct Duplicates {
    files: Vec<String>,
    seen: HashMap<[u8; 32], (usize, u64)>,
}

impl Duplicates {
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes the record at `path:line` whose identity is `key` (the parts that make two
    /// records the same observation, e.g. the question and its choices). A key seen
    /// before is an error at this line: `duplicate WHAT (first at line N)`, or
    /// `(first at FILE:N)` when the first copy is in another file; `what` describes it.
    pub fn check(
        &mut self,
        path: &str,
        line: u64,
        key: &[&str],
        what: impl FnOnce() -> String,
    ) -> Result<(), DataError> {
        let mut h = Sha256::new();
        for part in key {
            // Length-prefixed, so that ("ab", "c") and ("a", "bc") differ.
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        let file = match self.files.iter().rposition(|f| f == path) {
            Some(i) => i,
            None => {
                self.files.push(path.to_string());
                self.files.len() - 1
            }
        };
        match self.seen.entry(h.finalize().into()) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert((file, line));
                Ok(())
            }
            std::collections::hash_map::Entry::Occupied(o) => {
                let (first_file, first_line) = *o.get();
                let first = if first_file == file {
                    format!("line {first_line}")
                } else {
                    format!("{}:{first_line}", self.files[first_file])
                };
                Err(DataError::Line {
                    path: path.to_string(),
                    line,
                    message: format!("duplicate {} (first at {first})", what()),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_copy_is_named_with_the_first() {
        let mut d = Duplicates::new();
        let what = || "question".to_string();
        assert!(d.check("a", 1, &["ab", "c"], what).is_ok());
        assert!(d.check("a", 2, &["a", "bc"], what).is_ok());
        assert!(d.check("a", 3, &["ab", "c", ""], what).is_ok());
        assert_eq!(
            d.check("a", 4, &["ab", "c"], what).unwrap_err().to_string(),
            "a:4: duplicate question (first at line 1)"
        );
        assert_eq!(
            d.check("b", 7, &["a", "bc"], what).unwrap_err().to_string(),
            "b:7: duplicate question (first at a:2)"
        );
    }

    #[test]
    fn prompt_size() {
        assert!(check_prompt_size(MAX_PROMPT_BYTES).is_ok());
        assert!(check_prompt_size(MAX_PROMPT_BYTES + 1).is_err());
    }
}
