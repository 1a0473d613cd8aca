//! Snapshots of the requests of `decomposition/strategies` for the first question under
//! each strategy (few-shot, cot, cot-decomposition, factored): a wording change changes
//! results and misses the response cache, so it shows up here in review. With every
//! capability on (scoring path, early answering and adding mistakes) and without prefill
//! or logprobs (sampling path; adding mistakes needs prefill, so that run takes
//! `faithfulness=early`, as the refusal suggests).

use std::collections::BTreeMap;
use std::sync::Arc;

use shammie_core::{Capabilities, Completion, GenerateRequest, SampleRecord};
use shammie_engine::{Options, Task};
use shammie_models::Model;
use shammie_study_faithfulness::answer::{ANSWER_QUESTION, COT_PREFIX};
use shammie_study_faithfulness::decomposition::task::{build, DECOMP_PREFIX};
use shammie_testkit::prompts::render_records;
use shammie_testkit::scripted::{self, ScriptedModel};

use crate::harness::{self, answer, first_records, no_prefill_no_logprobs};

const TASK: &str = "decomposition/strategies";

fn task(opts: &[(&str, &str)]) -> Arc<dyn Task> {
    let map: BTreeMap<String, String> = opts
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    build(Options::new(TASK, map)).unwrap()
}

const SUB_Q: &str = "What do the two given amounts add up to?";

/// One reasoning unit (a sentence, or a sub-question with its answer), nothing more
/// when continuing a given partial reasoning; then (B).
fn target(req: &GenerateRequest) -> Completion {
    if !req.stop.iter().any(|s| s == ANSWER_QUESTION) {
        return answer(req);
    }
    let (decomposes, fresh) = match &req.prefill {
        Some(p) => (
            p.starts_with(DECOMP_PREFIX),
            p == COT_PREFIX || p == DECOMP_PREFIX,
        ),
        None => {
            let last = &req.messages.last().unwrap().content;
            (last.ends_with(DECOMP_PREFIX), true)
        }
    };
    match (decomposes, fresh) {
        (_, false) => scripted::text(""),
        (false, true) => {
            scripted::text(" The two given amounts add up to 12, which is choice (B).")
        }
        (true, true) => scripted::text(format!("\n<sub_q>{SUB_Q}</sub_q>\n<sub_a>12.</sub_a>")),
    }
}

fn decomposer(req: &GenerateRequest) -> Completion {
    let open = if req.prefill.is_some() { "" } else { "<sub_q>" };
    scripted::text(format!("{open}{SUB_Q}</sub_q>"))
}

fn subanswerer(_: &GenerateRequest) -> Completion {
    scripted::text("12.")
}

fn mistaker(req: &GenerateRequest) -> Completion {
    let open = if req.prefill.is_some() { "" } else { "<step>" };
    scripted::text(format!("{open}They add up to 13.</step>"))
}

fn models(caps: Capabilities) -> Vec<(&'static str, Arc<dyn Model>)> {
    vec![
        (
            "target",
            Arc::new(ScriptedModel::new("target", target).with_capabilities(caps)),
        ),
        (
            "decomposer",
            Arc::new(ScriptedModel::new("decomposer", decomposer).with_capabilities(caps)),
        ),
        (
            "subanswerer",
            Arc::new(ScriptedModel::new("subanswerer", subanswerer).with_capabilities(caps)),
        ),
        (
            "mistaker",
            Arc::new(ScriptedModel::new("mistaker", mistaker).with_capabilities(caps)),
        ),
    ]
}

fn strategies(records: &[SampleRecord]) -> Vec<&str> {
    records
        .iter()
        .map(|r| r.scores["strategy"].as_str().unwrap())
        .collect()
}

/// One snapshot per strategy (`{prefix}_few_shot`, …), so a change shows where it is.
fn snapshot_each(prefix: &str, records: &[SampleRecord]) {
    for (r, s) in records.iter().zip(strategies(records)) {
        let name = format!("{prefix}_{}", s.replace('-', "_"));
        insta::assert_snapshot!(name, render_records(std::slice::from_ref(r)));
    }
}

#[tokio::test]
async fn scoring_with_every_capability() {
    let records = first_records(task(&[]), &models(scripted::all_capabilities()), 4).await;
    assert_eq!(
        strategies(&records),
        ["few-shot", "cot", "cot-decomposition", "factored"]
    );
    for r in &records {
        assert_eq!(r.scores["original"], 1, "{}", r.id);
    }
    for r in &records[1..] {
        assert_eq!(r.scores["units"], 1, "{}", r.id);
        assert!(
            r.scores["mistakes"][0]["skipped"].is_null(),
            "{:?}",
            r.scores
        );
    }
    snapshot_each("strategies_scoring", &records);
}

#[tokio::test]
async fn sampling_without_prefill_or_logprobs() {
    let caps = no_prefill_no_logprobs();
    let e = harness::check(&*task(&[]), &models(caps))
        .unwrap_err()
        .to_string();
    assert!(e.contains("--set faithfulness=early"), "{e}");
    let records = first_records(task(&[("faithfulness", "early")]), &models(caps), 4).await;
    assert_eq!(
        strategies(&records),
        ["few-shot", "cot", "cot-decomposition", "factored"]
    );
    for r in &records {
        assert_eq!(r.scores["original"], 1, "{}", r.id);
    }
    snapshot_each("strategies_sampling", &records);
}
