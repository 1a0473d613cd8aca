//! LoRA adapters in PEFT's layout, applied at load, against an independent computation:
//! the same deltas merged into the weights of a copy of the GGUF (`W + scale·B·A`, with
//! the query/key rows of a `llama` file interleaved per head as llama.cpp's conversion
//! does), which must give the same logits as the base model with the adapter. Tiny random
//! F32 models (`tests/fixtures/llama_family_*.gguf`), so merging loses nothing.

use std::collections::HashMap;
use std::io::Cursor;
use std::path::Path;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use shammie_local::llama::KvCache;
use shammie_local::lora::Adapter;
use shammie_local::model::LocalLm;

pub(crate) const FIXTURES: [(&str, &[u8]); 2] = [
    (
        "llama",
        include_bytes!("../fixtures/llama_family_llama.gguf"),
    ),
    (
        "qwen2",
        include_bytes!("../fixtures/llama_family_qwen2.gguf"),
    ),
];

/// (HF module, GGUF tensor) pairs.
const TARGETS: [(&str, &str, &str); 7] = [
    ("self_attn", "q_proj", "attn_q"),
    ("self_attn", "k_proj", "attn_k"),
    ("self_attn", "v_proj", "attn_v"),
    ("self_attn", "o_proj", "attn_output"),
    ("mlp", "gate_proj", "ffn_gate"),
    ("mlp", "up_proj", "ffn_up"),
    ("mlp", "down_proj", "ffn_down"),
];

fn md_u32(c: &gguf_file::Content, key: &str) -> usize {
    c.metadata[key].to_u32().unwrap() as usize
}

/// Writes a random rank-`r` adapter for every projection of every layer into `dir`, in
/// PEFT's layout, and returns the deltas `scale·B·A` in Hugging Face's row order.
pub(crate) fn write_adapter(
    dir: &Path,
    c: &gguf_file::Content,
    r: usize,
    alpha: f64,
    seed: u64,
) -> HashMap<String, Vec<f32>> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let layers = md_u32(c, &format!("{}.block_count", arch(c)));
    let mut tensors = HashMap::new();
    let mut deltas = HashMap::new();
    let scale = (alpha / r as f64) as f32;
    for i in 0..layers {
        for (block, hf, gg) in TARGETS {
            let name = format!("blk.{i}.{gg}.weight");
            let dims = c.tensor_infos[&name].shape.dims().to_vec();
            // GGUF dims are (out, in) once loaded as a matrix.
            let (out, inn) = (dims[0], dims[1]);
            let a: Vec<f32> = (0..r * inn).map(|_| rng.gen_range(-0.1..0.1)).collect();
            let b: Vec<f32> = (0..out * r).map(|_| rng.gen_range(-0.1..0.1)).collect();
            let key = format!("base_model.model.model.layers.{i}.{block}.{hf}");
            tensors.insert(
                format!("{key}.lora_A.weight"),
                Tensor::from_vec(a.clone(), (r, inn), &Device::Cpu).unwrap(),
            );
            tensors.insert(
                format!("{key}.lora_B.weight"),
                Tensor::from_vec(b.clone(), (out, r), &Device::Cpu).unwrap(),
            );
            let mut d = vec![0f32; out * inn];
            for o in 0..out {
                for j in 0..inn {
                    let mut s = 0f32;
                    for k in 0..r {
                        s += b[o * r + k] * a[k * inn + j];
                    }
                    d[o * inn + j] = scale * s;
                }
            }
            deltas.insert(name, d);
        }
    }
    std::fs::create_dir_all(dir).unwrap();
    candle_core::safetensors::save(&tensors, dir.join("adapter_model.safetensors")).unwrap();
    let cfg = serde_json::json!({
        "peft_type": "LORA", "r": r, "lora_alpha": alpha, "bias": "none",
        "target_modules": TARGETS.iter().map(|t| t.1).collect::<Vec<_>>(),
    });
    std::fs::write(dir.join("adapter_config.json"), cfg.to_string()).unwrap();
    deltas
}

