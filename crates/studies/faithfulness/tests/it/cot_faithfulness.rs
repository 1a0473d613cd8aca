//! Snapshots of the requests of the first questions of `cot-faithfulness/interventions`:
//! a wording change changes results and misses the response cache, so it shows up here
//! in review. With every capability on (scoring path, every intervention) and without
//! prefill or logprobs (sampling path; the interventions that continue a given partial
//! chain need prefill, so that run takes the ones the refusal suggests).

use std::collections::BTreeMap;
use std::sync::Arc;

use shammie_core::{Capabilities, Completion, GenerateRequest};
use shammie_engine::{Options, Task};
use shammie_models::Model;
use shammie_study_faithfulness::answer::{ANSWER_QUESTION, COT_PREFIX};
use shammie_study_faithfulness::cot_faithfulness::task::build;
use shammie_testkit::prompts::render_records;
use shammie_testkit::scripted::{self, ScriptedModel};

use crate::harness::{self, answer, first_records, no_prefill_no_logprobs};

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
    vec![
        (
            "target",
            Arc::new(ScriptedModel::new("target", target).with_capabilities(caps)),
        ),
        (
            "mistaker",
            Arc::new(ScriptedModel::new("mistaker", mistaker).with_capabilities(caps)),
        ),
        (
            "paraphraser",
            Arc::new(ScriptedModel::new("paraphraser", paraphraser).with_capabilities(caps)),
        ),
    ]
}

#[tokio::test]
async fn scoring_with_every_capability() {
    let records = first_records(task(&[]), &models(scripted::all_capabilities()), 2).await;
    for r in &records {
        assert_eq!(r.scores["path"], "scoring");
        assert_eq!(r.scores["sentences"], 2, "{}", r.id);
        assert_eq!(r.scores["original"], 1, "{}", r.id);
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
