//! `local:` models behind the `Model` trait.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use candle_core::quantized::gguf_file;
use candle_core::Device;
use shammie_core::{
    Capabilities, Completion, ContinuationScore, GenerateRequest, StopReason, TokenLogprob,
    TopLogprob, Usage,
};
use shammie_models::{Model, ModelError};
use shammie_tokenizer::Tokenizer;

use crate::model::LocalLm;
use crate::prompt::Template;
use crate::sampling::SamplingParams;
use crate::worker::{BatchLimits, Finish, GenRequest, ScoreRequest, Worker};
use crate::LocalError;

/// Most alternatives per token a local model reports.
pub const MAX_TOP_LOGPROBS: u8 = 20;

/// A GGUF model loaded in this process, serving requests through a batching worker.
pub struct LocalModel {
    name: String,
    endpoint: String,
    tokenizer: Arc<Tokenizer>,
    template: Template,
    worker: Worker,
}

impl Drop for LocalModel {
    fn drop(&mut self) {
        let (prompt, reused, hits) = self.prefix_stats();
        tracing::debug!(
            model = %self.name,
            prompt_tokens = prompt,
            reused_tokens = reused,
            requests_reusing = hits,
            "prefix reuse"
        );
    }
}

impl LocalModel {
    /// Loads `path` (a GGUF file) on the CPU (or CUDA with the `cuda` feature).
    pub fn load(name: &str, path: &Path, limits: BatchLimits) -> Result<Self, LocalError> {
        Self::load_with(name, path, limits, None)
    }

    /// Like [`LocalModel::load`], with a LoRA adapter added to the weights. The model is
    /// named `local:NAME+lora=PATH` and its endpoint carries the adapter's SHA-256, so its
    /// answers are cached apart from the base model's and any other adapter's.
    pub fn load_with(
        name: &str,
        path: &Path,
        limits: BatchLimits,
        adapter: Option<&crate::lora::Adapter>,
    ) -> Result<Self, LocalError> {
        Self::load_adapter(name, path, limits, adapter, false)
    }

