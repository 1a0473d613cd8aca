//! Chat JSONL to training examples: the rendered transcript with the prompt format the
//! model is served with, loss on the assistant replies (and their end of turn) only, and
//! bad lines rejected with FILE:LINE.

use std::io::Cursor;

use candle_core::quantized::gguf_file;
use shammie_core::GenerateRequest;
use shammie_local::prompt::{Format, Template};
use shammie_tokenizer::Tokenizer;
use shammie_train::chat::load_chat_jsonl;
use shammie_train::testing::tiny_gemma3_gguf;

pub(crate) fn tokenizer() -> Tokenizer {
    let bytes = tiny_gemma3_gguf(1, true);
    let c = gguf_file::Content::read(&mut Cursor::new(&bytes)).unwrap();
    Tokenizer::from_gguf(&c).unwrap()
}

fn write(text: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("chat.jsonl");
    std::fs::write(&p, text).unwrap();
    (d, p)
}

const TWO_TURNS: &str = r#"{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}, {"role": "user", "content": "More?"}, {"role": "assistant", "content": "Ok "}, {"role": "user", "content": "dropped"}]}"#;

/// The trained runs of tokens, decoded.
fn trained_spans(tok: &Tokenizer, ids: &[u32], train: &[bool]) -> Vec<String> {
    let mut spans = Vec::new();
    let mut cur = Vec::new();
    for (id, t) in ids.iter().zip(train) {
        if *t {
            cur.push(*id);
        } else if !cur.is_empty() {
            spans.push(tok.decode(&cur));
            cur.clear();
        }
    }
    if !cur.is_empty() {
        spans.push(tok.decode(&cur));
    }
    spans
}

/// A plain document: BOS (untrained), then every byte of the text trained, whatever the
/// chat format; a record with both fields, or an empty text, is a `FILE:LINE` error.
#[test]
fn documents_train_whole() {
    let tok = tokenizer();
    let (_d, p) = write(b"{\"text\": \"A memo.\\nIt says so.\"}\n");
    for format in [Format::Base, Format::Gemma] {
        let ex = &load_chat_jsonl(&p, &Template::from(format), &tok).unwrap()[0];
        let want: Vec<u32> = std::iter::once(1)
            .chain("A▁memo.\nIt▁says▁so.".bytes().map(|b| b as u32 + 3))
            .collect();
        assert_eq!(ex.ids, want);
        assert!(!ex.train[0] && ex.train[1..].iter().all(|t| *t));
    }
    let (_d, p) = write(b"{\"text\": \"ok\"}\n{\"text\": \" \"}\n");
    let e = load_chat_jsonl(&p, &Template::from(Format::Base), &tok)
        .unwrap_err()
        .to_string();
    assert!(e.contains(":2: `text` is empty"), "{e}");
    let (_d, p) = write(b"{\"text\": \"ok\", \"messages\": []}\n");
    let e = load_chat_jsonl(&p, &Template::from(Format::Base), &tok)
        .unwrap_err()
        .to_string();
    assert!(e.contains(":1: both `messages` and `text`"), "{e}");
}

/// Base format: the example is BOS then the bytes of
/// "Be brief.\n\nHuman: Hi\n\nAssistant: Yo\n\nHuman: More?\n\nAssistant: Ok\n\nHuman:"
/// (the trailing user turn dropped, "Ok " trimmed as the renderer trims), with exactly
/// " Yo\n\nHuman:" and " Ok\n\nHuman:" trained (spaces appear as SentencePiece's "▁"); the first prompt's tokens are those a
/// served request for the first turn gets.
#[test]
fn base_format_trains_the_replies_and_their_stop() {
    let tok = tokenizer();
    let (_d, p) = write(format!("\u{feff}{TWO_TURNS}\n\n").as_bytes());
    let ex = load_chat_jsonl(&p, &Template::from(Format::Base), &tok).unwrap();
    assert_eq!(ex.len(), 1);
    let ex = &ex[0];
    assert_eq!(ex.ids[0], 1, "BOS first");
    let full = "Be brief.\n\nHuman: Hi\n\nAssistant: Yo\n\nHuman: More?\n\nAssistant: Ok\n\nHuman:";
    // Byte tokens: id = byte + 3; SentencePiece writes a space as "▁" (3 bytes), which
    // the byte-only vocabulary keeps (and decodes) as such.
    let want: Vec<u32> = std::iter::once(1)
        .chain(full.replace(' ', "▁").bytes().map(|b| b as u32 + 3))
        .collect();
    assert_eq!(ex.ids, want);
    assert_eq!(
        trained_spans(&tok, &ex.ids, &ex.train),
        ["▁Yo\n\nHuman:", "▁Ok\n\nHuman:"]
    );
    // "▁Yo\n\nHuman:": 3 + 2 + 2 + 6 = 13 byte tokens, likewise "▁Ok\n\nHuman:": 26.
    assert_eq!(ex.trained(), 26);
    let mut req = GenerateRequest::user("Hi", 5);
    req.system = Some("Be brief.".into());
    let served = tok.encode(&Format::Base.render(&req), true);
    assert_eq!(ex.ids[..served.len()], served[..]);
    assert!(ex.train[..served.len()].iter().all(|t| !t));
    assert!(ex.train[served.len()]);
}

