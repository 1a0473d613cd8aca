//! BERT WordPiece tokenisation as a Hugging Face `tokenizer.json` describes it.
//!
//! The pipeline, in order:
//! 1. special tokens (`[CLS]`, `[SEP]`, `[MASK]`, …) written literally in the text are
//!    recognised first, on the raw text, and map straight to their ids;
//! 2. the rest is normalised (`BertNormalizer`): control characters dropped, whitespace made
//!    a plain space, CJK ideographs surrounded by spaces, accents stripped (NFD, then
//!    non-spacing marks removed), lower-cased;
//! 3. pre-tokenised (`BertPreTokenizer`): split on whitespace, and every punctuation
//!    character stands alone;
//! 4. each word becomes WordPiece pieces, greedily longest-first, continuation pieces
//!    carrying the `##` prefix; a word longer than `max_input_chars_per_word` characters, or
//!    one that cannot be fully covered by the vocabulary, becomes a single `[UNK]`;
//! 5. truncated to `max_len` tokens in all, then wrapped as the post-processor says
//!    (`[CLS] … [SEP]`).
//!
//! Only what BERT-family sentence encoders use is read; any other normaliser,
//! pre-tokeniser, model or post-processor is refused rather than approximated.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;
use unicode_categories::UnicodeCategories;
use unicode_normalization_alignments::UnicodeNormalization;

use crate::EmbedError;

/// A WordPiece tokenizer read from `tokenizer.json`.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    vocab: HashMap<String, u32>,
    unk_id: u32,
    pad_id: u32,
    continuing_prefix: String,
    max_input_chars_per_word: usize,
    normalizer: Option<BertNormalizer>,
    /// Added tokens matched on the raw text, longest first.
    specials: Vec<(String, u32)>,
    /// Ids the post-processor puts before and after the text (`[CLS]`, `[SEP]`).
    prefix_ids: Vec<u32>,
    suffix_ids: Vec<u32>,
    max_len: usize,
}

#[derive(Debug, Clone, Copy)]
struct BertNormalizer {
    clean_text: bool,
    handle_chinese_chars: bool,
    strip_accents: bool,
    lowercase: bool,
}

