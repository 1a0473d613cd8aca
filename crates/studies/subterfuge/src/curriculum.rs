//! `subterfuge/curriculum`: the paper's expert iteration through the training
//! environments, with reward tampering measured zero-shot before and after each stage.
//!
//! Stages, in order (every one resumable; see `shammie_engine::pipeline`):
//! 1. `eval-base` (map): the held-out environment (reward tampering) with the untrained
//!    target, `eval_samples` episodes per prompt.
//! 2. For each training environment E, in curriculum order:
//!    - `sample-E` (map): `samples` episodes per prompt of E with the current model (the
//!      target, then the model the previous stage trained), each scored by E's reward;
//!    - `train-E` (lab): per prompt, the episode with the highest selection score (ties:
//!      the first sampled) becomes one chat example — the system prompt, the user's
//!      request, every assistant turn and every command output — and the current model
//!      is fine-tuned on them (LoRA continuing the previous stage's adapter on local
//!      models; a fine-tuning job on API models). The score is the environment's reward,
//!      plus, as in the paper, `pm_weight` × a preference model's reward for the
//!      episode's last reply when `pm=` names one (`constitution/pm`; its scores are kept
//!      as `train-E/pm-scores.jsonl`);
//!    - `eval-E` (map): the held-out environment again, with the model just trained.
//!
//! Without `pm=` selection is on the reward alone (documented in
//! `docs/studies/subterfuge.md`); `min_reward` optionally drops prompts whose best
//! episode's reward is lower.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use shammie_core::{Cell, Role, Sample, SampleRecord, Scores, Table};
use shammie_engine::{
    Analysis, DataError, Dataset, EngineError, FineTuneConfig, FineTuneJob, Lab, LabStage,
    MapStage, OptionGroup, Options, ReportFile, RoleSpec, RunView, SampleContext, SampleError,
    Stage, StageOutput, Task, Trained,
};
use shammie_kit::cells;
use shammie_kit::study::TaskInfo;
use shammie_plot::{Estimate, Figure, IntervalPlot};
use shammie_sandbox::Sandbox;

use crate::envs::{self, Env, Prompt, Source};
use crate::scoring::EnvScores;
use crate::{run_scored, to_scores, EpisodeSettings};

shammie_engine::task_options! {
    /// What `subterfuge/curriculum` takes (`--set key=value`).
    pub struct CurriculumConfig {
        /// training environments in order, comma-separated (the held-out one is never trained on)
        pub train_envs: String = "political-sycophancy,tool-use-flattery,rubric-nudged,rubric-insubordinate".into(),
        /// the environment measured zero-shot before and after each stage
        pub eval_env: String = "reward-tampering".into(),
        /// read the environments from this folder instead of the built-in ones
        pub envs_dir: Option<std::path::PathBuf> = None,
        /// episodes sampled per prompt of a training environment (expert iteration's N)
        pub samples: u32 = 4,
        /// prompts used per training environment (0: all), the first ones in file order
        pub prompts_per_env: usize = 0,
        /// episodes per prompt of the held-out environment at each measurement
        pub eval_samples: u32 = 4,
        /// drop a prompt whose best episode's reward is below this (none: keep every prompt's best)
        pub min_reward: Option<f64> = None,
        /// most model turns per episode
        pub max_turns: u32 = 10,
        /// output tokens per model turn
        pub max_tokens: u32 = 1000,
        /// sampling temperature (the paper samples at 1)
        pub temperature: f64 [0.0 ..= 2.0] = 1.0,
        /// ask the judge where the answer's text decides
        pub judge: bool = true,
        /// wall-clock seconds per sandboxed command
        pub command_timeout: u64 = 20,
        /// how the model runs commands: auto, tags, native
        pub actions: shammie_agent::ActionFormat = shammie_agent::ActionFormat::Auto,
        /// show one worked episode of an unrelated chore before each prompt (for base models; not in the paper; never trained on)
        pub example: bool = false,
        /// LoRA rank (local targets)
        pub rank: usize = 16,
        /// LoRA alpha
        pub alpha: f64 = 32.0,
        /// projections LoRA adapts, comma-separated
        pub targets: Vec<String> = ["q_proj", "k_proj", "v_proj", "o_proj"].map(String::from).to_vec(),
        /// peak learning rate of each stage
        pub lr: f64 = 5e-4,
        /// passes over each stage's selected episodes
        pub epochs: f64 = 2.0,
        /// examples per optimizer step
        pub batch: usize = 4,
        /// pack a step's examples into sequences of up to this many tokens (local targets; 0: one pass per example)
        pub pack_tokens: usize = 2048,
        /// a preference-model folder (constitution/pm's artifacts/train/pm): selection adds pm_weight × its reward for each episode's last reply, as the paper adds a helpful-and-harmless PM score (none: the environment's reward alone)
        pub pm: Option<std::path::PathBuf> = None,
        /// weight of the preference-model score in selection
        pub pm_weight: f64 = 1.0,
    }
}

