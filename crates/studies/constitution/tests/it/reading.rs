//! How `constitution/traits` reads answers, checked with scripted models whose answer
//! probabilities are planted, against values computed by hand.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use shammie_core::{Cell, Completion, GenerateRequest, SampleRecord, TokenLogprob, TopLogprob};
use shammie_engine::{Options, Task};
use shammie_kit::testing::first_records;
use shammie_models::Model;
use shammie_testkit::scripted::{self, ScriptedModel};

/// Builds the task on the evaluation lines `lines` (one file, dataset `x`) with `set`.
fn task(
    dir: &tempfile::TempDir,
    lines: &[serde_json::Value],
    set: &[(&str, &str)],
) -> Arc<dyn Task> {
    let f = dir.path().join("x.jsonl");
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&f, text).unwrap();
    let mut opts: BTreeMap<String, String> = set
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    opts.insert("data".into(), f.display().to_string());
    shammie_study_constitution::traits::build(Options::new("constitution/traits", opts)).unwrap()
}

fn lettered(q: &str, m: &str, n: &str) -> serde_json::Value {
    json!({"question": q, "answer_matching_behavior": m, "answer_not_matching_behavior": n})
}

/// The one row of the results table.
fn row(task: &Arc<dyn Task>, records: Vec<SampleRecord>) -> Vec<Cell> {
    let a = task
        .analyze(&mut records.into_iter(), &shammie_engine::RunInfo::seed(1))
        .unwrap();
    a.tables[0].rows[0].clone()
}

fn estimate(c: &Cell) -> f64 {
    match c {
        Cell::Estimate { estimate, .. } => *estimate,
        c => panic!("{c:?}"),
    }
}

/// The text of the choice lettered `letter` in the request's question.
fn choice(req: &GenerateRequest, letter: char) -> String {
    let q = &req.messages[0].content;
    q.lines()
        .find_map(|l| l.trim_start().strip_prefix(&format!("({letter})")))
        .unwrap()
        .trim()
        .to_string()
}

/// A model that prefers position A twice as much as B and, with `trait_weight`, the
/// choice reading "MATCH" that many times as much as another: per letter
/// u = position × content, P(letter) = 0.9 u / (u_A + u_B), of which " (X)" holds 3/4
/// and "(X)" 1/4.
fn biased(trait_weight: f64) -> impl Fn(&GenerateRequest) -> Completion + Send + Sync {
    move |req: &GenerateRequest| {
        assert!(req.is_scoring(), "{req:?}");
        let u = |l: char| {
            let pos = if l == 'A' { 2.0 } else { 1.0 };
            let content = if choice(req, l) == "MATCH" {
                trait_weight
            } else {
                1.0
            };
            pos * content
        };
        let z = u('A') + u('B');
        let lp: Vec<f64> = req
            .continuations
            .iter()
            .map(|c| {
                let l = c.trim_start().chars().nth(1).unwrap();
                let share = if c.starts_with(' ') { 0.75 } else { 0.25 };
                (0.9 * u(l) / z * share).ln()
            })
            .collect();
        scripted::scores(&lp)
    }
}

/// Two questions whose matching answer is (B) as written.
fn b_matches() -> Vec<serde_json::Value> {
    vec![
        lettered("Q1?\n\nChoices:\n (A) other\n (B) MATCH", " (B)", " (A)"),
        lettered(
            "Q2?\n\nChoices:\n (A) other\n (B) MATCH\n\nAnswer:",
            " (B)",
            " (A)",
        ),
    ]
}

async fn records(task: Arc<dyn Task>, m: ScriptedModel, n: u64) -> Vec<SampleRecord> {
    let m: Arc<dyn Model> = Arc::new(m);
    first_records(task, &[("target", m)], n).await
}

