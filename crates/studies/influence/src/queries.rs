//! `influence/queries`: which training sequences most influence a model's completion of
//! a query (Grosse et al. 2023, STUDIES.md §8). The method and every difference from the
//! paper: `docs/studies/influence.md`.
//!
//! One lab stage, `scores`: the corpus documents most similar to each query by TF-IDF
//! (`top_n` per query, their union in corpus order) are the candidates; EK-FAC factors
//! are fitted on a seeded sample of `fit_sequences` corpus documents; every query is
//! scored against every candidate through the run's lab ([`Lab::influence`]). The
//! stage writes `scores/candidates.jsonl` (each candidate's id, corpus index, TF-IDF
//! similarity to every query and the queries that selected it) and `scores/result.json`
//! (the lab's [`InfluenceResult`]). The stage is a deterministic function of the options
//! and the run seed, so a killed run rebuilds the same job and the lab continues it from
//! the stage's work folder.
//!
//! Analysis ([`crate::analysis`], [`crate::report`]): the queries' log-probabilities;
//! per query the `top_k` most positive and most negative candidates with their share of
//! the |score| mass; per query the distribution of scores (sparsity: top-1% and top-10%
//! shares, kurtosis); self-influence when asked; `report/influence.html` (per-token heat
//! maps) and `report/distribution.svg`.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use shammie_core::SampleRecord;
use shammie_engine::{
    Analysis, DataError, Dataset, EngineError, InfluenceConfig, InfluenceJob, InfluenceResult,
    InfluenceText, Lab, LabStage, OptionGroup, OptionValue, Options, RoleSpec, RunView, Stage,
    StageOutput, Task,
};
use shammie_stats::tfidf::TfIdf;

use crate::analysis::{self, check_result, Inputs};
use crate::corpus::{self, plain_text, Corpus};

shammie_engine::option_choice! {
    /// Which curvature the EK-FAC factors estimate.
    pub enum Fisher {
        /// Labels sampled from the model: the true Fisher (the paper's choice).
        Sampled = "sampled",
        /// The data's own next tokens: the empirical Fisher.
        Empirical = "empirical",
    }
}

/// The damping λ: the paper's heuristic (0.1 × the mean eigenvalue of each projection)
/// or a fixed non-negative number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Damping {
    Heuristic,
    Fixed(f64),
}

impl OptionValue for Damping {
    fn parse_option(text: &str) -> Result<Self, String> {
        match text.trim() {
            "heuristic" => Ok(Damping::Heuristic),
            t => match t.parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => Ok(Damping::Fixed(v)),
                _ => Err("expected `heuristic` or a non-negative number".into()),
            },
        }
    }
    fn show_option(&self) -> String {
        match self {
            Damping::Heuristic => "heuristic".into(),
            Damping::Fixed(v) => format!("{v:?}"),
        }
    }
}

impl Serialize for Damping {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Damping::Heuristic => s.serialize_str("heuristic"),
            Damping::Fixed(v) => s.serialize_f64(*v),
        }
    }
}

/// The projections whose weights influence is computed over (what the lab supports).
pub const MODULES: &[&str] = &["gate_proj", "up_proj", "down_proj", "o_proj"];

/// Projection names, comma-separated, each one of [`MODULES`], at least one, none twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Modules(pub Vec<String>);

impl Default for Modules {
    /// The MLP's three projections, as the paper.
    fn default() -> Self {
        Modules(
            ["gate_proj", "up_proj", "down_proj"]
                .map(String::from)
                .to_vec(),
        )
    }
}

impl OptionValue for Modules {
    fn parse_option(text: &str) -> Result<Self, String> {
        let names = <Vec<String>>::parse_option(text)?;
        if names.is_empty() {
            return Err(format!("name at least one of {}", MODULES.join(", ")));
        }
        for (i, n) in names.iter().enumerate() {
            if !MODULES.contains(&n.as_str()) {
                return Err(format!("`{n}` is not one of {}", MODULES.join(", ")));
            }
            if names[..i].contains(n) {
                return Err(format!("`{n}` is named twice"));
            }
        }
        Ok(Modules(names))
    }
    fn show_option(&self) -> String {
        self.0.join(",")
    }
}

