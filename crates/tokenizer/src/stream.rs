//! Incremental decoding for streaming output and stop-sequence checks.

use crate::Tokenizer;

/// Decodes ids one at a time. Each [`DecodeStream::push`] returns the text
/// completed by that id; bytes of a character not yet complete (a multi-byte
/// character split over byte tokens) are held back until it is. Bytes that can
/// never form valid UTF-8 come out as U+FFFD, as in [`Tokenizer::decode`], so
/// the pushes' texts, followed by [`DecodeStream::finish`], concatenate to
/// `decode` of all the ids.
///
/// Owns a clone of the tokenizer (an `Arc`), so it is `Send` and `'static`.
#[derive(Debug)]
pub struct DecodeStream {
    tokenizer: Tokenizer,
    pending: Vec<u8>,
    strip_space: bool,
}

impl DecodeStream {
    pub(crate) fn new(tokenizer: Tokenizer) -> Self {
        let strip_space = tokenizer.inner.add_space_prefix;
        Self {
            tokenizer,
            pending: Vec::new(),
            strip_space,
        }
    }

    /// Adds one token; returns the text it completes (possibly empty).
    pub fn push(&mut self, id: u32) -> String {
        self.tokenizer
            .piece_bytes(id, &mut self.strip_space, &mut self.pending);
        let mut text = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    text.push_str(valid);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (valid, tail) = rest.split_at(e.valid_up_to());
                    text.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        // An incomplete character at the end: wait for more bytes.
                        None => {
                            rest = tail;
                            break;
                        }
                        Some(bad) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            rest = &tail[bad..];
                        }
                    }
                }
            }
        }
        let keep = rest.len();
        let drop = self.pending.len() - keep;
        self.pending.drain(..drop);
        text
    }

    /// Number of bytes held back, waiting for the rest of a character.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    /// Ends the stream: whatever is held back, as text (U+FFFD for an incomplete character).
    pub fn finish(&mut self) -> String {
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        s
    }
}
