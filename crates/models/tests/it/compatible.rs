//! OpenAI-compatible servers at full capability, against the loopback mock: declared
//! features (`?prefill=true&completions=true&n=true`), continuation scoring through
//! `/v1/completions` computed by hand, replicas spread by load with failover, and `n`
//! choices per request split into per-nonce cache entries.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::json;
use shammie_core::{GenerateRequest, Message};
use shammie_models::{ModelError, ResponseCache};
use shammie_testkit::{completion_logprob, responder, MockReply, MockServer};

fn compat(server: &MockServer, rest: &str) -> shammie_models::ModelSpec {
    spec(&format!(
        "openai-compatible:{}/{rest}",
        server.openai_base_url()
    ))
}

#[tokio::test]
async fn prefill_goes_as_a_final_assistant_message_to_continue() {
    let server = MockServer::start().await.unwrap();
    let model = open(&hub(options(&server)), &compat(&server, "m?prefill=true"));
    let caps = model.capabilities();
    assert!(caps.prefill && !caps.score_continuations);
    let mut req = ask("Pick one: (A) x (B) y");
    req.system = Some("Be brief.".into());
    req.prefill = Some("The answer is (".into());
    assert_eq!(
        model.rendered_prompt(&req),
        None,
        "the wire body is the request"
    );
    let c = model.generate(&req).await.unwrap();
    assert!(c.text == "A)" || c.text == "B)", "{}", c.text);
    let body = &server.requests()[0].body;
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Pick one: (A) x (B) y"},
            {"role": "assistant", "content": "The answer is ("},
        ])
    );
    assert_eq!(body["continue_final_message"], true);
    assert_eq!(body["add_generation_prompt"], false);
    // A request without a prefill is sent exactly as before.
    model.generate(&ask("Is it?")).await.unwrap();
    let plain = &server.requests()[1].body;
    assert!(plain.get("continue_final_message").is_none(), "{plain}");
}

#[tokio::test]
async fn a_server_that_echoes_the_prefill_has_it_stripped() {
    let server = MockServer::builder()
        .responder(responder(|req| {
            MockReply::for_request(req, format!("{} B) because", req.prefill.clone().unwrap()))
        }))
        .start()
        .await
        .unwrap();
    let model = open(&hub(options(&server)), &compat(&server, "m?prefill=true"));
    let mut req = ask("Pick one: (A) x (B) y");
    req.prefill = Some("I pick".into());
    assert_eq!(model.generate(&req).await.unwrap().text, " B) because");
}

#[tokio::test]
async fn without_the_flags_prefill_and_scoring_are_refused_naming_the_flag() {
    let server = MockServer::start().await.unwrap();
    let model = open(&hub(options(&server)), &compat(&server, "m"));
    let caps = model.capabilities();
    assert!(!caps.prefill && !caps.score_continuations);
    let mut req = ask("Is it?");
    req.prefill = Some("Yes,".into());
    let e = model.generate(&req).await.unwrap_err();
    assert!(matches!(e, ModelError::Unsupported(_)), "{e:?}");
    assert!(e.to_string().contains("`prefill=true`"), "{e}");
    let e = model
        .generate(&ask("Is it?").scoring(vec![" yes".into()]))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("`completions=true`"), "{e}");
    assert_eq!(server.request_count(), 0, "refused before anything is sent");
}

/// `Human: Is the sky blue?\n\nAssistant: The answer is` in the mock's tokens:
/// `Human:`, ` Is`, ` the`, ` sky`, ` blue?`, `\n\nAssistant:`, ` The`, ` answer`, ` is`.
const PROMPT: &str = "Human: Is the sky blue?\n\nAssistant: The answer is";

