//! Byte-level BPE (`tokenizer.ggml.model = "gpt2"`): Qwen 2, Llama 3, GPT-2.
//!
//! Text is cut into words by the pre-tokeniser; each word's UTF-8 bytes are
//! written in GPT-2's byte alphabet (each byte one printable character, a
//! space is `Ġ`), start as one symbol per byte, and the adjacent pair with the
//! lowest merge rank is merged until no listed merge applies (ties: leftmost).
//! Results are cached per word, since the same words recur across prompts.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::BuildHasher;
use std::sync::Mutex;

use rustc_hash::{FxBuildHasher, FxHashMap};

use crate::pretok::{PreTokenizer, Splitter};
use crate::Vocab;

const NONE: u32 = u32::MAX;
const CACHE_SHARDS: usize = 16;
const CACHE_SHARD_CAP: usize = 16_384;
const CACHE_MAX_WORD: usize = 256;

/// GPT-2's byte → character table: printable Latin-1 bytes stand for
/// themselves, the other 68 bytes (controls, space, 0x7F–0xA0, 0xAD) are
/// numbered from U+0100 upward in byte order.
pub(crate) fn byte_to_char_table() -> [char; 256] {
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for b in 0..256u32 {
        table[b as usize] = if printable(b) {
            char::from_u32(b).unwrap_or('\0')
        } else {
            let c = char::from_u32(next).unwrap_or('\0');
            next += 1;
            c
        };
    }
    table
}

type WordCache = Mutex<FxHashMap<Box<str>, Box<[u32]>>>;

/// A queued pair: (rank, left position, right position, left id, right id),
/// smallest first; the ids make entries recognisable once a side has changed.
type Candidate = Reverse<(u32, u32, u32, u32, u32)>;

pub(crate) struct Bpe {
    splitter: Splitter,
    ignore_merges: bool,
    /// (left id, right id) → (rank, merged id).
    merges: FxHashMap<(u32, u32), (u32, u32)>,
    /// The token of each byte's character, or NONE.
    byte_id: [u32; 256],
    byte_char: [char; 256],
    /// Character (below U+0144) → byte, for decoding.
    char_byte: Vec<Option<u8>>,
    cache: Vec<WordCache>,
}

impl Bpe {
    pub(crate) fn new(vocab: &Vocab, merges: &[String], pre: PreTokenizer) -> Self {
        let byte_char = byte_to_char_table();
        let mut char_byte = vec![None; 0x144];
        let mut byte_id = [NONE; 256];
        let mut buf = [0u8; 4];
        for (b, &c) in byte_char.iter().enumerate() {
            char_byte[c as usize] = Some(b as u8);
            byte_id[b] = vocab.id(c.encode_utf8(&mut buf)).unwrap_or(NONE);
        }
        let mut map = FxHashMap::with_capacity_and_hasher(merges.len(), Default::default());
        let mut joined = String::new();
        for (rank, m) in merges.iter().enumerate() {
            // Split at the first space after the first character (a part is never empty).
            let Some(first_len) = m.chars().next().map(char::len_utf8) else {
                continue;
            };
            let Some(sp) = m[first_len..].find(' ').map(|i| i + first_len) else {
                continue;
            };
            let (l, r) = (&m[..sp], &m[sp + 1..]);
            joined.clear();
            joined.push_str(l);
            joined.push_str(r);
            let (Some(li), Some(ri), Some(mi)) = (vocab.id(l), vocab.id(r), vocab.id(&joined))
            else {
                continue;
            };
            // A repeated merge keeps its first (best) rank.
            map.entry((li, ri)).or_insert((rank as u32, mi));
        }
        Self {
            splitter: Splitter::new(pre),
            ignore_merges: pre.ignore_merges(),
            merges: map,
            byte_id,
            byte_char,
            char_byte,
            cache: (0..CACHE_SHARDS)
                .map(|_| Mutex::new(FxHashMap::default()))
                .collect(),
        }
    }

    /// Appends the tokens of one raw-text fragment (no specials in it).
    pub(crate) fn encode(&self, vocab: &Vocab, text: &str, out: &mut Vec<u32>) {
        self.splitter
            .split(text, |w| self.encode_word(vocab, w, out));
    }

    fn encode_word(&self, vocab: &Vocab, word: &str, out: &mut Vec<u32>) {
        let bytes = word.as_bytes();
        if bytes.len() == 1 {
            self.push_id(self.byte_id[bytes[0] as usize], out);
            return;
        }
        if bytes.len() > CACHE_MAX_WORD {
            self.merge_word(vocab, word, out);
            return;
        }
        let shard = &self.cache[(FxBuildHasher.hash_one(word) as usize) % CACHE_SHARDS];
        if let Some(ids) = lock(shard).get(word) {
            out.extend_from_slice(ids);
            return;
        }
        let start = out.len();
        self.merge_word(vocab, word, out);
        let ids: Box<[u32]> = out[start..].into();
        let mut map = lock(shard);
        if map.len() >= CACHE_SHARD_CAP {
            map.clear();
        }
        map.insert(word.into(), ids);
    }

    fn push_id(&self, id: u32, out: &mut Vec<u32>) {
        if id != NONE {
            out.push(id);
        }
    }

