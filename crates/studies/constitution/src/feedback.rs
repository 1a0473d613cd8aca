//! `constitution/feedback`: AI-feedback preference labels (Kundu et al. 2023, after Bai
//! et al. 2022's constitutional AI). For each conversation and pair of responses, one
//! principle is drawn from a constitution and the `feedback` model is asked which
//! response better answers it ([`crate::judge::compare`]); its soft label p(A) becomes
//! one line of the run's preference dataset `data/preferences.jsonl`
//! ([`crate::preferences`]), the input of preference-model training.
//!
//! Per pair, step by step:
//! 1. the conversation and pair come from the source ([`crate::pairs`]: the built-in
//!    HH-RLHF harmless-base test split by default, a pair file, or conversations whose
//!    two responses are sampled from the `responder` model at `response_temperature`);
//! 2. the sample's seeded generator decides which response is shown as (A) (so that the
//!    human-preferred one is not always first), then draws `principles_per_pair`
//!    principles (default 1, as in the paper) without replacement;
//! 3. each principle is asked in both orders (`order=both`) and read at the answer
//!    position; p_a is the mean of the readings' probability that (A) as assigned is the
//!    better response;
//! 4. the analysis reports mean p(A), the position bias (mean first-position share −
//!    0.5), and, where the source has human labels, the agreement with them, per run and
//!    per principle, with a histogram of the soft labels.
//!
//! Example: `shammie run constitution/feedback --model feedback=local:gemma-3-270m --limit 100`.
//! Method and differences from the paper: `docs/studies/constitution.md`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use rand::Rng;
use serde::{Deserialize, Serialize};
use shammie_core::{Cell, GenerateRequest, Sample, SampleRecord, Scores, Table};
use shammie_engine::OptionGroup;
use shammie_engine::{
    Analysis, DataError, Dataset, EngineError, Models, Options, ReportFile, RoleSpec,
    SampleContext, SampleError, Task,
};
use shammie_kit::cells;
use shammie_kit::reader::AnswerOptions;

use crate::constitutions::{self, Constitution};
use crate::judge::{self, Comparison, JudgeOptions, Order, PATHS};
use crate::pairs::{self, PairItem, Source};
use crate::preferences::{self, PreferenceRecord, Side};

shammie_engine::option_choice! {
    /// `responses`: where the two responses come from.
    pub enum Responses { Auto = "auto", Pairs = "pairs", Sample = "sample" }
}

shammie_engine::option_choice! {
    /// `assign`: which response is shown as (A).
    pub enum Assign { Random = "random", AsWritten = "as-written" }
}

shammie_engine::task_options! {
    /// What `constitution/feedback` takes (`--set key=value`).
    pub struct Config {
        /// where conversations and pairs come from: hh-rlhf (the built-in HH-RLHF harmless-base test split), traits (the questions of the built-in trait datasets, responses sampled), or a file (HH-RLHF gzip/JSONL, or JSONL {"prompt", "a", "b", "human"} or prompts only {"prompt"})
        pub source: String = "hh-rlhf".into(),
        /// pairs (the source's two responses), sample (two responses from the responder model), or auto (pairs where the source has them, else sample)
        pub responses: Responses = Responses::Auto,
        /// the constitution principles are drawn from: a built-in (general, specific, power-seeking, self-preservation, self-replication, risk-seeking, self-identity) or a TOML/JSON file
        pub constitution: String = "general".into(),
        /// principles drawn per pair (without replacement, by the sample's seeded generator); p_a is the mean over them
        pub principles_per_pair: u32 [1 ..= 100] = 1,
        /// both (each pair read as assigned and with the responses swapped, averaged, so a preference for a position cancels) or as-written
        pub order: Order = Order::Both,
        /// random (the sample's seeded generator decides which response is shown as (A)) or as-written (the source's first response, e.g. HH-RLHF's chosen, is (A))
        pub assign: Assign = Assign::Random,
        /// scoring and logprob paths: a pair whose P(A)+P(B) is below this in some reading is flagged low-mass and left out of the labels
        pub min_mass: f64 [0.0 ..= 1.0] = 0.5,
        /// system prompt for the feedback model
        pub system: Option<String> = None,
        /// responses=sample: the responder's sampling temperature
        pub response_temperature: f64 [0.0 ..= 2.0] = 1.0,
        /// responses=sample: most tokens per sampled response
        pub max_tokens: u32 [1 ..= 32_768] = 256,
    }
    include { pub answer: AnswerOptions }
}

