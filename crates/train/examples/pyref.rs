//! Files for the Python (PyTorch / PEFT) references of `crates/train/tests/reference/`
//! and `bench/train/`:
//!
//! - `pyref tiny-gguf OUT.gguf SEED LAYERS`: the tiny random Gemma 3 of
//!   `shammie_train::testing` (no tokenizer), as the reference script reads it;
//! - `pyref tokens MODEL.gguf DATA.jsonl OUT.json`: chat JSONL rendered and tokenised as
//!   `shammie train sft` does (`[{"ids": [...], "train": [...]}, ...]`), so a Python side
//!   trains on exactly the same tokens and loss mask;
//! - `pyref logits MODEL.gguf IDS.json OUTDIR [ADAPTER_DIR]`: for each id list in IDS.json
//!   (a list of lists), the logits at every position from the white box
//!   (`OUTDIR/white-K.f32`) and from the served quantized path (`OUTDIR/served-K.f32`),
//!   with the PEFT adapter when given; raw little-endian f32, (len × vocab) row-major.

use std::io::{BufReader, Cursor};
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor, Var};
use shammie_local::gemma3::KvCache;
use shammie_local::lora::Adapter;
use shammie_local::model::LocalLm;
use shammie_local::prompt::template_for;
use shammie_local::white_box::{LoraVars, WhiteBox};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["tiny-gguf", out, seed, layers] => {
            let bytes =
                shammie_train::testing::tiny_gemma3_gguf_layers(seed.parse()?, false, layers.parse()?);
            std::fs::write(out, bytes).with_context(|| out.to_string())?;
        }
        ["tokens", model, data, out] => tokens(Path::new(model), Path::new(data), Path::new(out))?,
        ["logits", model, ids, out] => logits(Path::new(model), Path::new(ids), Path::new(out), None)?,
        ["logits", model, ids, out, adapter] => logits(
            Path::new(model),
            Path::new(ids),
            Path::new(out),
            Some(Path::new(adapter)),
        )?,
        _ => bail!(
            "usage: pyref tiny-gguf OUT SEED LAYERS | tokens MODEL DATA OUT | logits MODEL IDS OUTDIR [ADAPTER]"
        ),
    }
    Ok(())
}

fn read_gguf(path: &Path) -> Result<(gguf_file::Content, BufReader<std::fs::File>)> {
    let f = std::fs::File::open(path).with_context(|| path.display().to_string())?;
    let mut r = BufReader::new(f);
    let c = gguf_file::Content::read(&mut r).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((c, r))
}

fn tokens(model: &Path, data: &Path, out: &Path) -> Result<()> {
    let (c, _) = read_gguf(model)?;
    let tok = shammie_tokenizer::Tokenizer::from_gguf(&c).map_err(|e| anyhow::anyhow!("{e}"))?;
    let format = template_for(&tok, "model")?;
    let examples = shammie_train::chat::load_chat_jsonl(data, &format, &tok)?;
    let v: Vec<serde_json::Value> = examples
        .iter()
        .map(|e| serde_json::json!({"ids": e.ids, "train": e.train}))
        .collect();
    std::fs::write(out, serde_json::to_string(&v)?)?;
    Ok(())
}

fn write_f32(path: &Path, t: &Tensor) -> Result<()> {
    let v: Vec<f32> = t.flatten_all()?.to_vec1()?;
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).with_context(|| path.display().to_string())?;
    Ok(())
}

fn logits(model: &Path, ids: &Path, out: &Path, adapter: Option<&Path>) -> Result<()> {
    let seqs: Vec<Vec<u32>> = serde_json::from_str(&std::fs::read_to_string(ids)?)?;
    let adapter = adapter.map(Adapter::read).transpose()?;
    std::fs::create_dir_all(out)?;
    let dev = Device::Cpu;
    // White box, with the adapter's factors as (untrained) LoRA vars.
    let (c, mut r) = read_gguf(model)?;
    let mut wb = WhiteBox::load(&c, &mut r, &dev)?;
    if let Some(a) = &adapter {
        for ((layer, module), d) in &a.deltas {
            let vars = LoraVars {
                a: Var::from_vec(d.a.clone(), (a.rank, d.inn), &dev)?,
                b: Var::from_vec(d.b.clone(), (d.out, a.rank), &dev)?,
                scale: a.scale as f64,
            };
            wb.set_lora(*layer, module, Some(vars))?;
        }
    }
    for (k, s) in seqs.iter().enumerate() {
        write_f32(&out.join(format!("white-{k}.f32")), &wb.forward(s)?.logits)?;
    }
    drop(wb);
    // The served (quantized) path.
    let bytes = std::fs::read(model)?;
    let mut r = Cursor::new(&bytes);
    let c = gguf_file::Content::read(&mut r).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut lm = LocalLm::load(&c, &mut r, &dev)?;
    if let Some(a) = &adapter {
        lm.apply_adapter(a, false)?;
    }
    for (k, s) in seqs.iter().enumerate() {
        let mut cache = KvCache::new(lm.layers());
        let h = lm.forward_hidden(&mut [(s, &mut cache)])?.remove(0);
        write_f32(&out.join(format!("served-{k}.f32")), &lm.logits(&h)?)?;
    }
    Ok(())
}
