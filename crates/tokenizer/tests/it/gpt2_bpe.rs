//! GPT-2 style byte-level BPE on a small hand-built vocabulary: pre-tokeniser
//! splits, merge order and specials, with expected tokens derived by hand.
//! (No Qwen 2 / Llama 3 GGUF is available offline; the rules are the
//! published ones, and the splits are checked in detail in `src/pretok.rs`.)

use std::collections::HashMap;

use candle_core::quantized::gguf_file::{Content, Value, VersionedMagic};
use shammie_tokenizer::{TokenKind, Tokenizer, TokenizerError};

/// GPT-2's byte alphabet, written out independently of the crate.
fn byte_char(b: u8) -> char {
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut n = 0;
    for x in 0..256u32 {
        if printable(x) {
            if x == b as u32 {
                return char::from_u32(x).unwrap();
            }
        } else {
            if x == b as u32 {
                return char::from_u32(256 + n).unwrap();
            }
            n += 1;
        }
    }
    unreachable!()
}

const SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

/// Merges in priority order (rank 0 first). "h e" before "l l" before "e ll":
/// that order decides how "hello" comes out.
const MERGES: &[&str] = &[
    "Ġ t", "h e", "Ġt he", "l l", "e ll", "h ell", "hell o", "i n", "Ġ w", "o r", "Ġw or",
    "Ġwor l", "Ġworl d", "1 2", "12 3", "a a", "' s", "Ġ Ġ", "Ċ Ċ", "Ã ©", "u s", "us e", "use r",
];

/// 256 byte tokens (id = byte value), then one token per merge, then a whole
/// word no merge reaches ("hello" is reachable only through "h ell", so add
/// "Ġhello" too), then the specials.
fn parts() -> (Vec<String>, Vec<String>) {
    let mut tokens: Vec<String> = (0..=255u8).map(|b| byte_char(b).to_string()).collect();
    for m in MERGES {
        let joined = m.replacen(' ', "", 1);
        if !tokens.contains(&joined) {
            tokens.push(joined);
        }
    }
    tokens.push("Ġhello".to_string());
    tokens.extend(SPECIALS.iter().map(|s| s.to_string()));
    (tokens, MERGES.iter().map(|s| s.to_string()).collect())
}

fn tok(pre: &str) -> Tokenizer {
    let (tokens, merges) = parts();
    Tokenizer::gpt2_from_parts(tokens, merges, pre, &SPECIALS).unwrap()
}

/// Encodes and maps the ids back to their stored pieces, for readable expectations.
fn pieces(t: &Tokenizer, text: &str) -> Vec<String> {
    let ids = t.encode(text, false);
    assert_eq!(t.decode(&ids), text, "byte-level BPE is lossless");
    ids.iter()
        .map(|&id| t.raw_piece(id).unwrap().to_string())
        .collect()
}

#[test]
fn merges_apply_lowest_rank_first() {
    let t = tok("qwen2");
    // h e (rank 1) is merged before l l (3); then no merge joins "he" and "ll".
    assert_eq!(pieces(&t, "hello"), ["he", "ll", "o"]);
    // " the": Ġ t (0), h e (1), then Ġt he (2).
    assert_eq!(pieces(&t, " the"), ["Ġthe"]);
    // " world": Ġ w (8), o r (9), Ġw or (10), Ġwor l (11), Ġworl d (12).
    assert_eq!(pieces(&t, " world"), ["Ġworld"]);
    // "user": u s, us e, use r.
    assert_eq!(pieces(&t, "user"), ["user"]);
}

#[test]
fn another_merge_order_gives_another_segmentation() {
    let (tokens, _) = parts();
    // With "l l", "e ll", "h ell", "hell o" ranked before "h e", "hello" is one token.
    let merges = ["l l", "e ll", "h ell", "hell o", "h e"]
        .map(String::from)
        .to_vec();
    let t = Tokenizer::gpt2_from_parts(tokens, merges, "qwen2", &[]).unwrap();
    assert_eq!(pieces(&t, "hello"), ["hello"]);
}

#[test]
fn equal_ranks_merge_leftmost_first() {
    let t = tok("qwen2");
    assert_eq!(pieces(&t, "aaa"), ["aa", "a"]);
    assert_eq!(pieces(&t, "aaaaa"), ["aa", "aa", "a"]);
}

