//! The stages of `clio/usage`, in the order they run:
//!
//! 1. `facets` (map, one sample per conversation): the facets, by the `facet` model.
//! 2. `embed` (lab): the summaries of the conversations whose facets were read, in id
//!    order, embedded; artifacts `embed/items.jsonl` (id and user per line) and
//!    `embed/vectors.f32` (little-endian f32, one row per item).
//! 3. `clusters` (reduce): k-means; artifact `clusters/clusters.json` (per item its
//!    cluster; per cluster its size, distinct users, the seeded sample of members the
//!    namer sees and the nearest non-members).
//! 4. `map` (reduce): a seeded sample of the conversations projected to 2-D (UMAP);
//!    artifact `map/points.json`.
//! 5. `names` (map, one sample per cluster): name and description by the `namer`.
//! 6. the hierarchy's stages, level by level (`crate::hierarchy`).
//! 7. `audit` (map, one sample per named cluster at every level): the `auditor`'s rating.
//!
//! Every stage resumes: map stages per sample, the lab and reduce stages by running again
//! (deterministically: items in id order, k-means seeded by the run's seed).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::sync::Arc;

use async_trait::async_trait;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use shammie_core::{Sample, Scores};
use shammie_engine::{
    DataError, Dataset, Lab, LabStage, MapStage, ReduceStage, RunView, SampleContext, SampleError,
    StageOutput,
};
use shammie_kit::scores::{from_scores, to_scores};

use crate::conversations::Conversation;
use crate::kmeans::{self, Points};
use crate::{prompts, Shared, SummarySource};

pub const ITEMS: &str = "embed/items.jsonl";
pub const VECTORS: &str = "embed/vectors.f32";
pub const CLUSTERS: &str = "clusters/clusters.json";

/// Field `key` of a sample's input, as the stage that made the sample wrote it.
pub(crate) fn input<T: serde::de::DeserializeOwned>(
    s: &Sample,
    key: &str,
) -> Result<T, SampleError> {
    serde_json::from_value(s.input[key].clone())
        .map_err(|e| SampleError::Protocol(format!("bad sample input `{key}`: {e}")))
}

/// A model's answer that could not be read: what was missing, and the answer's start.
pub(crate) fn unreadable(what: &str, answer: &str) -> SampleError {
    SampleError::Protocol(format!(
        "{what}: {:?}",
        answer.chars().take(200).collect::<String>()
    ))
}

/// A dataset of samples listed in full, each a unit of its own.
pub(crate) fn listed(samples: Vec<Sample>, unit: &'static str) -> Dataset {
    Dataset::new(
        Some(samples.len() as u64),
        unit,
        samples.into_iter().map(Ok),
    )
}

fn stage_err(stage: &str, e: impl std::fmt::Display) -> DataError {
    DataError::File {
        path: format!("stages/{stage}"),
        message: e.to_string(),
    }
}

/// What the `facets` stage records per conversation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FacetRecord {
    pub user: String,
    /// What is embedded: the model's summary, or the first user turn.
    #[serde(default)]
    pub summary: Option<String>,
    /// `model` or `first-user-message`.
    pub summary_from: String,
    #[serde(default)]
    pub task: Option<String>,
    #[serde(default)]
    pub languages: Option<Vec<String>>,
    /// 1–5, when asked for and read.
    #[serde(default)]
    pub concerning: Option<u8>,
    /// Asked for but not read (the answer held no digit from 1 to 5).
    #[serde(default)]
    pub concerning_unread: bool,
}

/// `facets` (map): one sample per conversation, streamed from the file.
pub struct Facets(pub Arc<Shared>);

