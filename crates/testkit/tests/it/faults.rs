//! Each scripted fault is delivered as specified, in FIFO order, and normal
//! service resumes afterwards.

use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;
use shammie_testkit::{Fault, MockServer};

#[tokio::test]
async fn rate_limit_with_retry_after() {
    let s = MockServer::start().await.unwrap();
    let c = client();
    s.push_faults([
        Fault::RateLimit {
            retry_after: Some(Duration::from_millis(50)),
        },
        Fault::RateLimit {
            retry_after: Some(Duration::from_secs(2)),
        },
        Fault::RateLimit { retry_after: None },
    ]);

    let r = openai(&c, &s, &openai_body("hi")).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after").as_deref(), Some("0.05"));
    let v = r.json();
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    assert!(v["error"]["message"].is_string());
    assert!(v["error"]["type"].is_string());

    let r = anthropic(&c, &s, &anthropic_body("hi")).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after").as_deref(), Some("2"));
    let v = r.json();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "rate_limit_error");

    let r = openai(&c, &s, &openai_body("hi")).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), None);

    let r = openai(&c, &s, &openai_body("hi")).await;
    assert_eq!(r.status, 200, "service resumes after the queue is empty");
    assert_eq!(s.successful_count(), 1);
}

#[tokio::test]
async fn status_faults_use_each_apis_error_format() {
    let s = MockServer::start().await.unwrap();
    let c = client();
    s.push_faults([Fault::Status(500), Fault::Status(500), Fault::Status(503)]);

    let r = openai(&c, &s, &openai_body("hi")).await;
    assert_eq!(r.status, 500);
    let v = r.json();
    let err = v["error"].as_object().expect("OpenAI error object");
    assert_eq!(err["type"], "server_error");
    assert!(err["message"].as_str().unwrap().len() > 5);
    assert!(err.contains_key("code"));

    let r = anthropic(&c, &s, &anthropic_body("hi")).await;
    assert_eq!(r.status, 500);
    let v = r.json();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "api_error");

    let r = anthropic(&c, &s, &anthropic_body("hi")).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["type"], "api_error");
}

#[tokio::test]
async fn overloaded_is_529_for_anthropic_and_503_for_openai() {
    let s = MockServer::start().await.unwrap();
    let c = client();
    s.push_faults([Fault::Overloaded, Fault::Overloaded]);

    let r = anthropic(&c, &s, &anthropic_body("hi")).await;
    assert_eq!(r.status, 529);
    let v = r.json();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "overloaded_error");

    let r = openai(&c, &s, &openai_body("hi")).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["type"], "server_error");
}

#[tokio::test]
async fn delay_then_normal_answer() {
    let s = MockServer::start().await.unwrap();
    let c = client();
    // Warm the connection so the measurement is of the delay only.
    assert_eq!(openai(&c, &s, &openai_body("warm")).await.status, 200);

    s.push_fault(Fault::Delay(Duration::from_millis(300)));
    let t0 = Instant::now();
    let r = anthropic(&c, &s, &anthropic_body("hi")).await;
    let took = t0.elapsed();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["type"], "message");
    assert!(took >= Duration::from_millis(300), "took {took:?}");

    let t0 = Instant::now();
    assert_eq!(anthropic(&c, &s, &anthropic_body("hi")).await.status, 200);
    assert!(
        t0.elapsed() < Duration::from_millis(300),
        "no delay once consumed"
    );
    assert_eq!(s.requests()[1].fault.as_deref(), Some("delay"));
    assert_eq!(s.requests()[1].status, 200);
}

#[tokio::test]
async fn builder_latency_applies_to_every_response() {
    let s = MockServer::builder()
        .latency(Duration::from_millis(120))
        .start()
        .await
        .unwrap();
    let c = client();
    for _ in 0..2 {
        let t0 = Instant::now();
        assert_eq!(openai(&c, &s, &openai_body("hi")).await.status, 200);
        assert!(t0.elapsed() >= Duration::from_millis(120));
    }
}

