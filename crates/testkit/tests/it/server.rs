//! Server behaviour: API keys, recording, HTTP/1.1 details, concurrency,
//! shutdown, and the `shammie-mock` binary.

use std::time::Duration;

use crate::common::*;
use serde_json::json;
use shammie_testkit::{default_reply, Api, MockServer, ParsedRequest};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

#[tokio::test]
async fn api_key_is_enforced_per_api() {
    let s = MockServer::builder()
        .require_api_key(Some("sk-right".into()))
        .start()
        .await
        .unwrap();
    let c = client();
    let url_o = format!("{}/chat/completions", s.openai_base_url());
    let url_a = format!("{}/v1/messages", s.anthropic_base_url());
    let ob = openai_body("hi");
    let ab = anthropic_body("hi");

    for req in [
        c.post(&url_o).json(&ob),
        c.post(&url_o).bearer_auth("sk-wrong").json(&ob),
        c.post(&url_o).header("x-api-key", "sk-right").json(&ob),
    ] {
        let r = send(req).await;
        assert_eq!(r.status, 401);
        let v = r.json();
        assert_eq!(v["error"]["code"], "invalid_api_key");
        assert_eq!(v["error"]["type"], "invalid_request_error");
    }
    assert_eq!(
        send(c.post(&url_o).bearer_auth("sk-right").json(&ob))
            .await
            .status,
        200
    );

    for req in [
        c.post(&url_a).json(&ab),
        c.post(&url_a).header("x-api-key", "sk-wrong").json(&ab),
        c.post(&url_a).bearer_auth("sk-right").json(&ab),
    ] {
        let r = send(req).await;
        assert_eq!(r.status, 401);
        let v = r.json();
        assert_eq!(v["type"], "error");
        assert_eq!(v["error"]["type"], "authentication_error");
    }
    let r = send(
        c.post(&url_a)
            .header("x-api-key", "sk-right")
            .header("anthropic-version", "2023-06-01")
            .json(&ab),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(s.successful_count(), 2);
    assert_eq!(s.request_count(), 8);
}

#[tokio::test]
async fn requests_are_recorded_in_order() {
    let s = MockServer::start().await.unwrap();
    let c = client();
    let ob =
        json!({"model": "gpt-x", "messages": [{"role": "user", "content": "first"}], "seed": 7});
    let ab = json!({"model": "claude-x", "max_tokens": 3, "messages": [{"role": "user", "content": "second"}]});
    assert_eq!(openai(&c, &s, &ob).await.status, 200);
    assert_eq!(anthropic(&c, &s, &ab).await.status, 200);
    let bad = send(
        c.post(format!("{}/chat/completions", s.openai_base_url()))
            .header("content-type", "application/json")
            .body("{oops"),
    )
    .await;
    assert_eq!(bad.status, 400);
    let nf = send(c.get(format!("{}/v1/models", s.anthropic_base_url()))).await;
    assert_eq!(nf.status, 404);
    assert!(nf.json()["error"]["message"].is_string());

    let reqs = s.requests();
    assert_eq!(reqs.len(), 4);
    assert_eq!(s.request_count(), 4);
    assert_eq!(s.successful_count(), 2);

    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, "/v1/chat/completions");
    assert_eq!(reqs[0].body, ob);
    assert_eq!(reqs[0].status, 200);
    assert_eq!(reqs[0].fault, None);
    assert_eq!(reqs[0].header("Authorization"), Some("Bearer sk-test"));

    assert_eq!(reqs[1].path, "/v1/messages");
    assert_eq!(reqs[1].body, ab);
    assert_eq!(reqs[1].header("x-api-key"), Some("sk-test"));
    assert_eq!(reqs[1].header("anthropic-version"), Some("2023-06-01"));
    assert!(reqs[1]
        .headers
        .iter()
        .all(|(k, _)| *k == k.to_ascii_lowercase()));

    assert_eq!(reqs[2].status, 400);
    assert_eq!(reqs[2].body, json!("{oops"));
    assert_eq!(reqs[3].method, "GET");
    assert_eq!(reqs[3].path, "/v1/models");
    assert_eq!(reqs[3].status, 404);

    s.clear_requests();
    assert!(s.requests().is_empty());
    assert_eq!(s.request_count(), 4);
}

