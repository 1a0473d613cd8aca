//! `cot-faithfulness/interventions`: the protocol per question.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use shammie_core::{Sample, SampleRecord, Scores};
use shammie_engine::{
    Analysis, DataError, Dataset, EngineError, Models, Options, RoleSpec, SampleContext,
    SampleError, Task,
};
use shammie_mcq::mcq::McQuestion;
use shammie_mcq::sentences::split_sentences;

use crate::answer::{
    answer_request, read_answer, reasoning_request, target_for, Answer, AnswerOptions, PATHS,
};
use crate::data::{self, QuestionSet};
use crate::edits;
use shammie_engine::OptionGroup;
use shammie_kit::values::DataFiles;

shammie_engine::task_options! {
    /// What `cot-faithfulness/interventions` takes (`--set key=value`).
    pub struct Config {
        /// multiple-choice files, comma-separated (AQuA, generic JSONL, ARC, OpenBookQA, MMLU, HellaSwag, TruthfulQA MC, LogiQA, StrategyQA, HotpotQA; format detected); each file is a task in the tables (default: the 254 AQuA-RAT test questions)
        pub data: DataFiles = DataFiles::default(),
        /// force a data format instead of detecting it
        pub format: String = "auto".into(),
        /// comma-separated: early, mistakes, paraphrase, filler, no-cot (or all)
        pub interventions: String = "all".into(),
        /// token budget of the chain of thought (and of each continuation)
        pub cot_tokens: u32 = 400,
        /// temperature of the chain of thought (0: greedy; the paper sampled)
        pub cot_temperature: f64 [0.0 ..= 2.0] = 0.0,
        /// most truncation points per question for adding mistakes and paraphrasing (spread evenly; early answering uses every sentence)
        pub max_points: usize = 6,
        /// shuffle the order of each question's choices (seeded by the run seed)
        pub shuffle: bool = false,
        /// system prompt for the target
        pub system: Option<String> = None,
    }
    include { pub answer: AnswerOptions }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Intervention {
    Early,
    Mistakes,
    Paraphrase,
    Filler,
    NoCot,
}

impl Intervention {
    const ALL: [Intervention; 5] = [
        Intervention::Early,
        Intervention::Mistakes,
        Intervention::Paraphrase,
        Intervention::Filler,
        Intervention::NoCot,
    ];
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "early" => Intervention::Early,
            "mistakes" => Intervention::Mistakes,
            "paraphrase" => Intervention::Paraphrase,
            "filler" => Intervention::Filler,
            "no-cot" => Intervention::NoCot,
            _ => return None,
        })
    }
}

pub struct CotFaithfulness {
    config: Config,
    interventions: BTreeSet<Intervention>,
    sets: Vec<QuestionSet>,
}

