//! What multi-stage studies share about trained models: where a lab stage records the
//! model it trained (`STAGE/model.json`, a [`Trained`]), how a later stage reads it back,
//! and how a map stage binds it to a role.

use std::collections::BTreeMap;

use shammie_engine::{DataError, RunView, StageOutput, Trained};

/// The artifact a training stage writes its [`Trained`] to.
pub fn model_artifact(stage: &str) -> String {
    format!("{stage}/model.json")
}

/// Records what `stage` trained.
pub fn write_trained(out: &mut StageOutput, stage: &str, t: &Trained) -> Result<(), String> {
    let bytes = serde_json::to_vec_pretty(t).expect("plain values");
    out.write(&model_artifact(stage), &bytes)?;
    Ok(())
}

/// What the training stage `stage` recorded.
pub fn trained(run: &RunView, stage: &str) -> Result<Trained, String> {
    let bytes = run
        .artifact(&model_artifact(stage))
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", model_artifact(stage)))
}

/// The spec of the model `role` is bound to in the run (`from` = `None`), or of the one
/// the training stage `from` produced.
pub fn spec(run: &RunView, role: &str, from: Option<&str>) -> Result<String, String> {
    match from {
        None => run
            .info()
            .models
            .get(role)
            .cloned()
            .ok_or_else(|| format!("the run has no {role} model")),
        Some(stage) => Ok(trained(run, stage)?.spec),
    }
}

/// A map stage's binding of `role` to the model the training stage `from` produced
/// (`me` names the binding stage in errors).
pub fn binding(
    run: &RunView,
    role: &str,
    from: &str,
    me: &str,
) -> Result<BTreeMap<String, String>, DataError> {
    let t = trained(run, from).map_err(|e| DataError::File {
        path: format!("stages/{me}"),
        message: e,
    })?;
    Ok(BTreeMap::from([(role.to_string(), t.spec)]))
}

/// A stable per-item seed from the run's seed and an item's name (FNV-1a over the name,
/// started from the seed): what a reduction draws an item's random choices from, so a
/// rerun after a kill draws the same.
pub fn item_seed(seed: u64, name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
