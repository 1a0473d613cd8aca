//! `shammie view` as a user starts it: a real run on the mock server, then the viewer on
//! a free port, its address read from what it prints, and its API asked over plain HTTP.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

use crate::common::*;
use shammie_testkit::MockServer;

/// A GET over a fresh connection: (status, body).
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewer_serves_a_real_run() {
    let server = MockServer::start().await.unwrap();
    let s = Scratch::new();
    let spec = format!("openai-compatible:{}/mock-model", server.openai_base_url());
    let o = s
        .run(
            &[
                "run",
                "constitution/traits",
                "--model",
                &spec,
                "--limit",
                "3",
            ],
            &[],
        )
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let dir = run_dir(&o);
    let run = dir.file_name().unwrap().to_string_lossy().to_string();

    let mut child = Command::new(BIN)
        .args(["view", s.runs().to_str().unwrap(), "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kept open for the viewer's life.
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let addr = first
        .trim()
        .strip_prefix("Shammie viewer: http://")
        .and_then(|a| a.strip_suffix('/'))
        .unwrap_or_else(|| panic!("{first}"))
        .to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");

    let (status, body) = get(&addr, "/api/runs");
    assert_eq!(status, 200, "{body}");
    let runs: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(runs[0]["id"], run.as_str());
    assert_eq!(runs[0]["study"], "constitution");
    let recs = records(&dir);
    assert_eq!(runs[0]["samples"], recs.len());
    let id = recs[0]["id"].as_str().unwrap();
    let (status, body) = get(&addr, &format!("/api/runs/{run}/sample?id={id}&epoch=1"));
    assert_eq!(status, 200);
    let rec: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(rec, recs[0]);
    let (status, page) = get(&addr, "/");
    assert_eq!(status, 200);
    assert!(page.contains("<script src=\"/app.js\""));
    child.kill().unwrap();
    child.wait().unwrap();
}
