//! The hierarchy above the base clusters, built level by level as the paper builds it.
//! For level l (1, 2, …), whose children are the named clusters of level l − 1:
//!
//! 1. `levelL-groups` (lab): each child's name and description embedded, and k-means
//!    (seeded) groups neighbouring children: ⌈children / branching⌉ groups, which is
//!    also the number of parents wanted.
//! 2. `levelL-propose` (map, per group): the namer proposes candidate parent names for
//!    the group's children.
//! 3. `levelL-dedupe` (map, one sample): the namer merges every group's candidates into at
//!    most the wanted number of distinct parents.
//! 4. `levelL-assign` (map, per child): the namer puts the child under the parent that
//!    fits it best.
//! 5. `levelL-rename` (map, per parent with children): the namer names and describes the
//!    parent again from the children it actually got.
//!
//! A child whose assignment cannot be read stays without a parent (counted in the
//! results); a parent whose new name cannot be read keeps its deduplicated name. A level
//! with nothing named below it stays empty, as do the levels above.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use shammie_core::{GenerateRequest, Sample, Scores};
use shammie_engine::{
    DataError, Dataset, Lab, LabStage, MapStage, RunView, SampleContext, SampleError, StageOutput,
};
use shammie_kit::scores::to_scores;

use crate::kmeans::{self, Points};
use crate::prompts::{self, without_prefill_unless};
use crate::stages::{self, input, listed, unreadable, NameRecord};
use crate::Shared;

/// The levels planned above `base` clusters: while a level has more than `branching`
/// clusters, at most `max_levels`.
pub fn planned_levels(base: usize, branching: usize, max_levels: usize) -> usize {
    let (mut n, mut l) = (base, 0);
    while n > branching && l < max_levels {
        n = n.div_ceil(branching);
        l += 1;
    }
    l
}

/// A named cluster at some level: its number in that level, name and description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub index: usize,
    pub name: String,
    pub description: String,
}

fn err(stage: &str, e: impl std::fmt::Display) -> DataError {
    DataError::File {
        path: format!("stages/{stage}"),
        message: e.to_string(),
    }
}

/// The records of a map stage that finished, as `T`, in id order.
fn finished<T: serde::de::DeserializeOwned>(run: &RunView, stage: &str) -> Result<Vec<T>, String> {
    Ok(stages::finished(run, stage)?
        .into_iter()
        .map(|(_, t)| t)
        .collect())
}

/// The named clusters of level `level` (0: the base clusters), by index.
pub fn nodes(run: &RunView, level: usize) -> Result<Vec<Node>, String> {
    if level == 0 {
        return Ok(stages::names(run)?
            .into_values()
            .map(|n: NameRecord| Node {
                index: n.cluster,
                name: n.name,
                description: n.description,
            })
            .collect());
    }
    Ok(parents(run, level)?.into_values().collect())
}

/// Level `level`'s parents that got children: renamed, or under their deduplicated name
/// when the new name could not be read.
pub fn parents(run: &RunView, level: usize) -> Result<BTreeMap<usize, Node>, String> {
    let deduped = dedupe_list(run, level)?;
    let assigned = assignments(run, level)?;
    let mut out: BTreeMap<usize, Node> = BTreeMap::new();
    for &p in assigned.values() {
        if let Some(name) = deduped.get(p) {
            out.insert(
                p,
                Node {
                    index: p,
                    name: name.clone(),
                    description: String::new(),
                },
            );
        }
    }
    for r in finished::<Node>(run, &format!("level{level}-rename"))? {
        if out.contains_key(&r.index) {
            out.insert(r.index, r);
        }
    }
    Ok(out)
}

/// Level `level`'s child → parent assignments that were read.
pub fn assignments(run: &RunView, level: usize) -> Result<BTreeMap<usize, usize>, String> {
    Ok(finished::<Assigned>(run, &format!("level{level}-assign"))?
        .into_iter()
        .map(|a| (a.child, a.parent))
        .collect())
}

fn dedupe_list(run: &RunView, level: usize) -> Result<Vec<String>, String> {
    Ok(finished::<Deduped>(run, &format!("level{level}-dedupe"))?
        .into_iter()
        .next()
        .map(|d| d.parents)
        .unwrap_or_default())
}

