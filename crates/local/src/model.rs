//! The model families the local runtime serves, behind one type: the worker and the
//! provider never care which architecture a GGUF holds.

use std::io::{Read, Seek};

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};

use crate::gemma3::{Gemma3, KvCache};
use crate::llama::Llama;
use crate::LocalError;

pub enum LocalLm {
    Gemma3(Gemma3),
    /// Llama 3 and Qwen2/Qwen2.5.
    Llama(Llama),
}

impl LocalLm {
    /// Loads whichever supported architecture `general.architecture` names.
    pub fn load<R: Read + Seek>(
        content: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Self, LocalError> {
        let arch = crate::weights::architecture(content);
        match arch.as_str() {
            "gemma3" => Ok(LocalLm::Gemma3(Gemma3::load(content, reader, device)?)),
            "llama" | "qwen2" => Ok(LocalLm::Llama(Llama::load(content, reader, device)?)),
            other => Err(LocalError::Unsupported(format!(
                "architecture `{other}`; the local runtime reads gemma3, llama and qwen2"
            ))),
        }
    }

    /// Adds a LoRA adapter's deltas to the model's projections: as a separate low-rank
    /// path, or (`merge`) into the weights.
    pub fn apply_adapter(
        &mut self,
        a: &crate::lora::Adapter,
        merge: bool,
    ) -> Result<usize, LocalError> {
        match self {
            LocalLm::Gemma3(m) => m.apply_adapter(a, merge),
            LocalLm::Llama(m) => m.apply_adapter(a, merge),
        }
    }

    pub fn layers(&self) -> usize {
        match self {
            LocalLm::Gemma3(m) => m.cfg.layers,
            LocalLm::Llama(m) => m.cfg.layers,
        }
    }

    pub fn context(&self) -> usize {
        match self {
            LocalLm::Gemma3(m) => m.cfg.context,
            LocalLm::Llama(m) => m.cfg.context,
        }
    }

    pub fn forward_hidden(
        &self,
        seqs: &mut [(&[u32], &mut KvCache)],
    ) -> candle_core::Result<Vec<Tensor>> {
        match self {
            LocalLm::Gemma3(m) => m.forward_hidden(seqs),
            LocalLm::Llama(m) => m.forward_hidden(seqs),
        }
    }

    /// Layer `li`'s attention window (`None`: it attends to every earlier position).
    pub fn window(&self, li: usize) -> Option<usize> {
        match self {
            LocalLm::Gemma3(m) => m.window(li),
            LocalLm::Llama(_) => None,
        }
    }

    /// Whether `cache` can be cut back to its first `len` tokens (see `KvCache::truncated`).
    pub fn can_truncate(&self, cache: &KvCache, len: usize) -> bool {
        cache.can_truncate(len, |li| self.window(li))
    }

    pub fn truncate(&self, cache: &KvCache, len: usize) -> candle_core::Result<KvCache> {
        cache.truncated(len, |li| self.window(li))
    }

    pub fn logits(&self, hidden: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            LocalLm::Gemma3(m) => m.logits(hidden),
            LocalLm::Llama(m) => m.logits(hidden),
        }
    }
}
