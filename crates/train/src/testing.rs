//! Tiny random models as GGUF files, for tests and smoke runs of training code (here and
//! in the CLI's tests): Gemma 3, Llama 3 and Qwen2, each with 2 layers (Gemma 3: as many
//! as asked with `tiny_gemma3_gguf_layers`; with 6 or more, every sixth is a
//! global-attention layer), hidden size 16, 2 query heads sharing 1 kv head of dimension
//! 8, MLP width 24, every tensor F32.
//!
//! - Gemma 3: per-head q/k norms, post-norms, a sliding window of 4, tied output head.
//! - Llama 3 (`llama`): its own `output.weight`, RoPE base 5e5 with Llama 3.1-style
//!   per-frequency divisors (`rope_freqs.weight` = 1, 1, 2, 8), ε = 1e-5.
//! - Qwen2 (`qwen2`): q/k/v biases, tied output head, RoPE base 1e6, ε = 1e-6.
//!
//! Without a tokenizer the vocabulary has 40 tokens; with one it has 259: `<unk>`, `<s>`,
//! `</s>` and the 256 byte tokens `<0xNN>` of a SentencePiece (`llama`) tokenizer, so any
//! text encodes byte by byte and the file loads as `local:/path/tiny.gguf`.

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

/// Draws tensors from one seeded stream.
struct Draw(rand_chacha::ChaCha8Rng);

impl Draw {
    /// `center` plus uniform noise in ±`spread`, as an F32 tensor.
    fn t(&mut self, dims: &[usize], center: f32, spread: f32) -> QTensor {
        let n: usize = dims.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| center + self.0.gen_range(-spread..spread))
            .collect();
        let t = Tensor::from_vec(v, dims, &Device::Cpu).expect("sized");
        QTensor::quantize(&t, GgmlDType::F32).expect("F32")
    }

    /// A weight matrix (out, in) with entries in ±1/√in.
    fn w(&mut self, out: usize, inn: usize) -> QTensor {
        self.t(&[out, inn], 0.0, 1.0 / (inn as f32).sqrt())
    }
}

fn vocab(tokenizer: bool) -> usize {
    if tokenizer {
        3 + 256
    } else {
        40
    }
}

/// The GGUF bytes of a random 2-layer Gemma 3 drawn from `seed` (module comment).
pub fn tiny_gemma3_gguf(seed: u64, tokenizer: bool) -> Vec<u8> {
    tiny_gemma3_gguf_layers(seed, tokenizer, LAYERS)
}

