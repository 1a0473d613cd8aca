//! Sentence embeddings on candle: all-MiniLM-L6-v2 (and BERT sentence encoders laid out
//! like it), computed as sentence-transformers computes them.
//!
//! What is here: the model folder's `tokenizer.json` run by Hugging Face's `tokenizers`
//! crate (`tokenizer`: truncation and padding set as sentence-transformers sets them), our
//! own BERT encoder over `model.safetensors` (`bert`), and [`Embedder`], which runs the
//! sentence-transformers pipeline of the model folder — tokenise with truncation at
//! `max_seq_length`, encode, mean-pool over the attention mask, L2-normalise — on batches
//! of any size. Checked against sentence-transformers on fixtures
//! (`tests/fixtures/minilm.json`). What is not: getting the model files (`shammie-hub`
//! pulls the folder), clustering or any study logic, a GPU path (inference runs on the CPU),
//! sentence pairs or token-type ids other than 0.

pub mod bert;
pub mod tokenizer;

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tokenizers::Encoding;

pub use bert::Precision;
pub use tokenizer::Tokenizer;

/// Texts per forward pass at most; texts are sorted by length first, and a batch's tokens
/// are packed without padding.
const BATCH: usize = 64;
/// Tokens per forward pass at most (beyond the first text's).
const BATCH_TOKENS: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("unsupported model: {0}")]
    Unsupported(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// A sentence encoder loaded from a sentence-transformers model folder.
pub struct Embedder {
    tokenizer: Tokenizer,
    model: bert::Bert,
    /// sentence-transformers' own `do_lower_case` (its `str.lower()` on the text): the text
    /// is lower-cased (`str::to_lowercase`) before the tokenizer sees it, whatever the
    /// tokenizer's own normaliser then does.
    lowercase_input: bool,
    normalize: bool,
}

impl Embedder {
    /// Loads a folder holding `config.json`, `tokenizer.json`, `model.safetensors` and the
    /// sentence-transformers files (`modules.json`, `sentence_bert_config.json`,
    /// `1_Pooling/config.json`), as `shammie models pull all-minilm-l6-v2` leaves it.
    ///
    /// Without `modules.json` the pipeline is taken to be mean pooling then normalisation;
    /// pooling other than the mean is refused.
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        Self::load_with(dir, Precision::F32)
    }

    /// [`Embedder::load`] with the encoder's matrix products at `precision`.
    pub fn load_with(dir: &Path, precision: Precision) -> Result<Self, EmbedError> {
        let config_path = dir.join("config.json");
        let config: bert::BertConfig =
            serde_json::from_value(read_json(&config_path)?).map_err(|e| EmbedError::Format {
                path: config_path.clone(),
                message: e.to_string(),
            })?;

        let st_config = optional_json(&dir.join("sentence_bert_config.json"))?;
        let max_seq_length = st_config
            .as_ref()
            .and_then(|c| c["max_seq_length"].as_u64())
            .map_or(config.max_position_embeddings, |n| n as usize)
            .min(config.max_position_embeddings);
        let lowercase_input = st_config
            .as_ref()
            .and_then(|c| c["do_lower_case"].as_bool())
            .unwrap_or(false);

        let modules = optional_json(&dir.join("modules.json"))?;
        let module_types: Vec<String> = modules
            .as_ref()
            .and_then(Value::as_array)
            .map(|ms| {
                ms.iter()
                    .filter_map(|m| m["type"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let normalize = modules.is_none() || module_types.iter().any(|t| t.ends_with(".Normalize"));
        if let Some(other) = module_types.iter().find(|t| {
            !t.ends_with(".Transformer") && !t.ends_with(".Pooling") && !t.ends_with(".Normalize")
        }) {
            return Err(EmbedError::Unsupported(format!(
                "sentence-transformers module {other}"
            )));
        }
        if let Some(pooling) = optional_json(&dir.join("1_Pooling").join("config.json"))? {
            let mode_on = |k: &str| pooling[k].as_bool().unwrap_or(false);
            let others = [
                "pooling_mode_cls_token",
                "pooling_mode_max_tokens",
                "pooling_mode_mean_sqrt_len_tokens",
            ];
            if !mode_on("pooling_mode_mean_tokens") || others.iter().any(|k| mode_on(k)) {
                return Err(EmbedError::Unsupported(
                    "pooling other than the mean of token embeddings".into(),
                ));
            }
        }

        let tokenizer = Tokenizer::from_file(&dir.join("tokenizer.json"), max_seq_length)?;
        let model = bert::Bert::load(config, &dir.join("model.safetensors"), precision)?;
        Ok(Self {
            tokenizer,
            model,
            lowercase_input,
            normalize,
        })
    }

    /// One embedding per text, in order, each [`Self::dim`] floats (unit length for
    /// all-MiniLM-L6-v2). Texts longer than the model's `max_seq_length` tokens are
    /// truncated, as sentence-transformers does. Results do not depend on how texts are
    /// batched.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings: Vec<Encoding> = texts
            .iter()
            .map(|t| self.tokenizer.encoding(&self.prepare(t)))
            .collect();
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| encodings[i].len());
        let mut batches = Vec::new();
        let mut rest = &order[..];
        while !rest.is_empty() {
            let mut take = 0;
            let mut tokens = 0;
            while take < rest.len() && take < BATCH {
                tokens += encodings[rest[take]].len();
                if take > 0 && tokens > BATCH_TOKENS {
                    break;
                }
                take += 1;
            }
            let (batch, next) = rest.split_at(take);
            batches.push(batch);
            rest = next;
        }

        // Batches go to threads as they free up; each runs on its own thread.
        let next = std::sync::atomic::AtomicUsize::new(0);
        let work = || -> Result<Vec<(usize, Vec<f32>)>, EmbedError> {
            let mut done = Vec::new();
            loop {
                let b = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(batch) = batches.get(b) else {
                    return Ok(done);
                };
                let ids: Vec<&[u32]> = batch.iter().map(|&i| encodings[i].get_ids()).collect();
                done.extend(batch.iter().copied().zip(self.embed_batch(&ids)?));
            }
        };
        let threads = shammie_local::threads::count().min(batches.len());
        let results = if threads <= 1 {
            vec![work()]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                    .collect()
            })
        };
        let mut out = vec![Vec::new(); texts.len()];
        for result in results {
            for (i, v) in result? {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// The length of an embedding (384 for all-MiniLM-L6-v2).
    pub fn dim(&self) -> usize {
        self.model.config().hidden_size
    }

    /// The token ids the model sees for `text`, `[CLS]` and `[SEP]` included.
    pub fn tokenize(&self, text: &str) -> Vec<u32> {
        self.tokenizer.encode(&self.prepare(text))
    }

    /// The text as sentence-transformers hands it to the tokenizer.
    fn prepare<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.lowercase_input {
            Cow::Owned(text.to_lowercase())
        } else {
            Cow::Borrowed(text)
        }
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// One forward pass over tokenised texts: the mean of each text's last hidden states,
    /// L2-normalised when the model's pipeline normalises (norm floored at 10⁻¹², as
    /// sentence-transformers floors it).
    fn embed_batch(&self, texts: &[&[u32]]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let h = self.dim();
        let hidden = self.model.forward(texts)?;
        let mut rows = hidden.chunks_exact(h);
        let mut out = Vec::with_capacity(texts.len());
        for ids in texts {
            let mut pooled = vec![0f32; h];
            for row in rows.by_ref().take(ids.len()) {
                for (p, &v) in pooled.iter_mut().zip(row) {
                    *p += v;
                }
            }
            let count = (ids.len() as f32).max(1e-9);
            pooled.iter_mut().for_each(|p| *p /= count);
            if self.normalize {
                let norm = pooled.iter().map(|p| p * p).sum::<f32>().sqrt().max(1e-12);
                pooled.iter_mut().for_each(|p| *p /= norm);
            }
            out.push(pooled);
        }
        Ok(out)
    }
}

/// Cosine similarity; 0 when either vector is all zeros. For unit-length embeddings this
/// is the dot product.
///
/// # Panics
/// When the lengths differ.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "cosine of vectors of different lengths");
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    (dot / (na.sqrt() * nb.sqrt())) as f32
}

fn read_json(path: &Path) -> Result<Value, EmbedError> {
    let text = std::fs::read_to_string(path).map_err(|source| EmbedError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| EmbedError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn optional_json(path: &Path) -> Result<Option<Value>, EmbedError> {
    if path.exists() {
        read_json(path).map(Some)
    } else {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::cosine;

    /// Front ends keep one embedder behind an `Arc` and use it from several threads.
    #[test]
    fn embedder_is_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<super::Embedder>();
    }

    #[test]
    fn cosine_basics() {
        assert!((cosine(&[1.0, 0.0], &[1.0, 0.0]) - 1.0).abs() < 1e-7);
        assert!(cosine(&[1.0, 0.0], &[0.0, 2.0]).abs() < 1e-7);
        assert!((cosine(&[1.0, 1.0], &[-2.0, -2.0]) + 1.0).abs() < 1e-7);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    }
}