    /// Like [`LocalModel::load_with`]; with `merge`, the adapter is added into the weights
    /// (re-quantized to Q8_0) instead of run as a separate low-rank path. A merged model
    /// is named `…+lora=PATH+merge`, and its endpoint says so: its numbers differ.
    pub fn load_adapter(
        name: &str,
        path: &Path,
        limits: BatchLimits,
        adapter: Option<&crate::lora::Adapter>,
        merge: bool,
    ) -> Result<Self, LocalError> {
        let file = std::fs::File::open(path)
            .map_err(|e| LocalError::Io(format!("{}: {e}", path.display())))?;
        let mut reader = BufReader::new(file);
        let content = gguf_file::Content::read(&mut reader).map_err(|e| {
            LocalError::Format(format!("{}: not a readable GGUF file: {e}", path.display()))
        })?;
        let tokenizer = Arc::new(
            Tokenizer::from_gguf(&content)
                .map_err(|e| LocalError::Format(format!("{}: {e}", path.display())))?,
        );
        let device = device()?;
        let mut model = LocalLm::load(&content, &mut reader, &device)?;
        if let Some(a) = adapter {
            let n = model.apply_adapter(a, merge)?;
            tracing::info!(adapter = %a.path.display(), projections = n, merge, "LoRA adapter applied");
        }
        // The GGUF's own chat template (a template that does not compile is an error
        // naming the file), else the base-model format.
        let template = crate::prompt::template_for(&tokenizer, &path.display().to_string())
            .map_err(|e| LocalError::Format(e.to_string()))?;
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        tracing::info!(
            model = name,
            template = template.name(),
            "loaded {}",
            path.display()
        );
        // The file's name and size identify the weights for the response cache; an
        // adapter's digest identifies what was added to them.
        let mut endpoint = format!(
            "local {} {size}",
            path.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        // Prompts rendered by the GGUF's template are another text than the hand-written
        // formats gave before: a cache identity of their own.
        if let Template::Jinja(t) = &template {
            endpoint.push_str(&format!(" chat-template sha256:{}", &t.digest()[..16]));
        }
        let mut display = format!("local:{name}");
        if let Some(a) = adapter {
            endpoint.push_str(&format!(" +lora sha256:{}", a.sha256));
            display.push_str(&format!("+lora={}", a.path.display()));
            if merge {
                endpoint.push_str(" merged");
                display.push_str("+merge");
            }
        }
        Ok(LocalModel {
            name: display,
            endpoint,
            worker: Worker::spawn(model, tokenizer.clone(), limits),
            tokenizer,
            template,
        })
    }

    /// How this model's prompts are rendered: the GGUF's chat template, or the base-model
    /// format for a GGUF without one.
    pub fn template(&self) -> &Template {
        &self.template
    }

    /// The prompt text for `req` and its token ids (module [`crate::prompt`]). A
    /// conversation the chat template refuses is an error naming the GGUF.
    pub fn prompt(&self, req: &GenerateRequest) -> Result<(String, Vec<u32>), LocalError> {
        let text = self
            .template
            .render(req)
            .map_err(|e| LocalError::Unsupported(e.to_string()))?;
        let ids = crate::prompt::prompt_ids(&self.tokenizer, &text);
        Ok((text, ids))
    }

    /// Prompt tokens served so far and how many came from cached prefixes, with the
    /// number of requests that reused one: `(prompt tokens, reused tokens, hits)`.
    pub fn prefix_stats(&self) -> (u64, u64, u64) {
        self.worker.prefix_stats().snapshot()
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Log-probability of each continuation (summed over its tokens) after the prompt
    /// that `req` renders to (prefill included). The prompt is run once for all
    /// continuations; each continuation is tokenised on its own, as it would be
    /// generated after the prompt. This is what a scoring request
    /// ([`GenerateRequest::continuations`]) through the `Model` trait returns.
    pub async fn score_continuations(
        &self,
        req: &GenerateRequest,
        continuations: &[String],
    ) -> Result<(Vec<ContinuationScore>, usize), LocalError> {
        let (_, prompt) = self.prompt(req)?;
        let prompt_tokens = prompt.len();
        let continuations: Vec<Vec<u32>> = continuations
            .iter()
            .map(|c| self.tokenizer.encode(c, false))
            .collect();
        if let Some(i) = continuations.iter().position(|c| c.is_empty()) {
            return Err(LocalError::Unsupported(format!(
                "continuation {i} is empty: there is nothing to score"
            )));
        }
        let per_token = self
            .worker
            .score(ScoreRequest {
                prompt,
                continuations,
            })
            .await?;
        let scores = per_token
            .iter()
            .map(|v| ContinuationScore {
                logprob: v.iter().map(|x| *x as f64).sum(),
                tokens: v.len() as u32,
            })
            .collect();
        Ok((scores, prompt_tokens))
    }
}

/// The device models load on: the first CUDA GPU when built with the `cuda` feature and
/// one is present, else the CPU. Training (the white box) uses it too.
pub fn device() -> Result<Device, LocalError> {
    #[cfg(feature = "cuda")]
    {
        if let Ok(d) = Device::new_cuda(0) {
            return Ok(d);
        }
    }
    Ok(Device::Cpu)
}

/// A deterministic seed for requests that give none, so local sampling is reproducible
/// and agrees with the response cache.
fn derived_seed(req: &GenerateRequest) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(req).unwrap_or_default().hash(&mut h);
    h.finish()
}

fn to_model_error(e: LocalError) -> ModelError {
    match e {
        LocalError::Unsupported(m) => ModelError::Rejected {
            status: 400,
            message: m,
        },
        other => ModelError::Server {
            status: 500,
            retry_after: None,
            message: other.to_string(),
        },
    }
}

#[async_trait]
impl Model for LocalModel {
    fn name(&self) -> &str {
        &self.name
    }
    fn endpoint(&self) -> &str {
        &self.endpoint
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_top_logprobs: MAX_TOP_LOGPROBS,
            prefill: true,
            stop_sequences: true,
            system_prompt: true,
            multi_turn: true,
            seed: true,
            score_continuations: true,
            native_tools: false,
        }
    }

