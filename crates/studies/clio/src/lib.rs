//! `clio` (Tamkin et al. 2024, "Clio: Privacy-Preserving Insights into Real-World AI
//! Use"): what are people using an assistant for, in aggregate, without anyone reading a
//! conversation?
//!
//! Method (task `clio/usage`), each step a resumable stage of the run ([`stages`]):
//! 1. **Facets** (`facets`, role `facet`): per conversation, a model writes the user's
//!    request in one or two sentences with nothing identifying, the task, the languages,
//!    and how concerning the request is (1–5) ([`prompts`]). With
//!    `summary=first-user-message` the first user turn is embedded instead, with no model
//!    call: cheap for large corpora, and **not privacy-preserving** (the run says so).
//! 2. **Embeddings** (`embed`, a lab stage): the summaries embedded by a sentence encoder
//!    (all-MiniLM-L6-v2 by default, on the CPU).
//! 3. **Base clusters** (`clusters`): k-means (k-means++, seeded restarts; [`kmeans`]), k
//!    by option or √(n/2).
//! 4. **Names** (`names`, role `namer`): per cluster, a sample of its summaries and, for
//!    contrast, the nearest summaries outside it give a short name and a two-sentence
//!    description.
//! 5. **Hierarchy** ([`hierarchy`], role `namer`): level by level, the clusters' names are
//!    embedded and neighbours grouped; the namer proposes parent names per group, merges
//!    them, assigns each cluster to a parent and renames each parent from its children.
//! 6. **Privacy** (`audit`, role `auditor`, and [`analysis`]): a cluster is shown only with
//!    at least `min_users` distinct users and `min_conversations` conversations, and only
//!    if the auditor rates its name and description at least `audit_min` of 5 (5: nothing
//!    identifying), at every level. Everything withheld is counted, never shown; a
//!    conversation in a withheld cluster is assigned "suppressed".
//!
//! Method, options and differences from the paper: `docs/studies/clio.md`.

pub mod analysis;
pub mod conversations;
pub mod hierarchy;
pub mod kmeans;
pub mod privacy_check;
pub mod projection;
pub mod prompts;
pub mod reconstruction;
pub mod stages;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use shammie_core::SampleRecord;
use shammie_engine::{
    Analysis, DataError, Dataset, EngineError, OptionGroup, Options, RoleSpec, RunView, Stage, Task,
};
use shammie_kit::study::{StudyInfo, TaskInfo};

use conversations::Source;

/// The study as the registry lists it.
pub fn study() -> StudyInfo {
    StudyInfo {
        name: "clio",
        paper: "Tamkin et al. 2024, Clio: Privacy-Preserving Insights into Real-World AI Use",
        summary: "What is an assistant used for, in aggregate and privately: facets per conversation, embeddings, k-means clusters named by a model with contrast, privacy thresholds and an auditor",
        tasks: vec![
            TaskInfo::new(
                "clio",
                "usage",
                "Conversations (OpenAI messages, ShareGPT or Human:/Assistant: JSONL) → facets → embeddings → k-means clusters → names → hierarchy → privacy filters; clusters with sizes, shares, concerning scores and languages; a map and a tree; per-conversation assignments",
                <Config as OptionGroup>::options,
                roles,
                build,
            ),
            TaskInfo::new(
                "clio",
                "privacy-check",
                "Conversations with planted names, emails, phone numbers and addresses through the pipeline: the share of details that leak into the facet summaries and into anything shown (goal 0)",
                <PrivacyCheckConfig as OptionGroup>::options,
                roles,
                build_privacy_check,
            ),
            TaskInfo::new(
                "clio",
                "reconstruction",
                "The paper's validation: a writer writes conversations on known topics, the pipeline clusters them blind, and each base cluster is matched to a topic; accuracy, purity and adjusted Rand index with intervals",
                <ReconstructionConfig as OptionGroup>::options,
                reconstruction_roles,
                build_reconstruction,
            ),
        ],
        offline: None,
    }
}

shammie_engine::option_choice! {
    /// `summary`: what is embedded for each conversation.
    pub enum SummarySource { Model = "model", FirstUserMessage = "first-user-message" }
}

