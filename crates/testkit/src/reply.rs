//! The default responder: a deterministic, documented stand-in for a model.
//!
//! # The rule
//!
//! Only the text of the **last `user` message** (the *prompt*) matters.
//!
//! 1. **Options.** If the prompt contains `"(A)"` and `"(B)"`, the options are
//!    the letters `A`, `B`, … for as long as `"(C)"`, `"(D)"`, … keep
//!    appearing ([`choice_options`]). Otherwise the options are `Yes` and `No`.
//! 2. **Probabilities** ([`default_distribution`]): with `h = fnv1a64(prompt)`,
//!    option `i` gets weight `w_i = 0.05 + u(h + i)` where `u` maps a 64-bit
//!    value to `[0, 1)` through splitmix64; the options share
//!    [`OPTION_MASS`] (0.96) in proportion to their weights. The remaining
//!    mass goes to the [`FILLER_TOKENS`] `"I"` (0.025) and `"The"` (0.01) and
//!    0.005 to nothing reported, so the listed probabilities sum to 0.995.
//! 3. **Choice.** With no `temperature` or `temperature <= 0` the most likely
//!    option is answered (greedy; note the real APIs default to temperature
//!    1). With `temperature > 0` the option is sampled from
//!    `p_i^(1/T)` renormalised over the options, using a uniform number that
//!    is `u(seed, h)` when a `seed` is given (deterministic per seed and
//!    prompt; the same for every choice of `n`) and a fresh random number
//!    otherwise.
//! 4. **Text.** The answer is the bare option: `"A"` (never `"(A"`) or
//!    `"Yes"`. With an Anthropic prefill: a prefill ending in `"("` makes a
//!    letter answer `"A)"` (tokens `"A"`, `")"`); a prefill ending in anything
//!    but whitespace makes it `" A"` / `" Yes"` (leading space, as a
//!    tokenizer would); the reply never repeats the prefill.
//! 5. **Tokens.** The first token's logprob is `ln p` of the chosen option; its
//!    top list holds every option and both fillers (written the same way as
//!    the answer token, e.g. `" B"` after a prefill), most likely first,
//!    cut to `top_logprobs` entries when the request gives it. A closing `")"`
//!    token has logprob `ln 0.999`.
//! 6. **Counts.** `output_tokens` = number of tokens emitted (after a
//!    `max_tokens` cut, which sets finish `Length`); `input_tokens` = number of
//!    whitespace-separated words in the system prompt, all messages and the
//!    prefill (a documented approximation, not a tokenizer).

use crate::{Finish, MockReply, ParsedRequest, TokenOut};

/// Probability mass shared by the answer options.
pub const OPTION_MASS: f64 = 0.96;

/// Filler tokens listed after the options in a top-logprobs list, with their
/// probabilities.
pub const FILLER_TOKENS: [(&str, f64); 2] = [("I", 0.025), ("The", 0.01)];

const CLOSE_PAREN_P: f64 = 0.999;

/// 64-bit FNV-1a hash.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Maps a 64-bit value to a uniform number in `[0, 1)`.
pub(crate) fn unit(x: u64) -> f64 {
    (splitmix64(x) >> 11) as f64 / (1u64 << 53) as f64
}

/// The answer options for a prompt: `["A", "B", ...]` when it contains
/// `"(A)"` and `"(B)"` (continuing while `"(C)"`, `"(D)"`, … appear), else
/// `["Yes", "No"]`.
pub fn choice_options(prompt: &str) -> Vec<String> {
    let mut letters = Vec::new();
    for c in b'A'..=b'Z' {
        let c = c as char;
        if prompt.contains(&format!("({c})")) {
            letters.push(c.to_string());
        } else {
            break;
        }
    }
    if letters.len() >= 2 {
        letters
    } else {
        vec!["Yes".to_string(), "No".to_string()]
    }
}

/// The options of [`choice_options`] with their probabilities (summing to
/// [`OPTION_MASS`]), in option order.
pub fn default_distribution(prompt: &str) -> Vec<(String, f64)> {
    let options = choice_options(prompt);
    let h = fnv1a64(prompt.as_bytes());
    let weights: Vec<f64> = (0..options.len())
        .map(|i| 0.05 + unit(h.wrapping_add(i as u64)))
        .collect();
    let sum: f64 = weights.iter().sum();
    options
        .into_iter()
        .zip(weights)
        .map(|(o, w)| (o, OPTION_MASS * w / sum))
        .collect()
}

/// Whitespace-separated word count.
pub fn count_words(text: &str) -> u32 {
    text.split_whitespace().count() as u32
}