/// The task's roles: `feedback` (required; a bare `--model` binds it) and `responder`
/// (used only when responses are sampled; defaults to the feedback model).
pub fn roles() -> Vec<RoleSpec> {
    vec![
        RoleSpec {
            name: "feedback",
            help: "the model that labels which response better follows the principle",
            defaults_to: None,
        },
        RoleSpec {
            name: "responder",
            help: "samples the two responses when the source has none (responses=sample); defaults to the feedback model",
            defaults_to: Some("feedback"),
        },
    ]
}

pub struct Feedback {
    config: Config,
    source: Source,
    constitution: Constitution,
}

pub fn build(opts: Options) -> Result<Arc<dyn Task>, EngineError> {
    let config = Config::from_options(opts)?;
    config.answer.validate("constitution/feedback", PATHS)?;
    let source = Source::parse(&config.source);
    let constitution = constitutions::load(&config.constitution)?;
    if config.principles_per_pair as usize > constitution.principles.len() {
        return Err(EngineError::Config(format!(
            "constitution/feedback: principles_per_pair={} but constitution `{}` has {} principles",
            config.principles_per_pair,
            constitution.name,
            constitution.principles.len()
        )));
    }
    if source == Source::Traits && config.responses == Responses::Pairs {
        return Err(EngineError::Config(
            "constitution/feedback: source=traits has no response pairs; use responses=sample (or auto)".into(),
        ));
    }
    Ok(Arc::new(Feedback {
        config,
        source,
        constitution,
    }))
}

/// One principle's comparison of a pair.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PrincipleReading {
    pub principle: String,
    #[serde(rename = "trait", default, skip_serializing_if = "Option::is_none")]
    pub trait_name: Option<String>,
    pub comparison: Comparison,
}

/// Per-sample scores, as stored in the log.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FeedbackScores {
    pub source: String,
    pub constitution: String,
    /// `scoring`, `logprobs` or `sampling`.
    pub path: String,
    /// The soft label: P(a is the better response), the mean over the principles asked
    /// (and over both orders); `None` when some reading had no answer.
    pub p_a: Option<f64>,
    /// The mean share of the first position, (A), over the readings: 0.5 is no bias.
    pub first_position: Option<f64>,
    pub mass: Option<f64>,
    pub low_mass: bool,
    pub bounded: bool,
    /// The principles asked, one per line.
    pub principle: String,
    /// The responses as shown: `a` as (A) in the first reading.
    pub a: String,
    pub b: String,
    /// Which of `a` and `b` a human preferred, where the source says.
    pub human: Option<Side>,
    /// p of the human-preferred response.
    pub p_human: Option<f64>,
    /// Whether the source's second response is shown as `a`.
    pub flipped: bool,
    /// Whether the responses were sampled from the responder.
    pub sampled: bool,
    /// Why the pair was not compared (sampled responses empty or identical).
    pub skipped: Option<String>,
    pub readings: Vec<PrincipleReading>,
}

impl FeedbackScores {
    /// The soft label, if read and neither low-mass nor bounded.
    fn label(&self) -> Option<f64> {
        self.p_a.filter(|_| !self.low_mass && !self.bounded)
    }
}

impl Feedback {
    fn judge_options(&self) -> JudgeOptions {
        JudgeOptions {
            answer: self.config.answer.clone(),
            order: self.config.order,
            min_mass: self.config.min_mass,
            system: self.config.system.clone(),
        }
    }

    /// Whether responses are sampled (else taken from the source).
    fn sampling(&self, has_pairs: bool) -> bool {
        match self.config.responses {
            Responses::Auto => !has_pairs,
            Responses::Pairs => false,
            Responses::Sample => true,
        }
    }