/// `levelL/groups.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Groups {
    /// Parents wanted at this level.
    pub wanted: usize,
    /// Per group, the indices of its children.
    pub groups: Vec<Vec<usize>>,
}

fn groups_artifact(level: usize) -> String {
    format!("level{level}/groups.json")
}

fn node_text(n: &Node) -> String {
    if n.description.is_empty() {
        n.name.clone()
    } else {
        format!("{}: {}", n.name, n.description)
    }
}

/// `levelL-groups` (lab).
pub struct GroupStage {
    pub shared: Arc<Shared>,
    pub level: usize,
    pub name: String,
}

impl LabStage for GroupStage {
    fn name(&self) -> &str {
        &self.name
    }
    fn run(&self, run: &RunView, lab: &dyn Lab, out: &mut StageOutput) -> Result<(), String> {
        let cfg = &self.shared.config;
        let children = nodes(run, self.level - 1)?;
        if children.is_empty() {
            // Nothing below was named (every name or assignment failed): the level stays
            // empty, and so does every level above it.
            let g = Groups {
                wanted: 0,
                groups: Vec::new(),
            };
            out.write(
                &groups_artifact(self.level),
                &serde_json::to_vec(&g).expect("plain values"),
            )?;
            return Ok(());
        }
        let texts: Vec<String> = children.iter().map(node_text).collect();
        let vectors = lab.embed(&cfg.embedder, &texts)?;
        let dim = vectors.first().map_or(0, Vec::len);
        if dim == 0 || vectors.len() != texts.len() || vectors.iter().any(|v| v.len() != dim) {
            return Err("the embedder returned vectors of the wrong number or length".into());
        }
        let flat: Vec<f32> = vectors.concat();
        let wanted = children.len().div_ceil(cfg.branching).max(1);
        let c = kmeans::kmeans(
            Points::new(&flat, dim),
            wanted,
            cfg.restarts,
            cfg.max_iter,
            run.seed() ^ (self.level as u64).wrapping_mul(0x5851_F42D_4C95_7F2D),
        );
        let mut groups = vec![Vec::new(); wanted];
        for (i, &g) in c.assignment.iter().enumerate() {
            groups[g].push(children[i].index);
        }
        groups.retain(|g| !g.is_empty());
        let g = Groups { wanted, groups };
        out.write(
            &groups_artifact(self.level),
            &serde_json::to_vec(&g).expect("plain values"),
        )?;
        Ok(())
    }
}

fn read_groups(run: &RunView, level: usize) -> Result<Groups, DataError> {
    let name = groups_artifact(level);
    let bytes = run.artifact(&name).map_err(|e| err(&name, e))?;
    serde_json::from_slice(&bytes).map_err(|e| err(&name, e))
}

/// What `levelL-propose` records per group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposed {
    pub group: usize,
    pub names: Vec<String>,
}

/// `levelL-propose` (map, per group).
pub struct ProposeStage {
    pub shared: Arc<Shared>,
    pub level: usize,
    pub name: String,
}

#[async_trait]
impl MapStage for ProposeStage {
    fn name(&self) -> &str {
        &self.name
    }
    fn dataset(&self, run: &RunView) -> Result<Dataset, DataError> {
        let g = read_groups(run, self.level)?;
        let children: HashMap<usize, Node> = nodes(run, self.level - 1)
            .map_err(|e| err(&self.name, e))?
            .into_iter()
            .map(|n| (n.index, n))
            .collect();
        let per_group = g.wanted.div_ceil(g.groups.len().max(1)).max(1);
        let samples: Vec<Sample> = g
            .groups
            .iter()
            .enumerate()
            .map(|(i, members)| Sample {
                id: format!("group-{i:04}"),
                unit: None,
                input: serde_json::json!({
                    "group": i,
                    "children": members.iter().filter_map(|m| children.get(m)).map(node_text).collect::<Vec<_>>(),
                    "want": (per_group + 1).min(members.len().max(1)),
                }),
            })
            .collect();
        Ok(listed(samples, "group"))
    }
    async fn solve(&self, cx: &SampleContext, s: &Sample) -> Result<Scores, SampleError> {
        let group: usize = input(s, "group")?;
        let children: Vec<String> = input(s, "children")?;
        let want: usize = input(s, "want")?;
        let cfg = &self.shared.config;
        let req = without_prefill_unless(
            cx.capabilities("namer")?.prefill,
            prompts::propose_parents(&children, want, cfg.name_tokens, cfg.name_temperature),
        );
        let out = cx.labelled("propose").generate("namer", req).await?;
        let names = prompts::parse_list(&out.text, want);
        if names.is_empty() {
            return Err(unreadable(
                "no parent names in the namer's answer",
                &out.text,
            ));
        }
        Ok(to_scores(&Proposed { group, names }))
    }
}

