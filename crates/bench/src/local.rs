//! `shammie-bench local`: the embedded engine against llama.cpp (llama-cpp-python) on the
//! same GGUF, the same token ids and the same thread count, each in its own process (peak
//! memory from `wait4`). Measures prompt tokens/s at several prompt lengths and
//! single-sequence decode tokens/s at each thread count asked for, and a study-shaped
//! workload (N generations of M tokens plus K continuation scorings) at the largest.

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
    /// Thread counts to measure prompt and decode speed at, comma-separated [default: all
    /// cores]; the workload runs at the largest.
    #[arg(long, value_delimiter = ',')]
    threads: Vec<usize>,
    /// Prompt lengths in tokens (the first N tokens of one long prompt), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "45,256,1024")]
    prompt_lengths: Vec<usize>,
    /// Speed runs per side and thread count, alternating the two engines; the best is kept
    /// (each run already keeps the best of three prefills).
    #[arg(long, default_value_t = 1)]
    repeats: usize,
    /// Python with llama-cpp-python installed (bench/llama_cpp/local_bench.py runs in it).
    #[arg(long)]
    llama_python: Option<PathBuf>,
    #[arg(long, default_value_t = 64)]
    gen_prompts: usize,
    #[arg(long, default_value_t = 32)]
    gen_tokens: usize,
    /// Continuation scorings (two options per question; 0: no workload).
    #[arg(long, default_value_t = 500)]
    scorings: usize,
    #[arg(long, default_value_t = 64)]
    decode_tokens: usize,
    /// Internal: run Shammie's side on a workload file and print JSON.
    #[arg(long, hide = true)]
    child: Option<PathBuf>,
    /// Internal: the child's thread count.
    #[arg(long, hide = true)]
    child_threads: Option<usize>,
}

