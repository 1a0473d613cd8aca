//! A row's numbers never depend on what else is in its forward pass or on how its prompt
//! was split, bit for bit, on the quantized kernels (`qmm`), attention and row operations
//! the models actually run: Gemma 3 270M Q4_K_M (Q8_0 and Q4_K products) and the tiny
//! Llama and Qwen2 models with their weights quantized to Q8_0 here (grouped-query
//! attention, Qwen2's biases).

use crate::common;

use std::io::{BufReader, Cursor};

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::Device;
use shammie_local::gemma3::KvCache;
use shammie_local::model::LocalLm;

fn rows(t: &candle_core::Tensor) -> Vec<Vec<u32>> {
    t.to_vec2::<f32>()
        .unwrap()
        .into_iter()
        .map(|r| r.into_iter().map(f32::to_bits).collect())
        .collect()
}

/// Final hidden states of every position of each prompt read alone in one pass.
fn alone(m: &LocalLm, prompts: &[Vec<u32>]) -> Vec<Vec<Vec<u32>>> {
    prompts
        .iter()
        .map(|p| {
            let mut cache = KvCache::new(m.layers());
            rows(&m.forward_hidden(&mut [(&p[..], &mut cache)]).unwrap()[0])
        })
        .collect()
}

fn check(m: &LocalLm, prompts: &[Vec<u32>], what: &str) {
    assert_eq!(prompts.len(), 7);
    let want = alone(m, prompts);
    // All seven in one pass.
    let mut caches: Vec<KvCache> = prompts.iter().map(|_| KvCache::new(m.layers())).collect();
    let mut batch: Vec<(&[u32], &mut KvCache)> = prompts
        .iter()
        .zip(caches.iter_mut())
        .map(|(p, c)| (&p[..], c))
        .collect();
    let got = m.forward_hidden(&mut batch).unwrap();
    for (i, h) in got.iter().enumerate() {
        assert!(rows(h) == want[i], "{what}: prompt {i} in a batch of 7");
    }
    // Each prompt in two passes, cut early, in the middle and before its last token (the
    // last pass is then a one-row decoding step), beside another prompt in the second.
    for (i, p) in prompts.iter().enumerate() {
        for cut in [1, p.len() / 3, p.len() - 1] {
            if cut == 0 || cut >= p.len() {
                continue;
            }
            let mut cache = KvCache::new(m.layers());
            let first = m.forward_hidden(&mut [(&p[..cut], &mut cache)]).unwrap();
            let other = &prompts[(i + 1) % prompts.len()];
            let mut other_cache = KvCache::new(m.layers());
            let second = m
                .forward_hidden(&mut [(&other[..], &mut other_cache), (&p[cut..], &mut cache)])
                .unwrap();
            let mut joined = rows(&first[0]);
            joined.extend(rows(&second[1]));
            assert!(joined == want[i], "{what}: prompt {i} cut at {cut}");
            assert!(rows(&second[0]) == want[(i + 1) % prompts.len()]);
        }
    }
    // The output head: one row alone or among the others.
    let last: Vec<candle_core::Tensor> = got
        .iter()
        .map(|h| h.narrow(0, h.dim(0).unwrap() - 1, 1).unwrap())
        .collect();
    let all = m
        .logits(&candle_core::Tensor::cat(&last, 0).unwrap())
        .unwrap();
    for (i, l) in last.iter().enumerate() {
        let one = m.logits(l).unwrap();
        assert!(
            rows(&one)[0] == rows(&all)[i],
            "{what}: logits of prompt {i}"
        );
    }
}

fn prompts(lens: [usize; 7], vocab: u32, seed: u32) -> Vec<Vec<u32>> {
    lens.iter()
        .enumerate()
        .map(|(i, &n)| {
            (0..n as u32)
                .map(|j| (j * 37 + i as u32 * 101 + seed) % (vocab - 10) + 5)
                .collect()
        })
        .collect()
}

#[test]
fn gemma3_rows_do_not_depend_on_batch_or_split() {
    let Some(path) = common::model_path_or_skip() else {
        return;
    };
    let mut f = BufReader::new(std::fs::File::open(&path).unwrap());
    let content = gguf_file::Content::read(&mut f).unwrap();
    let m = LocalLm::load(&content, &mut f, &Device::Cpu).unwrap();
    // One prompt crosses the 512-token window of the local layers.
    check(
        &m,
        &prompts([5, 13, 40, 77, 2, 120, 530], 20_000, 3),
        "gemma3",
    );
}

/// The tiny F32 fixture with every 2-D weight quantized to Q8_0.
fn quantized(bytes: &[u8]) -> LocalLm {
    let mut r = Cursor::new(bytes);
    let content = gguf_file::Content::read(&mut r).unwrap();
    let mut tensors = Vec::new();
    for name in content.tensor_infos.keys() {
        let t = content.tensor(&mut r, name, &Device::Cpu).unwrap();
        let t = if t.shape().dims().len() == 2 {
            QTensor::quantize(&t.dequantize(&Device::Cpu).unwrap(), GgmlDType::Q8_0).unwrap()
        } else {
            t
        };
        tensors.push((name.clone(), t));
    }
    let metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut out = Cursor::new(Vec::new());
    gguf_file::write(&mut out, &metadata, &refs).unwrap();
    let bytes = out.into_inner();
    let mut r = Cursor::new(&bytes[..]);
    let content = gguf_file::Content::read(&mut r).unwrap();
    LocalLm::load(&content, &mut r, &Device::Cpu).unwrap()
}

#[test]
fn llama_family_rows_do_not_depend_on_batch_or_split_on_quantized_weights() {
    for (name, bytes) in [
        (
            "llama",
            &include_bytes!("../fixtures/llama_family_llama.gguf")[..],
        ),
        (
            "qwen2",
            &include_bytes!("../fixtures/llama_family_qwen2.gguf")[..],
        ),
    ] {
        let m = quantized(bytes);
        check(&m, &prompts([5, 13, 40, 77, 2, 120, 200], 256, 7), name);
    }
}
