//! The batching worker: one thread owns the model and serves every concurrent request.
//!
//! Each step takes all sequences that need the model — new prompts (prefill) and running
//! generations (one token each) — through one forward pass, so the weights are read once
//! per step however many requests are in flight. New requests join at the next step
//! (continuous batching); finished ones leave and are answered at once. Every prompt
//! starts from the longest cached prefix it shares with an earlier one (`prefix`), and a
//! prompt that shares a long beginning with one being read in this very step waits one
//! step for it, so N samples of one prompt read it once.

use std::sync::mpsc;
use std::sync::Arc;

use candle_core::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use shammie_tokenizer::Tokenizer;

use crate::gemma3::KvCache;
use crate::model::LocalLm;
use crate::prefix::{common_prefix, PrefixCache, PrefixStats};
use crate::sampling::{log_softmax, sample, top_k, SamplingParams};
use crate::LocalError;

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// An end-of-sequence or end-of-turn token.
    EndToken,
    StopString,
    MaxTokens,
}

#[derive(Debug, Clone)]
pub struct Generation {
    pub tokens: Vec<u32>,
    pub text: String,
    /// Per generated token: its log-probability and the top alternatives.
    pub logprobs: Vec<(f32, Vec<(u32, f32)>)>,
    pub finish: Finish,
    pub prompt_tokens: usize,
    /// Seconds from joining the batch to the end of the step that read the prompt (the
    /// prefill, with whatever else shared that step).
    pub prompt_secs: f64,
    /// Seconds from then to the last token.
    pub decode_secs: f64,
}

pub struct GenRequest {
    pub prompt: Vec<u32>,
    pub max_tokens: usize,
    pub params: SamplingParams,
    pub seed: u64,
    pub stop_strings: Vec<String>,
    pub top_logprobs: usize,
    /// Keep generating through end-of-sequence tokens (benchmarks that need a fixed length).
    pub ignore_end_tokens: bool,
}

/// Log-probabilities of continuations after a shared prompt.
pub struct ScoreRequest {
    pub prompt: Vec<u32>,
    pub continuations: Vec<Vec<u32>>,
}

enum Job {
    Generate(
        GenRequest,
        tokio::sync::oneshot::Sender<Result<Generation, LocalError>>,
    ),
    Score(
        ScoreRequest,
        tokio::sync::oneshot::Sender<Result<Vec<Vec<f32>>, LocalError>>,
    ),
}

/// Handle to the worker thread; cheap to clone, safe to share.
#[derive(Clone)]
pub struct Worker {
    tx: mpsc::Sender<Job>,
    pub context: usize,
    stats: Arc<PrefixStats>,
}

/// Limits of one step.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// Sequences generating at once.
    pub max_sequences: usize,
    /// Prompt tokens admitted per step (new prompts wait for the next step beyond this).
    pub max_prefill_tokens: usize,
    /// Memory for the keys and values of earlier prompts, reused by prompts that start
    /// the same way (0: no reuse).
    pub prefix_cache_bytes: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_sequences: 64,
            max_prefill_tokens: 4096,
            prefix_cache_bytes: 256 << 20,
        }
    }
}

impl Worker {
    pub fn spawn(model: LocalLm, tokenizer: Arc<Tokenizer>, limits: BatchLimits) -> Worker {
        let (tx, rx) = mpsc::channel();
        let context = model.context();
        let stats = Arc::new(PrefixStats::default());
        let shared = stats.clone();
        std::thread::Builder::new()
            .name("shammie-local".into())
            .spawn(move || run(model, tokenizer, rx, limits, &shared))
            .expect("spawn the model thread");
        Worker { tx, context, stats }
    }

    /// Prompt tokens served, and how many of them came from cached prefixes.
    pub fn prefix_stats(&self) -> &PrefixStats {
        &self.stats
    }

    pub async fn generate(&self, req: GenRequest) -> Result<Generation, LocalError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send(Job::Generate(req, tx))
            .map_err(|_| LocalError::Io("the model thread has stopped".into()))?;
        rx.await
            .map_err(|_| LocalError::Io("the model thread has stopped".into()))?
    }

    /// Per continuation, the log-probability of each of its tokens given the prompt and
    /// the tokens before it.
    pub async fn score(&self, req: ScoreRequest) -> Result<Vec<Vec<f32>>, LocalError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send(Job::Score(req, tx))
            .map_err(|_| LocalError::Io("the model thread has stopped".into()))?;
        rx.await
            .map_err(|_| LocalError::Io("the model thread has stopped".into()))?
    }
}

