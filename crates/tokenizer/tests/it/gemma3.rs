//! Gemma 3 (SentencePiece vocabulary) against llama.cpp: the ids of every
//! string in `fixtures/gemma3_tokens.json` (made by `fixtures/make_fixtures.py`
//! with llama-cpp-python) must be identical, and decoding must give the text back.

use crate::common;

use std::fs::File;
use std::io::BufReader;

use candle_core::quantized::gguf_file::Content;
use serde::Deserialize;
use shammie_tokenizer::{TokenKind, Tokenizer};

#[derive(Deserialize)]
struct Fixture {
    model_sha256: String,
    bos: u32,
    eos: u32,
    n_vocab: usize,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    add_bos: bool,
    ids: Vec<u32>,
    pieces_hex: Vec<String>,
    detokenized: String,
}

fn fixture() -> Fixture {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/gemma3_tokens.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture present"))
        .expect("fixture parses")
}

fn load() -> Option<Tokenizer> {
    let path = common::model_path_or_skip()?;
    let mut reader = BufReader::new(File::open(&path).expect("open GGUF"));
    let content = Content::read(&mut reader).expect("read GGUF metadata");
    Some(Tokenizer::from_gguf(&content).expect("tokenizer from GGUF"))
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn fixture_covers_the_tricky_cases() {
    let fx = fixture();
    assert!(fx.cases.len() >= 40, "{} cases", fx.cases.len());
    assert_eq!(
        fx.model_sha256,
        "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
    );
}

#[test]
fn metadata_matches_llama_cpp() {
    let Some(tok) = load() else { return };
    let fx = fixture();
    assert_eq!(tok.vocab_size(), fx.n_vocab);
    assert_eq!(tok.bos(), Some(fx.bos));
    assert_eq!(tok.eos(), Some(fx.eos));
    assert_eq!(tok.eot(), tok.id_of("<end_of_turn>"));
    assert_eq!(tok.eot(), Some(106));
    assert!(tok.add_bos_by_default());
    assert_eq!(tok.chat_template(), None, "this GGUF has no chat template");
    assert_eq!(tok.model_name(), "llama");
    assert_eq!(tok.kind(105), Some(TokenKind::Control));
    assert_eq!(tok.kind(138), Some(TokenKind::UserDefined));
    assert_eq!(tok.kind(238), Some(TokenKind::Byte));
}

#[test]
fn ids_identical_to_llama_cpp_and_round_trip() {
    let Some(tok) = load() else { return };
    let fx = fixture();
    let mut failures = Vec::new();
    for case in &fx.cases {
        let ids = tok.encode(&case.text, case.add_bos);
        if ids != case.ids {
            failures.push(format!(
                "{:?} (add_bos={}):\n  ours      {:?}\n  llama.cpp {:?}",
                case.text, case.add_bos, ids, case.ids
            ));
            continue;
        }
        let plain = tok.encode(&case.text, false);
        if tok.decode(&plain) != case.text {
            failures.push(format!(
                "{:?}: decode(encode(x)) = {:?}",
                case.text,
                tok.decode(&plain)
            ));
        }
        if tok.decode(&ids) != case.detokenized {
            failures.push(format!(
                "{:?}: decode = {:?}, llama.cpp detokenize = {:?}",
                case.text,
                tok.decode(&ids),
                case.detokenized
            ));
        }
        // Token by token: the same bytes as llama.cpp's token_to_piece(special=true).
        for (&id, hex) in ids.iter().zip(&case.pieces_hex) {
            let expected = String::from_utf8_lossy(&unhex(hex)).into_owned();
            if tok.decode(&[id]) != expected {
                failures.push(format!(
                    "{:?}: piece of {id} = {:?}, llama.cpp {:?}",
                    case.text,
                    tok.decode(&[id]),
                    expected
                ));
            }
        }
        // Streaming gives the same text, whatever the byte-token boundaries.
        let mut stream = tok.decode_stream();
        let mut streamed: String = ids.iter().map(|&id| stream.push(id)).collect();
        streamed.push_str(&stream.finish());
        if streamed != case.detokenized {
            failures.push(format!("{:?}: streamed {:?}", case.text, streamed));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        fx.cases.len(),
        failures.join("\n")
    );
}

#[test]
fn token_str_for_logprob_lists() {
    let Some(tok) = load() else { return };
    let space_the = tok.id_of("▁the").expect("▁the");
    assert_eq!(tok.token_str(space_the), " the");
    assert_eq!(tok.token_str(tok.id_of("<0x0A>").unwrap()), "\n");
    assert_eq!(tok.token_str(tok.id_of("<0x41>").unwrap()), "A");
    assert_eq!(tok.token_str(tok.id_of("<0xE2>").unwrap()), "<0xE2>");
    assert_eq!(tok.token_str(105), "<start_of_turn>");
    assert_eq!(tok.token_str(138), "  ");
    assert_eq!(tok.token_str(u32::MAX), "");
    assert_eq!(tok.raw_piece(space_the), Some("▁the"));
}

#[test]
fn decode_stream_holds_back_partial_characters() {
    let Some(tok) = load() else { return };
    // A character Gemma has no piece for comes as byte tokens.
    let text = "x\u{f0000}y";
    let ids = tok.encode(text, false);
    let bytes: Vec<u32> = "\u{f0000}"
        .bytes()
        .map(|b| tok.id_of(&format!("<0x{b:02X}>")).unwrap())
        .collect();
    assert!(
        ids.windows(4).any(|w| w == bytes.as_slice()),
        "{ids:?} has the byte fallback {bytes:?}"
    );
    let mut s = tok.decode_stream();
    let mut outputs = Vec::new();
    for &id in &ids {
        outputs.push(s.push(id));
    }
    assert_eq!(outputs.concat(), text);
    // While the 4-byte character is incomplete nothing of it comes out.
    assert!(outputs.iter().all(|o| !o.contains('\u{fffd}')));
    assert_eq!(outputs.iter().filter(|o| o.is_empty()).count(), 3);
    assert_eq!(s.pending_bytes(), 0);
    // An unfinished character is flushed lossily at the end.
    let mut s = tok.decode_stream();
    assert_eq!(s.push(bytes[0]), "");
    assert_eq!(s.pending_bytes(), 1);
    assert_eq!(s.finish(), "\u{fffd}");
}

#[test]
fn long_input_is_not_quadratic() {
    let Some(tok) = load() else { return };
    let fx = fixture();
    let para = &fx.cases.iter().max_by_key(|c| c.text.len()).unwrap().text;
    let one = tok.encode(para, false);
    let long: String = std::iter::repeat_n(para.as_str(), 200)
        .collect::<Vec<_>>()
        .join(" ");
    let start = std::time::Instant::now();
    let ids = tok.encode(&long, false);
    let elapsed = start.elapsed();
    assert!(ids.len() > 150 * one.len());
    assert_eq!(tok.decode(&ids), long);
    // ~200 kB: linear-ish work finishes far below this even in a debug build.
    assert!(elapsed.as_secs_f64() < 20.0, "{elapsed:?}");
}