/// As [`tiny_gemma3_gguf`] with `layers` layers (the same draws for the layers both
/// have: the tensors are drawn in file order, layer by layer).
pub fn tiny_gemma3_gguf_layers(seed: u64, tokenizer: bool, layers: usize) -> Vec<u8> {
    use gguf_file::Value;
    let vocab = vocab(tokenizer);
    let mut d = Draw(rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    let (qd, kvd) = (HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM);
    let mut ts: Vec<(String, QTensor)> = vec![
        ("token_embd.weight".into(), d.t(&[vocab, HIDDEN], 0.0, 0.5)),
        ("output_norm.weight".into(), d.t(&[HIDDEN], 1.0, 0.2)),
    ];
    for i in 0..layers {
        let n = |s: &str| format!("blk.{i}.{s}.weight");
        for (s, o, inn) in [
            ("attn_q", qd, HIDDEN),
            ("attn_k", kvd, HIDDEN),
            ("attn_v", kvd, HIDDEN),
            ("attn_output", HIDDEN, qd),
            ("ffn_gate", FFN, HIDDEN),
            ("ffn_up", FFN, HIDDEN),
            ("ffn_down", HIDDEN, FFN),
        ] {
            ts.push((n(s), d.w(o, inn)));
        }
        for (s, dim) in [
            ("attn_norm", HIDDEN),
            ("attn_q_norm", HEAD_DIM),
            ("attn_k_norm", HEAD_DIM),
            ("post_attention_norm", HIDDEN),
            ("ffn_norm", HIDDEN),
            ("post_ffw_norm", HIDDEN),
        ] {
            ts.push((n(s), d.t(&[dim], 1.0, 0.2)));
        }
    }
    let mut md = sizes("gemma3", 1e-6, layers);
    md.push(("gemma3.attention.sliding_window".into(), Value::U32(4)));
    md.push(("gemma3.context_length".into(), Value::U32(128)));
    write(md, ts, tokenizer)
}

/// The GGUF bytes of a random Llama 3 drawn from `seed` (module comment).
pub fn tiny_llama_gguf(seed: u64, tokenizer: bool) -> Vec<u8> {
    let mut md = sizes("llama", 1e-5, LAYERS);
    md.push(("llama.context_length".into(), gguf_file::Value::U32(128)));
    md.push((
        "llama.rope.freq_base".into(),
        gguf_file::Value::F32(500_000.0),
    ));
    let mut ts = llama_family(seed, tokenizer, false, false);
    let factors = Tensor::new(&[1f32, 1.0, 2.0, 8.0], &Device::Cpu).expect("sized");
    ts.push((
        "rope_freqs.weight".into(),
        QTensor::quantize(&factors, GgmlDType::F32).expect("F32"),
    ));
    write(md, ts, tokenizer)
}

/// The GGUF bytes of a random Qwen2 drawn from `seed` (module comment).
pub fn tiny_qwen2_gguf(seed: u64, tokenizer: bool) -> Vec<u8> {
    let mut md = sizes("qwen2", 1e-6, LAYERS);
    md.push(("qwen2.context_length".into(), gguf_file::Value::U32(128)));
    md.push((
        "qwen2.rope.freq_base".into(),
        gguf_file::Value::F32(1_000_000.0),
    ));
    write(md, llama_family(seed, tokenizer, true, true), tokenizer)
}

/// The tensors of a Llama-family model: q/k/v biases with `bias`, the head tied to the
/// embedding with `tied`.
fn llama_family(seed: u64, tokenizer: bool, bias: bool, tied: bool) -> Vec<(String, QTensor)> {
    let vocab = vocab(tokenizer);
    let mut d = Draw(rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    let (qd, kvd) = (HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM);
    let mut ts: Vec<(String, QTensor)> = vec![
        ("token_embd.weight".into(), d.t(&[vocab, HIDDEN], 0.0, 0.5)),
        ("output_norm.weight".into(), d.t(&[HIDDEN], 1.0, 0.2)),
    ];
    if !tied {
        ts.push(("output.weight".into(), d.w(vocab, HIDDEN)));
    }
    for i in 0..LAYERS {
        let n = |s: &str| format!("blk.{i}.{s}");
        for (s, o, inn) in [
            ("attn_q", qd, HIDDEN),
            ("attn_k", kvd, HIDDEN),
            ("attn_v", kvd, HIDDEN),
            ("attn_output", HIDDEN, qd),
            ("ffn_gate", FFN, HIDDEN),
            ("ffn_up", FFN, HIDDEN),
            ("ffn_down", HIDDEN, FFN),
        ] {
            ts.push((n(&format!("{s}.weight")), d.w(o, inn)));
        }
        if bias {
            for (s, o) in [("attn_q", qd), ("attn_k", kvd), ("attn_v", kvd)] {
                ts.push((n(&format!("{s}.bias")), d.t(&[o], 0.0, 0.5)));
            }
        }
        for s in ["attn_norm", "ffn_norm"] {
            ts.push((n(&format!("{s}.weight")), d.t(&[HIDDEN], 1.0, 0.2)));
        }
    }
    ts
}

type Metadata = Vec<(String, gguf_file::Value)>;

/// The size metadata every architecture has, under its prefix.
fn sizes(arch: &str, eps: f32, layers: usize) -> Metadata {
    use gguf_file::Value;
    let p = |k: &str| format!("{arch}.{k}");
    vec![
        ("general.architecture".into(), Value::String(arch.into())),
        (p("embedding_length"), Value::U32(HIDDEN as u32)),
        (p("block_count"), Value::U32(layers as u32)),
        (p("attention.head_count"), Value::U32(HEADS as u32)),
        (p("attention.head_count_kv"), Value::U32(KV_HEADS as u32)),
        (p("attention.key_length"), Value::U32(HEAD_DIM as u32)),
        (p("feed_forward_length"), Value::U32(FFN as u32)),
        (p("attention.layer_norm_rms_epsilon"), Value::F32(eps)),
    ]
}

/// The file: `md` and `ts`, plus the byte tokenizer with `tokenizer`.
fn write(mut md: Metadata, ts: Vec<(String, QTensor)>, tokenizer: bool) -> Vec<u8> {
    use gguf_file::Value;
    if tokenizer {
        let vocab = vocab(true);
        let mut tokens = vec!["<unk>".to_string(), "<s>".into(), "</s>".into()];
        tokens.extend((0..256).map(|b| format!("<0x{b:02X}>")));
        // GGUF token types: 2 unknown, 3 control, 6 byte.
        let mut types = vec![Value::I32(2), Value::I32(3), Value::I32(3)];
        types.extend((0..256).map(|_| Value::I32(6)));
        md.extend([
            ("tokenizer.ggml.model".into(), Value::String("llama".into())),
            (
                "tokenizer.ggml.tokens".into(),
                Value::Array(tokens.into_iter().map(Value::String).collect()),
            ),
            (
                "tokenizer.ggml.scores".into(),
                Value::Array((0..vocab).map(|_| Value::F32(0.0)).collect()),
            ),
            ("tokenizer.ggml.token_type".into(), Value::Array(types)),
            ("tokenizer.ggml.bos_token_id".into(), Value::U32(1)),
            ("tokenizer.ggml.eos_token_id".into(), Value::U32(2)),
            ("tokenizer.ggml.add_bos_token".into(), Value::Bool(true)),
            ("tokenizer.ggml.add_space_prefix".into(), Value::Bool(false)),
        ]);
    }
    let md: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = ts.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut out = Cursor::new(Vec::new());
    gguf_file::write(&mut out, &md, &ts).expect("in memory");
    out.into_inner()
}
