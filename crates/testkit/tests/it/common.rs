//! Helpers shared by the integration tests: a real reqwest client against
//! the mock server.
#![allow(dead_code)]

use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use shammie_testkit::MockServer;

pub(crate) struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Resp {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.text))
    }
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ascii header").to_string())
    }
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder().build().expect("client")
}

pub(crate) async fn send(req: reqwest::RequestBuilder) -> Resp {
    let r = req.send().await.expect("request failed");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.expect("body");
    Resp {
        status,
        headers,
        text,
    }
}

pub(crate) fn openai_req(
    c: &reqwest::Client,
    s: &MockServer,
    body: &Value,
) -> reqwest::RequestBuilder {
    c.post(format!("{}/chat/completions", s.openai_base_url()))
        .bearer_auth("sk-test")
        .json(body)
}

pub(crate) fn anthropic_req(
    c: &reqwest::Client,
    s: &MockServer,
    body: &Value,
) -> reqwest::RequestBuilder {
    c.post(format!("{}/v1/messages", s.anthropic_base_url()))
        .header("x-api-key", "sk-test")
        .header("anthropic-version", "2023-06-01")
        .json(body)
}

pub(crate) async fn openai(c: &reqwest::Client, s: &MockServer, body: &Value) -> Resp {
    send(openai_req(c, s, body)).await
}

pub(crate) async fn anthropic(c: &reqwest::Client, s: &MockServer, body: &Value) -> Resp {
    send(anthropic_req(c, s, body)).await
}

pub(crate) fn openai_body(user: &str) -> Value {
    json!({"model": "gpt-mock", "messages": [{"role": "user", "content": user}], "max_tokens": 16})
}

pub(crate) fn anthropic_body(user: &str) -> Value {
    json!({"model": "claude-mock", "max_tokens": 16, "messages": [{"role": "user", "content": user}]})
}
