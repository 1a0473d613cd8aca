//! A GGUF's own chat template, rendered by Shammie (minijinja) against an independent
//! reference: `tests/fixtures/chat_templates.json`, made by
//! `tests/fixtures/make_chat_templates.py` with Hugging Face's renderer (transformers, and
//! jinja2 under its settings: the two agree) and tokenized by llama.cpp as its server reads
//! a rendered chat. Real templates (Qwen2.5 with its default system message, Llama 3.2
//! with its date line from `strftime_now`, Gemma 3 folding the system text into the first
//! turn, Mistral v0.3 and v0.1 `[INST]`), over conversations with and without a system
//! message, several turns, a prefill, stray whitespace, non-ASCII text and a bad role
//! order (which Gemma and Mistral refuse with `raise_exception`): the same text, the same
//! refusals, the same token ids — on tiny synthetic vocabularies of each family and on the
//! real Gemma 3 270M vocabulary. Then end to end: `local:` on the tiny chat GGUFs reads its
//! own template, a prefill continues the assistant turn, one BOS.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::PathBuf;

use candle_core::quantized::gguf_file;
use shammie_core::{GenerateRequest, Message};
use shammie_local::prompt::{self, ChatTemplate, Template};
use shammie_tokenizer::Tokenizer;

#[derive(serde::Deserialize)]
struct Fixture {
    fixed_now: String,
    templates: BTreeMap<String, TemplateDef>,
    conversations: BTreeMap<String, Conversation>,
    cases: Vec<Case>,
    vocabs: BTreeMap<String, VocabDef>,
}

#[derive(serde::Deserialize)]
struct TemplateDef {
    source: String,
    bos: String,
    eos: String,
    vocabs: Vec<String>,
}

#[derive(serde::Deserialize)]
struct VocabDef {
    add_bos: bool,
    bos: String,
}

#[derive(serde::Deserialize)]
struct Conversation {
    system: Option<String>,
    turns: Vec<(String, String)>,
    #[serde(default)]
    prefill: Option<String>,
}

#[derive(serde::Deserialize)]
struct Case {
    template: String,
    conversation: String,
    text: Option<String>,
    error: Option<String>,
    ids: BTreeMap<String, Vec<u32>>,
}

fn fixture() -> Fixture {
    serde_json::from_str(include_str!("../fixtures/chat_templates.json")).unwrap()
}

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The tokenizer of a vocabulary the fixture names (the real Gemma 3 270M when present).
fn vocab(name: &str) -> Option<Tokenizer> {
    let path = if name == "gemma-3-270m" {
        crate::common::model_path_or_skip()?
    } else {
        fixtures_dir().join(name)
    };
    let bytes = std::fs::read(&path).unwrap();
    let content = gguf_file::Content::read(&mut Cursor::new(&bytes)).unwrap();
    Some(Tokenizer::from_gguf(&content).unwrap())
}

fn request(c: &Conversation) -> GenerateRequest {
    let mut r = GenerateRequest::user("", 1);
    r.system = c.system.clone();
    r.messages = c
        .turns
        .iter()
        .map(|(role, text)| match role.as_str() {
            "user" => Message::user(text),
            "assistant" => Message::assistant(text),
            other => panic!("role {other}"),
        })
        .collect();
    r.prefill = c.prefill.clone();
    r
}

fn pinned(fx: &Fixture) -> chrono::NaiveDateTime {
    chrono::NaiveDateTime::parse_from_str(&fx.fixed_now, "%Y-%m-%dT%H:%M:%S").unwrap()
}

#[test]
fn every_template_renders_the_reference_text_and_token_ids() {
    let fx = fixture();
    let mut tokenizers: BTreeMap<&str, Option<Tokenizer>> = BTreeMap::new();
    let (mut texts, mut refusals, mut id_checks) = (0, 0, 0);
    for case in &fx.cases {
        let def = &fx.templates[&case.template];
        let conv = &fx.conversations[&case.conversation];
        let req = request(conv);
        let what = format!("{} / {}", case.template, case.conversation);
        for v in &def.vocabs {
            let Some(tok) = tokenizers.entry(v).or_insert_with(|| vocab(v)).as_ref() else {
                continue;
            };
            // The special texts the template renders with come from the vocabulary as
            // they do for llama.cpp.
            let special = prompt::special_texts(tok);
            assert_eq!(
                special.bos.as_deref(),
                Some(fx.vocabs[v].bos.as_str()),
                "{v}"
            );
            assert_eq!(special.bos.as_deref(), Some(def.bos.as_str()), "{v}");
            assert_eq!(special.eos.as_deref(), Some(def.eos.as_str()), "{v}");
            assert_eq!(special.add_bos, fx.vocabs[v].add_bos, "{v}");
            let t = ChatTemplate::new(&def.source, special, v)
                .unwrap()
                .at_time(pinned(&fx));
            let mut msgs: Vec<(&str, &str)> = Vec::new();
            if let Some(s) = &conv.system {
                msgs.push(("system", s));
            }
            msgs.extend(conv.turns.iter().map(|(r, c)| (r.as_str(), c.as_str())));
            match (&case.text, &case.error) {
                (Some(text), _) => {
                    assert_eq!(&t.render_messages(&msgs, true).unwrap(), text, "{what}");
                    texts += 1;
                    let rendered = t.render(&req).unwrap();
                    let ids = prompt::prompt_ids(tok, &rendered);
                    assert_eq!(ids, case.ids[v], "{what} on {v}: token ids");
                    id_checks += 1;
                }
                (None, Some(message)) => {
                    let e = t.render(&req).unwrap_err().to_string();
                    assert!(e.contains(message.as_str()) && e.contains(v), "{what}: {e}");
                    refusals += 1;
                }
                (None, None) => panic!("{what}: neither text nor error"),
            }
        }
    }
    assert!(
        texts >= 34 && refusals >= 7 && id_checks >= 34,
        "{texts} {refusals} {id_checks}"
    );
}

