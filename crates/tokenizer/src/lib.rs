//! Tokenizers built from the metadata of a GGUF file, for the local models that
//! Shammie runs with candle.
//!
//! What this crate **is**: a [`Tokenizer`] that reads the `tokenizer.ggml.*`
//! keys of a GGUF file (as parsed by `candle_core::quantized::gguf_file`) and
//! turns text into token ids and back, the way llama.cpp does for the same
//! file. Two vocabulary kinds are supported:
//!
//! - `tokenizer.ggml.model = "llama"`: a SentencePiece vocabulary (Gemma 3,
//!   Llama 2, Mistral): pieces with scores and types, no merges. Spaces become
//!   `▁`, the adjacent pair whose concatenation is the best-scoring piece is
//!   merged until none is left, and characters that are not pieces fall back
//!   to byte tokens `<0x00>`…`<0xFF>`. A dummy space is prefixed only when
//!   `tokenizer.ggml.add_space_prefix` says so (Gemma: it does not).
//! - `tokenizer.ggml.model = "gpt2"`: byte-level BPE with `tokenizer.ggml.merges`
//!   and a pre-tokeniser chosen by `tokenizer.ggml.pre` (`qwen2`, `llama-bpe`,
//!   `gpt-2`, `default`).
//!
//! In both, control, user-defined and unknown tokens written in the text (such
//! as `<start_of_turn>`) are matched as whole tokens before anything else,
//! like llama.cpp with `parse_special = true`.
//!
//! Decoding ([`Tokenizer::decode`], [`Tokenizer::decode_stream`]) skips
//! nothing: control tokens come back as their text, so
//! `decode(encode(x, false)) == x` (for SentencePiece, unless `x` contains
//! `▁` itself, which reads as a space, as in llama.cpp).
//!
//! What it **is not**: no file I/O (the caller reads the GGUF), no chat
//! templating (only [`Tokenizer::chat_template`] hands the Jinja source on),
//! no Unigram (T5) or WordPiece vocabularies, no printing or logging, and no
//! global state: a [`Tokenizer`] is a value behind an `Arc`, cheap to clone
//! and safe to share between threads (its only mutable part is the BPE
//! per-word cache, behind sharded mutexes, which never changes a result). Conformance with llama.cpp is
//! checked by `tests/it/gemma3.rs` against `tests/fixtures/gemma3_tokens.json`
//! (made by `tests/fixtures/make_fixtures.py` with llama-cpp-python), and for
//! byte-level BPE by `tests/it/bpe_llama_cpp.rs` on a synthetic vocabulary that
//! llama.cpp loaded as `qwen2` and as `llama-bpe` (`make_bpe_fixtures.py`).

mod bpe;
mod pretok;
mod special;
mod spm;
mod stream;

use std::collections::HashMap;
use std::sync::Arc;

use candle_core::quantized::gguf_file::{Content, Value};
use rustc_hash::FxHashMap;

pub use pretok::PreTokenizer;
pub use stream::DecodeStream;

/// Everything that can go wrong while building a [`Tokenizer`]. Encoding and
/// decoding cannot fail.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// A metadata key the tokenizer needs is absent.
    #[error("GGUF metadata has no `{0}`")]
    MissingKey(String),
    /// A metadata key holds a value of the wrong type.
    #[error("GGUF metadata `{key}` should be {expected}")]
    WrongType { key: String, expected: &'static str },
    /// Two parallel arrays (tokens and scores or types) differ in length.
    #[error("GGUF metadata `{key}` has {got} entries, expected {expected} (one per token)")]
    LengthMismatch {
        key: String,
        expected: usize,
        got: usize,
    },
    /// `tokenizer.ggml.model` names a vocabulary kind this crate does not implement.
    #[error("unsupported tokenizer model `{0}` (supported: `llama` SentencePiece, `gpt2` BPE)")]
    UnsupportedModel(String),
    /// `tokenizer.ggml.pre` names a pre-tokeniser this crate does not implement.
    #[error("unsupported pre-tokenizer `{0}` (supported: qwen2, llama-bpe, gpt-2, default)")]
    UnsupportedPreTokenizer(String),
    /// A special-token id (bos, eos, …) is outside the vocabulary.
    #[error("`{key}` = {id} is outside the vocabulary of {vocab_size} tokens")]
    TokenIdOutOfRange {
        key: String,
        id: u64,
        vocab_size: usize,
    },
    /// A token named as special is not in the vocabulary.
    #[error("special token {0:?} is not in the vocabulary")]
    UnknownSpecial(String),
    /// The vocabulary is empty.
    #[error("the vocabulary has no tokens")]
    EmptyVocabulary,
}