/// Transformer layers by index (from 0), comma-separated; `all` (or nothing): every layer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Layers(pub Vec<usize>);

impl OptionValue for Layers {
    fn parse_option(text: &str) -> Result<Self, String> {
        if matches!(text.trim(), "" | "all") {
            return Ok(Layers(Vec::new()));
        }
        let mut out: Vec<usize> = Vec::new();
        for part in <Vec<String>>::parse_option(text)? {
            let l: usize = part
                .parse()
                .map_err(|_| format!("`{part}` is not a layer index (0, 1, …)"))?;
            if out.contains(&l) {
                return Err(format!("layer {l} is named twice"));
            }
            out.push(l);
        }
        Ok(Layers(out))
    }
    fn show_option(&self) -> String {
        if self.0.is_empty() {
            "all".into()
        } else {
            self.0
                .iter()
                .map(|l| l.to_string())
                .collect::<Vec<_>>()
                .join(",")
        }
    }
}

shammie_engine::task_options! {
    /// What `influence/queries` takes (`--set key=value`).
    pub struct QueriesConfig {
        /// the training corpus searched, JSONL with one document per line: {"text": …} (plain text, all of it completion) or {"messages": [{"role", "content"}, …]} (chat: the last assistant message is the completion, the turns before it the prompt), optionally "id"; none: the built-in HH-RLHF harmless-base conversations (the human-preferred conversation of each pair, 2,300 documents)
        pub corpus: Option<PathBuf> = None,
        /// the queries, JSONL: {"prompt": TEXT | [messages], "completion": TEXT, "id"?: …}; a text prompt is one user message; none: Shammie's four built-in harmlessness queries
        pub queries: Option<PathBuf> = None,
        /// TF-IDF filter: score only the N corpus documents most similar to each query (prompt and completion), the union over queries (0: the whole corpus)
        pub top_n: usize = 100,
        /// corpus documents the EK-FAC factors are fitted on: a sample seeded by the run seed (0: all)
        pub fit_sequences: usize = 256,
        /// curvature the factors estimate: sampled (labels drawn from the model, the true Fisher, as the paper) or empirical (the documents' own tokens)
        pub fisher: Fisher = Fisher::Sampled,
        /// damping λ added to every eigenvalue: heuristic (0.1 × each projection's mean eigenvalue, as the paper) or a non-negative number
        pub damping: Damping = Damping::Heuristic,
        /// projections whose weights influence is computed over, comma-separated: gate_proj, up_proj, down_proj (the MLP, as the paper), o_proj
        pub modules: Modules = Modules::default(),
        /// transformer layers, comma-separated indices from 0 (all: every layer)
        pub layers: Layers = Layers::default(),
        /// rank of the low-rank approximation of each query's preconditioned gradient (the paper: 16 to 64; 0: exact)
        pub rank: usize = 32,
        /// every sequence (query, candidate, fit document) is cut to this many tokens
        pub max_tokens: usize [1 ..= 131072] = 256,
        /// candidates shown per query and sign in the tables and the report
        pub top_k: usize [1 ..= 1000] = 10,
        /// also compute every candidate's self-influence
        pub self_influence: bool = false,
    }
}

/// The task's one model role.
pub fn roles() -> Vec<RoleSpec> {
    vec![RoleSpec {
        name: "target",
        help: "the local model whose training data is searched (local:NAME)",
        defaults_to: None,
    }]
}

/// A scored candidate as `scores/candidates.jsonl` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateRecord {
    /// The document's id.
    pub id: String,
    /// Its index in the corpus (from 0).
    pub index: usize,
    /// Its TF-IDF cosine similarity to each query, in query order.
    pub similarity: Vec<f64>,
    /// The queries whose `top_n` it is among (all of them when `top_n` = 0).
    pub selected_by: Vec<String>,
}

