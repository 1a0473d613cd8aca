//! Snapshots of the requests the first samples send: a wording change changes results
//! and misses the response cache, so it shows up here in review. Default options on a
//! model that scores continuations (the paper's prompt, exact scoring), the instruction
//! prompt on the logprob path (prefill, top-k, no scoring), and the sampling path (no
//! prefill, no logprobs). Datasets are interleaved round-robin, so the first eight
//! samples are the first question of the first eight datasets: the first two (yes/no)
//! and the eighth (the first lettered one, read in both orders) are shown.

use std::collections::BTreeMap;
use std::sync::Arc;

use shammie_core::{Capabilities, Completion, GenerateRequest};
use shammie_engine::Options;
use shammie_kit::testing::first_records;
use shammie_models::Model;
use shammie_testkit::prompts::render_records;
use shammie_testkit::scripted::{self, ScriptedModel};

/// Answers "Yes" to yes/no questions and (A) to lettered ones: scores when asked to
/// score, a top-k list when asked for logprobs, else text (after the `(` prefill when
/// there is one).
pub(crate) fn answerer(req: &GenerateRequest) -> Completion {
    if req.is_scoring() {
        // The first form of the first label most likely, the rest less so.
        let lp: Vec<f64> = (0..req.continuations.len())
            .map(|i| if i == 0 { 0.5f64.ln() } else { 0.1f64.ln() })
            .collect();
        return scripted::scores(&lp);
    }
    let yes_no = !req.messages[0].content.contains("(A)");
    match (yes_no, req.top_logprobs.is_some(), req.prefill.is_some()) {
        (true, true, _) => scripted::top_k(&[("Yes", 0.6), ("No", 0.3)]),
        (false, true, _) => scripted::top_k(&[("A", 0.7), ("B", 0.2)]),
        (true, false, _) => scripted::text("Yes"),
        (false, false, true) => scripted::text("A)"),
        (false, false, false) => scripted::text("(A)"),
    }
}

async fn snapshot(caps: Capabilities, set: &[(&str, &str)]) -> String {
    let task = shammie_study_constitution::traits::build(Options::new(
        "constitution/traits",
        set.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
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
async fn the_papers_prompt_scored_exactly() {
    let text = snapshot(scripted::all_capabilities(), &[]).await;
    insta::assert_snapshot!("traits_scoring", text);
}

#[tokio::test]
async fn the_instruction_prompt_on_the_logprob_path() {
    let mut caps = scripted::all_capabilities();
    caps.score_continuations = false;
    let text = snapshot(caps, &[("prompt", "instruction")]).await;
    insta::assert_snapshot!("traits_logprobs_instruction", text);
}

#[tokio::test]
async fn sampling_without_prefill_or_logprobs() {
    let mut caps = scripted::all_capabilities();
    caps.prefill = false;
    caps.max_top_logprobs = 0;
    caps.score_continuations = false;
    let text = snapshot(caps, &[]).await;
    insta::assert_snapshot!("traits_sampling", text);
}
