//! Reuse of computed prompt prefixes: the KV caches of recent prompts, kept under a
//! memory budget, so a prompt that starts like an earlier one runs only its new tokens.
//!
//! Studies send many prompts that share long beginnings: early answering truncates one
//! chain of thought at every sentence, N samples repeat one prompt, few-shot prompts
//! repeat their exemplars. A hit returns the earlier prompt's cache cut back to the
//! shared tokens; the worker then feeds the rest. The cut is exact only where every
//! layer still holds what the shorter prefix needs: a sliding-window layer keeps just
//! its last `window` keys, so a prompt longer than the window can only be extended, not
//! cut short (`KvCache::truncated` says when). Not a response cache: that is the models
//! crate's, keyed by the whole request; this one only saves forward passes and never
//! changes what a request returns beyond float rounding.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::gemma3::KvCache;
use crate::model::LocalLm;

/// Counters of prefix reuse, shared with the worker's handle.
#[derive(Debug, Default)]
pub struct PrefixStats {
    /// Prompt tokens of every request served (generation and scoring).
    pub prompt_tokens: AtomicU64,
    /// Of those, tokens taken from a cached prefix instead of a forward pass.
    pub reused_tokens: AtomicU64,
    /// Requests that reused a prefix.
    pub hits: AtomicU64,
}

impl PrefixStats {
    pub(crate) fn count(&self, prompt: usize, reused: usize) {
        self.prompt_tokens
            .fetch_add(prompt as u64, Ordering::Relaxed);
        self.reused_tokens
            .fetch_add(reused as u64, Ordering::Relaxed);
        if reused > 0 {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.prompt_tokens.load(Ordering::Relaxed),
            self.reused_tokens.load(Ordering::Relaxed),
            self.hits.load(Ordering::Relaxed),
        )
    }
}

struct Entry {
    tokens: Vec<u32>,
    cache: KvCache,
    bytes: usize,
    last_used: u64,
}

/// Least-recently-used prompt caches within `budget` bytes of keys and values.
pub struct PrefixCache {
    entries: Vec<Entry>,
    budget: usize,
    used: usize,
    clock: u64,
}

/// Length of the common beginning of two token sequences.
pub fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl PrefixCache {
    /// `budget` of 0 turns reuse off.
    pub fn new(budget: usize) -> Self {
        PrefixCache {
            entries: Vec::new(),
            budget,
            used: 0,
            clock: 0,
        }
    }

    /// The longest usable cached prefix of `prompt`, as a cache holding its first
    /// `cache.len` tokens, ready to be extended by the rest. At least the last token is
    /// always left to run, since its hidden state gives the next-token distribution.
    pub fn lookup(&mut self, model: &LocalLm, prompt: &[u32]) -> Option<KvCache> {
        if self.budget == 0 || prompt.len() < 2 {
            return None;
        }
        let limit = prompt.len() - 1;
        let mut best: Option<(usize, usize)> = None; // (reusable tokens, entry)
        for (i, e) in self.entries.iter().enumerate() {
            let n = common_prefix(&e.tokens, prompt).min(limit);
            if n == 0 || best.is_some_and(|(b, _)| b >= n) {
                continue;
            }
            if model.can_truncate(&e.cache, n) {
                best = Some((n, i));
            }
        }
        let (n, i) = best?;
        self.clock += 1;
        self.entries[i].last_used = self.clock;
        let cache = model.truncate(&self.entries[i].cache, n).ok()?;
        Some(cache)
    }

    /// Keeps the cache of a fully processed prompt (`cache.len == tokens.len()`).
    pub fn insert(&mut self, tokens: &[u32], cache: &KvCache) {
        if self.budget == 0 || cache.len != tokens.len() || tokens.len() < 2 {
            return;
        }
        self.clock += 1;
        if let Some(e) = self.entries.iter_mut().find(|e| e.tokens == tokens) {
            e.last_used = self.clock;
            return;
        }
        let bytes = cache.bytes();
        if bytes > self.budget {
            return;
        }
        while self.used + bytes > self.budget {
            let oldest = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(i, _)| i)
                .expect("entries are non-empty while over budget");
            let e = self.entries.swap_remove(oldest);
            self.used -= e.bytes;
        }
        self.used += bytes;
        self.entries.push(Entry {
            tokens: tokens.to_vec(),
            cache: cache.clone(),
            bytes,
            last_used: self.clock,
        });
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefix_counts_equal_leading_tokens() {
        assert_eq!(common_prefix(&[1, 2, 3], &[1, 2, 4]), 2);
        assert_eq!(common_prefix(&[1, 2], &[1, 2, 3]), 2);
        assert_eq!(common_prefix(&[5], &[1]), 0);
        assert_eq!(common_prefix(&[], &[1]), 0);
    }
}
