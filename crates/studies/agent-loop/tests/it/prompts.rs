//! Snapshots of the requests of the first episodes, as the target sees them: with
//! native tool calling (every capability on, `actions=auto` picks it) and with text-tag
//! actions (a model without native tools). A wording change shows up here in review.

use std::collections::BTreeMap;
use std::sync::Arc;

use shammie_core::{Completion, GenerateRequest};
use shammie_engine::{Options, Task};
use shammie_kit::testing::first_records;
use shammie_models::Model;
use shammie_study_agent_loop::problems;
use shammie_testkit::prompts::render_records;
use shammie_testkit::scripted::{self, ScriptedModel};

const TASK: &str = "agent-loop/arithmetic";

fn default_task() -> Arc<dyn Task> {
    shammie_study_agent_loop::build(Options::new(TASK, BTreeMap::new())).unwrap()
}

/// The expression of the problem the episode is about (its last `Problem:` turn; the
/// worked example comes first).
fn expression(req: &GenerateRequest) -> String {
    let stated = req
        .messages
        .iter()
        .rev()
        .find(|m| m.content.starts_with("Problem: "))
        .expect("a problem turn");
    problems::builtin()
        .into_iter()
        .find(|p| stated.content == format!("Problem: {}", p.question))
        .expect("a built-in problem")
        .expression
}

/// A model that calls the calculator once, then answers with what it returned: natively
/// when it is offered tools, else with tags.
fn solver(req: &GenerateRequest) -> Completion {
    let last = req.messages.last().unwrap();
    let answered = last.tool_result.is_some() || last.content.starts_with("<output");
    match (answered, req.tools.is_empty()) {
        (false, false) => scripted::tool_calls(
            "",
            &[("calc", serde_json::json!({ "expression": expression(req) }))],
        ),
        (false, true) => scripted::text(format!("<calc>{}</calc>", expression(req))),
        (true, _) => {
            let result = last
                .content
                .trim_start_matches("<output exit_status=\"0\">")
                .trim_end_matches("</output>");
            scripted::text(format!("<answer>{result}</answer>"))
        }
    }
}

#[tokio::test]
async fn native_tool_calls_with_every_capability() {
    let model: Arc<dyn Model> = Arc::new(ScriptedModel::new("target", solver));
    let records = first_records(default_task(), &[("target", model)], 2).await;
    for r in &records {
        assert_eq!(r.scores["correct"], true, "{}", r.id);
    }
    insta::assert_snapshot!("arithmetic_native", render_records(&records));
}

#[tokio::test]
async fn text_tags_without_native_tools() {
    let mut caps = scripted::all_capabilities();
    caps.native_tools = false;
    caps.prefill = false;
    caps.max_top_logprobs = 0;
    caps.score_continuations = false;
    let model: Arc<dyn Model> =
        Arc::new(ScriptedModel::new("target", solver).with_capabilities(caps));
    let records = first_records(default_task(), &[("target", model)], 2).await;
    for r in &records {
        assert_eq!(r.scores["correct"], true, "{}", r.id);
    }
    insta::assert_snapshot!("arithmetic_tags", render_records(&records));
}
