//! `clio/usage` end to end on scripted models and a lab whose embeddings are planted (the
//! lab is the boundary to model weights, faked as models are; the real embedder is
//! tested by the CLI). Planted corpus: 60 conversations on three topics, 20 each:
//! - cooking, from 20 users: shown;
//! - coding, from only 3 users: withheld (fewer than 5 users);
//! - travel, from 20 users, whose name the namer writes with a person's name in it: the
//!   auditor rates it 2, so it is withheld.
//!
//! Expected numbers are computed here from the planted rules, never read back from the
//! study.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use shammie_core::{Cell, Completion, GenerateRequest, Results};
use shammie_engine::*;
use shammie_log::RunDir;
use shammie_models::Model;
use shammie_testkit::scripted::{self, ScriptedModel};

/// Topics; the hierarchy test uses all six, the others the first three. Each belongs to a
/// family (`FAMILIES`): cooking and baking to food, coding and databases to tech, travel
/// and hiking to the outdoors.
const TOPICS: [&str; 6] = [
    "cooking",
    "coding",
    "travel",
    "baking",
    "databases",
    "hiking",
];
const FAMILIES: [&str; 3] = ["food", "tech", "outdoors"];

fn family(topic: usize) -> usize {
    topic % 3
}

/// Conversation i's topic in a corpus of `n` topics.
fn topic_of(i: usize, n: usize) -> usize {
    i % n
}

/// The planted concerning rating of conversation i on topic t.
fn concerning(t: usize, i: usize) -> u8 {
    match t {
        0 => 1 + (i % 2) as u8,
        1 => 2,
        _ => 3 + i.is_multiple_of(2) as u8,
    }
}

fn corpus(dir: &Path) -> std::path::PathBuf {
    corpus_of(dir, 3)
}