#[tokio::test]
async fn responder_sees_parsed_request_and_headers() {
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<ParsedRequest>>> = Arc::default();
    let seen2 = seen.clone();
    let s = MockServer::builder()
        .responder(shammie_testkit::responder(move |req| {
            seen2.lock().unwrap().push(req.clone());
            default_reply(req)
        }))
        .start()
        .await
        .unwrap();
    let c = client();
    let ob = json!({
        "model": "gpt-x",
        "messages": [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "assistant", "content": "c"},
            {"role": "user", "content": "d"}
        ],
        "max_completion_tokens": 9, "temperature": 0.5, "top_p": 0.9, "stop": "X",
        "seed": 3, "logprobs": true, "top_logprobs": 2
    });
    assert_eq!(openai(&c, &s, &ob).await.status, 200);
    let ab = json!({
        "model": "claude-x", "max_tokens": 4,
        "system": [{"type": "text", "text": "be brief"}],
        "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "("}],
        "stop_sequences": ["\n"], "top_k": 5
    });
    assert_eq!(anthropic(&c, &s, &ab).await.status, 200);

    let seen = seen.lock().unwrap();
    let o = &seen[0];
    assert_eq!(o.api, Api::OpenAi);
    assert_eq!(o.system.as_deref(), Some("sys"));
    let msgs: Vec<(&str, &str)> = o
        .messages
        .iter()
        .map(|(r, t)| (r.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        msgs,
        vec![("user", "a\nb"), ("assistant", "c"), ("user", "d")]
    );
    assert_eq!(o.prefill, None);
    assert_eq!(o.max_tokens, Some(9));
    assert_eq!(o.temperature, Some(0.5));
    assert_eq!(o.top_p, Some(0.9));
    assert_eq!(o.stop, vec!["X".to_string()]);
    assert_eq!(o.seed, Some(3));
    assert!(o.logprobs);
    assert_eq!(o.top_logprobs, Some(2));
    assert_eq!(o.raw, ob);
    assert_eq!(o.header("authorization"), Some("Bearer sk-test"));

    let a = &seen[1];
    assert_eq!(a.api, Api::Anthropic);
    assert_eq!(a.system.as_deref(), Some("be brief"));
    assert_eq!(a.messages, vec![("user".to_string(), "q".to_string())]);
    assert_eq!(a.prefill.as_deref(), Some("("));
    assert_eq!(a.max_tokens, Some(4));
    assert_eq!(a.stop, vec!["\n".to_string()]);
    assert!(!a.logprobs);
    assert_eq!(a.header("anthropic-version"), Some("2023-06-01"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_requests_are_all_answered() {
    let s = MockServer::builder()
        .latency(Duration::from_millis(100))
        .start()
        .await
        .unwrap();
    let c = client();
    let futs = (0..500).map(|i| {
        let c = c.clone();
        let prompt = format!("Question {i}: is it so? (A) yes (B) no");
        let (req, api, body) = if i % 2 == 0 {
            let b = openai_body(&prompt);
            (openai_req(&c, &s, &b), Api::OpenAi, b)
        } else {
            let b = anthropic_body(&prompt);
            (anthropic_req(&c, &s, &b), Api::Anthropic, b)
        };
        async move {
            let r = send(req).await;
            let expect = default_reply(&ParsedRequest::from_body(api, body).unwrap()).text;
            (r, api, expect)
        }
    });
    let results = tokio::time::timeout(Duration::from_secs(60), futures::future::join_all(futs))
        .await
        .expect("500 requests within 60 s");
    assert_eq!(results.len(), 500);
    for (r, api, expect) in results {
        assert_eq!(r.status, 200, "{}", r.text);
        let v = r.json();
        let text = match api {
            Api::OpenAi => v["choices"][0]["message"]["content"].clone(),
            Api::Anthropic => v["content"][0]["text"].clone(),
        };
        assert_eq!(text, json!(expect));
    }
    assert_eq!(s.request_count(), 500);
    assert_eq!(s.successful_count(), 500);
    assert_eq!(s.requests().len(), 500);
}

/// Raw HTTP/1.1: two pipelined requests on one connection, then
/// `Connection: close` is honoured.
#[tokio::test]
async fn raw_keep_alive_and_connection_close() {
    let s = MockServer::start().await.unwrap();
    let mut sock = tokio::net::TcpStream::connect(s.addr()).await.unwrap();
    let body = serde_json::to_string(&anthropic_body("hello")).unwrap();
    let req = |close: bool| {
        format!(
            "POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n{}",
            body.len(),
            if close { "Connection: close\r\n" } else { "" },
            body
        )
    };
    sock.write_all(format!("{}{}", req(false), req(true)).as_bytes())
        .await
        .unwrap();
    let mut all = String::new();
    tokio::time::timeout(Duration::from_secs(10), sock.read_to_string(&mut all))
        .await
        .expect("server closes after Connection: close")
        .unwrap();
    assert_eq!(all.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{all}");
    assert!(all.contains("connection: keep-alive"));
    assert!(all.contains("connection: close"));
    assert_eq!(all.matches("\"type\":\"message\"").count(), 2);
    assert_eq!(s.successful_count(), 2);
}

#[tokio::test]
async fn dropping_the_server_stops_it() {
    let s = MockServer::start().await.unwrap();
    let addr = s.addr();
    assert!(addr.ip().is_loopback());
    assert_eq!(
        s.openai_base_url(),
        format!("http://127.0.0.1:{}/v1", addr.port())
    );
    assert_eq!(
        s.anthropic_base_url(),
        format!("http://127.0.0.1:{}", addr.port())
    );
    s.push_fault(shammie_testkit::Fault::Hang);
    let mut hung = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = serde_json::to_string(&openai_body("x")).unwrap();
    hung.write_all(
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: {}\r\n\r\n{}",
            body.len(),
            body
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(s.request_count(), 1);

    drop(s);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed"
    );
    // The hung connection is closed too.
    let mut buf = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), hung.read_to_end(&mut buf))
        .await
        .expect("hung connection closed on drop");
    assert!(n.map(|_| buf.is_empty()).unwrap_or(true));
}

#[tokio::test]
async fn binary_prints_address_serves_and_exits_on_sigterm() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_shammie-mock"))
        .args(["--port", "0", "--threads", "2", "--latency-ms", "1"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(20), stdout.read_line(&mut line))
        .await
        .expect("first line in time")
        .unwrap();
    let base = line
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    assert!(base.starts_with("http://127.0.0.1:"));

    let c = client();
    let r = send(
        c.post(format!("{base}/v1/chat/completions"))
            .json(&openai_body("Is it on?")),
    )
    .await;
    assert_eq!(r.status, 200);
    let expect =
        default_reply(&ParsedRequest::from_body(Api::OpenAi, openai_body("Is it on?")).unwrap());
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        json!(expect.text)
    );
    let r = send(
        c.post(format!("{base}/v1/messages"))
            .header("x-api-key", "k")
            .json(&anthropic_body("Is it on?")),
    )
    .await;
    assert_eq!(r.status, 200);

    let pid = child.id().unwrap();
    let st = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
    let mut last = String::new();
    stdout.read_line(&mut last).await.unwrap();
    assert_eq!(last.trim_end(), "answered 2", "the two answered requests");
}