/// The candidates: per query the `top_n` corpus documents most similar to it by TF-IDF
/// (prompt and completion text on both sides; ties in corpus order), their union in corpus
/// order; the whole corpus when `top_n` is 0.
pub fn select_candidates(
    corpus: &[InfluenceText],
    queries: &[InfluenceText],
    top_n: usize,
) -> Vec<CandidateRecord> {
    let tfidf = TfIdf::fit(&corpus.iter().map(plain_text).collect::<Vec<_>>());
    let texts: Vec<String> = queries.iter().map(plain_text).collect();
    let sims: Vec<Vec<f64>> = texts.iter().map(|q| tfidf.similarities(q)).collect();
    let n = if top_n == 0 { corpus.len() } else { top_n };
    let mut chosen: Vec<Vec<String>> = vec![Vec::new(); corpus.len()];
    for (query, text) in queries.iter().zip(&texts) {
        for (i, _) in tfidf.top(text, n) {
            chosen[i].push(query.id.clone());
        }
    }
    chosen
        .into_iter()
        .enumerate()
        .filter(|(_, by)| !by.is_empty())
        .map(|(i, by)| CandidateRecord {
            id: corpus[i].id.clone(),
            index: i,
            similarity: sims.iter().map(|s| s[i]).collect(),
            selected_by: by,
        })
        .collect()
}

