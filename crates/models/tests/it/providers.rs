//! Wire formats of the OpenAI Chat Completions and Anthropic Messages providers, checked
//! against the loopback mock server: what goes out (body, headers) and how the answer is
//! read back.

use crate::common::*;
use serde_json::{json, Value};
use shammie_core::{GenerateRequest, Message, StopReason, TokenLogprob, TopLogprob, Usage};
use shammie_models::{ApiKey, ModelError, ModelHub};
use shammie_testkit::{default_distribution, responder, Finish, MockReply, MockServer, TokenOut};

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .expect("object body")
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

/// A responder with hand-written tokens and alternatives, so the parsed completion can
/// be compared with known values.
fn paris_responder() -> shammie_testkit::Responder {
    responder(|_req| MockReply {
        text: "Paris is".into(),
        tokens: Some(vec![
            TokenOut {
                token: "Paris".into(),
                logprob: -0.125,
                top: vec![
                    ("Paris".into(), -0.125),
                    ("London".into(), -2.5),
                    ("Rome".into(), -3.0),
                ],
            },
            TokenOut {
                token: " is".into(),
                logprob: -0.25,
                top: vec![(" is".into(), -0.25), (" was".into(), -1.75)],
            },
        ]),
        input_tokens: 17,
        output_tokens: 2,
        finish: Finish::Length,
    })
}

fn top(token: &str, logprob: f64) -> TopLogprob {
    TopLogprob {
        token: token.into(),
        logprob,
    }
}

// ---------------------------------------------------------------- OpenAI (official)

#[tokio::test]
async fn openai_official_request_body_headers_and_parsed_logprobs() {
    let server = MockServer::builder()
        .responder(paris_responder())
        .require_api_key(Some(OPENAI_KEY.into()))
        .start()
        .await
        .unwrap();
    let model = open(&hub(options(&server)), &spec("openai:gpt-test"));
    let mut req = full_request();
    req.top_logprobs = Some(2);

    let c = model.generate(&req).await.expect("generate");

    let sent = server.requests();
    assert_eq!(sent.len(), 1);
    let r = &sent[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {OPENAI_KEY}").as_str())
    );
    assert!(r
        .header("content-type")
        .unwrap_or("")
        .starts_with("application/json"));
    assert_eq!(r.header("x-api-key"), None);
    // The whole body, exactly: the system message first, turns in order, the official
    // token-budget field, logprobs switched on, and no nonce (it is never sent).
    assert_eq!(
        r.body,
        json!({
            "model": "gpt-test",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Is water wet?"},
                {"role": "assistant", "content": "Yes"},
                {"role": "user", "content": "Is fire cold? (A) yes (B) no"},
            ],
            "max_completion_tokens": 7,
            "temperature": 0.5,
            "top_p": 0.9,
            "stop": ["\n\n", "END"],
            "seed": 42,
            "logprobs": true,
            "top_logprobs": 2,
        })
    );

    assert_eq!(c.text, "Paris is");
    assert_eq!(c.stop_reason, StopReason::MaxTokens);
    assert_eq!(
        c.usage,
        Usage {
            input_tokens: 17,
            output_tokens: 2
        }
    );
    assert_eq!(
        c.logprobs,
        Some(vec![
            TokenLogprob {
                token: "Paris".into(),
                logprob: -0.125,
                // The server cut the alternatives to the requested two.
                top: vec![top("Paris", -0.125), top("London", -2.5)],
            },
            TokenLogprob {
                token: " is".into(),
                logprob: -0.25,
                top: vec![top(" is", -0.25), top(" was", -1.75)]
            },
        ])
    );
    assert_eq!(c.meta.attempts, 1);
    assert!(!c.meta.cached);
}