/// The GGUFs carry the templates the reference rendered, and `local:` picks them up.
#[test]
fn the_chat_ggufs_carry_their_template_and_local_uses_it() {
    let fx = fixture();
    for (file, name) in [
        ("chat_qwen2.gguf", "qwen2.5"),
        ("chat_llama3.gguf", "llama3.2"),
        ("chat_gemma.gguf", "gemma3"),
        ("chat_vocab_gemma.gguf", "gemma3"),
        ("chat_vocab_mistral.gguf", "mistral-v0.3"),
    ] {
        let tok = vocab(file).unwrap();
        assert_eq!(
            tok.chat_template(),
            Some(fx.templates[name].source.as_str())
        );
        match prompt::template_for(&tok, file).unwrap() {
            Template::Jinja(t) => assert_eq!(t.origin(), file),
            Template::Format(f) => panic!("{file}: {f:?}"),
        }
    }
    // A refusal names the file and says what the template said.
    let tok = vocab("chat_vocab_gemma.gguf").unwrap();
    let t = prompt::template_for(&tok, "/models/chat_vocab_gemma.gguf").unwrap();
    let mut req = GenerateRequest::user("A", 1);
    req.messages.push(Message::user("B"));
    let e = t.render(&req).unwrap_err().to_string();
    assert!(
        e.starts_with("/models/chat_vocab_gemma.gguf: the model's chat template")
            && e.contains("Conversation roles must alternate"),
        "{e}"
    );
    // A template this renderer cannot compile is an error naming the file, not a fallback.
    let e = ChatTemplate::new(
        "{% for m in messages %}",
        prompt::special_texts(&tok),
        "x.gguf",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("x.gguf") && e.contains("does not compile"),
        "{e}"
    );
}

fn case<'a>(fx: &'a Fixture, template: &str, conversation: &str) -> &'a Case {
    fx.cases
        .iter()
        .find(|c| c.template == template && c.conversation == conversation)
        .unwrap()
}

/// `local:` on the tiny Qwen2 chat GGUF: the prompt is the template's (its default system
/// message included), token for token what llama.cpp reads; a prefill is appended to the
/// generation prompt, so the assistant turn continues from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_renders_the_gguf_template_and_a_prefill_continues_the_turn() {
    use shammie_models::Model;
    let fx = fixture();
    let path = fixtures_dir().join("chat_qwen2.gguf");
    let m = shammie_local::LocalModel::load("tiny-chat", &path, Default::default()).unwrap();
    assert_eq!(m.template().name(), "gguf");
    assert!(
        m.endpoint().contains(" chat-template sha256:"),
        "{}",
        m.endpoint()
    );

    let hi = GenerateRequest::user("Hi", 1);
    let want = case(&fx, "qwen2.5", "lone_hi");
    assert_eq!(m.rendered_prompt(&hi).as_deref(), want.text.as_deref());
    assert!(want
        .text
        .as_deref()
        .unwrap()
        .contains("You are Qwen, created by Alibaba Cloud."));
    let (_, ids) = m.prompt(&hi).unwrap();
    assert_eq!(ids, want.ids["chat_qwen2.gguf"]);
    let c = m.generate(&hi).await.unwrap();
    assert_eq!(c.usage.input_tokens as usize, ids.len());

    let want = case(&fx, "qwen2.5", "prefill");
    let conv = &fx.conversations["prefill"];
    let req = request(conv);
    let prefill = conv.prefill.as_deref().unwrap();
    let (text, ids) = m.prompt(&req).unwrap();
    assert_eq!(text, format!("{}{prefill}", want.text.as_deref().unwrap()));
    assert!(
        text.ends_with(&format!("<|im_start|>assistant\n{prefill}")),
        "{text}"
    );
    assert_eq!(ids, want.ids["chat_qwen2.gguf"]);
    // The generation prompt's tokens, then the prefill's: no end of turn between them.
    let mut open = req.clone();
    open.prefill = None;
    let (_, open_ids) = m.prompt(&open).unwrap();
    assert_eq!(ids[..open_ids.len()], open_ids[..]);
    assert_eq!(
        ids[open_ids.len()..],
        m.tokenizer().encode(prefill, false)[..]
    );
    // Scoring reads the same prompt.
    let (_, n) = m
        .score_continuations(&req, &["yes".to_string()])
        .await
        .unwrap();
    assert_eq!(n, ids.len());
}

/// Llama 3.2's template writes `<|begin_of_text|>` and the vocabulary adds a BOS too: the
/// prompt has exactly one, as llama.cpp's server gives it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_that_writes_the_bos_gets_one_bos() {
    let path = fixtures_dir().join("chat_llama3.gguf");
    let m = shammie_local::LocalModel::load("tiny-chat", &path, Default::default()).unwrap();
    let mut req = GenerateRequest::user("Hi", 1);
    req.system = Some("Be brief.".into());
    let (text, ids) = m.prompt(&req).unwrap();
    assert!(
        text.starts_with("<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: "),
        "{text}"
    );
    let bos = m.tokenizer().bos().unwrap();
    assert_eq!(ids[0], bos);
    assert_eq!(ids.iter().filter(|&&i| i == bos).count(), 1);
    assert!(text.ends_with("<|start_header_id|>assistant<|end_header_id|>\n\n"));
    assert_eq!(m.template().stops(), ["<|eot_id|>"]);
}