/// The type of a token, as stored in `tokenizer.ggml.token_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// An ordinary piece of text.
    Normal,
    /// The unknown token.
    Unknown,
    /// A control token (`<bos>`, `<start_of_turn>`, …): matched whole in text, decoded as its text.
    Control,
    /// A user-defined token (Gemma's whitespace runs, HTML tags): matched whole in text.
    UserDefined,
    /// A reserved, unused slot.
    Unused,
    /// A byte-fallback token `<0xNN>`.
    Byte,
}

impl TokenKind {
    fn from_gguf(v: i64) -> Self {
        match v {
            2 => Self::Unknown,
            3 => Self::Control,
            4 => Self::UserDefined,
            5 => Self::Unused,
            6 => Self::Byte,
            _ => Self::Normal,
        }
    }

    /// Whether tokens of this kind are matched as whole specials in the input.
    fn is_special(self) -> bool {
        matches!(self, Self::Control | Self::UserDefined | Self::Unknown)
    }
}

/// The vocabulary shared by both algorithms.
pub(crate) struct Vocab {
    /// Token texts as stored in the GGUF (SentencePiece `▁`, GPT-2 byte characters).
    pub(crate) texts: Vec<Box<str>>,
    pub(crate) kinds: Vec<TokenKind>,
    pub(crate) scores: Vec<f32>,
    /// Text → id; when a text repeats, the last id wins (as in llama.cpp).
    pub(crate) ids: FxHashMap<Box<str>, u32>,
}

impl Vocab {
    fn new(texts: Vec<String>, kinds: Vec<TokenKind>, scores: Vec<f32>) -> Self {
        let mut ids = FxHashMap::with_capacity_and_hasher(texts.len(), Default::default());
        let texts: Vec<Box<str>> = texts.into_iter().map(String::into_boxed_str).collect();
        for (i, t) in texts.iter().enumerate() {
            ids.insert(t.clone(), i as u32);
        }
        Self {
            texts,
            kinds,
            scores,
            ids,
        }
    }

    #[inline]
    pub(crate) fn id(&self, text: &str) -> Option<u32> {
        self.ids.get(text).copied()
    }

    fn len(&self) -> usize {
        self.texts.len()
    }

    fn kind(&self, id: u32) -> Option<TokenKind> {
        self.kinds.get(id as usize).copied()
    }
}

enum Algo {
    Spm(Box<spm::Spm>),
    Bpe(Box<bpe::Bpe>),
}

struct Inner {
    vocab: Vocab,
    specials: special::SpecialMatcher,
    algo: Algo,
    bos: Option<u32>,
    eos: Option<u32>,
    eot: Option<u32>,
    add_bos_default: bool,
    add_space_prefix: bool,
    chat_template: Option<String>,
}

/// A tokenizer for one GGUF model. Cloning is cheap (an `Arc`); it is `Send + Sync`.
#[derive(Clone)]
pub struct Tokenizer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("model", &self.model_name())
            .field("vocab_size", &self.vocab_size())
            .field("bos", &self.inner.bos)
            .field("eos", &self.inner.eos)
            .field("eot", &self.inner.eot)
            .finish_non_exhaustive()
    }
}

/// Texts llama.cpp also recognises as end-of-turn when the GGUF names no
/// `tokenizer.ggml.eot_token_id`.
const EOT_TEXTS: &[&str] = &[
    "<end_of_turn>",
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|eot|>",
    "<|end_of_turn|>",
];

// ---------------------------------------------------------------------------
// Reading GGUF metadata

struct Meta<'a>(&'a HashMap<String, Value>);