/// What `levelL-dedupe` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deduped {
    pub parents: Vec<String>,
}

/// `levelL-dedupe` (map, one sample).
pub struct DedupeStage {
    pub shared: Arc<Shared>,
    pub level: usize,
    pub name: String,
}

#[async_trait]
impl MapStage for DedupeStage {
    fn name(&self) -> &str {
        &self.name
    }
    fn dataset(&self, run: &RunView) -> Result<Dataset, DataError> {
        let g = read_groups(run, self.level)?;
        let mut candidates: Vec<String> = Vec::new();
        for p in finished::<Proposed>(run, &format!("level{}-propose", self.level))
            .map_err(|e| err(&self.name, e))?
        {
            for n in p.names {
                if !candidates.iter().any(|c| c.eq_ignore_ascii_case(&n)) {
                    candidates.push(n);
                }
            }
        }
        if candidates.is_empty() {
            return Ok(Dataset::new(Some(0), "level", std::iter::empty()));
        }
        let sample = Sample {
            id: "dedupe".into(),
            unit: None,
            input: serde_json::json!({ "candidates": candidates, "want": g.wanted }),
        };
        Ok(Dataset::new(Some(1), "level", std::iter::once(Ok(sample))))
    }
    async fn solve(&self, cx: &SampleContext, s: &Sample) -> Result<Scores, SampleError> {
        let candidates: Vec<String> = input(s, "candidates")?;
        let want: usize = input(s, "want")?;
        if candidates.is_empty() {
            return Err(SampleError::Protocol(
                "no candidate parent names to merge".into(),
            ));
        }
        // Nothing to merge when there are no more candidates than parents wanted.
        let parents = if candidates.len() <= want {
            candidates
        } else {
            let cfg = &self.shared.config;
            let req = without_prefill_unless(
                cx.capabilities("namer")?.prefill,
                prompts::dedupe(
                    &candidates,
                    want,
                    cfg.name_tokens.max(40 * want as u32),
                    cfg.name_temperature,
                ),
            );
            let out = cx.labelled("dedupe").generate("namer", req).await?;
            let list = prompts::parse_list(&out.text, want);
            if list.is_empty() {
                return Err(unreadable("no names in the namer's merged list", &out.text));
            }
            list
        };
        Ok(to_scores(&Deduped { parents }))
    }
}

/// What `levelL-assign` records per child.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assigned {
    pub child: usize,
    pub parent: usize,
}

/// `levelL-assign` (map, per child).
pub struct AssignStage {
    pub shared: Arc<Shared>,
    pub level: usize,
    pub name: String,
}

#[async_trait]
impl MapStage for AssignStage {
    fn name(&self) -> &str {
        &self.name
    }
    fn dataset(&self, run: &RunView) -> Result<Dataset, DataError> {
        let parents = dedupe_list(run, self.level).map_err(|e| err(&self.name, e))?;
        if parents.is_empty() {
            return Ok(Dataset::new(Some(0), "cluster", std::iter::empty()));
        }
        let samples: Vec<Sample> = nodes(run, self.level - 1)
            .map_err(|e| err(&self.name, e))?
            .into_iter()
            .map(|n| Sample {
                id: format!("child-{:04}", n.index),
                unit: None,
                input: serde_json::json!({ "child": n, "parents": parents }),
            })
            .collect();
        Ok(listed(samples, "cluster"))
    }
    async fn solve(&self, cx: &SampleContext, s: &Sample) -> Result<Scores, SampleError> {
        let child: Node = input(s, "child")?;
        let parents: Vec<String> = input(s, "parents")?;
        let parent = if parents.len() == 1 {
            0
        } else {
            let req = without_prefill_unless(
                cx.capabilities("namer")?.prefill,
                prompts::assign(
                    &node_text(&child),
                    &parents,
                    self.shared.config.name_temperature,
                ),
            );
            let out = cx.labelled("assign").generate("namer", req).await?;
            prompts::choice(&out.text, parents.len()).ok_or_else(|| {
                unreadable(
                    &format!(
                        "no parent number from 1 to {} in the namer's answer",
                        parents.len()
                    ),
                    &out.text,
                )
            })?
        };
        Ok(to_scores(&Assigned {
            child: child.index,
            parent,
        }))
    }
}