#[tokio::test]
async fn scoring_sums_the_continuations_tokens_by_hand() {
    let server = MockServer::start().await.unwrap();
    let model = open(
        &hub(options(&server)),
        &compat(&server, "base-model?completions=true"),
    );
    let caps = model.capabilities();
    assert!(caps.score_continuations && caps.prefill);
    let mut req = GenerateRequest::user("Is the sky blue?", 1);
    req.prefill = Some("The answer is".into());
    let req = req.scoring(vec![" yes".into(), " no thanks".into(), "ly yes".into()]);
    assert_eq!(model.rendered_prompt(&req).as_deref(), Some(PROMPT));
    let c = model.generate(&req).await.unwrap();
    let s = c.continuations.unwrap();
    // " yes": one token after the whole prompt.
    let yes = completion_logprob(PROMPT, " yes");
    // " no thanks": " no" after the prompt, " thanks" after the prompt and " no".
    let no_thanks =
        completion_logprob(PROMPT, " no") + completion_logprob(&format!("{PROMPT} no"), " thanks");
    // "ly yes": the mock's tokenizer merges " is" + "ly" into " isly", which straddles
    // the boundary and counts, read after "… The answer"; then " yes".
    let straddle = completion_logprob("Human: Is the sky blue?\n\nAssistant: The answer", " isly")
        + completion_logprob(&format!("{PROMPT}ly"), " yes");
    assert_eq!(s.len(), 3);
    assert_eq!((s[0].logprob, s[0].tokens), (yes, 1));
    assert_eq!((s[1].logprob, s[1].tokens), (no_thanks, 2));
    assert_eq!((s[2].logprob, s[2].tokens), (straddle, 2));
    assert!(s.iter().all(|x| x.logprob < 0.0));
    assert_eq!(c.text, "");
    // One echo request per continuation, as lm-evaluation-harness sends them.
    let sent = server.requests();
    assert_eq!(sent.len(), 3);
    let mut prompts: Vec<String> = sent
        .iter()
        .map(|r| {
            assert_eq!(r.path, "/v1/completions");
            assert_eq!(
                (
                    r.body["echo"].clone(),
                    r.body["logprobs"].clone(),
                    r.body["max_tokens"].clone(),
                    r.body["temperature"].clone()
                ),
                (json!(true), json!(1), json!(1), json!(0.0))
            );
            assert_eq!(r.body["model"], "base-model");
            r.body["prompt"].as_str().unwrap().to_string()
        })
        .collect();
    prompts.sort();
    assert_eq!(
        prompts,
        vec![
            format!("{PROMPT} no thanks"),
            format!("{PROMPT} yes"),
            format!("{PROMPT}ly yes"),
        ]
    );
    // What was paid: each echo request's prompt and its one generated token.
    // (" is" + "ly" is one token: 10, not 11.)
    assert_eq!(c.usage.input_tokens, 10 + 11 + 10);
    assert_eq!(c.usage.output_tokens, 3);
}

