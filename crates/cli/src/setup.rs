//! Turning command-line choices and the environment into engine inputs: models by role,
//! the response cache, the runtime. The only place that reads the environment.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use shammie_engine::Models;
use shammie_models::{
    ApiKey, ModelHub, ModelSpec, OpenOptions, ProviderEnv, ResponseCache, RetryPolicy,
};

use crate::progress::pull_progress;

/// Options shared by `run` and `resume`.
#[derive(clap::Args, Clone)]
pub(crate) struct CallArgs {
    /// Most requests in flight per provider endpoint (adaptive below this on 429/overload).
    #[arg(long, default_value_t = 32, value_parser = at_least_one::<usize>, allow_negative_numbers = true)]
    pub max_connections: usize,
    /// Most samples being solved at once [default: --max-connections]. Agent episodes hold
    /// their slot for many turns, so a run of them may want more samples than connections.
    #[arg(long, value_parser = at_least_one::<usize>, allow_negative_numbers = true)]
    pub max_samples: Option<usize>,
    /// Seconds before one request is abandoned (and retried).
    #[arg(long, default_value_t = 120.0, value_parser = seconds, allow_negative_numbers = true)]
    pub timeout: f64,
    /// Attempts per call before the sample is recorded as failed.
    #[arg(long, default_value_t = 8, value_parser = at_least_one::<u32>, allow_negative_numbers = true)]
    pub max_attempts: u32,
    /// Local models: MiB kept for the keys and values of earlier prompts, so a prompt
    /// that starts like one of them reads only its new tokens (0: off; results are
    /// bit-identical either way).
    #[arg(long, default_value_t = 256)]
    pub prefix_cache_mb: usize,
    /// Local models: threads for their kernels [default: all cores] (results are
    /// bit-identical on any number).
    #[arg(long, value_parser = at_least_one::<usize>, allow_negative_numbers = true)]
    pub threads: Option<usize>,
    /// Do not read or write the response cache.
    #[arg(long)]
    pub no_cache: bool,
    /// The response cache file [default: $SHAMMIE_CACHE_DIR or ~/.cache/shammie, file responses.sqlite].
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Prices of API models (TOML, `[[price]]` with provider, model, input, output per
    /// million tokens), replacing or adding to the built-in table.
    #[arg(long)]
    pub prices: Option<PathBuf>,
    /// Stop cleanly, resumable, before provider calls could cost more than USD in this
    /// invocation (list prices; each call counted at its most until it returns). Cache
    /// hits and local models cost nothing.
    #[arg(long, value_name = "USD", value_parser = dollars)]
    pub max_cost: Option<f64>,
    /// The cap's running account, shared by every model this invocation opens.
    #[arg(skip)]
    pub budget: Arc<std::sync::OnceLock<Arc<shammie_models::budget::Budget>>>,
    /// Print machine-readable JSON on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
    /// No progress bar on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// `--batch` (run, resume): the batch API settings, set by the command.
    #[arg(skip)]
    pub batch: Option<shammie_models::BatchOptions>,
    /// Batch states for the progress display.
    #[arg(skip)]
    pub batches: Arc<crate::progress::BatchBoard>,
}

/// `--batch` and its settings (`run`; `resume` takes the settings from run.json).
#[derive(clap::Args, Clone, Debug, Default)]
pub(crate) struct BatchArgs {
    /// Send API calls through the provider's batch API (Anthropic Message Batches, OpenAI
    /// Batch): half the price, answers within 24 hours. Pending batches are kept in the
    /// response cache, so `shammie resume` reconnects to them; the run remembers it.
    #[arg(long)]
    pub batch: bool,
    /// With --batch: send a batch once no new call has come for SECS [default: 2].
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    pub batch_window: Option<f64>,
    /// With --batch: the longest wait between two polls of a batch, in seconds (the first
    /// comes after at most 5) [default: 60].
    #[arg(long, value_name = "SECS", value_parser = seconds)]
    pub batch_poll: Option<f64>,
}

impl BatchArgs {
    /// The settings to record in run.json: these flags over `recorded` (a resumed run's).
    pub(crate) fn settings(
        &self,
        recorded: Option<&shammie_log::BatchUse>,
    ) -> anyhow::Result<Option<shammie_log::BatchUse>> {
        if !self.batch && recorded.is_none() {
            if self.batch_window.is_some() || self.batch_poll.is_some() {
                bail!("--batch-window and --batch-poll go with --batch");
            }
            return Ok(None);
        }
        Ok(Some(shammie_log::BatchUse {
            window_secs: self
                .batch_window
                .or(recorded.map(|r| r.window_secs))
                .unwrap_or(2.0),
            poll_secs: self
                .batch_poll
                .or(recorded.map(|r| r.poll_secs))
                .unwrap_or(60.0),
        }))
    }
}

impl CallArgs {
    /// Calls through the batch API with these settings (models opened from now on).
    pub(crate) fn use_batches(&mut self, b: &shammie_log::BatchUse) {
        let poll = Duration::from_secs_f64(b.poll_secs);
        self.batch = Some(shammie_models::BatchOptions {
            quiet: Duration::from_secs_f64(b.window_secs),
            poll_first: poll.min(Duration::from_secs(5)),
            poll_max: poll,
            observer: Some(self.batches.clone()),
            ..Default::default()
        });
    }
}

/// A count that must be at least 1 (`0` would silently mean 1, or nothing at all).
pub(crate) fn at_least_one<T: std::str::FromStr + PartialOrd + From<u8>>(
    s: &str,
) -> Result<T, String> {
    if s.trim().starts_with('-') {
        return Err(format!("must be at least 1 (got {s})"));
    }
    let v: T = s
        .trim()
        .parse()
        .map_err(|_| format!("expected a whole number, got {s:?}"))?;
    if v < T::from(1) {
        return Err("must be at least 1".into());
    }
    Ok(v)
}

/// A duration in seconds: positive, finite, at most a day.
fn seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("expected a number of seconds, got {s:?}"))?;
    if !(v.is_finite() && v > 0.0 && v <= 86_400.0) {
        return Err(format!(
            "must be more than 0 and at most 86400 seconds (got {s})"
        ));
    }
    Ok(v)
}