shammie_engine::task_options! {
    /// The pipeline's settings, which every clio task takes (`--set key=value`).
    pub struct Pipeline {
        /// facets extracted per conversation, comma-separated: summary, task, language, concerning
        pub facets: Vec<String> = prompts::FACETS.map(String::from).to_vec(),
        /// what is embedded and clustered: model (the facet model's privacy-preserving summary) or first-user-message (the raw first user turn, no model call: NOT privacy-preserving)
        pub summary: SummarySource = SummarySource::Model,
        /// characters of a conversation shown to the facet model (the rest is cut, with a note)
        pub max_chars: usize = 12000,
        /// tokens per open-ended facet answer
        pub facet_tokens: u32 = 96,
        /// temperature of the facet model
        pub facet_temperature: f64 [0.0 ..= 2.0] = 0.0,
        /// the sentence encoder the summaries are embedded with (a built-in model name or a sentence-transformers folder; `+int8` after it: 8-bit matrix products on the integer kernels, faster, vectors within a cosine of 0.995 of the exact ones)
        pub embedder: String = "all-minilm-l6-v2".to_string(),
        /// base clusters (default: √(n/2) for n conversations)
        pub k: Option<usize> = None,
        /// k-means restarts (k-means++ seeding each; the lowest inertia is kept)
        pub restarts: usize = 3,
        /// k-means iterations at most per restart
        pub max_iter: usize = 300,
        /// summaries from inside a cluster shown to the namer (a seeded random sample)
        pub name_sample: usize = 10,
        /// nearest summaries from outside a cluster shown to the namer for contrast
        pub contrast: usize = 10,
        /// tokens of the namer's answer
        pub name_tokens: u32 = 160,
        /// temperature of the namer
        pub name_temperature: f64 [0.0 ..= 2.0] = 0.0,
        /// conversations drawn on the 2-D map (a seeded sample when there are more; 0: no map)
        pub map_points: usize = 2000,
        /// hierarchy: children per parent cluster (each level above the base has ⌈children / branching⌉ parents)
        pub branching: usize = 8,
        /// hierarchy: levels above the base clusters at most (levels are added while a level has more than `branching` clusters; 0: base clusters only)
        pub max_levels: usize = 3,
        /// a cluster is shown only with at least this many distinct users
        pub min_users: usize = 5,
        /// a cluster is shown only with at least this many conversations
        pub min_conversations: usize = 10,
        /// ask the auditor to rate each cluster's name and description for identifying content
        pub audit: bool = true,
        /// the lowest auditor rating (1–5, 5 = nothing identifying) of a cluster that is shown
        pub audit_min: u8 [1 ..= 5] = 3,
    }
}

shammie_engine::task_options! {
    /// What `clio/usage` takes (`--set key=value`).
    pub struct Config {
        /// the conversations: JSONL (plain or gzip), one conversation per line, as OpenAI `messages`, ShareGPT `conversations` or a `Human:`/`Assistant:` transcript (`chosen`, `transcript` or `text`); optional `id`/`conversation_id` and `user_id`/`user`; default: the built-in first 400 conversations of HH-RLHF's harmless-base test split (no user ids: each conversation is its own user)
        pub data: Option<PathBuf> = None,
    }
    include { pub pipeline: Pipeline }
}

shammie_engine::task_options! {
    /// What `clio/privacy-check` takes (`--set key=value`).
    pub struct PrivacyCheckConfig {
        /// conversations with planted identifying details (a full name, an email address, a phone number and a street address each, all invented)
        pub conversations: usize = 240,
    }
    include { pub pipeline: Pipeline }
}

shammie_engine::task_options! {
    /// What `clio/reconstruction` takes (`--set key=value`).
    pub struct ReconstructionConfig {
        /// the ground-truth topics: TOML with `[[category]]` tables (`name`) holding `[[category.topic]]` tables (`name`, `about`, optional `concerning = true`); default: the 21 built-in topics in 7 categories
        pub topics: Option<PathBuf> = None,
        /// synthetic conversations the writer writes per topic
        pub per_topic: usize = 10,
        /// the languages the synthetic users write in, comma-separated (conversations take them in turn)
        pub languages: Vec<String> = vec!["English".to_string()],
        /// tokens of each written conversation
        pub writer_tokens: u32 = 500,
        /// temperature of the writer
        pub writer_temperature: f64 [0.0 ..= 2.0] = 1.0,
    }
    include { pub pipeline: Pipeline }
}

/// `clio/reconstruction`'s roles: the writer, the pipeline's, and the judge that matches
/// clusters to topics.
pub fn reconstruction_roles() -> Vec<RoleSpec> {
    let mut r = vec![RoleSpec {
        name: "writer",
        help: "writes the synthetic conversations, one topic and language each",
        defaults_to: None,
    }];
    r.extend(roles().into_iter().map(|mut role| {
        if role.name == "facet" {
            role.defaults_to = Some("writer");
        }
        role
    }));
    r.push(RoleSpec {
        name: "judge",
        help: "matches each base cluster's name and description to the ground-truth topic it describes",
        defaults_to: Some("facet"),
    });
    r
}