#[tokio::test]
async fn with_completions_alone_every_request_is_rendered_and_prefills_are_taken() {
    let server = MockServer::start().await.unwrap();
    let model = open(
        &hub(options(&server)),
        &compat(&server, "m?completions=true&template=chatml"),
    );
    let mut req = GenerateRequest::user("Pick: (A) x (B) y", 4);
    req.messages.insert(0, Message::assistant("Hello."));
    req.messages.insert(0, Message::user("Hi"));
    req.prefill = Some("(".into());
    req.stop = vec!["END".into()];
    let want = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello.<|im_end|>\n\
                <|im_start|>user\nPick: (A) x (B) y<|im_end|>\n<|im_start|>assistant\n(";
    assert_eq!(model.rendered_prompt(&req).as_deref(), Some(want));
    let c = model.generate(&req).await.unwrap();
    assert!(c.text == "A" || c.text == "B", "{}", c.text);
    let r = &server.requests()[0];
    assert_eq!(r.path, "/v1/completions");
    assert_eq!(r.body["prompt"], want);
    assert_eq!(r.body["stop"], json!(["END", "<|im_end|>"]));
    assert_eq!(r.body["max_tokens"], 4);
}

/// A raw request (plain continuation) goes to `/v1/completions` as its text alone, with
/// only the caller's stops; chat endpoints refuse it before sending, naming the flag.
#[tokio::test]
async fn a_raw_request_is_its_text_on_completions_and_refused_by_chat_apis() {
    let server = MockServer::start().await.unwrap();
    let h = hub(options(&server));
    let model = open(&h, &compat(&server, "m?completions=true&template=chatml"));
    let mut req = GenerateRequest::user("Once upon a time", 4);
    req.raw = true;
    req.stop = vec!["END".into()];
    assert_eq!(
        model.rendered_prompt(&req).as_deref(),
        Some("Once upon a time")
    );
    model.generate(&req).await.unwrap();
    let r = &server.requests()[0];
    assert_eq!(r.path, "/v1/completions");
    assert_eq!(r.body["prompt"], "Once upon a time");
    assert_eq!(r.body["stop"], json!(["END"]), "no end-of-turn stop");
    for s in [
        compat(&server, "m"),
        compat(&server, "m?prefill=true"),
        spec("anthropic:claude-test"),
        spec("openai:gpt-4o-mini"),
    ] {
        let e = open(&h, &s).generate(&req).await.unwrap_err();
        assert!(
            matches!(e, ModelError::Unsupported(_)) && e.to_string().contains("raw"),
            "{s}: {e}"
        );
    }
    assert_eq!(server.request_count(), 1, "nothing sent for the refusals");
}

#[tokio::test]
async fn flags_that_change_what_is_sent_change_the_cache_identity() {
    let server = MockServer::start().await.unwrap();
    let h = hub(options(&server));
    let base = open(&h, &compat(&server, "m")).endpoint().to_string();
    assert_eq!(
        base,
        format!("openai-compatible {} m", server.openai_base_url())
    );
    for same in ["m?prefill=true", "m?n=true"] {
        assert_eq!(open(&h, &compat(&server, same)).endpoint(), base, "{same}");
    }
    let c1 = open(&h, &compat(&server, "m?completions=true"))
        .endpoint()
        .to_string();
    let c2 = open(&h, &compat(&server, "m?completions=true&template=gemma"))
        .endpoint()
        .to_string();
    let c3 = open(&h, &compat(&server, "m?completions=true&prefill=true"))
        .endpoint()
        .to_string();
    assert!(c1 != base && c1 != c2 && c1 != c3 && c2 != c3);
    // Replicas serve the same weights: the identity is the first server's.
    let replicated = spec(&format!(
        "openai-compatible:{},http://127.0.0.1:9/v1/m",
        server.openai_base_url()
    ));
    assert_eq!(open(&h, &replicated).endpoint(), base);
}

/// Two mock servers, each recording when its requests arrived.
async fn replica_pair(latency: Duration) -> [(MockServer, Arc<Mutex<Vec<Instant>>>); 2] {
    let mut out = Vec::new();
    for _ in 0..2 {
        let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let a = arrivals.clone();
        let s = MockServer::builder()
            .latency(latency)
            .responder(responder(move |req| {
                a.lock().unwrap().push(Instant::now());
                shammie_testkit::default_reply(req)
            }))
            .start()
            .await
            .unwrap();
        out.push((s, arrivals));
    }
    out.try_into().ok().unwrap()
}

#[tokio::test]
async fn replicas_share_the_load_each_within_its_own_limit() {
    let hold = Duration::from_millis(150);
    let [(a, at_a), (b, at_b)] = replica_pair(hold).await;
    let mut o = options(&a);
    o.max_connections = 2;
    let model = open(
        &hub(o),
        &spec(&format!(
            "openai-compatible:{},{}/m",
            a.openai_base_url(),
            b.openai_base_url()
        )),
    );
    let reqs: Vec<GenerateRequest> = (0..12).map(|i| ask(&format!("question {i}?"))).collect();
    let results = futures::future::join_all(reqs.iter().map(|r| model.generate(r))).await;
    assert!(results.iter().all(Result::is_ok));
    let (na, nb) = (a.successful_count(), b.successful_count());
    assert_eq!((na, nb), (6, 6), "fewest in flight, ties round-robin");
    let peak_a = peak_from_arrivals(at_a.lock().unwrap().clone(), hold);
    let peak_b = peak_from_arrivals(at_b.lock().unwrap().clone(), hold);
    assert_eq!(
        (peak_a, peak_b),
        (2, 2),
        "each replica held to --max-connections"
    );
}

#[tokio::test]
async fn a_replica_that_is_down_fails_over_and_nothing_is_lost_or_paid_twice() {
    let up = MockServer::start().await.unwrap();
    // A port nothing listens on: every connection is refused.
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(ResponseCache::open(&dir.path().join("c.sqlite")).unwrap());
    let h = hub_with_cache(&up, cache.clone());
    let spec = spec(&format!(
        "openai-compatible:http://127.0.0.1:{down}/v1,{}/m",
        up.openai_base_url()
    ));
    let model = open(&h, &spec);
    let reqs: Vec<GenerateRequest> = (0..20).map(|i| ask(&format!("question {i}?"))).collect();
    let results = futures::future::join_all(reqs.iter().map(|r| model.generate(r))).await;
    for r in &results {
        let c = r.as_ref().expect("answered by the replica that is up");
        assert_eq!(c.meta.attempts, 1, "failover happens inside one attempt");
    }
    assert_eq!(up.successful_count(), 20, "each request answered once");
    // Again: every answer comes from the cache, nothing is sent.
    let again = futures::future::join_all(reqs.iter().map(|r| model.generate(r))).await;
    assert!(again.iter().all(|r| r.as_ref().unwrap().meta.cached));
    assert_eq!(up.request_count(), 20);

    // Every replica down: the retryable error of the retry layer, which tries again.
    let all_down = shammie_models::ModelHub::new({
        let mut o = options(&up);
        o.retry = fast_retry(2);
        o
    })
    .unwrap()
    .open(&spec_of_two_closed_ports())
    .unwrap();
    let e = all_down.generate(&ask("x?")).await.unwrap_err();
    assert!(
        matches!(e, ModelError::Exhausted { attempts: 2, .. }),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(text.contains("all 2 replicas failed"), "{text}");
}

fn spec_of_two_closed_ports() -> shammie_models::ModelSpec {
    let ports: Vec<u16> = (0..2)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        })
        .collect();
    spec(&format!(
        "openai-compatible:http://127.0.0.1:{}/v1,http://127.0.0.1:{}/v1/m",
        ports[0], ports[1]
    ))
}