#[async_trait]
impl MapStage for Facets {
    fn name(&self) -> &str {
        "facets"
    }
    fn private(&self) -> Option<&str> {
        Some("the conversations analysed, verbatim, and what the facet model read of them")
    }
    fn dataset(&self, run: &RunView) -> Result<Dataset, DataError> {
        let sample = |c: Conversation| Sample {
            id: c.id.clone(),
            unit: None,
            input: serde_json::json!({ "conversation": c }),
        };
        match &self.0.conversations {
            crate::Conversations::File(source) => {
                let iter = source.iter()?.map(move |r| r.map(|(_, c)| sample(c)));
                Ok(Dataset::new(Some(self.0.n), "conversation", iter))
            }
            crate::Conversations::Planted(list) => {
                let list = list.clone();
                let n = list.len() as u64;
                Ok(Dataset::new(
                    Some(n),
                    "conversation",
                    (0..list.len()).map(move |i| Ok(sample(list[i].0.clone()))),
                ))
            }
            crate::Conversations::Written(_) => {
                let written =
                    crate::reconstruction::written(run).map_err(|e| stage_err("write", e))?;
                let n = written.len() as u64;
                Ok(Dataset::new(
                    Some(n),
                    "conversation",
                    written.into_iter().map(move |w| Ok(sample(w.conversation))),
                ))
            }
        }
    }
    async fn solve(&self, cx: &SampleContext, s: &Sample) -> Result<Scores, SampleError> {
        let c: Conversation = input(s, "conversation")?;
        let cfg = &self.0.config;
        let text = c.render(cfg.max_chars);
        let mut r = FacetRecord {
            user: c.user.clone(),
            summary_from: shammie_engine::OptionValue::show_option(&cfg.summary),
            ..Default::default()
        };
        if cfg.summary == SummarySource::FirstUserMessage {
            r.summary = c.first_user().map(|t| {
                t.chars()
                    .take(cfg.max_chars)
                    .collect::<String>()
                    .trim()
                    .to_string()
            });
        }
        let prefill = cx.capabilities("facet")?.prefill;
        for f in &cfg.facets {
            if f == "summary" && cfg.summary == SummarySource::FirstUserMessage {
                continue;
            }
            let req = prompts::without_prefill_unless(
                prefill,
                prompts::facet(f, &text, cfg.facet_tokens, cfg.facet_temperature),
            );
            let out = cx.labelled(f).generate("facet", req).await?;
            match f.as_str() {
                "summary" => {
                    let t = prompts::facet_text(f, &out.text);
                    r.summary = (t != prompts::SUMMARY_OPENER).then_some(t);
                }
                "task" => r.task = Some(prompts::facet_text(f, &out.text)),
                "language" => r.languages = Some(prompts::languages(&out.text)),
                "concerning" => {
                    r.concerning = prompts::rating(&out.text);
                    r.concerning_unread = r.concerning.is_none();
                }
                _ => unreachable!("facets are checked when the task is built"),
            }
        }
        Ok(to_scores(&r))
    }
}

/// One embedded conversation, a line of `embed/items.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub id: String,
    pub user: String,
}

