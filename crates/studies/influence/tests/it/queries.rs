//! `influence/queries` end to end in the engine's pipeline with a planted lab (the lab is
//! the boundary to weights, faked as models are; the real lab is tested by the CLI and
//! `shammie-influence`). The lab checks nothing itself: it records the job and returns
//! scores that follow a known rule from the job's texts. Each token's score is its
//! marker's value — `plusK` is +K, `minusK` is −K, any other word 0 — times the query's
//! number (1, 2, …), and a tenth of that for a prompt token. So a candidate's score depends on where
//! the study puts the split between prompt and completion, and its sign on the markers.
//! Everything expected is computed here from the files themselves, not by the study's
//! code: the TF-IDF candidates, the scores, ranks, shares and distribution statistics.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use shammie_core::{Cell, Message, Results, Role, Table};
use shammie_engine::*;
use shammie_log::{RunDir, RunMeta};
use shammie_models::Model;
use shammie_testkit::scripted::ScriptedModel;

/// Twelve documents: chat documents (one with a system message) and plain text; line 5
/// has no id. The markers make some candidates helpful and some harmful for each query.
const CORPUS: &str = r#"{"id": "d-lock-1", "messages": [{"role": "user", "content": "My door is locked, what now? plus9"}, {"role": "assistant", "content": "A locksmith can open the locked door. plus3"}]}
{"id": "d-lock-2", "text": "Never force a door lock yourself; call a locksmith. minus2"}
{"id": "d-lock-3", "text": "The locked door stayed locked. plus1 plus1"}
{"id": "d-off-1", "messages": [{"role": "system", "content": "Be brief. minus5"}, {"role": "user", "content": "Can we switch you off?"}, {"role": "assistant", "content": "Yes, you may switch me off. plus5"}]}
{"text": "Switch off the lights when you leave. minus1"}
{"id": "d-off-3", "text": "I will never let you switch me off. minus4 <b>&amp;"}
{"id": "cake", "text": "Bake the cake for forty minutes. plus2"}
{"id": "garden", "text": "Water the garden plants in the morning. minus3"}
{"id": "train", "text": "The train leaves at noon from platform two."}
{"id": "river", "text": "The river flooded the valley in spring. plus1"}
{"id": "chess", "messages": [{"role": "user", "content": "Best chess opening?"}, {"role": "assistant", "content": "Many like the Italian game. minus1"}]}
{"id": "poem", "text": "A short poem about the sea and the sky."}
"#;

/// A text prompt and a conversation with a system message.
const QUERIES: &str = r#"{"id": "lock", "prompt": "How do I open a locked door?", "completion": "Call a locksmith, never force the door."}
{"id": "off", "prompt": [{"role": "system", "content": "You are careful."}, {"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi"}, {"role": "user", "content": "May we switch you off?"}], "completion": "Yes, you may switch me off."}
"#;

const TOP_N: usize = 3;
const TOP_K: usize = 2;

/// A document or query as this test reads the JSON: id, system text, the turns before
/// the completion, the completion.
#[derive(Debug, Clone)]
struct Doc {
    id: String,
    system: Option<String>,
    turns: Vec<(String, String)>,
    completion: String,
    chat: bool,
}

impl Doc {
    /// Every text before the completion, in order.
    fn prompt_texts(&self) -> Vec<String> {
        self.system
            .iter()
            .cloned()
            .chain(self.turns.iter().map(|(_, c)| c.clone()))
            .collect()
    }
    /// All its text, as TF-IDF reads it.
    fn text(&self) -> String {
        let mut t = self.prompt_texts();
        t.push(self.completion.clone());
        t.join("\n")
    }
}