#[tokio::test]
async fn openai_leaves_out_logprobs_unless_asked_and_maps_finish_reasons() {
    let server = MockServer::start().await.unwrap();
    let model = open(&hub(options(&server)), &spec("openai:gpt-test"));

    for top_logprobs in [None, Some(0)] {
        let mut req = ask("Is the sky blue?");
        req.top_logprobs = top_logprobs;
        let c = model.generate(&req).await.unwrap();
        let body = server.requests().last().unwrap().body.clone();
        assert_eq!(
            keys(&body),
            ["max_completion_tokens", "messages", "model"],
            "{top_logprobs:?}: {body}"
        );
        assert_eq!(
            body["messages"],
            json!([{"role": "user", "content": "Is the sky blue?"}])
        );
        assert_eq!(c.logprobs, None);
        assert!(c.text == "Yes" || c.text == "No", "{:?}", c.text);
        assert_eq!(c.stop_reason, StopReason::EndTurn);
        assert_eq!(
            c.usage,
            Usage {
                input_tokens: 4,
                output_tokens: 1
            }
        );
    }

    // finish_reason "length" is a max-tokens stop.
    let server = MockServer::builder()
        .responder(responder(|r| MockReply {
            finish: Finish::Length,
            ..MockReply::for_request(r, "cut")
        }))
        .start()
        .await
        .unwrap();
    let model = open(&hub(options(&server)), &spec("openai:gpt-test"));
    let c = model.generate(&ask("Go on")).await.unwrap();
    assert_eq!(
        (c.text.as_str(), c.stop_reason),
        ("cut", StopReason::MaxTokens)
    );
}

#[tokio::test]
async fn openai_compatible_sends_max_tokens_and_only_its_own_optional_key() {
    let server = MockServer::start().await.unwrap();
    let spec = compat_spec(&server, "mock");

    // No compatible key configured: no Authorization header at all (and certainly not
    // the official OpenAI key).
    let model = open(&hub(options(&server)), &spec);
    assert_eq!(
        model.name(),
        format!("openai-compatible:{}/mock", server.openai_base_url())
    );
    let mut req = full_request();
    req.top_logprobs = Some(3);
    let c = model.generate(&req).await.unwrap();
    let r = server.requests().pop().unwrap();
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.header("authorization"), None);
    assert_eq!(r.body["model"], "mock");
    assert_eq!(r.body["max_tokens"], 7);
    assert!(r.body.get("max_completion_tokens").is_none(), "{}", r.body);
    assert_eq!(r.body["logprobs"], true);
    assert_eq!(r.body["top_logprobs"], 3);
    assert_eq!(
        r.body["messages"][0],
        json!({"role": "system", "content": "You are terse."})
    );
    let lp = c.logprobs.expect("logprobs requested");
    assert_eq!(lp.len(), 1);
    assert!(
        lp[0].top.len() == 3 && lp[0].top[0].token == lp[0].token,
        "{lp:?}"
    );
    assert!(lp[0].logprob < 0.0);

    let mut opts = options(&server);
    opts.env.compatible_api_key = Some(ApiKey::new(COMPAT_KEY));
    let model = open(&hub(opts), &spec);
    model.generate(&ask("Hello?")).await.unwrap();
    let r = server.requests().pop().unwrap();
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {COMPAT_KEY}").as_str())
    );
}

#[tokio::test]
async fn openai_prefill_is_unsupported_and_never_sent() {
    let server = MockServer::start().await.unwrap();
    let hub = hub(options(&server));
    for spec in [spec("openai:gpt-test"), compat_spec(&server, "mock")] {
        let model = open(&hub, &spec);
        let caps = model.capabilities();
        assert!(!caps.prefill);
        assert_eq!(caps.max_top_logprobs, 20);
        assert!(caps.logprobs() && caps.seed && caps.system_prompt && caps.multi_turn);
        let mut req = ask("Pick one: (A) x (B) y");
        req.prefill = Some("(".into());
        let err = model.generate(&req).await.unwrap_err();
        assert!(matches!(err, ModelError::Unsupported(_)), "{spec}: {err:?}");
    }
    assert_eq!(server.request_count(), 0);
}

#[tokio::test]
async fn missing_keys_are_configuration_errors() {
    let server = MockServer::start().await.unwrap();
    let mut opts = options(&server);
    opts.env.openai_api_key = None;
    opts.env.anthropic_api_key = None;
    let hub = ModelHub::new(opts).unwrap();
    for s in ["openai:gpt-test", "anthropic:claude-test"] {
        match hub.open(&spec(s)) {
            Err(ModelError::Config(m)) => assert!(m.contains("API_KEY"), "{m}"),
            Err(e) => panic!("{s}: {e:?}"),
            Ok(_) => panic!("{s}: opened without a key"),
        }
    }
    // A compatible server needs no key.
    assert!(hub.open(&compat_spec(&server, "mock")).is_ok());
}

// ---------------------------------------------------------------- Anthropic

