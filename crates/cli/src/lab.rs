//! The CLI's [`Lab`]: weight-level work for lab stages. Local models are fine-tuned with
//! `shammie-train` (LoRA on the white box, a training run directory under the stage's work
//! folder, so a killed stage continues from its last checkpoint) and read through the
//! white box for activations; `openai:` models are fine-tuned through OpenAI's
//! fine-tuning API (the job id is written before polling, so a killed stage polls the
//! same job instead of paying for another).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use shammie_core::GenerateRequest;
use shammie_engine::{
    Activations, FineTuneConfig, FineTuneJob, InfluenceJob, InfluenceResult, Lab, PmJob,
    StageOutput, Trained, TrainedPm,
};
use shammie_local::white_box::WhiteBox;
use shammie_models::openai_finetune::{FineTuneClient, Hyperparameters, JobSpec, PollOptions};
use shammie_models::{Model, ModelHub, ModelSpec, ProviderEnv, RetryPolicy};
use shammie_train::lora::{LoraConfig, LoraSet};
use shammie_train::optim::{AdamWConfig, Decay};
use shammie_train::run::{train, train_pm, Objective, Outcome, SftOptions, SftRun};
use shammie_train::sft::TrainConfig;

use crate::commands::train::{load, model_file};

pub(crate) struct CliLab {
    pub hub: Arc<ModelHub>,
    pub env: ProviderEnv,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// How often an API fine-tuning job is polled (`SHAMMIE_FINE_TUNE_POLL_SECS`).
    pub poll: PollOptions,
    /// Sentence encoders loaded so far, by name (loaded once per run).
    pub embedders:
        std::sync::Mutex<std::collections::BTreeMap<String, Arc<shammie_embed::Embedder>>>,
}

/// `local:NAME[+lora=DIR]` → (NAME, DIR).
fn local_parts(spec: &str) -> Option<(&str, Option<&str>)> {
    let rest = spec.strip_prefix("local:")?;
    Some(match rest.split_once("+lora=") {
        Some((n, a)) => (n, Some(a)),
        None => (rest, None),
    })
}

/// The rank, alpha and target modules of a PEFT adapter folder.
fn adapter_shape(dir: &Path) -> Result<(usize, f64, Vec<String>), String> {
    let ad = shammie_local::lora::Adapter::read(dir).map_err(|e| e.to_string())?;
    let mut targets: Vec<String> = shammie_local::lora::MODULES
        .iter()
        .filter(|m| ad.deltas.keys().any(|(_, k)| k == *m))
        .map(|m| m.to_string())
        .collect();
    targets.dedup();
    Ok((ad.rank, ad.alpha, targets))
}

/// The white box of `spec`'s base with its adapter (if any) applied.
fn white_box(
    spec: &str,
) -> Result<
    (
        WhiteBox,
        shammie_local::prompt::Template,
        shammie_tokenizer::Tokenizer,
    ),
    String,
> {
    let Some((name, adapter)) = local_parts(spec) else {
        return Err(format!(
            "{spec}: reading activations or influence needs a local model (local:NAME[+lora=DIR])"
        ));
    };
    let (_, path) = model_file(&format!("local:{name}")).map_err(|e| e.to_string())?;
    let (mut wb, format, tok) = load(&path).map_err(|e| e.to_string())?;
    if let Some(dir) = adapter {
        let (rank, alpha, targets) = adapter_shape(Path::new(dir))?;
        LoraSet::attach(
            &mut wb,
            LoraConfig {
                rank,
                alpha,
                targets,
                seed: 0,
                init_from: Some(PathBuf::from(dir)),
                // Reading activations: no training, so no dropout.
                dropout: 0.0,
            },
        )
        .map_err(|e| e.to_string())?;
    }
    Ok((wb, format, tok))
}

/// The trainer's settings for a lab job over `n` items (examples or pairs).
fn train_config(
    c: &FineTuneConfig,
    n: usize,
    rank: usize,
    alpha: f64,
    targets: Vec<String>,
    adapter: Option<&str>,
) -> TrainConfig {
    let steps = ((c.epochs * n as f64) / c.batch.max(1) as f64)
        .ceil()
        .max(1.0) as usize;
    TrainConfig {
        lora: LoraConfig {
            rank,
            alpha,
            targets,
            seed: c.seed,
            init_from: adapter.map(PathBuf::from),
            dropout: c.dropout,
        },
        optim: AdamWConfig {
            lr: c.lr,
            ..Default::default()
        },
        batch: c.batch.max(1),
        pack_tokens: c.pack_tokens,
        steps,
        warmup: c.warmup.min(steps.saturating_sub(1)),
        decay: Decay::Linear,
        max_grad_norm: Some(1.0),
        seed: c.seed,
    }
}

