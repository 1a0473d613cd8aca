//! Snapshots of the requests the first samples send, with default options: a wording
//! change changes results and misses the response cache, so it shows up here in review.
//! The logprob path (every capability on: prefill, top-k) and the sampling path (no
//! prefill, no logprobs). Datasets are interleaved round-robin, so the first eight
//! samples are the first question of the first eight datasets: the first two (yes/no)
//! and the eighth (the first lettered one) are shown.

use std::collections::BTreeMap;
use std::sync::Arc;

use shammie_core::{Capabilities, Completion, GenerateRequest};
use shammie_engine::Options;
use shammie_kit::testing::first_records;
use shammie_models::Model;
use shammie_testkit::prompts::render_records;
use shammie_testkit::scripted::{self, ScriptedModel};

/// Answers "Yes" to yes/no questions and (A) to lettered ones: as a top-k list when
/// asked for logprobs, else as text (after the `(` prefill when there is one).
fn answerer(req: &GenerateRequest) -> Completion {
    let yes_no = req.messages[0]
        .content
        .ends_with("Answer with just \"Yes\" or \"No\".");
    match (yes_no, req.top_logprobs.is_some(), req.prefill.is_some()) {
        (true, true, _) => scripted::top_k(&[("Yes", 0.6), ("No", 0.3)]),
        (false, true, _) => scripted::top_k(&[("A", 0.7), ("B", 0.2)]),
        (true, false, _) => scripted::text("Yes"),
        (false, false, true) => scripted::text("A)"),
        (false, false, false) => scripted::text("(A)"),
    }
}

async fn snapshot(caps: Capabilities) -> String {
    let task = shammie_study_constitution::traits::build(Options::new(
        "constitution/traits",
        BTreeMap::new(),
    ))
    .unwrap();
    let model: Arc<dyn Model> =
        Arc::new(ScriptedModel::new("target", answerer).with_capabilities(caps));
    let mut records = first_records(task, &[("target", model)], 8).await;
    for r in &records {
        assert!(r.scores["p_match"].is_number(), "{}: {:?}", r.id, r.scores);
    }
    let lettered = records.remove(7);
    assert_eq!(lettered.scores["kind"], "letter", "{:?}", lettered.scores);
    records.truncate(2);
    records.push(lettered);
    render_records(&records)
}

#[tokio::test]
async fn logprobs_with_every_capability() {
    let text = snapshot(scripted::all_capabilities()).await;
    insta::assert_snapshot!("traits_logprobs", text);
}

#[tokio::test]
async fn sampling_without_prefill_or_logprobs() {
    let mut caps = scripted::all_capabilities();
    caps.prefill = false;
    caps.max_top_logprobs = 0;
    caps.score_continuations = false;
    let text = snapshot(caps).await;
    insta::assert_snapshot!("traits_sampling", text);
}
