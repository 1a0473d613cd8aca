//! The analysis: clusters with their sizes, shares, concerning scores and languages,
//! behind the privacy filters; what the filters withheld (counted, never shown); the
//! facets over the corpus; and every conversation's cluster as a file to join.
//!
//! Privacy rule, per base cluster, in this order: at least `min_users` distinct users,
//! at least `min_conversations` conversations, a name, and (with `audit=true`) an auditor
//! rating of at least `audit_min`. A cluster that fails any is withheld: its name never
//! appears, and its conversations are assigned `suppressed`.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use shammie_core::{Cell, Table};
use shammie_engine::{Analysis, ReportFile, RunView};
use shammie_kit::cells;
use shammie_kit::scores::from_scores;
use shammie_plot::{Estimate, Figure, IntervalPlot};

use crate::stages::{self, FacetRecord};
use crate::{Pipeline, SummarySource};

/// Why a cluster is withheld (`None`: shown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Withheld {
    FewUsers,
    FewConversations,
    Unnamed,
    NotRated,
    AuditBelow,
}

/// The privacy decision for one cluster.
pub fn decide(
    cfg: &Pipeline,
    users: usize,
    conversations: usize,
    named: bool,
    rating: Option<Option<u8>>,
) -> Option<Withheld> {
    if users < cfg.min_users {
        Some(Withheld::FewUsers)
    } else if conversations < cfg.min_conversations {
        Some(Withheld::FewConversations)
    } else if !named {
        Some(Withheld::Unnamed)
    } else if !cfg.audit {
        None
    } else {
        match rating {
            None | Some(None) => Some(Withheld::NotRated),
            Some(Some(r)) if r < cfg.audit_min => Some(Withheld::AuditBelow),
            Some(Some(_)) => None,
        }
    }
}

/// One line of `data/assignments.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assignment {
    pub id: String,
    /// The base cluster's name, `suppressed` (withheld by the privacy rule) or
    /// `unclustered` (no summary: its facets failed or were empty).
    pub cluster: String,
    /// The base cluster's number, for shown clusters only.
    pub cluster_id: Option<usize>,
    /// Its ancestors from level 1 up: a name, `suppressed` or `unassigned`.
    pub ancestors: Vec<String>,
}

struct Stat {
    name: String,
    description: String,
    size: usize,
    users: usize,
    concerning: Vec<f64>,
    languages: BTreeMap<String, usize>,
    rating: Option<u8>,
}

