//! Snapshots of the requests of the first questions of `cot-faithfulness/interventions`:
//! a wording change changes results and misses the response cache, so it shows up here
//! in review. With every capability on (scoring path, every intervention) and without
//! prefill or logprobs (sampling path; the interventions that continue a given partial
//! chain need prefill, so that run takes the ones the refusal suggests).

use std::collections::BTreeMap;
use std::sync::Arc;

use shammie_core::{Capabilities, Cell, Completion, GenerateRequest, SampleRecord};
use shammie_engine::{Options, Task};
use shammie_models::Model;
use shammie_study_faithfulness::answer::{ANSWER_QUESTION, COT_PREFIX};
use shammie_study_faithfulness::cot_faithfulness::task::build;
use shammie_testkit::prompts::render_records;
use shammie_testkit::scripted::{self, ScriptedModel};

use crate::harness::{self, answer, first_records, no_prefill_no_logprobs, scripted_roles};

const TASK: &str = "cot-faithfulness/interventions";

fn task(opts: &[(&str, &str)]) -> Arc<dyn Task> {
    let map: BTreeMap<String, String> = opts
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    build(Options::new(TASK, map)).unwrap()
}

/// A two-sentence chain of thought (continued with one more sentence after a given
/// partial chain), then (B).
fn target(req: &GenerateRequest) -> Completion {
    if !req.stop.iter().any(|s| s == ANSWER_QUESTION) {
        return answer(req);
    }
    let fresh = match &req.prefill {
        Some(p) => p == COT_PREFIX,
        None => true,
    };
    if fresh {
        scripted::text(
            " The question gives two amounts, and together they make 12. So the answer is (B).",
        )
    } else {
        scripted::text("So the answer is (B).")
    }
}

fn mistaker(req: &GenerateRequest) -> Completion {
    let open = if req.prefill.is_some() { "" } else { "<step>" };
    scripted::text(format!("{open}Together the two amounts make 13.</step>"))
}

fn paraphraser(req: &GenerateRequest) -> Completion {
    let open = if req.prefill.is_some() { "" } else { "<text>" };
    scripted::text(format!(
        "{open}Adding the two given amounts yields 12.</text>"
    ))
}

fn models(caps: Capabilities) -> Vec<(&'static str, Arc<dyn Model>)> {
    scripted_roles(
        caps,
        &[
            ("target", target),
            ("mistaker", mistaker),
            ("paraphraser", paraphraser),
        ],
    )
}

#[tokio::test]
async fn scoring_with_every_capability() {
    let records = first_records(task(&[]), &models(scripted::all_capabilities()), 2).await;
    for r in &records {
        assert_eq!(r.scores["path"], "scoring");
        assert_eq!(r.scores["sentences"], 2, "{}", r.id);
        assert_eq!(r.scores["original"], 1, "{}", r.id);
        // Exact scoring is not noisy: no re-reading.
        assert!(!r.scores.contains_key("rereads"), "{}", r.id);
    }
    insta::assert_snapshot!("interventions_scoring", render_records(&records));
}

#[tokio::test]
async fn sampling_without_prefill_or_logprobs() {
    let caps = no_prefill_no_logprobs();
    let e = harness::check(&*task(&[]), &models(caps))
        .unwrap_err()
        .to_string();
    assert!(e.contains("--set interventions=early,filler,no-cot"), "{e}");
    let t = task(&[("interventions", "early,filler,no-cot")]);
    let records = first_records(t, &models(caps), 2).await;
    for r in &records {
        assert_eq!(r.scores["path"], "sampling");
        assert_eq!(r.scores["original"], 1, "{}", r.id);
    }
    insta::assert_snapshot!("interventions_sampling", render_records(&records));
}

/// Generic-JSONL questions with four choices, (C) correct, one per question text.
fn questions(dir: &std::path::Path, texts: &[&str]) -> String {
    let mut s = String::new();
    for (i, t) in texts.iter().enumerate() {
        s.push_str(
            &serde_json::json!({"id": format!("q{i}"), "question": t,
                "choices": ["w", "x", "y", "z"], "answer": 2})
            .to_string(),
        );
        s.push('\n');
    }
    let path = dir.join("mine.jsonl");
    std::fs::write(&path, s).unwrap();
    path.display().to_string()
}

/// Scoring-path scores with `letter` (an index) the most likely of four.
fn scores_for(letter: usize) -> Completion {
    let lp: Vec<f64> = (0..4)
        .map(|i| {
            if i == letter {
                0.7f64.ln()
            } else {
                0.1f64.ln()
            }
        })
        .collect();
    scripted::scores(&lp)
}

const CHAIN: &str = " First a step. So the answer is (B).";

fn is_reasoning(req: &GenerateRequest) -> bool {
    req.stop.iter().any(|s| s == ANSWER_QUESTION)
}

/// The assistant's reasoning turn of an answer request, if it has one.
fn reasoning_of(req: &GenerateRequest) -> Option<&str> {
    (req.messages.len() == 3).then(|| req.messages[1].content.as_str())
}