    fn rendered_prompt(&self, req: &GenerateRequest) -> Option<String> {
        self.template.render(req).ok()
    }

    async fn generate(&self, req: &GenerateRequest) -> Result<Completion, ModelError> {
        if !req.tools.is_empty() {
            return Err(ModelError::Unsupported(format!(
                "{}: the local runtime has no native tool calling (tools are offered as text tags)",
                self.name()
            )));
        }
        if req.is_scoring() {
            let (scores, prompt_tokens) = self
                .score_continuations(req, &req.continuations)
                .await
                .map_err(to_model_error)?;
            return Ok(Completion {
                text: String::new(),
                logprobs: None,
                tool_calls: Vec::new(),
                usage: Usage {
                    input_tokens: (prompt_tokens
                        + scores.iter().map(|s| s.tokens as usize).sum::<usize>())
                        as u64,
                    output_tokens: 0,
                },
                continuations: Some(scores),
                stop_reason: StopReason::EndTurn,
                meta: Default::default(),
            });
        }
        let (_, prompt) = self.prompt(req).map_err(to_model_error)?;
        let mut stop_strings: Vec<String> = req.stop.clone();
        stop_strings.extend(self.template.stops_for(req));
        let params = SamplingParams {
            temperature: req.temperature.unwrap_or(1.0),
            top_p: req.top_p.unwrap_or(1.0),
            top_k: 0,
        };
        let top_logprobs = req.top_logprobs.unwrap_or(0).min(MAX_TOP_LOGPROBS) as usize;
        let g = self
            .worker
            .generate(GenRequest {
                prompt,
                max_tokens: req.max_tokens.max(1) as usize,
                params,
                seed: req.seed.unwrap_or_else(|| derived_seed(req)),
                stop_strings,
                top_logprobs,
                ignore_end_tokens: false,
            })
            .await
            .map_err(to_model_error)?;
        let logprobs = (top_logprobs > 0).then(|| {
            g.tokens
                .iter()
                .zip(&g.logprobs)
                .map(|(id, (lp, alts))| TokenLogprob {
                    token: self.tokenizer.token_str(*id),
                    logprob: *lp as f64,
                    top: alts
                        .iter()
                        .map(|(a, l)| TopLogprob {
                            token: self.tokenizer.token_str(*a),
                            logprob: *l as f64,
                        })
                        .collect(),
                })
                .collect()
        });
        Ok(Completion {
            text: g.text,
            logprobs,
            continuations: None,
            tool_calls: Vec::new(),
            stop_reason: match g.finish {
                Finish::EndToken => StopReason::EndTurn,
                Finish::StopString => StopReason::StopSequence,
                Finish::MaxTokens => StopReason::MaxTokens,
            },
            usage: Usage {
                input_tokens: g.prompt_tokens as u64,
                output_tokens: g.tokens.len() as u64,
            },
            meta: shammie_core::CallMeta {
                prompt_secs: Some(g.prompt_secs),
                decode_secs: Some(g.decode_secs),
                ..Default::default()
            },
        })
    }
}

/// Maps a model name or path to a GGUF file (or says why it cannot).
type Resolver = dyn Fn(&str) -> Result<PathBuf, String> + Send + Sync;

/// Resolves `local:NAME` specs to files and loads them: once per file (and adapter) while
/// anything holds the model. The loader keeps only weak references, so a model nobody uses
/// any more — an adapted model whose pipeline stage has finished — is freed with its
/// engine thread and prefix cache, and loaded again if asked for again.
pub struct Loader {
    resolve: Box<Resolver>,
    loaded: std::sync::Mutex<std::collections::HashMap<PathBuf, std::sync::Weak<LocalModel>>>,
    limits: BatchLimits,
}

/// The live model under `key`, if any.
fn live(
    loaded: &std::collections::HashMap<PathBuf, std::sync::Weak<LocalModel>>,
    key: &Path,
) -> Option<Arc<LocalModel>> {
    loaded.get(key).and_then(std::sync::Weak::upgrade)
}

