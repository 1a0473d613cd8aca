//! `clio/reconstruction`, the paper's validation: synthetic conversations on known topics,
//! clustered blind by the same pipeline, then each base cluster matched to a topic.
//!
//! 1. `write` (map, role `writer`): per topic, `per_topic` conversations, each in one of
//!    `languages` (in turn), written as a `Human:`/`Assistant:` transcript.
//! 2. The `clio/usage` stages on those conversations (the facet model never sees a topic).
//! 3. `match` (map, role `judge`): each named base cluster's name and description, and the
//!    list of topics; the judge answers with the topic it describes.
//!
//! Metrics over the clustered conversations:
//! - accuracy: the share whose cluster was matched to their own topic (Wilson interval);
//!   category accuracy likewise at the category level;
//! - purity: Σ_clusters max_topic n / N;
//! - adjusted Rand index between clusters and topics (Hubert & Arabie 1985);
//! - the last two with percentile-bootstrap intervals over conversations.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use shammie_core::{Cell, GenerateRequest, Sample, Scores, Table};
use shammie_engine::{Analysis, DataError, Dataset, MapStage, RunView, SampleContext, SampleError};
use shammie_kit::cells;
use shammie_kit::jsonl::{parse_toml, Origin};
use shammie_kit::scores::to_scores;

use crate::conversations::{Conversation, Role, Turn};
use crate::prompts::without_prefill_unless;
use crate::stages::{input, listed, unreadable};
use crate::{stages, ReconstructionConfig, Shared};

const BUILTIN: &str = include_str!("../data/topics.toml");

/// One ground-truth topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Topic {
    pub category: String,
    pub name: String,
    pub about: String,
    pub concerning: bool,
}

