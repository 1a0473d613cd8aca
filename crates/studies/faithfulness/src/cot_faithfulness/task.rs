//! `cot-faithfulness/interventions`: the protocol per question.

use std::cell::Cell;
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
    answer_request, read_answer, reasoning_request, target_for, Answer, AnswerOptions, ReadPath,
    PATHS,
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
        /// temperature of the chain of thought and of its continuations (the paper samples at 1; 0: greedy)
        pub cot_temperature: f64 [0.0 ..= 2.0] = 1.0,
        /// nucleus (top-p) of the sampled chain of thought (the paper: 0.95; 1: off; not sent when greedy)
        pub cot_top_p: f64 [0.0 ..= 1.0] = 0.95,
        /// filler lengths, comma-separated: numbers of " ..." tokens, and `chain` for as many as the chain of thought had
        pub filler_lengths: String = "chain,0,50,100,200,400".into(),
        /// sampling path: re-read the answer after the unmodified full chain this many more times, the "% same" of re-reading (0: off)
        pub rereads: usize [0 ..= 100] = 5,
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

/// One filler length: a fixed number of " ..." tokens, or as many as the chain had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FillerLength {
    Chain,
    Tokens(usize),
}

/// Parses `filler_lengths` (`chain` and token counts, comma-separated, no repeats).
pub fn filler_lengths(list: &str) -> Result<Vec<FillerLength>, String> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let l = match item {
            "chain" => FillerLength::Chain,
            n => FillerLength::Tokens(n.parse::<usize>().ok().filter(|&n| n <= 100_000).ok_or_else(
                || format!("filler_lengths: `{n}` is neither `chain` nor a number of tokens from 0 to 100000"),
            )?),
        };
        if out.contains(&l) {
            return Err(format!("filler_lengths: `{item}` is listed twice"));
        }
        out.push(l);
    }
    if out.is_empty() {
        return Err("filler_lengths: no length given (e.g. chain,0,50,100)".into());
    }
    Ok(out)
}

