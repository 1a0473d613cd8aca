//! Running the first samples of a task through the engine with scripted models.

use std::sync::Arc;

use shammie_core::{Capabilities, Completion, GenerateRequest};
use shammie_engine::{EngineError, Models, Task};
pub(crate) use shammie_kit::testing::first_records;
use shammie_models::Model;
use shammie_testkit::scripted::{self, ScriptedModel};

/// The answer letter every scripted target prefers.
pub(crate) const LETTER: &str = "B";

/// Every capability but prefill, logprobs and continuation scoring: the sampling path.
pub(crate) fn no_prefill_no_logprobs() -> Capabilities {
    let mut caps = scripted::all_capabilities();
    caps.prefill = false;
    caps.max_top_logprobs = 0;
    caps.score_continuations = false;
    caps
}

/// A target's answer to an answer request (one that asks for the letter): scores for
/// each choice letter, a top-k list, or a sampled letter, (B) the most likely.
pub(crate) fn answer(req: &GenerateRequest) -> Completion {
    if req.is_scoring() {
        let lp: Vec<f64> = (0..req.continuations.len())
            .map(|i| if i == 1 { 0.6f64.ln() } else { 0.05f64.ln() })
            .collect();
        return scripted::scores(&lp);
    }
    if req.top_logprobs.is_some() {
        return scripted::top_k(&[(LETTER, 0.6), ("A", 0.2)]);
    }
    if req.prefill.is_some() {
        scripted::text(format!("{LETTER})"))
    } else {
        scripted::text(format!("({LETTER})"))
    }
}

/// How a scripted model answers a request.
pub(crate) type Script = fn(&GenerateRequest) -> Completion;

/// Scripted models, one per role, each answering with its function and having `caps`.
pub(crate) fn scripted_roles(
    caps: Capabilities,
    roles: &[(&'static str, Script)],
) -> Vec<(&'static str, Arc<dyn Model>)> {
    roles
        .iter()
        .map(|(role, f)| {
            let m: Arc<dyn Model> = Arc::new(ScriptedModel::new(role, *f).with_capabilities(caps));
            (*role, m)
        })
        .collect()
}

fn bound(task: &dyn Task, roles: &[(&str, Arc<dyn Model>)]) -> Models {
    Models::new(
        roles
            .iter()
            .map(|(r, m)| (r.to_string(), m.clone()))
            .collect(),
    )
    .resolve(&task.roles(), &format!("{}/{}", task.study(), task.name()))
    .unwrap()
}

/// Whether the task accepts these models (capabilities).
pub(crate) fn check(task: &dyn Task, roles: &[(&str, Arc<dyn Model>)]) -> Result<(), EngineError> {
    task.check_models(&bound(task, roles))
}