#[derive(Serialize, Deserialize, Clone)]
struct Workload {
    /// Prompts whose reading speed is measured (the first N tokens of one long prompt).
    prompts: Vec<Vec<u32>>,
    /// Decoding starts after this prompt.
    decode_prompt: Vec<u32>,
    decode_tokens: usize,
    /// Whether to run the study-shaped workload too.
    workload: bool,
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

fn workload(tok: &Tokenizer, a: &LocalArgs) -> Result<Workload> {
    let qs = questions();
    let fmt = |q: &str| format!("Human: {q}\n\nAnswer with just \"Yes\" or \"No\".\n\nAssistant:");
    // One long prompt of questions; each measured prompt is its first N tokens.
    let longest = a.prompt_lengths.iter().copied().max().unwrap_or(0);
    let mut text = String::new();
    let mut long_ids = Vec::new();
    for q in qs.iter().cycle().take(10 * qs.len()) {
        if long_ids.len() >= longest {
            break;
        }
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(&fmt(q));
        long_ids = tok.encode(&text, true);
    }
    anyhow::ensure!(
        long_ids.len() >= longest,
        "the questions make only {} tokens",
        long_ids.len()
    );
    let n_q = a.scorings.div_ceil(2);
    Ok(Workload {
        prompts: a
            .prompt_lengths
            .iter()
            .map(|&n| long_ids[..n].to_vec())
            .collect(),
        decode_prompt: tok.encode(&fmt(&qs[0]), true),
        decode_tokens: a.decode_tokens,
        workload: false,
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
    })
}

/// Shammie's side, in the child process.
fn child(path: &Path, wl_path: &Path, threads: usize) -> Result<()> {
    shammie_local::threads::set(threads);
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
    out.insert("kernel".into(), shammie_local::qmm::isa().name().into());
    let mut prompt_speeds = Vec::new();
    for ids in &wl.prompts {
        let best = (0..3)
            .map(|_| prefill(ids))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .fold(f64::MAX, f64::min);
        prompt_speeds.push(ids.len() as f64 / best);
    }
    out.insert("prompt_tok_s".into(), serde_json::json!(prompt_speeds));
    // Single-sequence greedy decode.
    let mut cache = KvCache::new(model.layers());
    let h = model
        .forward_hidden(&mut [(&wl.decode_prompt[..], &mut cache)])?
        .remove(0);
    let mut next = argmax(
        &model
            .logits(&h.narrow(0, wl.decode_prompt.len() - 1, 1)?)?
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
    if !wl.workload {
        println!("{}", serde_json::Value::Object(out));
        return Ok(());
    }
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

/// The CPU's model name (from /proc/cpuinfo where there is one).
pub(crate) fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

fn all_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Both sides on `wl` with `threads` threads, each `repeats` times alternately; per
/// measure the best run (speeds: highest; the workload runs once).
fn side_by_side(
    a: &LocalArgs,
    gguf: &Path,
    wl: &Workload,
    dir: &Path,
    threads: usize,
    repeats: usize,
) -> Result<(Measured, Option<Measured>)> {
    let wl_path = dir.join(format!("workload-{threads}-{}.json", wl.workload));
    std::fs::write(&wl_path, serde_json::to_string(wl)?)?;
    let exe = std::env::current_exe()?;
    let mut ours: Option<Measured> = None;
    let mut theirs: Option<Measured> = None;
    for _ in 0..repeats.max(1) {
        let o = measure(
            Command::new(&exe)
                .args(["local", "--child"])
                .arg(&wl_path)
                .arg("--child-threads")
                .arg(threads.to_string())
                .arg("--gguf")
                .arg(gguf)
                // candle's own CPU operations (few are left on the inference path).
                .env("RAYON_NUM_THREADS", threads.to_string()),
        )?;
        ours = Some(best_of(ours, o));
        if let Some(py) = &a.llama_python {
            let t = measure(
                Command::new(py)
                    .arg(
                        Path::new(env!("CARGO_MANIFEST_DIR"))
                            .join("../../bench/llama_cpp/local_bench.py"),
                    )
                    .arg(gguf)
                    .arg(&wl_path)
                    .arg(threads.to_string()),
            )?;
            theirs = Some(best_of(theirs, t));
        }
    }
    Ok((ours.expect("at least one run"), theirs))
}

/// Keeps, per speed, the better of two runs (the rest from the first).
fn best_of(prev: Option<Measured>, new: Measured) -> Measured {
    let Some(mut p) = prev else {
        return new;
    };
    let speeds = |m: &Measured| -> Vec<f64> {
        m.json["prompt_tok_s"]
            .as_array()
            .map(|v| v.iter().filter_map(|x| x.as_f64()).collect())
            .unwrap_or_default()
    };
    let best: Vec<f64> = speeds(&p)
        .iter()
        .zip(speeds(&new))
        .map(|(a, b)| a.max(b))
        .collect();
    p.json["prompt_tok_s"] = serde_json::json!(best);
    let d = |m: &Measured| m.json["decode_tok_s"].as_f64().unwrap_or(0.0);
    p.json["decode_tok_s"] = serde_json::json!(d(&p).max(d(&new)));
    p.max_rss_mb = p.max_rss_mb.max(new.max_rss_mb);
    p
}

fn ratio_row(label: &str, o: f64, theirs: Option<f64>, lower_better: bool) {
    match theirs {
        Some(l) => {
            let ratio = if lower_better { l / o } else { o / l };
            println!("| {label} | {o:.1} | {l:.1} | {ratio:.2}× |");
        }
        None => println!("| {label} | {o:.1} | — | — |"),
    }
}

pub(crate) fn run(a: LocalArgs) -> Result<()> {
    let gguf = a.gguf.clone().unwrap_or_else(default_gguf);
    if let Some(wl) = &a.child {
        return child(&gguf, wl, a.child_threads.unwrap_or_else(all_cores));
    }
    let tok = {
        let mut f =
            BufReader::new(std::fs::File::open(&gguf).with_context(|| gguf.display().to_string())?);
        Tokenizer::from_gguf(&gguf_file::Content::read(&mut f)?)?
    };
    let mut threads = a.threads.clone();
    if threads.is_empty() {
        threads.push(all_cores());
    }
    threads.sort_unstable();
    threads.dedup();
    let max_threads = *threads.last().expect("one thread count");
    let dir = tempfile::tempdir()?;
    let speed = workload(&tok, &a)?;
    let mut runs = Vec::new();
    for &t in &threads {
        runs.push((
            t,
            side_by_side(&a, &gguf, &speed, dir.path(), t, a.repeats)?,
        ));
    }
    let work = if a.scorings > 0 || a.gen_prompts > 0 {
        let wl = Workload {
            workload: true,
            prompts: vec![],
            decode_tokens: 0,
            ..speed.clone()
        };
        Some(side_by_side(&a, &gguf, &wl, dir.path(), max_threads, 1)?)
    } else {
        None
    };
    let kernel = runs[0].1 .0.json["kernel"]
        .as_str()
        .unwrap_or("?")
        .to_string();
    println!(
        "Same GGUF ({}), same token ids; CPU: {} ({} cores), Shammie's kernel: {kernel}.\n",
        gguf.file_name().unwrap().to_string_lossy(),
        cpu_name(),
        all_cores(),
    );
    println!(
        "| threads | measure | shammie | llama.cpp | ratio (shammie ÷ llama.cpp; >1 is better for shammie) |"
    );
    println!("|---|---|---|---|---|");
    let get = |m: &Measured, key: &str| m.json[key].as_f64().unwrap_or(f64::NAN);
    let prompt = |m: &Measured, i: usize| m.json["prompt_tok_s"][i].as_f64().unwrap_or(f64::NAN);
    for (t, (ours, theirs)) in &runs {
        for (i, ids) in speed.prompts.iter().enumerate() {
            print!("| {t} ");
            ratio_row(
                &format!("prompt tok/s, {} tokens", ids.len()),
                prompt(ours, i),
                theirs.as_ref().map(|m| prompt(m, i)),
                false,
            );
        }
        print!("| {t} ");
        ratio_row(
            "decode tok/s, one sequence",
            get(ours, "decode_tok_s"),
            theirs.as_ref().map(|m| get(m, "decode_tok_s")),
            false,
        );
    }
    if let Some((ours, theirs)) = &work {
        println!(
            "\nWorkload at {max_threads} threads: {} generations × {} tokens + {} continuation scorings.\n",
            a.gen_prompts,
            a.gen_tokens,
            a.scorings.div_ceil(2) * 2
        );
        println!(
            "| measure | shammie | llama.cpp | ratio (shammie ÷ llama.cpp; >1 is better for shammie) |"
        );
        println!("|---|---|---|---|");
        for (label, key) in [
            ("workload: generations (s)", "workload_gen_s"),
            ("workload: scorings (s)", "workload_score_s"),
            ("workload: total (s)", "workload_s"),
        ] {
            ratio_row(
                label,
                get(ours, key),
                theirs.as_ref().map(|m| get(m, key)),
                true,
            );
        }
        match theirs {
            Some(t) => println!(
                "| peak memory (MB) | {:.0} | {:.0} | {:.2}× of llama.cpp's |",
                ours.max_rss_mb,
                t.max_rss_mb,
                ours.max_rss_mb / t.max_rss_mb
            ),
            None => println!("| peak memory (MB) | {:.0} | — | — |", ours.max_rss_mb),
        }
    }
    for (t, (ours, theirs)) in &runs {
        eprintln!("shammie, {t} threads: {}", ours.json);
        if let Some(m) = theirs {
            eprintln!("llama.cpp, {t} threads: {}", m.json);
        }
    }
    if let Some((ours, theirs)) = &work {
        eprintln!("shammie workload: {}", ours.json);
        if let Some(m) = theirs {
            eprintln!("llama.cpp workload: {}", m.json);
        }
    }
    Ok(())
}