#[tokio::test]
async fn anthropic_request_body_headers_and_parsed_reply() {
    let server = MockServer::builder()
        .responder(responder(|_| MockReply {
            text: "Nope.".into(),
            tokens: None,
            input_tokens: 11,
            output_tokens: 2,
            finish: Finish::Stop,
        }))
        .require_api_key(Some(ANTHROPIC_KEY.into()))
        .start()
        .await
        .unwrap();
    let model = open(&hub(options(&server)), &spec("anthropic:claude-test"));
    assert_eq!(model.name(), "anthropic:claude-test");
    assert!(!model.endpoint().contains(ANTHROPIC_KEY));

    let c = model.generate(&full_request()).await.unwrap();

    let sent = server.requests();
    assert_eq!(sent.len(), 1);
    let r = &sent[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/v1/messages")
    );
    assert_eq!(r.header("x-api-key"), Some(ANTHROPIC_KEY));
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(r.header("authorization"), None);
    // System prompt top level, stop_sequences (not stop), no seed, no nonce.
    assert_eq!(
        r.body,
        json!({
            "model": "claude-test",
            "max_tokens": 7,
            "system": "You are terse.",
            "messages": [
                {"role": "user", "content": "Is water wet?"},
                {"role": "assistant", "content": "Yes"},
                {"role": "user", "content": "Is fire cold? (A) yes (B) no"},
            ],
            "temperature": 0.5,
            "top_p": 0.9,
            "stop_sequences": ["\n\n", "END"],
        })
    );
    assert_eq!(c.text, "Nope.");
    assert_eq!(c.stop_reason, StopReason::EndTurn);
    assert_eq!(
        c.usage,
        Usage {
            input_tokens: 11,
            output_tokens: 2
        }
    );
    assert_eq!(c.logprobs, None);
    assert_eq!(c.meta.attempts, 1);
}

#[tokio::test]
async fn anthropic_stop_reasons() {
    let server = MockServer::builder()
        .responder(responder(|r| {
            let mut m = MockReply::for_request(r, "Yes END and more");
            if r.last_user_text() == "long" {
                m.finish = Finish::Length;
            }
            m
        }))
        .start()
        .await
        .unwrap();
    let model = open(&hub(options(&server)), &spec("anthropic:claude-test"));

    let mut req = ask("short");
    req.stop = vec!["END".into()];
    let c = model.generate(&req).await.unwrap();
    assert_eq!(
        (c.text.as_str(), c.stop_reason),
        ("Yes ", StopReason::StopSequence)
    );

    let c = model.generate(&ask("long")).await.unwrap();
    assert_eq!(
        (c.text.as_str(), c.stop_reason),
        ("Yes END and more", StopReason::MaxTokens)
    );

    let c = model.generate(&ask("plain")).await.unwrap();
    assert_eq!(c.stop_reason, StopReason::EndTurn);
}

fn greedy_option(prompt: &str) -> String {
    let d = default_distribution(prompt);
    d.iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap()
        .0
        .clone()
}