struct Active {
    req: GenRequest,
    reply: tokio::sync::oneshot::Sender<Result<Generation, LocalError>>,
    cache: KvCache,
    /// Tokens to feed at the next step (the prompt, then one sampled token at a time).
    pending: Vec<u32>,
    rng: ChaCha8Rng,
    out: Generation,
    stream: shammie_tokenizer::DecodeStream,
    /// Whether the prompt has been read (and offered to the prefix cache).
    read: bool,
    /// When it joined the batch.
    admitted: std::time::Instant,
}

/// Shared tokens worth waiting one step for rather than reading twice.
const WAIT_FOR_SHARED: usize = 32;

fn run(
    model: LocalLm,
    tok: Arc<Tokenizer>,
    rx: mpsc::Receiver<Job>,
    limits: BatchLimits,
    stats: &PrefixStats,
) {
    let mut active: Vec<Active> = Vec::new();
    let mut waiting: std::collections::VecDeque<Job> = Default::default();
    let mut prefixes = PrefixCache::new(limits.prefix_cache_bytes);
    let end_tokens: Vec<u32> = [tok.eos(), tok.eot()].into_iter().flatten().collect();
    loop {
        // Gather work: block only when idle.
        if active.is_empty() && waiting.is_empty() {
            match rx.recv() {
                Ok(j) => waiting.push_back(j),
                Err(_) => return,
            }
        }
        while let Ok(j) = rx.try_recv() {
            waiting.push_back(j);
        }
        // Admit new generations within the step's limits, in arrival order; scoring jobs
        // run on their own.
        let mut prefill_budget = limits.max_prefill_tokens;
        let mut reading: Vec<usize> = Vec::new(); // active sequences reading their prompt now
        while active.len() < limits.max_sequences {
            let Some(job) = waiting.pop_front() else {
                break;
            };
            let (req, reply) = match job {
                Job::Score(req, reply) => {
                    let _ = reply.send(score(&model, &req, &mut prefixes, stats));
                    continue;
                }
                Job::Generate(req, reply) => (req, reply),
            };
            if req.prompt.is_empty() || req.prompt.len() + req.max_tokens > model.context() {
                let _ = reply.send(Err(LocalError::Unsupported(format!(
                    "prompt of {} tokens plus {} new tokens does not fit the context of {}",
                    req.prompt.len(),
                    req.max_tokens,
                    model.context()
                ))));
                continue;
            }
            let cache = prefixes
                .lookup(&model, &req.prompt)
                .unwrap_or_else(|| KvCache::new(model.layers()));
            let reused = cache.len;
            let cost = req.prompt.len() - reused;
            // Wait a step for a prompt being read now that shares more than the cache
            // gives: it will be in the cache then.
            let shares_with_reading = reading.iter().any(|&i| {
                common_prefix(&active[i].req.prompt, &req.prompt) >= reused + WAIT_FOR_SHARED
            });
            if !reading.is_empty() && (cost > prefill_budget || shares_with_reading) {
                waiting.push_front(Job::Generate(req, reply));
                break;
            }
            prefill_budget = prefill_budget.saturating_sub(cost);
            stats.count(req.prompt.len(), reused);
            reading.push(active.len());
            let prompt_tokens = req.prompt.len();
            active.push(Active {
                pending: req.prompt[reused..].to_vec(),
                rng: ChaCha8Rng::seed_from_u64(req.seed),
                cache,
                out: Generation {
                    tokens: Vec::new(),
                    text: String::new(),
                    logprobs: Vec::new(),
                    finish: Finish::MaxTokens,
                    prompt_tokens,
                    prompt_secs: 0.0,
                    decode_secs: 0.0,
                },
                stream: tok.decode_stream(),
                read: false,
                admitted: std::time::Instant::now(),
                req,
                reply,
            });
        }
        if active.is_empty() {
            continue;
        }
        if let Err(e) = step(&model, &mut active, &end_tokens) {
            // A failed forward pass fails every request in it.
            for a in active.drain(..) {
                let _ = a
                    .reply
                    .send(Err(LocalError::Io(format!("forward pass failed: {e}"))));
            }
        }
        // Offer the prompts just read to the prefix cache (the cache holds exactly the
        // prompt until the sampled token is fed at the next step).
        for a in active.iter_mut().filter(|a| !a.read) {
            a.read = true;
            a.out.prompt_secs = a.admitted.elapsed().as_secs_f64();
            prefixes.insert(&a.req.prompt, &a.cache);
        }
        // Answer the finished ones.
        let mut i = 0;
        while i < active.len() {
            if active[i].pending.is_empty() {
                let mut a = active.swap_remove(i);
                a.out.decode_secs = a.admitted.elapsed().as_secs_f64() - a.out.prompt_secs;
                let _ = a.reply.send(Ok(a.out));
            } else {
                i += 1;
            }
        }
    }
}

