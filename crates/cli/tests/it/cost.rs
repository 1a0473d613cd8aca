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

/// The most a call can cost under `--max-cost`, worked out here from its recorded request:
/// its prompt bytes at 2 bytes per token and its reply at its full `max_tokens`.
fn most(call: &serde_json::Value, input: f64, output: f64) -> f64 {
    let r = &call["request"];
    let mut bytes = r["system"].as_str().map_or(0, str::len);
    for m in r["messages"].as_array().unwrap() {
        bytes += m["content"].as_str().unwrap().len();
    }
    bytes += r["prefill"].as_str().map_or(0, str::len);
    let tokens = bytes.div_ceil(2) as f64;
    (tokens * input + r["max_tokens"].as_f64().unwrap() * output) / 1e6
}

/// `--max-cost`: samples solved one at a time, one call each, so the stopping point can
/// be worked out from an uncapped run's transcripts: the run stops at the first call whose
/// most would take the spend past the cap, having recorded every sample before it, paid
/// no more than the cap, and exited 3; `resume` with more budget finishes the run without
/// paying again for anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_cost_stops_before_the_cap_and_resumes() {
    let server = MockServer::start().await.unwrap();
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
        "12",
        "--set",
        "path=logprobs",
        "--set",
        "order=as-written",
        "--max-samples",
        "1",
    ];
    // The uncapped run, in its own cache: each call's most and actual cost, in order.
    let full = Scratch::new();
    let o = full.run(&args, &env).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let cs = calls(&run_dir(&o));
    assert_eq!(cs.len(), 12, "one call per sample");
    let paid_full = server.request_count();
    let (mosts, actual): (Vec<f64>, Vec<f64>) = cs
        .iter()
        .map(|c| (most(c, 0.15, 0.6), expected(c, 0.15, 0.6)))
        .unzip();
    // A cap just short of letting the 6th call through after five.
    let five: f64 = actual[..5].iter().sum();
    let cap = five + mosts[5] * 0.999;
    let (mut spent, mut fit) = (0.0, 0);
    for (m, a) in mosts.iter().zip(&actual) {
        if spent + m > cap {
            break;
        }
        spent += a;
        fit += 1;
    }
    assert!((1..=5).contains(&fit), "the worked-out stop: {fit}");
    assert!(
        mosts.iter().zip(&actual).all(|(m, a)| m > a),
        "a most bounds its call"
    );

    let s = Scratch::new();
    let mut capped = args.to_vec();
    let cap_s = format!("{cap}");
    capped.extend(["--max-cost", &cap_s]);
    let o = s.run(&capped, &env).await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("--max-cost") && err.contains("shammie resume"),
        "{err}"
    );
    let dir = only_run(&s.runs());
    let recs = records(&dir);
    assert_eq!(recs.len(), fit, "the samples before the stop, none after");
    assert!(
        recs.iter().all(|r| r["error"].is_null()),
        "no sample failed"
    );
    let paid: f64 = calls(&dir)
        .iter()
        .map(|c| c["response"]["meta"]["cost_usd"].as_f64().unwrap())
        .sum();
    assert!(paid <= cap, "{paid} > {cap}");
    assert_eq!(
        server.request_count() - paid_full,
        fit,
        "the refused call was not sent"
    );

    // Resume with room for the rest: finishes, paying only for the calls not yet made.
    let dir_s = dir.to_str().unwrap().to_string();
    let cache = s.cache();
    let o = s
        .cmd(&[
            "resume",
            &dir_s,
            "--cache",
            cache.to_str().unwrap(),
            "--quiet",
            "--max-cost",
            "1",
        ])
        .envs(env)
        .output()
        .await
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(records(&dir).len(), 12);
    assert_eq!(
        server.request_count() - paid_full,
        12,
        "each call paid once across the stop"
    );
}