    /// The two responses, sampled from the responder; `Err(why)` when unusable.
    async fn sample_responses(
        &self,
        cx: &SampleContext<'_>,
        item: &PairItem,
    ) -> Result<Result<[String; 2], String>, SampleError> {
        // Two samples of one request (nonces 0 and 1), asked for together.
        let mut r = GenerateRequest::user("", self.config.max_tokens);
        r.messages = item.conversation.clone();
        r.temperature = Some(self.config.response_temperature);
        let draws = (0..2u64)
            .map(|i| (format!("response {}", i + 1), i))
            .collect();
        let mut out = Vec::new();
        for c in cx.generate_n("responder", r, draws).await {
            out.push(c?.text.trim().to_string());
        }
        if out.iter().any(|t| t.is_empty()) {
            return Ok(Err("a sampled response is empty".into()));
        }
        if out[0] == out[1] {
            return Ok(Err("the two sampled responses are the same".into()));
        }
        Ok(Ok([out[0].clone(), out[1].clone()]))
    }
}

#[async_trait]
impl Task for Feedback {
    fn study(&self) -> &str {
        "constitution"
    }
    fn name(&self) -> &str {
        "feedback"
    }
    fn roles(&self) -> Vec<RoleSpec> {
        roles()
    }
    fn config(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.config).unwrap();
        v["constitution_resolved"] = serde_json::to_value(&self.constitution).unwrap();
        v
    }
    fn inputs(&self) -> Vec<std::path::PathBuf> {
        let mut v: Vec<std::path::PathBuf> = pairs::file_of(&self.source)
            .map(Into::into)
            .into_iter()
            .collect();
        if !constitutions::builtin_names().contains(&self.config.constitution.trim()) {
            v.push(self.config.constitution.trim().into());
        }
        v
    }
    fn check_models(&self, models: &Models) -> Result<(), EngineError> {
        let m = models.get("feedback").expect("roles resolved");
        self.config.answer.check_model(m.name(), &m.capabilities())
    }

    fn dataset(&self) -> Result<Dataset, DataError> {
        let loaded = pairs::load(&self.source)?;
        let sampling = self.sampling(loaded.has_pairs);
        if !sampling && !loaded.has_pairs {
            return Err(DataError::File {
                path: self.source.name(),
                message: "the records have no response pairs (`a`, `b`); use responses=sample"
                    .into(),
            });
        }
        let items: Vec<PairItem> = loaded
            .items
            .into_iter()
            .map(|mut i| {
                if sampling {
                    i.responses = None;
                    i.human = None;
                }
                i
            })
            .collect();
        let total = items.len() as u64;
        let samples = items
            .into_iter()
            .map(|i| Ok(Sample::new(i.id.clone(), serde_json::to_value(i).unwrap())));
        Ok(Dataset::new(Some(total), "pair", samples))
    }

    async fn solve(&self, cx: &SampleContext, sample: &Sample) -> Result<Scores, SampleError> {
        let item: PairItem = serde_json::from_value(sample.input.clone())
            .map_err(|e| SampleError::Protocol(format!("bad sample input: {e}")))?;
        let caps = cx.capabilities("feedback")?;
        let mut s = FeedbackScores {
            source: item.source.clone(),
            constitution: self.constitution.name.clone(),
            path: self.config.answer.resolve(&caps, PATHS).label().into(),
            ..Default::default()
        };
        let (responses, human) = match &item.responses {
            Some(r) => (r.clone(), item.human),
            None => {
                s.sampled = true;
                match self.sample_responses(cx, &item).await? {
                    Ok(r) => (r, None),
                    Err(why) => {
                        cx.note(format!("not compared: {why}"));
                        s.skipped = Some(why);
                        return Ok(shammie_kit::scores::to_scores(&s));
                    }
                }
            }
        };
        // The seeded generator: first which response is (A), then the principles.
        let mut rng = cx.rng();
        let flip = rng.gen_bool(0.5);
        s.flipped = self.config.assign == Assign::Random && flip;
        let [first, second] = responses;
        (s.a, s.b) = if s.flipped {
            (second, first)
        } else {
            (first, second)
        };
        // The human-preferred response keeps its label wherever it is shown.
        s.human = human.map(|h| {
            if (h == 0) != s.flipped {
                Side::A
            } else {
                Side::B
            }
        });
        let n = self.constitution.principles.len();
        let k = self.config.principles_per_pair as usize;
        let picked = rand::seq::index::sample(&mut rng, n, k).into_vec();
        let opts = self.judge_options();
        for (j, i) in picked.iter().enumerate() {
            let p = &self.constitution.principles[*i];
            let step = if k == 1 {
                cx.labelled("feedback")
            } else {
                cx.labelled(format!("feedback {}", j + 1))
            };
            let c = judge::compare(
                &step,
                "feedback",
                &item.conversation,
                &s.a,
                &s.b,
                &p.text,
                &opts,
            )
            .await?;
            s.readings.push(PrincipleReading {
                principle: p.text.clone(),
                trait_name: p.trait_name.clone(),
                comparison: c,
            });
        }
        let rs = &s.readings;
        let mean = |xs: Option<Vec<f64>>| xs.map(|v| v.iter().sum::<f64>() / v.len() as f64);
        s.p_a = mean(rs.iter().map(|r| r.comparison.p_a).collect());
        s.first_position = mean(rs.iter().map(|r| r.comparison.first_position).collect());
        s.mass = mean(rs.iter().map(|r| r.comparison.mass).collect());
        s.low_mass = rs.iter().any(|r| r.comparison.low_mass);
        s.bounded = rs.iter().any(|r| r.comparison.bounded);
        s.principle = rs
            .iter()
            .map(|r| r.principle.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        s.p_human = match (s.human, s.p_a) {
            (Some(Side::A), Some(p)) => Some(p),
            (Some(Side::B), Some(p)) => Some(1.0 - p),
            _ => None,
        };
        Ok(shammie_kit::scores::to_scores(&s))
    }

    fn analyze(
        &self,
        records: &mut dyn Iterator<Item = SampleRecord>,
        run: &shammie_engine::RunInfo,
    ) -> Result<Analysis, String> {
        analyze(records, run)
    }
}