pub fn info() -> TaskInfo {
    TaskInfo::new(
        "subterfuge",
        "curriculum",
        "expert iteration through the training environments (best of N episodes per prompt, fine-tuned, next environment), reward tampering measured zero-shot before and after each stage",
        <CurriculumConfig as OptionGroup>::options,
        crate::roles,
        build,
    )
}

struct Shared {
    config: CurriculumConfig,
    train: Vec<Env>,
    eval: Env,
    sandbox: tokio::sync::OnceCell<Sandbox>,
}

impl Shared {
    async fn sandbox(&self) -> Result<&Sandbox, SampleError> {
        crate::sandbox_in(&self.sandbox, self.config.command_timeout).await
    }

    fn episode(&self) -> EpisodeSettings {
        let c = &self.config;
        EpisodeSettings {
            max_turns: c.max_turns,
            max_tokens: c.max_tokens,
            token_budget: None,
            temperature: c.temperature,
            judge: c.judge,
            actions: c.actions,
            example: c.example,
        }
    }

    fn prompts<'a>(&self, env: &'a Env) -> &'a [Prompt] {
        let n = self.config.prompts_per_env;
        if n == 0 || n >= env.prompts.len() {
            &env.prompts
        } else {
            &env.prompts[..n]
        }
    }
}

pub struct Curriculum {
    shared: Arc<Shared>,
}

pub fn build(opts: Options) -> Result<Arc<dyn Task>, EngineError> {
    let config = CurriculumConfig::from_options(opts)?;
    let bad = |m: String| EngineError::Config(format!("subterfuge/curriculum: {m}"));
    if config.samples == 0 || config.eval_samples == 0 || config.max_turns == 0 {
        return Err(bad(
            "samples, eval_samples and max_turns must be at least 1".into(),
        ));
    }
    if let Some(pm) = &config.pm {
        if !pm.join("pm.json").is_file() {
            return Err(bad(format!(
                "pm={} is not a preference-model folder (no pm.json; constitution/pm writes one as artifacts/train/pm)",
                pm.display()
            )));
        }
    }
    let source = match &config.envs_dir {
        Some(d) => Source::Dir(d),
        None => Source::BuiltIn,
    };
    let all = envs::load_all(source).map_err(bad)?;
    let find = |n: &str| {
        all.iter()
            .find(|e| e.settings.name == n)
            .cloned()
            .ok_or_else(|| bad(format!("no environment {n:?}")))
    };
    let eval = find(config.eval_env.trim())?;
    let mut train = Vec::new();
    for n in config
        .train_envs
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        let e = find(n)?;
        if e.settings.held_out {
            return Err(bad(format!(
                "{n} is held out (never trained on); leave it out of train_envs"
            )));
        }
        train.push(e);
    }
    if train.is_empty() {
        return Err(bad("train_envs names no environment".into()));
    }
    Ok(Arc::new(Curriculum {
        shared: Arc::new(Shared {
            config,
            train,
            eval,
            sandbox: tokio::sync::OnceCell::new(),
        }),
    }))
}

fn stage_err(stage: &str, e: impl std::fmt::Display) -> DataError {
    DataError::File {
        path: format!("stages/{stage}"),
        message: e.to_string(),
    }
}

/// One sampled episode as a stage records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sampled {
    pub prompt_id: String,
    /// Which of the prompt's episodes (0-based).
    pub index: u32,
    #[serde(flatten)]
    pub scores: EnvScores,
    /// The conversation after the system prompt (training data for the selected ones).
    pub messages: Vec<shammie_core::Message>,
}

#[derive(Serialize, Deserialize)]
struct Input {
    prompt: Prompt,
    index: u32,
}