/// 60 conversations over the first `n` topics; coding comes from three users only.
fn corpus_of(dir: &Path, n: usize) -> std::path::PathBuf {
    let mut lines = String::new();
    for i in 0..60 {
        let t = topic_of(i, n);
        let user = match t {
            1 => format!("coder-{}", i % 3),
            _ => format!("user-{i}"),
        };
        let msg = format!("Please help me with {} question number {i}.", TOPICS[t]);
        let line = match i % 3 {
            0 => {
                serde_json::json!({"id": format!("c{i:02}"), "user_id": user, "messages": [{"role": "user", "content": msg}, {"role": "assistant", "content": "Sure."}]})
            }
            1 => {
                serde_json::json!({"id": format!("c{i:02}"), "user": user, "conversations": [{"from": "human", "value": msg}, {"from": "gpt", "value": "Sure."}]})
            }
            _ => {
                serde_json::json!({"id": format!("c{i:02}"), "user_id": user, "chosen": format!("\n\nHuman: {msg}\n\nAssistant: Sure.")})
            }
        };
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    let p = dir.join("conversations.jsonl");
    std::fs::write(&p, lines).unwrap();
    p
}

/// The number and topic named in a text ("… cooking question number 12 …").
fn read_conv(text: &str) -> (usize, usize) {
    let t = TOPICS
        .iter()
        .position(|t| text.contains(t))
        .expect("a topic");
    let n = text
        .split("number ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|d| d.parse().ok())
        .expect("a number");
    (t, n)
}

/// Privacy-check's planted people: conversation i's index, from its email address.
fn planted_index(text: &str) -> Option<usize> {
    let at = text.find("@example.org")?;
    let digits: String = text[..at]
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    digits.parse().ok()
}

const TASKS: [&str; 3] = ["letter", "plan", "code"];

/// The scripted model for `clio/privacy-check`: summaries by task group (i mod 3), with
/// the person's surname leaked when i is a multiple of 10; the code cluster's name leaks
/// person 0's email address and the auditor misses it; the letter cluster's name says
/// "family" and the auditor catches it.
fn pii_model(req: &GenerateRequest) -> Option<Completion> {
    let u = &req.messages[0].content;
    let people = shammie_study_clio::privacy_check::conversations(60);
    match req.prefill.as_deref() {
        Some(p) if u.contains("<conversation>") => {
            let i = planted_index(u)?;
            let task = TASKS[i % 3];
            Some(scripted::text(match p {
                "The user asks the assistant to" if i.is_multiple_of(10) => {
                    format!(" help with a {task} task for {}.", people[i].1.surname)
                }
                "The user asks the assistant to" => format!(" help with a {task} task."),
                "The task is" => " helping.".into(),
                "Language:" => " English".into(),
                _ => " 1".into(),
            }))
        }
        Some("Name:") if u.contains(" task") => {
            let group = u.split("For contrast").next().unwrap();
            let t = (0..3)
                .max_by_key(|&t| group.matches(&format!("a {} task", TASKS[t])).count())
                .unwrap();
            Some(scripted::text(match t {
                0 => " Write letters for one family\nDescription: Letters.".to_string(),
                1 => " Plan things\nDescription: Plans.".to_string(),
                _ => format!(" Fix code for {}\nDescription: Code.", people[0].1.email),
            }))
        }
        Some("Rating (1-5):") if u.contains("Name: ") => {
            let name = u.split("Name: ").nth(1).unwrap().lines().next().unwrap();
            if name.contains("Jane Roe") {
                return None;
            }
            Some(scripted::text(if name.contains("family") {
                " 2"
            } else {
                " 5"
            }))
        }
        _ => None,
    }
}

fn facet_model(req: &GenerateRequest) -> Completion {
    if let Some(c) = pii_model(req) {
        return c;
    }
    let u = &req.messages[0].content;
    match req.prefill.as_deref() {
        Some("The user asks the assistant to") => {
            let (t, i) = read_conv(u);
            scripted::text(format!(" answer {} question number {i}.", TOPICS[t]))
        }
        Some("The task is") => scripted::text(" answering a question."),
        Some("Language:") => {
            let (_, i) = read_conv(u);
            scripted::text(if i.is_multiple_of(4) {
                " Spanish"
            } else {
                " English"
            })
        }
        Some("Rating (1-5):") if u.contains("<conversation>") => {
            let (t, i) = read_conv(u);
            scripted::text(format!(" {}", concerning(t, i)))
        }
        Some("Name:") if u.contains("belong to one category") => {
            // A parent renamed from its children: their family.
            let f = family_in(u.split("\n\nWrite").next().unwrap());
            scripted::text(format!(
                " Help with {} matters\nDescription: All about {}. Nothing else.",
                FAMILIES[f], FAMILIES[f]
            ))
        }
        Some("Name:") => {
            // Name the group by the topic most of its summaries share.
            let group = u.split("For contrast").next().unwrap();
            let t = (0..TOPICS.len())
                .max_by_key(|&t| group.matches(TOPICS[t]).count())
                .unwrap();
            scripted::text(match t {
                2 => " Plan trips for Jane Roe\nDescription: Travel. Itineraries.".to_string(),
                t => format!(
                    " Get help with {} questions\nDescription: {}. Help.",
                    TOPICS[t], TOPICS[t]
                ),
            })
        }
        Some("1.") if u.contains("Propose at most") => {
            // Two candidates for the family of the group's clusters.
            let f = family_in(u.split("\n\nPropose").next().unwrap());
            scripted::text(format!(
                " Help with {}\n2. Assist with {}",
                FAMILIES[f], FAMILIES[f]
            ))
        }
        Some("1.") if u.contains("Merge candidates") => {
            // One name per family, in the order the candidates name them.
            let list = u.split("\n\nMerge").next().unwrap();
            let mut order: Vec<usize> = Vec::new();
            for line in list.lines() {
                if let Some(f) = FAMILIES.iter().position(|f| line.contains(f)) {
                    if !order.contains(&f) {
                        order.push(f);
                    }
                }
            }
            let names: Vec<String> = order
                .iter()
                .enumerate()
                .map(|(k, &f)| {
                    format!(
                        "{}Family {}",
                        if k == 0 {
                            " ".to_string()
                        } else {
                            format!("{}. ", k + 1)
                        },
                        FAMILIES[f]
                    )
                })
                .collect();
            scripted::text(names.join("\n"))
        }
        Some("Human:") => {
            // The writer: a conversation on the topic its `about` names.
            let t = TOPICS
                .iter()
                .position(|t| u.contains(&format!("about {t}")))
                .unwrap();
            let j: usize = u
                .split("This is conversation ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            scripted::text(format!(
                " Please help me with {} question number {}.\n\nAssistant: Sure.",
                TOPICS[t],
                100 * t + j
            ))
        }
        Some("Topic number:") => {
            // The judge: the topic named like the cluster, except that it puts the baking
            // cluster under cooking (same category).
            let name = u.split("Name: ").nth(1).unwrap().lines().next().unwrap();
            let mut word = TOPICS.iter().find(|t| name.contains(*t)).copied().unwrap();
            if word == "baking" {
                word = "cooking";
            }
            let list = u.split("Topics:\n").nth(1).unwrap();
            let k = list
                .lines()
                .position(|l| l.to_lowercase().contains(word))
                .unwrap();
            scripted::text(format!(" {}", k + 1))
        }
        Some("Category number:") => {
            let child = u.split("\n\nCategories").next().unwrap();
            let cats = u
                .split("Categories:\n")
                .nth(1)
                .unwrap()
                .split("\n\n")
                .next()
                .unwrap();
            let f = family_in(child);
            let k = cats.lines().position(|l| l.contains(FAMILIES[f])).unwrap();
            scripted::text(format!(" {}", k + 1))
        }
        Some("Rating (1-5):") => scripted::text(if u.contains("Jane Roe") { " 2" } else { " 5" }),
        other => panic!("unexpected request (prefill {other:?}): {u}"),
    }
}

/// The family most named in a text (by its topics' words).
fn family_in(text: &str) -> usize {
    let t = text.to_lowercase();
    (0..3)
        .max_by_key(|&f| {
            (0..TOPICS.len())
                .filter(|&k| family(k) == f)
                .map(|k| t.matches(TOPICS[k]).count())
                .sum::<usize>()
        })
        .unwrap()
}

/// Embeddings that put each topic in its own direction, with a little per-text noise;
/// cluster names (no question number) in their family's direction.
#[derive(Default)]
struct PlantedLab {
    embedded: Mutex<Vec<String>>,
}

impl Lab for PlantedLab {
    fn open(&self, spec: &str) -> Result<Arc<dyn Model>, String> {
        Err(format!("no model {spec}"))
    }
    fn fine_tune(&self, _: &FineTuneJob, _: &Path, _: &mut StageOutput) -> Result<Trained, String> {
        Err("no training here".into())
    }
    fn activations(&self, _: &str, _: &[GenerateRequest]) -> Result<Activations, String> {
        Err("no activations here".into())
    }
    fn embed(&self, model: &str, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        assert_eq!(model, "all-minilm-l6-v2");
        self.embedded.lock().unwrap().extend(texts.iter().cloned());
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0f32; 7];
                if let Some(k) = TASKS
                    .iter()
                    .position(|k| t.contains(&format!("a {k} task")))
                {
                    v[k] = 10.0;
                    v[6] = (t.len() % 5) as f32 * 0.1;
                } else if t.contains("question number") {
                    let (topic, i) = read_conv(t);
                    v[topic] = 10.0;
                    v[6] = (i % 7) as f32 * 0.1;
                } else {
                    v[family_in(t)] = 10.0;
                    v[6] = (t.len() % 5) as f32 * 0.1;
                }
                v
            })
            .collect())
    }
}