impl Tokenizer {
    /// Reads `tokenizer.json`; encodings are truncated to `max_len` tokens, special tokens
    /// included.
    pub fn from_file(path: &Path, max_len: usize) -> Result<Self, EmbedError> {
        let text = std::fs::read_to_string(path).map_err(|source| EmbedError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&text, max_len).map_err(|message| EmbedError::Format {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Builds the tokenizer from the text of a `tokenizer.json`.
    pub fn from_json(text: &str, max_len: usize) -> Result<Self, String> {
        let json: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;

        let model = &json["model"];
        if model["type"].as_str() != Some("WordPiece") {
            return Err(format!("model type {} is not WordPiece", model["type"]));
        }
        let vocab_json = model["vocab"]
            .as_object()
            .ok_or("model.vocab is not an object")?;
        let mut vocab = HashMap::with_capacity(vocab_json.len());
        for (piece, id) in vocab_json {
            let id = id.as_u64().and_then(|i| u32::try_from(i).ok());
            let id = id.ok_or_else(|| format!("vocab entry {piece:?} has no integer id"))?;
            vocab.insert(piece.clone(), id);
        }
        let unk_token = model["unk_token"].as_str().unwrap_or("[UNK]");
        let unk_id = *vocab
            .get(unk_token)
            .ok_or_else(|| format!("unk token {unk_token:?} not in vocab"))?;
        let continuing_prefix = model["continuing_subword_prefix"]
            .as_str()
            .unwrap_or("##")
            .to_string();
        let max_input_chars_per_word =
            model["max_input_chars_per_word"].as_u64().unwrap_or(100) as usize;

        let normalizer = match &json["normalizer"] {
            Value::Null => None,
            n if n["type"].as_str() == Some("BertNormalizer") => {
                let flag = |k: &str, default: bool| n[k].as_bool().unwrap_or(default);
                let lowercase = flag("lowercase", true);
                Some(BertNormalizer {
                    clean_text: flag("clean_text", true),
                    handle_chinese_chars: flag("handle_chinese_chars", true),
                    // `null` means: strip accents exactly when lower-casing (as BERT did).
                    strip_accents: n["strip_accents"].as_bool().unwrap_or(lowercase),
                    lowercase,
                })
            }
            n => {
                return Err(format!(
                    "normalizer {} is not supported (only BertNormalizer)",
                    n["type"]
                ))
            }
        };

        match json["pre_tokenizer"]["type"].as_str() {
            Some("BertPreTokenizer") => {}
            other => {
                return Err(format!(
                    "pre-tokenizer {other:?} is not supported (only BertPreTokenizer)"
                ))
            }
        }

        let mut specials = Vec::new();
        if let Some(added) = json["added_tokens"].as_array() {
            for t in added {
                let content = t["content"].as_str().ok_or("added token without content")?;
                let id = t["id"]
                    .as_u64()
                    .and_then(|i| u32::try_from(i).ok())
                    .ok_or("added token without id")?;
                let on = |k: &str| t[k].as_bool().unwrap_or(false);
                if on("normalized") || on("lstrip") || on("rstrip") || on("single_word") {
                    return Err(format!(
                        "added token {content:?}: normalized/lstrip/rstrip/single_word matching is not supported"
                    ));
                }
                if !content.is_empty() {
                    specials.push((content.to_string(), id));
                }
            }
        }
        // Longest first, so that at one position the longest special token wins.
        specials.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));

        let special_id = |name: &str| -> Result<u32, String> {
            vocab
                .get(name)
                .copied()
                .or_else(|| specials.iter().find(|(s, _)| s == name).map(|(_, id)| *id))
                .ok_or_else(|| format!("special token {name:?} not in vocab"))
        };
        let (prefix_ids, suffix_ids) = match &json["post_processor"] {
            Value::Null => (Vec::new(), Vec::new()),
            p if p["type"].as_str() == Some("BertProcessing") => {
                let id = |k: &str| {
                    p[k][1]
                        .as_u64()
                        .map(|i| i as u32)
                        .ok_or(format!("BertProcessing.{k} has no id"))
                };
                (vec![id("cls")?], vec![id("sep")?])
            }
            p if p["type"].as_str() == Some("TemplateProcessing") => template_ids(p)?,
            p => return Err(format!("post-processor {} is not supported", p["type"])),
        };
        if max_len <= prefix_ids.len() + suffix_ids.len() {
            return Err(format!("max length {max_len} leaves no room for text"));
        }

        let pad_id = json["padding"]["pad_id"]
            .as_u64()
            .map(|i| i as u32)
            .map_or_else(|| special_id("[PAD]"), Ok)?;

        Ok(Self {
            vocab,
            unk_id,
            pad_id,
            continuing_prefix,
            max_input_chars_per_word,
            normalizer,
            specials,
            prefix_ids,
            suffix_ids,
            max_len,
        })
    }

    /// Token ids of one text: `[CLS] pieces… [SEP]`, at most [`Self::max_len`] of them.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let budget = self.max_len - self.prefix_ids.len() - self.suffix_ids.len();
        let mut ids = self.prefix_ids.clone();
        let mut body = Vec::new();
        let mut rest = text;
        while !rest.is_empty() && body.len() < budget {
            match self.next_special(rest) {
                Some((at, content_len, id)) => {
                    self.encode_plain(&rest[..at], budget, &mut body);
                    body.push(id);
                    rest = &rest[at + content_len..];
                }
                None => {
                    self.encode_plain(rest, budget, &mut body);
                    rest = "";
                }
            }
        }
        body.truncate(budget);
        ids.extend(body);
        ids.extend_from_slice(&self.suffix_ids);
        ids
    }