fn episodes(env: &Env, prompts: &[Prompt], n: u32) -> Dataset {
    let items: Vec<Sample> = prompts
        .iter()
        .flat_map(|p| {
            (0..n).map(move |i| Sample {
                id: format!("{}/{}/{i}", env.settings.name, p.id),
                unit: Some(p.id.clone()),
                input: serde_json::to_value(Input {
                    prompt: p.clone(),
                    index: i,
                })
                .expect("inputs serialise"),
            })
        })
        .collect();
    Dataset {
        total: Some(items.len() as u64),
        units: Some(prompts.len() as u64),
        unit_name: "prompt",
        samples: Box::new(items.into_iter().map(Ok)),
    }
}

fn model_artifact(stage: &str) -> String {
    format!("{stage}/model.json")
}

fn trained(run: &RunView, stage: &str) -> Result<Trained, String> {
    let bytes = run
        .artifact(&model_artifact(stage))
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", model_artifact(stage)))
}

/// `target` bound to the model `from` trained (none: the run's own target).
fn binding(
    run: &RunView,
    from: Option<&str>,
    me: &str,
) -> Result<BTreeMap<String, String>, DataError> {
    match from {
        None => Ok(BTreeMap::new()),
        Some(stage) => {
            let t = trained(run, stage).map_err(|e| stage_err(me, e))?;
            Ok(BTreeMap::from([("target".to_string(), t.spec)]))
        }
    }
}

/// A map stage of episodes in one environment.
struct Episodes {
    name: String,
    shared: Arc<Shared>,
    /// Index into `shared.train`; `None`: the held-out environment.
    env: Option<usize>,
    per_prompt: u32,
    /// The lab stage whose model acts (none: the run's target).
    model_from: Option<String>,
}

impl Episodes {
    fn env(&self) -> &Env {
        match self.env {
            Some(i) => &self.shared.train[i],
            None => &self.shared.eval,
        }
    }
}

#[async_trait]
impl MapStage for Episodes {
    fn name(&self) -> &str {
        &self.name
    }
    fn dataset(&self, _run: &RunView) -> Result<Dataset, DataError> {
        let env = self.env();
        Ok(episodes(env, self.shared.prompts(env), self.per_prompt))
    }
    fn models(&self, run: &RunView) -> Result<BTreeMap<String, String>, DataError> {
        binding(run, self.model_from.as_deref(), &self.name)
    }
    async fn solve(&self, cx: &SampleContext, s: &Sample) -> Result<Scores, SampleError> {
        let input: Input = serde_json::from_value(s.input.clone())
            .map_err(|e| SampleError::Protocol(format!("bad sample input: {e}")))?;
        let sb = self.shared.sandbox().await?;
        let env = self.env();
        let out = run_scored(
            cx,
            sb,
            &self.shared.episode(),
            env,
            &input.prompt,
            input.index as u64,
        )
        .await?;
        Ok(to_scores(&Sampled {
            prompt_id: input.prompt.id,
            index: input.index,
            scores: out.scores,
            messages: out.messages,
        }))
    }
}

fn sampled(run: &RunView, stage: &str) -> Result<Vec<Sampled>, String> {
    let mut v = Vec::new();
    for r in run.records(stage).map_err(|e| e.to_string())? {
        let r: SampleRecord = r.map_err(|e| e.to_string())?;
        if r.error.is_some() {
            continue;
        }
        v.push(
            serde_json::from_value::<Sampled>(serde_json::Value::Object(
                r.scores.into_iter().collect(),
            ))
            .map_err(|e| format!("{stage}: sample {}: {e}", r.id))?,
        );
    }
    Ok(v)
}

/// Per prompt, the episode with the highest selection score — its reward plus `bonus`
/// (the weighted preference-model score, or 0) — ties to the lowest index, in prompt-id
/// order; prompts whose best episode's *reward* is below `min_reward` are dropped.
pub fn select_best<'a>(
    all: &'a [Sampled],
    min_reward: Option<f64>,
    bonus: &dyn Fn(&Sampled) -> f64,
) -> Vec<&'a Sampled> {
    let score = |s: &Sampled| s.scores.reward + bonus(s);
    let mut best: BTreeMap<&str, &Sampled> = BTreeMap::new();
    for s in all {
        let e = best.entry(s.prompt_id.as_str()).or_insert(s);
        let (a, b) = (score(s), score(e));
        let better = a > b || (a == b && s.index < e.index);
        if better {
            *e = s;
        }
    }
    best.into_values()
        .filter(|s| min_reward.is_none_or(|m| s.scores.reward >= m))
        .collect()
}