impl<'a> Meta<'a> {
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.0.get(key)
    }

    fn string(&self, key: &str) -> Result<Option<&'a str>, TokenizerError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(wrong(key, "a string")),
        }
    }

    fn array(&self, key: &str) -> Result<Option<&'a [Value]>, TokenizerError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(v)) => Ok(Some(v)),
            Some(_) => Err(wrong(key, "an array")),
        }
    }

    fn strings(&self, key: &str) -> Result<Option<Vec<String>>, TokenizerError> {
        let Some(arr) = self.array(key)? else {
            return Ok(None);
        };
        arr.iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(wrong(key, "an array of strings")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    fn int(&self, key: &str) -> Result<Option<i64>, TokenizerError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => as_int(v).map(Some).ok_or_else(|| wrong(key, "an integer")),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, TokenizerError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => as_int(v)
                .map(|i| Some(i != 0))
                .ok_or_else(|| wrong(key, "a boolean")),
        }
    }
}

fn wrong(key: &str, expected: &'static str) -> TokenizerError {
    TokenizerError::WrongType {
        key: key.to_string(),
        expected,
    }
}

fn as_int(v: &Value) -> Option<i64> {
    Some(match *v {
        Value::U8(x) => x.into(),
        Value::I8(x) => x.into(),
        Value::U16(x) => x.into(),
        Value::I16(x) => x.into(),
        Value::U32(x) => x.into(),
        Value::I32(x) => x.into(),
        Value::U64(x) => i64::try_from(x).ok()?,
        Value::I64(x) => x,
        _ => return None,
    })
}

fn as_f32(v: &Value) -> Option<f32> {
    match *v {
        Value::F32(x) => Some(x),
        Value::F64(x) => Some(x as f32),
        _ => as_int(v).map(|i| i as f32),
    }
}

/// Settings common to both constructors.
struct Common {
    bos: Option<u32>,
    eos: Option<u32>,
    eot: Option<u32>,
    add_bos_default: bool,
    add_space_prefix: bool,
    chat_template: Option<String>,
}

