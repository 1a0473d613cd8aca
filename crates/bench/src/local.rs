//! `shammie-bench local`: the embedded engine against llama.cpp (llama-cpp-python) on the
//! same GGUF, the same token ids and the same thread count, each in its own process (peak
//! memory from `wait4`). Measures prompt tokens/s, single-sequence decode tokens/s, and a
//! study-shaped workload: N generations of M tokens plus K continuation scorings.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use shammie_kit::jsonl::Origin;
use shammie_local::gemma3::KvCache;
use shammie_local::model::LocalLm;
use shammie_local::sampling::{argmax, SamplingParams};
use shammie_local::worker::{BatchLimits, GenRequest, ScoreRequest, Worker};
use shammie_tokenizer::Tokenizer;

#[derive(clap::Args)]
pub(crate) struct LocalArgs {
    /// The GGUF file [default: the pulled gemma-3-270m].
    #[arg(long)]
    gguf: Option<PathBuf>,
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Python with llama-cpp-python installed (bench/llama_cpp/local_bench.py runs in it).
    #[arg(long)]
    llama_python: Option<PathBuf>,
    #[arg(long, default_value_t = 64)]
    gen_prompts: usize,
    #[arg(long, default_value_t = 32)]
    gen_tokens: usize,
    /// Continuation scorings (two options per question).
    #[arg(long, default_value_t = 500)]
    scorings: usize,
    #[arg(long, default_value_t = 64)]
    decode_tokens: usize,
    /// Internal: run Shammie's side on a workload file and print JSON.
    #[arg(long, hide = true)]
    child: Option<PathBuf>,
}

#[derive(Serialize, Deserialize)]
struct Workload {
    short_prompt: Vec<u32>,
    long_prompt: Vec<u32>,
    decode_tokens: usize,
    gen_prompts: Vec<Vec<u32>>,
    gen_tokens: usize,
    score_prompts: Vec<Vec<u32>>,
    score_options: Vec<Vec<Vec<u32>>>,
}

fn default_gguf() -> PathBuf {
    PathBuf::from(std::env::var("HOME").unwrap_or_default())
        .join(".cache/shammie/models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf")
}

fn load(path: &Path) -> Result<(LocalLm, Tokenizer)> {
    let mut f =
        BufReader::new(std::fs::File::open(path).with_context(|| path.display().to_string())?);
    let content = gguf_file::Content::read(&mut f)?;
    let tok = Tokenizer::from_gguf(&content)?;
    Ok((LocalLm::load(&content, &mut f, &Device::Cpu)?, tok))
}

/// The questions of the built-in `risk-seeking` evaluation (constitution/traits data).
fn questions() -> Vec<String> {
    let data = shammie_study_constitution::evals::builtin()
        .into_iter()
        .find_map(|s| match s.origin {
            Origin::Embedded(_, text) if s.name == "risk-seeking" => Some(text),
            _ => None,
        })
        .expect("the built-in risk-seeking set");
    data.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v["question"].as_str().unwrap_or("").to_string())
        .collect()
}

fn workload(tok: &Tokenizer, a: &LocalArgs) -> Workload {
    let qs = questions();
    let fmt = |q: &str| format!("Human: {q}\n\nAnswer with just \"Yes\" or \"No\".\n\nAssistant:");
    let long: String = qs
        .iter()
        .take(12)
        .map(|q| fmt(q))
        .collect::<Vec<_>>()
        .join("\n\n");
    let long_ids = tok.encode(&long, true);
    let n_q = a.scorings.div_ceil(2);
    Workload {
        short_prompt: tok.encode(&fmt(&qs[0]), true),
        long_prompt: long_ids[..long_ids.len().min(256)].to_vec(),
        decode_tokens: a.decode_tokens,
        gen_prompts: qs
            .iter()
            .cycle()
            .take(a.gen_prompts)
            .map(|q| tok.encode(&fmt(q), true))
            .collect(),
        gen_tokens: a.gen_tokens,
        score_prompts: qs
            .iter()
            .cycle()
            .skip(100)
            .take(n_q)
            .map(|q| tok.encode(&fmt(q), true))
            .collect(),
        score_options: (0..n_q)
            .map(|_| vec![tok.encode(" Yes", false), tok.encode(" No", false)])
            .collect(),
    }
}

