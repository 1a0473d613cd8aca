//! `shammie train sft --model local:… --data FILE.jsonl`: LoRA supervised fine-tuning of
//! a local model (Gemma 3, Llama 3 or Qwen2, whichever the GGUF holds) on chat-format JSONL (`shammie_train`), in a run directory with
//! checkpoints; `--resume DIR` continues an interrupted run from its last checkpoint.
//! Progress (loss, trained tokens/s, ETA) goes to stderr; the adapter's path and the
//! model spec that serves it go to stdout.

use std::io::{BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use candle_core::quantized::gguf_file;
use indicatif::{ProgressBar, ProgressStyle};
use shammie_local::prompt::Template;
use shammie_local::white_box::WhiteBox;
use shammie_train::lora::LoraConfig;
use shammie_train::optim::{AdamWConfig, Decay};
use shammie_train::run::{train, Outcome, SftOptions, SftRun};
use shammie_train::sft::TrainConfig;

use crate::Failure;

#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(clap::Subcommand)]
pub(crate) enum What {
    /// LoRA supervised fine-tuning on chat-format JSONL (`{"messages": [...]}` per line),
    /// loss on the assistant turns only; a `{"text": ...}` line is a plain document
    /// trained whole (continued pretraining, e.g. alignment-faking/documents' corpus).
    Sft(SftArgs),
}

#[derive(clap::Args)]
pub(crate) struct SftArgs {
    /// The base model: local:NAME or local:/path/model.gguf (a Gemma 3, Llama 3 or
    /// Qwen2/Qwen2.5 GGUF).
    #[arg(long, short = 'm', default_value = "local:gemma-3-270m")]
    pub model: String,
    /// Chat-format JSONL training data (or plain `{"text"}` documents).
    #[arg(long, required_unless_present = "resume")]
    pub data: Option<PathBuf>,
    /// Continue the training run in DIR from its last checkpoint (its recorded options
    /// are used; the other options must not be given).
    #[arg(long, conflicts_with = "data")]
    pub resume: Option<PathBuf>,
    /// LoRA rank.
    #[arg(long, default_value_t = 8)]
    pub rank: usize,
    /// LoRA alpha (the update is scaled by alpha/rank).
    #[arg(long, default_value_t = 16.0)]
    pub alpha: f64,
    /// LoRA dropout probability on the input of the adapted projections' LoRA branch, in
    /// training only (PEFT's lora_dropout; seeded by --seed; 0: none).
    #[arg(long, default_value_t = 0.0)]
    pub dropout: f64,
    /// Projections to adapt, comma-separated (q_proj k_proj v_proj o_proj gate_proj up_proj
    /// down_proj).
    #[arg(long, default_value = "q_proj,v_proj", value_delimiter = ',')]
    pub targets: Vec<String>,
    /// Peak learning rate.
    #[arg(long, default_value_t = 2e-4)]
    pub lr: f64,
    /// AdamW's decoupled weight decay.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Passes over the data (the step count is ceil(epochs × examples / batch)); default 1.
    #[arg(long, conflicts_with = "steps")]
    pub epochs: Option<f64>,
    /// Optimizer steps (instead of --epochs).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Examples per optimizer step (their gradients are accumulated). With --pack-tokens a
    /// step still trains this many examples.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Pack each step's examples into sequences of at most N tokens (first-fit
    /// decreasing; attention never crosses examples and positions restart in each), so
    /// short examples share forward passes. Steps, epochs and the learning-rate schedule
    /// mean the same as without packing, and so does the loss (up to float rounding);
    /// only speed and memory change (longer sequences hold more activations: with
    /// Gemma 3 270M, 512 trains 1.3× faster than 0 for 1.9× the peak memory, see
    /// docs/benchmarks.md). 0: every example is its own forward pass.
    #[arg(long, default_value_t = 512, value_name = "N")]
    pub pack_tokens: usize,
    /// Warm-up steps (learning rate rising linearly from 0).
    #[arg(long, default_value_t = 0)]
    pub warmup: usize,
    /// Decay after warm-up: linear or cosine (to 0 at the last step).
    #[arg(long, default_value = "linear", value_parser = ["linear", "cosine"])]
    pub schedule: String,
    /// Clip the global gradient norm to this (0: no clipping).
    #[arg(long, default_value_t = 1.0)]
    pub clip: f64,
    /// Seeds the example order, the LoRA initialisation and the dropout masks.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Checkpoint every N steps (0: only at the end).
    #[arg(long, default_value_t = 50)]
    pub checkpoint_every: usize,
    /// Parent folder of run directories.
    #[arg(long, default_value = "runs")]
    pub log_dir: PathBuf,
    /// No progress output.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// `shammie resume DIR` of a training run.
pub(crate) fn resume(dir: &Path) -> Result<u8, Failure> {
    #[derive(clap::Parser)]
    struct Only {
        #[command(flatten)]
        a: SftArgs,
    }
    let only = <Only as clap::Parser>::try_parse_from([
        std::ffi::OsStr::new("train"),
        "--resume".as_ref(),
        dir.as_os_str(),
    ])?;
    sft(only.a)
}

/// `shammie show DIR` of a training run: progress, last loss, the adapter.
pub(crate) fn show(dir: &Path) -> Result<u8, Failure> {
    let run = SftRun::open(dir)?;
    let steps = run.steps()?;
    let total = run.opts.train.steps;
    println!(
        "training run (LoRA SFT) of {} on {}",
        run.opts.model,
        run.opts.data.display()
    );
    match steps.last() {
        Some(r) => println!(
            "{} of {total} steps logged; loss {:.4} at step 1, {:.4} at step {}",
            steps.len(),
            steps[0].loss,
            r.loss,
            r.step + 1
        ),
        None => println!("0 of {total} steps logged"),
    }
    let adapter = run.adapter_path();
    if adapter.join("adapter_model.safetensors").exists() {
        let name = run
            .opts
            .model
            .strip_prefix("local:")
            .unwrap_or(&run.opts.model);
        println!("adapter: local:{name}+lora={}", adapter.display());
    } else {
        println!(
            "incomplete: continue with `shammie train sft --resume {}`",
            dir.display()
        );
    }
    Ok(0)
}

pub(crate) fn main(a: Args) -> Result<u8, Failure> {
    match a.what {
        What::Sft(a) => sft(a),
    }
}

/// The model file a `local:` spec names (pulled first if it is a known model).
pub(crate) fn model_file(spec: &str) -> anyhow::Result<(String, PathBuf)> {
    let Some(name) = spec.strip_prefix("local:") else {
        bail!("--model {spec}: training needs a local model (local:NAME or local:/path.gguf)");
    };
    if name.contains("+lora=") {
        bail!("--model {spec}: train on the base model, not on an adapted one");
    }
    let path = crate::setup::resolve_model_file(name).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((name.to_string(), path))
}

/// The white box, the template its prompts are served with (the GGUF's chat template, or
/// the base-model format) and the tokenizer.
pub(crate) fn load(
    path: &Path,
) -> anyhow::Result<(WhiteBox, Template, shammie_tokenizer::Tokenizer)> {
    let f = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    let mut r = BufReader::new(f);
    let content = gguf_file::Content::read(&mut r)
        .map_err(|e| anyhow::anyhow!("{}: not a readable GGUF file: {e}", path.display()))?;
    let tok = shammie_tokenizer::Tokenizer::from_gguf(&content)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let format = shammie_local::prompt::template_for(&tok, &path.display().to_string())?;
    // A CUDA GPU when built with `--features cuda` and one is present.
    let device = shammie_local::provider::device()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let wb = WhiteBox::load(&content, &mut r, &device)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok((wb, format, tok))
}

fn sft(a: SftArgs) -> Result<u8, Failure> {
    let (run, fresh) = match &a.resume {
        Some(dir) => (Some(SftRun::open(dir)?), None),
        None => (None, Some(a.data.clone().expect("clap requires --data"))),
    };
    let model = run
        .as_ref()
        .map_or(a.model.clone(), |r| r.opts.model.clone());
    let (name, path) = model_file(&model)?;
    let (mut wb, format, tok) = load(&path)?;
    let data_path = run
        .as_ref()
        .map_or_else(|| fresh.clone().expect("set"), |r| r.opts.data.clone());
    // The data is read (and checked) before anything is written.
    let data = shammie_train::chat::load_chat_jsonl(&data_path, &format, &tok)?;
    let run = match run {
        Some(r) => r,
        None => {
            let steps = match (a.steps, a.epochs) {
                (Some(s), _) => s,
                (None, e) => {
                    let e = e.unwrap_or(1.0);
                    if !(e.is_finite() && e > 0.0) {
                        return Err(anyhow::anyhow!("--epochs must be positive, got {e}").into());
                    }
                    ((e * data.len() as f64) / a.batch.max(1) as f64).ceil() as usize
                }
            };
            let opts = SftOptions {
                model: model.clone(),
                data: data_path.clone(),
                train: TrainConfig {
                    lora: LoraConfig {
                        rank: a.rank,
                        alpha: a.alpha,
                        targets: a.targets.clone(),
                        seed: a.seed,
                        init_from: None,
                        dropout: a.dropout,
                    },
                    optim: AdamWConfig {
                        lr: a.lr,
                        weight_decay: a.weight_decay,
                        ..Default::default()
                    },
                    batch: a.batch,
                    pack_tokens: a.pack_tokens,
                    steps,
                    warmup: a.warmup,
                    decay: if a.schedule == "cosine" {
                        Decay::Cosine
                    } else {
                        Decay::Linear
                    },
                    max_grad_norm: (a.clip > 0.0).then_some(a.clip),
                    seed: a.seed,
                },
                checkpoint_every: a.checkpoint_every,
                objective: Default::default(),
            };
            // Check the configuration before a run directory exists (`train` attaches
            // fresh factors again, replacing these).
            shammie_train::sft::Trainer::new(&mut wb, opts.train.clone())?;
            SftRun::create(&a.log_dir, opts)?
        }
    };
    // One writer per run directory.
    let _lock = run.dir.lock()?;
    let total = run.opts.train.steps;
    let packing = match run.opts.train.pack_tokens {
        0 => String::new(),
        n => format!(" packed into sequences of up to {n} tokens"),
    };
    eprintln!(
        "run directory: {} ({} examples, {total} steps of {}{packing}, {format:?} prompt format)",
        run.path().display(),
        data.len(),
        run.opts.train.batch
    );
    let mut progress = Progress::new(total as u64, a.quiet);
    let outcome = train(&run, &mut wb, &data, |r| {
        progress.step(r.step as u64 + 1, r.loss, r.tokens);
        true
    })?;
    progress.finish();
    let Outcome::Finished(_) = outcome else {
        unreachable!("the callback never stops")
    };
    let last = run.steps()?.last().map(|r| r.loss).unwrap_or(f64::NAN);
    // An absolute path, so the printed spec works from any folder.
    let adapter = run.adapter_path();
    let adapter = std::fs::canonicalize(&adapter).unwrap_or(adapter);
    eprintln!(
        "final loss {last:.4}; curve in {}",
        run.path().join("report/loss.svg").display()
    );
    println!("adapter: {}", adapter.display());
    println!("use it as: local:{name}+lora={}", adapter.display());
    Ok(0)
}

/// Loss, trained tokens/s and ETA: a bar on a terminal, else a line every
/// `SHAMMIE_PROGRESS_SECS` seconds (default 10) and at the end.
struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
    total: u64,
    start: Instant,
    first: Option<u64>,
    tokens: usize,
    last_line: Instant,
    every: Duration,
    line: String,
    /// Whether `line` was already printed.
    printed: bool,
}

impl Progress {
    fn new(total: u64, quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::new(total);
            b.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}")
                    .expect("a valid template"),
            );
            b
        });
        let secs = std::env::var("SHAMMIE_PROGRESS_SECS")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .unwrap_or(10.0);
        Progress {
            bar,
            quiet,
            total,
            start: Instant::now(),
            first: None,
            tokens: 0,
            last_line: Instant::now(),
            every: Duration::from_secs_f64(secs),
            line: String::new(),
            printed: false,
        }
    }

    fn step(&mut self, done: u64, loss: f64, tokens: usize) {
        let first = *self.first.get_or_insert(done - 1);
        self.tokens += tokens;
        let secs = self.start.elapsed().as_secs_f64().max(1e-9);
        let rate = (done - first) as f64 / secs;
        let eta = (self.total - done) as f64 / rate.max(1e-9);
        self.line = format!(
            "step {done}/{}  loss {loss:.4}  {:.1} trained tokens/s  ETA {}",
            self.total,
            self.tokens as f64 / secs,
            hms(eta)
        );
        if let Some(b) = &self.bar {
            b.set_position(done);
            b.set_message(self.line.clone());
        } else if !self.quiet && self.last_line.elapsed() >= self.every {
            eprintln!("{}", self.line);
            self.last_line = Instant::now();
            self.printed = true;
            return;
        }
        self.printed = false;
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        } else if !self.quiet && !self.line.is_empty() && !self.printed {
            eprintln!("{}", self.line);
        }
    }
}

fn hms(secs: f64) -> String {
    let s = secs.round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}