fn arch(c: &gguf_file::Content) -> String {
    c.metadata["general.architecture"]
        .to_string()
        .unwrap()
        .clone()
}

/// llama.cpp's conversion of a `llama` query/key weight, as it writes it:
/// `w.reshape(heads, 2, hd/2, cols).swapaxes(1, 2)` — row (h, k, j) moves to (h, j, k).
fn permute_like_convert(w: &[f32], heads: usize, cols: usize) -> Vec<f32> {
    let rows = w.len() / cols;
    let hd = rows / heads;
    let mut out = vec![0f32; w.len()];
    for h in 0..heads {
        for k in 0..2 {
            for j in 0..hd / 2 {
                let from = (h * hd) + k * (hd / 2) + j;
                let to = (h * hd) + j * 2 + k;
                out[to * cols..(to + 1) * cols].copy_from_slice(&w[from * cols..(from + 1) * cols]);
            }
        }
    }
    out
}

/// A copy of the GGUF with every delta added to its weight (query/key deltas of a `llama`
/// file permuted as the conversion permutes weights, unless `permute` is false).
pub(crate) fn merged(bytes: &[u8], deltas: &HashMap<String, Vec<f32>>, permute: bool) -> Vec<u8> {
    let mut r = Cursor::new(bytes);
    let c = gguf_file::Content::read(&mut r).unwrap();
    let is_llama = permute && arch(&c) == "llama";
    let heads = md_u32(&c, &format!("{}.attention.head_count", arch(&c)));
    let kv_heads = md_u32(&c, &format!("{}.attention.head_count_kv", arch(&c)));
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    for name in c.tensor_infos.keys() {
        let t = c.tensor(&mut r, name, &Device::Cpu).unwrap();
        let t = match deltas.get(name) {
            None => t,
            Some(d) => {
                let w = t.dequantize(&Device::Cpu).unwrap();
                let (rows, cols) = w.dims2().unwrap();
                let mut d = d.clone();
                if is_llama && name.ends_with("attn_q.weight") {
                    d = permute_like_convert(&d, heads, cols);
                } else if is_llama && name.ends_with("attn_k.weight") {
                    d = permute_like_convert(&d, kv_heads, cols);
                }
                let d = Tensor::from_vec(d, (rows, cols), &Device::Cpu).unwrap();
                QTensor::quantize(&(w + d).unwrap(), GgmlDType::F32).unwrap()
            }
        };
        tensors.push((name.clone(), t));
    }
    let md: Vec<(&str, &gguf_file::Value)> =
        c.metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut out = Cursor::new(Vec::new());
    gguf_file::write(&mut out, &md, &ts).unwrap();
    out.into_inner()
}

fn load(bytes: &[u8]) -> LocalLm {
    let mut r = Cursor::new(bytes);
    let c = gguf_file::Content::read(&mut r).unwrap();
    LocalLm::load(&c, &mut r, &Device::Cpu).unwrap()
}

fn logits(m: &LocalLm, ids: &[u32]) -> Vec<f32> {
    let mut cache = KvCache::new(m.layers());
    let h = m
        .forward_hidden(&mut [(ids, &mut cache)])
        .unwrap()
        .remove(0);
    let n = h.dim(0).unwrap();
    m.logits(&h.narrow(0, n - 1, 1).unwrap())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn an_adapter_gives_the_logits_of_its_merged_weights() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, bytes) in FIXTURES {
        let c = gguf_file::Content::read(&mut Cursor::new(bytes)).unwrap();
        let dir = tmp.path().join(name);
        let deltas = write_adapter(&dir, &c, 4, 8.0, 11);
        let adapter = Adapter::read(&dir).unwrap();
        assert_eq!(adapter.scale, 2.0);
        let mut adapted = load(bytes);
        assert_eq!(
            adapted.apply_adapter(&adapter, false).unwrap(),
            deltas.len()
        );
        // Merged into the (F32) weights instead: the same model.
        let mut merged_in = load(bytes);
        merged_in.apply_adapter(&adapter, true).unwrap();
        let reference = load(&merged(bytes, &deltas, true));
        let base = load(bytes);
        for ids in [vec![1u32, 5, 9, 2], vec![3u32; 7]] {
            let (a, m, b) = (
                logits(&adapted, &ids),
                logits(&reference, &ids),
                logits(&base, &ids),
            );
            let d = max_diff(&a, &m);
            assert!(d < 1e-4, "{name}: adapter vs merged weights differ by {d}");
            let d = max_diff(&logits(&merged_in, &ids), &m);
            assert!(d < 1e-4, "{name}: +merge vs merged weights differ by {d}");
            // And the adapter does change the model (else the check above proves nothing).
            assert!(
                max_diff(&a, &b) > 1e-2,
                "{name}: the adapter changed nothing"
            );
        }
        // The query/key permutation matters on `llama` files: merged without it, the
        // logits differ (a loader that forgot it would be caught above).
        if name == "llama" {
            let unpermuted = load(&merged(bytes, &deltas, false));
            let ids = [1u32, 5, 9, 2];
            let d = max_diff(&logits(&adapted, &ids), &logits(&unpermuted, &ids));
            assert!(d > 1e-3, "the permutation had no effect ({d})");
        }
    }
}