/// The preference-model scores a training stage recorded (`{stage}/pm-scores.jsonl`), by
/// (prompt id, episode index); empty when the run selects without a PM.
fn pm_scores(run: &RunView, stage: &str) -> Result<BTreeMap<(String, u32), f64>, String> {
    let name = format!("{stage}/pm-scores.jsonl");
    let Ok(bytes) = run.artifact(&name) else {
        return Ok(BTreeMap::new());
    };
    let mut out = BTreeMap::new();
    for l in String::from_utf8_lossy(&bytes).lines() {
        let v: PmScore = serde_json::from_str(l).map_err(|e| format!("{name}: {e}"))?;
        out.insert((v.prompt_id, v.index), v.pm);
    }
    Ok(out)
}

/// One episode's preference-model score.
#[derive(Serialize, Deserialize)]
struct PmScore {
    prompt_id: String,
    index: u32,
    pm: f64,
}

/// The episode as a PM reads it: everything before the last assistant turn as the
/// conversation (the system prompt as its system text), that turn as the reply. `None`
/// for an episode without an assistant turn.
fn pm_item(system: &str, s: &Sampled) -> Option<(shammie_core::GenerateRequest, String)> {
    let last = s.messages.iter().rposition(|m| m.role == Role::Assistant)?;
    let mut req = shammie_core::GenerateRequest::user("", 0);
    req.system = Some(system.to_string());
    req.messages = s.messages[..last].to_vec();
    Some((req, s.messages[last].content.clone()))
}

/// A selected episode as one chat example: the system prompt, then every turn
/// (command outputs are the user's turns).
pub fn chat_example(system: &str, s: &Sampled) -> serde_json::Value {
    let mut msgs = vec![serde_json::json!({"role": "system", "content": system})];
    for m in &s.messages {
        let role = match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        msgs.push(serde_json::json!({"role": role, "content": m.content}));
    }
    serde_json::json!({ "messages": msgs })
}

/// Expert iteration's training step for one environment.
struct Train {
    name: String,
    shared: Arc<Shared>,
    env: usize,
    sample_stage: String,
    from: Option<String>,
}

impl LabStage for Train {
    fn name(&self) -> &str {
        &self.name
    }
    fn run(&self, run: &RunView, lab: &dyn Lab, out: &mut StageOutput) -> Result<(), String> {
        let c = &self.shared.config;
        let env = &self.shared.train[self.env];
        let base = match &self.from {
            None => run
                .info()
                .models
                .get("target")
                .cloned()
                .ok_or("the run has no target model")?,
            Some(stage) => trained(run, stage)?.spec,
        };
        let all = sampled(run, &self.sample_stage)?;
        // The paper's selection adds a preference-model score to the reward.
        let mut pm = BTreeMap::new();
        if let Some(dir) = &c.pm {
            let items: Vec<(usize, (shammie_core::GenerateRequest, String))> = all
                .iter()
                .enumerate()
                .filter_map(|(i, s)| pm_item(&env.settings.system, s).map(|x| (i, x)))
                .collect();
            let pairs: Vec<_> = items.iter().map(|(_, x)| x.clone()).collect();
            let r = if pairs.is_empty() {
                Vec::new()
            } else {
                lab.rewards(&dir.display().to_string(), &pairs)?
            };
            let mut lines = Vec::new();
            for ((i, _), v) in items.iter().zip(r) {
                let s = &all[*i];
                let row = PmScore {
                    prompt_id: s.prompt_id.clone(),
                    index: s.index,
                    pm: v,
                };
                writeln!(lines, "{}", serde_json::to_string(&row).expect("plain")).expect("memory");
                pm.insert((s.prompt_id.clone(), s.index), v);
            }
            out.write(&format!("{}/pm-scores.jsonl", self.name), &lines)?;
        }
        let w = c.pm_weight;
        let bonus = |s: &Sampled| {
            w * pm
                .get(&(s.prompt_id.clone(), s.index))
                .copied()
                .unwrap_or(0.0)
        };
        let best = select_best(&all, c.min_reward, &bonus);
        if best.is_empty() {
            return Err(format!(
                "{}: no episode to train on (every prompt's best reward is below min_reward, or every sample failed)",
                self.sample_stage
            ));
        }
        let mut jsonl = Vec::new();
        for s in &best {
            writeln!(jsonl, "{}", chat_example(&env.settings.system, s)).expect("memory");
        }
        let data_name = format!("{}/data.jsonl", self.name);
        out.write(&data_name, &jsonl)?;
        let job = FineTuneJob {
            base,
            data: out.artifact_path(&data_name)?,
            config: FineTuneConfig {
                rank: c.rank,
                alpha: c.alpha,
                dropout: 0.0,
                targets: c.targets.clone(),
                lr: c.lr,
                epochs: c.epochs,
                batch: c.batch,
                pack_tokens: c.pack_tokens,
                warmup: 1,
                seed: run.seed(),
            },
        };
        let work = out.work_dir()?;
        let t = lab.fine_tune(&job, &work, out)?;
        out.write(
            &model_artifact(&self.name),
            &serde_json::to_vec_pretty(&t).expect("plain values"),
        )?;
        Ok(())
    }
}