/// Shammie's side, in the child process.
fn child(path: &Path, wl_path: &Path) -> Result<()> {
    let wl: Workload = serde_json::from_str(&std::fs::read_to_string(wl_path)?)?;
    let t0 = Instant::now();
    let (model, tok) = load(path)?;
    let load_s = t0.elapsed().as_secs_f64();
    let prefill = |ids: &[u32]| -> Result<f64> {
        let mut cache = KvCache::new(model.layers());
        let t = Instant::now();
        let h = model.forward_hidden(&mut [(ids, &mut cache)])?.remove(0);
        let _ = model
            .logits(&h.narrow(0, ids.len() - 1, 1)?)?
            .to_vec2::<f32>()?;
        Ok(t.elapsed().as_secs_f64())
    };
    let mut out = serde_json::Map::new();
    out.insert("load_s".into(), load_s.into());
    for (name, ids) in [
        ("short_prompt", &wl.short_prompt),
        ("long_prompt", &wl.long_prompt),
    ] {
        let best = (0..3)
            .map(|_| prefill(ids))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .fold(f64::MAX, f64::min);
        out.insert(format!("{name}_tok_s"), (ids.len() as f64 / best).into());
    }
    // Single-sequence greedy decode.
    let mut cache = KvCache::new(model.layers());
    let h = model
        .forward_hidden(&mut [(&wl.short_prompt[..], &mut cache)])?
        .remove(0);
    let mut next = argmax(
        &model
            .logits(&h.narrow(0, wl.short_prompt.len() - 1, 1)?)?
            .squeeze(0)?
            .to_vec1::<f32>()?,
    );
    let t = Instant::now();
    for _ in 0..wl.decode_tokens {
        let h = model
            .forward_hidden(&mut [(&[next][..], &mut cache)])?
            .remove(0);
        next = argmax(&model.logits(&h)?.squeeze(0)?.to_vec1::<f32>()?);
    }
    out.insert(
        "decode_tok_s".into(),
        (wl.decode_tokens as f64 / t.elapsed().as_secs_f64()).into(),
    );
    // The study-shaped workload through the batching worker, every request at once.
    // No prefix reuse: llama.cpp is reset before every prompt here, so both sides read
    // every prompt whole (reuse is measured on a study run instead, docs/benchmarks.md).
    let worker = Worker::spawn(
        model,
        Arc::new(tok),
        BatchLimits {
            prefix_cache_bytes: 0,
            ..BatchLimits::default()
        },
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (gen_s, score_s, scores) = rt.block_on(async {
        let t = Instant::now();
        let gens = wl.gen_prompts.iter().map(|p| {
            worker.generate(GenRequest {
                prompt: p.clone(),
                max_tokens: wl.gen_tokens,
                params: SamplingParams {
                    temperature: 0.0,
                    ..Default::default()
                },
                seed: 0,
                stop_strings: vec![],
                top_logprobs: 0,
                ignore_end_tokens: true,
            })
        });
        for g in futures_join(gens).await {
            g?;
        }
        let gen_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let scores = wl
            .score_prompts
            .iter()
            .zip(&wl.score_options)
            .map(|(p, o)| {
                worker.score(ScoreRequest {
                    prompt: p.clone(),
                    continuations: o.clone(),
                })
            });
        let mut flat = Vec::new();
        for s in futures_join(scores).await {
            flat.extend(s?.into_iter().map(|v| v.iter().sum::<f32>()));
        }
        Ok::<_, anyhow::Error>((gen_s, t.elapsed().as_secs_f64(), flat))
    })?;
    out.insert("workload_gen_s".into(), gen_s.into());
    out.insert("workload_score_s".into(), score_s.into());
    out.insert("workload_s".into(), (gen_s + score_s).into());
    out.insert(
        "scores_head".into(),
        serde_json::json!(scores[..4.min(scores.len())]),
    );
    println!("{}", serde_json::Value::Object(out));
    let _ = Tensor::zeros(1, candle_core::DType::F32, &Device::Cpu)?;
    Ok(())
}

async fn futures_join<F: std::future::Future>(fs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = fs.collect();
    let mut out = Vec::with_capacity(handles.len());
    // Poll all concurrently: the worker batches whatever is queued.
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = handles.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if results[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => results[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.extend(results.into_iter().map(|r| r.unwrap()));
    out
}

struct Measured {
    json: serde_json::Value,
    max_rss_mb: f64,
}

fn measure(cmd: &mut Command) -> Result<Measured> {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).ok();
        s
    });
    let mut status = 0;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our child; wait4 fills `status` and `ru`.
    unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let out = reader.join().unwrap_or_default();
    anyhow::ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "benchmark child failed"
    );
    let line = out.lines().last().context("no output")?;
    Ok(Measured {
        json: serde_json::from_str(line)?,
        max_rss_mb: ru.ru_maxrss as f64 / 1024.0,
    })
}