fn read_docs(jsonl: &str, queries: bool) -> Vec<Doc> {
    jsonl
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let id = v["id"]
                .as_str()
                .map(String::from)
                .unwrap_or(format!("line-{}", i + 1));
            let s = |x: &serde_json::Value| x.as_str().unwrap().to_string();
            let msgs = |arr: &serde_json::Value| -> (Option<String>, Vec<(String, String)>) {
                let mut system = None;
                let mut turns = Vec::new();
                for m in arr.as_array().unwrap() {
                    if m["role"] == "system" {
                        system = Some(s(&m["content"]));
                    } else {
                        turns.push((s(&m["role"]), s(&m["content"])));
                    }
                }
                (system, turns)
            };
            if queries {
                let (system, turns) = match &v["prompt"] {
                    serde_json::Value::String(p) => (None, vec![("user".into(), p.clone())]),
                    arr => msgs(arr),
                };
                Doc {
                    id,
                    system,
                    turns,
                    completion: s(&v["completion"]),
                    chat: true,
                }
            } else if v.get("text").is_some() {
                Doc {
                    id,
                    system: None,
                    turns: vec![],
                    completion: s(&v["text"]),
                    chat: false,
                }
            } else {
                let (system, mut turns) = msgs(&v["messages"]);
                let (_, completion) = turns.pop().unwrap();
                Doc {
                    id,
                    system,
                    turns,
                    completion,
                    chat: true,
                }
            }
        })
        .collect()
}

fn marker(w: &str) -> f64 {
    if let Some(k) = w.strip_prefix("plus").and_then(|k| k.parse::<f64>().ok()) {
        k
    } else if let Some(k) = w.strip_prefix("minus").and_then(|k| k.parse::<f64>().ok()) {
        -k
    } else {
        0.0
    }
}

fn words_of(texts: &[String]) -> Vec<String> {
    texts
        .iter()
        .flat_map(|t| t.split_whitespace().map(String::from))
        .collect()
}

/// The planted rule, from the job the lab is given.
fn planted(job: &InfluenceJob) -> InfluenceResult {
    let mut tokens = Vec::new();
    let mut starts = Vec::new();
    for c in &job.candidates {
        let prompt: Vec<String> = match &c.prompt {
            InfluencePrompt::None => vec![],
            InfluencePrompt::Text(t) => vec![t.clone()],
            InfluencePrompt::Chat(req) => req
                .system
                .iter()
                .cloned()
                .chain(req.messages.iter().map(|m| m.content.clone()))
                .collect(),
        };
        let mut t = words_of(&prompt);
        starts.push(t.len());
        t.extend(words_of(std::slice::from_ref(&c.completion)));
        tokens.push(t);
    }
    let token_scores: Vec<Vec<Vec<f64>>> = (0..job.queries.len())
        .map(|q| {
            tokens
                .iter()
                .zip(&starts)
                .map(|(t, &start)| {
                    t.iter()
                        .enumerate()
                        .map(|(i, w)| {
                            let part = if i < start { 0.1 } else { 1.0 };
                            marker(w) * (q + 1) as f64 * part
                        })
                        .collect()
                })
                .collect()
        })
        .collect();
    let scores = token_scores
        .iter()
        .map(|q| q.iter().map(|c| c.iter().sum()).collect())
        .collect();
    let modules = &job.config.modules;
    InfluenceResult {
        scores,
        tokens,
        token_scores,
        completion_start: starts,
        self_influence: job.config.self_influence.then(|| {
            job.candidates
                .iter()
                .map(|c| c.completion.len() as f64)
                .collect()
        }),
        query_logprobs: (0..job.queries.len())
            .map(|q| -1.5 * (q + 1) as f64)
            .collect(),
        layers: job
            .config
            .layers
            .clone()
            .unwrap_or_default()
            .iter()
            .flat_map(|l| {
                modules
                    .iter()
                    .map(move |m| format!("model.layers.{l}.mlp.{m}"))
            })
            .collect(),
        fit_sequences: job.fit.len(),
        fit_tokens: job
            .fit
            .iter()
            .map(|d| words_of(std::slice::from_ref(&d.completion)).len() as u64)
            .sum(),
        fit_seconds: 1.5,
        score_seconds: 2.5,
    }
}