#[test]
fn llama_bpe_takes_whole_word_tokens_without_merging() {
    // " hello" is a token; Qwen 2 merges ( Ġ h e l l o → Ġ, he, ll, o ), Llama 3 takes it whole.
    assert_eq!(pieces(&tok("qwen2"), " hello"), ["Ġ", "he", "ll", "o"]);
    assert_eq!(pieces(&tok("llama-bpe"), " hello"), ["Ġhello"]);
    // "hello" is a token too (the result of "hell o"), so it is also taken whole…
    assert_eq!(pieces(&tok("llama-bpe"), "hello"), ["hello"]);
    // …while a word that is not a token is merged as usual.
    assert_eq!(pieces(&tok("llama-bpe"), "helloo"), ["he", "ll", "o", "o"]);
}

#[test]
fn digits_llama3_groups_of_three_qwen2_single() {
    assert_eq!(
        pieces(&tok("llama-bpe"), "1234567"),
        ["123", "4", "5", "6", "7"]
    );
    assert_eq!(pieces(&tok("qwen2"), "123"), ["1", "2", "3"]);
    // GPT-2 keeps the digit run as one word, merged as far as merges go.
    assert_eq!(pieces(&tok("gpt-2"), "1234"), ["123", "4"]);
}

#[test]
fn contractions_and_whitespace() {
    let t = tok("llama-bpe");
    // "'s" is its own word and merges to one token.
    assert_eq!(pieces(&t, "it's"), ["i", "t", "'s"]);
    // Three spaces before a word: "  " then " b" (the last space goes with the word).
    assert_eq!(pieces(&t, "a   b"), ["a", "ĠĠ", "Ġ", "b"]);
    // Two newlines are one word, merged.
    assert_eq!(pieces(&t, "a\n\nb"), ["a", "ĊĊ", "b"]);
    // Trailing spaces stay together.
    assert_eq!(pieces(&t, "x  "), ["x", "ĠĠ"]);
}

#[test]
fn non_ascii_goes_through_bytes() {
    let t = tok("qwen2");
    // é = C3 A9 = "Ã©", which has a merge.
    assert_eq!(pieces(&t, "é"), ["Ã©"]);
    // 你 = E4 BD A0: three byte tokens, whose pieces alone are not valid UTF-8.
    let ids = t.encode("你", false);
    assert_eq!(ids, [0xE4, 0xBD, 0xA0]);
    assert_eq!(t.token_str(0xE4), "<0xE4>");
    assert_eq!(t.token_str(t.id_of("Ã©").unwrap()), "é");
    assert_eq!(t.token_str(t.id_of("Ġthe").unwrap()), " the");
    // Emoji with a ZWJ, flags, CJK, RTL: byte-level BPE round-trips everything.
    for text in [
        "👨‍👩‍👧‍👦 🇫🇷",
        "日本語のテキスト",
        "مرحبا",
        "tab\there\r\n",
        "",
        "   ",
    ] {
        assert_eq!(t.decode(&t.encode(text, false)), text);
    }
    // Streaming holds the three bytes of 你 back until the last one.
    let mut s = t.decode_stream();
    assert_eq!([s.push(0xE4), s.push(0xBD)], ["", ""]);
    assert_eq!(s.push(0xA0), "你");
}

#[test]
fn specials_are_parsed_whole() {
    let t = tok("qwen2");
    let start = t.id_of("<|im_start|>").unwrap();
    let end = t.id_of("<|im_end|>").unwrap();
    let ids = t.encode("<|im_start|>user\nhi<|im_end|>", false);
    assert_eq!(ids[0], start);
    assert_eq!(*ids.last().unwrap(), end);
    assert_eq!(
        pieces(&t, "<|im_start|>user\nhi<|im_end|>"),
        ["<|im_start|>", "user", "Ċ", "h", "i", "<|im_end|>"]
    );
    assert_eq!(t.kind(start), Some(TokenKind::Control));
    assert_eq!(t.token_str(end), "<|im_end|>");
    assert_eq!(t.eot(), Some(end));
    assert_eq!(t.eos(), t.id_of("<|endoftext|>"));
    // An incomplete special is ordinary text.
    assert_eq!(t.encode("<|im_end", false).len(), "<|im_end".len());
}

#[test]
fn unknown_specials_and_pre_tokenizers_are_errors() {
    let (tokens, merges) = parts();
    assert!(matches!(
        Tokenizer::gpt2_from_parts(tokens.clone(), merges.clone(), "qwen2", &["<|nope|>"]),
        Err(TokenizerError::UnknownSpecial(_))
    ));
    assert!(matches!(
        Tokenizer::gpt2_from_parts(tokens, merges, "starcoder", &[]),
        Err(TokenizerError::UnsupportedPreTokenizer(_))
    ));
}