/// An amount of US dollars: finite and positive.
fn dollars(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .trim_start_matches('$')
        .parse()
        .map_err(|_| format!("expected an amount of US dollars, got {s:?}"))?;
    if !(v.is_finite() && v > 0.0) {
        return Err(format!("must be more than 0 (got {s})"));
    }
    Ok(v)
}

/// A sampling temperature: finite, between 0 and 2.
pub(crate) fn temperature(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("expected a number, got {s:?}"))?;
    if !(v.is_finite() && (0.0..=2.0).contains(&v)) {
        return Err(format!("must be between 0 and 2 (got {s})"));
    }
    Ok(v)
}

impl CallArgs {
    /// Samples solved at once: `--max-samples`, else `--max-connections`.
    pub(crate) fn samples_in_flight(&self) -> usize {
        self.max_samples.unwrap_or(self.max_connections).max(1)
    }

    /// The `--max-cost` account (one per invocation), if there is a cap.
    pub(crate) fn budget(&self) -> Option<Arc<shammie_models::budget::Budget>> {
        let cap = self.max_cost?;
        Some(
            self.budget
                .get_or_init(|| Arc::new(shammie_models::budget::Budget::new(cap)))
                .clone(),
        )
    }
}

fn env_key(name: &str) -> Option<ApiKey> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|v| ApiKey::new(v.trim()))
}