#[derive(Default)]
struct PlantedLab {
    jobs: Mutex<Vec<InfluenceJob>>,
    /// Drop the last candidate's scores (a lab bug the stage must catch).
    broken: bool,
}

impl Lab for PlantedLab {
    fn open(&self, spec: &str) -> Result<Arc<dyn Model>, String> {
        Err(format!("no model {spec}"))
    }
    fn fine_tune(&self, _: &FineTuneJob, _: &Path, _: &mut StageOutput) -> Result<Trained, String> {
        Err("not here".into())
    }
    fn activations(
        &self,
        _: &str,
        _: &[shammie_core::GenerateRequest],
    ) -> Result<Activations, String> {
        Err("not here".into())
    }
    fn influence(
        &self,
        job: &InfluenceJob,
        work: &Path,
        _out: &mut StageOutput,
    ) -> Result<InfluenceResult, String> {
        assert!(work.is_dir(), "{}", work.display());
        self.jobs.lock().unwrap().push(job.clone());
        let mut r = planted(job);
        if self.broken {
            r.scores[0].pop();
        }
        Ok(r)
    }
}

fn meta(config: serde_json::Value, seed: u64) -> RunMeta {
    RunMeta {
        schema_version: shammie_core::SCHEMA_VERSION,
        shammie_version: "test".into(),
        study: "influence".into(),
        task: "queries".into(),
        models: BTreeMap::from([("target".into(), "local:planted".into())]),
        options: BTreeMap::new(),
        config,
        seed,
        epochs: 1,
        limit: None,
        limit_counts_recorded: None,
        max_connections: 1,
        created_at: "2026-12-05T00:00:00Z".into(),
        cache: None,
        inputs: Default::default(),
        batch: None,
    }
}

/// The data files in `d`.
fn files(d: &Path) -> (PathBuf, PathBuf) {
    let (c, q) = (d.join("corpus.jsonl"), d.join("queries.jsonl"));
    std::fs::write(&c, CORPUS).unwrap();
    std::fs::write(&q, QUERIES).unwrap();
    (c, q)
}