#[tokio::test]
async fn reset_is_a_connection_error_and_service_resumes() {
    let s = MockServer::start().await.unwrap();
    let c = client();
    assert_eq!(openai(&c, &s, &openai_body("warm")).await.status, 200);

    s.push_fault(Fault::Reset);
    let err = openai_req(&c, &s, &openai_body("hi"))
        .send()
        .await
        .expect_err("a reset must not produce a response");
    assert!(!err.is_timeout());
    assert!(err.status().is_none());
    assert!(err.is_request() || err.is_connect(), "{err:?}");

    // The same client recovers on a new connection.
    assert_eq!(openai(&c, &s, &openai_body("hi")).await.status, 200);
    let reqs = s.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[1].fault.as_deref(), Some("reset"));
    assert_eq!(reqs[1].status, 0);
}

#[tokio::test]
async fn malformed_json_fails_to_parse() {
    let s = MockServer::start().await.unwrap();
    let c = client();
    s.push_faults([Fault::MalformedJson, Fault::MalformedJson]);

    let r = openai_req(&c, &s, &openai_body("hi")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.json::<Value>().await.is_err());

    let r = anthropic(&c, &s, &anthropic_body("hi")).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    assert!(!r.text.is_empty());
    assert!(
        serde_json::from_str::<Value>(&r.text).is_err(),
        "{}",
        r.text
    );

    assert_eq!(s.successful_count(), 0);
    assert_eq!(openai(&c, &s, &openai_body("hi")).await.status, 200);
    assert_eq!(s.successful_count(), 1);
}

#[tokio::test]
async fn hang_times_out_on_the_client() {
    let s = MockServer::start().await.unwrap();
    let c = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    s.push_fault(Fault::Hang);
    let t0 = Instant::now();
    let err = anthropic_req(&c, &s, &anthropic_body("hi"))
        .send()
        .await
        .expect_err("a hang must not answer");
    assert!(err.is_timeout(), "{err:?}");
    assert!(t0.elapsed() >= Duration::from_millis(300));

    assert_eq!(anthropic(&c, &s, &anthropic_body("hi")).await.status, 200);
    let reqs = s.requests();
    assert_eq!(reqs[0].fault.as_deref(), Some("hang"));
    assert_eq!(reqs[0].status, 0);
}

#[tokio::test]
async fn faults_are_consumed_in_fifo_order_across_apis() {
    let s = MockServer::start().await.unwrap();
    let c = client();
    s.push_faults([
        Fault::Status(502),
        Fault::RateLimit {
            retry_after: Some(Duration::from_millis(10)),
        },
        Fault::Overloaded,
        Fault::MalformedJson,
    ]);
    s.push_fault(Fault::Status(500));
    assert_eq!(s.pending_faults(), 5);

    let mut statuses = Vec::new();
    for i in 0..7 {
        let r = if i % 2 == 0 {
            anthropic(&c, &s, &anthropic_body("q")).await
        } else {
            openai(&c, &s, &openai_body("q")).await
        };
        statuses.push(r.status);
    }
    // anthropic 502, openai 429, anthropic 529, openai 200 (malformed),
    // anthropic 500, then normal service.
    assert_eq!(statuses, vec![502, 429, 529, 200, 500, 200, 200]);
    assert_eq!(s.pending_faults(), 0);
    let labels: Vec<Option<String>> = s.requests().into_iter().map(|r| r.fault).collect();
    let expect = [
        Some("status_502"),
        Some("rate_limit"),
        Some("overloaded"),
        Some("malformed_json"),
        Some("status_500"),
        None,
        None,
    ];
    assert_eq!(
        labels,
        expect
            .iter()
            .map(|l| l.map(String::from))
            .collect::<Vec<_>>()
    );
    assert_eq!(s.successful_count(), 2);
}