/// Copies a finished training run's result into the study run's artifacts: `files` of
/// its artifact folder as `{stage}/{folder}/`, and its step log as `{stage}/train.jsonl`.
/// Returns the absolute path of `{stage}/{folder}` and the steps.
fn publish(
    run: &SftRun,
    out: &mut StageOutput,
    folder: &str,
    files: &[&str],
) -> Result<(PathBuf, Vec<shammie_train::run::StepRecord>), String> {
    let stage = out.stage().to_string();
    let rel = format!("{stage}/{folder}");
    for file in files {
        let src = run.adapter_path().join(file);
        let bytes = std::fs::read(&src).map_err(|e| format!("{}: {e}", src.display()))?;
        out.write(&format!("{rel}/{file}"), &bytes)?;
    }
    let curve = run.path().join(shammie_train::run::STEPS_FILE);
    let bytes = std::fs::read(&curve).map_err(|e| format!("{}: {e}", curve.display()))?;
    out.write(&format!("{stage}/train.jsonl"), &bytes)?;
    let abs = out.artifact_path(&rel)?;
    let abs = std::fs::canonicalize(&abs).unwrap_or(abs);
    let steps = run.steps().map_err(|e| e.to_string())?;
    Ok((abs, steps))
}

/// A run directory left in `work` by an earlier, killed attempt.
fn existing_run(work: &Path) -> Result<Option<PathBuf>, String> {
    Ok(std::fs::read_dir(work)
        .map_err(|e| format!("{}: {e}", work.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.join("run.json").exists()))
}

impl CliLab {
    /// The sentence encoder `name` (a built-in model such as `all-minilm-l6-v2`, pulled
    /// when missing, or a sentence-transformers folder; `+int8` after it for 8-bit
    /// matrix products), loaded once.
    fn embedder(&self, name: &str) -> Result<Arc<shammie_embed::Embedder>, String> {
        let mut loaded = self.embedders.lock().expect("embedder map");
        if let Some(e) = loaded.get(name) {
            return Ok(e.clone());
        }
        let (model, precision) = match name.strip_suffix("+int8") {
            Some(m) => (m, shammie_embed::Precision::Int8),
            None => (name, shammie_embed::Precision::F32),
        };
        let dir = crate::setup::resolve_model_file(model)?;
        let e = Arc::new(
            shammie_embed::Embedder::load_with(&dir, precision)
                .map_err(|e| format!("embedder {name}: {e}"))?,
        );
        loaded.insert(name.to_string(), e.clone());
        Ok(e)
    }

    fn fine_tune_local(
        &self,
        job: &FineTuneJob,
        work: &Path,
        out: &mut StageOutput,
    ) -> Result<Trained, String> {
        let (name, adapter) = local_parts(&job.base).expect("checked by the caller");
        let (_, path) = model_file(&format!("local:{name}")).map_err(|e| e.to_string())?;
        let (mut wb, format, tok) = load(&path).map_err(|e| e.to_string())?;
        let data = shammie_train::chat::load_chat_jsonl(&job.data, &format, &tok)
            .map_err(|e| e.to_string())?;
        if data.is_empty() {
            return Err(format!("{}: no training examples", job.data.display()));
        }
        // A run directory left by an earlier, killed attempt is continued.
        let existing = existing_run(work)?;
        let c = &job.config;
        let run = match existing {
            Some(p) => SftRun::open(&p).map_err(|e| e.to_string())?,
            None => {
                // Training an adapted model further starts from its adapter, whose shape wins.
                let (rank, alpha, targets) = match adapter {
                    Some(a) => adapter_shape(Path::new(a))?,
                    None => (c.rank, c.alpha, c.targets.clone()),
                };
                let opts = SftOptions {
                    model: format!("local:{name}"),
                    data: job.data.clone(),
                    train: train_config(c, data.len(), rank, alpha, targets, adapter),
                    checkpoint_every: 10,
                    objective: Objective::Sft,
                };
                SftRun::create(work, opts).map_err(|e| e.to_string())?
            }
        };
        let total = run.opts.train.steps as u64;
        let outcome = train(&run, &mut wb, &data, |r| {
            out.progress(r.step as u64 + 1, total);
            true
        })
        .map_err(|e| e.to_string())?;
        let Outcome::Finished(_) = outcome else {
            return Err("training stopped early".into());
        };
        // The adapter becomes an artifact of the study's run.
        let (abs, steps) = publish(
            &run,
            out,
            "adapter",
            &["adapter_config.json", "adapter_model.safetensors"],
        )?;
        Ok(Trained {
            spec: format!("local:{name}+lora={}", abs.display()),
            first_loss: steps.first().map(|s| s.loss),
            last_loss: steps.last().map(|s| s.loss),
            steps: steps.len(),
        })
    }

    fn fine_tune_openai(&self, job: &FineTuneJob, work: &Path) -> Result<Trained, String> {
        let model = job
            .base
            .strip_prefix("openai:")
            .expect("checked by the caller");
        let key = self
            .env
            .openai_api_key
            .clone()
            .ok_or("fine-tuning an openai: model needs OPENAI_API_KEY")?;
        let client = FineTuneClient::new(
            self.env.openai_base_url.as_deref(),
            key,
            self.timeout,
            self.retry.clone(),
        )
        .map_err(|e| e.to_string())?;
        let job_file = work.join("openai-job.json");
        let poll = &self.poll;
        let rt = tokio::runtime::Handle::current();
        let done = if let Ok(text) = std::fs::read_to_string(&job_file) {
            let id: String = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["id"].as_str().map(String::from))
                .ok_or_else(|| format!("{}: no job id", job_file.display()))?;
            rt.block_on(client.resume(&id, poll))
                .map_err(|e| e.to_string())?
        } else {
            let c = &job.config;
            let spec = JobSpec {
                model: model.to_string(),
                hyperparameters: Hyperparameters {
                    n_epochs: Some(c.epochs.round().max(1.0) as u32),
                    batch_size: Some(c.batch.max(1) as u32),
                    learning_rate_multiplier: None,
                },
                suffix: Some("shammie".into()),
                seed: Some(c.seed as i64),
            };
            let started = rt
                .block_on(client.start(&job.data, None, &spec))
                .map_err(|e| e.to_string())?;
            let text = serde_json::to_string(&started).expect("plain values");
            std::fs::write(&job_file, text).map_err(|e| format!("{}: {e}", job_file.display()))?;
            rt.block_on(client.wait(&started.id, poll))
                .map_err(|e| e.to_string())?
        };
        let name = done.fine_tuned_model.unwrap_or_default();
        Ok(Trained {
            spec: format!("openai:{name}"),
            first_loss: None,
            last_loss: None,
            steps: 0,
        })
    }
}

