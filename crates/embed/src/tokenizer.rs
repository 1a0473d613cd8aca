//! The model folder's `tokenizer.json`, run by Hugging Face's `tokenizers` crate (the
//! library sentence-transformers itself tokenises with), configured as sentence-transformers
//! configures it: truncation at `max_seq_length` tokens, special tokens included, and no
//! padding for one text; batches are padded to their longest text ([`Tokenizer::pad`]).
//!
//! The truncation and padding that `tokenizer.json` itself records (all-MiniLM-L6-v2's says
//! truncate at 128 and pad every text to 128) are replaced: sentence-transformers truncates
//! at its own `max_seq_length` (256 for all-MiniLM-L6-v2) and pads a batch to its longest.
//!
//! Only WordPiece models are read (the encoder is BERT); with the unknown token in the
//! vocabulary, encoding cannot fail.

use std::path::Path;

use tokenizers::models::ModelWrapper;
use tokenizers::{
    Encoding, Model, PaddingDirection, PaddingParams, PaddingStrategy, PostProcessor,
    TruncationDirection, TruncationParams, TruncationStrategy,
};

use crate::EmbedError;

/// A `tokenizer.json` tokenizer with sentence-transformers' truncation and padding.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    /// Truncation at `max_len`, no padding.
    inner: tokenizers::Tokenizer,
    /// Pads a batch to its longest encoding.
    padding: PaddingParams,
    max_len: usize,
}

impl Tokenizer {
    /// Reads `tokenizer.json`; encodings are truncated to `max_len` tokens, special tokens
    /// included.
    pub fn from_file(path: &Path, max_len: usize) -> Result<Self, EmbedError> {
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| {
            match e.downcast::<std::io::Error>() {
                Ok(source) => EmbedError::Io {
                    path: path.to_path_buf(),
                    source: *source,
                },
                Err(e) => EmbedError::Format {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                },
            }
        })?;
        Self::configure(inner, max_len).map_err(|message| EmbedError::Format {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Builds the tokenizer from the text of a `tokenizer.json`.
    pub fn from_json(text: &str, max_len: usize) -> Result<Self, String> {
        let inner: tokenizers::Tokenizer = text.parse().map_err(|e| format!("{e}"))?;
        Self::configure(inner, max_len)
    }

    fn configure(mut inner: tokenizers::Tokenizer, max_len: usize) -> Result<Self, String> {
        match inner.get_model() {
            ModelWrapper::WordPiece(wp) => {
                if wp.token_to_id(&wp.unk_token).is_none() {
                    return Err(format!("unk token {:?} not in vocab", wp.unk_token));
                }
            }
            _ => return Err("model type is not WordPiece".into()),
        }

        let added = inner
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(false));
        if max_len <= added {
            return Err(format!("max length {max_len} leaves no room for text"));
        }

        let pad_id = match inner.get_padding() {
            Some(p) => p.pad_id,
            None => inner
                .token_to_id("[PAD]")
                .ok_or("special token \"[PAD]\" not in vocab")?,
        };
        let pad_token = inner
            .get_padding()
            .map_or_else(|| "[PAD]".to_string(), |p| p.pad_token.clone());
        let padding = PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            direction: PaddingDirection::Right,
            pad_to_multiple_of: None,
            pad_id,
            pad_type_id: 0,
            pad_token,
        };

        inner
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| e.to_string())?;
        inner.with_padding(None);
        Ok(Self {
            inner,
            padding,
            max_len,
        })
    }

    /// Token ids of one text: `[CLS] pieces… [SEP]`, at most [`Self::max_len`] of them.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.encoding(text).get_ids().to_vec()
    }

    /// The full encoding of one text (ids, attention mask, …), truncated, not padded.
    pub fn encoding(&self, text: &str) -> Encoding {
        // A WordPiece model whose unknown token is in its vocabulary (checked when loaded)
        // has no failing input; nor have BERT's normaliser, pre-tokeniser and
        // post-processors, nor truncation with no stride.
        self.inner
            .encode(text, true)
            .expect("WordPiece encoding with [UNK] in the vocabulary cannot fail")
    }

    /// Pads `batch` to its longest encoding, with the pad id and attention mask 0.
    pub fn pad(&self, batch: &mut [Encoding]) {
        tokenizers::pad_encodings(batch, &self.padding).expect("padding cannot fail");
    }

    /// The most tokens one encoding has, special tokens included.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The id used to pad a batch (`[PAD]`).
    pub fn pad_id(&self) -> u32 {
        self.padding.pad_id
    }

    /// How many pieces the vocabulary has.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(false)
    }

    /// The `tokenizers` tokenizer itself, configured as described above.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn tiny_json() -> Value {
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
        serde_json::json!({
            "version": "1.0",
            // As all-MiniLM-L6-v2's: replaced by the caller's truncation and no padding.
            "truncation": {"max_length": 4, "strategy": "LongestFirst", "stride": 0},
            "padding": {"strategy": {"Fixed": 16}, "direction": "Right", "pad_to_multiple_of": null,
                        "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"},
            "added_tokens": [special("[PAD]", 0), special("[UNK]", 1), special("[CLS]", 2), special("[SEP]", 3), special("[MASK]", 4)],
            "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                           "strip_accents": null, "lowercase": true},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "post_processor": {"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                           {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                         {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                         {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
                "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                                   "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
            "decoder": null,
            "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                      "max_input_chars_per_word": 10, "vocab": vocab},
        })
    }

    fn tiny() -> Tokenizer {
        Tokenizer::from_json(&tiny_json().to_string(), 8).unwrap()
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
        assert_eq!(t.max_len(), 8);
        assert_eq!(t.encode("helloworldx"), vec![2, 1, 3]);
        assert_eq!(t.encode("hello[MASK]world"), vec![2, 5, 4, 6, 3]);
        assert_eq!(t.encode("[mask]"), vec![2, 1, 1, 1, 3]);
        let ids = t.encode("hello hello hello hello hello hello hello hello");
        assert_eq!(ids, vec![2, 5, 5, 5, 5, 5, 5, 3]);
    }

    #[test]
    fn batches_pad_to_the_longest() {
        let t = tiny();
        assert_eq!(t.pad_id(), 0);
        let mut batch = vec![t.encoding("hello"), t.encoding("hello, world!")];
        t.pad(&mut batch);
        assert_eq!(batch[0].get_ids(), &[2, 5, 3, 0, 0, 0]);
        assert_eq!(batch[0].get_attention_mask(), &[1, 1, 1, 0, 0, 0]);
        assert_eq!(batch[1].get_ids(), &[2, 5, 10, 6, 11, 3]);
        assert_eq!(batch[1].get_attention_mask(), &[1; 6]);
    }

    #[test]
    fn refuses_what_it_cannot_run() {
        assert!(Tokenizer::from_json(&tiny_json().to_string(), 2)
            .unwrap_err()
            .contains("no room"));
        let mut json = tiny_json();
        json["model"]["unk_token"] = "<unk>".into();
        assert!(Tokenizer::from_json(&json.to_string(), 8)
            .unwrap_err()
            .contains("unk token"));
    }
}
