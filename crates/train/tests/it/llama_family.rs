//! LoRA training on the Llama 3 / Qwen2 family: the checks of the Gemma 3 tests (`main.rs`,
//! `peft.rs`) on the tiny random Llama 3 (untied head, pairwise RoPE with Llama 3 frequency
//! factors, so `q_proj`'s LoRA rows are permuted inside the white box) and Qwen2 (q/k/v
//! biases, tied head) of `shammie_train::testing`, plus the base white box against the
//! inference path on the same files.

use std::io::Cursor;

use candle_core::quantized::gguf_file;
use candle_core::Device;
use shammie_local::gemma3::KvCache;
use shammie_local::model::LocalLm;
use shammie_train::testing::{tiny_llama_gguf, tiny_qwen2_gguf};

use crate::peft::check_served_adapter;
use crate::{check_lora_gradients, check_training, examples, flat, white_box, Tiny};

fn tiny_llama(seed: u64) -> Vec<u8> {
    tiny_llama_gguf(seed, false)
}

fn tiny_qwen2(seed: u64) -> Vec<u8> {
    tiny_qwen2_gguf(seed, false)
}

pub(crate) const MODELS: [(&str, Tiny); 2] = [("llama", tiny_llama), ("qwen2", tiny_qwen2)];

/// The untrained white box gives the inference path's logits at every position (F32
/// weights on both sides: within 1e-4), and the files are what they claim.
#[test]
#[allow(clippy::print_stderr)] // reports what it measured (seen with --nocapture)
fn the_white_box_is_the_served_model() {
    for (arch, tiny) in MODELS {
        let bytes = tiny(4);
        let wb = white_box(&bytes);
        assert_eq!(wb.cfg.arch, arch);
        let names: Vec<String> = wb.params().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names.iter().any(|n| n == "output.weight"), arch == "llama");
        assert_eq!(
            names.iter().any(|n| n == "blk.0.attn_q.bias"),
            arch == "qwen2"
        );
        let mut r = Cursor::new(&bytes);
        let c = gguf_file::Content::read(&mut r).unwrap();
        assert_eq!(
            c.tensor_infos.contains_key("rope_freqs.weight"),
            arch == "llama"
        );
        let lm = LocalLm::load(&c, &mut r, &Device::Cpu).unwrap();
        let mut worst = 0f32;
        for ex in examples() {
            let mut cache = KvCache::new(lm.layers());
            let h = lm
                .forward_hidden(&mut [(&ex.ids[..], &mut cache)])
                .unwrap()
                .remove(0);
            let served = flat(&lm.logits(&h).unwrap());
            let white = flat(&wb.forward(&ex.ids).unwrap().logits);
            let d = served
                .iter()
                .zip(&white)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            worst = worst.max(d);
        }
        eprintln!("{arch}: white box vs inference path, max |logit diff| = {worst:.2e}");
        assert!(worst < 1e-4, "{arch}: {worst}");
    }
}

#[test]
fn llama_lora_gradients_match_finite_differences() {
    check_lora_gradients(tiny_llama);
}

#[test]
fn qwen2_lora_gradients_match_finite_differences() {
    check_lora_gradients(tiny_qwen2);
}

#[test]
fn llama_training_reduces_the_loss_reproducibly() {
    check_training(tiny_llama);
}

#[test]
fn qwen2_training_reduces_the_loss_reproducibly() {
    check_training(tiny_qwen2);
}

#[test]
fn a_saved_llama_adapter_serves_the_trained_model() {
    check_served_adapter(tiny_llama, "tiny-llama");
}

#[test]
fn a_saved_qwen2_adapter_serves_the_trained_model() {
    check_served_adapter(tiny_qwen2, "tiny-qwen2");
}