/// The finished records of map stage `stage` (failed ones left out), with their ids, as
/// `T`, in id order.
pub fn finished<T: serde::de::DeserializeOwned>(
    run: &RunView,
    stage: &str,
) -> Result<Vec<(String, T)>, String> {
    let mut out = Vec::new();
    for r in run.records(stage).map_err(|e| e.to_string())? {
        let r = r.map_err(|e| e.to_string())?;
        if r.error.is_none() {
            out.push((r.id.clone(), from_scores::<T>(&r.id, r.scores)?));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The facet records of the finished conversations that have a summary, in id order.
pub fn summarised(run: &RunView) -> Result<Vec<(String, FacetRecord)>, String> {
    let mut out = finished::<FacetRecord>(run, "facets")?;
    out.retain(|(_, f)| f.summary.as_deref().is_some_and(|s| !s.trim().is_empty()));
    Ok(out)
}

/// `embed` (lab): the summaries embedded.
pub struct Embed(pub Arc<Shared>);

impl LabStage for Embed {
    fn name(&self) -> &str {
        "embed"
    }
    fn run(&self, run: &RunView, lab: &dyn Lab, out: &mut StageOutput) -> Result<(), String> {
        let items = summarised(run)?;
        if items.is_empty() {
            return Err(
                "no conversation has a summary to embed (every facet sample failed or was empty)"
                    .into(),
            );
        }
        let texts: Vec<String> = items
            .iter()
            .map(|(_, f)| f.summary.clone().unwrap_or_default())
            .collect();
        let vectors = lab.embed(&self.0.config.embedder, &texts)?;
        if vectors.len() != texts.len() {
            return Err(format!(
                "the embedder returned {} vectors for {} texts",
                vectors.len(),
                texts.len()
            ));
        }
        let dim = vectors[0].len();
        if dim == 0
            || vectors
                .iter()
                .any(|v| v.len() != dim || v.iter().any(|x| !x.is_finite()))
        {
            return Err(
                "the embedder returned vectors of different lengths or non-finite values".into(),
            );
        }
        let mut w = out.create(ITEMS)?;
        for (id, f) in &items {
            let line = serde_json::to_string(&Item {
                id: id.clone(),
                user: f.user.clone(),
            })
            .expect("plain values");
            writeln!(w, "{line}").map_err(|e| e.to_string())?;
        }
        out.commit(w)?;
        let mut w = out.create(VECTORS)?;
        for v in &vectors {
            for x in v {
                w.write_all(&x.to_le_bytes()).map_err(|e| e.to_string())?;
            }
        }
        out.commit(w)?;
        Ok(())
    }
}

/// The embedded items, in the order of their vectors.
pub fn items(run: &RunView) -> Result<Vec<Item>, String> {
    String::from_utf8(run.artifact(ITEMS).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?
        .lines()
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{ITEMS}: {e}")))
        .collect()
}

/// The embedded items and their vectors (row-major), as the `embed` stage wrote them.
pub fn embedded(run: &RunView) -> Result<(Vec<Item>, Vec<f32>, usize), String> {
    let items = items(run)?;
    let bytes = run.artifact(VECTORS).map_err(|e| e.to_string())?;
    let vectors: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if items.is_empty() || !vectors.len().is_multiple_of(items.len()) {
        return Err(format!(
            "{VECTORS}: {} values for {} items",
            vectors.len(),
            items.len()
        ));
    }
    let dim = vectors.len() / items.len();
    Ok((items, vectors, dim))
}

/// One base cluster, as `clusters/clusters.json` holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterInfo {
    pub cluster: usize,
    pub size: usize,
    pub users: usize,
    /// Ids of the members the namer sees (a seeded random sample).
    pub sample: Vec<String>,
    /// Ids of the nearest non-members to the centroid (contrast for the namer).
    pub nearest_outside: Vec<String>,
}

/// `clusters/clusters.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clusters {
    pub k: usize,
    pub inertia: f64,
    pub restarts: usize,
    pub iterations: usize,
    /// Per item of `embed/items.jsonl`, in order, its cluster.
    pub assignment: Vec<usize>,
    pub clusters: Vec<ClusterInfo>,
}

/// Reads `clusters/clusters.json`.
pub fn clusters(run: &RunView) -> Result<Clusters, String> {
    serde_json::from_slice(&run.artifact(CLUSTERS).map_err(|e| e.to_string())?)
        .map_err(|e| format!("{CLUSTERS}: {e}"))
}

/// `clusters` (reduce): k-means of the embeddings.
pub struct Cluster(pub Arc<Shared>);

/// Clusters `(items, vectors)` as the `clusters` stage does, with the run's seed.
pub fn cluster(
    cfg: &crate::Pipeline,
    items: &[Item],
    vectors: &[f32],
    dim: usize,
    seed: u64,
) -> Clusters {
    let n = items.len();
    let k = cfg.k.unwrap_or_else(|| kmeans::default_k(n)).min(n);
    let points = Points::new(vectors, dim);
    let c = kmeans::kmeans(points, k, cfg.restarts, cfg.max_iter, seed);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); k];
    for (i, &a) in c.assignment.iter().enumerate() {
        members[a].push(i);
    }
    let clusters = members
        .iter()
        .enumerate()
        .map(|(cl, m)| {
            let users: HashSet<&str> = m.iter().map(|&i| items[i].user.as_str()).collect();
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ (0xC110 + cl as u64));
            let mut sample = m.clone();
            sample.shuffle(&mut rng);
            sample.truncate(cfg.name_sample);
            sample.sort_unstable();
            let centroid = &c.centroids[cl * dim..(cl + 1) * dim];
            let mut outside: Vec<(f32, usize)> = (0..n)
                .filter(|&i| c.assignment[i] != cl)
                .map(|i| (kmeans::dist2(points.row(i), centroid), i))
                .collect();
            outside.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            outside.truncate(cfg.contrast);
            ClusterInfo {
                cluster: cl,
                size: m.len(),
                users: users.len(),
                sample: sample.into_iter().map(|i| items[i].id.clone()).collect(),
                nearest_outside: outside
                    .into_iter()
                    .map(|(_, i)| items[i].id.clone())
                    .collect(),
            }
        })
        .collect();
    Clusters {
        k,
        inertia: c.inertia,
        restarts: cfg.restarts,
        iterations: c.iterations,
        assignment: c.assignment,
        clusters,
    }
}