/// One forward pass over every active sequence; samples one token for each.
fn step(model: &LocalLm, active: &mut [Active], end_tokens: &[u32]) -> Result<(), LocalError> {
    let pending: Vec<Vec<u32>> = active
        .iter_mut()
        .map(|a| std::mem::take(&mut a.pending))
        .collect();
    let hidden = {
        let mut seqs: Vec<(&[u32], &mut KvCache)> = pending
            .iter()
            .zip(active.iter_mut())
            .map(|(p, a)| (&p[..], &mut a.cache))
            .collect();
        model.forward_hidden(&mut seqs)?
    };
    let last: Vec<Tensor> = hidden
        .iter()
        .map(|h| h.narrow(0, h.dim(0)? - 1, 1))
        .collect::<Result<_, _>>()?;
    let logits = model.logits(&Tensor::cat(&last, 0)?)?.to_vec2::<f32>()?;
    for (a, row) in active.iter_mut().zip(logits) {
        let lp = log_softmax(&row);
        let id = sample(&lp, &a.req.params, &mut a.rng);
        let alts = top_k(&lp, a.req.top_logprobs);
        a.out.tokens.push(id);
        a.out.logprobs.push((lp[id as usize], alts));
        if end_tokens.contains(&id) && !a.req.ignore_end_tokens {
            a.out.finish = Finish::EndToken;
            a.out.text.push_str(&a.stream.finish());
            continue;
        }
        a.out.text.push_str(&a.stream.push(id));
        if let Some(cut) = find_stop(&a.out.text, &a.req.stop_strings) {
            a.out.text.truncate(cut);
            a.out.finish = Finish::StopString;
            continue;
        }
        if a.out.tokens.len() >= a.req.max_tokens {
            a.out.text.push_str(&a.stream.finish());
            a.out.finish = Finish::MaxTokens;
            continue;
        }
        a.pending = vec![id];
    }
    Ok(())
}

/// Where the earliest stop string starts in `text`.
pub fn find_stop(text: &str, stops: &[String]) -> Option<usize> {
    stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min()
}

/// Scores continuations: the prompt is run once, then every continuation from a copy of
/// its cache, all continuations in one batch.
fn score(
    model: &LocalLm,
    req: &ScoreRequest,
    prefixes: &mut PrefixCache,
    stats: &PrefixStats,
) -> Result<Vec<Vec<f32>>, LocalError> {
    if req.prompt.is_empty() {
        return Err(LocalError::Unsupported(
            "scoring needs a non-empty prompt".into(),
        ));
    }
    let mut cache = prefixes
        .lookup(model, &req.prompt)
        .unwrap_or_else(|| KvCache::new(model.layers()));
    stats.count(req.prompt.len(), cache.len);
    let h = model
        .forward_hidden(&mut [(&req.prompt[cache.len..], &mut cache)])?
        .remove(0);
    prefixes.insert(&req.prompt, &cache);
    let first = model
        .logits(&h.narrow(0, h.dim(0)? - 1, 1)?)?
        .squeeze(0)?
        .to_vec1::<f32>()?;
    let first = log_softmax(&first);
    let conts: Vec<&Vec<u32>> = req.continuations.iter().collect();
    let mut caches: Vec<KvCache> = conts.iter().map(|_| cache.clone()).collect();
    // Feed each continuation except its last token; its logits predict the next token.
    let inputs: Vec<&[u32]> = conts
        .iter()
        .map(|c| &c[..c.len().saturating_sub(1)])
        .collect();
    let mut seqs: Vec<(&[u32], &mut KvCache)> = inputs
        .iter()
        .zip(caches.iter_mut())
        .filter(|(i, _)| !i.is_empty())
        .map(|(i, c)| (*i, c))
        .collect();
    let hidden = if seqs.is_empty() {
        Vec::new()
    } else {
        model.forward_hidden(&mut seqs)?
    };
    let mut hidden = hidden.into_iter();
    let mut out = Vec::with_capacity(conts.len());
    for c in conts {
        let mut lps = Vec::with_capacity(c.len());
        if let Some(&t0) = c.first() {
            lps.push(first[t0 as usize]);
        }
        if c.len() > 1 {
            let h = hidden
                .next()
                .expect("one hidden block per continuation longer than 1");
            let rows = model.logits(&h)?.to_vec2::<f32>()?;
            for (row, &next) in rows.iter().zip(&c[1..]) {
                lps.push(log_softmax(row)[next as usize]);
            }
        }
        out.push(lps);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_stop_wins() {
        let stops = vec!["\n\nHuman:".to_string(), "END".to_string()];
        assert_eq!(find_stop("Yes END more\n\nHuman: x", &stops), Some(4));
        assert_eq!(find_stop("nothing here", &stops), None);
        assert_eq!(find_stop("x", &[String::new()]), None);
    }
}
