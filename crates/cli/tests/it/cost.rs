//! What calls cost, through `shammie run` on the mock server speaking OpenAI's format as
//! `openai:gpt-4o-mini`: each call's cost in the transcript equals its usage times the
//! built-in price (worked out here), the run's totals add them up, a repeat served from
//! the cache costs the same at list price but nothing paid, and `--prices` overrides.

use shammie_testkit::MockServer;

use crate::common::*;

fn calls(dir: &std::path::Path) -> Vec<serde_json::Value> {
    records(dir)
        .iter()
        .flat_map(|r| {
            r["transcript"]["events"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["type"] == "call")
                .cloned()
                .collect::<Vec<_>>()
        })
        .collect()
}

fn expected(call: &serde_json::Value, input: f64, output: f64) -> f64 {
    let u = &call["response"]["usage"];
    (u["input_tokens"].as_f64().unwrap() * input + u["output_tokens"].as_f64().unwrap() * output)
        / 1e6
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn costs_per_call_and_per_run() {
    let server = MockServer::start().await.unwrap();
    let s = Scratch::new();
    let base = server.openai_base_url();
    let env = [
        ("OPENAI_API_KEY", TEST_KEY),
        ("OPENAI_BASE_URL", base.as_str()),
    ];
    let args = [
        "run",
        "constitution/traits",
        "--model",
        "openai:gpt-4o-mini",
        "--limit",
        "3",
        "--set",
        "path=sampling",
        "--set",
        "samples=2",
    ];
    let o = s.run(&args, &env).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let dir = run_dir(&o);
    let cs = calls(&dir);
    assert!(!cs.is_empty());
    let mut total = 0.0;
    for c in &cs {
        let want = expected(c, 0.15, 0.6);
        let got = c["response"]["meta"]["cost_usd"].as_f64().unwrap();
        assert!((got - want).abs() < 1e-15, "{got} vs {want}");
        assert!(want > 0.0);
        total += want;
    }
    let t = &results(&dir)["totals"];
    assert!((t["cost_usd"].as_f64().unwrap() - total).abs() < 1e-12);
    assert!((t["paid_cost_usd"].as_f64().unwrap() - total).abs() < 1e-12);
    assert_eq!(t["unpriced_calls"], 0);
    assert!(stdout(&o).contains("cost $"), "{}", stdout(&o));

    // The same run again: every call from the cache, nothing paid.
    let o = s.run(&args, &env).await;
    let t = &results(&run_dir(&o))["totals"];
    assert!((t["cost_usd"].as_f64().unwrap() - total).abs() < 1e-12);
    assert_eq!(t["paid_cost_usd"], 0.0);

    // Prices from a file.
    let prices = s.dir.path().join("prices.toml");
    std::fs::write(
        &prices,
        "[[price]]\nprovider = \"openai\"\nmodel = \"gpt-4o-mini\"\ninput = 1.0\noutput = 2.0\n",
    )
    .unwrap();
    let mut with = args.to_vec();
    with.extend(["--prices", prices.to_str().unwrap()]);
    let o = s.run(&with, &env).await;
    let dir = run_dir(&o);
    let want: f64 = calls(&dir).iter().map(|c| expected(c, 1.0, 2.0)).sum();
    let t = &results(&dir)["totals"];
    assert!((t["cost_usd"].as_f64().unwrap() - want).abs() < 1e-12);

    // A model without a price: its calls are counted as unpriced, never as free.
    let spec = format!("openai-compatible:{base}/mock-model");
    let o = s
        .run(
            &[
                "run",
                "constitution/traits",
                "--model",
                &spec,
                "--limit",
                "1",
            ],
            &[],
        )
        .await;
    let t = &results(&run_dir(&o))["totals"];
    assert_eq!(t["cost_usd"], 0.0);
    assert!(t["unpriced_calls"].as_u64().unwrap() > 0);
}
