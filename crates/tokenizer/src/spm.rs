//! SentencePiece vocabularies (`tokenizer.ggml.model = "llama"`).
//!
//! The text (spaces written as `▁`) starts as one symbol per character. While
//! some adjacent pair of symbols concatenates to a vocabulary piece, the pair
//! whose piece has the highest score is merged (ties: the leftmost pair). The
//! symbols left are pieces, or single characters that are not; those fall
//! back to their UTF-8 bytes as `<0xNN>` tokens. A max-heap of candidate pairs
//! over a doubly linked list of symbols makes this O(n log n).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::{TokenKind, Vocab};

const NONE: u32 = u32::MAX;

pub(crate) struct Spm {
    /// Token for each byte when a character is not in the vocabulary:
    /// `<0xNN>`, else the one-byte piece, else the unknown token, else none.
    byte_fallback: [u32; 256],
}

#[derive(Clone, Copy)]
struct Sym {
    start: u32,
    /// Byte length; 0 once merged into the symbol on its left.
    len: u32,
    prev: u32,
    next: u32,
}

struct Bigram {
    score: f32,
    left: u32,
    right: u32,
    /// Byte length of the merged piece, to recognise stale entries.
    size: u32,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram {
    /// Greater = popped first: higher score, then the leftmost pair.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .partial_cmp(&other.score)
            .unwrap_or(Ordering::Equal)
            .then_with(|| other.left.cmp(&self.left))
    }
}

impl Spm {
    pub(crate) fn new(vocab: &Vocab) -> Self {
        let unk = vocab
            .kinds
            .iter()
            .position(|k| *k == TokenKind::Unknown)
            .map(|i| i as u32)
            .or_else(|| vocab.id("<unk>"));
        let mut byte_fallback = [NONE; 256];
        for (b, slot) in byte_fallback.iter_mut().enumerate() {
            let hex = format!("<0x{b:02X}>");
            let single = (b < 0x80).then(|| (b as u8 as char).to_string());
            *slot = vocab
                .id(&hex)
                .or_else(|| single.and_then(|s| vocab.id(&s)))
                .or(unk)
                .unwrap_or(NONE);
        }
        Self { byte_fallback }
    }

    /// Appends the tokens of one raw-text fragment (no specials in it).
    pub(crate) fn encode(&self, vocab: &Vocab, raw: &str, prefix_space: bool, out: &mut Vec<u32>) {
        if raw.is_empty() {
            return;
        }
        let mut text = String::with_capacity(raw.len() + 3 + raw.len() / 2);
        if prefix_space {
            text.push('▁');
        }
        for c in raw.chars() {
            text.push(if c == ' ' { '▁' } else { c });
        }
        let text = text.as_str();

        let mut syms: Vec<Sym> = Vec::with_capacity(text.len());
        for (i, (start, c)) in text.char_indices().enumerate() {
            syms.push(Sym {
                start: start as u32,
                len: c.len_utf8() as u32,
                prev: if i == 0 { NONE } else { i as u32 - 1 },
                next: i as u32 + 1,
            });
        }
        if let Some(last) = syms.last_mut() {
            last.next = NONE;
        }

        let mut heap = BinaryHeap::with_capacity(syms.len());
        let push = |heap: &mut BinaryHeap<Bigram>, syms: &[Sym], left: u32, right: u32| {
            if left == NONE || right == NONE {
                return;
            }
            let (l, r) = (syms[left as usize], syms[right as usize]);
            let piece = &text[l.start as usize..(r.start + r.len) as usize];
            if let Some(id) = vocab.id(piece) {
                heap.push(Bigram {
                    score: vocab.scores[id as usize],
                    left,
                    right,
                    size: l.len + r.len,
                });
            }
        };
        for i in 1..syms.len() as u32 {
            push(&mut heap, &syms, i - 1, i);
        }

        while let Some(b) = heap.pop() {
            let (l, r) = (syms[b.left as usize], syms[b.right as usize]);
            if l.len == 0 || r.len == 0 || l.next != b.right || l.len + r.len != b.size {
                continue; // one side has changed since this pair was queued
            }
            syms[b.left as usize].len += r.len;
            syms[b.left as usize].next = r.next;
            syms[b.right as usize].len = 0;
            if r.next != NONE {
                syms[r.next as usize].prev = b.left;
            }
            push(&mut heap, &syms, l.prev, b.left);
            push(&mut heap, &syms, b.left, r.next);
        }

        let mut i = 0u32;
        while i != NONE {
            let s = syms[i as usize];
            let piece = &text[s.start as usize..(s.start + s.len) as usize];
            match vocab.id(piece) {
                Some(id) => out.push(id),
                None => {
                    for &byte in piece.as_bytes() {
                        let t = self.byte_fallback[byte as usize];
                        if t != NONE {
                            out.push(t);
                        }
                    }
                }
            }
            i = s.next;
        }
    }
}

/// A normal piece's bytes: `▁` → space.
pub(crate) fn unescape_into(text: &str, out: &mut Vec<u8>) {
    let mut parts = text.split('▁');
    if let Some(first) = parts.next() {
        out.extend_from_slice(first.as_bytes());
    }
    for p in parts {
        out.push(b' ');
        out.extend_from_slice(p.as_bytes());
    }
}