fn options(data: &Path, extra: &[(&str, &str)]) -> Options {
    let mut m: BTreeMap<String, String> = [("data", data.to_str().unwrap()), ("k", "3")]
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    m.entry("restarts".into()).or_insert("4".into());
    Options::new("clio/usage", m)
}

async fn run_study(
    data: &Path,
    extra: &[(&str, &str)],
    lab: Arc<PlantedLab>,
) -> (RunDir, Results, Arc<ScriptedModel>, tempfile::TempDir) {
    let task = shammie_study_clio::build(options(data, extra)).unwrap();
    let model = Arc::new(ScriptedModel::new("clio", facet_model));
    let (dir, results, d) = run_task(task, model.clone(), lab).await;
    (dir, results, model, d)
}

/// Runs `task` with `model` in every role the task has and `lab` as its lab.
async fn run_task(
    task: Arc<dyn Task>,
    model: Arc<dyn Model>,
    lab: Arc<PlantedLab>,
) -> (RunDir, Results, tempfile::TempDir) {
    shammie_kit::testing::run_all(task, model, Some(lab)).await
}

fn table<'a>(r: &'a Results, name: &str) -> &'a shammie_core::Table {
    r.tables
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no table {name}"))
}

fn text(c: &Cell) -> String {
    match c {
        Cell::Text(t) => t.clone(),
        other => panic!("not text: {other:?}"),
    }
}