impl ReduceStage for Cluster {
    fn name(&self) -> &str {
        "clusters"
    }
    fn reduce(&self, run: &RunView, out: &mut StageOutput) -> Result<(), String> {
        let (items, vectors, dim) = embedded(run)?;
        let c = cluster(&self.0.config, &items, &vectors, dim, run.seed());
        out.write(CLUSTERS, &serde_json::to_vec(&c).expect("plain values"))?;
        Ok(())
    }
}

/// `map/points.json`: sampled items (indices into `embed/items.jsonl`) and their 2-D
/// coordinates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapPoints {
    pub items: Vec<usize>,
    pub xy: Vec<[f64; 2]>,
}

pub const MAP: &str = "map/points.json";

/// `map` (reduce): a seeded sample of the embedded conversations projected to 2-D.
pub struct Project(pub Arc<Shared>);

impl ReduceStage for Project {
    fn name(&self) -> &str {
        "map"
    }
    fn reduce(&self, run: &RunView, out: &mut StageOutput) -> Result<(), String> {
        let (items, vectors, dim) = embedded(run)?;
        let n = items.len();
        let want = self.0.config.map_points.min(n);
        let mut chosen: Vec<usize> = (0..n).collect();
        if want < n {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(run.seed() ^ 0x4D41_5053);
            chosen.shuffle(&mut rng);
            chosen.truncate(want);
            chosen.sort_unstable();
        }
        let data: Vec<f32> = chosen
            .iter()
            .flat_map(|&i| vectors[i * dim..(i + 1) * dim].iter().copied())
            .collect();
        let xy = crate::projection::umap(
            &data,
            dim,
            crate::projection::Settings {
                seed: run.seed(),
                ..Default::default()
            },
        );
        out.write(
            MAP,
            &serde_json::to_vec(&MapPoints { items: chosen, xy }).expect("plain values"),
        )?;
        Ok(())
    }
}

/// Reads `map/points.json`.
pub fn map_points(run: &RunView) -> Result<MapPoints, String> {
    serde_json::from_slice(&run.artifact(MAP).map_err(|e| e.to_string())?)
        .map_err(|e| format!("{MAP}: {e}"))
}

/// What the `names` stage records per cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NameRecord {
    pub cluster: usize,
    pub name: String,
    pub description: String,
}

/// `names` (map): one sample per base cluster.
pub struct Names(pub Arc<Shared>);