impl Lab for CliLab {
    fn embed(&self, model: &str, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        let e = self.embedder(model)?;
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        e.embed(&texts)
            .map_err(|e| format!("embedder {model}: {e}"))
    }

    fn open(&self, spec: &str) -> Result<Arc<dyn Model>, String> {
        let s: ModelSpec = spec
            .parse()
            .map_err(|e: shammie_models::ModelError| e.to_string())?;
        self.hub.open(&s).map_err(|e| e.to_string())
    }

    fn fine_tune(
        &self,
        job: &FineTuneJob,
        work: &Path,
        out: &mut StageOutput,
    ) -> Result<Trained, String> {
        if job.base.starts_with("local:") {
            self.fine_tune_local(job, work, out)
        } else if job.base.starts_with("openai:") {
            self.fine_tune_openai(job, work)
        } else {
            Err(format!(
                "{}: fine-tuning needs a local model or an openai: model",
                job.base
            ))
        }
    }

    fn no_activations(&self, spec: &str) -> Option<String> {
        (!spec.starts_with("local:"))
            .then(|| format!("{spec} is not a local model, so its activations cannot be read"))
    }

    fn train_pm(
        &self,
        job: &PmJob,
        work: &Path,
        out: &mut StageOutput,
    ) -> Result<TrainedPm, String> {
        let name = match local_parts(&job.base) {
            Some((name, None)) => name,
            _ => {
                return Err(format!(
                "{}: a preference model is trained on a local base model (local:NAME, no adapter)",
                job.base
            ))
            }
        };
        let (_, path) = model_file(&format!("local:{name}")).map_err(|e| e.to_string())?;
        let (mut wb, format, tok) = load(&path).map_err(|e| e.to_string())?;
        let data = shammie_train::pm::load_preferences_jsonl(&job.data, &format, &tok)
            .map_err(|e| e.to_string())?;
        if data.is_empty() {
            return Err(format!("{}: no preference pairs", job.data.display()));
        }
        let c = &job.config;
        let run = match existing_run(work)? {
            Some(p) => SftRun::open(&p).map_err(|e| e.to_string())?,
            None => {
                let opts = SftOptions {
                    model: format!("local:{name}"),
                    data: job.data.clone(),
                    train: train_config(c, data.len(), c.rank, c.alpha, c.targets.clone(), None),
                    checkpoint_every: 10,
                    objective: Objective::Preference,
                };
                SftRun::create(work, opts).map_err(|e| e.to_string())?
            }
        };
        let total = run.opts.train.steps as u64;
        let outcome = train_pm(&run, &mut wb, &data, |r| {
            out.progress(r.step as u64 + 1, total);
            true
        })
        .map_err(|e| e.to_string())?;
        let Outcome::Finished(_) = outcome else {
            return Err("training stopped early".into());
        };
        let (abs, steps) = publish(
            &run,
            out,
            "pm",
            &[
                "adapter_config.json",
                "adapter_model.safetensors",
                shammie_train::pm::HEAD_FILE,
                shammie_train::pm::INFO_FILE,
            ],
        )?;
        Ok(TrainedPm {
            path: abs.display().to_string(),
            first_loss: steps.first().map(|s| s.loss),
            last_loss: steps.last().map(|s| s.loss),
            first_accuracy: steps.first().and_then(|s| s.accuracy),
            last_accuracy: steps.last().and_then(|s| s.accuracy),
            steps: steps.len(),
        })
    }

