//! Byte-level BPE against llama.cpp: a synthetic vocabulary (trained by
//! `fixtures/make_bpe_fixtures.py`) loaded by llama.cpp as a `qwen2` and as a
//! `llama-bpe` GGUF; every string in `fixtures/bpe_synthetic.json` must get
//! the same ids here, and decode back to itself.

use std::collections::{BTreeMap, HashMap};

use candle_core::quantized::gguf_file::{Content, Value, VersionedMagic};
use serde::Deserialize;
use shammie_tokenizer::Tokenizer;

#[derive(Deserialize)]
struct Fixture {
    tokens: Vec<String>,
    token_type: Vec<i32>,
    merges: Vec<String>,
    pre_tokenizers: BTreeMap<String, PreCases>,
}

#[derive(Deserialize)]
struct PreCases {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    ids: Vec<u32>,
}

fn fixture() -> Fixture {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/bpe_synthetic.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture present"))
        .expect("fixture parses")
}

fn content(fx: &Fixture, pre: &str) -> Content {
    let strings = |v: &[String]| Value::Array(v.iter().cloned().map(Value::String).collect());
    let eot = fx.tokens.iter().position(|t| t == "<|endoftext|>").unwrap() as u32;
    let mut m = HashMap::new();
    m.insert(
        "tokenizer.ggml.model".to_string(),
        Value::String("gpt2".into()),
    );
    m.insert("tokenizer.ggml.pre".into(), Value::String(pre.into()));
    m.insert("tokenizer.ggml.tokens".into(), strings(&fx.tokens));
    m.insert(
        "tokenizer.ggml.token_type".into(),
        Value::Array(fx.token_type.iter().map(|&t| Value::I32(t)).collect()),
    );
    m.insert("tokenizer.ggml.merges".into(), strings(&fx.merges));
    m.insert("tokenizer.ggml.bos_token_id".into(), Value::U32(eot));
    m.insert("tokenizer.ggml.eos_token_id".into(), Value::U32(eot));
    m.insert("tokenizer.ggml.add_bos_token".into(), Value::Bool(false));
    Content {
        magic: VersionedMagic::GgufV3,
        metadata: m,
        tensor_infos: HashMap::new(),
        tensor_data_offset: 0,
    }
}

#[test]
fn ids_identical_to_llama_cpp() {
    let fx = fixture();
    assert_eq!(fx.pre_tokenizers.len(), 2);
    let mut failures = Vec::new();
    let mut total = 0;
    for (pre, set) in &fx.pre_tokenizers {
        let tok = Tokenizer::from_gguf(&content(&fx, pre)).expect("tokenizer");
        assert!(set.cases.len() >= 150);
        for case in &set.cases {
            total += 1;
            let ids = tok.encode(&case.text, false);
            if ids != case.ids {
                failures.push(format!(
                    "[{pre}] {:?}:\n  ours      {ids:?}\n  llama.cpp {:?}",
                    case.text, case.ids
                ));
            } else if tok.decode(&ids) != case.text {
                failures.push(format!(
                    "[{pre}] {:?}: decoded {:?}",
                    case.text,
                    tok.decode(&ids)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
