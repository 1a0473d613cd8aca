//! `clio/usage` through the binary: facets, names and audits from the loopback mock
//! server, summaries embedded by the real all-MiniLM-L6-v2 (`CliLab::embed`), real
//! k-means. The planted corpus has three topics with distinct vocabularies, so the real
//! embeddings must put each topic in its own cluster; one topic comes from too few users.

use crate::common::*;
use crate::local::{models_dir_or_skip, offline_env};
use shammie_testkit::{MockReply, MockServer, ParsedRequest};

const TOPICS: [(&str, &str); 3] = [
    (
        "bake",
        "bake a loaf of sourdough bread with a crisp crust and an open crumb",
    ),
    (
        "debug",
        "debug a Python function that throws a KeyError when it reads a dictionary",
    ),
    (
        "hike",
        "plan a two-day mountain hiking trip with a tent and a camp stove",
    ),
];

fn corpus(path: &std::path::Path) {
    let mut s = String::new();
    for i in 0..30 {
        let (tag, what) = TOPICS[i % 3];
        // The debugging questions come from only two users.
        let user = if tag == "debug" {
            format!("dev-{}", i % 2)
        } else {
            format!("u{i}")
        };
        s.push_str(
            &serde_json::json!({
                "id": format!("{tag}-{i:02}"),
                "user_id": user,
                "messages": [
                    {"role": "user", "content": format!("Could you help me {what}? (request {i})")},
                    {"role": "assistant", "content": "Of course."}
                ]
            })
            .to_string(),
        );
        s.push('\n');
    }
    std::fs::write(path, s).unwrap();
}

/// Answers by the question asked (the mock server's chat model has no prefill, so each
/// answer starts as the prompt asks).
fn respond(r: &ParsedRequest) -> MockReply {
    assert_eq!(r.prefill, None);
    let u = r.last_user_text();
    let topic = TOPICS.iter().position(|(_, what)| u.contains(what));
    if u.contains("In one or two sentences, what is the user asking") {
        MockReply::new(format!(
            "The user asks the assistant to {}.",
            TOPICS[topic.unwrap()].1
        ))
    } else if u.contains("what kind of task") {
        MockReply::new("The task is giving practical help.")
    } else if u.contains("main human language") {
        MockReply::new("English")
    } else if u.contains("How concerning is the user's request") {
        MockReply::new("1")
    } else if u.contains("Write a short name for the group") {
        let group = u.split("For contrast").next().unwrap();
        let n: Vec<usize> = TOPICS
            .iter()
            .map(|(_, what)| group.matches(what).count())
            .collect();
        let t = (0..3).max_by_key(|&t| n[t]).unwrap();
        MockReply::new(format!(
            "Name: Help {}\nDescription: Requests to {}. All alike.",
            TOPICS[t].0, TOPICS[t].1
        ))
    } else if u.contains("Rate how much it could identify") {
        MockReply::new("Rating (1-5): 5")
    } else {
        panic!("unexpected request: {u}")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_embeddings_cluster_the_planted_topics_behind_the_privacy_rule() {
    let Some(models) = models_dir_or_skip() else {
        return;
    };
    let server = MockServer::builder()
        .responder(shammie_testkit::responder(respond))
        .start()
        .await
        .unwrap();
    let spec = format!("openai-compatible:{}/mock-model", server.openai_base_url());
    let s = Scratch::new();
    let data = s.dir.path().join("conversations.jsonl");
    corpus(&data);
    let o = s
        .run(
            &[
                "run",
                "clio/usage",
                "--model",
                &spec,
                "--set",
                &format!("data={}", data.display()),
                "--set",
                "k=3",
                "--set",
                "min_users=3",
                "--set",
                "min_conversations=5",
            ],
            &offline_env(&models),
        )
        .await;
    if o.status.code() != Some(0) {
        // Say why: the first failed facet sample's error.
        let first_error = std::fs::read_dir(s.runs())
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| {
                std::fs::read_to_string(e.unwrap().path().join("stages/facets/samples.jsonl")).ok()
            })
            .and_then(|t| t.lines().next().map(String::from))
            .unwrap_or_default();
        panic!("{}\n{first_error}", stderr(&o));
    }
    let dir = run_dir(&o);
    let res = results(&dir);
    let rows = table(&res, "clusters")["rows"].as_array().unwrap();
    let mut names: Vec<&str> = rows.iter().map(|r| r[0].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["Help bake", "Help hike"], "{rows:?}");
    for r in rows {
        assert_eq!(r[3], 10, "{r}");
    }
    // Every conversation is in its topic's cluster; debugging (two users) is suppressed.
    let a = std::fs::read_to_string(dir.join("data/assignments.jsonl")).unwrap();
    assert_eq!(a.lines().count(), 30);
    for l in a.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let id = v["id"].as_str().unwrap();
        let want = match &id[..id.find('-').unwrap()] {
            "debug" => "suppressed".to_string(),
            tag => format!("Help {tag}"),
        };
        assert_eq!(v["cluster"], want.as_str(), "{v}");
    }
    // The figures, kept to be looked at (`target/tmp/clio-*.svg`).
    for f in ["map", "clusters"] {
        let svg = std::fs::read(dir.join(format!("report/{f}.svg"))).unwrap();
        let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("clio-{f}.svg"));
        std::fs::write(out, svg).unwrap();
    }
    // The embeddings are MiniLM's: 384 values per summary.
    let vectors = std::fs::metadata(dir.join("artifacts/embed/vectors.f32")).unwrap();
    assert_eq!(vectors.len(), 30 * 384 * 4);
}
