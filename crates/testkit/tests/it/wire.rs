//! Success and validation behaviour of both wire formats, through reqwest.

use crate::common::*;
use serde_json::{json, Value};
use shammie_testkit::{
    default_distribution, default_reply, responder, Api, MockReply, MockServer, ParsedRequest,
    OPTION_MASS,
};

fn predict(api: Api, body: &Value) -> MockReply {
    default_reply(&ParsedRequest::from_body(api, body.clone()).expect("valid body"))
}

#[tokio::test]
async fn openai_success_format() {
    let s = MockServer::start().await.unwrap();
    let c = client();
    let body = json!({
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Is water wet at room temperature?"}
        ],
        "max_tokens": 5,
        "temperature": 0
    });
    let r = openai(&c, &s, &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(v["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(v["model"], "gpt-4o-mini");
    let choices = v["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 1);
    let ch = &choices[0];
    assert_eq!(ch["index"], 0);
    assert_eq!(ch["message"]["role"], "assistant");
    let text = ch["message"]["content"].as_str().unwrap();
    assert!(text == "Yes" || text == "No", "{text}");
    assert_eq!(text, predict(Api::OpenAi, &body).text);
    assert_eq!(ch["finish_reason"], "stop");
    assert!(ch["logprobs"].is_null());
    // 3 system words + 6 user words; one output token.
    assert_eq!(v["usage"]["prompt_tokens"], 9);
    assert_eq!(v["usage"]["completion_tokens"], 1);
    assert_eq!(v["usage"]["total_tokens"], 10);

    // Deterministic: the same prompt gets the same answer.
    let again = openai(&c, &s, &body).await.json();
    assert_eq!(again["choices"][0]["message"]["content"], text);
}

#[tokio::test]
async fn openai_logprobs_and_top_logprobs() {
    let s = MockServer::start().await.unwrap();
    let c = client();
    let question = "Which is larger? (A) 3 (B) 7";
    let body = json!({
        "model": "gpt-mock",
        "messages": [{"role": "user", "content": question}],
        "max_completion_tokens": 1,
        "logprobs": true,
        "top_logprobs": 3
    });
    let v = openai(&c, &s, &body).await.json();
    let ch = &v["choices"][0];
    let text = ch["message"]["content"].as_str().unwrap();
    let dist = default_distribution(question);
    let best = if dist[0].1 > dist[1].1 { "A" } else { "B" };
    assert_eq!(text, best, "greedy answer is the likelier letter, not '(A'");

    let content = ch["logprobs"]["content"].as_array().unwrap();
    assert_eq!(content.len(), 1);
    let tok = &content[0];
    assert_eq!(tok["token"], text);
    assert_eq!(tok["bytes"], json!(text.as_bytes()));
    let lp = tok["logprob"].as_f64().unwrap();
    let p_best = dist.iter().find(|(o, _)| o == best).unwrap().1;
    assert!((lp - p_best.ln()).abs() < 1e-9);

    let top = tok["top_logprobs"].as_array().unwrap();
    assert_eq!(top.len(), 3, "limited to top_logprobs");
    let lps: Vec<f64> = top.iter().map(|t| t["logprob"].as_f64().unwrap()).collect();
    assert!(lps.windows(2).all(|w| w[0] >= w[1]), "sorted: {lps:?}");
    let find = |name: &str| {
        top.iter()
            .find(|t| t["token"] == name)
            .map(|t| t["logprob"].as_f64().unwrap().exp())
    };
    let (pa, pb) = (find("A").expect("A listed"), find("B").expect("B listed"));
    assert!((pa + pb - OPTION_MASS).abs() < 1e-9);
    assert!(pa + pb < 1.0);
    for t in top {
        let name = t["token"].as_str().unwrap();
        assert_eq!(t["bytes"], json!(name.as_bytes()));
    }

    // top_logprobs 1: only the answer itself.
    let mut b1 = body.clone();
    b1["top_logprobs"] = json!(1);
    let v1 = openai(&c, &s, &b1).await.json();
    let top1 = v1["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(top1.len(), 1);
    assert_eq!(top1[0]["token"], best);

    // logprobs without top_logprobs: per-token logprobs, empty top lists.
    let mut b0 = body.clone();
    b0.as_object_mut().unwrap().remove("top_logprobs");
    let v0 = openai(&c, &s, &b0).await.json();
    let t0 = &v0["choices"][0]["logprobs"]["content"][0];
    assert_eq!(t0["token"], best);
    assert_eq!(t0["top_logprobs"], json!([]));
}

#[tokio::test]
async fn openai_sampling_seed_and_n() {
    let s = MockServer::start().await.unwrap();
    let c = client();
    // A prompt whose two options are both reasonably likely.
    let prompt = (0..200)
        .map(|i| format!("Is claim {i} true?"))
        .find(|p| default_distribution(p).iter().all(|(_, pr)| *pr > 0.25))
        .expect("a balanced prompt");
    let mut body = openai_body(&prompt);
    body["temperature"] = json!(1.0);
    body["n"] = json!(64);
    let v = openai(&c, &s, &body).await.json();
    let answers: Vec<&str> = v["choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ch| ch["message"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(answers.len(), 64);
    assert!(
        answers.contains(&"Yes") && answers.contains(&"No"),
        "{answers:?}"
    );
    assert_eq!(v["usage"]["completion_tokens"], 64);
    for (i, ch) in v["choices"].as_array().unwrap().iter().enumerate() {
        assert_eq!(ch["index"], i);
    }

    // With a seed the sample is a function of (seed, prompt).
    let mut seeded = openai_body(&prompt);
    seeded["temperature"] = json!(1.0);
    let mut by_seed = Vec::new();
    for seed in 0..24u64 {
        seeded["seed"] = json!(seed);
        let a = openai(&c, &s, &seeded).await.json()["choices"][0]["message"]["content"].clone();
        let b = openai(&c, &s, &seeded).await.json()["choices"][0]["message"]["content"].clone();
        assert_eq!(a, b, "seed {seed} must repeat");
        assert_eq!(a.as_str().unwrap(), predict(Api::OpenAi, &seeded).text);
        by_seed.push(a);
    }
    assert!(by_seed.iter().any(|a| a == "Yes") && by_seed.iter().any(|a| a == "No"));
}

#[tokio::test]
async fn openai_stop_and_custom_responder() {
    let s = MockServer::builder()
        .responder(responder(|req| {
            MockReply::for_request(
                req,
                format!("Hello world. You said: {}", req.last_user_text()),
            )
        }))
        .start()
        .await
        .unwrap();
    let c = client();
    let mut body = openai_body("ping");
    let v = openai(&c, &s, &body).await.json();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Hello world. You said: ping"
    );
    assert_eq!(v["usage"]["completion_tokens"], 5);
    assert_eq!(v["usage"]["prompt_tokens"], 1);

    body["stop"] = json!(["You", "."]);
    let v = openai(&c, &s, &body).await.json();
    assert_eq!(v["choices"][0]["message"]["content"], "Hello world");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["completion_tokens"], 2);

    body["stop"] = json!("said");
    body["logprobs"] = json!(true);
    let v = openai(&c, &s, &body).await.json();
    assert_eq!(v["choices"][0]["message"]["content"], "Hello world. You ");
    let toks: Vec<&str> = v["choices"][0]["logprobs"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["token"].as_str().unwrap())
        .collect();
    assert_eq!(toks.concat(), "Hello world. You ");
}

#[tokio::test]
async fn openai_rejects_bad_requests_with_400() {
    let s = MockServer::start().await.unwrap();
    let c = client();
    let url = format!("{}/chat/completions", s.openai_base_url());

    let r = send(
        c.post(&url)
            .header("content-type", "application/json")
            .body("{\"model\": \"x\", \"messages\": ["),
    )
    .await;
    assert_eq!(r.status, 400);
    let v = r.json();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(v["error"]["message"].as_str().unwrap().contains("JSON"));
    assert!(v["error"].get("code").is_some());

    let cases = [
        json!({"messages": [{"role": "user", "content": "hi"}]}),
        json!({"model": "m", "messages": []}),
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "top_logprobs": 2}),
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "logprobs": true, "top_logprobs": 21}),
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true}),
        json!({"model": "m", "messages": [{"role": "wizard", "content": "hi"}]}),
    ];
    for body in cases {
        let r = openai(&c, &s, &body).await;
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    }
    assert_eq!(s.successful_count(), 0);
    assert_eq!(s.request_count(), 7);
}