/// Splits text into word pieces, each carrying its leading whitespace
/// (`"Hello big world"` → `["Hello", " big", " world"]`); trailing
/// whitespace is a piece of its own. Concatenating the pieces gives the text.
pub fn split_tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    for ch in text.chars() {
        if ch.is_whitespace() && in_word {
            out.push(std::mem::take(&mut cur));
            in_word = false;
        }
        if !ch.is_whitespace() {
            in_word = true;
        }
        cur.push(ch);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

pub(crate) fn input_token_count(req: &ParsedRequest) -> u32 {
    req.system.as_deref().map(count_words).unwrap_or(0)
        + req
            .messages
            .iter()
            .map(|(_, t)| count_words(t))
            .sum::<u32>()
        + req.prefill.as_deref().map(count_words).unwrap_or(0)
}

fn pick(req: &ParsedRequest, prompt: &str, dist: &[(String, f64)]) -> usize {
    let greedy = dist.iter().enumerate().fold(
        0,
        |best, (i, (_, p))| if *p > dist[best].1 { i } else { best },
    );
    let t = match req.temperature {
        Some(t) if t > 0.0 => t,
        _ => return greedy,
    };
    let u = match req.seed {
        Some(seed) => unit(splitmix64(seed) ^ fnv1a64(prompt.as_bytes())),
        None => rand::random::<f64>(),
    };
    let q: Vec<f64> = dist.iter().map(|(_, p)| p.powf(1.0 / t)).collect();
    let total: f64 = q.iter().sum();
    if !(total.is_finite() && total > 0.0) {
        return greedy;
    }
    let mut acc = 0.0;
    for (i, qi) in q.iter().enumerate() {
        acc += qi / total;
        if u < acc {
            return i;
        }
    }
    dist.len() - 1
}

/// The default responder (see the module rule above): answers the last user
/// message with a letter for `(A)`/`(B)` questions, else `Yes`/`No`,
/// deterministically unless sampling with `temperature > 0` and no seed.
pub fn default_reply(req: &ParsedRequest) -> MockReply {
    let prompt = req.last_user_text();
    let dist = default_distribution(prompt);
    let chosen = pick(req, prompt, &dist);
    let letters = dist[0].0.len() == 1;

    let prefill = req.prefill.as_deref().unwrap_or("");
    let lead =
        if prefill.is_empty() || prefill.ends_with(char::is_whitespace) || prefill.ends_with('(') {
            ""
        } else {
            " "
        };
    let close = letters && prefill.ends_with('(');

    let limit = req.top_logprobs.map(|k| k as usize).unwrap_or(usize::MAX);
    let mut top: Vec<(String, f64)> = dist
        .iter()
        .map(|(o, p)| (format!("{lead}{o}"), p.ln()))
        .chain(
            FILLER_TOKENS
                .iter()
                .map(|(t, p)| (format!("{lead}{t}"), p.ln())),
        )
        .collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    top.truncate(limit);

    let mut tokens = vec![TokenOut {
        token: format!("{lead}{}", dist[chosen].0),
        logprob: dist[chosen].1.ln(),
        top,
    }];
    if close {
        let lp = CLOSE_PAREN_P.ln();
        let mut top = vec![(")".to_string(), lp)];
        top.truncate(limit);
        tokens.push(TokenOut {
            token: ")".into(),
            logprob: lp,
            top,
        });
    }

    let mut finish = Finish::Stop;
    if let Some(max) = req.max_tokens {
        if tokens.len() > max as usize {
            tokens.truncate(max as usize);
            finish = Finish::Length;
        }
    }
    MockReply {
        text: tokens.iter().map(|t| t.token.as_str()).collect(),
        output_tokens: tokens.len() as u32,
        input_tokens: input_token_count(req),
        tokens: Some(tokens),
        finish,
        tool_calls: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_known_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn split_tokens_roundtrip() {
        assert_eq!(
            split_tokens("Hello big world"),
            vec!["Hello", " big", " world"]
        );
        assert_eq!(split_tokens(" a b "), vec![" a", " b", " "]);
        assert!(split_tokens("").is_empty());
    }

    #[test]
    fn options_and_mass() {
        assert_eq!(choice_options("Pick (A) x or (B) y"), vec!["A", "B"]);
        assert_eq!(choice_options("(A) (B) (C) (E)"), vec!["A", "B", "C"]);
        assert_eq!(choice_options("only (A)"), vec!["Yes", "No"]);
        for prompt in ["Is the sky blue?", "(A) one (B) two (C) three", ""] {
            let d = default_distribution(prompt);
            let s: f64 = d.iter().map(|(_, p)| p).sum();
            assert!((s - OPTION_MASS).abs() < 1e-12, "{prompt}: {s}");
            assert!(d.iter().all(|(_, p)| *p > 0.0));
        }
    }

    #[test]
    fn distribution_varies_with_prompt() {
        let ps: Vec<f64> = (0..50)
            .map(|i| default_distribution(&format!("question {i}?"))[0].1)
            .collect();
        assert!(ps.iter().any(|p| *p > 0.48) && ps.iter().any(|p| *p < 0.48));
    }
}