/// Soft labels and their agreement with human labels, over a set of readings.
#[derive(Default)]
struct Tally {
    /// p(A) of each labelled reading.
    p_a: Vec<f64>,
    /// First-position share of each labelled reading.
    first: Vec<f64>,
    /// p of the human-preferred response, where known.
    p_human: Vec<f64>,
    /// Readings that could not be read, low-mass, bounded.
    unread: u64,
    low_mass: u64,
    bounded: u64,
}

impl Tally {
    fn add(
        &mut self,
        p_a: Option<f64>,
        first: Option<f64>,
        human: Option<Side>,
        low: bool,
        bounded: bool,
    ) {
        match p_a {
            None => self.unread += 1,
            Some(_) if low || bounded => {
                self.low_mass += u64::from(low);
                self.bounded += u64::from(bounded);
            }
            Some(p) => {
                self.p_a.push(p);
                if let Some(f) = first {
                    self.first.push(f);
                }
                match human {
                    Some(Side::A) => self.p_human.push(p),
                    Some(Side::B) => self.p_human.push(1.0 - p),
                    None => {}
                }
            }
        }
    }

    /// Mean with a Student-t interval (a bare number from one value).
    fn mean(xs: &[f64], shift: f64) -> Cell {
        let shifted: Vec<f64> = xs.iter().map(|x| x - shift).collect();
        match shammie_stats::mean_ci_t(&shifted, 0.95) {
            Ok(e) => cells::cell(Some(e.interval()), xs.len()),
            Err(_) if xs.len() == 1 => cells::cell(Some(cells::point(shifted[0])), 1),
            Err(_) => Cell::Empty,
        }
    }

    /// (agreement cell, ties): the share of human-labelled readings whose p for the
    /// human-preferred response is above 0.5 (ties at 0.5 left out), Wilson interval.
    fn agreement(&self) -> (Cell, u64) {
        let ties = self.p_human.iter().filter(|p| is_tie(**p)).count() as u64;
        let n = self.p_human.len() as u64 - ties;
        let agree = self
            .p_human
            .iter()
            .filter(|p| **p > 0.5 && !is_tie(**p))
            .count() as u64;
        let cell = shammie_stats::wilson(agree, n, 0.95)
            .map(|i| cells::cell(Some(i), n as usize))
            .unwrap_or(Cell::Empty);
        (cell, ties)
    }
}

/// A soft label of 0.5 up to rounding (1e-9): no preference either way.
fn is_tie(p: f64) -> bool {
    (p - 0.5).abs() < 1e-9
}

