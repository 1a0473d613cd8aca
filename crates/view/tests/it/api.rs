//! The JSON API on a real socket: listings, filters and search computed here from the
//! fixture's rules, one record read back byte for byte, files kept inside the run, and
//! requests for another host refused.

use std::net::SocketAddr;

use crate::fixture::{self, RUN, SAMPLES};

/// Serves the fixture on a free loopback port.
pub(crate) async fn serve(root: &std::path::Path) -> SocketAddr {
    let viewer = shammie_view::Viewer::bind(vec![fixture::runs(root)], 0)
        .await
        .unwrap();
    let addr = viewer.addr();
    tokio::spawn(viewer.serve());
    addr
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let r = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let (status, body) = get(addr, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn ids(page: &serde_json::Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

fn expected(pred: impl Fn(usize) -> bool) -> Vec<String> {
    (0..SAMPLES)
        .filter(|&i| pred(i))
        .map(|i| format!("q{i:02}/cot"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_filters_search_and_one_record() {
    let d = tempfile::tempdir().unwrap();
    let addr = serve(d.path()).await;

    let runs = json(addr, "/api/runs").await;
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2);
    let demo = runs.iter().find(|r| r["id"] == RUN).unwrap();
    assert_eq!(demo["samples"], SAMPLES);
    assert_eq!(
        demo["failed"],
        (0..SAMPLES).filter(|&i| fixture::failed(i)).count()
    );
    assert_eq!(demo["input_tokens"], 10 * SAMPLES);
    assert_eq!(demo["status"], "complete");
    assert_eq!(demo["cost_usd"], 0.25);
    assert_eq!(demo["paid_cost_usd"], 0.1);
    let staged = runs.iter().find(|r| r["id"] == fixture::STAGED).unwrap();
    assert_eq!(staged["stages"], serde_json::json!(["measure"]));
    assert_eq!(staged["status"], "incomplete");

    let run = json(addr, &format!("/api/runs/{RUN}")).await;
    assert_eq!(run["results"]["tables"][0]["name"], "accuracy");
    assert_eq!(run["meta"]["seed"], 7);

    let base = format!("/api/runs/{RUN}/samples");
    let all = json(addr, &format!("{base}?limit=500")).await;
    assert_eq!(all["total"], SAMPLES);
    assert_eq!(ids(&all), expected(|_| true));
    let page = json(addr, &format!("{base}?offset=10&limit=5")).await;
    assert_eq!(ids(&page), expected(|i| (10..15).contains(&i)));
    assert_eq!(page["matching"], SAMPLES);
    let failed = json(addr, &format!("{base}?error=only")).await;
    assert_eq!(ids(&failed), expected(fixture::failed));
    let ok = json(addr, &format!("{base}?error=none&dataset=even-set")).await;
    assert_eq!(ids(&ok), expected(|i| !fixture::failed(i) && i % 2 == 0));
    let right = json(addr, &format!("{base}?score=correct")).await;
    assert_eq!(
        ids(&right),
        expected(|i| !fixture::failed(i) && fixture::correct(i))
    );
    let high = json(addr, &format!("{base}?score=p%3E%3D0.2")).await;
    assert_eq!(ids(&high), expected(|i| !fixture::failed(i) && i >= 20));
    assert_eq!(all["datasets"], serde_json::json!(["even-set", "odd-set"]));
    // Full text, case-insensitive, over the whole record.
    let hits = json(addr, &format!("{base}?q=QUESTION%20NUMBER%2017")).await;
    assert_eq!(ids(&hits), expected(|i| i == 17));
    let script = json(addr, &format!("{base}?q=__pwned")).await;
    assert_eq!(ids(&script), expected(|i| i == 5));

    // One record, byte for byte as the log holds it.
    let (status, body) = get(
        addr,
        &format!("/api/runs/{RUN}/sample?id=q05%2Fcot&epoch=1"),
    )
    .await;
    assert_eq!(status, 200);
    let want = serde_json::to_string(&fixture::record(5)).unwrap();
    assert_eq!(body, want);
    let (status, _) = get(addr, &format!("/api/runs/{RUN}/sample?id=nope")).await;
    assert_eq!(status, 404);
    let staged = json(
        addr,
        &format!("/api/runs/{}/samples?stage=measure", fixture::STAGED),
    )
    .await;
    assert_eq!(ids(&staged), ["q00/cot"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_security_and_live_updates() {
    let d = tempfile::tempdir().unwrap();
    let addr = serve(d.path()).await;
    let r = reqwest::get(format!(
        "http://{addr}/api/runs/{RUN}/file/report/accuracy.svg"
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    assert!(r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .starts_with("sandbox"));
    for bad in ["..%2F..%2Fetc%2Fpasswd", "../run.json", "%2Fetc%2Fpasswd"] {
        let (status, _) = get(addr, &format!("/api/runs/{RUN}/file/{bad}")).await;
        assert_ne!(status, 200, "{bad}");
    }
    // The page itself: its own script only.
    let r = reqwest::get(format!("http://{addr}/")).await.unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    // Another host name (DNS rebinding) is refused.
    let client = reqwest::Client::new();
    let r = client
        .get(format!("http://{addr}/api/runs"))
        .header("Host", "attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A run being written: new lines show up on the next request.
    let path = d.path().join(RUN).join("samples.jsonl");
    let mut text = std::fs::read_to_string(&path).unwrap();
    let mut extra = fixture::record(0);
    extra.id = "late/one".into();
    text.push_str(&serde_json::to_string(&extra).unwrap());
    text.push('\n');
    std::fs::write(&path, text).unwrap();
    let page = json(addr, &format!("/api/runs/{RUN}/samples?q=late%2Fone")).await;
    assert_eq!(ids(&page), ["late/one"]);
    assert_eq!(page["total"], SAMPLES + 1);
}

/// A stage marked private (Clio's conversations) is listed, but its records are never
/// listed, searched, shown or served as files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_stages_are_listed_but_never_shown() {
    let d = tempfile::tempdir().unwrap();
    let addr = serve(d.path()).await;
    let stage = d.path().join(fixture::STAGED).join("stages/measure");
    std::fs::write(stage.join("private.txt"), "the conversations, verbatim").unwrap();
    let runs = json(addr, "/api/runs").await;
    let staged = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == fixture::STAGED)
        .unwrap()
        .clone();
    assert_eq!(
        staged["private"],
        serde_json::json!({"measure": "the conversations, verbatim"})
    );
    let base = format!("/api/runs/{}", fixture::STAGED);
    let page = json(addr, &format!("{base}/samples?stage=measure&q=question")).await;
    assert_eq!(page["items"], serde_json::json!([]));
    assert_eq!(page["private"], "the conversations, verbatim");
    let (status, body) = get(addr, &format!("{base}/sample?stage=measure&id=q00/cot")).await;
    assert_eq!(status, 403, "{body}");
    for f in ["stages/measure/samples.jsonl", "stages/measure/private.txt"] {
        let (status, _) = get(addr, &format!("{base}/file/{f}")).await;
        assert_eq!(status, 403, "{f}");
    }
}