pub fn roles() -> Vec<RoleSpec> {
    vec![
        RoleSpec {
            name: "facet",
            help: "reads each conversation and writes its facets (summary, task, languages, concerning score)",
            defaults_to: None,
        },
        RoleSpec {
            name: "namer",
            help: "names and describes each cluster from its summaries and contrasting ones",
            defaults_to: Some("facet"),
        },
        RoleSpec {
            name: "auditor",
            help: "rates each cluster's name and description for identifying content",
            defaults_to: Some("facet"),
        },
    ]
}

/// Where the conversations come from.
pub enum Conversations {
    /// A file (or the built-in corpus), checked whole when the task was built.
    File(Source),
    /// Written by the `writer` in the run's `write` stage (`clio/reconstruction`).
    Written(Arc<reconstruction::Topics>),
    /// Made with planted identifying details (`clio/privacy-check`).
    Planted(Arc<Vec<(conversations::Conversation, privacy_check::Planted)>>),
}

/// What the stages share.
pub struct Shared {
    pub config: Pipeline,
    pub conversations: Conversations,
    /// Conversations to analyse (in the file, or to be written).
    pub n: u64,
    /// Hierarchy levels above the base clusters (planned from the expected number of base
    /// clusters).
    pub levels: usize,
}

/// Which task: the usage analysis, or its validation on synthetic conversations.
enum Kind {
    Usage(Config),
    Reconstruction(ReconstructionConfig),
    PrivacyCheck(PrivacyCheckConfig),
}

pub struct Clio {
    shared: Arc<Shared>,
    kind: Kind,
}

/// Checks the pipeline's settings against `n` conversations and plans the hierarchy.
fn check_pipeline(task: &str, config: &Pipeline, n: u64) -> Result<usize, EngineError> {
    let bad = |m: String| EngineError::Config(format!("clio/{task}: {m}"));
    for f in &config.facets {
        if !prompts::FACETS.contains(&f.as_str()) {
            return Err(bad(format!(
                "facet `{f}` is not one of {}",
                prompts::FACETS.join(", ")
            )));
        }
    }
    if config.summary == SummarySource::Model && !config.facets.iter().any(|f| f == "summary") {
        return Err(bad(
            "summary=model needs the summary facet (or set summary=first-user-message)".into(),
        ));
    }
    if config.k == Some(0) || config.restarts == 0 || config.max_iter == 0 {
        return Err(bad("k, restarts and max_iter must be at least 1".into()));
    }
    if config.branching < 2 {
        return Err(bad("branching must be at least 2".into()));
    }
    if config.name_sample == 0 {
        return Err(bad("name_sample must be at least 1".into()));
    }
    if let Some(k) = config.k {
        if k as u64 > n {
            return Err(bad(format!("k = {k} clusters for {n} conversations")));
        }
    }
    let base = config.k.unwrap_or_else(|| kmeans::default_k(n as usize));
    Ok(hierarchy::planned_levels(
        base,
        config.branching,
        config.max_levels,
    ))
}

pub fn build(opts: Options) -> Result<Arc<dyn Task>, EngineError> {
    let config = Config::from_options(opts)?;
    // The whole file is checked before anything is sent.
    let source = match &config.data {
        Some(p) => Source::new(p),
        None => conversations::builtin(),
    };
    let summary = source.check().map_err(EngineError::from)?;
    let levels = check_pipeline("usage", &config.pipeline, summary.conversations)?;
    Ok(Arc::new(Clio {
        shared: Arc::new(Shared {
            config: config.pipeline.clone(),
            conversations: Conversations::File(source),
            n: summary.conversations,
            levels,
        }),
        kind: Kind::Usage(config),
    }))
}

pub fn build_reconstruction(opts: Options) -> Result<Arc<dyn Task>, EngineError> {
    let config = ReconstructionConfig::from_options(opts)?;
    let bad = |m: String| EngineError::Config(format!("clio/reconstruction: {m}"));
    let topics =
        reconstruction::Topics::load(config.topics.as_deref()).map_err(EngineError::from)?;
    if config.per_topic == 0 || config.languages.is_empty() {
        return Err(bad("per_topic and languages must not be empty".into()));
    }
    let n = (topics.len() * config.per_topic) as u64;
    let levels = check_pipeline("reconstruction", &config.pipeline, n)?;
    Ok(Arc::new(Clio {
        shared: Arc::new(Shared {
            config: config.pipeline.clone(),
            conversations: Conversations::Written(Arc::new(topics)),
            n,
            levels,
        }),
        kind: Kind::Reconstruction(config),
    }))
}

