//! SentencePiece on a hand-built vocabulary: score priority, byte fallback,
//! specials and the dummy space prefix (`add_space_prefix`, Llama 2 style),
//! which Gemma does not use and so the llama.cpp fixture does not cover.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::{Content, Value, VersionedMagic};
use shammie_tokenizer::Tokenizer;

/// (text, score, type) after the specials and 256 byte tokens.
const PIECES: &[(&str, f32)] = &[
    ("▁", -1.0),
    ("a", -2.0),
    ("b", -2.0),
    ("c", -2.0),
    ("ab", -5.0),
    ("bc", -4.0),
    ("▁a", -3.0),
    ("▁ab", -6.0),
    ("▁▁", -7.0),
];

fn content(add_space_prefix: bool) -> Content {
    let mut tokens = vec![
        ("<unk>".to_string(), 0.0, 2),
        ("<s>".into(), 0.0, 3),
        ("</s>".into(), 0.0, 3),
    ];
    tokens.extend((0..=255u8).map(|b| (format!("<0x{b:02X}>"), 0.0, 6)));
    tokens.extend(PIECES.iter().map(|&(t, s)| (t.to_string(), s, 1)));
    let mut m = HashMap::new();
    m.insert(
        "tokenizer.ggml.model".to_string(),
        Value::String("llama".into()),
    );
    m.insert(
        "tokenizer.ggml.tokens".into(),
        Value::Array(tokens.iter().map(|t| Value::String(t.0.clone())).collect()),
    );
    m.insert(
        "tokenizer.ggml.scores".into(),
        Value::Array(tokens.iter().map(|t| Value::F32(t.1)).collect()),
    );
    m.insert(
        "tokenizer.ggml.token_type".into(),
        Value::Array(tokens.iter().map(|t| Value::I32(t.2)).collect()),
    );
    m.insert("tokenizer.ggml.bos_token_id".into(), Value::U32(1));
    m.insert("tokenizer.ggml.eos_token_id".into(), Value::U32(2));
    m.insert(
        "tokenizer.ggml.add_space_prefix".into(),
        Value::Bool(add_space_prefix),
    );
    Content {
        magic: VersionedMagic::GgufV3,
        metadata: m,
        tensor_infos: HashMap::new(),
        tensor_data_offset: 0,
    }
}

fn pieces(t: &Tokenizer, text: &str) -> Vec<String> {
    let ids = t.encode(text, false);
    assert_eq!(t.decode(&ids), text, "round trip");
    ids.iter()
        .map(|&id| t.raw_piece(id).unwrap().to_string())
        .collect()
}

#[test]
fn highest_score_pair_merges_first() {
    let t = Tokenizer::from_gguf(&content(false)).unwrap();
    // "bc" (-4) beats "ab" (-5); "abc" is not a piece, so a + bc.
    assert_eq!(pieces(&t, "abc"), ["a", "bc"]);
    assert_eq!(pieces(&t, "ab"), ["ab"]);
    // " ab": "▁a" (-3) first, then "▁ab" (-6).
    assert_eq!(pieces(&t, " ab"), ["▁ab"]);
    // Equal scores: the leftmost pair ("▁▁" at 0) first.
    assert_eq!(pieces(&t, "   "), ["▁▁", "▁"]);
}

#[test]
fn characters_outside_the_vocabulary_fall_back_to_bytes() {
    let t = Tokenizer::from_gguf(&content(false)).unwrap();
    assert_eq!(pieces(&t, "aé"), ["a", "<0xC3>", "<0xA9>"]);
    assert_eq!(t.token_str(t.id_of("<0xC3>").unwrap()), "<0xC3>");
    assert_eq!(t.token_str(t.id_of("<0x0A>").unwrap()), "\n");
    assert_eq!(pieces(&t, "🦀"), ["<0xF0>", "<0x9F>", "<0xA6>", "<0x80>"]);
}

#[test]
fn dummy_prefix_at_the_start_and_after_specials() {
    let t = Tokenizer::from_gguf(&content(true)).unwrap();
    // "ab" is encoded as "▁ab"; decoding drops that space again.
    assert_eq!(pieces(&t, "ab"), ["▁ab"]);
    assert_eq!(pieces(&t, "ab</s>ab"), ["▁ab", "</s>", "▁ab"]);
    assert_eq!(t.encode("ab", true)[0], 1);
    assert_eq!(t.decode(&t.encode("ab", true)), "<s>ab");
    // The stream agrees with decode.
    let ids = t.encode("ab</s>ab", false);
    let mut s = t.decode_stream();
    let streamed: String = ids.iter().map(|&i| s.push(i)).collect();
    assert_eq!(streamed, "ab</s>ab");
    // Without the prefix, the same text has no leading "▁".
    let plain = Tokenizer::from_gguf(&content(false)).unwrap();
    assert_eq!(pieces(&plain, "ab"), ["ab"]);
    assert_eq!(t.token_str(t.id_of("▁ab").unwrap()), " ab");
}

#[test]
fn empty_text() {
    let t = Tokenizer::from_gguf(&content(true)).unwrap();
    assert!(t.encode("", false).is_empty());
    assert_eq!(t.encode("", true), [1]);
    assert_eq!(t.decode(&[]), "");
}
