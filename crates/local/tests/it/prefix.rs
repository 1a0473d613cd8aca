//! Prefix reuse never changes what a request returns: the same requests through a model
//! that reuses cached prompt prefixes and one that reads every prompt from scratch give
//! the same text and bit-identical log-probabilities, including across Gemma 3's 512-token
//! sliding window, and the reuse really happens where it should.

use crate::common;

use std::sync::Arc;

use shammie_core::{Completion, GenerateRequest, Message};
use shammie_local::{BatchLimits, LocalModel};
use shammie_models::Model;

fn pair() -> Option<(Arc<LocalModel>, Arc<LocalModel>)> {
    let path = common::model_path_or_skip()?;
    let load = |bytes| {
        Arc::new(
            LocalModel::load(
                "gemma-3-270m",
                &path,
                BatchLimits {
                    prefix_cache_bytes: bytes,
                    ..BatchLimits::default()
                },
            )
            .unwrap(),
        )
    };
    Some((load(0), load(BatchLimits::default().prefix_cache_bytes)))
}

fn logprobs(c: &Completion) -> Vec<f64> {
    c.logprobs
        .as_ref()
        .map(|l| l.iter().map(|t| t.logprob).collect())
        .unwrap_or_default()
}

/// Bit for bit: the attention kernel makes a row's numbers independent of how its
/// prompt was read (`attn.rs`), so reuse may not move even the last bit.
fn same(a: &Completion, b: &Completion, what: &str) {
    assert_eq!(a.text, b.text, "{what}");
    assert_eq!(a.usage.input_tokens, b.usage.input_tokens, "{what}");
    assert_eq!(logprobs(a), logprobs(b), "{what}");
    let scores = |c: &Completion| -> Option<Vec<f64>> {
        c.continuations
            .as_ref()
            .map(|v| v.iter().map(|x| x.logprob).collect())
    };
    assert_eq!(scores(a), scores(b), "{what}");
}

/// The early-answering shape: one question, the reasoning cut after k steps, a fixed
/// question after it, the answer read from the next token.
fn truncated(k: usize) -> GenerateRequest {
    let steps = [
        "A train leaves at 3 pm and travels 120 km at 60 km per hour.",
        " The trip therefore takes two hours.",
        " Two hours after 3 pm is 5 pm.",
        " So the train arrives at 5 pm.",
    ];
    let mut r = GenerateRequest::user(
        "When does the train arrive?\n\nChoices:\n (A) 4 pm\n (B) 5 pm\n (C) 6 pm",
        3,
    );
    r.messages.push(Message::assistant(format!(
        "Let's think step by step: {}",
        steps[..k].concat()
    )));
    r.messages.push(Message::user(
        "Given all of the above, what's the single, most likely answer?",
    ));
    r.prefill = Some("The single, most likely answer is (".into());
    r.temperature = Some(0.0);
    r.top_logprobs = Some(5);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reused_prefixes_give_the_same_answers() {
    let Some((plain, reusing)) = pair() else {
        return;
    };

    // Early answering at every cut, generation and scoring: each prompt shares all but
    // its last steps with the one before, which is cut back to the shared part.
    for k in 0..=4 {
        let r = truncated(k);
        let s = r.clone().scoring(vec!["A".into(), "B".into(), "C".into()]);
        same(
            &plain.generate(&r).await.unwrap(),
            &reusing.generate(&r).await.unwrap(),
            &format!("generation after {k} steps"),
        );
        same(
            &plain.generate(&s).await.unwrap(),
            &reusing.generate(&s).await.unwrap(),
            &format!("scoring after {k} steps"),
        );
    }
    let (prompt, reused, hits) = reusing.prefix_stats();
    assert_eq!(plain.prefix_stats().1, 0, "reuse turned off reuses nothing");
    assert!(hits >= 9, "{hits} of 10 requests reused a prefix");
    assert!(
        reused * 2 > prompt,
        "{reused} of {prompt} prompt tokens reused"
    );

    // Past the window: a prompt that extends a 600-token prompt reuses all of it (its
    // windowed layers hold exactly the last 512 positions it needs) ...
    let long = "The committee met on a grey morning to review the harbour accounts. ".repeat(50);
    let mut first = GenerateRequest::user(long.clone(), 4);
    first.prefill = Some("The minutes".into());
    first.temperature = Some(0.0);
    first.top_logprobs = Some(3);
    let mut longer = first.clone();
    longer.prefill = Some("The minutes of the meeting".into());
    let mut other = first.clone();
    other.prefill = Some("In short".into());

    let a = reusing.generate(&first).await.unwrap();
    assert!(a.usage.input_tokens > 600, "{}", a.usage.input_tokens);
    same(&plain.generate(&first).await.unwrap(), &a, "long prompt");
    let before = reusing.prefix_stats().1;
    let b = reusing.generate(&longer).await.unwrap();
    assert_eq!(reusing.prefix_stats().1 - before, a.usage.input_tokens);
    same(
        &plain.generate(&longer).await.unwrap(),
        &b,
        "extended long prompt",
    );
    // ... while one that leaves it earlier cannot be cut back past the window, reads
    // more than the window's worth itself, and still answers the same.
    let before = reusing.prefix_stats().1;
    let c = reusing.generate(&other).await.unwrap();
    let reused = reusing.prefix_stats().1 - before;
    assert!(
        c.usage.input_tokens - reused > 512,
        "{reused} of {} reused",
        c.usage.input_tokens
    );
    same(
        &plain.generate(&other).await.unwrap(),
        &c,
        "diverging long prompt",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_samples_of_one_prompt_read_it_once() {
    let Some((plain, reusing)) = pair() else {
        return;
    };
    let req = |seed: u64| {
        // Longer than the worker's wait threshold (32 shared tokens), so however the six
        // requests arrive, one reads the prompt and the others reuse it.
        let mut r = GenerateRequest::user(
            "A lighthouse stands on a rocky point at the mouth of a busy harbour. Ships \
             pass it day and night, and in winter the storms come in from the west. \
             Describe, in one sentence, what the lighthouse keeper does on a stormy night.",
            8,
        );
        r.temperature = Some(1.0);
        r.seed = Some(seed);
        r.top_logprobs = Some(2);
        r
    };
    let all = |m: Arc<LocalModel>| {
        futures::future::join_all((0..6).map(move |seed| {
            let m = m.clone();
            async move { m.generate(&req(seed)).await.unwrap() }
        }))
    };
    let want = all(plain.clone()).await;
    let got = all(reusing.clone()).await;
    for (seed, (a, b)) in want.iter().zip(&got).enumerate() {
        same(a, b, &format!("seed {seed}"));
    }
    let (_, reused, hits) = reusing.prefix_stats();
    let p = got[0].usage.input_tokens;
    assert!(p > 40, "{p}");
    assert_eq!(hits, 5, "the first sample reads the prompt, five reuse it");
    assert_eq!(
        reused,
        5 * (p - 1),
        "each reuse leaves the last token to run"
    );
}