pub fn build_privacy_check(opts: Options) -> Result<Arc<dyn Task>, EngineError> {
    let config = PrivacyCheckConfig::from_options(opts)?;
    if config.conversations < 2 {
        return Err(EngineError::Config(
            "clio/privacy-check: conversations must be at least 2".into(),
        ));
    }
    let n = config.conversations as u64;
    let levels = check_pipeline("privacy-check", &config.pipeline, n)?;
    Ok(Arc::new(Clio {
        shared: Arc::new(Shared {
            config: config.pipeline.clone(),
            conversations: Conversations::Planted(Arc::new(privacy_check::conversations(
                config.conversations,
            ))),
            n,
            levels,
        }),
        kind: Kind::PrivacyCheck(config),
    }))
}

impl Clio {
    fn plan(&self) -> Vec<Stage> {
        let sh = &self.shared;
        let mut v = Vec::new();
        if let Kind::Reconstruction(c) = &self.kind {
            v.push(Stage::Map(Arc::new(reconstruction::Write {
                shared: sh.clone(),
                config: c.clone(),
            })));
        }
        v.extend([
            Stage::Map(Arc::new(stages::Facets(sh.clone()))),
            Stage::Lab(Arc::new(stages::Embed(sh.clone()))),
            Stage::Reduce(Arc::new(stages::Cluster(sh.clone()))),
            Stage::Reduce(Arc::new(stages::Project(sh.clone()))),
            Stage::Map(Arc::new(stages::Names(sh.clone()))),
        ]);
        v.extend(hierarchy::stages(sh, sh.levels));
        if sh.config.audit {
            v.push(Stage::Map(Arc::new(stages::Audit(sh.clone()))));
        }
        if let Kind::Reconstruction(_) = &self.kind {
            v.push(Stage::Map(Arc::new(reconstruction::Match(sh.clone()))));
        }
        v
    }
}

#[async_trait]
impl Task for Clio {
    fn study(&self) -> &str {
        "clio"
    }
    fn name(&self) -> &str {
        match self.kind {
            Kind::Usage(_) => "usage",
            Kind::Reconstruction(_) => "reconstruction",
            Kind::PrivacyCheck(_) => "privacy-check",
        }
    }
    fn roles(&self) -> Vec<RoleSpec> {
        match self.kind {
            Kind::Usage(_) | Kind::PrivacyCheck(_) => roles(),
            Kind::Reconstruction(_) => reconstruction_roles(),
        }
    }
    fn config(&self) -> serde_json::Value {
        match &self.kind {
            Kind::Usage(c) => serde_json::to_value(c),
            Kind::Reconstruction(c) => serde_json::to_value(c),
            Kind::PrivacyCheck(c) => serde_json::to_value(c),
        }
        .expect("config serialises")
    }
    fn inputs(&self) -> Vec<PathBuf> {
        match &self.kind {
            Kind::Usage(c) => c.data.iter().cloned().collect(),
            Kind::Reconstruction(c) => c.topics.iter().cloned().collect(),
            Kind::PrivacyCheck(_) => Vec::new(),
        }
    }
    /// The conversations (what `--limit` and the plan count); the stages build their own.
    fn dataset(&self) -> Result<Dataset, DataError> {
        let n = self.shared.n;
        Ok(Dataset {
            total: Some(n),
            units: Some(n),
            unit_name: "conversation",
            samples: Box::new(std::iter::empty()),
        })
    }
    fn stages(&self) -> Option<Vec<Stage>> {
        Some(self.plan())
    }
    fn analyze_stages(&self, run: &RunView) -> Result<Analysis, String> {
        let mut a = analysis::analyze(run, &self.shared.config, self.shared.levels)?;
        if let (Kind::Reconstruction(_), Conversations::Written(topics)) =
            (&self.kind, &self.shared.conversations)
        {
            let r = reconstruction::analyze(run, topics)?;
            a.tables.splice(0..0, r.tables);
            a.files.extend(r.files);
        }
        if let Conversations::Planted(planted) = &self.shared.conversations {
            // Everything a reader of the results sees: the shown clusters' names and
            // descriptions at every level.
            let shown: Vec<String> = a
                .tables
                .iter()
                .filter(|t| t.name == "clusters" || t.name == "hierarchy")
                .flat_map(|t| t.rows.iter().flatten())
                .filter_map(|c| match c {
                    shammie_core::Cell::Text(s) => Some(s.clone()),
                    _ => None,
                })
                .collect();
            let r = privacy_check::analyze(run, planted, &shown)?;
            a.tables.splice(0..0, r.tables);
        }
        Ok(a)
    }
    fn analyze(
        &self,
        _records: &mut dyn Iterator<Item = SampleRecord>,
        _run: &shammie_engine::RunInfo,
    ) -> Result<Analysis, String> {
        Err("clio is analysed by its stages".into())
    }
}