#[tokio::test]
async fn a_5xx_from_one_replica_sends_the_request_to_the_other_at_once() {
    let [(a, _), (b, _)] = replica_pair(Duration::ZERO).await;
    a.push_faults([
        shammie_testkit::Fault::Status(503),
        shammie_testkit::Fault::Status(500),
    ]);
    b.push_faults([shammie_testkit::Fault::Status(502)]);
    let model = open(
        &hub(options(&a)),
        &spec(&format!(
            "openai-compatible:{},{}/m",
            a.openai_base_url(),
            b.openai_base_url()
        )),
    );
    for i in 0..10 {
        let c = model.generate(&ask(&format!("q{i}?"))).await.unwrap();
        assert!(c.meta.attempts <= 2, "{i}: {:?}", c.meta);
    }
    assert_eq!(
        a.successful_count() + b.successful_count(),
        10,
        "answered once each, never twice"
    );
    assert_eq!(a.pending_faults() + b.pending_faults(), 0);
}

#[tokio::test]
async fn n_choices_in_one_request_split_into_per_nonce_cache_entries() {
    let server = MockServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(ResponseCache::open(&dir.path().join("c.sqlite")).unwrap());
    let h = hub_with_cache(&server, cache);
    let model = open(&h, &compat(&server, "m?n=true"));
    let mut req = ask("Pick one: (A) x (B) y (C) z");
    req.temperature = Some(1.0);
    let first = model.generate_many(&req, &[1, 2, 3, 4]).await;
    let sent = server.requests();
    assert_eq!(sent.len(), 1, "one request for four samples");
    assert_eq!(sent[0].body["n"], 4);
    let texts: Vec<String> = first
        .iter()
        .map(|c| c.as_ref().unwrap().text.clone())
        .collect();
    // The usage of the one request is shared out: the parts add up to what was billed.
    let input: u64 = first
        .iter()
        .map(|c| c.as_ref().unwrap().usage.input_tokens)
        .sum();
    assert_eq!(input, 8, "the prompt's 8 words, billed once");
    // Each nonce's answer is what a per-nonce call finds in the cache.
    for (n, t) in [1u64, 2, 3, 4].iter().zip(&texts) {
        let mut r = req.clone();
        r.nonce = *n;
        let c = model.generate(&r).await.unwrap();
        assert!(c.meta.cached);
        assert_eq!(&c.text, t);
    }
    // A repeat is all cache hits; new nonces are asked for together.
    let again = model.generate_many(&req, &[1, 2, 3, 4]).await;
    assert!(again.iter().all(|c| c.as_ref().unwrap().meta.cached));
    assert_eq!(server.request_count(), 1);
    let more = model.generate_many(&req, &[3, 4, 5, 6]).await;
    assert_eq!(server.request_count(), 2);
    assert_eq!(server.requests()[1].body["n"], 2);
    assert_eq!(more[0].as_ref().unwrap().text, texts[2]);
    assert!(
        more[2].as_ref().unwrap().meta.cost_usd.is_none(),
        "unpriced"
    );

    // Without n=true each nonce is a request of its own, without `n`.
    let plain = open(&h, &compat(&server, "other"));
    let r = plain.generate_many(&req, &[1, 2, 3]).await;
    assert!(r.iter().all(Result::is_ok));
    let sent = server.requests();
    assert_eq!(sent.len(), 5);
    assert!(sent[2..].iter().all(|r| r.body.get("n").is_none()));
}