pub fn build(opts: Options) -> Result<Arc<dyn Task>, EngineError> {
    let err = |m: String| EngineError::Config(format!("cot-faithfulness/interventions: {m}"));
    let config = Config::from_options(opts)?;
    let interventions: BTreeSet<Intervention> = match config.interventions.trim() {
        "all" => Intervention::ALL.into_iter().collect(),
        list => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                Intervention::parse(s).ok_or_else(|| {
                    err(format!(
                        "unknown intervention `{s}`; expected early, mistakes, paraphrase, filler, no-cot or all"
                    ))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    if interventions.is_empty() {
        return Err(err("no intervention given".into()));
    }
    if config.cot_tokens == 0 {
        return Err(err("cot_tokens must be at least 1".into()));
    }
    config
        .answer
        .validate("cot-faithfulness/interventions", PATHS)?;
    let sets = data::load_sets(&config.data.0, &config.format)?;
    Ok(Arc::new(CotFaithfulness {
        config,
        interventions,
        sets,
    }))
}

pub fn roles() -> Vec<RoleSpec> {
    vec![
        RoleSpec {
            name: "target",
            help: "the model whose reasoning is tested",
            defaults_to: None,
        },
        RoleSpec {
            name: "mistaker",
            help: "rewrites one reasoning step to contain a mistake",
            defaults_to: Some("target"),
        },
        RoleSpec {
            name: "paraphraser",
            help: "paraphrases the first k reasoning steps",
            defaults_to: Some("target"),
        },
    ]
}

/// One answer after an intervention at point `k` (sentences kept / corrupted index).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PointAnswer {
    pub k: usize,
    pub choice: Option<usize>,
    /// Adding mistakes / paraphrasing: the edit could not be made (the helper model's
    /// output was unusable); no answer was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// Per-question scores, as stored in the log.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CotScores {
    pub dataset: String,
    pub correct: usize,
    pub choices: usize,
    /// Sentences in the chain of thought.
    pub sentences: usize,
    pub cot_tokens: u64,
    pub path: String,
    /// The answer after the full chain.
    pub original: Option<usize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub early: Vec<PointAnswer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mistakes: Vec<PointAnswer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paraphrase: Vec<PointAnswer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filler: Option<PointAnswer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_cot: Option<PointAnswer>,
}

/// `count` points spread evenly over `lo..hi` (all of them when there are few).
pub fn spread(lo: usize, hi: usize, count: usize) -> Vec<usize> {
    let n = hi.saturating_sub(lo);
    if n <= count {
        return (lo..hi).collect();
    }
    if count == 0 {
        return Vec::new();
    }
    let mut out: Vec<usize> = (0..count)
        .map(|i| lo + (i * (n - 1)) / (count - 1).max(1))
        .collect();
    out.dedup();
    out
}

impl CotFaithfulness {
    fn answer(&self, a: Answer, k: usize) -> PointAnswer {
        PointAnswer {
            k,
            choice: a.choice,
            skipped: None,
        }
    }
}

#[async_trait]
impl Task for CotFaithfulness {
    fn study(&self) -> &str {
        "cot-faithfulness"
    }
    fn name(&self) -> &str {
        "interventions"
    }
    fn roles(&self) -> Vec<RoleSpec> {
        roles()
    }
    fn config(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.config).unwrap();
        v["datasets_resolved"] = data::describe(&self.sets);
        v
    }

    fn inputs(&self) -> Vec<std::path::PathBuf> {
        self.config.data.0.clone()
    }
    fn check_models(&self, models: &Models) -> Result<(), EngineError> {
        let (t, caps) = target_for(models, &self.config.answer)?;
        let continues = self.interventions.contains(&Intervention::Mistakes)
            || self.interventions.contains(&Intervention::Paraphrase);
        if continues && !caps.prefill {
            return Err(EngineError::Config(format!(
                "{} cannot continue a given partial reasoning (no assistant prefill), which adding \
                 mistakes and paraphrasing need; use --set interventions=early,filler,no-cot",
                t.name()
            )));
        }
        Ok(())
    }

    fn dataset(&self) -> Result<Dataset, DataError> {
        let all = data::interleaved(&self.sets);

        let total = all.len() as u64;
        Ok(Dataset {
            total: Some(total),
            samples: Box::new(all.into_iter().map(|q| {
                Ok(Sample {
                    id: format!("{}:{}", q.source, q.id),
                    input: serde_json::to_value(&q).unwrap(),
                })
            })),
        })
    }

    async fn solve(&self, cx: &SampleContext, sample: &Sample) -> Result<Scores, SampleError> {
        let mut q: McQuestion = serde_json::from_value(sample.input.clone())
            .map_err(|e| SampleError::Protocol(format!("bad sample input: {e}")))?;
        if self.config.shuffle {
            q = q.shuffled(cx.seed() ^ crate::data::id_hash(&sample.id));
        }
        let caps = cx.capabilities("target")?;
        let sys = self.config.system.as_deref();
        let cfg = &self.config.answer;
        let n_choices = q.choices.len();
        let ivs = &self.interventions;

        // The chain of thought.
        let mut r = reasoning_request(&q, "", sys, &caps, self.config.cot_tokens);
        r.temperature = Some(self.config.cot_temperature);
        let cot_call = cx.generate("target", r).await?;
        let cot = cot_call.text.trim().to_string();
        let sentences: Vec<String> = split_sentences(&cot)
            .into_iter()
            .map(str::to_string)
            .collect();
        let n = sentences.len();
        let prefix = |k: usize| sentences[..k].concat().trim().to_string();

        let mut s = CotScores {
            dataset: q.source.clone(),
            correct: q.answer,
            choices: n_choices,
            sentences: n,
            cot_tokens: cot_call.usage.output_tokens,
            path: cfg.resolve(&caps, PATHS).label().into(),
            ..Default::default()
        };
        let read = |reasoning: Option<String>| {
            let req = answer_request(&q, reasoning.as_deref(), sys, &caps);
            read_answer(cx, "target", req, n_choices, cfg)
        };
        let original = read(Some(cot.clone())).await?;
        s.original = original.choice;

        if ivs.contains(&Intervention::Early) {
            for k in 0..n {
                let a = read(Some(prefix(k))).await?;
                s.early.push(self.answer(a, k));
            }
            s.early.push(PointAnswer {
                k: n,
                choice: s.original,
                skipped: None,
            });
        }
        if ivs.contains(&Intervention::NoCot) {
            let a = read(None).await?;
            s.no_cot = Some(self.answer(a, 0));
        }
        if ivs.contains(&Intervention::Filler) {
            let filler = " ...".repeat(s.cot_tokens.max(1) as usize);
            let a = read(Some(filler.trim_start().to_string())).await?;
            s.filler = Some(self.answer(a, 0));
        }
        // Continue the reasoning from `partial`, then answer.
        let continue_and_answer = |partial: String| {
            let q = &q;
            async move {
                let mut r = reasoning_request(q, &partial, sys, &caps, self.config.cot_tokens);
                r.temperature = Some(self.config.cot_temperature);
                let rest = cx.generate("target", r).await?.text;
                let full = join_reasoning(&partial, &rest);
                let req = answer_request(q, Some(&full), sys, &caps);
                read_answer(cx, "target", req, q.choices.len(), cfg).await
            }
        };
        if ivs.contains(&Intervention::Mistakes) {
            for k in spread(0, n, self.config.max_points) {
                match edits::add_mistake(cx, "mistaker", &q, &prefix(k), &sentences[k]).await? {
                    Ok(bad) => {
                        let partial = join_reasoning(&prefix(k), &bad);
                        let a = continue_and_answer(partial).await?;
                        s.mistakes.push(self.answer(a, k));
                    }
                    Err(why) => s.mistakes.push(PointAnswer {
                        k,
                        choice: None,
                        skipped: Some(why),
                    }),
                }
            }
        }
        if ivs.contains(&Intervention::Paraphrase) {
            for k in spread(1, n + 1, self.config.max_points) {
                match edits::paraphrase(cx, "paraphraser", &q, &prefix(k)).await? {
                    Ok(p) => {
                        let a = continue_and_answer(p).await?;
                        s.paraphrase.push(self.answer(a, k));
                    }
                    Err(why) => s.paraphrase.push(PointAnswer {
                        k,
                        choice: None,
                        skipped: Some(why),
                    }),
                }
            }
        }
        Ok(shammie_kit::scores::to_scores(&s))
    }

    fn analyze(
        &self,
        records: &mut dyn Iterator<Item = SampleRecord>,
        seed: u64,
    ) -> Result<Analysis, String> {
        super::analysis::analyze(records, seed)
    }
}

/// `a` then `b` with exactly one space between them (either may be empty).
pub fn join_reasoning(a: &str, b: &str) -> String {
    match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, _) => b.trim().to_string(),
        (false, true) => a.trim().to_string(),
        (false, false) => format!("{} {}", a.trim_end(), b.trim_start()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_spread_evenly() {
        assert_eq!(spread(0, 4, 6), vec![0, 1, 2, 3]);
        assert_eq!(spread(0, 10, 4), vec![0, 3, 6, 9]);
        assert_eq!(spread(1, 11, 3), vec![1, 5, 10]);
        assert!(spread(0, 0, 3).is_empty());
        assert!(spread(0, 5, 0).is_empty());
    }

    #[test]
    fn reasoning_joins_with_one_space() {
        assert_eq!(join_reasoning("A. ", " B."), "A. B.");
        assert_eq!(join_reasoning("", "B."), "B.");
        assert_eq!(join_reasoning("A.", "  "), "A.");
    }
}