#[tokio::test]
async fn anthropic_success_format() {
    let s = MockServer::start().await.unwrap();
    let c = client();
    let body = json!({
        "model": "claude-3-5-haiku-latest",
        "max_tokens": 10,
        "system": "Answer with one word.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Is the sky green?"}]}]
    });
    let r = anthropic(&c, &s, &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert!(v["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(v["model"], "claude-3-5-haiku-latest");
    let content = v["content"].as_array().unwrap();
    assert_eq!(content.len(), 1);
    assert_eq!(content[0]["type"], "text");
    let text = content[0]["text"].as_str().unwrap();
    assert!(text == "Yes" || text == "No");
    assert_eq!(text, predict(Api::Anthropic, &body).text);
    assert_eq!(v["stop_reason"], "end_turn");
    assert!(v["stop_sequence"].is_null());
    assert_eq!(v["usage"]["input_tokens"], 8);
    assert_eq!(v["usage"]["output_tokens"], 1);
    assert!(v.get("choices").is_none());
}

#[tokio::test]
async fn anthropic_prefill_is_continued_not_repeated() {
    let s = MockServer::start().await.unwrap();
    let c = client();
    let q = "Which colour is grass? (A) green (B) purple";
    let dist = default_distribution(q);
    let best = if dist[0].1 > dist[1].1 { "A" } else { "B" };

    let body = json!({
        "model": "claude-mock", "max_tokens": 5,
        "messages": [
            {"role": "user", "content": q},
            {"role": "assistant", "content": "The answer is ("}
        ]
    });
    let v = anthropic(&c, &s, &body).await.json();
    let text = v["content"][0]["text"].as_str().unwrap();
    assert_eq!(text, format!("{best})"));
    assert!(!text.contains("The answer"));
    assert_eq!(v["usage"]["output_tokens"], 2);
    assert_eq!(v["stop_reason"], "end_turn");

    // A prefill not ending in "(" gets a leading space.
    let mut b2 = body.clone();
    b2["messages"][1]["content"] = json!([{"type": "text", "text": "Answer:"}]);
    let v = anthropic(&c, &s, &b2).await.json();
    assert_eq!(v["content"][0]["text"], format!(" {best}"));

    // max_tokens cuts the continuation.
    let mut b3 = body.clone();
    b3["max_tokens"] = json!(1);
    let v = anthropic(&c, &s, &b3).await.json();
    assert_eq!(v["content"][0]["text"], best);
    assert_eq!(v["stop_reason"], "max_tokens");
    assert_eq!(v["usage"]["output_tokens"], 1);

    // Trailing whitespace in the prefill is rejected, as by the real API.
    let mut b4 = body.clone();
    b4["messages"][1]["content"] = json!("The answer is ");
    let r = anthropic(&c, &s, &b4).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn anthropic_stop_sequences() {
    let s = MockServer::builder()
        .responder(responder(|req| {
            MockReply::for_request(req, "alpha beta STOP gamma")
        }))
        .start()
        .await
        .unwrap();
    let c = client();
    let mut body = anthropic_body("go");
    body["stop_sequences"] = json!(["gamma", "STOP"]);
    let v = anthropic(&c, &s, &body).await.json();
    assert_eq!(v["content"][0]["text"], "alpha beta ");
    assert_eq!(v["stop_reason"], "stop_sequence");
    assert_eq!(v["stop_sequence"], "STOP");

    body["stop_sequences"] = json!(["zeta"]);
    let v = anthropic(&c, &s, &body).await.json();
    assert_eq!(v["content"][0]["text"], "alpha beta STOP gamma");
    assert_eq!(v["stop_reason"], "end_turn");
    assert!(v["stop_sequence"].is_null());
}

#[tokio::test]
async fn anthropic_rejects_bad_requests_with_400() {
    let s = MockServer::start().await.unwrap();
    let c = client();
    let cases = [
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
        json!({"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "hi"}]}),
        json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "temperature": 1.5}),
    ];
    for body in cases {
        let r = anthropic(&c, &s, &body).await;
        assert_eq!(r.status, 400, "{body}");
        let v = r.json();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    }
    let r = send(
        c.post(format!("{}/v1/messages", s.anthropic_base_url()))
            .header("content-type", "application/json")
            .body("not json"),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn openai_continue_final_message_is_a_prefill() {
    let s = MockServer::start().await.unwrap();
    let c = client();
    let body = json!({
        "model": "m",
        "messages": [
            {"role": "user", "content": "Pick one: (A) red (B) blue"},
            {"role": "assistant", "content": "The answer is ("}
        ],
        "max_tokens": 5,
        "continue_final_message": true,
        "add_generation_prompt": false
    });
    let parsed = ParsedRequest::from_body(Api::OpenAi, body.clone()).unwrap();
    assert_eq!(parsed.prefill.as_deref(), Some("The answer is ("));
    assert_eq!(parsed.messages.len(), 1);
    let v = openai(&c, &s, &body).await.json();
    let text = v["choices"][0]["message"]["content"].as_str().unwrap();
    // The continuation only (a letter and its closing parenthesis), never the prefill.
    assert!(text == "A)" || text == "B)", "{text}");
    let mut both = body.clone();
    both["add_generation_prompt"] = json!(true);
    assert_eq!(openai(&c, &s, &both).await.status, 400);
    let mut last_user = body.clone();
    last_user["messages"] = json!([{"role": "user", "content": "hi"}]);
    assert_eq!(openai(&c, &s, &last_user).await.status, 400);
}

#[tokio::test]
async fn completions_route_with_echo_and_faults() {
    let s = MockServer::start().await.unwrap();
    let c = client();
    let url = format!("{}/completions", s.openai_base_url());
    let body = json!({"model": "m", "prompt": "Human: Hi\n\nAssistant: yes",
        "max_tokens": 1, "echo": true, "logprobs": 1, "temperature": 0});
    let r = send(c.post(&url).json(&body)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["object"], "text_completion");
    let lp = &v["choices"][0]["logprobs"];
    assert_eq!(lp["tokens"][3], " yes");
    assert_eq!(
        lp["token_logprobs"][3],
        json!(shammie_testkit::completion_logprob(
            "Human: Hi\n\nAssistant:",
            " yes"
        ))
    );
    s.push_fault(shammie_testkit::Fault::Status(502));
    assert_eq!(send(c.post(&url).json(&body)).await.status, 502);
    let r = send(c.post(&url).json(&json!({"model": "m"}))).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(s.requests().last().unwrap().path, "/v1/completions");
}