    fn merge_word(&self, vocab: &Vocab, word: &str, out: &mut Vec<u32>) {
        if self.ignore_merges {
            let mapped: String = word.bytes().map(|b| self.byte_char[b as usize]).collect();
            if let Some(id) = vocab.id(&mapped) {
                out.push(id);
                return;
            }
        }
        let n = word.len();
        // Symbols: token id (NONE once merged away) and the next live symbol.
        let mut ids: Vec<u32> = word.bytes().map(|b| self.byte_id[b as usize]).collect();
        let mut next: Vec<u32> = (1..=n as u32).collect();
        let mut prev: Vec<u32> = (0..n as u32).map(|i| i.wrapping_sub(1)).collect();
        next[n - 1] = NONE;
        let mut alive = vec![true; n];

        let mut heap: BinaryHeap<Candidate> = BinaryHeap::with_capacity(n);
        let pair = |ids: &[u32], l: u32, r: u32| -> Option<Candidate> {
            if l == NONE || r == NONE {
                return None;
            }
            let (a, b) = (ids[l as usize], ids[r as usize]);
            self.merges
                .get(&(a, b))
                .map(|&(rank, _)| Reverse((rank, l, r, a, b)))
        };
        for i in 1..n as u32 {
            if let Some(p) = pair(&ids, i - 1, i) {
                heap.push(p);
            }
        }
        while let Some(Reverse((_, l, r, a, b))) = heap.pop() {
            let (lu, ru) = (l as usize, r as usize);
            if !alive[lu] || !alive[ru] || next[lu] != r || ids[lu] != a || ids[ru] != b {
                continue;
            }
            let Some(&(_, merged)) = self.merges.get(&(a, b)) else {
                continue;
            };
            ids[lu] = merged;
            alive[ru] = false;
            next[lu] = next[ru];
            if next[ru] != NONE {
                prev[next[ru] as usize] = l;
            }
            if let Some(p) = pair(&ids, prev[lu], l) {
                heap.push(p);
            }
            if let Some(p) = pair(&ids, l, next[lu]) {
                heap.push(p);
            }
        }
        let mut i = 0u32;
        while i != NONE {
            self.push_id(ids[i as usize], out);
            i = next[i as usize];
        }
    }

    /// A normal token's bytes: each character mapped back through the byte table.
    pub(crate) fn decode_into(&self, text: &str, out: &mut Vec<u8>) {
        let mut buf = [0u8; 4];
        for c in text.chars() {
            match self.char_byte.get(c as usize).copied().flatten() {
                Some(b) => out.push(b),
                None => out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes()),
            }
        }
    }
}

fn lock(m: &WordCache) -> std::sync::MutexGuard<'_, FxHashMap<Box<str>, Box<[u32]>>> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_is_gpt2s() {
        let t = byte_to_char_table();
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        assert_eq!(t[b'\t' as usize], 'ĉ');
        assert_eq!(t[b'a' as usize], 'a');
        assert_eq!(t[0], 'Ā');
        assert_eq!(t[0xAD], 'Ń');
        assert_eq!(t[0xE9], 'é');
        let mut seen: Vec<char> = t.to_vec();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 256);
    }

    /// The obvious quadratic algorithm: merge the lowest-ranked (then leftmost) pair, repeat.
    fn naive(bpe: &Bpe, word: &str) -> Vec<u32> {
        let mut syms: Vec<u32> = word.bytes().map(|b| bpe.byte_id[b as usize]).collect();
        loop {
            let best = syms
                .windows(2)
                .enumerate()
                .filter_map(|(i, w)| bpe.merges.get(&(w[0], w[1])).map(|&(rank, m)| (rank, i, m)))
                .min();
            let Some((_, i, m)) = best else { return syms };
            syms[i] = m;
            syms.remove(i + 1);
        }
    }

    #[test]
    fn heap_merging_equals_naive_merging() {
        // A tiny deterministic generator (no rand dependency needed).
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let table = byte_to_char_table();
        let mut texts: Vec<String> = table.iter().map(|c| c.to_string()).collect();
        let letters: Vec<String> = "abcd".chars().map(String::from).collect();
        let mut pool = letters.clone();
        let mut merges = Vec::new();
        for _ in 0..60 {
            let (l, r) = (
                pool[next(pool.len())].clone(),
                pool[next(pool.len())].clone(),
            );
            merges.push(format!("{l} {r}"));
            let joined = format!("{l}{r}");
            if !texts.contains(&joined) {
                texts.push(joined.clone());
                pool.push(joined);
            }
        }
        let n = texts.len();
        let vocab = Vocab::new(texts, vec![crate::TokenKind::Normal; n], vec![0.0; n]);
        let bpe = Bpe::new(&vocab, &merges, PreTokenizer::Qwen2);
        for _ in 0..3000 {
            let len = 1 + next(40);
            let word: String = (0..len).map(|_| letters[next(4)].as_str()).collect();
            let mut fast = Vec::new();
            bpe.merge_word(&vocab, &word, &mut fast);
            assert_eq!(fast, naive(&bpe, &word), "{word}");
        }
    }
}