/// A call's estimated prompt tokens, worked out here: ~4 bytes per token, plus 4 per
/// message (the system prompt counts as one).
fn estimated_input(call: &serde_json::Value) -> u64 {
    let r = &call["request"];
    let msgs = r["messages"].as_array().unwrap();
    let mut bytes = r["system"].as_str().map_or(0, str::len);
    for m in msgs {
        bytes += m["content"].as_str().unwrap().len();
    }
    bytes += r["prefill"].as_str().map_or(0, str::len);
    (bytes as u64).div_ceil(4) + 4 * (msgs.len() as u64 + u64::from(r["system"].is_string()))
}

/// `--dry-run` sends nothing, writes nothing, needs no key, and counts the calls the
/// protocol makes, their estimated prompt tokens and the most they can cost (worked out
/// here from a real run's requests); after the real run the same calls are all cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_counts_calls_and_cost_without_sending() {
    let server = MockServer::start().await.unwrap();
    let base = server.openai_base_url();
    let s = Scratch::new();
    let args = [
        "run",
        "constitution/traits",
        "--model",
        "openai:gpt-4o-mini",
        "--limit",
        "7",
        "--set",
        "path=logprobs",
        "--json",
    ];
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    // No key at all: a dry run never sends.
    let o = s.run(&dry, &[("OPENAI_BASE_URL", base.as_str())]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(server.request_count(), 0, "nothing sent");
    assert!(!s.runs().exists(), "nothing written");
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    // Through the batch API: the same calls at the batch price (half, for this model).
    let mut batched = dry.clone();
    batched.push("--batch");
    let o = s.run(&batched, &[("OPENAI_BASE_URL", base.as_str())]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let b: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(b["calls"], v["calls"]);
    let (full, half) = (
        v["cost_usd_at_most"].as_f64().unwrap(),
        b["cost_usd_at_most"].as_f64().unwrap(),
    );
    assert!((half - full / 2.0).abs() < 1e-12, "{half} vs {full}");
    assert_eq!(server.request_count(), 0, "nothing sent");

    // The real run, whose requests are the ones the dry run counted.
    let env = [
        ("OPENAI_API_KEY", TEST_KEY),
        ("OPENAI_BASE_URL", base.as_str()),
    ];
    let o = s.run(&args[..args.len() - 1], &env).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let dir = run_dir(&o);
    let cs = calls(&dir);
    let t = &v["estimate"]["roles"]["target"];
    assert_eq!(v["calls"], cs.len() as u64);
    assert_eq!(v["estimate"]["samples"], records(&dir).len() as u64);
    assert_eq!(t["model"], "openai:gpt-4o-mini");
    assert_eq!(t["cached"], 0);
    let input: u64 = cs.iter().map(estimated_input).sum();
    let out: u64 = cs
        .iter()
        .map(|c| c["request"]["max_tokens"].as_u64().unwrap())
        .sum();
    assert_eq!(t["input_tokens"], input);
    assert_eq!(t["max_output_tokens"], out);
    let most = (input as f64 * 0.15 + out as f64 * 0.6) / 1e6;
    let got = v["cost_usd_at_most"].as_f64().unwrap();
    assert!((got - most).abs() < 1e-12, "{got} vs {most}");
    let prompts = v["prompt_cost_usd"].as_f64().unwrap();
    assert!((prompts - input as f64 * 0.15 / 1e6).abs() < 1e-12);

    // Again after the real run: everything is in the cache, so nothing to pay.
    let n = server.request_count();
    let o = s.run(&dry, &[("OPENAI_BASE_URL", base.as_str())]).await;
    assert_eq!(server.request_count(), n);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["cached_calls"], cs.len() as u64);
    assert_eq!(v["cost_usd_at_most"], 0.0);

    // The table a person reads.
    let o = s
        .run(
            &dry[..dry.len() - 2]
                .iter()
                .copied()
                .chain(["--dry-run"])
                .collect::<Vec<_>>(),
            &[],
        )
        .await;
    let text = stdout(&o);
    assert!(
        text.contains("nothing sent") && text.contains("cost (most)"),
        "{text}"
    );
}