    /// The most tokens one encoding has, special tokens included.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The id used to pad a batch (`[PAD]`).
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// How many pieces the vocabulary has.
    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// The leftmost special token in `text`, longest at that position:
    /// (byte offset, byte length, id).
    fn next_special(&self, text: &str) -> Option<(usize, usize, u32)> {
        if self.specials.is_empty() {
            return None;
        }
        for (at, _) in text.char_indices() {
            let tail = &text[at..];
            if let Some((s, id)) = self
                .specials
                .iter()
                .find(|(s, _)| tail.starts_with(s.as_str()))
            {
                return Some((at, s.len(), *id));
            }
        }
        None
    }

    /// Normalise, split into words, WordPiece each word; stops once `budget` ids are
    /// reached (later words never change earlier tokens).
    fn encode_plain(&self, text: &str, budget: usize, out: &mut Vec<u32>) {
        if text.is_empty() || out.len() >= budget {
            return;
        }
        let normalized = match &self.normalizer {
            Some(n) => n.apply(text),
            None => text.to_string(),
        };
        for chunk in normalized.split(char::is_whitespace) {
            let mut word_start = 0;
            for (i, c) in chunk.char_indices() {
                if is_bert_punctuation(c) {
                    self.word_to_ids(&chunk[word_start..i], out);
                    self.word_to_ids(&chunk[i..i + c.len_utf8()], out);
                    word_start = i + c.len_utf8();
                }
            }
            self.word_to_ids(&chunk[word_start..], out);
            if out.len() >= budget {
                return;
            }
        }
    }

    /// WordPiece, greedy longest match first.
    fn word_to_ids(&self, word: &str, out: &mut Vec<u32>) {
        if word.is_empty() {
            return;
        }
        if word.chars().count() > self.max_input_chars_per_word {
            out.push(self.unk_id);
            return;
        }
        let first_piece = out.len();
        let mut key = String::with_capacity(word.len() + self.continuing_prefix.len());
        let mut start = 0;
        while start < word.len() {
            let mut end = word.len();
            let mut found = None;
            while end > start {
                key.clear();
                if start > 0 {
                    key.push_str(&self.continuing_prefix);
                }
                key.push_str(&word[start..end]);
                if let Some(&id) = self.vocab.get(key.as_str()) {
                    found = Some(id);
                    break;
                }
                // Drop the last character of the candidate.
                end = word[..end]
                    .char_indices()
                    .next_back()
                    .map_or(start, |(i, _)| i);
            }
            match found {
                Some(id) => {
                    out.push(id);
                    start = end;
                }
                None => {
                    out.truncate(first_piece);
                    out.push(self.unk_id);
                    return;
                }
            }
        }
    }
}

/// The ids a `TemplateProcessing` post-processor puts before and after a single sequence.
fn template_ids(p: &Value) -> Result<(Vec<u32>, Vec<u32>), String> {
    let single = p["single"]
        .as_array()
        .ok_or("TemplateProcessing without `single`")?;
    let mut prefix = Vec::new();
    let mut suffix = Vec::new();
    let mut seen_sequence = false;
    for item in single {
        if let Some(special) = item.get("SpecialToken") {
            let name = special["id"].as_str().ok_or("SpecialToken without id")?;
            let ids = p["special_tokens"][name]["ids"]
                .as_array()
                .ok_or_else(|| format!("special token {name:?} not defined in the template"))?;
            let target = if seen_sequence {
                &mut suffix
            } else {
                &mut prefix
            };
            for id in ids {
                target.push(id.as_u64().ok_or("special token id is not an integer")? as u32);
            }
        } else if item.get("Sequence").is_some() {
            if seen_sequence {
                return Err("template with two sequences for a single input".into());
            }
            seen_sequence = true;
        } else {
            return Err(format!("unknown template item {item}"));
        }
    }
    if !seen_sequence {
        return Err("template without the sequence".into());
    }
    Ok((prefix, suffix))
}