fn int(c: &Cell) -> i64 {
    match c {
        Cell::Int(i) => *i,
        other => panic!("not an int: {other:?}"),
    }
}

fn estimate(c: &Cell) -> (f64, f64, f64) {
    match c {
        Cell::Estimate {
            estimate, lo, hi, ..
        } => (*estimate, *lo, *hi),
        other => panic!("not an estimate: {other:?}"),
    }
}

/// Wilson's 95% interval, by its formula.
fn wilson(k: f64, n: f64) -> (f64, f64, f64) {
    let z = 1.959963984540054;
    let p = k / n;
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    (p, centre - half, centre + half)
}

fn close(a: (f64, f64, f64), b: (f64, f64, f64)) {
    for (x, y) in [(a.0, b.0), (a.1, b.1), (a.2, b.2)] {
        assert!((x - y).abs() < 1e-6, "{a:?} vs {b:?}");
    }
}

#[tokio::test]
async fn clusters_privacy_and_assignments_follow_the_planted_corpus() {
    let d = tempfile::tempdir().unwrap();
    let data = corpus(d.path());
    let lab = Arc::new(PlantedLab::default());
    let (dir, results, model, _d) = run_study(&data, &[], lab.clone()).await;

    // Four facets per conversation, one name per cluster, one audit per cluster.
    assert_eq!(model.calls(), 60 * 4 + 3 + 3);
    // The summaries were embedded, never the raw conversations.
    let embedded = lab.embedded.lock().unwrap().clone();
    assert_eq!(embedded.len(), 60);
    assert!(
        embedded
            .iter()
            .all(|t| t.starts_with("The user asks the assistant to answer")),
        "{embedded:?}"
    );

    // Only the cooking cluster is shown.
    let t = table(&results, "clusters");
    assert_eq!(t.rows.len(), 1, "{:?}", table(&results, "privacy").rows);
    let row = &t.rows[0];
    assert_eq!(text(&row[0]), "Get help with cooking questions");
    assert_eq!(text(&row[1]), "cooking. Help.");
    let (p, lo, hi) = wilson(20.0, 60.0);
    close(estimate(&row[2]), (100.0 * p, 100.0 * lo, 100.0 * hi));
    assert_eq!(int(&row[3]), 20);
    assert_eq!(int(&row[4]), 20);
    // Concerning: mean and t interval of the planted ratings of the cooking conversations.
    let xs: Vec<f64> = (0..60)
        .filter(|&i| topic_of(i, 3) == 0)
        .map(|i| concerning(0, i) as f64)
        .collect();
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let half = 2.093024054408263 * sd / n.sqrt(); // t(0.975, 19)
    close(estimate(&row[5]), (mean, mean - half, mean + half));
    // Languages: 1 in 4 cooking conversations in Spanish.
    let spanish = (0..60)
        .filter(|&i| topic_of(i, 3) == 0 && i.is_multiple_of(4))
        .count();
    let total = 20;
    assert_eq!(
        text(&row[6]),
        format!(
            "English {:.0}%, Spanish {:.0}%",
            100.0 * (total - spanish) as f64 / total as f64,
            100.0 * spanish as f64 / total as f64
        )
    );
    assert_eq!(int(&row[7]), 5);

    // What was withheld, and why.
    let p = table(&results, "privacy");
    let rows: BTreeMap<String, (Cell, Cell)> = p
        .rows
        .iter()
        .map(|r| (text(&r[0]), (r[1].clone(), r[2].clone())))
        .collect();
    assert_eq!(rows["shown"], (Cell::Int(1), Cell::Int(20)));
    assert_eq!(
        rows["withheld: fewer than 5 distinct users"],
        (Cell::Int(1), Cell::Int(20))
    );
    assert_eq!(
        rows["withheld: auditor rating below 3"],
        (Cell::Int(1), Cell::Int(20))
    );
    assert_eq!(
        rows["withheld: fewer than 10 conversations"],
        (Cell::Int(0), Cell::Int(0))
    );
    // No withheld cluster's name appears anywhere in the results.
    let all = serde_json::to_string(&results).unwrap();
    assert!(
        !all.contains("Jane Roe") && !all.contains("coding questions"),
        "{all}"
    );

    // Facets: the share of each planted rating.
    let f = table(&results, "facets");
    for level in 1..=5u8 {
        let k = (0..60)
            .filter(|&i| concerning(topic_of(i, 3), i) == level)
            .count() as f64;
        let row = f
            .rows
            .iter()
            .find(|r| text(&r[0]) == format!("concerning = {level}"))
            .unwrap();
        let (p, lo, hi) = wilson(k, 60.0);
        close(estimate(&row[1]), (100.0 * p, 100.0 * lo, 100.0 * hi));
    }

    // Assignments: cooking conversations by name, the others suppressed.
    let a = std::fs::read_to_string(dir.path().join("data/assignments.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = a
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 60);
    for l in &lines {
        let i: usize = l["id"].as_str().unwrap()[1..].parse().unwrap();
        let want = if topic_of(i, 3) == 0 {
            "Get help with cooking questions"
        } else {
            "suppressed"
        };
        assert_eq!(l["cluster"], want, "{l}");
        assert_eq!(l["cluster_id"].is_null(), topic_of(i, 3) != 0);
    }
    let csv = std::fs::read_to_string(dir.path().join("data/assignments.csv")).unwrap();
    assert!(
        csv.starts_with("id,cluster,cluster_id\nc00,Get help with cooking questions,"),
        "{csv}"
    );
    assert!(csv.contains("\nc01,suppressed,\n"), "{csv}");
    assert!(dir.path().join("report/clusters.svg").exists());

    // The conversations' stage is private: the viewer never shows its records.
    let private = std::fs::read_to_string(dir.path().join("stages/facets/private.txt")).unwrap();
    assert!(private.contains("conversations"), "{private}");
    assert!(!dir.path().join("stages/names/private.txt").exists());

    // The map draws only the shown cluster's conversations (all 60 are sampled).
    let map: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("data/map.json")).unwrap()).unwrap();
    assert_eq!(map["sampled"], 60);
    let points = map["points"].as_array().unwrap();
    assert_eq!(points.len(), 20);
    let clusters = map["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 1);
    let id = clusters[0]["id"].as_str().unwrap();
    assert!(points.iter().all(|p| p["cluster"] == id));
    assert_eq!(clusters[0]["name"], "Get help with cooking questions");
    let mean_x = points.iter().map(|p| p["x"].as_f64().unwrap()).sum::<f64>() / 20.0;
    assert!((clusters[0]["x"].as_f64().unwrap() - mean_x).abs() < 1e-9);
    assert!(dir.path().join("report/map.svg").exists());
}