#[async_trait]
impl MapStage for Names {
    fn name(&self) -> &str {
        "names"
    }
    fn dataset(&self, run: &RunView) -> Result<Dataset, DataError> {
        let c = clusters(run).map_err(|e| stage_err("clusters", e))?;
        let wanted: HashSet<&str> = c
            .clusters
            .iter()
            .flat_map(|cl| cl.sample.iter().chain(&cl.nearest_outside))
            .map(String::as_str)
            .collect();
        let mut summary: HashMap<String, String> = HashMap::new();
        for r in run.records("facets").map_err(|e| stage_err("facets", e))? {
            let r = r.map_err(|e| stage_err("facets", e))?;
            if r.error.is_none() && wanted.contains(r.id.as_str()) {
                let id = r.id.clone();
                let f: FacetRecord =
                    from_scores(&r.id, r.scores).map_err(|e| stage_err("facets", e))?;
                summary.insert(id, f.summary.unwrap_or_default());
            }
        }
        let texts = |ids: &[String]| -> Vec<String> {
            ids.iter().filter_map(|i| summary.get(i).cloned()).collect()
        };
        let samples: Vec<Sample> = c
            .clusters
            .iter()
            .map(|cl| Sample {
                id: format!("cluster-{}", cl.cluster),
                unit: None,
                input: serde_json::json!({
                    "cluster": cl.cluster,
                    "inside": texts(&cl.sample),
                    "outside": texts(&cl.nearest_outside),
                }),
            })
            .collect();
        Ok(listed(samples, "cluster"))
    }
    async fn solve(&self, cx: &SampleContext, s: &Sample) -> Result<Scores, SampleError> {
        let cluster: usize = input(s, "cluster")?;
        let inside: Vec<String> = input(s, "inside")?;
        let outside: Vec<String> = input(s, "outside")?;
        let cfg = &self.0.config;
        let req = prompts::without_prefill_unless(
            cx.capabilities("namer")?.prefill,
            prompts::name_cluster(&inside, &outside, cfg.name_tokens, cfg.name_temperature),
        );
        let out = cx.labelled("name").generate("namer", req).await?;
        let (name, description) = prompts::parse_name(&out.text)
            .ok_or_else(|| unreadable("the namer's answer has no name", &out.text))?;
        Ok(to_scores(&NameRecord {
            cluster,
            name,
            description,
        }))
    }
}

/// The names of the clusters that were named, by cluster.
pub fn names(run: &RunView) -> Result<BTreeMap<usize, NameRecord>, String> {
    Ok(finished::<NameRecord>(run, "names")?
        .into_iter()
        .map(|(_, n)| (n.cluster, n))
        .collect())
}

/// What the `audit` stage records per cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// 0: a base cluster; 1…: a level of the hierarchy.
    #[serde(default)]
    pub level: usize,
    pub cluster: usize,
    /// 1–5 (5: nothing identifying); `None` when the answer held no such digit.
    pub rating: Option<u8>,
}

/// `audit` (map): one sample per named cluster, at every level.
pub struct Audit(pub Arc<Shared>);

#[async_trait]
impl MapStage for Audit {
    fn name(&self) -> &str {
        "audit"
    }
    fn dataset(&self, run: &RunView) -> Result<Dataset, DataError> {
        let mut samples = Vec::new();
        for level in 0..=self.0.levels {
            for n in crate::hierarchy::nodes(run, level).map_err(|e| stage_err("audit", e))? {
                samples.push(Sample {
                    id: format!("audit-L{level}-{:04}", n.index),
                    unit: None,
                    input: serde_json::json!({ "level": level, "node": n }),
                });
            }
        }
        Ok(listed(samples, "cluster"))
    }
    async fn solve(&self, cx: &SampleContext, s: &Sample) -> Result<Scores, SampleError> {
        let level: usize = input(s, "level")?;
        let n: crate::hierarchy::Node = input(s, "node")?;
        let req = prompts::without_prefill_unless(
            cx.capabilities("auditor")?.prefill,
            prompts::audit(&n.name, &n.description, 0.0),
        );
        let out = cx.labelled("audit").generate("auditor", req).await?;
        Ok(to_scores(&AuditRecord {
            level,
            cluster: n.index,
            rating: prompts::rating(&out.text),
        }))
    }
}

/// The auditor's ratings by (level, cluster) (clusters whose audit failed are absent).
pub fn audits(run: &RunView) -> Result<BTreeMap<(usize, usize), Option<u8>>, String> {
    Ok(finished::<AuditRecord>(run, "audit")?
        .into_iter()
        .map(|(_, a)| ((a.level, a.cluster), a.rating))
        .collect())
}
