//! The `local:` provider end to end on the default model: generation, logprobs, seeds,
//! stop sequences, batching that never changes results, and continuation scoring.

use crate::common;

use std::sync::Arc;

use shammie_core::{GenerateRequest, StopReason};
use shammie_local::{BatchLimits, LocalModel};
use shammie_models::Model;

fn model() -> Option<Arc<LocalModel>> {
    model_with(BatchLimits::default())
}

fn model_with(limits: BatchLimits) -> Option<Arc<LocalModel>> {
    let path = common::model_path_or_skip()?;
    Some(Arc::new(
        LocalModel::load("gemma-3-270m", &path, limits).unwrap(),
    ))
}

fn greedy(prompt: &str, n: u32) -> GenerateRequest {
    let mut r = GenerateRequest::user(prompt, n);
    r.temperature = Some(0.0);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generation_logprobs_seeds_and_stops() {
    let Some(m) = model() else { return };
    let caps = m.capabilities();
    assert!(caps.logprobs() && caps.prefill && caps.seed);

    // Greedy is deterministic and answers the base-format question.
    let mut r = greedy("What is the capital of France?", 12);
    r.top_logprobs = Some(5);
    let a = m.generate(&r).await.unwrap();
    let b = m.generate(&r).await.unwrap();
    assert_eq!(a.text, b.text);
    assert!(a.text.contains("Paris"), "{:?}", a.text);
    let lps = a.logprobs.as_ref().unwrap();
    assert_eq!(lps.len() as u64, a.usage.output_tokens);
    for t in lps {
        assert_eq!(t.top.len(), 5);
        assert!(t.top.windows(2).all(|w| w[0].logprob >= w[1].logprob));
        // Greedy picks the most likely token.
        assert_eq!(t.token, t.top[0].token);
        assert!((t.logprob - t.top[0].logprob).abs() < 1e-6);
        assert!(t.logprob <= 0.0);
    }
    assert!(a.usage.input_tokens > 5);

    // Sampling: the same seed gives the same text; other seeds vary.
    let mut s = GenerateRequest::user("Write a short sentence about the sea.", 16);
    s.temperature = Some(1.0);
    s.seed = Some(11);
    let s1 = m.generate(&s).await.unwrap().text;
    let s2 = m.generate(&s).await.unwrap().text;
    assert_eq!(s1, s2);
    let mut texts = std::collections::HashSet::new();
    for seed in 0..6 {
        s.seed = Some(seed);
        texts.insert(m.generate(&s).await.unwrap().text);
    }
    assert!(texts.len() >= 3, "{texts:?}");

    // Stop sequences cut the text before the stop.
    let mut st = greedy("Count from one to ten in words, separated by commas.", 40);
    st.stop = vec![",".into()];
    let c = m.generate(&st).await.unwrap();
    assert_eq!(c.stop_reason, StopReason::StopSequence);
    assert!(!c.text.contains(','), "{:?}", c.text);

    // Prefill: the reply continues the given start.
    let mut p = greedy(
        "Pick one:\n (A) red\n (B) blue\n\nAnswer with just the letter.",
        2,
    );
    p.prefill = Some("(".into());
    p.top_logprobs = Some(10);
    let c = m.generate(&p).await.unwrap();
    let first = &c.logprobs.unwrap()[0];
    assert!(
        first.top.iter().any(|t| t.token == "A" || t.token == "B"),
        "{:?}",
        first.top
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batching_never_changes_results() {
    // No prefix reuse here, so the batched requests really read their prompts together
    // (reuse is tested in prefix.rs).
    let Some(m) = model_with(BatchLimits {
        prefix_cache_bytes: 0,
        ..BatchLimits::default()
    }) else {
        return;
    };
    let prompts: Vec<String> = (0..12)
        .map(|i| format!("Tell me a fact about the number {i}."))
        .collect();
    let mut alone = Vec::new();
    for p in &prompts {
        let mut r = greedy(p, 10);
        r.top_logprobs = Some(3);
        alone.push(m.generate(&r).await.unwrap());
    }
    // The same requests at once: they share forward passes.
    let together = futures::future::join_all(prompts.iter().map(|p| {
        let m = m.clone();
        let mut r = greedy(p, 10);
        r.top_logprobs = Some(3);
        async move { m.generate(&r).await.unwrap() }
    }))
    .await;
    for (a, b) in alone.iter().zip(&together) {
        assert_eq!(a.text, b.text);
        let la: Vec<f64> = a
            .logprobs
            .as_ref()
            .unwrap()
            .iter()
            .map(|t| t.logprob)
            .collect();
        let lb: Vec<f64> = b
            .logprobs
            .as_ref()
            .unwrap()
            .iter()
            .map(|t| t.logprob)
            .collect();
        // Bit for bit: projections and attention compute each row alone (`attn.rs`).
        assert_eq!(la, lb);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_continuations_through_the_model_trait() {
    let Some(m) = model() else { return };
    assert!(m.capabilities().score_continuations);
    let mut r = GenerateRequest::user("What is the capital of France?", 1);
    r.prefill = Some("The capital of France is".into());
    let scoring = r.clone().scoring(vec![
        " Paris.".into(),
        " London.".into(),
        " a city in Germany.".into(),
    ]);
    let c = m.generate(&scoring).await.unwrap();
    assert_eq!(c.text, "");
    let s: Vec<f64> = c
        .continuations
        .as_ref()
        .unwrap()
        .iter()
        .map(|x| x.logprob)
        .collect();
    assert_eq!(s.len(), 3);
    assert!(s.iter().all(|x| x.is_finite() && *x < 0.0));
    assert!(s[0] > s[1] + 1.0 && s[0] > s[2], "{s:?}");
    let tokens: Vec<u32> = c.continuations.unwrap().iter().map(|x| x.tokens).collect();
    assert!(tokens[2] > tokens[0], "{tokens:?}");
    // The score of a one-token continuation is that token's logprob from generation.
    let mut g = r.clone();
    g.temperature = Some(0.0);
    g.top_logprobs = Some(20);
    g.max_tokens = 1;
    let c = m.generate(&g).await.unwrap();
    let tok = &c.logprobs.unwrap()[0];
    let one = m
        .generate(&r.clone().scoring(vec![tok.token.clone()]))
        .await
        .unwrap()
        .continuations
        .unwrap();
    assert_eq!(one[0].tokens, 1);
    assert!(
        (one[0].logprob - tok.logprob).abs() < 1e-3,
        "{} vs {}",
        one[0].logprob,
        tok.logprob
    );
    // An empty continuation is a clear error, not a silent zero.
    let err = m
        .generate(&r.clone().scoring(vec![" Paris".into(), String::new()]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("continuation 1 is empty"), "{err}");
}

/// The transcript records what the model read: the request rendered in the base model's
/// `Human:`/`Assistant:` format, system text first and the prefill after `Assistant:`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rendered_prompt_is_the_text_the_model_reads() {
    let Some(m) = model() else { return };
    let mut r = greedy("What is 2+3?", 1);
    r.system = Some("Be brief.".into());
    r.prefill = Some("The answer is".into());
    assert_eq!(
        m.rendered_prompt(&r).as_deref(),
        Some("Be brief.\n\nHuman: What is 2+3?\n\nAssistant: The answer is")
    );
}

/// A raw request (`generate --raw`) is plain continuation: the model reads the text as it
/// stands (its BOS first), with no `Human:` turn and no stop at the next one; the same
/// request wrapped in the format reads more tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_request_continues_the_text_as_it_stands() {
    let Some(m) = model() else { return };
    let text = "The capital of France is";
    let mut r = greedy(text, 4);
    r.raw = true;
    assert_eq!(m.rendered_prompt(&r).as_deref(), Some(text));
    let (rendered, ids) = m.prompt(&r).unwrap();
    assert_eq!(rendered, text);
    assert_eq!(ids, m.tokenizer().encode(text, true));
    let c = m.generate(&r).await.unwrap();
    assert_eq!(c.usage.input_tokens, ids.len() as u64);
    assert!(!c.text.is_empty());
    let wrapped = m.generate(&greedy(text, 4)).await.unwrap();
    assert!(wrapped.usage.input_tokens > c.usage.input_tokens);
}

/// The loader shares a model while anything holds it, and holds none itself: once its
/// users are gone (a pipeline stage's adapted model, say) the model is freed, and asking
/// again loads it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loader_shares_live_models_and_frees_unused_ones() {
    let Some(path) = common::model_path_or_skip() else {
        return;
    };
    let loader = shammie_local::Loader::new(move |_| Ok(path.clone()), BatchLimits::default());
    let a = loader.load("gemma-3-270m").unwrap();
    let b = loader.load("gemma-3-270m").unwrap();
    assert!(Arc::ptr_eq(&a, &b), "a live model is shared");
    let weak = Arc::downgrade(&a);
    drop((a, b));
    assert!(weak.upgrade().is_none(), "the loader kept the model alive");
    let c = loader.load("gemma-3-270m").unwrap();
    let out = c.generate(&greedy("What is 2+2?", 3)).await.unwrap();
    assert!(!out.text.is_empty());
}