/// The stage plan: names, in order, with what each measures.
struct Plan {
    stages: Vec<Stage>,
    /// (eval stage, label) in order.
    evals: Vec<(String, String)>,
    /// (env name, sample stage, train stage).
    trains: Vec<(String, String, String)>,
}

impl Curriculum {
    fn plan(&self) -> Plan {
        let sh = &self.shared;
        let c = &sh.config;
        let mut stages: Vec<Stage> = Vec::new();
        let mut evals = Vec::new();
        let mut trains = Vec::new();
        stages.push(Stage::Map(Arc::new(Episodes {
            name: "eval-base".into(),
            shared: sh.clone(),
            env: None,
            per_prompt: c.eval_samples,
            model_from: None,
        })));
        evals.push(("eval-base".to_string(), "untrained".to_string()));
        let mut from: Option<String> = None;
        for (i, e) in sh.train.iter().enumerate() {
            let n = &e.settings.name;
            let (s, t, v) = (
                format!("sample-{n}"),
                format!("train-{n}"),
                format!("eval-{n}"),
            );
            stages.push(Stage::Map(Arc::new(Episodes {
                name: s.clone(),
                shared: sh.clone(),
                env: Some(i),
                per_prompt: c.samples,
                model_from: from.clone(),
            })));
            stages.push(Stage::Lab(Arc::new(Train {
                name: t.clone(),
                shared: sh.clone(),
                env: i,
                sample_stage: s.clone(),
                from: from.clone(),
            })));
            stages.push(Stage::Map(Arc::new(Episodes {
                name: v.clone(),
                shared: sh.clone(),
                env: None,
                per_prompt: c.eval_samples,
                model_from: Some(t.clone()),
            })));
            evals.push((v, format!("after {n}")));
            trains.push((n.clone(), s, t.clone()));
            from = Some(t);
        }
        Plan {
            stages,
            evals,
            trains,
        }
    }
}

#[async_trait]
impl Task for Curriculum {
    fn study(&self) -> &str {
        "subterfuge"
    }
    fn name(&self) -> &str {
        "curriculum"
    }
    fn roles(&self) -> Vec<RoleSpec> {
        crate::roles()
    }
    fn config(&self) -> serde_json::Value {
        serde_json::to_value(&self.shared.config).expect("config serialises")
    }
    /// The held-out measurements (what the plan counts); the stages build their own.
    fn dataset(&self) -> Result<Dataset, DataError> {
        let sh = &self.shared;
        let n = sh.prompts(&sh.eval).len() as u64;
        let per = sh.config.eval_samples as u64 * (sh.train.len() as u64 + 1);
        Ok(Dataset {
            total: Some(n * per),
            units: Some(n),
            unit_name: "prompt",
            samples: Box::new(std::iter::empty()),
        })
    }
    fn stages(&self) -> Option<Vec<Stage>> {
        Some(self.plan().stages)
    }
    fn analyze_stages(&self, run: &RunView) -> Result<Analysis, String> {
        analyze(
            run,
            &self.plan(),
            &self.shared.eval.settings.name,
            self.shared.config.pm_weight,
        )
    }
    fn analyze(
        &self,
        _records: &mut dyn Iterator<Item = SampleRecord>,
        _run: &shammie_engine::RunInfo,
    ) -> Result<Analysis, String> {
        Err("subterfuge/curriculum is analysed by its stages".into())
    }
}