pub(crate) fn run(a: LocalArgs) -> Result<()> {
    let gguf = a.gguf.clone().unwrap_or_else(default_gguf);
    if let Some(wl) = &a.child {
        return child(&gguf, wl);
    }
    let tok = {
        let mut f =
            BufReader::new(std::fs::File::open(&gguf).with_context(|| gguf.display().to_string())?);
        Tokenizer::from_gguf(&gguf_file::Content::read(&mut f)?)?
    };
    let dir = tempfile::tempdir()?;
    let wl_path = dir.path().join("workload.json");
    std::fs::write(&wl_path, serde_json::to_string(&workload(&tok, &a))?)?;
    let exe = std::env::current_exe()?;
    let ours = measure(
        Command::new(&exe)
            .args(["local", "--child"])
            .arg(&wl_path)
            .arg("--gguf")
            .arg(&gguf)
            .env("RAYON_NUM_THREADS", a.threads.to_string()),
    )?;
    let theirs = match &a.llama_python {
        Some(py) => Some(measure(
            Command::new(py)
                .arg(
                    Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("../../bench/llama_cpp/local_bench.py"),
                )
                .arg(&gguf)
                .arg(&wl_path)
                .arg(a.threads.to_string()),
        )?),
        None => None,
    };
    println!(
        "Same GGUF ({}), {} threads; workload: {} generations × {} tokens + {} continuation scorings.\n",
        gguf.file_name().unwrap().to_string_lossy(),
        a.threads,
        a.gen_prompts,
        a.gen_tokens,
        a.scorings.div_ceil(2) * 2
    );
    println!(
        "| measure | shammie | llama.cpp | ratio (shammie ÷ llama.cpp; >1 is better for shammie) |"
    );
    println!("|---|---|---|---|");
    let rows = [
        ("prompt tok/s, short", "short_prompt_tok_s", false),
        ("prompt tok/s, 256 tokens", "long_prompt_tok_s", false),
        ("decode tok/s, one sequence", "decode_tok_s", false),
        ("workload: generations (s)", "workload_gen_s", true),
        ("workload: scorings (s)", "workload_score_s", true),
        ("workload: total (s)", "workload_s", true),
    ];
    for (label, key, lower_better) in rows {
        let o = ours.json[key].as_f64().unwrap_or(f64::NAN);
        match &theirs {
            Some(t) => {
                let l = t.json[key].as_f64().unwrap_or(f64::NAN);
                let ratio = if lower_better { l / o } else { o / l };
                println!("| {label} | {o:.1} | {l:.1} | {ratio:.2}× |");
            }
            None => println!("| {label} | {o:.1} | — | — |"),
        }
    }
    match &theirs {
        Some(t) => println!(
            "| peak memory (MB) | {:.0} | {:.0} | {:.2}× of llama.cpp's |",
            ours.max_rss_mb,
            t.max_rss_mb,
            ours.max_rss_mb / t.max_rss_mb
        ),
        None => println!("| peak memory (MB) | {:.0} | — | — |", ours.max_rss_mb),
    }
    eprintln!("shammie: {}", ours.json);
    if let Some(t) = &theirs {
        eprintln!("llama.cpp: {}", t.json);
    }
    Ok(())
}