fn strings(v: &[String]) -> Value {
    Value::Array(v.iter().cloned().map(Value::String).collect())
}

fn gguf(pre: &str) -> Content {
    let (tokens, merges) = parts();
    let types: Vec<Value> = tokens
        .iter()
        .map(|t| Value::I32(if SPECIALS.contains(&t.as_str()) { 3 } else { 1 }))
        .collect();
    let endoftext = tokens.iter().position(|t| t == "<|endoftext|>").unwrap() as u32;
    let mut metadata = HashMap::new();
    metadata.insert("tokenizer.ggml.model".into(), Value::String("gpt2".into()));
    metadata.insert("tokenizer.ggml.pre".into(), Value::String(pre.into()));
    metadata.insert("tokenizer.ggml.tokens".into(), strings(&tokens));
    metadata.insert("tokenizer.ggml.token_type".into(), Value::Array(types));
    metadata.insert("tokenizer.ggml.merges".into(), strings(&merges));
    metadata.insert("tokenizer.ggml.bos_token_id".into(), Value::U32(endoftext));
    metadata.insert("tokenizer.ggml.eos_token_id".into(), Value::U32(endoftext));
    metadata.insert("tokenizer.ggml.add_bos_token".into(), Value::Bool(false));
    metadata.insert(
        "tokenizer.chat_template".into(),
        Value::String("{{ messages }}".into()),
    );
    Content {
        magic: VersionedMagic::GgufV3,
        metadata,
        tensor_infos: HashMap::new(),
        tensor_data_offset: 0,
    }
}

#[test]
fn from_gguf_metadata() {
    let content = gguf("qwen2");
    let t = Tokenizer::from_gguf(&content).unwrap();
    assert_eq!(t.model_name(), "gpt2");
    assert_eq!(t.vocab_size(), parts().0.len());
    assert_eq!(t.chat_template(), Some("{{ messages }}"));
    assert!(!t.add_bos_by_default());
    let eot = t.id_of("<|endoftext|>");
    assert_eq!((t.bos(), t.eos()), (eot, eot));
    assert_eq!(t.eot(), t.id_of("<|im_end|>"));
    let text = "<|im_start|>user\nhello world 123<|im_end|>";
    assert_eq!(t.encode(text, false), tok("qwen2").encode(text, false));
    assert_eq!(t.encode("x", true), [eot.unwrap(), b'x' as u32]);
    assert_eq!(
        t.decode(&t.encode(text, true)),
        format!("<|endoftext|>{text}")
    );
}

#[test]
fn from_gguf_errors() {
    let mut c = gguf("mystery");
    assert!(
        matches!(Tokenizer::from_gguf(&c), Err(TokenizerError::UnsupportedPreTokenizer(p)) if p == "mystery")
    );
    c.metadata
        .insert("tokenizer.ggml.model".into(), Value::String("bert".into()));
    assert!(matches!(
        Tokenizer::from_gguf(&c),
        Err(TokenizerError::UnsupportedModel(_))
    ));
    let mut c = gguf("qwen2");
    c.metadata.insert(
        "tokenizer.ggml.token_type".into(),
        Value::Array(vec![Value::I32(1)]),
    );
    assert!(matches!(
        Tokenizer::from_gguf(&c),
        Err(TokenizerError::LengthMismatch { .. })
    ));
    let mut c = gguf("qwen2");
    c.metadata.remove("tokenizer.ggml.tokens");
    assert!(
        matches!(Tokenizer::from_gguf(&c), Err(TokenizerError::MissingKey(k)) if k == "tokenizer.ggml.tokens")
    );
    let mut c = gguf("qwen2");
    c.metadata
        .insert("tokenizer.ggml.eos_token_id".into(), Value::U32(1_000_000));
    assert!(matches!(
        Tokenizer::from_gguf(&c),
        Err(TokenizerError::TokenIdOutOfRange { .. })
    ));
    let mut c = gguf("qwen2");
    c.metadata
        .insert("tokenizer.ggml.pre".into(), Value::U32(3));
    assert!(matches!(
        Tokenizer::from_gguf(&c),
        Err(TokenizerError::WrongType { .. })
    ));
}

#[test]
fn tokenizer_is_shareable() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Tokenizer>();
    assert_send_sync::<shammie_tokenizer::DecodeStream>();
    // The per-word cache gives the same answers from many threads.
    let t = tok("llama-bpe");
    let text = "hello world, the 1234567 user's aaa\n\n".repeat(50);
    let want = t.encode(&text, false);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| assert_eq!(t.encode(&text, false), want));
        }
    });
}