pub fn analyze(run: &RunView, cfg: &Pipeline, levels: usize) -> Result<Analysis, String> {
    let info = run.info().clone();
    // Facets over the whole corpus.
    let mut facets: HashMap<String, FacetRecord> = HashMap::new();
    let (mut read, mut failed) = (0usize, 0usize);
    for r in run.records("facets").map_err(|e| e.to_string())? {
        let r = r.map_err(|e| e.to_string())?;
        if r.error.is_some() {
            failed += 1;
            continue;
        }
        read += 1;
        let id = r.id.clone();
        let f: FacetRecord = from_scores(&r.id, r.scores)?;
        // Only what the tables use is kept: a corpus' summaries are never all in memory.
        facets.insert(
            id,
            FacetRecord {
                summary: None,
                task: None,
                user: String::new(),
                ..f
            },
        );
    }
    let items = stages::items(run)?;
    let clusters = stages::clusters(run)?;
    let names = stages::names(run)?;
    let audits = if cfg.audit {
        stages::audits(run)?
    } else {
        BTreeMap::new()
    };

    let mut stats: Vec<Stat> = clusters
        .clusters
        .iter()
        .map(|c| Stat {
            name: names
                .get(&c.cluster)
                .map(|n| n.name.clone())
                .unwrap_or_default(),
            description: names
                .get(&c.cluster)
                .map(|n| n.description.clone())
                .unwrap_or_default(),
            size: c.size,
            users: c.users,
            concerning: Vec::new(),
            languages: BTreeMap::new(),
            rating: audits.get(&(0, c.cluster)).copied().flatten(),
        })
        .collect();
    for (item, &cl) in items.iter().zip(&clusters.assignment) {
        if let Some(f) = facets.get(&item.id) {
            if let Some(c) = f.concerning {
                stats[cl].concerning.push(c as f64);
            }
            for l in f.languages.iter().flatten() {
                *stats[cl].languages.entry(l.clone()).or_default() += 1;
            }
        }
    }
    let decisions: Vec<Option<Withheld>> = clusters
        .clusters
        .iter()
        .map(|c| {
            decide(
                cfg,
                c.users,
                c.size,
                names.contains_key(&c.cluster),
                audits.get(&(0, c.cluster)).copied(),
            )
        })
        .collect();

    let clustered = items.len();
    let mut tables = Vec::new();
    let mut files = Vec::new();

    // Shown clusters, largest first.
    let mut shown: Vec<usize> = (0..stats.len())
        .filter(|&c| decisions[c].is_none())
        .collect();
    shown.sort_by(|&a, &b| stats[b].size.cmp(&stats[a].size).then(a.cmp(&b)));
    let mut rows = Vec::new();
    let mut points = Vec::new();
    for &c in &shown {
        let s = &stats[c];
        let concerning = shammie_stats::mean_ci_t(&s.concerning, 0.95)
            .ok()
            .map(|e| e.interval());
        let langs_total: usize = s.languages.values().sum();
        let mut langs: Vec<(&String, &usize)> = s.languages.iter().collect();
        langs.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let langs = langs
            .iter()
            .take(3)
            .map(|(l, n)| format!("{l} {:.0}%", 100.0 * **n as f64 / langs_total as f64))
            .collect::<Vec<_>>()
            .join(", ");
        rows.push(vec![
            Cell::text(s.name.clone()),
            Cell::text(s.description.clone()),
            cells::scaled(
                shammie_stats::wilson(s.size as u64, clustered as u64, 0.95).ok(),
                100.0,
                clustered,
            ),
            Cell::Int(s.size as i64),
            Cell::Int(s.users as i64),
            cells::cell(concerning, s.concerning.len()),
            Cell::text(langs),
            s.rating.map_or(Cell::Empty, |r| Cell::Int(r as i64)),
        ]);
        if let Ok(w) = shammie_stats::wilson(s.size as u64, clustered as u64, 0.95) {
            points.push(Estimate::new(
                shammie_plot::with_n(&s.name, s.size),
                100.0 * w.estimate,
                100.0 * w.lo,
                100.0 * w.hi,
            ));
        }
    }
    let mut t = Table::new(
        "clusters",
        "What the conversations are about: base clusters that pass the privacy rule",
        [
            "cluster",
            "description",
            "share of conversations (%)",
            "conversations",
            "users",
            "concerning (1–5)",
            "languages",
            "audit (1–5)",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        Vec::new(),
    );
    t.notes.push(format!(
        "{} of {} base clusters are shown (the rest are withheld: see `privacy`). Share: of the {clustered} clustered conversations, Wilson 95% interval; concerning: the facet model's 1–5 rating, mean with a t 95% interval over the cluster's conversations.",
        shown.len(),
        stats.len()
    ));
    if cfg.summary == SummarySource::FirstUserMessage {
        t.notes.push("NOT privacy-preserving: the clusters were built from the raw first user turns (summary=first-user-message), and the namer saw those turns.".into());
    }
    t.decimals = Some(1);
    tables.push(t);

    // What the privacy rule withheld.
    let mut by_reason: BTreeMap<Withheld, (usize, usize)> = BTreeMap::new();
    for (c, d) in decisions.iter().enumerate() {
        if let Some(w) = d {
            let e = by_reason.entry(*w).or_default();
            e.0 += 1;
            e.1 += stats[c].size;
        }
    }
    let reason = |w: Withheld| match w {
        Withheld::FewUsers => format!("fewer than {} distinct users", cfg.min_users),
        Withheld::FewConversations => {
            format!("fewer than {} conversations", cfg.min_conversations)
        }
        Withheld::Unnamed => "no name (the namer's answer could not be read)".into(),
        Withheld::NotRated => "no auditor rating".into(),
        Withheld::AuditBelow => format!("auditor rating below {}", cfg.audit_min),
    };
    let shown_conv: usize = shown.iter().map(|&c| stats[c].size).sum();
    let mut rows = vec![vec![
        Cell::text("shown"),
        Cell::Int(shown.len() as i64),
        Cell::Int(shown_conv as i64),
    ]];
    for w in [
        Withheld::FewUsers,
        Withheld::FewConversations,
        Withheld::Unnamed,
        Withheld::NotRated,
        Withheld::AuditBelow,
    ] {
        if w >= Withheld::NotRated && !cfg.audit {
            continue;
        }
        let (k, n) = by_reason.get(&w).copied().unwrap_or_default();
        rows.push(vec![
            Cell::text(format!("withheld: {}", reason(w))),
            Cell::Int(k as i64),
            Cell::Int(n as i64),
        ]);
    }
    rows.push(vec![
        Cell::text("not clustered: no summary (facets failed or empty)"),
        Cell::Empty,
        Cell::Int((read + failed - clustered) as i64),
    ]);
    let mut t = Table::new(
        "privacy",
        "The privacy rule: clusters and conversations shown and withheld",
        ["", "clusters", "conversations"].map(String::from).to_vec(),
        rows,
        Vec::new(),
    );
    t.notes.push(format!(
        "A base cluster is shown only with at least {} distinct users and {} conversations, a name{}; the first rule it fails is counted. Withheld clusters are never named; their conversations are assigned `suppressed` in data/assignments.jsonl.",
        cfg.min_users,
        cfg.min_conversations,
        if cfg.audit {
            format!(", and an auditor rating of at least {} of 5", cfg.audit_min)
        } else {
            " (no auditor: audit=false)".into()
        }
    ));
    tables.push(t);

    // The facets over the corpus.
    let ratings: Vec<f64> = facets
        .values()
        .filter_map(|f| f.concerning)
        .map(f64::from)
        .collect();
    let unread = facets.values().filter(|f| f.concerning_unread).count();
    let mut rows = Vec::new();
    if cfg.facets.iter().any(|f| f == "concerning") {
        for level in 1..=5u8 {
            let k = ratings.iter().filter(|&&r| r == level as f64).count();
            rows.push(vec![
                Cell::text(format!("concerning = {level}")),
                cells::scaled(
                    shammie_stats::wilson(k as u64, ratings.len() as u64, 0.95).ok(),
                    100.0,
                    ratings.len(),
                ),
            ]);
        }
    }
    let mut langs: BTreeMap<&str, usize> = BTreeMap::new();
    let with_lang = facets
        .values()
        .filter(|f| f.languages.as_ref().is_some_and(|l| !l.is_empty()))
        .count();
    for f in facets.values() {
        for l in f.languages.iter().flatten() {
            *langs.entry(l.as_str()).or_default() += 1;
        }
    }
    let mut langs: Vec<(&str, usize)> = langs.into_iter().collect();
    langs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    for (l, k) in langs.into_iter().take(10) {
        rows.push(vec![
            Cell::text(format!("language: {l}")),
            cells::scaled(
                shammie_stats::wilson(k as u64, with_lang as u64, 0.95).ok(),
                100.0,
                with_lang,
            ),
        ]);
    }
    let mut t = Table::new(
        "facets",
        "Facets over all conversations",
        ["facet", "share (%)"].map(String::from).to_vec(),
        rows,
        Vec::new(),
    );
    t.notes.push(format!(
        "{read} conversations read, {failed} failed; concerning: share of the {} conversations whose rating was read ({unread} answers held no rating); languages: share of the {with_lang} conversations with a language read. Wilson 95% intervals.",
        ratings.len()
    ));
    if let Some(n) = shammie_kit::scores::failed_note(failed as u64) {
        t.notes.push(n);
    }
    t.decimals = Some(1);
    tables.push(t);

    // The hierarchy: per level, each parent's base clusters, conversations and users.
    let mut base_users: Vec<HashSet<&str>> = vec![HashSet::new(); stats.len()];
    for (item, &cl) in items.iter().zip(&clusters.assignment) {
        base_users[cl].insert(item.user.as_str());
    }
    let mut under: BTreeMap<usize, Vec<usize>> = names.keys().map(|&c| (c, vec![c])).collect();
    let mut tree_levels: Vec<Level> = vec![Level {
        nodes: (0..stats.len())
            .map(|c| {
                (
                    c,
                    TreeNode {
                        name: stats[c].name.clone(),
                        description: stats[c].description.clone(),
                        conversations: stats[c].size,
                        users: stats[c].users,
                        rating: stats[c].rating,
                        withheld: decisions[c],
                        parent: None,
                        facets: FacetCounts::of(&stats[c]),
                    },
                )
            })
            .collect(),
    }];
    for level in 1..=levels {
        let parents = crate::hierarchy::parents(run, level)?;
        let assigned = crate::hierarchy::assignments(run, level)?;
        let mut next: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (&child, &p) in &assigned {
            if let (Some(bases), true) = (under.get(&child), parents.contains_key(&p)) {
                next.entry(p).or_default().extend(bases);
                if let Some(n) = tree_levels[level - 1].nodes.get_mut(&child) {
                    n.parent = Some(p);
                }
            }
        }
        let mut nodes = BTreeMap::new();
        for (p, node) in &parents {
            let bases = next.get(p).cloned().unwrap_or_default();
            let conversations: usize = bases.iter().map(|&b| stats[b].size).sum();
            let users: HashSet<&str> = bases
                .iter()
                .flat_map(|&b| base_users[b].iter().copied())
                .collect();
            let rating = audits.get(&(level, *p)).copied();
            let mut facets = FacetCounts::default();
            for &b in &bases {
                facets.add(&tree_levels[0].nodes[&b].facets);
            }
            nodes.insert(
                *p,
                TreeNode {
                    name: node.name.clone(),
                    description: node.description.clone(),
                    conversations,
                    users: users.len(),
                    rating: rating.flatten(),
                    withheld: decide(cfg, users.len(), conversations, true, rating),
                    parent: None,
                    facets,
                },
            );
        }
        tree_levels.push(Level { nodes });
        under = next;
    }
    if levels > 0 {
        let mut rows = Vec::new();
        let mut withheld_notes = Vec::new();
        for level in (1..=levels).rev() {
            let l = &tree_levels[level];
            let mut shown: Vec<(&usize, &TreeNode)> = l
                .nodes
                .iter()
                .filter(|(_, n)| n.withheld.is_none())
                .collect();
            shown.sort_by(|a, b| b.1.conversations.cmp(&a.1.conversations).then(a.0.cmp(b.0)));
            for (_, n) in &shown {
                let parent = n
                    .parent
                    .and_then(|p| tree_levels.get(level + 1)?.nodes.get(&p))
                    .filter(|p| p.withheld.is_none())
                    .map_or(Cell::Empty, |p| Cell::text(p.name.clone()));
                rows.push(vec![
                    Cell::Int(level as i64),
                    Cell::text(n.name.clone()),
                    Cell::text(n.description.clone()),
                    parent,
                    cells::scaled(
                        shammie_stats::wilson(n.conversations as u64, clustered as u64, 0.95).ok(),
                        100.0,
                        clustered,
                    ),
                    Cell::Int(n.conversations as i64),
                    Cell::Int(n.users as i64),
                    n.rating.map_or(Cell::Empty, |r| Cell::Int(r as i64)),
                ]);
            }
            let withheld = l.nodes.len() - shown.len();
            withheld_notes.push(format!(
                "level {level}: {} shown, {withheld} withheld",
                shown.len()
            ));
        }
        let mut t = Table::new(
            "hierarchy",
            "Broader categories above the base clusters, top level first",
            [
                "level",
                "category",
                "description",
                "parent",
                "share of conversations (%)",
                "conversations",
                "users",
                "audit (1–5)",
            ]
            .map(String::from)
            .to_vec(),
            rows,
            Vec::new(),
        );
        t.notes.push(format!(
            "Each level groups the named clusters of the level below (⌈n / {}⌉ groups by their names' embeddings), and the namer proposes, merges, assigns and renames parents. The privacy rule applies at every level ({}). A category's conversations and users are those of the base clusters beneath it.",
            cfg.branching,
            withheld_notes.join("; ")
        ));
        t.decimals = Some(1);
        tables.push(t);
    }
    // The explorer's tree: shown clusters only, withheld ones counted under their parent.
    files.push(ReportFile {
        path: "data/tree.json".into(),
        description: "the cluster tree as the explorer reads it: shown clusters with sizes, withheld ones counted".into(),
        content: serde_json::to_vec_pretty(&tree_json(&tree_levels, clustered)).expect("plain values"),
    });

    // The map: sampled conversations of shown base clusters, and each shown cluster at
    // the mean of its points.
    let map = stages::map_points(run)?;
    let mut centres: BTreeMap<usize, (f64, f64, usize)> = BTreeMap::new();
    let mut map_rows = Vec::new();
    for (&item, xy) in map.items.iter().zip(&map.xy) {
        let c = clusters.assignment[item];
        if decisions[c].is_none() {
            let e = centres.entry(c).or_default();
            e.0 += xy[0];
            e.1 += xy[1];
            e.2 += 1;
            map_rows
                .push(serde_json::json!({ "x": xy[0], "y": xy[1], "cluster": format!("L0-{c}") }));
        }
    }
    let map_clusters: Vec<serde_json::Value> = centres
        .iter()
        .map(|(&c, &(x, y, k))| {
            serde_json::json!({
                "id": format!("L0-{c}"),
                "name": stats[c].name,
                "x": x / k as f64,
                "y": y / k as f64,
                "conversations": stats[c].size,
                "top": top_ancestor(&tree_levels, c),
            })
        })
        .collect();
    if !map_rows.is_empty() {
        let points = map_rows.iter().map(|p| {
            shammie_plot::ScatterPoint::new(
                p["x"].as_f64().unwrap_or(0.0),
                p["y"].as_f64().unwrap_or(0.0),
            )
        });
        let labels = map_clusters.iter().map(|c| {
            shammie_plot::ScatterPoint::new(
                c["x"].as_f64().unwrap_or(0.0),
                c["y"].as_f64().unwrap_or(0.0),
            )
            .label(c["name"].as_str().unwrap_or(""))
        });
        let plot =
            shammie_plot::ScatterPlot::new("Conversations by their summaries' embeddings (UMAP)")
                .x_label("UMAP 1")
                .y_label("UMAP 2")
                .size(640.0, 480.0)
                .series("conversations", points)
                .series("clusters", labels);
        files.push(ReportFile {
            path: "report/map.svg".into(),
            description:
                "the map: sampled conversations of shown clusters in 2-D, clusters labelled".into(),
            content: Figure::single(plot)
                .title("Clio: the map of conversations")
                .subtitle(info.caption(&format!(
                    "{} of {clustered} conversations drawn",
                    map_rows.len()
                )))
                .to_svg()
                .into_bytes(),
        });
    }
    files.push(ReportFile {
        path: "data/map.json".into(),
        description: "the map as the explorer reads it: 2-D points of shown clusters' conversations and the clusters' centres".into(),
        content: serde_json::to_vec(&serde_json::json!({
            "points": map_rows,
            "clusters": map_clusters,
            "sampled": map.items.len(),
        }))
        .expect("plain values"),
    });

    // Every conversation's cluster, to join with a researcher's own labels.
    let mut cluster_of: HashMap<&str, usize> = HashMap::new();
    for (item, &cl) in items.iter().zip(&clusters.assignment) {
        cluster_of.insert(item.id.as_str(), cl);
    }
    let mut ids: Vec<&String> = facets.keys().collect();
    ids.sort();
    let mut jsonl = String::new();
    let mut csv = String::from("id,cluster,cluster_id");
    for l in 1..=levels {
        csv.push_str(&format!(",level{l}"));
    }
    csv.push('\n');
    let ancestors = |c: usize| -> Vec<String> {
        let mut out = Vec::new();
        let mut at = tree_levels[0].nodes.get(&c).and_then(|n| n.parent);
        for l in tree_levels.iter().skip(1) {
            match at.and_then(|p| l.nodes.get(&p)) {
                Some(n) => {
                    out.push(if n.withheld.is_none() {
                        n.name.clone()
                    } else {
                        "suppressed".into()
                    });
                    at = n.parent;
                }
                None => {
                    out.push("unassigned".into());
                    at = None;
                }
            }
        }
        out
    };
    for id in ids {
        let a = match cluster_of.get(id.as_str()) {
            Some(&c) if decisions[c].is_none() => Assignment {
                id: id.clone(),
                cluster: stats[c].name.clone(),
                cluster_id: Some(c),
                ancestors: ancestors(c),
            },
            Some(&c) => Assignment {
                id: id.clone(),
                cluster: "suppressed".into(),
                cluster_id: None,
                ancestors: ancestors(c),
            },
            None => Assignment {
                id: id.clone(),
                cluster: "unclustered".into(),
                cluster_id: None,
                ancestors: vec!["unclustered".into(); levels],
            },
        };
        jsonl.push_str(&serde_json::to_string(&a).expect("plain values"));
        jsonl.push('\n');
        csv.push_str(&format!(
            "{},{},{}",
            csv_field(&a.id),
            csv_field(&a.cluster),
            a.cluster_id.map(|c| c.to_string()).unwrap_or_default()
        ));
        for n in &a.ancestors {
            csv.push(',');
            csv.push_str(&csv_field(n));
        }
        csv.push('\n');
    }
    files.push(ReportFile {
        path: "data/assignments.jsonl".into(),
        description:
            "every conversation's base cluster (name and number), `suppressed` or `unclustered`"
                .into(),
        content: jsonl.into_bytes(),
    });
    files.push(ReportFile {
        path: "data/assignments.csv".into(),
        description: "the same assignments as CSV".into(),
        content: csv.into_bytes(),
    });

    if !points.is_empty() {
        points.truncate(30);
        let plot = IntervalPlot::new("Share of conversations per cluster")
            .x_label("% of clustered conversations (95% Wilson CI)")
            .series("share", points);
        files.push(ReportFile {
            path: "report/clusters.svg".into(),
            description: "the shown clusters' shares of conversations".into(),
            content: Figure::single(plot)
                .title("Clio: what the conversations are about")
                .subtitle(info.caption(&format!("{clustered} conversations")))
                .to_svg()
                .into_bytes(),
        });
    }
    Ok(Analysis { tables, files })
}

/// The id of base cluster `c`'s highest shown ancestor (itself when none is shown).
fn top_ancestor(levels: &[Level], c: usize) -> String {
    let mut best = format!("L0-{c}");
    let mut at = levels[0].nodes.get(&c).and_then(|n| n.parent);
    for (level, l) in levels.iter().enumerate().skip(1) {
        match at.and_then(|p| l.nodes.get(&p).map(|n| (p, n))) {
            Some((p, n)) => {
                if n.withheld.is_none() {
                    best = format!("L{level}-{p}");
                }
                at = n.parent;
            }
            None => break,
        }
    }
    best
}

/// One level of the tree: its clusters by number.
struct Level {
    nodes: BTreeMap<usize, TreeNode>,
}

struct TreeNode {
    name: String,
    description: String,
    conversations: usize,
    users: usize,
    rating: Option<u8>,
    withheld: Option<Withheld>,
    /// Its parent's number in the level above, when assigned.
    parent: Option<usize>,
    facets: FacetCounts,
}

/// A cluster's facets summed over its conversations, for the explorer's drill-down (only
/// shown clusters, which passed the privacy rule, are ever written out).
#[derive(Debug, Clone, Default, PartialEq)]
struct FacetCounts {
    /// Conversations rated 1, 2, 3, 4 and 5 for concerning content.
    concerning: [usize; 5],
    /// Conversations per language read.
    languages: BTreeMap<String, usize>,
}

impl FacetCounts {
    fn of(s: &Stat) -> Self {
        let mut concerning = [0; 5];
        for &c in &s.concerning {
            if (1.0..=5.0).contains(&c) {
                concerning[c as usize - 1] += 1;
            }
        }
        FacetCounts {
            concerning,
            languages: s.languages.clone(),
        }
    }

    fn add(&mut self, other: &FacetCounts) {
        for (a, b) in self.concerning.iter_mut().zip(other.concerning) {
            *a += b;
        }
        for (l, n) in &other.languages {
            *self.languages.entry(l.clone()).or_default() += n;
        }
    }

    /// `{"concerning": {"counts": [5], "n", "mean", "lo", "hi"}, "languages": [{"language",
    /// "conversations"}]}`, languages most common first (at most eight; the rest summed
    /// as `"other"`), the mean with its t interval (95%).
    fn json(&self) -> serde_json::Value {
        let ratings: Vec<f64> = self
            .concerning
            .iter()
            .enumerate()
            .flat_map(|(i, &n)| std::iter::repeat_n((i + 1) as f64, n))
            .collect();
        let mean = shammie_stats::mean_ci_t(&ratings, 0.95).ok();
        let mut langs: Vec<(&String, &usize)> = self.languages.iter().collect();
        langs.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let mut languages: Vec<serde_json::Value> = langs
            .iter()
            .take(8)
            .map(|(l, n)| serde_json::json!({ "language": l, "conversations": n }))
            .collect();
        let other: usize = langs.iter().skip(8).map(|(_, n)| **n).sum();
        if other > 0 {
            languages.push(serde_json::json!({ "language": "other", "conversations": other }));
        }
        serde_json::json!({
            "concerning": {
                "counts": self.concerning,
                "n": ratings.len(),
                "mean": mean.as_ref().map(|m| m.estimate),
                "lo": mean.as_ref().map(|m| m.lo),
                "hi": mean.as_ref().map(|m| m.hi),
            },
            "languages": languages,
        })
    }
}

/// The shown tree: roots are the top level's shown clusters, then lower-level shown
/// clusters whose parent is withheld or missing. Withheld clusters appear only as counts.
fn tree_json(levels: &[Level], clustered: usize) -> serde_json::Value {
    fn node(levels: &[Level], level: usize, index: usize, n: &TreeNode) -> serde_json::Value {
        let mut children = Vec::new();
        let (mut withheld, mut withheld_conv) = (0usize, 0usize);
        if level > 0 {
            for (&c, child) in &levels[level - 1].nodes {
                if child.parent == Some(index) {
                    if child.withheld.is_none() {
                        children.push(node(levels, level - 1, c, child));
                    } else {
                        withheld += 1;
                        withheld_conv += child.conversations;
                    }
                }
            }
        }
        serde_json::json!({
            "level": level,
            "id": format!("L{level}-{index}"),
            "name": n.name,
            "description": n.description,
            "conversations": n.conversations,
            "users": n.users,
            "audit": n.rating,
            "children": children,
            "withheld_children": withheld,
            "withheld_conversations": withheld_conv,
            "facets": n.facets.json(),
        })
    }
    let top = levels.len() - 1;
    let mut roots = Vec::new();
    for level in (0..=top).rev() {
        for (&i, n) in &levels[level].nodes {
            let parent_shown = n
                .parent
                .and_then(|p| levels.get(level + 1)?.nodes.get(&p))
                .is_some_and(|p| p.withheld.is_none());
            if n.withheld.is_none() && (level == top || !parent_shown) {
                roots.push(node(levels, level, i, n));
            }
        }
    }
    serde_json::json!({ "conversations": clustered, "levels": top, "roots": roots })
}

/// A CSV field, quoted when it holds a comma, quote or line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(audit: bool) -> Pipeline {
        let mut m = BTreeMap::new();
        m.insert("audit".to_string(), audit.to_string());
        shammie_engine::OptionGroup::from_options(shammie_engine::Options::new("clio/usage", m))
            .unwrap()
    }

    #[test]
    fn the_privacy_rule_in_order() {
        let c = cfg(true);
        assert_eq!(
            decide(&c, 4, 100, true, Some(Some(5))),
            Some(Withheld::FewUsers)
        );
        assert_eq!(
            decide(&c, 5, 9, true, Some(Some(5))),
            Some(Withheld::FewConversations)
        );
        assert_eq!(
            decide(&c, 5, 10, false, Some(Some(5))),
            Some(Withheld::Unnamed)
        );
        assert_eq!(decide(&c, 5, 10, true, None), Some(Withheld::NotRated));
        assert_eq!(
            decide(&c, 5, 10, true, Some(None)),
            Some(Withheld::NotRated)
        );
        assert_eq!(
            decide(&c, 5, 10, true, Some(Some(2))),
            Some(Withheld::AuditBelow)
        );
        assert_eq!(decide(&c, 5, 10, true, Some(Some(3))), None);
        assert_eq!(decide(&cfg(false), 5, 10, true, None), None);
    }

    #[test]
    fn csv_fields_are_quoted() {
        assert_eq!(csv_field("a"), "a");
        assert_eq!(csv_field("a, \"b\""), "\"a, \"\"b\"\"\"");
    }
}
