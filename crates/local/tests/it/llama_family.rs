//! Our Llama / Qwen2 code against llama.cpp on tiny random F32 models (fixtures and the
//! logits llama.cpp gave on them from `tests/fixtures/make_llama_family.py`): next-token
//! logits over the whole vocabulary within 1e-2, the same 8 greedy tokens. Also: a ragged
//! batch and a prefill split in two give the numbers of one sequence run alone.

use std::io::Cursor;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use shammie_local::llama::{KvCache, Llama, RopeStyle};

const TOL: f32 = 1e-2;

#[derive(serde::Deserialize)]
struct Case {
    ids: Vec<u32>,
    logits: Vec<f32>,
    greedy: Vec<u32>,
}

#[derive(serde::Deserialize)]
struct Model {
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Fixture {
    models: std::collections::BTreeMap<String, Model>,
}

fn fixture() -> Fixture {
    serde_json::from_str(include_str!("../fixtures/llama_family.json")).unwrap()
}

fn load(bytes: &[u8]) -> Llama {
    let mut r = Cursor::new(bytes);
    let content = gguf_file::Content::read(&mut r).unwrap();
    Llama::load(&content, &mut r, &Device::Cpu).unwrap()
}

fn model(name: &str) -> Llama {
    match name {
        "llama" => load(include_bytes!("../fixtures/llama_family_llama.gguf")),
        "qwen2" => load(include_bytes!("../fixtures/llama_family_qwen2.gguf")),
        other => panic!("no fixture model {other}"),
    }
}

fn last_logits(m: &Llama, h: &Tensor) -> Vec<f32> {
    let n = h.dim(0).unwrap();
    m.logits(&h.narrow(0, n - 1, 1).unwrap())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn argmax(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best as u32
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[allow(clippy::print_stderr)] // reports what it measured (seen with --nocapture)
fn check_model(name: &str) {
    let fx = fixture();
    let m = model(name);
    assert_eq!(m.cfg.arch, name);
    assert_eq!(
        m.cfg.rope_style,
        if name == "llama" {
            RopeStyle::Pairs
        } else {
            RopeStyle::NeoX
        }
    );
    let mut worst = 0f32;
    for (ci, case) in fx.models[name].cases.iter().enumerate() {
        let mut cache = KvCache::new(m.cfg.layers);
        let h = m
            .forward_hidden(&mut [(&case.ids[..], &mut cache)])
            .unwrap()
            .remove(0);
        let ours = last_logits(&m, &h);
        let d = max_diff(&ours, &case.logits);
        worst = worst.max(d);
        eprintln!("{name} case {ci}: max |logit diff| = {d:.2e}");
        assert!(d < TOL, "{name} case {ci}: max |logit diff| {d} >= {TOL}");
        let mut greedy = vec![argmax(&ours)];
        while greedy.len() < case.greedy.len() {
            let tok = [*greedy.last().unwrap()];
            let h = m
                .forward_hidden(&mut [(&tok[..], &mut cache)])
                .unwrap()
                .remove(0);
            greedy.push(argmax(&last_logits(&m, &h)));
        }
        assert_eq!(greedy, case.greedy, "{name} case {ci}: greedy continuation");
    }
    eprintln!("{name}: worst max |logit diff| over cases = {worst:.2e}");
}

#[test]
fn llama_matches_llama_cpp() {
    check_model("llama");
}

#[test]
fn qwen2_matches_llama_cpp() {
    check_model("qwen2");
}

/// All cases in one ragged batch, and each case's prefill split in two, give the logits
/// of the case run alone.
#[test]
fn ragged_batch_and_split_prefill_agree() {
    let fx = fixture();
    for name in ["llama", "qwen2"] {
        let m = model(name);
        let cases = &fx.models[name].cases;
        let alone: Vec<Vec<f32>> = cases
            .iter()
            .map(|c| {
                let mut cache = KvCache::new(m.cfg.layers);
                let h = m.forward_hidden(&mut [(&c.ids[..], &mut cache)]).unwrap();
                last_logits(&m, &h[0])
            })
            .collect();
        let mut caches: Vec<KvCache> = cases.iter().map(|_| KvCache::new(m.cfg.layers)).collect();
        let mut batch: Vec<(&[u32], &mut KvCache)> = cases
            .iter()
            .zip(caches.iter_mut())
            .map(|(c, k)| (&c.ids[..], k))
            .collect();
        let hs = m.forward_hidden(&mut batch).unwrap();
        for (i, h) in hs.iter().enumerate() {
            let d = max_diff(&last_logits(&m, h), &alone[i]);
            assert!(d < 1e-4, "{name} case {i} in a batch: diff {d}");
        }
        for (i, c) in cases.iter().enumerate() {
            let cut = c.ids.len() / 2;
            let mut cache = KvCache::new(m.cfg.layers);
            m.forward_hidden(&mut [(&c.ids[..cut], &mut cache)])
                .unwrap();
            let h = m
                .forward_hidden(&mut [(&c.ids[cut..], &mut cache)])
                .unwrap();
            assert_eq!(cache.len, c.ids.len());
            let d = max_diff(&last_logits(&m, &h[0]), &alone[i]);
            assert!(d < 1e-4, "{name} case {i} split prefill: diff {d}");
        }
    }
}

/// The tiny Llama and Qwen2 files serve requests through the same provider and batching
/// worker as Gemma 3: the architecture is picked from the GGUF.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_families_serve_through_the_local_provider() {
    use shammie_models::Model;
    for file in ["llama_family_llama.gguf", "llama_family_qwen2.gguf"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(file);
        let m =
            shammie_local::LocalModel::load("tiny", &path, shammie_local::BatchLimits::default())
                .unwrap();
        let mut req = shammie_core::GenerateRequest::user("abc", 4);
        req.temperature = Some(0.0);
        req.top_logprobs = Some(3);
        let a = m.generate(&req).await.unwrap();
        let b = m.generate(&req).await.unwrap();
        assert_eq!(a.text, b.text, "{file}");
        assert!(a.usage.output_tokens >= 1, "{file}");
        let lps = a.logprobs.unwrap();
        assert!(
            lps.iter()
                .all(|t| t.top.len() == 3 && t.token == t.top[0].token),
            "{file}"
        );
    }
}