    fn rewards(&self, pm: &str, items: &[(GenerateRequest, String)]) -> Result<Vec<f64>, String> {
        let dir = Path::new(pm);
        let info = shammie_train::pm::read_info(dir).map_err(|e| e.to_string())?;
        let (_, path) = model_file(&info.base).map_err(|e| e.to_string())?;
        let (mut wb, format, tok) = load(&path).map_err(|e| e.to_string())?;
        let (_, head) = shammie_train::pm::attach_pm(&mut wb, dir).map_err(|e| e.to_string())?;
        let seqs = items
            .iter()
            .enumerate()
            .map(|(i, (req, reply))| {
                shammie_train::pm::request_sequence(&format, &tok, req, reply)
                    .map_err(|e| format!("item {}: {e}", i + 1))
            })
            .collect::<Result<Vec<_>, _>>()?;
        shammie_train::pm::rewards(&wb, &head, &seqs, 512).map_err(|e| e.to_string())
    }

    fn influence(
        &self,
        job: &InfluenceJob,
        work: &Path,
        out: &mut StageOutput,
    ) -> Result<InfluenceResult, String> {
        let (mut wb, format, tok) = white_box(&job.model)?;
        wb.set_frozen(true).map_err(|e| e.to_string())?;
        let r = crate::influence_lm::run(job, &mut wb, &format, &tok, work, None, &mut |d, t| {
            out.progress(d, t)
        })?;
        // The factors (gigabytes for a language model) were kept for a resumed attempt;
        // the result is complete, so the run directory does not keep them.
        crate::influence_lm::drop_factors(work);
        Ok(r)
    }

    fn activations(&self, spec: &str, prompts: &[GenerateRequest]) -> Result<Activations, String> {
        let (wb, format, tok) = white_box(spec)?;
        let mut last_token = Vec::with_capacity(prompts.len());
        for req in prompts {
            let text = format.render(req).map_err(|e| e.to_string())?;
            let ids = shammie_local::prompt::prompt_ids(&tok, &text);
            let f = wb.forward(&ids).map_err(|e| e.to_string())?;
            let t = ids.len() - 1;
            let mut per_layer = Vec::with_capacity(f.residual.len());
            for r in &f.residual {
                let row = r
                    .get(t)
                    .and_then(|x| x.to_vec1::<f32>())
                    .map_err(|e| e.to_string())?;
                per_layer.push(row);
            }
            last_token.push(per_layer);
        }
        Ok(Activations {
            last_token,
            layers: wb.cfg.layers,
        })
    }
}