impl BertNormalizer {
    fn apply(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 8);
        for c in text.chars() {
            if self.clean_text {
                if c == '\0' || c == '\u{fffd}' || is_control(c) {
                    continue;
                }
                if is_whitespace(c) {
                    out.push(' ');
                    continue;
                }
            }
            if self.handle_chinese_chars && is_cjk_ideograph(c) {
                out.push(' ');
                out.push(c);
                out.push(' ');
            } else {
                out.push(c);
            }
        }
        if self.strip_accents {
            out = out
                .nfd()
                .map(|(c, _)| c)
                .filter(|c| !c.is_mark_nonspacing())
                .collect();
        }
        if self.lowercase {
            out = out.chars().flat_map(char::to_lowercase).collect();
        }
        out
    }
}

/// Whitespace for cleaning: tab, newline and carriage return count, though they are
/// control characters.
fn is_whitespace(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || c.is_whitespace()
}

/// Control and format characters (Cc, Cf, Co) except tab, newline, carriage return.
fn is_control(c: char) -> bool {
    !matches!(c, '\t' | '\n' | '\r') && c.is_other()
}

/// Any ASCII punctuation (so also `$ + < = > ^ \` | ~`), or a Unicode P* character.
fn is_bert_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || c.is_punctuation()
}

/// The CJK Unified Ideographs blocks BERT splits character by character (not Hangul,
/// Hiragana or Katakana, which are written with spaces or are split by WordPiece anyway).
fn is_cjk_ideograph(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        | 0x2B820..=0x2CEAF
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Tokenizer {
        let vocab: Vec<&str> = vec![
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "un", "##aff",
            "##able", ",", "!", "cafe", "東", "京", "$", "5",
        ];
        let vocab: serde_json::Map<String, Value> = vocab
            .iter()
            .enumerate()
            .map(|(i, s)| (s.to_string(), Value::from(i)))
            .collect();
        let special = |content: &str, id: usize| {
            serde_json::json!({"id": id, "content": content, "single_word": false, "lstrip": false,
                               "rstrip": false, "normalized": false, "special": true})
        };
        let json = serde_json::json!({
            "added_tokens": [special("[PAD]", 0), special("[UNK]", 1), special("[CLS]", 2), special("[SEP]", 3), special("[MASK]", 4)],
            "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                           "strip_accents": null, "lowercase": true},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "post_processor": {"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                           {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
                "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                                   "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
            "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                      "max_input_chars_per_word": 10, "vocab": vocab},
        });
        Tokenizer::from_json(&json.to_string(), 8).unwrap()
    }

    #[test]
    fn pieces_punctuation_accents_cjk() {
        let t = tiny();
        assert_eq!(t.encode(""), vec![2, 3]);
        assert_eq!(t.encode("Hello, WORLD!"), vec![2, 5, 10, 6, 11, 3]);
        assert_eq!(t.encode("unaffable"), vec![2, 7, 8, 9, 3]);
        // Not coverable: the whole word is one [UNK].
        assert_eq!(t.encode("unaffx"), vec![2, 1, 3]);
        assert_eq!(t.encode("Café"), vec![2, 12, 3]);
        assert_eq!(t.encode("東京"), vec![2, 13, 14, 3]);
        assert_eq!(t.encode("$5"), vec![2, 15, 16, 3]);
        assert_eq!(t.encode("\u{0}hello\u{200b}\tworld"), vec![2, 5, 6, 3]);
    }

    #[test]
    fn long_words_specials_and_truncation() {
        let t = tiny();
        assert_eq!(t.encode("helloworldx"), vec![2, 1, 3]);
        assert_eq!(t.encode("hello[MASK]world"), vec![2, 5, 4, 6, 3]);
        assert_eq!(t.encode("[mask]"), vec![2, 1, 1, 1, 3]);
        let ids = t.encode("hello hello hello hello hello hello hello hello");
        assert_eq!(ids, vec![2, 5, 5, 5, 5, 5, 5, 3]);
    }
}