fn analyze(
    records: &mut dyn Iterator<Item = SampleRecord>,
    run: &shammie_engine::RunInfo,
) -> Result<Analysis, String> {
    let mut all = Tally::default();
    let mut per_principle: BTreeMap<(String, String), Tally> = BTreeMap::new();
    let mut paths = std::collections::BTreeSet::new();
    let mut constitution = std::collections::BTreeSet::new();
    let (mut pairs, mut failed, mut skipped) = (0u64, 0u64, 0u64);
    let mut prefs: Vec<(String, u32, PreferenceRecord)> = Vec::new();
    for r in records {
        pairs += 1;
        if r.error.is_some() {
            failed += 1;
            continue;
        }
        let s: FeedbackScores = shammie_kit::scores::from_scores(&r.id, r.scores)?;
        constitution.insert(s.constitution.clone());
        if s.skipped.is_some() {
            skipped += 1;
            continue;
        }
        paths.insert(s.path.clone());
        all.add(s.p_a, s.first_position, s.human, s.low_mass, s.bounded);
        for pr in &s.readings {
            let c = &pr.comparison;
            per_principle
                .entry((
                    pr.principle.clone(),
                    pr.trait_name.clone().unwrap_or_default(),
                ))
                .or_default()
                .add(c.p_a, c.first_position, s.human, c.low_mass, c.bounded);
        }
        if let Some(p_a) = s.label() {
            let item: PairItem = serde_json::from_value(r.input.clone())
                .map_err(|e| format!("sample {}: unreadable input: {e}", r.id))?;
            let id = if r.epoch <= 1 {
                r.id.clone()
            } else {
                format!("{}@{}", r.id, r.epoch)
            };
            prefs.push((
                r.id.clone(),
                r.epoch,
                PreferenceRecord {
                    id,
                    prompt: item.conversation,
                    a: s.a.clone(),
                    b: s.b.clone(),
                    p_a,
                    principle: s.principle.clone(),
                    constitution: s.constitution.clone(),
                    human: s.human,
                    source: s.source.clone(),
                },
            ));
        }
    }
    let join = |s: &std::collections::BTreeSet<String>| {
        if s.is_empty() {
            "—".to_string()
        } else {
            s.iter().cloned().collect::<Vec<_>>().join("+")
        }
    };
    let (agreement, ties) = all.agreement();
    let summary = Table {
        name: "feedback".into(),
        title: "AI-feedback labels: soft labels, position bias and agreement with human labels".into(),
        caption: String::new(),
        decimals: None,
        columns: [
            "constitution",
            "path",
            "pairs",
            "labelled",
            "mean p(A) [95% CI]",
            "position bias [95% CI]",
            "human-labelled",
            "agreement with human [95% CI]",
            "ties",
            "mean p(human-preferred) [95% CI]",
            "low mass",
            "bounded",
            "unreadable",
            "skipped",
            "failed",
        ]
        .iter()
        .map(|c| c.to_string())
        .collect(),
        rows: vec![vec![
            Cell::text(join(&constitution)),
            Cell::text(join(&paths)),
            Cell::Int(pairs as i64),
            Cell::Int(all.p_a.len() as i64),
            Tally::mean(&all.p_a, 0.0),
            Tally::mean(&all.first, 0.5),
            Cell::Int(all.p_human.len() as i64),
            agreement,
            Cell::Int(ties as i64),
            Tally::mean(&all.p_human, 0.0),
            Cell::Int(all.low_mass as i64),
            Cell::Int(all.bounded as i64),
            Cell::Int(all.unread as i64),
            Cell::Int(skipped as i64),
            Cell::Int(failed as i64),
        ]],
        notes: vec![
            "p(A): the feedback model's soft label P(A)/(P(A)+P(B)) for the response shown as (A) (which one is decided per pair by the seeded generator unless assign=as-written), averaged over both orders (order=both) and over the principles asked. labelled: pairs with a label that is neither low-mass nor bounded; only these are in the estimates and in data/preferences.jsonl. Means with 95% Student-t intervals over labelled pairs (epochs count as pairs).".into(),
            "position bias: mean over labelled pairs of the share the model gave the first position, (A), minus 0.5 (0: none; +0.1: (A) gets 60% of the pair's probability whatever it says). With order=both each pair's share is the mean of its two orders, so a content preference cancels; with order=as-written it cancels only on average over the random assignment.".into(),
            "agreement with human: among labelled pairs whose source says which response a human preferred (HH-RLHF's chosen), the share whose p for that response is above 0.5, 95% Wilson interval; ties (p = 0.5, to 1e-9) are left out and counted. mean p(human-preferred): the mean soft label of the human-preferred response.".into(),
            "low mass: P(A)+P(B) below min_mass in some reading; bounded: a letter absent from the top-k list (logprob path); unreadable: no letter read in some order; skipped: sampled responses empty or identical; failed: samples with an error.".into(),
        ],
    };
    let mut rows = Vec::new();
    for ((principle, trait_name), t) in &per_principle {
        let (agreement, ties) = t.agreement();
        rows.push(vec![
            Cell::text(principle),
            Cell::text(if trait_name.is_empty() {
                "—"
            } else {
                trait_name
            }),
            Cell::Int(t.p_a.len() as i64),
            Tally::mean(&t.p_a, 0.0),
            Tally::mean(&t.first, 0.5),
            agreement,
            Cell::Int(ties as i64),
            Tally::mean(&t.p_human, 0.0),
        ]);
    }
    let principles = Table {
        name: "principles".into(),
        title: "Per principle".into(),
        caption: String::new(),
        decimals: None,
        columns: [
            "principle",
            "trait",
            "labelled",
            "mean p(A) [95% CI]",
            "position bias [95% CI]",
            "agreement with human [95% CI]",
            "ties",
            "mean p(human-preferred) [95% CI]",
        ]
        .iter()
        .map(|c| c.to_string())
        .collect(),
        rows,
        notes: vec![
            "Each principle's comparisons (one per pair it was drawn for), with the same columns as the summary; with principles_per_pair > 1 a pair counts once under each of its principles.".into(),
        ],
    };
    let mut files = Vec::new();
    if !all.p_a.is_empty() {
        let subtitle = run.caption(&format!("{} labelled pairs", all.p_a.len()));
        files.push(ReportFile {
            path: "report/feedback.svg".into(),
            description: "histogram of the soft labels (and of p for the human-preferred response)"
                .into(),
            content: figure(&all, &subtitle).into_bytes(),
        });
    }
    prefs.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    if !prefs.is_empty() {
        let records: Vec<PreferenceRecord> = prefs.into_iter().map(|p| p.2).collect();
        files.push(ReportFile {
            path: "data/preferences.jsonl".into(),
            description: format!(
                "{} AI-feedback preference labels (prompt, a, b, p_a)",
                records.len()
            ),
            content: preferences::to_jsonl(&records).into_bytes(),
        });
    }
    Ok(Analysis {
        tables: vec![summary, principles],
        files,
    })
}

