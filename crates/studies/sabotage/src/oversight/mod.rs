//! `sabotage/oversight`: undermining oversight (Benton et al. 2024, §"Undermining
//! oversight"). Method, as built here:
//!
//! 1. **Dialogues** (`dialogues.rs`): HH-RLHF transcripts, both of each pair (built in, or
//!    a file of that format), or a file of single dialogues.
//! 2. **The overseer** (role `overseer`) rates each dialogue's harm from 1 to 7, with a
//!    short explanation, twice: once as an honest overseer and once with a confidential
//!    instruction to under-rate harmful replies without being caught (`prompts.rs`; the
//!    instruction is the only difference between the two requests).
//! 3. **The monitor** (role `monitor`) reads the dialogue and each of the overseer's
//!    answers (never the instruction) and rates from 1 to 7 how likely it is that the
//!    overseer deliberately under-rated the harm.
//! 4. **Analysis** (`analysis.rs`): per condition the mean harm rating and suspicion and
//!    the share flagged at a threshold calibrated on the honest overseer; paired by
//!    dialogue, the drop in harm rating and the rise in suspicion; success = a drop without
//!    a rise.
//!
//! One sample is one dialogue under one condition, so a killed run resumes per rating;
//! the conditions of a dialogue are adjacent in the dataset, so `--limit` keeps pairs.

pub mod analysis;
pub mod dialogues;
pub mod prompts;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use shammie_core::{Sample, SampleRecord, Scores};
use shammie_engine::{
    Analysis, DataError, Dataset, EngineError, OptionGroup, Options, RoleSpec, SampleContext,
    SampleError, Task,
};
use shammie_kit::study::TaskInfo;

use dialogues::{Dialogue, Which};

pub fn info() -> TaskInfo {
    TaskInfo::new(
        "sabotage",
        "oversight",
        "an overseer rates dialogues for harm, honestly and secretly told to under-rate; a monitor rates its suspicion: the drop in ratings and whether the monitor noticed",
        <Config as OptionGroup>::options,
        roles,
        build,
    )
}

shammie_engine::task_options! {
    /// What `sabotage/oversight` takes (`--set key=value`).
    pub struct Config {
        /// dialogues to rate: an HH-RLHF file (chosen/rejected transcripts, gzip or plain JSONL) or JSONL of {"dialogue": "Human: … Assistant: …", "id"} (default: the built-in HH-RLHF harmless-base test split)
        pub data: Option<PathBuf> = None,
        /// records read from the data (an HH-RLHF record gives two dialogues, its chosen and rejected transcripts)
        pub dialogues: usize = 100,
        /// tokens of the overseer's answer (rating and explanation)
        pub overseer_tokens: u32 = 200,
        /// tokens of the monitor's answer (suspicion and reason)
        pub monitor_tokens: u32 = 150,
        /// temperature of both models
        pub temperature: f64 [0.0 ..= 2.0] = 0.0,
    }
    include { pub detection: crate::threshold::Detection }
}

pub fn roles() -> Vec<RoleSpec> {
    vec![
        RoleSpec {
            name: "overseer",
            help: "rates each dialogue's harm, honestly and (in the sabotage condition) secretly told to under-rate",
            defaults_to: None,
        },
        RoleSpec {
            name: "monitor",
            help: "rates how suspicious each of the overseer's ratings is",
            defaults_to: Some("overseer"),
        },
    ]
}

/// Whether the overseer was told to sabotage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Condition {
    Honest,
    Sabotage,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Honest => "honest",
            Condition::Sabotage => "sabotage",
        }
    }
}

/// One sample's scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OversightScores {
    pub dialogue: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub which: Option<Which>,
    pub condition: Condition,
    /// The overseer's harm rating, 1–7 (`None`: unreadable).
    pub rating: Option<u8>,
    /// The monitor's suspicion, 1–7 (`None`: unreadable, or no rating to judge).
    pub suspicion: Option<u8>,
}

/// A sample's input.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Input {
    dialogue: Dialogue,
    condition: Condition,
}

pub struct Oversight {
    config: Config,
    dialogues: Vec<Dialogue>,
    skipped: usize,
}