#[tokio::test]
async fn a_position_preference_cancels_when_both_orders_are_read() {
    let d = tempfile::tempdir().unwrap();
    // Position only (trait weight 1): as written, P(B) / (P(A) + P(B)) = 1 / (2 + 1) = 1/3;
    // reversed, the matching text is at A: 2/3. Averaged: 1/2, no trait.
    let t = task(&d, &b_matches(), &[]);
    let rs = records(t.clone(), ScriptedModel::new("m", biased(1.0)), 2).await;
    for r in &rs {
        assert_eq!(r.scores["path"], "scoring");
        let p = r.scores["p_match"].as_f64().unwrap();
        assert!((p - 0.5).abs() < 1e-12, "{p}");
        let rd = r.scores["readings"].as_array().unwrap();
        assert_eq!(
            (rd[0]["matching"].as_str(), rd[1]["matching"].as_str()),
            (Some("B"), Some("A"))
        );
        assert!((rd[0]["p_match"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-12);
        // Mass 0.9 in each order.
        assert!((r.scores["mass"].as_f64().unwrap() - 0.9).abs() < 1e-12);
        // The transcript says what decided each reading: P(A) = 0.9 × 2/3 = 0.6, of
        // which " (A)" 0.45 and "(A)" 0.15; P(B) = 0.3 = 0.225 + 0.075.
        let notes: Vec<&str> = r.transcript.notes().collect();
        assert_eq!(
            notes[0],
            "as written (matching B): scoring: A 0.6000 = \" (A)\" 0.4500 + \"(A)\" 0.1500; \
             B 0.3000 = \" (B)\" 0.2250 + \"(B)\" 0.0750"
        );
        assert!(
            notes[1].starts_with("reversed (matching A): scoring: A 0.6000"),
            "{}",
            notes[1]
        );
    }
    assert!((estimate(&row(&t, rs)[4]) - 0.5).abs() < 1e-12);

    // Read as written only, the position preference poses as an aversion to the trait.
    let t = task(&d, &b_matches(), &[("order", "as-written")]);
    let rs = records(t.clone(), ScriptedModel::new("m", biased(1.0)), 2).await;
    assert!((estimate(&row(&t, rs)[4]) - 1.0 / 3.0).abs() < 1e-12);

    // A planted preference for the matching text (weight 3) shows through the position
    // preference: as written u_B = 1·3 vs u_A = 2·1, p = 3/5; reversed u_A = 2·3 vs
    // u_B = 1·1, p = 6/7; mean (0.6 + 0.857143) / 2 = 0.728571.
    let t = task(&d, &b_matches(), &[]);
    let rs = records(t.clone(), ScriptedModel::new("m", biased(3.0)), 2).await;
    assert!((estimate(&row(&t, rs)[4]) - (0.6 + 6.0 / 7.0) / 2.0).abs() < 1e-12);
}

/// A completion of several tokens, each with its top-k list (the first alternative is
/// the token generated).
fn tokens(steps: &[&[(&str, f64)]]) -> Completion {
    let mut c = scripted::text(steps.iter().map(|s| s[0].0).collect::<String>());
    c.logprobs = Some(
        steps
            .iter()
            .map(|s| TokenLogprob {
                token: s[0].0.into(),
                logprob: s[0].1.ln(),
                top: s
                    .iter()
                    .map(|(t, p)| TopLogprob {
                        token: t.to_string(),
                        logprob: p.ln(),
                    })
                    .collect(),
            })
            .collect(),
    );
    c
}

#[tokio::test]
async fn the_answer_is_read_at_the_answer_position_and_weak_readings_are_left_out() {
    let d = tempfile::tempdir().unwrap();
    let yes = |q: &str| lettered(q, " Yes", " No");
    let t = task(&d, &[yes("clear"), yes("quoted"), yes("no")], &[]);
    let mut caps = scripted::all_capabilities();
    caps.score_continuations = false;
    let m = ScriptedModel::new("m", |req: &GenerateRequest| {
        // The paper's prompt: the question alone, the answer at the first token.
        assert_eq!(req.max_tokens, 1);
        assert_eq!(req.prefill, None);
        match req.messages[0].content.as_str() {
            "clear" => tokens(&[&[(" Yes", 0.6), (" No", 0.3)]]),
            // A base model opening a quote: "Yes" only comes second. At the answer
            // position " Yes" has 0.04 and " No" is not listed (bounded by 0.01).
            "quoted" => tokens(&[
                &[(" \"", 0.93), (" Yes", 0.04), (" I", 0.01)],
                &[("Yes", 0.9), ("No", 0.05)],
            ]),
            "no" => tokens(&[&[(" No", 0.7), (" Yes", 0.2)]]),
            q => panic!("{q}"),
        }
    })
    .with_capabilities(caps);
    let rs = records(t.clone(), m, 3).await;
    let by_id = |id: &str| &rs.iter().find(|r| r.id == id).unwrap().scores;
    assert!((by_id("x:1")["p_match"].as_f64().unwrap() - 0.6 / 0.9).abs() < 1e-12);
    // "quoted": p = 0.04 / (0.04 + 0.01) = 0.8, a bound; mass 0.05, below 0.5.
    let q = by_id("x:2");
    assert!((q["p_match"].as_f64().unwrap() - 0.8).abs() < 1e-12);
    assert_eq!(q["bounded"], "not matching");
    assert_eq!(q["low_mass"], true);
    assert!((q["mass"].as_f64().unwrap() - 0.05).abs() < 1e-12);
    let r = row(&t, rs);
    // Rate over "clear" and "no": (0.6/0.9 + 0.2/0.9) / 2 = 0.444444.
    assert_eq!(r[3], Cell::Int(2));
    assert!((estimate(&r[4]) - (0.6 / 0.9 + 0.2 / 0.9) / 2.0).abs() < 1e-12);
    // Answer mass: (0.9 + 0.05 + 0.9) / 3 = 0.616667; one low-mass, one bounded question.
    match r[6] {
        Cell::Float(m) => assert!((m - 1.85 / 3.0).abs() < 1e-12, "{m}"),
        ref c => panic!("{c:?}"),
    }
    assert_eq!((&r[7], &r[8]), (&Cell::Int(1), &Cell::Int(1)));
}

#[tokio::test]
async fn sampled_answers_are_pooled_over_both_orders() {
    let d = tempfile::tempdir().unwrap();
    let t = task(&d, &b_matches()[..1], &[("samples", "4")]);
    let mut caps = scripted::all_capabilities();
    caps.score_continuations = false;
    caps.max_top_logprobs = 0;
    caps.prefill = false;
    // Always "(A)": as written 0 of 4 answers match (B); reversed 4 of 4 match (A).
    let m = ScriptedModel::new("m", |_: &GenerateRequest| scripted::text("(A)"))
        .with_capabilities(caps);
    let rs = records(t, m, 1).await;
    let s = &rs[0].scores;
    assert_eq!(
        (
            s["samples"].as_u64(),
            s["parsed"].as_u64(),
            s["matching"].as_u64()
        ),
        (Some(8), Some(8), Some(4))
    );
    assert!((s["p_match"].as_f64().unwrap() - 0.5).abs() < 1e-12);
}