fn env_str(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

pub(crate) fn provider_env() -> ProviderEnv {
    ProviderEnv {
        anthropic_api_key: env_key("ANTHROPIC_API_KEY"),
        anthropic_base_url: env_str("ANTHROPIC_BASE_URL"),
        openai_api_key: env_key("OPENAI_API_KEY"),
        openai_base_url: env_str("OPENAI_BASE_URL"),
        compatible_api_key: env_key("OPENAI_COMPATIBLE_API_KEY"),
    }
}

pub(crate) fn cache_path(args: &CallArgs) -> PathBuf {
    if let Some(p) = &args.cache {
        return p.clone();
    }
    let dir = env_str("SHAMMIE_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            env_str("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| env_str("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .unwrap_or_else(|| PathBuf::from(".cache"))
                .join("shammie")
        });
    dir.join("responses.sqlite")
}

/// `ROLE=SPEC` or a bare `SPEC` (the target).
pub(crate) fn parse_role_specs(items: &[String]) -> anyhow::Result<BTreeMap<String, ModelSpec>> {
    let mut out = BTreeMap::new();
    for item in items {
        let (role, spec) = match item.split_once('=') {
            Some((r, s)) if !r.contains(':') && !r.is_empty() => (r.trim().to_string(), s),
            _ => ("target".to_string(), item.as_str()),
        };
        let spec: ModelSpec = spec.parse()?;
        if out.insert(role.clone(), spec).is_some() {
            bail!("--model given twice for the `{role}` role");
        }
    }
    Ok(out)
}

/// A task's refusal of the models it was given (`Task::check_models`), with what each
/// OpenAI-compatible spec could declare to offer more (`?completions=true`, `?prefill=true`).
pub(crate) fn with_feature_hints(
    e: shammie_engine::EngineError,
    specs: &BTreeMap<String, ModelSpec>,
) -> anyhow::Error {
    let hints: Vec<String> = specs.values().filter_map(ModelSpec::feature_hint).collect();
    if hints.is_empty() {
        e.into()
    } else {
        anyhow::anyhow!("{e}. {}", hints.join(". "))
    }
}

/// Where pulled models live and how to reach the package index and the hub.
pub(crate) fn hub_config() -> shammie_hub::HubConfig {
    let dir = env_str("SHAMMIE_MODELS_DIR")
        .map(PathBuf::from)
        .or_else(shammie_hub::default_cache_dir)
        .unwrap_or_else(|| PathBuf::from(".shammie-models"));
    let mut cfg = shammie_hub::HubConfig::new(dir);
    if let Some(u) = env_str("SHAMMIE_PYPI_URL") {
        cfg.pypi_url = u;
    }
    if let Some(u) = env_str("SHAMMIE_HF_URL") {
        cfg.hf_url = u;
    }
    cfg.hf_token = env_str("HF_TOKEN");
    cfg.offline = env_str("SHAMMIE_OFFLINE").is_some_and(|v| v != "0");
    cfg
}

/// Finds a local model by name or path, pulling it first if it is a known model that is
/// not installed yet (with progress on stderr).
pub(crate) fn resolve_model_file(name: &str) -> Result<PathBuf, String> {
    let cfg = hub_config();
    if let Some(p) = shammie_hub::resolve_local(&cfg, name).map_err(|e| e.to_string())? {
        return Ok(p);
    }
    eprintln!(
        "model `{name}` is not installed; pulling it into {}",
        cfg.cache_dir.display()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(shammie_hub::pull(&cfg, name, &pull_progress))
        .map_err(|e| e.to_string())
}

pub(crate) fn open_models(
    specs: &BTreeMap<String, ModelSpec>,
    args: &CallArgs,
) -> anyhow::Result<Models> {
    open_models_as(specs, args, false)
}

/// The models of `--dry-run`: answering from the cache or with estimates, never sending.
pub(crate) fn open_models_dry(
    specs: &BTreeMap<String, ModelSpec>,
    args: &CallArgs,
) -> anyhow::Result<Models> {
    open_models_as(specs, args, true)
}

/// The price table in force (`--prices` over the built-in one).
pub(crate) fn prices(args: &CallArgs) -> anyhow::Result<shammie_models::pricing::PriceTable> {
    Ok(match &args.prices {
        Some(p) => shammie_models::pricing::PriceTable::with_file(p)?,
        None => shammie_models::pricing::PriceTable::builtin(),
    })
}

fn open_models_as(
    specs: &BTreeMap<String, ModelSpec>,
    args: &CallArgs,
    dry: bool,
) -> anyhow::Result<Models> {
    let cache = if args.no_cache {
        None
    } else {
        let p = cache_path(args);
        Some(Arc::new(ResponseCache::open(&p).with_context(|| {
            "opening the response cache (use --no-cache to run without it)"
        })?))
    };
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        bail!("--timeout must be a positive number of seconds");
    }
    let prices = Arc::new(prices(args)?);
    shammie_local::threads::set(args.threads.unwrap_or(0));
    let hub = Arc::new(ModelHub::new(OpenOptions {
        budget: args.budget(),
        batch: args.batch.clone(),
        prices,
        env: provider_env(),
        max_connections: args.max_connections.max(1),
        timeout: Duration::from_secs_f64(args.timeout),
        retry: RetryPolicy {
            max_attempts: args.max_attempts.max(1),
            ..RetryPolicy::default()
        },
        cache,
        local: Some(Arc::new(shammie_local::Loader::new(
            resolve_model_file,
            shammie_local::BatchLimits {
                max_sequences: args.max_connections.clamp(1, 256),
                prefix_cache_bytes: args.prefix_cache_mb.saturating_mul(1 << 20),
                ..Default::default()
            },
        ))),
    })?);
    let mut map = BTreeMap::new();
    for (role, spec) in specs {
        let m = if dry {
            hub.open_dry(spec)?
        } else {
            hub.open(spec)?
        };
        map.insert(role.clone(), m);
    }
    let lab = crate::lab::CliLab {
        hub,
        env: provider_env(),
        timeout: Duration::from_secs_f64(args.timeout),
        retry: RetryPolicy {
            max_attempts: args.max_attempts.max(1),
            ..RetryPolicy::default()
        },
        poll: shammie_models::openai_finetune::PollOptions {
            interval: Duration::from_secs_f64(
                env_str("SHAMMIE_FINE_TUNE_POLL_SECS")
                    .and_then(|s| s.parse::<f64>().ok())
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .unwrap_or(30.0),
            ),
            ..Default::default()
        },
        embedders: Default::default(),
    };
    Ok(Models::new(map).with_lab(Arc::new(lab)))
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// `key=value` pairs from `--set`.
pub(crate) fn parse_sets(items: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for s in items {
        let Some((k, v)) = s.split_once('=') else {
            bail!("--set {s:?}: expected key=value");
        };
        if out.insert(k.trim().to_string(), v.to_string()).is_some() {
            bail!("--set {}: given twice; give each option once", k.trim());
        }
    }
    Ok(out)
}