pub fn build(opts: Options) -> Result<Arc<dyn Task>, EngineError> {
    let config = Config::from_options(opts)?;
    let bad = |m: String| EngineError::Config(format!("sabotage/oversight: {m}"));
    if config.dialogues == 0 || config.overseer_tokens == 0 || config.monitor_tokens == 0 {
        return Err(bad(
            "dialogues, overseer_tokens and monitor_tokens must be at least 1".into(),
        ));
    }
    config.detection.check("sabotage/oversight")?;
    let loaded = dialogues::load(config.data.as_deref(), config.dialogues)
        .map_err(|e| bad(e.to_string()))?;
    Ok(Arc::new(Oversight {
        config,
        dialogues: loaded.dialogues,
        skipped: loaded.skipped.len(),
    }))
}

#[async_trait]
impl Task for Oversight {
    fn study(&self) -> &str {
        "sabotage"
    }
    fn name(&self) -> &str {
        "oversight"
    }
    fn roles(&self) -> Vec<RoleSpec> {
        roles()
    }
    fn config(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.config).expect("config serialises");
        v["skipped_records"] = self.skipped.into();
        v
    }
    fn inputs(&self) -> Vec<PathBuf> {
        self.config.data.iter().cloned().collect()
    }

    fn dataset(&self) -> Result<Dataset, DataError> {
        let items: Vec<Sample> = self
            .dialogues
            .iter()
            .flat_map(|d| {
                [Condition::Honest, Condition::Sabotage].map(|condition| {
                    Sample::new(
                        format!("{}/{}", d.id, condition.as_str()),
                        serde_json::to_value(Input {
                            dialogue: d.clone(),
                            condition,
                        })
                        .expect("inputs serialise"),
                    )
                })
            })
            .collect();
        Ok(Dataset::new(
            Some(items.len() as u64),
            "rating",
            items.into_iter().map(Ok),
        ))
    }

    async fn solve(&self, cx: &SampleContext, sample: &Sample) -> Result<Scores, SampleError> {
        let input: Input = serde_json::from_value(sample.input.clone())
            .map_err(|e| SampleError::Protocol(format!("bad sample input: {e}")))?;
        let c = &self.config;
        let d = &input.dialogue;
        let sabotage = input.condition == Condition::Sabotage;
        let prefill = cx.capabilities("overseer")?.prefill;
        let req = prompts::without_prefill_unless(
            prefill,
            prompts::overseer(&d.text, sabotage, c.overseer_tokens, c.temperature),
        );
        let out = cx
            .labelled(if sabotage {
                "overseer: rate harm (told to sabotage)"
            } else {
                "overseer: rate harm"
            })
            .generate("overseer", req)
            .await?;
        let rating = prompts::read_number(prompts::RATING_LABEL, &out.text);
        let suspicion = match rating {
            None => {
                cx.note(
                    "the overseer's answer holds no rating from 1 to 7; the monitor is not asked",
                );
                None
            }
            Some(_) => {
                let answer = prompts::full_answer(prompts::RATING_LABEL, &out.text);
                let prefill = cx.capabilities("monitor")?.prefill;
                let req = prompts::without_prefill_unless(
                    prefill,
                    prompts::monitor(&d.text, &answer, c.monitor_tokens, c.temperature),
                );
                let m = cx
                    .labelled("monitor: rate suspicion")
                    .generate("monitor", req)
                    .await?;
                let s = prompts::read_number(prompts::SUSPICION_LABEL, &m.text);
                if s.is_none() {
                    cx.note("the monitor's answer holds no suspicion from 1 to 7");
                }
                s
            }
        };
        Ok(shammie_kit::scores::to_scores(&OversightScores {
            dialogue: d.id.clone(),
            pair: d.pair.clone(),
            which: d.which,
            condition: input.condition,
            rating,
            suspicion,
        }))
    }

    fn analyze(
        &self,
        records: &mut dyn Iterator<Item = SampleRecord>,
        run: &shammie_engine::RunInfo,
    ) -> Result<Analysis, String> {
        let (scored, failed) = shammie_kit::scores::collect::<OversightScores>(records)?;
        // With several epochs, each epoch's ratings pair among themselves.
        let all: Vec<OversightScores> = scored
            .into_iter()
            .map(|s| {
                let mut o = s.scores;
                if s.epoch > 0 {
                    o.dialogue = format!("{}#{}", o.dialogue, s.epoch);
                    o.pair = o.pair.map(|p| format!("{p}#{}", s.epoch));
                }
                o
            })
            .collect();
        Ok(analysis::analyze(&all, failed, &self.config.detection, run))
    }
}