#[tokio::test]
async fn anthropic_prefill_is_sent_right_trimmed_and_only_the_continuation_returned() {
    let server = MockServer::start().await.unwrap();
    let model = open(&hub(options(&server)), &spec("anthropic:claude-test"));
    let caps = model.capabilities();
    assert!(caps.prefill && !caps.logprobs() && caps.max_top_logprobs == 0 && !caps.seed);

    let prompt = "Which is larger? (A) two (B) three";
    let mut req = ask(prompt);
    req.prefill = Some("The answer is ( ".into());
    let c = model.generate(&req).await.unwrap();
    let r = server.requests().pop().unwrap();
    assert_eq!(
        r.body["messages"],
        json!([
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": "The answer is ("},
        ])
    );
    assert!(r.body.get("prefill").is_none());
    // The mock continues a "(" with "A)" / "B)"; the prefill is not repeated.
    assert_eq!(c.text, format!("{})", greedy_option(prompt)));
    assert_eq!(c.usage.output_tokens, 2);

    // A prefill ending in a word is continued with a leading space, which is kept...
    let prompt = "Is ice cold?";
    let answer = greedy_option(prompt);
    let mut req = ask(prompt);
    req.prefill = Some("Answer:".into());
    let c = model.generate(&req).await.unwrap();
    assert_eq!(
        server.requests().pop().unwrap().body["messages"][1]["content"],
        "Answer:"
    );
    assert_eq!(c.text, format!(" {answer}"));

    // ...but when the caller's prefill already ended in that space, the model's
    // re-emitted space belongs to the prefill: prefill + text is the whole reply.
    req.prefill = Some("Answer: ".into());
    let c = model.generate(&req).await.unwrap();
    assert_eq!(
        server.requests().pop().unwrap().body["messages"][1]["content"],
        "Answer:"
    );
    assert_eq!(c.text, answer);
    assert_eq!(
        format!("{}{}", req.prefill.as_deref().unwrap(), c.text),
        format!("Answer: {answer}")
    );

    // A prefill of only whitespace sends no assistant turn.
    req.prefill = Some("  \n".into());
    model.generate(&req).await.unwrap();
    let r = server.requests().pop().unwrap();
    assert_eq!(
        r.body["messages"],
        json!([{"role": "user", "content": prompt}])
    );
}

#[tokio::test]
async fn anthropic_multi_turn_prefill_follows_the_last_user_turn() {
    let server = MockServer::start().await.unwrap();
    let model = open(&hub(options(&server)), &spec("anthropic:claude-test"));
    let req = GenerateRequest {
        messages: vec![
            Message::user("Hi"),
            Message::assistant("Hello."),
            Message::user("Ready? (A) y (B) n"),
        ],
        prefill: Some("(".into()),
        ..GenerateRequest::user("", 4)
    };
    model.generate(&req).await.unwrap();
    let roles: Vec<Value> = server.requests()[0].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].clone())
        .collect();
    assert_eq!(
        roles,
        [
            json!("user"),
            json!("assistant"),
            json!("user"),
            json!("assistant")
        ]
    );
}

#[tokio::test]
async fn anthropic_logprobs_are_unsupported_and_never_sent() {
    let server = MockServer::start().await.unwrap();
    let model = open(&hub(options(&server)), &spec("anthropic:claude-test"));
    let mut req = ask("Is the sky blue?");
    req.top_logprobs = Some(5);
    let err = model.generate(&req).await.unwrap_err();
    assert!(matches!(err, ModelError::Unsupported(_)), "{err:?}");
    assert_eq!(server.request_count(), 0);

    // Zero alternatives is "no logprobs", which is fine.
    req.top_logprobs = Some(0);
    let c = model.generate(&req).await.unwrap();
    assert_eq!(c.logprobs, None);
    assert_eq!(server.request_count(), 1);
    assert!(server.requests()[0].body.get("top_logprobs").is_none());
}

#[tokio::test]
async fn credentials_in_a_compatible_url_never_print() {
    let server = MockServer::start().await.unwrap();
    let s = spec(&format!(
        "openai-compatible:http://user:s3cr3t-pw@{}/v1/mock",
        server.addr()
    ));
    let model = open(&hub(options(&server)), &s);
    assert!(!model.name().contains("s3cr3t") && !model.endpoint().contains("s3cr3t"));
    assert!(model.generate(&ask("Hi?")).await.is_ok());

    server.push_fault(shammie_testkit::Fault::Status(400));
    let err = model.generate(&ask("Hi?")).await.unwrap_err();
    assert!(
        matches!(err, ModelError::Rejected { status: 400, .. }),
        "{err:?}"
    );
    server.push_faults(std::iter::repeat_n(shammie_testkit::Fault::Reset, 4));
    let err = model.generate(&ask("Hi?")).await.unwrap_err();
    assert!(
        matches!(err, ModelError::Exhausted { attempts: 4, .. }),
        "{err:?}"
    );
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains("s3cr3t"), "{text}");
    }
}

#[tokio::test]
async fn api_providers_refuse_scoring_requests_without_calling_out() {
    let server = MockServer::start().await.unwrap();
    let h = hub(options(&server));
    for s in ["anthropic:claude-test", "openai:gpt-test"] {
        let model = open(&h, &spec(s));
        assert!(!model.capabilities().score_continuations);
        let req = GenerateRequest::user("Is it?", 1).scoring(vec![" yes".into(), " no".into()]);
        let err = model.generate(&req).await.unwrap_err();
        assert!(
            err.to_string().contains("cannot score given continuations"),
            "{s}: {err}"
        );
    }
    assert!(server.requests().is_empty());
}