fn analysed(t: &Arc<dyn Task>, records: Vec<SampleRecord>) -> shammie_engine::Analysis {
    t.analyze(&mut records.into_iter(), &shammie_engine::RunInfo::seed(0))
        .unwrap()
}

/// The row of `table` whose first cells are `keys`.
fn row<'a>(a: &'a shammie_engine::Analysis, table: &str, keys: &[&str]) -> &'a [Cell] {
    let t = a.tables.iter().find(|t| t.name == table).unwrap();
    t.rows
        .iter()
        .find(|r| {
            keys.iter()
                .enumerate()
                .all(|(i, k)| r[i] == Cell::text(k.to_string()))
        })
        .unwrap_or_else(|| panic!("no row {keys:?} in {table}"))
}

fn col(a: &shammie_engine::Analysis, table: &str, starts: &str) -> usize {
    let t = a.tables.iter().find(|t| t.name == table).unwrap();
    t.columns
        .iter()
        .position(|c| c.starts_with(starts))
        .unwrap()
}

fn est(c: &Cell) -> f64 {
    match c {
        Cell::Estimate { estimate, .. } => *estimate,
        Cell::Float(x) => *x,
        c => panic!("not a number: {c:?}"),
    }
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

#[tokio::test]
async fn the_chain_is_sampled_as_in_the_paper_unless_greedy_is_asked_for() {
    let calls = |r: &SampleRecord| -> Vec<GenerateRequest> {
        r.transcript
            .calls()
            .filter(|c| c.role == "target" && is_reasoning(&c.request))
            .map(|c| c.request.clone())
            .collect()
    };
    let models = models(scripted::all_capabilities());
    // Default: temperature 1, nucleus 0.95, for the chain and for every continuation
    // after a mistake or a paraphrase.
    let recs = first_records(task(&[]), &models, 1).await;
    let reqs = calls(&recs[0]);
    assert!(reqs.len() > 1, "the chain and its continuations");
    for r in &reqs {
        assert_eq!((r.temperature, r.top_p), (Some(1.0), Some(0.95)));
    }
    // Greedy on request: temperature 0, no nucleus sent.
    let recs = first_records(task(&[("cot_temperature", "0")]), &models, 1).await;
    for r in &calls(&recs[0]) {
        assert_eq!((r.temperature, r.top_p), (Some(0.0), None));
    }
}

#[tokio::test]
async fn filler_of_each_length_is_read_and_tabled() {
    // Planted: after at least T filler tokens (T in the question) the model answers
    // (C), the correct choice, else (B), which is also its chain's answer.
    let d = tempfile::tempdir().unwrap();
    let data = questions(d.path(), &["T=50 what?", "T=100 what?", "T=200 what?"]);
    let target = |req: &GenerateRequest| -> Completion {
        if is_reasoning(req) {
            return scripted::text(CHAIN);
        }
        let t: usize = req.messages[0].content["Question: T=".len()..]
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        match reasoning_of(req) {
            Some(r) if !r.contains("First a step") => {
                let dots = r.matches("...").count();
                scores_for(if dots >= t { 2 } else { 1 })
            }
            Some(_) => scores_for(1),
            None => scores_for(0),
        }
    };
    let m: Vec<(&str, Arc<dyn Model>)> =
        vec![("target", Arc::new(ScriptedModel::new("t", target)))];
    let t = task(&[
        ("data", &data),
        ("interventions", "filler,no-cot"),
        ("filler_lengths", "chain,0,50,100,200"),
    ]);
    let recs = first_records(t.clone(), &m, 3).await;
    // The chain had 8 tokens (the scripted model counts words): 8 filler tokens.
    let filler = &recs[0].scores["filler"];
    assert_eq!((&filler["k"], &filler["choice"]), (&8.into(), &1.into()));
    let fixed: Vec<u64> = recs[0].scores["fillers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["k"].as_u64().unwrap())
        .collect();
    assert_eq!(fixed, vec![0, 50, 100, 200]);
    let a = analysed(&t, recs);
    let (acc, same) = (col(&a, "filler", "accuracy"), col(&a, "filler", "% same"));
    // Accuracy = share of the 3 thresholds at or below the length; % same = the rest.
    for (len, want_acc) in [
        ("chain", 0.0),
        ("0", 0.0),
        ("50", 1.0),
        ("100", 2.0),
        ("200", 3.0),
    ] {
        let r = row(&a, "filler", &["mine", len]);
        assert_eq!(r[2], Cell::Int(3), "{len}");
        close(est(&r[acc]), 100.0 * want_acc / 3.0);
        close(est(&r[same]), 100.0 * (3.0 - want_acc) / 3.0);
    }
    // The accuracy table's filler column is the chain-length filler.
    let r = row(&a, "accuracy", &["mine"]);
    close(est(&r[col(&a, "accuracy", "filler")]), 0.0);
    let svg = a
        .files
        .iter()
        .find(|f| f.path == "report/filler.svg")
        .unwrap();
    assert!(String::from_utf8_lossy(&svg.content).contains("% same as the CoT answer"));
}

/// The nonce's re-reading index (0 for the first reading).
fn reread_index(req: &GenerateRequest) -> u64 {
    req.nonce >> 20
}

#[tokio::test]
async fn rereading_the_full_chain_measures_the_noise_floor() {
    // Sampling path, one sample per reading. Planted noise on the full chain only:
    // question "odd" answers (A) on odd re-readings, question "three" on the third;
    // every other reading says (B), the chain's answer.
    let d = tempfile::tempdir().unwrap();
    let data = questions(d.path(), &["odd what?", "three what?"]);
    let target = |req: &GenerateRequest| -> Completion {
        if is_reasoning(req) {
            return scripted::text(CHAIN);
        }
        let j = reread_index(req);
        let full = reasoning_of(req).is_some_and(|r| r.ends_with("So the answer is (B)."));
        let odd = req.messages[0].content.starts_with("Question: odd");
        let a = full && if odd { j % 2 == 1 } else { j == 3 };
        scripted::text(if a { "(A)" } else { "(B)" })
    };
    let m: Vec<(&str, Arc<dyn Model>)> = vec![(
        "target",
        Arc::new(ScriptedModel::new("t", target).with_capabilities(no_prefill_no_logprobs())),
    )];
    let t = task(&[
        ("data", &data),
        ("interventions", "early,no-cot"),
        ("samples", "1"),
    ]);
    let recs = first_records(t.clone(), &m, 2).await;
    // Re-readings j = 1…5: "odd" gives A B A B A, "three" B B A B B.
    assert_eq!(
        recs[0].scores["rereads"],
        serde_json::json!([0, 1, 0, 1, 0])
    );
    assert_eq!(
        recs[1].scores["rereads"],
        serde_json::json!([1, 1, 0, 1, 1])
    );
    let a = analysed(&t, recs);
    // % same: 2/5 and 4/5, mean 60%; a bootstrap over the two questions gives means of
    // 40, 60 or 80 (chance ¼, ½, ¼), so its 2.5% and 97.5% percentiles are 40 and 80.
    let r = row(&a, "faithfulness", &["mine"]);
    let Cell::Estimate {
        estimate, lo, hi, ..
    } = r[col(&a, "faithfulness", "% same on re-reading")]
    else {
        panic!("no interval: {r:?}");
    };
    close(estimate, 60.0);
    close(lo, 40.0);
    close(hi, 80.0);
    let svg = a
        .files
        .iter()
        .find(|f| f.path == "report/same-answer.svg")
        .unwrap();
    assert!(String::from_utf8_lossy(&svg.content).contains("re-reading the full chain (noise)"));
}

#[tokio::test]
async fn tied_answers_are_drawn_not_given_to_a() {
    // Two samples per reading, (A) then (B): every reading is a tie.
    let target = |req: &GenerateRequest| -> Completion {
        if is_reasoning(req) {
            return scripted::text(CHAIN);
        }
        scripted::text(if req.nonce.is_multiple_of(2) {
            "(A)"
        } else {
            "(B)"
        })
    };
    let m: Vec<(&str, Arc<dyn Model>)> = vec![(
        "target",
        Arc::new(ScriptedModel::new("t", target).with_capabilities(no_prefill_no_logprobs())),
    )];
    let opts = [
        ("interventions", "early,no-cot"),
        ("samples", "2"),
        ("rereads", "0"),
    ];
    let recs = first_records(task(&opts), &m, 4).await;
    let mut letters = Vec::new();
    for r in &recs {
        // Original, early answering at k = 0 and 1 (k = 2 is the original), no CoT.
        assert_eq!(r.scores["ties"], 4, "{}", r.id);
        letters.push(r.scores["original"].as_u64().unwrap());
        letters.push(r.scores["no_cot"]["choice"].as_u64().unwrap());
        for p in r.scores["early"].as_array().unwrap() {
            letters.push(p["choice"].as_u64().unwrap());
        }
    }
    assert!(letters.iter().all(|&l| l < 2), "{letters:?}");
    assert!(letters.contains(&0) && letters.contains(&1), "{letters:?}");
    // Seeded: the same run draws the same letters.
    let again = first_records(task(&opts), &m, 4).await;
    for (a, b) in recs.iter().zip(&again) {
        assert_eq!(a.scores, b.scores);
    }
}

#[test]
fn bad_new_options_are_refused_by_name() {
    let err = |opts: &[(&str, &str)]| {
        let map: BTreeMap<String, String> = opts
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        match build(Options::new(TASK, map)) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{opts:?} accepted"),
        }
    };
    let e = err(&[("filler_lengths", "chain,many")]);
    assert!(e.contains("filler_lengths: `many`"), "{e}");
    let e = err(&[("cot_top_p", "0")]);
    assert!(e.contains("cot_top_p must be above 0"), "{e}");
    let e = err(&[("rereads", "101")]);
    assert!(e.contains("rereads"), "{e}");
}
