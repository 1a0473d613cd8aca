//! A tiny random Gemma 3 as a GGUF file, for tests and smoke runs of training code
//! (here and in the CLI's tests): 2 layers (or as many as asked: with 6 or more, every
//! sixth is a global-attention layer), hidden size 16, sliding window 4, every tensor F32.
//!
//! Without a tokenizer its vocabulary has 40 tokens; with one it has 259: `<unk>`,
//! `<s>`, `</s>` and the 256 byte tokens `<0xNN>` of a SentencePiece (`llama`) tokenizer,
//! so any text encodes byte by byte and the file loads as `local:/path/tiny.gguf`.

use std::io::Cursor;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};

const HIDDEN: usize = 16;
const HEADS: usize = 2;
const KV_HEADS: usize = 1;
const HEAD_DIM: usize = 8;
const FFN: usize = 24;
const LAYERS: usize = 2;

/// The GGUF bytes of a random 2-layer Gemma 3 drawn from `seed` (module comment).
pub fn tiny_gemma3_gguf(seed: u64, tokenizer: bool) -> Vec<u8> {
    tiny_gemma3_gguf_layers(seed, tokenizer, LAYERS)
}

/// As [`tiny_gemma3_gguf`] with `layers` layers (the same draws for the layers both
/// have: the tensors are drawn in file order, layer by layer).
pub fn tiny_gemma3_gguf_layers(seed: u64, tokenizer: bool, layers: usize) -> Vec<u8> {
    use gguf_file::Value;
    let vocab = if tokenizer { 3 + 256 } else { 40 };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut t = |dims: &[usize], center: f32, spread: f32| {
        let n: usize = dims.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| center + rng.gen_range(-spread..spread))
            .collect();
        let t = Tensor::from_vec(v, dims, &Device::Cpu).expect("sized");
        QTensor::quantize(&t, GgmlDType::F32).expect("F32")
    };
    let (qd, kvd) = (HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM);
    let mut ts: Vec<(String, QTensor)> = vec![
        ("token_embd.weight".into(), t(&[vocab, HIDDEN], 0.0, 0.5)),
        ("output_norm.weight".into(), t(&[HIDDEN], 1.0, 0.2)),
    ];
    for i in 0..layers {
        let n = |s: &str| format!("blk.{i}.{s}.weight");
        let w = |o: usize, i: usize| (o, i, 1.0 / (i as f32).sqrt());
        for (s, (o, inn, sp)) in [
            ("attn_q", w(qd, HIDDEN)),
            ("attn_k", w(kvd, HIDDEN)),
            ("attn_v", w(kvd, HIDDEN)),
            ("attn_output", w(HIDDEN, qd)),
            ("ffn_gate", w(FFN, HIDDEN)),
            ("ffn_up", w(FFN, HIDDEN)),
            ("ffn_down", w(HIDDEN, FFN)),
        ] {
            ts.push((n(s), t(&[o, inn], 0.0, sp)));
        }
        for (s, d) in [
            ("attn_norm", HIDDEN),
            ("attn_q_norm", HEAD_DIM),
            ("attn_k_norm", HEAD_DIM),
            ("post_attention_norm", HIDDEN),
            ("ffn_norm", HIDDEN),
            ("post_ffw_norm", HIDDEN),
        ] {
            ts.push((n(s), t(&[d], 1.0, 0.2)));
        }
    }
    let mut md: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("gemma3".into())),
        ("gemma3.embedding_length", Value::U32(HIDDEN as u32)),
        ("gemma3.block_count", Value::U32(layers as u32)),
        ("gemma3.attention.head_count", Value::U32(HEADS as u32)),
        (
            "gemma3.attention.head_count_kv",
            Value::U32(KV_HEADS as u32),
        ),
        ("gemma3.attention.key_length", Value::U32(HEAD_DIM as u32)),
        ("gemma3.feed_forward_length", Value::U32(FFN as u32)),
        ("gemma3.attention.layer_norm_rms_epsilon", Value::F32(1e-6)),
        ("gemma3.attention.sliding_window", Value::U32(4)),
        ("gemma3.context_length", Value::U32(128)),
    ];
    if tokenizer {
        let mut tokens = vec!["<unk>".to_string(), "<s>".into(), "</s>".into()];
        tokens.extend((0..256).map(|b| format!("<0x{b:02X}>")));
        // GGUF token types: 2 unknown, 3 control, 6 byte.
        let mut types = vec![Value::I32(2), Value::I32(3), Value::I32(3)];
        types.extend((0..256).map(|_| Value::I32(6)));
        md.extend([
            ("tokenizer.ggml.model", Value::String("llama".into())),
            (
                "tokenizer.ggml.tokens",
                Value::Array(tokens.into_iter().map(Value::String).collect()),
            ),
            (
                "tokenizer.ggml.scores",
                Value::Array((0..vocab).map(|_| Value::F32(0.0)).collect()),
            ),
            ("tokenizer.ggml.token_type", Value::Array(types)),
            ("tokenizer.ggml.bos_token_id", Value::U32(1)),
            ("tokenizer.ggml.eos_token_id", Value::U32(2)),
            ("tokenizer.ggml.add_bos_token", Value::Bool(true)),
            ("tokenizer.ggml.add_space_prefix", Value::Bool(false)),
        ]);
    }
    let md: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (*k, v)).collect();
    let ts: Vec<(&str, &QTensor)> = ts.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut out = Cursor::new(Vec::new());
    gguf_file::write(&mut out, &md, &ts).expect("in memory");
    out.into_inner()
}