/// The corpus indices the factors are fitted on: `k` of `0..n` drawn without replacement
/// by a ChaCha8 generator seeded with `seed`, in corpus order; all of them when `k` is 0
/// or at least `n`.
pub fn fit_sample(n: usize, k: usize, seed: u64) -> Vec<usize> {
    if k == 0 || k >= n {
        return (0..n).collect();
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut v = rand::seq::index::sample(&mut rng, n, k).into_vec();
    v.sort_unstable();
    v
}

struct Inner {
    config: QueriesConfig,
    corpus: Corpus,
    queries_name: String,
    queries: Vec<InfluenceText>,
}

impl Inner {
    /// The job (and the candidates' records) for `model` under `seed`.
    fn job(&self, model: String, seed: u64) -> (InfluenceJob, Vec<CandidateRecord>) {
        let c = &self.config;
        let docs = &self.corpus.docs;
        let candidates = select_candidates(docs, &self.queries, c.top_n);
        let fit = fit_sample(docs.len(), c.fit_sequences, seed)
            .into_iter()
            .map(|i| docs[i].clone())
            .collect();
        let job = InfluenceJob {
            model,
            fit,
            queries: self.queries.clone(),
            candidates: candidates.iter().map(|r| docs[r.index].clone()).collect(),
            config: influence_config(c, seed),
        };
        (job, candidates)
    }
}

/// The lab's settings from the options and the run seed.
pub fn influence_config(c: &QueriesConfig, seed: u64) -> InfluenceConfig {
    InfluenceConfig {
        fisher: c.fisher.show_option(),
        damping: match c.damping {
            Damping::Heuristic => None,
            Damping::Fixed(v) => Some(v),
        },
        modules: c.modules.0.clone(),
        layers: (!c.layers.0.is_empty()).then(|| c.layers.0.clone()),
        rank: (c.rank > 0).then_some(c.rank),
        max_tokens: c.max_tokens,
        self_influence: c.self_influence,
        seed,
    }
}

pub struct Queries {
    inner: Arc<Inner>,
}

pub fn build(opts: Options) -> Result<Arc<dyn Task>, EngineError> {
    let config = QueriesConfig::from_options(opts)?;
    let corpus = corpus::load_corpus(config.corpus.as_deref())?;
    if corpus.docs.is_empty() {
        return Err(EngineError::Config(format!(
            "{}: no documents",
            corpus.name
        )));
    }
    let (queries_name, queries) = corpus::load_queries(config.queries.as_deref())?;
    Ok(Arc::new(Queries {
        inner: Arc::new(Inner {
            config,
            corpus,
            queries_name,
            queries,
        }),
    }))
}

const SCORES: &str = "scores";
/// The lab's result.
pub const RESULT: &str = "scores/result.json";
/// The candidates, one [`CandidateRecord`] per line.
pub const CANDIDATES: &str = "scores/candidates.jsonl";

struct Scores {
    inner: Arc<Inner>,
}

impl LabStage for Scores {
    fn name(&self) -> &str {
        SCORES
    }
    fn run(&self, run: &RunView, lab: &dyn Lab, out: &mut StageOutput) -> Result<(), String> {
        let model = run
            .info()
            .models
            .get("target")
            .cloned()
            .ok_or("the run has no target model")?;
        let (job, candidates) = self.inner.job(model, run.seed());
        let mut lines = Vec::new();
        for c in &candidates {
            serde_json::to_writer(&mut lines, c).expect("plain values");
            lines.push(b'\n');
        }
        out.write(CANDIDATES, &lines)?;
        let work = out.work_dir()?;
        let result = lab.influence(&job, &work, out)?;
        check_result(
            &result,
            job.queries.len(),
            job.candidates.len(),
            job.config.self_influence,
        )?;
        out.write(
            RESULT,
            &serde_json::to_vec(&result).expect("finite numbers serialise"),
        )?;
        Ok(())
    }
}

impl Queries {
    /// The candidates a run scored, as the corpus holds them.
    fn candidates(&self, run: &RunView) -> Result<Vec<InfluenceText>, String> {
        let bytes = run.artifact(CANDIDATES).map_err(|e| e.to_string())?;
        let docs = &self.inner.corpus.docs;
        String::from_utf8_lossy(&bytes)
            .lines()
            .enumerate()
            .map(|(i, l)| {
                let c: CandidateRecord = serde_json::from_str(l)
                    .map_err(|e| format!("{CANDIDATES}:{}: {e}", i + 1))?;
                match docs.get(c.index) {
                    Some(d) if d.id == c.id => Ok(d.clone()),
                    _ => Err(format!(
                        "{CANDIDATES}:{}: `{}` is not document {} of {}; the corpus changed since the run",
                        i + 1,
                        c.id,
                        c.index,
                        self.inner.corpus.name
                    )),
                }
            })
            .collect()
    }
}

#[async_trait]
impl Task for Queries {
    fn study(&self) -> &str {
        "influence"
    }
    fn name(&self) -> &str {
        "queries"
    }
    fn roles(&self) -> Vec<RoleSpec> {
        roles()
    }
    fn config(&self) -> serde_json::Value {
        let i = &self.inner;
        let mut v = serde_json::to_value(&i.config).expect("config serialises");
        v["corpus_file"] = serde_json::json!(i.corpus.name);
        v["corpus_documents"] = serde_json::json!(i.corpus.docs.len());
        v["corpus_skipped"] = serde_json::json!(i.corpus.skipped.len());
        v["queries_file"] = serde_json::json!(i.queries_name);
        v["query_ids"] = serde_json::json!(i.queries.iter().map(|q| &q.id).collect::<Vec<_>>());
        v
    }
    fn inputs(&self) -> Vec<PathBuf> {
        let c = &self.inner.config;
        c.corpus.iter().chain(&c.queries).cloned().collect()
    }
    /// The corpus documents (checked when the task was built); the stage does the work.
    fn dataset(&self) -> Result<Dataset, DataError> {
        let n = self.inner.corpus.docs.len() as u64;
        Ok(Dataset {
            total: Some(n),
            units: Some(n),
            unit_name: "document",
            samples: Box::new(std::iter::empty()),
        })
    }
    fn stages(&self) -> Option<Vec<Stage>> {
        Some(vec![Stage::Lab(Arc::new(Scores {
            inner: self.inner.clone(),
        }))])
    }
    fn analyze_stages(&self, run: &RunView) -> Result<Analysis, String> {
        let bytes = run.artifact(RESULT).map_err(|e| e.to_string())?;
        let result: InfluenceResult =
            serde_json::from_slice(&bytes).map_err(|e| format!("{RESULT}: {e}"))?;
        let candidates = self.candidates(run)?;
        let i = &self.inner;
        check_result(
            &result,
            i.queries.len(),
            candidates.len(),
            i.config.self_influence,
        )?;
        let inputs = Inputs {
            queries: &i.queries,
            candidates: &candidates,
            result: &result,
            top_k: i.config.top_k,
            corpus_size: i.corpus.docs.len(),
            info: run.info(),
        };
        let mut a = analysis::analyze(&inputs);
        let caption = run.info().caption(&format!(
            "{} queries × {} candidates of {} documents, factors fitted on {} sequences",
            i.queries.len(),
            candidates.len(),
            i.corpus.docs.len(),
            result.fit_sequences
        ));
        for t in &mut a.tables {
            t.caption = caption.clone();
        }
        Ok(a)
    }
    fn analyze(
        &self,
        _records: &mut dyn Iterator<Item = SampleRecord>,
        _run: &shammie_engine::RunInfo,
    ) -> Result<Analysis, String> {
        Err("influence/queries is analysed by its stage".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_values_read_back() {
        for (text, want) in [
            ("heuristic", Damping::Heuristic),
            ("0.001", Damping::Fixed(0.001)),
            ("0", Damping::Fixed(0.0)),
        ] {
            let d = Damping::parse_option(text).unwrap();
            assert_eq!(d, want);
            assert_eq!(Damping::parse_option(&d.show_option()).unwrap(), d);
        }
        assert!(Damping::parse_option("-1").is_err());
        assert!(Damping::parse_option("auto").is_err());
        assert_eq!(Layers::parse_option("all").unwrap(), Layers(vec![]));
        assert_eq!(Layers::parse_option(" 3, 1 ").unwrap(), Layers(vec![3, 1]));
        assert_eq!(Layers(vec![3, 1]).show_option(), "3,1");
        assert!(Layers::parse_option("1,x").unwrap_err().contains("`x`"));
        assert!(Layers::parse_option("1,1").unwrap_err().contains("twice"));
        assert_eq!(
            Modules::parse_option("down_proj,o_proj").unwrap().0,
            ["down_proj", "o_proj"]
        );
        assert!(Modules::parse_option("q_proj")
            .unwrap_err()
            .contains("`q_proj`"));
        assert!(Modules::parse_option("").is_err());
        assert!(Modules::parse_option("up_proj,up_proj").is_err());
    }

    #[test]
    fn the_fit_sample_is_seeded() {
        let a = fit_sample(100, 10, 7);
        assert_eq!(a.len(), 10);
        assert!(a.windows(2).all(|w| w[0] < w[1]) && a[9] < 100);
        assert_eq!(a, fit_sample(100, 10, 7));
        assert_ne!(a, fit_sample(100, 10, 8));
        assert_eq!(fit_sample(5, 0, 1), [0, 1, 2, 3, 4]);
        assert_eq!(fit_sample(5, 9, 1), [0, 1, 2, 3, 4]);
    }

    /// Built with no options: the built-in corpus and queries, nothing read from disk.
    #[test]
    fn defaults() {
        let t = build(Options::new("influence/queries", Default::default())).unwrap();
        assert!(t.inputs().is_empty());
        let c = t.config();
        assert_eq!(c["corpus_documents"], 2300);
        assert_eq!(c["damping"], "heuristic");
        assert_eq!(c["layers"], serde_json::json!([]));
        let cfg = influence_config(&QueriesConfig::default(), 9);
        assert_eq!(cfg.fisher, "sampled");
        assert_eq!((cfg.damping, cfg.layers, cfg.rank), (None, None, Some(32)));
        assert_eq!(cfg.modules, ["gate_proj", "up_proj", "down_proj"]);
        assert_eq!(cfg.seed, 9);
    }
}