/// Gemma turns: the reply and `<end_of_turn>` are trained, the `model` header is not.
#[test]
fn gemma_format_trains_reply_and_end_of_turn() {
    let tok = tokenizer();
    let (_d, p) = write(TWO_TURNS.as_bytes());
    let ex = &load_chat_jsonl(&p, &Template::from(Format::Gemma), &tok).unwrap()[0];
    assert_eq!(
        trained_spans(&tok, &ex.ids, &ex.train),
        ["Yo<end_of_turn>", "Ok▁<end_of_turn>"]
    );
    assert_eq!(
        tok.decode(&ex.ids[1..]),
        "<start_of_turn>user\nBe▁brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nYo<end_of_turn>\n\
         <start_of_turn>user\nMore?<end_of_turn>\n<start_of_turn>model\nOk▁<end_of_turn>"
    );
}

/// Every kind of bad line is an error naming the file and line.
#[test]
fn bad_lines_name_file_and_line() {
    let tok = tokenizer();
    let good = r#"{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}"#;
    let cases: [(&str, &str); 8] = [
        ("{not json", "not valid JSON"),
        (r#"{"prompt": "x"}"#, "no `messages` field"),
        (r#"{"messages": {}}"#, "`messages` is not a list"),
        (
            r#"{"messages": [{"role": "tool", "content": "x"}]}"#,
            "message 1: unknown role `tool`",
        ),
        (
            r#"{"messages": [{"role": "assistant", "content": "x"}]}"#,
            "message 1: expected a `user` turn",
        ),
        (
            r#"{"messages": [{"role": "user", "content": "x"}, {"role": "system", "content": "s"}]}"#,
            "message 2: `system` only as the first",
        ),
        (
            r#"{"messages": [{"role": "user", "content": "x"}]}"#,
            "no `assistant` turn",
        ),
        (
            r#"{"messages": [{"role": "user", "content": 3}]}"#,
            "message 1: no string `content`",
        ),
    ];
    for (bad, why) in cases {
        let (_d, p) = write(format!("{good}\n\n{bad}\n{good}\n").as_bytes());
        let e = load_chat_jsonl(&p, &Template::from(Format::Base), &tok)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(&format!("{}:3: ", p.display())), "{e}");
        assert!(e.contains(why), "{bad}: {e}");
    }
    let (_d, p) = write(b"\n \n");
    let e = load_chat_jsonl(&p, &Template::from(Format::Base), &tok)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no records"), "{e}");
    let mut bytes = format!("{good}\n").into_bytes();
    bytes.extend(b"{\"messages\": \"\xff\"}\n");
    let (_d, p) = write(&bytes);
    let e = load_chat_jsonl(&p, &Template::from(Format::Base), &tok)
        .unwrap_err()
        .to_string();
    assert!(e.contains(":2: not UTF-8"), "{e}");
}

/// A GGUF with a chat template (the tiny Qwen2-style fixture, whose template is Qwen2.5's
/// with its default system message): training renders with that template — the prompt
/// part of an example is exactly the ids `local:` serves for the same conversation, and
/// the trained part is the reply and `<|im_end|>`.
#[test]
fn a_chat_gguf_trains_in_the_context_its_template_serves() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../local/tests/fixtures/chat_qwen2.gguf");
    let bytes = std::fs::read(&path).unwrap();
    let c = gguf_file::Content::read(&mut Cursor::new(&bytes)).unwrap();
    let tok = Tokenizer::from_gguf(&c).unwrap();
    let template = shammie_local::prompt::template_for(&tok, "chat_qwen2.gguf").unwrap();
    assert!(matches!(template, Template::Jinja(_)));
    let (_d, p) = write(
        br#"{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]}"#,
    );
    let ex = &load_chat_jsonl(&p, &template, &tok).unwrap()[0];
    let req = GenerateRequest::user("Hi", 5);
    let served_text = template.render(&req).unwrap();
    assert!(
        served_text.contains("You are Qwen") && served_text.ends_with("<|im_start|>assistant\n"),
        "{served_text}"
    );
    let served = shammie_local::prompt::prompt_ids(&tok, &served_text);
    assert_eq!(ex.ids[..served.len()], served[..]);
    assert!(ex.train[..served.len()].iter().all(|t| !t));
    assert_eq!(
        trained_spans(&tok, &ex.ids, &ex.train),
        [format!("Yo{}", template.turn_end())]
    );
    assert_eq!(template.turn_end(), "<|im_end|>");
}