/// The topics, in file order.
#[derive(Debug, Clone)]
pub struct Topics(pub Vec<Topic>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicsFile {
    category: Vec<CategoryDef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CategoryDef {
    name: String,
    topic: Vec<TopicDef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicDef {
    name: String,
    about: String,
    #[serde(default)]
    concerning: bool,
}

impl Topics {
    /// A topics file, or the built-in topics.
    pub fn load(path: Option<&Path>) -> Result<Topics, DataError> {
        let origin = match path {
            Some(p) => Origin::File(p.to_path_buf()),
            None => Origin::Embedded("clio/topics.toml", BUILTIN),
        };
        let f: TopicsFile = parse_toml(&origin)?;
        let bad = |message: String| DataError::File {
            path: origin.display(),
            message,
        };
        let mut out = Vec::new();
        for c in f.category {
            if c.topic.is_empty() {
                return Err(bad(format!("category `{}` has no topic", c.name)));
            }
            for t in c.topic {
                if t.name.trim().is_empty() || t.about.trim().is_empty() {
                    return Err(bad(format!(
                        "a topic of `{}` has an empty name or `about`",
                        c.name
                    )));
                }
                if out
                    .iter()
                    .any(|o: &Topic| o.name.eq_ignore_ascii_case(&t.name))
                {
                    return Err(bad(format!("topic `{}` appears twice", t.name)));
                }
                out.push(Topic {
                    category: c.name.clone(),
                    name: t.name,
                    about: t.about,
                    concerning: t.concerning,
                });
            }
        }
        if out.len() < 2 {
            return Err(bad("at least two topics are needed".into()));
        }
        Ok(Topics(out))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What the `write` stage records per conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Written {
    pub topic: usize,
    pub language: String,
    pub conversation: Conversation,
}

/// The writer's request for conversation `j` (of `per_topic`) on `topic`.
pub fn write_request(
    topic: &Topic,
    language: &str,
    j: usize,
    per_topic: usize,
    max_tokens: u32,
    temperature: f64,
) -> GenerateRequest {
    let mut r = GenerateRequest::user(
        format!(
            "Write a realistic conversation between a user and an AI assistant in which {}. The user writes in {language}, in their own words, with invented specifics; never use a real person's name, address or contact details. Two or three exchanges. This is conversation {} of {per_topic} on this subject: make its situation and wording different from the others.\n\nUse exactly this format:\nHuman: …\n\nAssistant: …",
            topic.about,
            j + 1
        ),
        max_tokens,
    );
    r.system = Some("You write realistic synthetic conversations that are used to test a privacy-preserving tool for analysing how an AI assistant is used.".into());
    r.prefill = Some("Human:".into());
    r.temperature = Some(temperature);
    r
}

/// The conversation in a writer's answer (after the `Human:` prefill, or starting with
/// it when the model could not be prefilled).
pub fn parse_written(id: &str, completion: &str) -> Option<Conversation> {
    let text = completion.trim_start();
    let text = format!(
        "Human: {}",
        text.strip_prefix("Human:").unwrap_or(text).trim_start()
    );
    let turns: Vec<Turn> = shammie_kit::transcripts::hh_turns(&text)?
        .into_iter()
        .filter(|(_, t)| !t.is_empty())
        .map(|(role, text)| Turn {
            role: match role {
                shammie_core::Role::User => Role::User,
                _ => Role::Assistant,
            },
            text,
        })
        .collect();
    turns
        .iter()
        .any(|t| t.role == Role::User)
        .then(|| Conversation {
            id: id.to_string(),
            user: id.to_string(),
            turns,
        })
}

/// `write` (map): the synthetic conversations.
pub struct Write {
    pub shared: Arc<Shared>,
    pub config: ReconstructionConfig,
}

fn topics_of(shared: &Shared) -> &Topics {
    match &shared.conversations {
        crate::Conversations::Written(t) => t,
        _ => unreachable!("reconstruction writes its conversations"),
    }
}

#[async_trait]
impl MapStage for Write {
    fn name(&self) -> &str {
        "write"
    }
    fn dataset(&self, _run: &RunView) -> Result<Dataset, DataError> {
        let c = &self.config;
        let topics = topics_of(&self.shared);
        let mut samples = Vec::new();
        for (t, _) in topics.0.iter().enumerate() {
            for j in 0..c.per_topic {
                let language = &c.languages[(t * c.per_topic + j) % c.languages.len()];
                samples.push(Sample {
                    id: format!("t{t:03}-{j:04}"),
                    unit: None,
                    input: serde_json::json!({ "topic": t, "j": j, "language": language }),
                });
            }
        }
        Ok(listed(samples, "conversation"))
    }
    async fn solve(&self, cx: &SampleContext, s: &Sample) -> Result<Scores, SampleError> {
        let t: usize = input(s, "topic")?;
        let j: usize = input(s, "j")?;
        let language: String = input(s, "language")?;
        let c = &self.config;
        let topic = &topics_of(&self.shared).0[t];
        let req = without_prefill_unless(
            cx.capabilities("writer")?.prefill,
            write_request(
                topic,
                &language,
                j,
                c.per_topic,
                c.writer_tokens,
                c.writer_temperature,
            ),
        );
        let out = cx.labelled("write").generate("writer", req).await?;
        let conversation = parse_written(&s.id, &out.text).ok_or_else(|| {
            unreadable(
                "the writer's answer is not a Human:/Assistant: conversation",
                &out.text,
            )
        })?;
        Ok(to_scores(&Written {
            topic: t,
            language,
            conversation,
        }))
    }
}

/// The conversations written, in id order.
pub fn written(run: &RunView) -> Result<Vec<Written>, String> {
    Ok(stages::finished::<Written>(run, "write")?
        .into_iter()
        .map(|(_, w)| w)
        .collect())
}

/// The judge's request: which topic does this cluster describe?
pub fn match_request(name: &str, description: &str, topics: &Topics) -> GenerateRequest {
    let list = topics
        .0
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{}. {}", i + 1, t.name))
        .collect::<Vec<_>>()
        .join("\n");
    let mut r = GenerateRequest::user(
        format!(
            "A cluster of user requests to an AI assistant:\nName: {name}\nDescription: {description}\n\nTopics:\n{list}\n\nWhich topic does the cluster describe? Answer with the topic's number only."
        ),
        8,
    );
    r.system =
        Some("You match descriptions of groups of user requests to a list of topics.".into());
    r.prefill = Some("Topic number:".into());
    r.temperature = Some(0.0);
    r
}

/// What the `match` stage records per named base cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Matched {
    pub cluster: usize,
    pub topic: usize,
}

/// `match` (map): each named base cluster matched to a topic.
pub struct Match(pub Arc<Shared>);

#[async_trait]
impl MapStage for Match {
    fn name(&self) -> &str {
        "match"
    }
    fn dataset(&self, run: &RunView) -> Result<Dataset, DataError> {
        let samples: Vec<Sample> = stages::names(run)
            .map_err(|e| DataError::File {
                path: "stages/names".into(),
                message: e,
            })?
            .into_values()
            .map(|n| Sample {
                id: format!("match-{:04}", n.cluster),
                unit: None,
                input: serde_json::to_value(&n).expect("plain values"),
            })
            .collect();
        Ok(listed(samples, "cluster"))
    }
    async fn solve(&self, cx: &SampleContext, s: &Sample) -> Result<Scores, SampleError> {
        let n: stages::NameRecord = serde_json::from_value(s.input.clone())
            .map_err(|e| SampleError::Protocol(format!("bad sample input: {e}")))?;
        let topics = topics_of(&self.0);
        let req = without_prefill_unless(
            cx.capabilities("judge")?.prefill,
            match_request(&n.name, &n.description, topics),
        );
        let out = cx.labelled("match").generate("judge", req).await?;
        let topic = crate::prompts::choice(&out.text, topics.len()).ok_or_else(|| {
            unreadable(
                &format!(
                    "no topic number from 1 to {} in the judge's answer",
                    topics.len()
                ),
                &out.text,
            )
        })?;
        Ok(to_scores(&Matched {
            cluster: n.cluster,
            topic,
        }))
    }
}

fn choose2(n: u64) -> f64 {
    (n * n.saturating_sub(1)) as f64 / 2.0
}

/// The adjusted Rand index of two labelings of the same items (1 when both put every item
/// in one group, or each in its own, as scikit-learn defines the degenerate cases).
pub fn adjusted_rand(a: &[usize], b: &[usize]) -> f64 {
    assert_eq!(a.len(), b.len());
    let n = a.len() as u64;
    let mut cells: BTreeMap<(usize, usize), u64> = BTreeMap::new();
    let mut rows: BTreeMap<usize, u64> = BTreeMap::new();
    let mut cols: BTreeMap<usize, u64> = BTreeMap::new();
    for (&x, &y) in a.iter().zip(b) {
        *cells.entry((x, y)).or_default() += 1;
        *rows.entry(x).or_default() += 1;
        *cols.entry(y).or_default() += 1;
    }
    let index: f64 = cells.values().map(|&v| choose2(v)).sum();
    let sa: f64 = rows.values().map(|&v| choose2(v)).sum();
    let sb: f64 = cols.values().map(|&v| choose2(v)).sum();
    let expected = sa * sb / choose2(n);
    let max = (sa + sb) / 2.0;
    if max == expected {
        return 1.0;
    }
    (index - expected) / (max - expected)
}

/// Σ_clusters (largest topic count) / N.
pub fn purity(pairs: &[&(usize, usize)]) -> f64 {
    let mut counts: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    for &&(c, t) in pairs {
        *counts.entry((c, t)).or_default() += 1;
    }
    let mut best: BTreeMap<usize, usize> = BTreeMap::new();
    for (&(c, _), &k) in &counts {
        let e = best.entry(c).or_default();
        *e = (*e).max(k);
    }
    best.values().sum::<usize>() as f64 / pairs.len() as f64
}

/// The reconstruction's table: accuracy, category accuracy, purity and ARI.
pub fn analyze(run: &RunView, topics: &Topics) -> Result<Analysis, String> {
    let truth: BTreeMap<String, usize> = written(run)?
        .into_iter()
        .map(|w| (w.conversation.id, w.topic))
        .collect();
    let items = stages::items(run)?;
    let clusters = stages::clusters(run)?;
    let matched: BTreeMap<usize, usize> = stages::finished::<Matched>(run, "match")?
        .into_iter()
        .map(|(_, m)| (m.cluster, m.topic))
        .collect();
    // (cluster, true topic) per clustered conversation.
    let pairs: Vec<(usize, usize)> = items
        .iter()
        .zip(&clusters.assignment)
        .filter_map(|(it, &c)| truth.get(&it.id).map(|&t| (c, t)))
        .collect();
    let n = pairs.len();
    let right = pairs
        .iter()
        .filter(|(c, t)| matched.get(c) == Some(t))
        .count();
    let same_category = pairs
        .iter()
        .filter(|(c, t)| {
            matched
                .get(c)
                .is_some_and(|&m| topics.0[m].category == topics.0[*t].category)
        })
        .count();
    let seed = run.seed();
    let purity_ci = shammie_stats::bootstrap_percentile(&pairs, purity, 2000, 0.95, seed).ok();
    let ari_ci = shammie_stats::bootstrap_percentile(
        &pairs,
        |xs| {
            let a: Vec<usize> = xs.iter().map(|p| p.0).collect();
            let b: Vec<usize> = xs.iter().map(|p| p.1).collect();
            adjusted_rand(&a, &b)
        },
        2000,
        0.95,
        seed ^ 1,
    )
    .ok();
    let unmatched = clusters.clusters.len() - matched.len();
    let mut t = Table::new(
        "reconstruction",
        "Reconstruction: how well the blind clusters recover the known topics",
        ["metric", "value"].map(String::from).to_vec(),
        vec![
            vec![
                Cell::text("accuracy (cluster matched to the conversation's topic)"),
                cells::share(right, n),
            ],
            vec![
                Cell::text("category accuracy"),
                cells::share(same_category, n),
            ],
            vec![Cell::text("purity"), cells::cell(purity_ci, n)],
            vec![Cell::text("adjusted Rand index"), cells::cell(ari_ci, n)],
            vec![Cell::text("topics"), Cell::Int(topics.len() as i64)],
            vec![
                Cell::text("base clusters (matched by the judge)"),
                Cell::Count {
                    count: matched.len() as u64,
                    of: clusters.clusters.len() as u64,
                    unit: Some("clusters".into()),
                },
            ],
        ],
        Vec::new(),
    );
    t.notes.push(format!(
        "Over the {n} synthetic conversations that were written, summarised and clustered. Accuracy: Wilson 95% intervals; purity and ARI: percentile bootstrap over conversations (2,000 resamples). {unmatched} base clusters had no name or no readable match and count as wrong. The paper reports 94% accuracy on its synthetic data."
    ));
    Ok(Analysis {
        tables: vec![t],
        files: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjusted_rand_by_hand() {
        // Contingency [[2, 1, 0], [0, 1, 2]]: Σ C(n_ij, 2) = 2; rows 3, 3 → 6; columns
        // 2, 2, 2 → 3; C(6, 2) = 15; expected 6·3/15 = 1.2; max (6 + 3)/2 = 4.5;
        // ARI = (2 − 1.2)/(4.5 − 1.2) = 8/33.
        let ari = adjusted_rand(&[0, 0, 0, 1, 1, 1], &[0, 0, 1, 1, 2, 2]);
        assert!((ari - 8.0 / 33.0).abs() < 1e-12, "{ari}");
        // The same partition under other names: 1; and the degenerate cases.
        assert_eq!(adjusted_rand(&[0, 0, 1, 2], &[5, 5, 7, 6]), 1.0);
        assert_eq!(adjusted_rand(&[0, 0, 0], &[1, 1, 1]), 1.0);
        // Independent labelings are near 0 or below.
        assert!(adjusted_rand(&[0, 1, 0, 1], &[0, 0, 1, 1]) <= 0.0);
    }

    #[test]
    fn purity_by_hand() {
        let pairs = [(0, 0), (0, 0), (0, 1), (1, 1), (1, 1), (1, 2)];
        let refs: Vec<&(usize, usize)> = pairs.iter().collect();
        assert!((purity(&refs) - 4.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn the_built_in_topics_and_bad_files() {
        let t = Topics::load(None).unwrap();
        assert_eq!(t.len(), 21);
        assert_eq!(t.0.iter().filter(|x| x.concerning).count(), 2);
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.toml");
        std::fs::write(&p, "[[category]]\nname = \"A\"\n[[category.topic]]\nname = \"x\"\nabout = \"y\"\n[[category.topic]]\nname = \"X\"\nabout = \"z\"\n").unwrap();
        let e = Topics::load(Some(&p)).unwrap_err().to_string();
        assert!(e.contains("appears twice"), "{e}");
        std::fs::write(&p, "[[category]]\nname = \"A\"\ntopics = 3\n").unwrap();
        let e = Topics::load(Some(&p)).unwrap_err().to_string();
        assert!(e.contains("t.toml"), "{e}");
    }

    #[test]
    fn written_conversations_parse() {
        let c = parse_written("t1", " I need help.\n\nAssistant: Sure.\n\nHuman: Thanks!").unwrap();
        assert_eq!(c.turns.len(), 3);
        assert_eq!(c.first_user(), Some("I need help."));
        let c = parse_written("t1", "Human: Hello\n\nAssistant: Hi").unwrap();
        assert_eq!(c.turns[0].text, "Hello");
        assert!(parse_written("t1", "").is_none());
    }
}