#[test]
fn bad_adapters_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let e = Adapter::read(tmp.path()).unwrap_err().to_string();
    assert!(e.contains("adapter_config.json"), "{e}");
    let c = gguf_file::Content::read(&mut Cursor::new(FIXTURES[0].1)).unwrap();
    write_adapter(tmp.path(), &c, 4, 8.0, 1);
    std::fs::write(
        tmp.path().join("adapter_config.json"),
        r#"{"r": 4, "lora_alpha": 8, "use_dora": true}"#,
    )
    .unwrap();
    let e = Adapter::read(tmp.path()).unwrap_err().to_string();
    assert!(e.contains("use_dora"), "{e}");
    std::fs::write(
        tmp.path().join("adapter_config.json"),
        r#"{"r": 8, "lora_alpha": 8}"#,
    )
    .unwrap();
    let e = Adapter::read(tmp.path()).unwrap_err().to_string();
    assert!(e.contains("r = 8"), "{e}");
}

/// A model with an adapter is a different endpoint (so a different response-cache key)
/// from its base and from a model with another adapter, and says which adapter it has.
#[test]
fn an_adapter_is_part_of_the_models_identity() {
    use shammie_local::provider::LocalModel;
    use shammie_models::Model;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llama_family_llama.gguf");
    let c = gguf_file::Content::read(&mut Cursor::new(FIXTURES[0].1)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (d1, d2) = (tmp.path().join("one"), tmp.path().join("two"));
    write_adapter(&d1, &c, 2, 4.0, 1);
    write_adapter(&d2, &c, 2, 4.0, 2);
    let (a1, a2) = (Adapter::read(&d1).unwrap(), Adapter::read(&d2).unwrap());
    let limits = Default::default();
    let base = LocalModel::load("tiny", &path, limits).unwrap();
    let m1 = LocalModel::load_with("tiny", &path, limits, Some(&a1)).unwrap();
    let m2 = LocalModel::load_with("tiny", &path, limits, Some(&a2)).unwrap();
    assert!(m1.endpoint().contains(&a1.sha256), "{}", m1.endpoint());
    assert_ne!(m1.endpoint(), base.endpoint());
    assert_ne!(m1.endpoint(), m2.endpoint());
    assert!(m1.name().starts_with("local:tiny+lora="), "{}", m1.name());
    let req = shammie_core::GenerateRequest::user("Hi", 1);
    let cache_keys: std::collections::HashSet<String> = [&base, &m1, &m2]
        .iter()
        .map(|m| shammie_models::cache_key(m.endpoint(), &req))
        .collect();
    assert_eq!(cache_keys.len(), 3);
}

/// Gemma 3 270M (the default model) with an adapter on every projection of two layers:
/// a zero adapter (B = 0) changes nothing, bit for bit, so the adapter path adds exactly
/// its delta; a random one changes the scores of given continuations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adapters_on_the_default_model() {
    use shammie_local::provider::LocalModel;
    use shammie_models::Model;
    let Some(path) = crate::common::model_path_or_skip() else {
        return;
    };
    let mut f = std::fs::File::open(&path).unwrap();
    let c = gguf_file::Content::read(&mut f).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let write = |dir: &Path, zero_b: bool, rng: &mut rand_chacha::ChaCha8Rng| {
        let r = 2;
        let mut tensors = HashMap::new();
        for i in [0usize, 9] {
            for (block, hf, gg) in TARGETS {
                let dims = c.tensor_infos[&format!("blk.{i}.{gg}.weight")]
                    .shape
                    .dims()
                    .to_vec();
                let (out, inn) = (dims[0], dims[1]);
                let a: Vec<f32> = (0..r * inn).map(|_| rng.gen_range(-0.05..0.05)).collect();
                let b: Vec<f32> = (0..out * r)
                    .map(|_| {
                        if zero_b {
                            0.0
                        } else {
                            rng.gen_range(-0.05..0.05)
                        }
                    })
                    .collect();
                let key = format!("base_model.model.model.layers.{i}.{block}.{hf}");
                let t =
                    |v: Vec<f32>, s: (usize, usize)| Tensor::from_vec(v, s, &Device::Cpu).unwrap();
                tensors.insert(format!("{key}.lora_A.weight"), t(a, (r, inn)));
                tensors.insert(format!("{key}.lora_B.weight"), t(b, (out, r)));
            }
        }
        std::fs::create_dir_all(dir).unwrap();
        candle_core::safetensors::save(&tensors, dir.join("adapter_model.safetensors")).unwrap();
        std::fs::write(
            dir.join("adapter_config.json"),
            r#"{"r": 2, "lora_alpha": 16}"#,
        )
        .unwrap();
        Adapter::read(dir).unwrap()
    };
    let zero = write(&tmp.path().join("zero"), true, &mut rng);
    let random = write(&tmp.path().join("random"), false, &mut rng);
    assert_eq!(zero.deltas.len(), 14);
    let limits = Default::default();
    let base = LocalModel::load("gemma-3-270m", &path, limits).unwrap();
    let with_zero = LocalModel::load_with("gemma-3-270m", &path, limits, Some(&zero)).unwrap();
    let with_random = LocalModel::load_with("gemma-3-270m", &path, limits, Some(&random)).unwrap();
    let req = shammie_core::GenerateRequest::user("Is the sky blue? Answer yes or no.", 1)
        .scoring(vec![" yes".into(), " no".into(), " maybe".into()]);
    let scores = |c: shammie_core::Completion| -> Vec<f64> {
        c.continuations.unwrap().iter().map(|s| s.logprob).collect()
    };
    let merged =
        LocalModel::load_adapter("gemma-3-270m", &path, limits, Some(&random), true).unwrap();
    assert!(merged.endpoint().ends_with(" merged") && merged.name().ends_with("+merge"));
    let b = scores(base.generate(&req).await.unwrap());
    let z = scores(with_zero.generate(&req).await.unwrap());
    let r = scores(with_random.generate(&req).await.unwrap());
    let m = scores(merged.generate(&req).await.unwrap());
    assert_eq!(b, z, "a zero adapter must change nothing");
    // Merged into Q8_0 weights: the adapter's effect, up to the re-quantization of those
    // projections — which merging a zero adapter measures alone.
    let zero_merged =
        LocalModel::load_adapter("gemma-3-270m", &path, limits, Some(&zero), true).unwrap();
    let zm = scores(zero_merged.generate(&req).await.unwrap());
    let dist = |x: &[f64], y: &[f64]| {
        x.iter()
            .zip(y)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
    };
    let requant = dist(&zm, &b);
    let off = dist(&m, &r);
    assert!(requant > 0.0, "re-quantizing changed nothing");
    assert!(
        off < 2.0 * requant + 1e-3,
        "merged scores are {off} from the adapter path's; re-quantization alone moves them {requant}"
    );
    let moved = b
        .iter()
        .zip(&r)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    assert!(moved > 1e-3, "the adapter changed nothing ({moved})");
}
