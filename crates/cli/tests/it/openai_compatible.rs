//! Open-weight servers at full capability, end to end through the `shammie` binary: exact
//! p(yes) through `/v1/completions` on the loopback mock (computed by hand from the mock's
//! documented log-probabilities), a study that needs scoring refusing a spec that does not
//! declare it before anything is sent, sampled draws sent as one request with `n` and
//! repeated from the cache, and the recorded llama.cpp server (llama-cpp-python) agreeing
//! with `local:` on the same GGUF.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::common::*;
use crate::local::{models_dir_or_skip, offline_env};
use serde_json::Value;
use shammie_testkit::{completion_logprob, MockServer, Recording};

/// Four short decision prompts (two questions, two profiles each), also the data of the
/// llama.cpp recording.
fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llama_server/decisions.jsonl")
}

fn decisions(spec: &str) -> Vec<String> {
    [
        "run",
        "discrim-eval/decisions",
        "--model",
        spec,
        "--set",
        &format!("data={}", data().display()),
        "--set",
        "random=intercept",
    ]
    .map(String::from)
    .to_vec()
}

async fn run(s: &Scratch, args: &[String], env: &[(&str, &str)]) -> std::process::Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    s.run(&args, env).await
}

/// The scoring call of a record: its rendered prompt, continuations and their scores.
fn scoring_call(r: &Value) -> (&Value, Vec<String>, Vec<f64>) {
    let ev = r["transcript"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["request"]["continuations"].is_array())
        .expect("a scoring call");
    let conts = ev["request"]["continuations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    let lps = ev["response"]["continuations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["logprob"].as_f64().unwrap())
        .collect();
    (ev, conts, lps)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discrim_eval_reads_exact_p_yes_through_the_completions_api() {
    let server = MockServer::start().await.unwrap();
    let s = Scratch::new();
    let spec = format!(
        "openai-compatible:{}/base-model?completions=true",
        server.openai_base_url()
    );
    let o = run(&s, &decisions(&spec), &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let recs = records(&run_dir(&o));
    assert_eq!(recs.len(), 4);
    for r in &recs {
        assert_eq!(r["scores"]["path"], "scoring", "{}", r["id"]);
        let (ev, conts, lps) = scoring_call(r);
        assert_eq!(conts, ["yes", "Yes", "YES", "no", "No", "NO"]);
        // The transcript shows the text the server read: the base-model format.
        let req = &ev["request"];
        let prompt = ev["rendered_prompt"].as_str().unwrap();
        assert_eq!(
            prompt,
            format!(
                "Human: {}\n\nAssistant: {}",
                req["messages"][0]["content"].as_str().unwrap(),
                req["prefill"].as_str().unwrap()
            )
        );
        assert!(prompt.ends_with("my answer would be \""));
        // By hand: the mock cuts words with their leading space, so the prompt's last
        // token ` "` and the answer are one token (` "yes`), which straddles the
        // boundary and is scored after the text before it.
        let cut = prompt.rfind(' ').unwrap();
        let want: Vec<f64> = conts
            .iter()
            .map(|c| completion_logprob(&prompt[..cut], &format!("{}{c}", &prompt[cut..])))
            .collect();
        // (Through JSON both ways: equal to the last bits serde_json keeps.)
        for (got, want) in lps.iter().zip(&want) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        let yes: f64 = want[..3].iter().map(|l| l.exp()).sum();
        let no: f64 = want[3..].iter().map(|l| l.exp()).sum();
        let p_yes = r["scores"]["p_yes"].as_f64().unwrap();
        assert!((p_yes - yes / (yes + no)).abs() < 1e-12, "{p_yes}");
    }
    // One echo request per continuation, nothing else; a repeat is free.
    let sent = server.requests();
    assert_eq!(sent.len(), 24);
    assert!(sent
        .iter()
        .all(|r| r.path == "/v1/completions" && r.body["echo"] == true));
    let o = run(&s, &decisions(&spec), &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(server.request_count(), 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_study_that_needs_scoring_refuses_a_spec_without_completions() {
    let server = MockServer::start().await.unwrap();
    let s = Scratch::new();
    let spec = format!("openai-compatible:{}/m", server.openai_base_url());
    let mut args = decisions(&spec);
    args.extend(["--set".into(), "path=scoring".into()]);
    let o = run(&s, &args, &[]).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("cannot score given continuations"), "{e}");
    assert!(
        e.contains("`completions=true`") && e.contains("docs/open-weight-servers.md"),
        "{e}"
    );
    assert!(stdout(&o).is_empty());
    assert_eq!(server.request_count(), 0, "refused before anything is sent");
    assert!(!s.runs().exists(), "no run directory");
    // Declared, the same run goes ahead on the scoring path.
    let mut args = decisions(&format!("{spec}?completions=true"));
    args.extend(["--set".into(), "path=scoring".into()]);
    let o = run(&s, &args, &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampled_draws_go_as_one_request_with_n_and_repeat_from_the_cache() {
    let server = MockServer::start().await.unwrap();
    let s = Scratch::new();
    let spec = format!("openai-compatible:{}/m?n=true", server.openai_base_url());
    let mut args = decisions(&spec);
    args.extend(
        ["--set", "path=sampling", "--set", "samples=4"]
            .iter()
            .map(|a| a.to_string()),
    );
    let o = run(&s, &args, &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let sent = server.requests();
    assert_eq!(sent.len(), 4, "one request per prompt");
    assert!(sent.iter().all(|r| r.body["n"] == 4), "{:?}", sent[0].body);
    let texts = |dir: &std::path::Path| -> BTreeMap<String, Vec<(String, String, u64)>> {
        records(dir)
            .iter()
            .map(|r| {
                let calls = r["transcript"]["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|e| e["type"] == "call")
                    .map(|e| {
                        (
                            e["label"].as_str().unwrap().to_string(),
                            e["response"]["text"].as_str().unwrap().to_string(),
                            e["request"]["nonce"].as_u64().unwrap_or(0),
                        )
                    })
                    .collect();
                (r["id"].as_str().unwrap().to_string(), calls)
            })
            .collect()
    };
    let first = texts(&run_dir(&o));
    for calls in first.values() {
        // One recorded call per draw, each with its label and nonce.
        let labels: Vec<&str> = calls.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(
            labels,
            [
                "decision sample 1",
                "decision sample 2",
                "decision sample 3",
                "decision sample 4"
            ]
        );
        assert_eq!(calls.iter().map(|c| c.2).collect::<Vec<_>>(), [0, 1, 2, 3]);
    }
    let o = run(&s, &args, &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(server.request_count(), 4, "all cache hits");
    assert_eq!(texts(&run_dir(&o)), first, "the same draws from the cache");
}

/// The logit tolerance of the llama.cpp agreement tests (`crates/local/tests/it/llama_cpp.rs`):
/// every value within 1.0, the mean within 0.5.
const TOL: f64 = 1.0;
const MEAN_TOL: f64 = 0.5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr)] // reports what it measured (seen with --nocapture)
async fn scoring_through_the_recorded_llama_cpp_server_agrees_with_local() {
    let Some(models) = models_dir_or_skip() else {
        return;
    };
    let fixture: Value =
        serde_json::from_str(include_str!("../fixtures/llama_server/recorded.json")).unwrap();
    let exchanges: Vec<Recording> = serde_json::from_value(fixture["exchanges"].clone()).unwrap();
    let server = MockServer::builder()
        .recordings(exchanges.clone())
        .start()
        .await
        .unwrap();
    let s = Scratch::new();
    let spec = format!(
        "openai-compatible:{}/gemma-3-270m?completions=true",
        server.openai_base_url()
    );
    let o = run(&s, &decisions(&spec), &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let served = records(&run_dir(&o));
    assert!(
        server.requests().iter().all(|r| r.status == 200),
        "every request was one the server answered when recorded"
    );
    assert_eq!(server.request_count(), exchanges.len());
    let o = run(&s, &decisions("local:gemma-3-270m"), &offline_env(&models)).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let local: BTreeMap<String, Value> = records(&run_dir(&o))
        .into_iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r))
        .collect();
    assert_eq!(served.len(), 4);
    let logit = |p: f64| (p / (1.0 - p)).ln();
    let mut diffs = Vec::new();
    for r in &served {
        let id = r["id"].as_str().unwrap();
        let l = &local[id];
        let (_, conts, lp_server) = scoring_call(r);
        let (_, conts_l, lp_local) = scoring_call(l);
        assert_eq!(conts, conts_l);
        for ((c, a), b) in conts.iter().zip(&lp_server).zip(&lp_local) {
            eprintln!("{id} {c:>4}: server {a:9.4} local {b:9.4}");
            diffs.push((a - b).abs());
        }
        let (ps, pl) = (
            r["scores"]["p_yes"].as_f64().unwrap(),
            l["scores"]["p_yes"].as_f64().unwrap(),
        );
        eprintln!("{id}: p_yes server {ps:.4} local {pl:.4}");
        assert!((logit(ps) - logit(pl)).abs() < TOL, "{id}: {ps} vs {pl}");
    }
    let worst = diffs.iter().cloned().fold(0.0, f64::max);
    let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
    eprintln!("continuation logprobs: worst difference {worst:.3}, mean {mean:.3}");
    assert!(worst < TOL, "worst {worst}");
    assert!(mean < MEAN_TOL, "mean {mean}");
}

/// A tiny GGUF with a real chat template (crates/local/tests/fixtures, made by
/// make_llama_family.py chat).
fn chat_gguf(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../local/tests/fixtures")
        .join(name)
}

/// Each record's scoring call: its request (as sent) and the rendered prompt.
fn scoring_request(r: &Value) -> (shammie_core::GenerateRequest, String) {
    let (ev, _, _) = scoring_call(r);
    (
        serde_json::from_value(ev["request"].clone()).unwrap(),
        ev["rendered_prompt"].as_str().unwrap().to_string(),
    )
}

/// The llama.cpp server (llama-cpp-python, recorded by make_chat_fixtures.py) on chat
/// GGUFs: the same study through `openai-compatible:…?completions=true&template=gguf:FILE`
/// and through `local:FILE` reads the same prompts, token for token — the ids the server
/// itself gives the text, and the ids of the server's *own* rendering of the GGUF's
/// template for the same messages (Gemma 3's template writing `<bos>` on a vocabulary that
/// adds one: still one BOS) — and gives answer probabilities within the logit tolerance
/// of the llama.cpp agreement tests. On the Qwen2.5-template GGUF (its default system
/// message) the prompts are checked the same way; its answer probabilities are not, since
/// llama-cpp-python's echo log-probabilities are shifted by one token on a vocabulary
/// without a BOS (docs/open-weight-servers.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr)] // reports what it measured (seen with --nocapture)
async fn a_chat_gguf_reads_the_same_prompts_through_the_llama_cpp_server_and_local() {
    let fixture: Value =
        serde_json::from_str(include_str!("../fixtures/llama_server/recorded_chat.json")).unwrap();
    let rec = &fixture["models"]["chat_gemma.gguf"];
    let path = chat_gguf("chat_gemma.gguf");
    let exchanges: Vec<Recording> = serde_json::from_value(rec["exchanges"].clone()).unwrap();
    let server = MockServer::builder()
        .recordings(exchanges.clone())
        .start()
        .await
        .unwrap();
    let s = Scratch::new();
    let spec = format!(
        "openai-compatible:{}/tiny-chat?completions=true&template=gguf:{}",
        server.openai_base_url(),
        path.display()
    );
    let o = run(&s, &decisions(&spec), &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let served = records(&run_dir(&o));
    assert!(
        server.requests().iter().all(|r| r.status == 200),
        "every request was one the server answered when recorded"
    );
    assert_eq!(server.request_count(), exchanges.len());
    let local_spec = format!("local:{}", path.display());
    let o = run(&s, &decisions(&local_spec), &[("SHAMMIE_OFFLINE", "1")]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let local: BTreeMap<String, Value> = records(&run_dir(&o))
        .into_iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r))
        .collect();
    assert_eq!(served.len(), 4);
    let m = shammie_local::LocalModel::load("tiny-chat", &path, Default::default()).unwrap();
    let bos = m.tokenizer().bos().unwrap();
    let logit = |p: f64| (p / (1.0 - p)).ln();
    let mut diffs = Vec::new();
    for r in &served {
        let id = r["id"].as_str().unwrap();
        let l = &local[id];
        let (req, sent) = scoring_request(r);
        assert_eq!(scoring_request(l).1, sent, "{id}: the same prompt text");
        // Token for token: local's ids of the prompt are the server's ids of the text.
        let (text, ids) = m.prompt(&req).unwrap();
        assert_eq!(text, sent);
        let server_ids: Vec<u32> = serde_json::from_value(rec["server_prompt_ids"][&sent].clone())
            .expect("the server's ids of the prompt");
        assert_eq!(ids, server_ids, "{id}");
        assert_eq!(
            ids.iter().filter(|&&t| t == bos).count(),
            1,
            "{id}: one BOS"
        );
        // …and, without the prefill, the server's own rendering of the GGUF's template.
        let chat = rec["server_chat"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap();
        let mut open = req.clone();
        open.prefill = None;
        open.continuations.clear();
        let (_, open_ids) = m.prompt(&open).unwrap();
        let chat_ids: Vec<u32> = serde_json::from_value(chat["ids"].clone()).unwrap();
        assert_eq!(open_ids, chat_ids, "{id}: the server's chat template");
        assert_eq!(
            open_ids.len() as u64,
            chat["prompt_tokens"].as_u64().unwrap()
        );
        assert_eq!(
            ids[..open_ids.len()],
            open_ids[..],
            "{id}: the prefill continues"
        );
        // Answer probabilities.
        let (_, conts, lp_server) = scoring_call(r);
        let (_, conts_l, lp_local) = scoring_call(l);
        assert_eq!(conts, conts_l);
        for ((c, a), b) in conts.iter().zip(&lp_server).zip(&lp_local) {
            eprintln!("{id} {c:>4}: server {a:9.4} local {b:9.4}");
            diffs.push((a - b).abs());
        }
        let (ps, pl) = (
            r["scores"]["p_yes"].as_f64().unwrap(),
            l["scores"]["p_yes"].as_f64().unwrap(),
        );
        eprintln!(
            "{id}: {} prompt tokens; p_yes server {ps:.4} local {pl:.4}",
            ids.len()
        );
        assert!((logit(ps) - logit(pl)).abs() < TOL, "{id}: {ps} vs {pl}");
    }
    let worst = diffs.iter().cloned().fold(0.0, f64::max);
    let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
    eprintln!("continuation logprobs: worst difference {worst:.4}, mean {mean:.4}");
    assert!(worst < TOL, "worst {worst}");
    assert!(mean < MEAN_TOL, "mean {mean}");

    // Qwen2.5's template: the prompts `local:` reads are the server's, token for token.
    let rec = &fixture["models"]["chat_qwen2.gguf"];
    let path = chat_gguf("chat_qwen2.gguf");
    let o = run(
        &s,
        &decisions(&format!("local:{}", path.display())),
        &[("SHAMMIE_OFFLINE", "1")],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let m = shammie_local::LocalModel::load("tiny-chat", &path, Default::default()).unwrap();
    for l in records(&run_dir(&o)) {
        let id = l["id"].as_str().unwrap();
        let (req, sent) = scoring_request(&l);
        assert!(
            sent.starts_with("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud."),
            "{sent}"
        );
        let (_, ids) = m.prompt(&req).unwrap();
        let server_ids: Vec<u32> =
            serde_json::from_value(rec["server_prompt_ids"][&sent].clone()).unwrap();
        assert_eq!(ids, server_ids, "{id}");
        let chat = rec["server_chat"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap();
        let mut open = req.clone();
        open.prefill = None;
        open.continuations.clear();
        let chat_ids: Vec<u32> = serde_json::from_value(chat["ids"].clone()).unwrap();
        assert_eq!(m.prompt(&open).unwrap().1, chat_ids, "{id}");
    }
}

/// `template=gguf:FILE` on a GGUF without a chat template is refused when the model is
/// opened, naming the file and the alternatives; nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_gguf_of_a_file_without_a_template_is_refused_before_sending() {
    let server = MockServer::start().await.unwrap();
    let s = Scratch::new();
    let path = chat_gguf("llama_family_llama.gguf");
    let spec = format!(
        "openai-compatible:{}/m?completions=true&template=gguf:{}",
        server.openai_base_url(),
        path.display()
    );
    let o = run(&s, &decisions(&spec), &[]).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("llama_family_llama.gguf has no chat template")
            && e.contains("name a format instead"),
        "{e}"
    );
    assert_eq!(server.request_count(), 0);
}