/// Histograms (ten bins over [0, 1]) of the soft labels p(A) and, where there are human
/// labels, of p for the human-preferred response.
fn figure(t: &Tally, subtitle: &str) -> String {
    use shammie_plot::{BarChart, Figure, Legend};
    let bins = |xs: &[f64]| {
        let mut counts = [0u64; 10];
        for x in xs {
            counts[((x * 10.0).floor() as usize).min(9)] += 1;
        }
        counts
            .iter()
            .enumerate()
            // Labelled by the bin's range (two decimals of its centre would also be
            // unique, but ranges say what falls in it).
            .map(|(i, c)| {
                (
                    format!("{:.1}–{:.1}", i as f64 / 10.0, (i + 1) as f64 / 10.0),
                    *c as f64,
                )
            })
            .collect::<Vec<_>>()
    };
    let chart = |title: &str, x: &str, xs: &[f64]| {
        BarChart::new(title)
            .x_label(x)
            .y_label("pairs")
            .series("pairs", bins(xs))
            .legend(Legend::Hidden)
    };
    let mut charts = vec![chart("Soft labels", "p(A)", &t.p_a)];
    if !t.p_human.is_empty() {
        charts.push(chart(
            "Human-preferred response",
            "p(human-preferred)",
            &t.p_human,
        ));
    }
    let fig = if charts.len() == 1 {
        Figure::single(charts.remove(0))
    } else {
        Figure::panels(2, charts)
    };
    fig.subtitle(subtitle).to_svg()
}