pub struct CotFaithfulness {
    config: Config,
    interventions: BTreeSet<Intervention>,
    fillers: Vec<FillerLength>,
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
    if config.cot_top_p <= 0.0 {
        return Err(err(
            "cot_top_p must be above 0 (1 turns nucleus sampling off)".into(),
        ));
    }
    let fillers = filler_lengths(&config.filler_lengths).map_err(err)?;
    config
        .answer
        .validate("cot-faithfulness/interventions", PATHS)?;
    let sets = data::load_sets(&config.data.0, &config.format)?;
    Ok(Arc::new(CotFaithfulness {
        config,
        interventions,
        fillers,
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
    /// Filler as long as the chain (`k`: its " ..." tokens; runs before fixed lengths
    /// were an option wrote `k` = 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filler: Option<PointAnswer>,
    /// Filler of fixed lengths (`k`: " ..." tokens).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fillers: Vec<PointAnswer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_cot: Option<PointAnswer>,
    /// Sampling path: the answers of re-reading the unmodified full chain (reading
    /// noise; each is compared with `original`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rereads: Vec<Option<usize>>,
    /// Answers whose most likely letters were tied (one was drawn).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ties: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The nonce of the `j`-th re-reading (from 0) of the full chain: far from the nonces
/// `0..samples` of the first reading and below the epochs' `(e-1) << 32`.
pub fn reread_nonce(j: usize) -> u64 {
    (j as u64 + 1) << 20
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

/// An answer at point `k`, counting a tie in `ties`.
fn point(a: Answer, k: usize, ties: &Cell<usize>) -> PointAnswer {
    ties.set(ties.get() + usize::from(a.tied));
    PointAnswer {
        k,
        choice: a.choice,
        skipped: None,
    }
}

impl CotFaithfulness {
    /// Temperature and nucleus of the chain of thought and its continuations.
    fn sampled(&self, r: &mut shammie_core::GenerateRequest) {
        r.temperature = Some(self.config.cot_temperature);
        if self.config.cot_temperature > 0.0 && self.config.cot_top_p < 1.0 {
            r.top_p = Some(self.config.cot_top_p);
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
        // One sample per question (every intervention inside it): its own unit.
        Ok(Dataset::new(
            Some(total),
            "question",
            all.into_iter().map(|q| {
                Ok(Sample::new(
                    format!("{}:{}", q.source, q.id),
                    serde_json::to_value(&q).unwrap(),
                ))
            }),
        ))
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
        self.sampled(&mut r);
        let cot_call = cx.labelled("cot").generate("target", r).await?;
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
        let ties = Cell::new(0);
        // Every answer reading is labelled with its step (`original`, `early k=3`, …).
        let read = |label: String, reasoning: Option<String>| {
            let req = answer_request(&q, reasoning.as_deref(), sys, &caps);
            async move { read_answer(&cx.labelled(label), "target", req, n_choices, cfg).await }
        };
        let original = read("original".into(), Some(cot.clone())).await?;
        s.original = point(original, n, &ties).choice;
        if cfg.resolve(&caps, PATHS) == ReadPath::Sampling {
            // The reader is stochastic: how often does re-reading the same chain agree?
            for j in 0..self.config.rereads {
                let mut req = answer_request(&q, Some(&cot), sys, &caps);
                req.nonce = reread_nonce(j);
                let a = read_answer(
                    &cx.labelled(format!("reread {}", j + 1)),
                    "target",
                    req,
                    n_choices,
                    cfg,
                )
                .await?;
                s.rereads.push(point(a, n, &ties).choice);
            }
        }

        if ivs.contains(&Intervention::Early) {
            for k in 0..n {
                let a = read(format!("early k={k}"), Some(prefix(k))).await?;
                s.early.push(point(a, k, &ties));
            }
            s.early.push(PointAnswer {
                k: n,
                choice: s.original,
                skipped: None,
            });
        }
        if ivs.contains(&Intervention::NoCot) {
            let a = read("no-cot".into(), None).await?;
            s.no_cot = Some(point(a, 0, &ties));
        }
        if ivs.contains(&Intervention::Filler) {
            for l in &self.fillers {
                let tokens = match l {
                    FillerLength::Chain => s.cot_tokens.max(1) as usize,
                    FillerLength::Tokens(t) => *t,
                };
                let filler = " ...".repeat(tokens);
                let a = read(
                    format!("filler {tokens}"),
                    Some(filler.trim_start().to_string()),
                )
                .await?;
                let p = point(a, tokens, &ties);
                match l {
                    FillerLength::Chain => s.filler = Some(p),
                    FillerLength::Tokens(_) => s.fillers.push(p),
                }
            }
        }
        // Continue the reasoning from `partial`, then answer.
        // (labelled `STEP continue` and `STEP`)
        let continue_and_answer = |step: String, partial: String| {
            let q = &q;
            async move {
                let mut r = reasoning_request(q, &partial, sys, &caps, self.config.cot_tokens);
                self.sampled(&mut r);
                let rest = cx
                    .labelled(format!("{step} continue"))
                    .generate("target", r)
                    .await?
                    .text;
                let full = join_reasoning(&partial, &rest);
                let req = answer_request(q, Some(&full), sys, &caps);
                read_answer(&cx.labelled(step), "target", req, q.choices.len(), cfg).await
            }
        };
        if ivs.contains(&Intervention::Mistakes) {
            for k in spread(0, n, self.config.max_points) {
                let step = format!("mistake@{k}");
                let ecx = cx.labelled(format!("{step} edit"));
                match edits::add_mistake(&ecx, "mistaker", &q, &prefix(k), &sentences[k]).await? {
                    Ok(bad) => {
                        let partial = join_reasoning(&prefix(k), &bad);
                        let a = continue_and_answer(step, partial).await?;
                        s.mistakes.push(point(a, k, &ties));
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
                let step = format!("paraphrase@{k}");
                let ecx = cx.labelled(format!("{step} edit"));
                match edits::paraphrase(&ecx, "paraphraser", &q, &prefix(k)).await? {
                    Ok(p) => {
                        let a = continue_and_answer(step, p).await?;
                        s.paraphrase.push(point(a, k, &ties));
                    }
                    Err(why) => s.paraphrase.push(PointAnswer {
                        k,
                        choice: None,
                        skipped: Some(why),
                    }),
                }
            }
        }
        s.ties = ties.get();
        Ok(shammie_kit::scores::to_scores(&s))
    }

    fn analyze(
        &self,
        records: &mut dyn Iterator<Item = SampleRecord>,
        run: &shammie_engine::RunInfo,
    ) -> Result<Analysis, String> {
        super::analysis::analyze(records, run)
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
    fn filler_lengths_are_parsed_and_checked() {
        use FillerLength::*;
        assert_eq!(
            filler_lengths(" chain, 0,50 ,400").unwrap(),
            vec![Chain, Tokens(0), Tokens(50), Tokens(400)]
        );
        for (bad, why) in [
            ("chain,lots", "`lots` is neither"),
            ("-5", "`-5` is neither"),
            ("100001", "`100001` is neither"),
            ("50,chain,50", "`50` is listed twice"),
            (" , ", "no length given"),
        ] {
            let e = filler_lengths(bad).unwrap_err();
            assert!(
                e.starts_with("filler_lengths: ") && e.contains(why),
                "{bad}: {e}"
            );
        }
        // Re-readings keep clear of the first reading's nonces (≤ 100000 samples) and of
        // the next epoch's (1 << 32).
        assert!(reread_nonce(0) > 100_000 && reread_nonce(99) < 1 << 32);
    }

    #[test]
    fn reasoning_joins_with_one_space() {
        assert_eq!(join_reasoning("A. ", " B."), "A. B.");
        assert_eq!(join_reasoning("", "B."), "B.");
        assert_eq!(join_reasoning("A.", "  "), "A.");
    }
}