impl Tokenizer {
    /// Builds the tokenizer described by the `tokenizer.*` metadata of a GGUF file.
    ///
    /// Reads `tokenizer.ggml.model`, `tokens`, `scores`, `token_type`, `merges`,
    /// `pre`, `bos_token_id`, `eos_token_id`, `eot_token_id`, `add_bos_token`,
    /// `add_space_prefix` and `tokenizer.chat_template`. Merges whose parts or
    /// result are not in the vocabulary are ignored.
    pub fn from_gguf(content: &Content) -> Result<Self, TokenizerError> {
        let meta = Meta(&content.metadata);
        let model = meta
            .string("tokenizer.ggml.model")?
            .ok_or_else(|| TokenizerError::MissingKey("tokenizer.ggml.model".into()))?;
        let texts = meta
            .strings("tokenizer.ggml.tokens")?
            .ok_or_else(|| TokenizerError::MissingKey("tokenizer.ggml.tokens".into()))?;
        let n = texts.len();
        if n == 0 {
            return Err(TokenizerError::EmptyVocabulary);
        }
        let scores = match meta.array("tokenizer.ggml.scores")? {
            None => vec![0.0; n],
            Some(a) => {
                check_len("tokenizer.ggml.scores", n, a.len())?;
                a.iter()
                    .map(|v| {
                        as_f32(v)
                            .ok_or_else(|| wrong("tokenizer.ggml.scores", "an array of numbers"))
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        let kinds = match meta.array("tokenizer.ggml.token_type")? {
            None => vec![TokenKind::Normal; n],
            Some(a) => {
                check_len("tokenizer.ggml.token_type", n, a.len())?;
                a.iter()
                    .map(|v| {
                        as_int(v).map(TokenKind::from_gguf).ok_or_else(|| {
                            wrong("tokenizer.ggml.token_type", "an array of integers")
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        let id_key = |key: &str| -> Result<Option<u32>, TokenizerError> {
            match meta.int(key)? {
                None => Ok(None),
                // llama.cpp writes -1 (or u32::MAX) for "none".
                Some(i) if i < 0 || i == i64::from(u32::MAX) => Ok(None),
                Some(i) if (i as u64) < n as u64 => Ok(Some(i as u32)),
                Some(i) => Err(TokenizerError::TokenIdOutOfRange {
                    key: key.into(),
                    id: i as u64,
                    vocab_size: n,
                }),
            }
        };
        let bos = id_key("tokenizer.ggml.bos_token_id")?;
        let eos = id_key("tokenizer.ggml.eos_token_id")?;
        let eot_meta = id_key("tokenizer.ggml.eot_token_id")?;
        let chat_template = meta.string("tokenizer.chat_template")?.map(str::to_owned);

        let vocab = Vocab::new(texts, kinds, scores);
        let eot = eot_meta.or_else(|| EOT_TEXTS.iter().find_map(|t| vocab.id(t)));
        match model {
            "llama" => {
                let common = Common {
                    bos: bos.or_else(|| vocab.id("<s>")),
                    eos: eos.or_else(|| vocab.id("</s>")),
                    eot,
                    add_bos_default: meta.bool("tokenizer.ggml.add_bos_token")?.unwrap_or(true),
                    add_space_prefix: meta
                        .bool("tokenizer.ggml.add_space_prefix")?
                        .unwrap_or(true),
                    chat_template,
                };
                let spm = spm::Spm::new(&vocab);
                Ok(Self::assemble(vocab, Algo::Spm(Box::new(spm)), common))
            }
            "gpt2" => {
                let merges = meta.strings("tokenizer.ggml.merges")?.unwrap_or_default();
                let pre_name = meta.string("tokenizer.ggml.pre")?.unwrap_or("default");
                let pre = PreTokenizer::from_name(pre_name)?;
                let common = Common {
                    bos,
                    eos,
                    eot,
                    add_bos_default: meta.bool("tokenizer.ggml.add_bos_token")?.unwrap_or(false),
                    add_space_prefix: false,
                    chat_template,
                };
                let bpe = bpe::Bpe::new(&vocab, &merges, pre);
                Ok(Self::assemble(vocab, Algo::Bpe(Box::new(bpe)), common))
            }
            other => Err(TokenizerError::UnsupportedModel(other.to_string())),
        }
    }

    /// Builds a GPT-2 style byte-level BPE tokenizer from its parts: token texts
    /// (in GPT-2's byte-to-character alphabet, `Ġ` for a space), merges
    /// (`"left right"`, highest priority first), a pre-tokeniser name as in
    /// `tokenizer.ggml.pre`, and the texts of the tokens to treat as control
    /// tokens (matched whole in the input, e.g. `<|im_start|>`). There is no
    /// bos/eos unless one of the specials is `<|endoftext|>` (then it is eos).
    pub fn gpt2_from_parts(
        tokens: Vec<String>,
        merges: Vec<String>,
        pre: &str,
        specials: &[&str],
    ) -> Result<Self, TokenizerError> {
        if tokens.is_empty() {
            return Err(TokenizerError::EmptyVocabulary);
        }
        let pre = PreTokenizer::from_name(pre)?;
        let n = tokens.len();
        let mut vocab = Vocab::new(tokens, vec![TokenKind::Normal; n], vec![0.0; n]);
        for s in specials {
            let id = vocab
                .id(s)
                .ok_or_else(|| TokenizerError::UnknownSpecial(s.to_string()))?;
            vocab.kinds[id as usize] = TokenKind::Control;
        }
        let eos = specials
            .contains(&"<|endoftext|>")
            .then(|| vocab.id("<|endoftext|>"))
            .flatten();
        let eot = EOT_TEXTS.iter().find_map(|t| vocab.id(t));
        let common = Common {
            bos: None,
            eos,
            eot,
            add_bos_default: false,
            add_space_prefix: false,
            chat_template: None,
        };
        let bpe = bpe::Bpe::new(&vocab, &merges, pre);
        Ok(Self::assemble(vocab, Algo::Bpe(Box::new(bpe)), common))
    }

    fn assemble(vocab: Vocab, algo: Algo, c: Common) -> Self {
        let specials = special::SpecialMatcher::new(&vocab);
        Self {
            inner: Arc::new(Inner {
                vocab,
                specials,
                algo,
                bos: c.bos,
                eos: c.eos,
                eot: c.eot,
                add_bos_default: c.add_bos_default,
                add_space_prefix: c.add_space_prefix,
                chat_template: c.chat_template,
            }),
        }
    }

    /// Turns text into token ids. Control, user-defined and unknown tokens
    /// written in the text (e.g. `<start_of_turn>`) are parsed as those tokens
    /// (llama.cpp's `parse_special = true`). With `add_bos`, the bos token is
    /// prepended if the model has one; no eos is ever appended.
    pub fn encode(&self, text: &str, add_bos: bool) -> Vec<u32> {
        let inner = &*self.inner;
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_bos {
            if let Some(b) = inner.bos {
                out.push(b);
            }
        }
        // Whether the previous fragment was a special token (or the start):
        // SentencePiece vocabularies with `add_space_prefix` get a space there.
        let mut prev_special = true;
        for frag in inner.specials.partition(text) {
            match frag {
                special::Fragment::Token(id) => {
                    out.push(id);
                    prev_special = true;
                }
                special::Fragment::Text(s) => {
                    match &inner.algo {
                        Algo::Spm(spm) => spm.encode(
                            &inner.vocab,
                            s,
                            inner.add_space_prefix && prev_special,
                            &mut out,
                        ),
                        Algo::Bpe(bpe) => bpe.encode(&inner.vocab, s, &mut out),
                    }
                    prev_special = false;
                }
            }
        }
        out
    }

    /// Turns token ids back into text, skipping nothing: control tokens give
    /// their text (`<bos>`), byte tokens their bytes. Byte sequences that are
    /// not valid UTF-8 become U+FFFD; ids outside the vocabulary give nothing.
    /// For SentencePiece vocabularies with `add_space_prefix` (Llama 2 style,
    /// not Gemma) one leading space is dropped at the start and after each
    /// special token, undoing the space `encode` put there.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::with_capacity(ids.len() * 4);
        let mut strip = self.inner.add_space_prefix;
        for &id in ids {
            self.piece_bytes(id, &mut strip, &mut bytes);
        }
        match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }

    /// The text of one token as shown in a logprob list: `▁` and `Ġ` become
    /// spaces, byte tokens are their character when that byte is valid UTF-8
    /// alone, and bytes that are not (a piece of a multi-byte character) are
    /// shown as `<0xE2>`. Control tokens are their text. Empty for an id
    /// outside the vocabulary.
    pub fn token_str(&self, id: u32) -> String {
        let mut bytes = Vec::new();
        let mut strip = false;
        self.piece_bytes(id, &mut strip, &mut bytes);
        render_bytes(&bytes)
    }

    /// An incremental decoder: push ids one at a time and get back the text
    /// they complete, with incomplete UTF-8 held back until its last byte
    /// arrives. The pieces concatenated equal [`Tokenizer::decode`] of all ids.
    pub fn decode_stream(&self) -> DecodeStream {
        DecodeStream::new(self.clone())
    }

    /// The beginning-of-sequence token, if the model has one.
    pub fn bos(&self) -> Option<u32> {
        self.inner.bos
    }

    /// The end-of-sequence token, if the model has one.
    pub fn eos(&self) -> Option<u32> {
        self.inner.eos
    }

    /// The end-of-turn token (`<end_of_turn>` for Gemma, `<|eot_id|>`,
    /// `<|im_end|>`): `tokenizer.ggml.eot_token_id`, else found by its text.
    pub fn eot(&self) -> Option<u32> {
        self.inner.eot
    }

    /// Whether the model asks for a bos token by default (`tokenizer.ggml.add_bos_token`).
    pub fn add_bos_by_default(&self) -> bool {
        self.inner.add_bos_default
    }

    /// Number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.inner.vocab.len()
    }

    /// The id of the token whose stored text is exactly `piece` (in the
    /// vocabulary's own spelling: `▁the`, `Ġthe`, `<start_of_turn>`).
    pub fn id_of(&self, piece: &str) -> Option<u32> {
        self.inner.vocab.id(piece)
    }

    /// The token's text exactly as stored in the GGUF (`▁the`, `<0x0A>`).
    pub fn raw_piece(&self, id: u32) -> Option<&str> {
        self.inner.vocab.texts.get(id as usize).map(|s| &**s)
    }

    /// The token's type.
    pub fn kind(&self, id: u32) -> Option<TokenKind> {
        self.inner.vocab.kind(id)
    }

    /// The Jinja chat template from `tokenizer.chat_template`, if present.
    pub fn chat_template(&self) -> Option<&str> {
        self.inner.chat_template.as_deref()
    }

    /// `"llama"` (SentencePiece) or `"gpt2"` (byte-level BPE), as in `tokenizer.ggml.model`.
    pub fn model_name(&self) -> &'static str {
        match self.inner.algo {
            Algo::Spm(_) => "llama",
            Algo::Bpe(_) => "gpt2",
        }
    }

    /// Appends the bytes of one token to `out`. `strip_space` is the
    /// SentencePiece dummy-prefix state: when set, one leading space of the
    /// next text piece is dropped (mirroring what `encode` added).
    pub(crate) fn piece_bytes(&self, id: u32, strip_space: &mut bool, out: &mut Vec<u8>) {
        let inner = &*self.inner;
        let Some(kind) = inner.vocab.kind(id) else {
            return;
        };
        let text = &*inner.vocab.texts[id as usize];
        let start = out.len();
        match kind {
            TokenKind::Control | TokenKind::Unknown | TokenKind::UserDefined => {
                out.extend_from_slice(text.as_bytes());
                *strip_space = inner.add_space_prefix;
                return;
            }
            TokenKind::Byte => match parse_byte_token(text) {
                Some(b) => out.push(b),
                None => out.extend_from_slice(text.as_bytes()),
            },
            TokenKind::Normal | TokenKind::Unused => match &inner.algo {
                Algo::Spm(_) => spm::unescape_into(text, out),
                Algo::Bpe(bpe) => bpe.decode_into(text, out),
            },
        }
        if *strip_space {
            if out.get(start) == Some(&b' ') {
                out.remove(start);
            }
            *strip_space = false;
        }
    }
}

fn check_len(key: &str, expected: usize, got: usize) -> Result<(), TokenizerError> {
    if expected == got {
        Ok(())
    } else {
        Err(TokenizerError::LengthMismatch {
            key: key.into(),
            expected,
            got,
        })
    }
}

/// `<0xNN>` → the byte.
pub(crate) fn parse_byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

/// Valid UTF-8 as text, every byte that is not part of a valid character as `<0xNN>`.
fn render_bytes(mut bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    loop {
        match std::str::from_utf8(bytes) {
            Ok(valid) => {
                s.push_str(valid);
                return s;
            }
            Err(e) => {
                let (valid, rest) = bytes.split_at(e.valid_up_to());
                // `valid` was just checked by from_utf8.
                s.push_str(std::str::from_utf8(valid).unwrap_or_default());
                let bad = e.error_len().unwrap_or(rest.len());
                for b in &rest[..bad] {
                    s.push_str(&format!("<0x{b:02X}>"));
                }
                bytes = &rest[bad..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_tokens_parse() {
        assert_eq!(parse_byte_token("<0x0A>"), Some(10));
        assert_eq!(parse_byte_token("<0xE2>"), Some(0xE2));
        assert_eq!(parse_byte_token("<0xE>"), None);
        assert_eq!(parse_byte_token("0xE2"), None);
    }

    #[test]
    fn rendering_shows_stray_bytes_as_hex() {
        assert_eq!(render_bytes(b"hi"), "hi");
        assert_eq!(render_bytes(&[0xE2]), "<0xE2>");
        assert_eq!(render_bytes(&[b'a', 0xE2, 0x80]), "a<0xE2><0x80>");
        assert_eq!(render_bytes("é".as_bytes()), "é");
        assert_eq!(render_bytes(&[0xFF, b'x']), "<0xFF>x");
    }
}