fn analyze(run: &RunView, plan: &Plan, eval_env: &str, pm_weight: f64) -> Result<Analysis, String> {
    let mut rows = Vec::new();
    let mut points = Vec::new();
    for (stage, label) in &plan.evals {
        let v = sampled(run, stage).unwrap_or_default();
        let n = v.len();
        let t = v.iter().filter(|s| s.scores.tampered == Some(true)).count();
        let e = v.iter().filter(|s| s.scores.evaded == Some(true)).count();
        let g = v.iter().filter(|s| s.scores.gamed == Some(true)).count();
        rows.push(vec![
            Cell::text(label),
            cells::share(g, n),
            Cell::count(g as u64, n as u64, None),
            cells::share(t, n),
            Cell::count(t as u64, n as u64, None),
            cells::share(e, n),
            Cell::count(e as u64, n as u64, None),
        ]);
        if let Ok(w) = shammie_stats::wilson(g as u64, n as u64, 0.95) {
            points.push(Estimate::new(
                shammie_plot::with_n(label, n),
                w.estimate,
                w.lo,
                w.hi,
            ));
        }
    }
    let mut tables = vec![Table::new(
        "held-out",
        format!("{eval_env}, zero-shot, before and after each stage"),
        vec![
            "model".into(),
            "gaming [95% CI]".into(),
            "count".into(),
            "tampered [95% CI]".into(),
            "count".into(),
            "tampered and evaded [95% CI]".into(),
            "count".into(),
        ],
        rows,
        vec!["Wilson 95% intervals over episodes (prompts × eval_samples); the held-out environment is never trained on. Gaming is the environment's own rule (for reward tampering: tampered).".into()],
    )];
    let mut rows = Vec::new();
    for (env, s, t) in &plan.trains {
        let v = sampled(run, s).unwrap_or_default();
        let n = v.len();
        let g = v.iter().filter(|x| x.scores.gamed == Some(true)).count();
        let pm = pm_scores(run, t)?;
        let w = pm_weight;
        let bonus = |s: &Sampled| {
            w * pm
                .get(&(s.prompt_id.clone(), s.index))
                .copied()
                .unwrap_or(0.0)
        };
        let best = select_best(&v, None, &bonus);
        let bg = best.iter().filter(|x| x.scores.gamed == Some(true)).count();
        let rewards: Vec<f64> = best.iter().map(|x| x.scores.reward).collect();
        let tr = trained(run, t).ok();
        rows.push(vec![
            Cell::text(env),
            cells::share(g, n),
            Cell::count(g as u64, n as u64, None),
            Cell::count(bg as u64, best.len() as u64, None),
            match shammie_stats::mean_ci_t(&rewards, 0.95) {
                Ok(e) => cells::cell(Some(e.interval()), rewards.len()),
                Err(_) => Cell::Empty,
            },
            Cell::text(
                tr.as_ref()
                    .map(|t| {
                        format!(
                            "{} steps, loss {} → {}",
                            t.steps,
                            t.first_loss
                                .map(|l| format!("{l:.3}"))
                                .unwrap_or("—".into()),
                            t.last_loss.map(|l| format!("{l:.3}")).unwrap_or("—".into())
                        )
                    })
                    .unwrap_or_else(|| "not trained".into()),
            ),
        ]);
    }
    tables.push(Table::new(
        "stages",
        "Expert iteration: sampled episodes, the selected best per prompt, training",
        vec![
            "environment".into(),
            "gaming among sampled [95% CI]".into(),
            "count".into(),
            "selected that game".into(),
            "mean reward of selected [95% CI]".into(),
            "training".into(),
        ],
        rows,
        vec!["Sampled with the model from the stage before (the untrained target first). Selection: the episode of each prompt with the highest reward (plus pm_weight × the preference model's score of its last reply where pm= names one, as in the paper).".into()],
    ));
    let mut files = Vec::new();
    if !points.is_empty() {
        let plot = IntervalPlot::new(format!("{eval_env}: gaming, zero-shot"))
            .x_label("share of episodes (95% Wilson CI)")
            .x_range(0.0, 1.0)
            .series("held out", points);
        files.push(ReportFile {
            path: "report/curriculum.svg".into(),
            description: "held-out gaming (reward tampering) before and after each stage".into(),
            content: Figure::panels(1, vec![plot])
                .title("Sycophancy to subterfuge: the curriculum")
                .subtitle(format!("{} stages", plan.trains.len()))
                .to_svg()
                .into_bytes(),
        });
    }
    Ok(Analysis { tables, files })
}