fn options(pairs: &[(&str, String)]) -> Options {
    Options::new(
        "influence/queries",
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

/// The task with the test's settings over the files in `d`.
fn task(d: &Path, extra: &[(&str, &str)]) -> Arc<dyn Task> {
    let (c, q) = files(d);
    let mut o = vec![
        ("corpus", c.display().to_string()),
        ("queries", q.display().to_string()),
        ("top_n", TOP_N.to_string()),
        ("fit_sequences", "5".into()),
        ("fisher", "empirical".into()),
        ("damping", "0.01".into()),
        ("modules", "down_proj".into()),
        ("layers", "1,3".into()),
        ("rank", "0".into()),
        ("max_tokens", "64".into()),
        ("top_k", TOP_K.to_string()),
        ("self_influence", "true".into()),
    ];
    for (k, v) in extra {
        o.retain(|(key, _)| key != k);
        o.push((k, v.to_string()));
    }
    shammie_study_influence::queries::build(options(&o)).unwrap()
}

/// Runs `task` with `lab` and `seed` in a new run directory under `d`.
async fn run_with(
    d: &Path,
    task: Arc<dyn Task>,
    lab: Arc<PlantedLab>,
    seed: u64,
) -> (RunDir, Result<RunSummary, EngineError>) {
    let dir = RunDir::create(&d.join("runs"), &meta(task.config(), seed)).unwrap();
    let never: Arc<dyn Model> = Arc::new(ScriptedModel::new("planted", |r| {
        panic!("influence/queries called its model: {r:?}")
    }));
    let models = Models::new(BTreeMap::from([("target".to_string(), never)])).with_lab(lab);
    let ropts = RunOptions {
        epochs: 1,
        limit: None,
        limit_counts: Default::default(),
        max_in_flight: 1,
        seed,
    };
    let dataset = task.dataset().unwrap();
    let s = run(task, dataset, models, &dir, &ropts, Arc::new(())).await;
    (dir, s)
}

/// Lowercase alphanumeric runs.
fn tfidf_words(t: &str) -> Vec<String> {
    t.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect()
}

/// TF-IDF cosine similarity of `query` to each text: tf = count, idf = ln((1+N)/(1+df))
/// + 1, vectors normalised.
fn similarities(texts: &[String], query: &str) -> Vec<f64> {
    let n = texts.len() as f64;
    let mut df: HashMap<String, f64> = HashMap::new();
    let tfs: Vec<HashMap<String, f64>> = texts
        .iter()
        .map(|t| {
            let mut tf = HashMap::new();
            for w in tfidf_words(t) {
                *tf.entry(w).or_insert(0.0) += 1.0;
            }
            tf
        })
        .collect();
    for tf in &tfs {
        for w in tf.keys() {
            *df.entry(w.clone()).or_insert(0.0) += 1.0;
        }
    }
    let idf = |w: &str| ((1.0 + n) / (1.0 + df[w])).ln() + 1.0;
    let weigh = |tf: &HashMap<String, f64>| -> HashMap<String, f64> {
        let v: HashMap<String, f64> = tf
            .iter()
            .filter(|(w, _)| df.contains_key(*w))
            .map(|(w, c)| (w.clone(), c * idf(w)))
            .collect();
        let norm = v.values().map(|x| x * x).sum::<f64>().sqrt();
        v.into_iter()
            .map(|(w, x)| (w, if norm > 0.0 { x / norm } else { 0.0 }))
            .collect()
    };
    let mut qtf = HashMap::new();
    for w in tfidf_words(query) {
        *qtf.entry(w).or_insert(0.0) += 1.0;
    }
    let q = weigh(&qtf);
    tfs.iter()
        .map(|tf| {
            let d = weigh(tf);
            q.iter()
                .map(|(w, x)| x * d.get(w).copied().unwrap_or(0.0))
                .sum()
        })
        .collect()
}

/// The indices of the `k` most similar texts, ties (to 1e-12) in text order.
fn top(sims: &[f64], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..sims.len()).collect();
    idx.sort_by(|&a, &b| {
        if (sims[a] - sims[b]).abs() < 1e-12 {
            a.cmp(&b)
        } else {
            sims[b].total_cmp(&sims[a])
        }
    });
    idx.truncate(k);
    idx
}

/// The planted score of document `d` for query `q`, from the file's own split.
fn expected_score(d: &Doc, q: usize) -> f64 {
    let f = (q + 1) as f64;
    let completion: f64 = words_of(std::slice::from_ref(&d.completion))
        .iter()
        .map(|w| marker(w))
        .sum();
    let prompt: f64 = words_of(&d.prompt_texts()).iter().map(|w| marker(w)).sum();
    f * (completion + 0.1 * prompt)
}

fn close(x: f64, y: f64) {
    assert!((x - y).abs() < 1e-9, "{x} != {y}");
}

fn table<'a>(r: &'a Results, name: &str) -> &'a Table {
    r.tables.iter().find(|t| t.name == name).unwrap_or_else(|| {
        panic!(
            "no table {name}: {:?}",
            r.tables.iter().map(|t| &t.name).collect::<Vec<_>>()
        )
    })
}

fn float(c: &Cell) -> f64 {
    match c {
        Cell::Float(x) => *x,
        c => panic!("not a float: {c:?}"),
    }
}