/// `levelL-rename` (map, per parent with children).
pub struct RenameStage {
    pub shared: Arc<Shared>,
    pub level: usize,
    pub name: String,
}

#[async_trait]
impl MapStage for RenameStage {
    fn name(&self) -> &str {
        &self.name
    }
    fn dataset(&self, run: &RunView) -> Result<Dataset, DataError> {
        let parents = dedupe_list(run, self.level).map_err(|e| err(&self.name, e))?;
        let children: HashMap<usize, Node> = nodes(run, self.level - 1)
            .map_err(|e| err(&self.name, e))?
            .into_iter()
            .map(|n| (n.index, n))
            .collect();
        let mut kids: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for (c, p) in assignments(run, self.level).map_err(|e| err(&self.name, e))? {
            if let Some(n) = children.get(&c) {
                kids.entry(p).or_default().push(node_text(n));
            }
        }
        let samples: Vec<Sample> = kids
            .into_iter()
            .filter(|(p, _)| *p < parents.len())
            .map(|(p, children)| Sample {
                id: format!("parent-{p:04}"),
                unit: None,
                input: serde_json::json!({ "parent": p, "name": parents[p], "children": children }),
            })
            .collect();
        Ok(listed(samples, "cluster"))
    }
    async fn solve(&self, cx: &SampleContext, s: &Sample) -> Result<Scores, SampleError> {
        let parent: usize = input(s, "parent")?;
        let children: Vec<String> = input(s, "children")?;
        let cfg = &self.shared.config;
        let req: GenerateRequest = without_prefill_unless(
            cx.capabilities("namer")?.prefill,
            prompts::rename_parent(&children, cfg.name_tokens, cfg.name_temperature),
        );
        let out = cx.labelled("rename").generate("namer", req).await?;
        let (name, description) = prompts::parse_name(&out.text)
            .ok_or_else(|| unreadable("the namer's answer has no name", &out.text))?;
        Ok(to_scores(&Node {
            index: parent,
            name,
            description,
        }))
    }
}

/// The stages of levels 1..=levels.
pub fn stages(shared: &Arc<Shared>, levels: usize) -> Vec<shammie_engine::Stage> {
    use shammie_engine::Stage;
    let mut v = Vec::new();
    for level in 1..=levels {
        let name = |what: &str| format!("level{level}-{what}");
        v.push(Stage::Lab(Arc::new(GroupStage {
            shared: shared.clone(),
            level,
            name: name("groups"),
        })));
        v.push(Stage::Map(Arc::new(ProposeStage {
            shared: shared.clone(),
            level,
            name: name("propose"),
        })));
        v.push(Stage::Map(Arc::new(DedupeStage {
            shared: shared.clone(),
            level,
            name: name("dedupe"),
        })));
        v.push(Stage::Map(Arc::new(AssignStage {
            shared: shared.clone(),
            level,
            name: name("assign"),
        })));
        v.push(Stage::Map(Arc::new(RenameStage {
            shared: shared.clone(),
            level,
            name: name("rename"),
        })));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_until_a_level_fits_the_branching() {
        assert_eq!(planned_levels(5, 8, 3), 0);
        assert_eq!(planned_levels(14, 8, 3), 1);
        assert_eq!(planned_levels(1000, 10, 3), 2); // 1000 → 100 → 10
        assert_eq!(planned_levels(1000, 10, 1), 1);
        assert_eq!(planned_levels(100_000, 8, 3), 3);
    }
}