#[tokio::test]
async fn the_official_api_takes_n_and_completions_routes_take_it_too() {
    let server = MockServer::start().await.unwrap();
    let h = hub(options(&server));
    let mut req = ask("Pick one: (A) x (B) y");
    req.temperature = Some(0.7);
    let r = open(&h, &spec("openai:gpt-test"))
        .generate_many(&req, &[0, 1, 2])
        .await;
    assert_eq!(r.len(), 3);
    assert_eq!(server.requests()[0].body["n"], 3);
    let r = open(&h, &compat(&server, "m?n=true&completions=true"))
        .generate_many(&req, &[0, 1])
        .await;
    assert!(r.iter().all(Result::is_ok));
    let last = server.requests().pop().unwrap();
    assert_eq!(
        (last.path.as_str(), last.body["n"].clone()),
        ("/v1/completions", json!(2))
    );
}

#[tokio::test]
async fn a_server_that_ignores_n_fails_the_draws_it_did_not_answer_naming_the_flag() {
    // llama-cpp-python's server answers `n: 2` with one choice (recorded by hand here).
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "Say hi"}],
        "max_tokens": 16, "temperature": 1.0, "n": 2});
    let answer = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1,
        "model": "m", "choices": [{"index": 0, "message": {"role": "assistant",
        "content": "Hi!"}, "logprobs": null, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}});
    let server = MockServer::builder()
        .recordings(vec![shammie_testkit::Recording {
            path: "/v1/chat/completions".into(),
            request: body,
            status: 200,
            response: answer,
        }])
        .start()
        .await
        .unwrap();
    let model = open(&hub(options(&server)), &compat(&server, "m?n=true"));
    let mut req = ask("Say hi");
    req.temperature = Some(1.0);
    let r = model.generate_many(&req, &[0, 1]).await;
    let first = r[0].as_ref().unwrap();
    assert_eq!((first.text.as_str(), first.usage.input_tokens), ("Hi!", 4));
    let e = r[1].as_ref().unwrap_err().to_string();
    assert!(
        e.contains("asked for n=2 choices and got 1") && e.contains("drop n=true"),
        "{e}"
    );
    assert_eq!(server.request_count(), 1);
}