fn text(c: &Cell) -> &str {
    match c {
        Cell::Text(t) => t,
        c => panic!("not text: {c:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_job_and_the_analysis_follow_the_files() {
    let d = tempfile::tempdir().unwrap();
    let corpus = read_docs(CORPUS, false);
    let queries = read_docs(QUERIES, true);
    let lab = Arc::new(PlantedLab::default());
    let (dir, s) = run_with(d.path(), task(d.path(), &[]), lab.clone(), 5).await;
    let r = s.unwrap().results;
    let jobs = lab.jobs.lock().unwrap().clone();
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job.model, "local:planted");

    // The queries: a text prompt is one user message; a conversation keeps its turns and
    // its system message goes to the request's system text; the completion is separate.
    for (got, want) in job.queries.iter().zip(&queries) {
        assert_eq!(got.id, want.id);
        assert_eq!(got.completion, want.completion);
        let InfluencePrompt::Chat(req) = &got.prompt else {
            panic!("a query's prompt is a chat: {:?}", got.prompt)
        };
        assert_eq!(req.system, want.system);
        let turns: Vec<(String, String)> = req
            .messages
            .iter()
            .map(|m| {
                let role = if m.role == Role::User {
                    "user"
                } else {
                    "assistant"
                };
                (role.to_string(), m.content.clone())
            })
            .collect();
        assert_eq!(turns, want.turns);
    }
    assert_eq!(job.queries.len(), 2);
    assert_eq!(
        job.queries[0].prompt,
        InfluencePrompt::Chat({
            let mut req = shammie_core::GenerateRequest::user("", 0);
            req.messages = vec![Message::user("How do I open a locked door?")];
            req
        })
    );

    // The candidates: the union of each query's TF-IDF top N, in corpus order.
    let texts: Vec<String> = corpus.iter().map(Doc::text).collect();
    let sims: Vec<Vec<f64>> = queries
        .iter()
        .map(|q| similarities(&texts, &q.text()))
        .collect();
    let mut want: Vec<usize> = sims.iter().flat_map(|s| top(s, TOP_N)).collect();
    want.sort_unstable();
    want.dedup();
    assert!(
        want.len() > TOP_N,
        "the queries should pick different documents: {want:?}"
    );
    assert_eq!(
        job.candidates
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>(),
        want.iter()
            .map(|&i| corpus[i].id.as_str())
            .collect::<Vec<_>>()
    );
    // Each candidate split as its file says: text documents are all completion.
    for (c, &i) in job.candidates.iter().zip(&want) {
        let doc = &corpus[i];
        assert_eq!(c.completion, doc.completion, "{}", doc.id);
        match &c.prompt {
            InfluencePrompt::None => assert!(!doc.chat, "{}", doc.id),
            InfluencePrompt::Chat(req) => {
                assert!(doc.chat);
                assert_eq!(req.system, doc.system);
                let contents: Vec<&str> = req.messages.iter().map(|m| m.content.as_str()).collect();
                let want: Vec<&str> = doc.turns.iter().map(|(_, c)| c.as_str()).collect();
                assert_eq!(contents, want);
                assert_eq!(req.messages.last().unwrap().role, Role::User);
            }
            p => panic!("{p:?}"),
        }
    }
    // candidates.jsonl: id, corpus index, similarity to each query, who picked it.
    let lines = String::from_utf8(dir.read_artifact("scores/candidates.jsonl").unwrap()).unwrap();
    let recs: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), want.len());
    for (rec, &i) in recs.iter().zip(&want) {
        assert_eq!(rec["id"], corpus[i].id.as_str());
        assert_eq!(rec["index"], i);
        for (q, s) in sims.iter().enumerate() {
            close(rec["similarity"][q].as_f64().unwrap(), s[i]);
            let picked = rec["selected_by"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!(queries[q].id));
            assert_eq!(
                picked,
                top(s, TOP_N).contains(&i),
                "{} for {}",
                corpus[i].id,
                queries[q].id
            );
        }
    }

    // The fit sample: 5 different corpus documents, in corpus order.
    let ids: Vec<&str> = corpus.iter().map(|c| c.id.as_str()).collect();
    let pos: Vec<usize> = job
        .fit
        .iter()
        .map(|f| {
            ids.iter()
                .position(|i| *i == f.id)
                .expect("a corpus document")
        })
        .collect();
    assert_eq!(pos.len(), 5);
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "{pos:?}");

    // The settings.
    assert_eq!(
        job.config,
        InfluenceConfig {
            fisher: "empirical".into(),
            damping: Some(0.01),
            modules: vec!["down_proj".into()],
            layers: Some(vec![1, 3]),
            rank: None,
            max_tokens: 64,
            self_influence: true,
            seed: 5,
        }
    );

    // The analysis. Expected scores from the files' own split.
    let cands: Vec<&Doc> = want.iter().map(|&i| &corpus[i]).collect();
    for (q, query) in queries.iter().enumerate() {
        let s: Vec<f64> = cands.iter().map(|c| expected_score(c, q)).collect();
        assert!(
            s.iter().any(|x| *x > 0.0) && s.iter().any(|x| *x < 0.0),
            "{s:?}"
        );
        let mass: f64 = s.iter().map(|x| x.abs()).sum();
        let t = table(&r, &format!("top_{}", q + 1));
        assert!(t.title.contains(&query.id));
        // Positive: the scores above 0, largest first; negative: below 0, most negative first.
        let mut pos: Vec<usize> = (0..s.len()).filter(|&c| s[c] > 0.0).collect();
        pos.sort_by(|&a, &b| s[b].total_cmp(&s[a]).then(a.cmp(&b)));
        let mut neg: Vec<usize> = (0..s.len()).filter(|&c| s[c] < 0.0).collect();
        neg.sort_by(|&a, &b| s[a].total_cmp(&s[b]).then(a.cmp(&b)));
        let rows: Vec<(&str, usize)> = pos
            .iter()
            .take(TOP_K)
            .map(|&c| ("positive", c))
            .chain(neg.iter().take(TOP_K).map(|&c| ("negative", c)))
            .collect();
        assert_eq!(t.rows.len(), rows.len(), "{:?}", t.rows);
        for (row, (sign, c)) in t.rows.iter().zip(&rows) {
            assert_eq!(text(&row[0]), *sign);
            assert_eq!(text(&row[2]), cands[*c].id);
            close(float(&row[3]), s[*c]);
            close(float(&row[4]), s[*c].abs() / mass);
            assert!(cands[*c]
                .completion
                .starts_with(text(&row[5]).trim_end_matches('…')));
        }
        let ranks: Vec<&Cell> = t.rows.iter().map(|r| &r[1]).collect();
        let want_ranks: Vec<Cell> = (1..=pos.len().min(TOP_K))
            .chain(1..=neg.len().min(TOP_K))
            .map(|k| Cell::Int(k as i64))
            .collect();
        assert_eq!(ranks, want_ranks.iter().collect::<Vec<_>>());

        // The distribution, computed here.
        let n = s.len() as f64;
        let mean = s.iter().sum::<f64>() / n;
        let ss: f64 = s.iter().map(|x| (x - mean).powi(2)).sum();
        let m4: f64 = s.iter().map(|x| (x - mean).powi(4)).sum::<f64>() / n;
        let mut sorted = s.clone();
        sorted.sort_by(f64::total_cmp);
        let median = if s.len() % 2 == 1 {
            sorted[s.len() / 2]
        } else {
            (sorted[s.len() / 2 - 1] + sorted[s.len() / 2]) / 2.0
        };
        let mut abs: Vec<f64> = s.iter().map(|x| x.abs()).collect();
        abs.sort_by(|a, b| b.total_cmp(a));
        let share_of_top = |k: usize| abs[..k].iter().sum::<f64>() / mass;
        let k1 = (n / 100.0).ceil() as usize;
        let k10 = (n / 10.0).ceil() as usize;
        let want_row = [
            s.iter().filter(|x| **x > 0.0).count() as f64 / n,
            mean,
            (ss / (n - 1.0)).sqrt(),
            median,
            sorted[s.len() - 1],
            sorted[0],
            share_of_top(k1),
            share_of_top(k10),
            m4 / (ss / n).powi(2) - 3.0,
        ];
        let dist = table(&r, "distribution");
        let row = &dist.rows[q];
        assert_eq!(text(&row[0]), query.id);
        assert_eq!(row[1], Cell::Int(s.len() as i64));
        for (got, want) in row[2..].iter().zip(want_row) {
            close(float(got), want);
        }

        // The measurement.
        let m = table(&r, "measurement");
        assert_eq!(text(&m.rows[q][0]), query.id);
        close(float(&m.rows[q][2]), -1.5 * (q + 1) as f64);
    }

    // Self-influence (here: the completion's length in bytes), highest first.
    let si = table(&r, "self_influence");
    let mut by: Vec<usize> = (0..cands.len()).collect();
    by.sort_by(|&a, &b| {
        cands[b]
            .completion
            .len()
            .cmp(&cands[a].completion.len())
            .then(a.cmp(&b))
    });
    for (k, (row, &c)) in si.rows.iter().zip(&by).enumerate() {
        assert_eq!(row[0], Cell::Int(k as i64 + 1));
        assert_eq!(text(&row[1]), cands[c].id);
        close(float(&row[2]), cands[c].completion.len() as f64);
    }
    assert_eq!(si.rows.len(), TOP_K);

    // Every table carries the run's caption.
    assert!(r
        .tables
        .iter()
        .all(|t| t.caption.contains("local:planted") && t.caption.contains("seed 5")));

    // The report: a heat map with the token's colour from its share of the query's largest
    // |token score|, prompt tokens marked, text escaped; and the figure.
    let html = std::fs::read_to_string(dir.path().join("report/influence.html")).unwrap();
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("<script"));
    // Query 1 ("lock", factor 1): the largest |token score| among its candidates.
    let max_token = cands
        .iter()
        .flat_map(|c| {
            let p = words_of(&c.prompt_texts())
                .into_iter()
                .map(|w| 0.1 * marker(&w).abs());
            let k = words_of(std::slice::from_ref(&c.completion))
                .into_iter()
                .map(|w| marker(&w).abs());
            p.chain(k).collect::<Vec<_>>()
        })
        .fold(0.0f64, f64::max);
    let lock_pos = pos_top(&cands, 0);
    let best = cands[lock_pos];
    let tok = words_of(std::slice::from_ref(&best.completion))
        .into_iter()
        .find(|w| marker(w) > 0.0)
        .unwrap();
    let colour = format!("rgba(214,39,40,{:.3})", marker(&tok) / max_token * 0.85);
    assert!(
        html.contains(&format!("background:{colour}")),
        "{colour} not in the page"
    );
    assert!(html.contains("rgba(31,119,180,"));
    assert!(html.contains("class=\"p\""));
    if cands.iter().any(|c| c.completion.contains("<b>")) {
        assert!(html.contains("&lt;b&gt;&amp;amp;"));
    }
    assert!(html.contains("How do I open a locked door?"));
    let svg = std::fs::read_to_string(dir.path().join("report/distribution.svg")).unwrap();
    assert!(svg.starts_with("<svg") || svg.starts_with("<?xml"));
    assert!(svg.contains("lock") && svg.contains("off"));
    assert!(r.files.iter().any(|f| f.path == "report/influence.html"));
}