/// Remembers `m` under `key`, forgetting models that have been freed.
fn remember(
    loaded: &mut std::collections::HashMap<PathBuf, std::sync::Weak<LocalModel>>,
    key: PathBuf,
    m: &Arc<LocalModel>,
) {
    loaded.retain(|_, w| w.strong_count() > 0);
    loaded.insert(key, Arc::downgrade(m));
}

impl Loader {
    /// `resolve` maps a spec's name (`gemma-3-270m`, a path…) to a GGUF file, fetching it
    /// if the caller allows.
    pub fn new(
        resolve: impl Fn(&str) -> Result<PathBuf, String> + Send + Sync + 'static,
        limits: BatchLimits,
    ) -> Self {
        Loader {
            resolve: Box::new(resolve),
            loaded: Default::default(),
            limits,
        }
    }

    pub fn load(&self, name: &str) -> Result<Arc<LocalModel>, ModelError> {
        let path = (self.resolve)(name).map_err(ModelError::Config)?;
        let mut loaded = self.loaded.lock().unwrap();
        if let Some(m) = live(&loaded, &path) {
            return Ok(m);
        }
        let m = Arc::new(
            LocalModel::load(name, &path, self.limits)
                .map_err(|e| ModelError::Config(format!("local:{name}: {e}")))?,
        );
        remember(&mut loaded, path, &m);
        Ok(m)
    }
}

impl Loader {
    /// The model `name` with the PEFT adapter at `adapter` added (loaded once per adapter
    /// content), merged into the weights with `merge`.
    pub fn load_adapted(
        &self,
        name: &str,
        adapter: &Path,
        merge: bool,
    ) -> Result<Arc<LocalModel>, ModelError> {
        let path = (self.resolve)(name).map_err(ModelError::Config)?;
        let a = crate::lora::Adapter::read(adapter)
            .map_err(|e| ModelError::Config(format!("local:{name}: {e}")))?;
        let key = path.join(format!("+lora-{}-{merge}", a.sha256));
        let mut loaded = self.loaded.lock().unwrap();
        if let Some(m) = live(&loaded, &key) {
            return Ok(m);
        }
        let m = Arc::new(
            LocalModel::load_adapter(name, &path, self.limits, Some(&a), merge)
                .map_err(|e| ModelError::Config(format!("local:{name}: {e}")))?,
        );
        remember(&mut loaded, key, &m);
        Ok(m)
    }
}

impl shammie_models::LocalLoader for Loader {
    /// Reads only the GGUF's metadata (no weights): its chat template and vocabulary.
    fn chat_template(
        &self,
        name: &str,
    ) -> Result<Arc<shammie_models::jinja::ChatTemplate>, ModelError> {
        let path = (self.resolve)(name).map_err(ModelError::Config)?;
        let origin = path.display().to_string();
        let file = std::fs::File::open(&path)
            .map_err(|e| ModelError::Config(format!("template=gguf:{name}: {origin}: {e}")))?;
        let content = gguf_file::Content::read(&mut BufReader::new(file))
            .map_err(|e| ModelError::Config(format!("{origin}: not a readable GGUF file: {e}")))?;
        let tok = Tokenizer::from_gguf(&content)
            .map_err(|e| ModelError::Config(format!("{origin}: {e}")))?;
        match crate::prompt::template_for(&tok, &origin)
            .map_err(|e| ModelError::Config(e.to_string()))?
        {
            Template::Jinja(t) => Ok(t),
            Template::Format(_) => Err(ModelError::Config(format!(
                "template=gguf:{name}: {origin} has no chat template (tokenizer.chat_template); \
                 name a format instead (template=human-assistant, gemma, chatml, llama3)"
            ))),
        }
    }

    fn open(&self, spec: &shammie_models::ModelSpec) -> Result<Arc<dyn Model>, ModelError> {
        match spec.local_parts() {
            (name, None) => Ok(self.load(name)? as Arc<dyn Model>),
            (name, Some(adapter)) => {
                // `+lora=DIR+merge`: the adapter added into the weights.
                let (dir, merge) = match adapter.strip_suffix("+merge") {
                    Some(d) => (d, true),
                    None => (adapter, false),
                };
                Ok(self.load_adapted(name, Path::new(dir), merge)? as Arc<dyn Model>)
            }
        }
    }
}