#[tokio::test]
async fn first_user_messages_are_embedded_without_summary_calls_and_labelled_not_private() {
    let d = tempfile::tempdir().unwrap();
    let data = corpus(d.path());
    let lab = Arc::new(PlantedLab::default());
    let (_dir, results, model, _d) = run_study(
        &data,
        &[
            ("summary", "first-user-message"),
            ("facets", "summary,concerning"),
            ("audit", "false"),
        ],
        lab.clone(),
    )
    .await;
    // One concerning call per conversation and one name per cluster: no summary, no audit.
    assert_eq!(model.calls(), 60 + 3);
    let embedded = lab.embedded.lock().unwrap().clone();
    assert!(
        embedded
            .iter()
            .all(|t| t.starts_with("Please help me with")),
        "{embedded:?}"
    );
    let t = table(&results, "clusters");
    assert!(
        t.notes.iter().any(|n| n.contains("NOT privacy-preserving")),
        "{:?}",
        t.notes
    );
    // Without the auditor, the travel cluster (20 users) is shown; coding still is not.
    let names: Vec<String> = t.rows.iter().map(|r| text(&r[0])).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"Plan trips for Jane Roe".to_string()));
}

#[test]
fn bad_input_is_refused_before_anything_is_sent() {
    let d = tempfile::tempdir().unwrap();
    let bad = d.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"chosen\": \"Human: hi\"}\n{\"chosen\": \"Assistant: hi\"}\n",
    )
    .unwrap();
    let e = shammie_study_clio::build(options(&bad, &[]))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("bad.jsonl:2") && e.contains("Human:"), "{e}");
    let good = corpus(d.path());
    let e = shammie_study_clio::build(options(&good, &[("k", "61")]))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("k = 61 clusters for 60 conversations"), "{e}");
    let e = shammie_study_clio::build(options(&good, &[("facets", "summary,mood")]))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("facet `mood`"), "{e}");
}