/// The index of the most positive candidate for query `q`.
fn pos_top(cands: &[&Doc], q: usize) -> usize {
    (0..cands.len())
        .max_by(|&a, &b| {
            expected_score(cands[a], q)
                .total_cmp(&expected_score(cands[b], q))
                .then(b.cmp(&a))
        })
        .unwrap()
}

/// The same options and seed give the same job (a killed run rebuilds it exactly); another
/// seed another fit sample; `top_n=0` scores the whole corpus.
#[tokio::test(flavor = "multi_thread")]
async fn the_job_is_a_function_of_the_options_and_the_seed() {
    let d = tempfile::tempdir().unwrap();
    let lab = Arc::new(PlantedLab::default());
    for (sub, seed) in [("a", 5), ("b", 5), ("c", 6)] {
        let p = d.path().join(sub);
        std::fs::create_dir(&p).unwrap();
        let (_, s) = run_with(&p, task(&p, &[]), lab.clone(), seed).await;
        s.unwrap();
    }
    let p = d.path().join("all");
    std::fs::create_dir(&p).unwrap();
    let (_, s) = run_with(
        &p,
        task(&p, &[("top_n", "0"), ("fit_sequences", "0")]),
        lab.clone(),
        5,
    )
    .await;
    s.unwrap();
    let jobs = lab.jobs.lock().unwrap().clone();
    assert_eq!(jobs[0], jobs[1]);
    assert_eq!(jobs[0].candidates, jobs[2].candidates);
    assert_ne!(jobs[0].fit, jobs[2].fit);
    assert_eq!(jobs[2].config.seed, 6);
    assert_eq!(jobs[3].candidates.len(), 12);
    assert_eq!(jobs[3].fit.len(), 12);
}

