//! The saved adapter is what Shammie serves: read by `shammie_local::lora::Adapter` and
//! applied to the same tiny model on the inference path, it gives the logits of the white
//! box with the trained factors.

use std::io::Cursor;

use candle_core::quantized::gguf_file;
use candle_core::Device;
use shammie_local::gemma3::KvCache;
use shammie_local::lora::Adapter;
use shammie_local::model::LocalLm;

use crate::{examples, run_config, run_tiny_with, tiny_gguf, Tiny};

fn lm(bytes: &[u8]) -> LocalLm {
    let mut r = Cursor::new(bytes);
    let c = gguf_file::Content::read(&mut r).unwrap();
    LocalLm::load(&c, &mut r, &Device::Cpu).unwrap()
}

/// Logits at every position, (len × vocab) flattened.
fn served_logits(m: &LocalLm, ids: &[u32]) -> Vec<f32> {
    let mut cache = KvCache::new(m.layers());
    let h = m
        .forward_hidden(&mut [(ids, &mut cache)])
        .unwrap()
        .remove(0);
    crate::flat(&m.logits(&h).unwrap())
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Trained with LoRA dropout (0.3) and packing: the dropout is a training-time matter only,
/// recorded as `lora_dropout`; the white box evaluates without it, as the server does.
#[test]
fn a_saved_adapter_serves_the_trained_model() {
    check_served_adapter(tiny_gguf, "tiny-gemma3");
}

#[allow(clippy::print_stderr)] // reports what it measured (seen with --nocapture)
pub(crate) fn check_served_adapter(tiny: Tiny, name: &str) {
    let mut cfg = run_config(10, 3);
    cfg.lora.dropout = 0.3;
    cfg.pack_tokens = 64;
    let (_, wb, tr) = run_tiny_with(tiny, cfg, &examples());
    let tmp = tempfile::tempdir().unwrap();
    tr.lora.save_peft(tmp.path(), name).unwrap();
    let cfg: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("adapter_config.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(cfg["r"], 4);
    assert_eq!(cfg["lora_alpha"], 8.0);
    assert_eq!(cfg["lora_dropout"], 0.3);
    assert_eq!(cfg["base_model_name_or_path"], name);
    assert_eq!(
        cfg["target_modules"],
        serde_json::json!(["q_proj", "v_proj", "down_proj"])
    );
    let adapter = Adapter::read(tmp.path()).unwrap();
    assert_eq!(adapter.scale, 2.0);
    // 2 layers × 3 targets.
    assert_eq!(adapter.deltas.len(), 6);
    assert!(adapter.deltas.contains_key(&(1, "down_proj".to_string())));
    let bytes = tiny(4);
    let base = lm(&bytes);
    let mut served = lm(&bytes);
    assert_eq!(served.apply_adapter(&adapter, false).unwrap(), 6);
    let mut worst = 0f32;
    for ex in examples() {
        let white = crate::flat(&wb.forward(&ex.ids).unwrap().logits);
        let s = served_logits(&served, &ex.ids);
        let d = max_diff(&white, &s);
        worst = worst.max(d);
        assert!(d < 1e-4, "served vs white-box logits differ by {d}");
        let moved = max_diff(&served_logits(&base, &ex.ids), &s);
        assert!(moved > 1e-2, "the adapter changed nothing ({moved})");
    }
    eprintln!("{name}: served vs white-box logits, worst max |diff| = {worst:.2e}");
}