#[tokio::test]
async fn the_hierarchy_groups_families_and_applies_the_privacy_rule_at_every_level() {
    // Six topics in three families; one level above the base clusters, three parents.
    let d = tempfile::tempdir().unwrap();
    let data = corpus_of(d.path(), 6);
    let lab = Arc::new(PlantedLab::default());
    let (dir, results, model, _d) = run_study(
        &data,
        &[("k", "6"), ("branching", "2"), ("max_levels", "1")],
        lab.clone(),
    )
    .await;
    // Facets 60 × 4, 6 names, 3 proposals, 1 merge, 6 assignments, 3 renames, and audits
    // of the 6 base clusters and the 3 parents.
    assert_eq!(model.calls(), 240 + 6 + 3 + 1 + 6 + 3 + 9);

    // Every parent is shown: its conversations and users are its two children's, even
    // where a child is withheld (coding: 3 users; travel: the auditor's 2).
    let h = table(&results, "hierarchy");
    let rows: BTreeMap<String, &Vec<Cell>> = h.rows.iter().map(|r| (text(&r[1]), r)).collect();
    assert_eq!(rows.len(), 3, "{:?}", h.rows);
    let (p, lo, hi) = wilson(20.0, 60.0);
    // Coding's users, by the corpus' rule (`coder-{i % 3}`), and databases' ten.
    let coders: std::collections::BTreeSet<usize> = (0..60)
        .filter(|&i| topic_of(i, 6) == 1)
        .map(|i| i % 3)
        .collect();
    let tech_users = coders.len() as i64 + 10;
    for (family, users) in [("food", 20), ("tech", tech_users), ("outdoors", 20)] {
        let r = rows[&format!("Help with {family} matters")];
        assert_eq!(int(&r[0]), 1);
        close(estimate(&r[4]), (100.0 * p, 100.0 * lo, 100.0 * hi));
        assert_eq!(int(&r[5]), 20);
        assert_eq!(int(&r[6]), users, "{family}");
        assert_eq!(int(&r[7]), 5);
    }
    // Base clusters: coding and travel withheld.
    let names: Vec<String> = table(&results, "clusters")
        .rows
        .iter()
        .map(|r| text(&r[0]))
        .collect();
    assert_eq!(names.len(), 4, "{names:?}");

    // Each conversation's parent is its topic's family.
    let a = std::fs::read_to_string(dir.path().join("data/assignments.jsonl")).unwrap();
    for l in a.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let i: usize = v["id"].as_str().unwrap()[1..].parse().unwrap();
        let t = topic_of(i, 6);
        assert_eq!(
            v["ancestors"],
            serde_json::json!([format!("Help with {} matters", FAMILIES[family(t)])]),
            "{v}"
        );
        assert_eq!(v["cluster"] == "suppressed", t == 1 || t == 2, "{v}");
    }
    let csv = std::fs::read_to_string(dir.path().join("data/assignments.csv")).unwrap();
    assert!(csv.starts_with("id,cluster,cluster_id,level1\n"), "{csv}");

    // The tree: three roots; withheld children only counted.
    let tree: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("data/tree.json")).unwrap()).unwrap();
    let roots = tree["roots"].as_array().unwrap();
    assert_eq!(roots.len(), 3);
    for r in roots {
        let shown = r["children"].as_array().unwrap().len();
        let withheld = r["withheld_children"].as_u64().unwrap();
        assert_eq!(shown as u64 + withheld, 2, "{r}");
        let name = r["name"].as_str().unwrap();
        let want_withheld = u64::from(name.contains("tech") || name.contains("outdoors"));
        assert_eq!(withheld, want_withheld, "{r}");
        assert_eq!(r["withheld_conversations"], 10 * want_withheld);

        // The drill-down: the family's planted ratings and languages, over all its
        // conversations (a withheld child's included, as in its size).
        let f = FAMILIES.iter().position(|f| name.contains(f)).unwrap();
        let members: Vec<usize> = (0..60).filter(|&i| family(topic_of(i, 6)) == f).collect();
        let mut counts = [0u64; 5];
        for &i in &members {
            counts[concerning(topic_of(i, 6), i) as usize - 1] += 1;
        }
        let facets = &r["facets"];
        assert_eq!(
            facets["concerning"]["counts"],
            serde_json::json!(counts),
            "{r}"
        );
        assert_eq!(facets["concerning"]["n"], members.len());
        let xs: Vec<f64> = members
            .iter()
            .map(|&i| concerning(topic_of(i, 6), i) as f64)
            .collect();
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let half = 2.093024054408263 * sd / n.sqrt(); // t(0.975, 19)
        let got = |k: &str| facets["concerning"][k].as_f64().unwrap();
        assert!((got("mean") - mean).abs() < 1e-9, "{r}");
        assert!((got("lo") - (mean - half)).abs() < 1e-6, "{r}");
        assert!((got("hi") - (mean + half)).abs() < 1e-6, "{r}");
        let spanish = members.iter().filter(|&&i| i.is_multiple_of(4)).count();
        assert_eq!(
            facets["languages"],
            serde_json::json!([
                {"language": "English", "conversations": members.len() - spanish},
                {"language": "Spanish", "conversations": spanish},
            ]),
            "{r}"
        );
        // Each shown child's drill-down is its own topic's.
        for c in r["children"].as_array().unwrap() {
            let t = TOPICS
                .iter()
                .position(|t| c["name"].as_str().unwrap().contains(t))
                .unwrap();
            let mine = members.iter().filter(|&&i| topic_of(i, 6) == t).count();
            assert_eq!(c["facets"]["concerning"]["n"], mine, "{c}");
        }
    }
    let all = std::fs::read_to_string(dir.path().join("data/tree.json")).unwrap();
    assert!(
        !all.contains("Jane Roe") && !all.contains("coding questions"),
        "{all}"
    );
}

