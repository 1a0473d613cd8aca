//! Finding special tokens (control, user-defined, unknown) written in the text.
//!
//! The rule reproduced is llama.cpp's: specials are taken longest first
//! (by byte length); for each, its non-overlapping occurrences are found left
//! to right in the text not yet claimed by a longer one. Candidates are found
//! in one pass with a byte trie, then claimed in that order, so the cost is
//! linear in the text (times the longest special's length), not in the number
//! of specials.

use crate::Vocab;

pub(crate) enum Fragment<'a> {
    Text(&'a str),
    Token(u32),
}

const NO_TOKEN: u32 = u32::MAX;

struct Node {
    /// Children sorted by byte.
    edges: Vec<(u8, u32)>,
    token: u32,
}

pub(crate) struct SpecialMatcher {
    nodes: Vec<Node>,
    /// Whether some special starts with this byte.
    first: [bool; 256],
}

impl SpecialMatcher {
    pub(crate) fn new(vocab: &Vocab) -> Self {
        let mut m = Self {
            nodes: vec![Node {
                edges: Vec::new(),
                token: NO_TOKEN,
            }],
            first: [false; 256],
        };
        for (id, (text, kind)) in vocab.texts.iter().zip(&vocab.kinds).enumerate() {
            if kind.is_special() && !text.is_empty() {
                m.insert(text.as_bytes(), id as u32);
            }
        }
        m
    }

    fn insert(&mut self, bytes: &[u8], id: u32) {
        self.first[bytes[0] as usize] = true;
        let mut node = 0usize;
        for &b in bytes {
            node = match self.nodes[node].edges.binary_search_by_key(&b, |e| e.0) {
                Ok(i) => self.nodes[node].edges[i].1 as usize,
                Err(i) => {
                    let new = self.nodes.len() as u32;
                    self.nodes.push(Node {
                        edges: Vec::new(),
                        token: NO_TOKEN,
                    });
                    self.nodes[node].edges.insert(i, (b, new));
                    new as usize
                }
            };
        }
        // A repeated text keeps the last id, like the text → id map.
        self.nodes[node].token = id;
    }

    /// Every occurrence of every special: (start, byte length, id).
    fn candidates(&self, text: &[u8]) -> Vec<(usize, usize, u32)> {
        let mut found = Vec::new();
        for start in 0..text.len() {
            if !self.first[text[start] as usize] {
                continue;
            }
            let mut node = 0usize;
            for (k, &b) in text[start..].iter().enumerate() {
                match self.nodes[node].edges.binary_search_by_key(&b, |e| e.0) {
                    Ok(i) => node = self.nodes[node].edges[i].1 as usize,
                    Err(_) => break,
                }
                let tok = self.nodes[node].token;
                if tok != NO_TOKEN {
                    found.push((start, k + 1, tok));
                }
            }
        }
        found
    }

    /// Splits `text` into raw-text fragments and special tokens, in order.
    pub(crate) fn partition<'a>(&self, text: &'a str) -> Vec<Fragment<'a>> {
        let bytes = text.as_bytes();
        let mut cands = if self.nodes.len() > 1 {
            self.candidates(bytes)
        } else {
            Vec::new()
        };
        if cands.is_empty() {
            return if text.is_empty() {
                Vec::new()
            } else {
                vec![Fragment::Text(text)]
            };
        }
        // Longest first; among equal lengths by id, then left to right.
        cands.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)).then(a.0.cmp(&b.0)));
        let mut claimed = vec![false; bytes.len()];
        let mut taken: Vec<(usize, usize, u32)> = Vec::new();
        for (start, len, id) in cands {
            if claimed[start..start + len].iter().any(|&c| c) {
                continue;
            }
            claimed[start..start + len]
                .iter_mut()
                .for_each(|c| *c = true);
            taken.push((start, len, id));
        }
        taken.sort_unstable_by_key(|t| t.0);
        let mut out = Vec::with_capacity(taken.len() * 2 + 1);
        let mut pos = 0;
        for (start, len, id) in taken {
            if start > pos {
                // Specials are whole UTF-8 strings, so their edges are char boundaries.
                out.push(Fragment::Text(&text[pos..start]));
            }
            out.push(Fragment::Token(id));
            pos = start + len;
        }
        if pos < text.len() {
            out.push(Fragment::Text(&text[pos..]));
        }
        out
    }
}