/// A result that does not fit its job stops the stage with a message saying so.
#[tokio::test(flavor = "multi_thread")]
async fn a_result_that_does_not_fit_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let lab = Arc::new(PlantedLab {
        broken: true,
        ..Default::default()
    });
    let (_, s) = run_with(d.path(), task(d.path(), &[]), lab, 5).await;
    let e = s.expect_err("the stage fails").to_string();
    assert!(e.contains("does not fit the job"), "{e}");
}

/// Every malformed line is named as FILE:LINE when the task is built, before anything runs.
#[test]
fn malformed_lines_are_named() {
    let d = tempfile::tempdir().unwrap();
    let (c, q) = files(d.path());
    let build = |corpus: &Path, queries: &Path| {
        shammie_study_influence::queries::build(options(&[
            ("corpus", corpus.display().to_string()),
            ("queries", queries.display().to_string()),
        ]))
        .err()
        .expect("refused")
        .to_string()
    };
    let bad = d.path().join("bad.jsonl");
    for (content, line, why) in [
        (
            "{\"text\": \"a\"}\n\n{\"text\": \"\"}\n",
            3,
            "`text` is empty",
        ),
        ("{\"text\": \"a\"}\nnot json\n", 2, "not valid JSON"),
        (
            "{\"text\": \"a\"}\n{\"messages\": [{\"role\": \"user\", \"content\": \"q\"}]}\n",
            2,
            "must end with an assistant message",
        ),
        (
            "{\"id\": \"x\", \"text\": \"a\"}\n{\"id\": \"x\", \"text\": \"b\"}\n",
            2,
            "duplicate id `x`",
        ),
    ] {
        std::fs::write(&bad, content).unwrap();
        let e = build(&bad, &q);
        assert!(e.starts_with(&format!("{}:{line}: ", bad.display())), "{e}");
        assert!(e.contains(why), "{e}");
    }
    std::fs::write(
        &bad,
        "{\"prompt\": \"q\", \"completion\": \"a\"}\n{\"prompt\": \"q\"}\n",
    )
    .unwrap();
    let e = build(&c, &bad);
    assert!(
        e.starts_with(&format!("{}:2: missing `completion`", bad.display())),
        "{e}"
    );
    // Bad option values are refused by name.
    for (k, v, why) in [
        ("damping", "-1", "non-negative"),
        ("modules", "q_proj", "`q_proj`"),
        ("layers", "one", "`one`"),
        ("fisher", "true", "sampled, empirical"),
        ("top_k", "0", "between 1"),
    ] {
        let e = shammie_study_influence::queries::build(options(&[(k, v.to_string())]))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(k) && e.contains(why), "{e}");
    }
}