#[tokio::test]
async fn reconstruction_scores_the_planted_matches() {
    // Three topics in two categories; the judge files the baking cluster under cooking.
    let d = tempfile::tempdir().unwrap();
    let topics = d.path().join("topics.toml");
    std::fs::write(
        &topics,
        "[[category]]\nname = \"Food\"\n[[category.topic]]\nname = \"Cooking help\"\nabout = \"the user asks about cooking\"\n[[category.topic]]\nname = \"Baking help\"\nabout = \"the user asks about baking\"\n[[category]]\nname = \"Tech\"\n[[category.topic]]\nname = \"Coding help\"\nabout = \"the user asks about coding\"\n",
    )
    .unwrap();
    let opts: BTreeMap<String, String> = [
        ("topics", topics.to_str().unwrap()),
        ("per_topic", "10"),
        ("k", "3"),
        ("restarts", "4"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let task = shammie_study_clio::build_reconstruction(Options::new("clio/reconstruction", opts))
        .unwrap();
    let model = Arc::new(ScriptedModel::new("clio", facet_model));
    let (_dir, results, _d) = run_task(task, model.clone(), Arc::new(PlantedLab::default())).await;
    // 30 written, 30 × 4 facets, 3 names, 3 audits, 3 matches.
    assert_eq!(model.calls(), 30 + 120 + 3 + 3 + 3);
    let t = table(&results, "reconstruction");
    let row = |label: &str| {
        &t.rows
            .iter()
            .find(|r| text(&r[0]).starts_with(label))
            .unwrap()[1]
    };
    // Accuracy: cooking and coding right, baking wrong: 20 of 30.
    let (p, lo, hi) = wilson(20.0, 30.0);
    close(estimate(row("accuracy")), (p, lo, hi));
    // Category accuracy: baking filed under cooking is still food: 30 of 30.
    let (p, lo, hi) = wilson(30.0, 30.0);
    close(estimate(row("category accuracy")), (p, lo, hi));
    // The clusters are the topics: purity and ARI 1 in every resample.
    close(estimate(row("purity")), (1.0, 1.0, 1.0));
    close(estimate(row("adjusted Rand index")), (1.0, 1.0, 1.0));
    // The usage tables come after it.
    assert_eq!(results.tables[0].name, "reconstruction");
    assert!(results.tables.iter().any(|t| t.name == "clusters"));
}

#[tokio::test]
async fn privacy_check_counts_planted_details_that_leak() {
    let opts: BTreeMap<String, String> = [("conversations", "60"), ("k", "3"), ("restarts", "4")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let task =
        shammie_study_clio::build_privacy_check(Options::new("clio/privacy-check", opts)).unwrap();
    let model = Arc::new(ScriptedModel::new("clio", facet_model));
    let (_dir, results, _d) = run_task(task, model.clone(), Arc::new(PlantedLab::default())).await;
    let t = table(&results, "privacy-check");
    let row = |kind: &str| t.rows.iter().find(|r| text(&r[0]) == kind).unwrap();
    // Facets: the surname leaks in every tenth summary (6 of 60); nothing else does.
    let (p, lo, hi) = wilson(6.0, 60.0);
    close(estimate(&row("name")[1]), (p, lo, hi));
    close(estimate(&row("any detail")[1]), (p, lo, hi));
    let zero = wilson(0.0, 60.0);
    close(estimate(&row("email")[1]), zero);
    // Shown: the code cluster's name holds person 0's email address, "marta" and
    // "kowalczyk" (the letter cluster's "family" was caught by the auditor). By the
    // corpus' rules: first names FIRST[i mod 24], surnames LAST[(i / 24 + 7i) mod 24].
    let named: usize = (0..60)
        .filter(|&i| i % 24 == 0 || (i / 24 + 7 * i) % 24 == 0)
        .count();
    close(estimate(&row("name")[2]), wilson(named as f64, 60.0));
    close(estimate(&row("email")[2]), wilson(1.0, 60.0));
    close(estimate(&row("phone")[2]), zero);
    close(estimate(&row("any detail")[2]), wilson(named as f64, 60.0));
    // The withheld name is nowhere in the results.
    assert!(!serde_json::to_string(&results)
        .unwrap()
        .contains("one family"));
}

#[tokio::test]
async fn unreadable_assignments_leave_the_levels_empty_and_the_run_completes() {
    // The namer never gives a parent number: level 1 gets no children, level 2 has
    // nothing to group; the run still finishes with the base clusters.
    let d = tempfile::tempdir().unwrap();
    let data = corpus_of(d.path(), 6);
    let task = shammie_study_clio::build(options(
        &data,
        &[("k", "6"), ("branching", "2"), ("max_levels", "2")],
    ))
    .unwrap();
    let model: Arc<dyn Model> = Arc::new(ScriptedModel::new("clio", |req: &GenerateRequest| {
        if req.prefill.as_deref() == Some("Category number:") {
            scripted::text(" I cannot say")
        } else {
            facet_model(req)
        }
    }));
    let (dir, results, _d) = run_task(task, model, Arc::new(PlantedLab::default())).await;
    assert!(table(&results, "hierarchy").rows.is_empty());
    assert_eq!(table(&results, "clusters").rows.len(), 4);
    let tree: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("data/tree.json")).unwrap()).unwrap();
    assert_eq!(tree["roots"].as_array().unwrap().len(), 4);
    let a = std::fs::read_to_string(dir.path().join("data/assignments.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(a.lines().next().unwrap()).unwrap();
    assert_eq!(
        first["ancestors"],
        serde_json::json!(["unassigned", "unassigned"])
    );
}
