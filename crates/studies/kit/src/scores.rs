//! A study's per-sample scores as a typed struct: written into the record's `Scores` map
//! and read back from it by the analysis.

use serde::{de::DeserializeOwned, Serialize};
use shammie_core::Scores;

/// The struct's fields as the record's scores (it must serialise to a JSON object).
pub fn to_scores<T: Serialize>(s: &T) -> Scores {
    match serde_json::to_value(s).expect("scores serialise") {
        serde_json::Value::Object(m) => m.into_iter().collect(),
        other => panic!("scores must serialise to an object, not {other}"),
    }
}

/// A record's scores (`r.scores`, taken out of sample `r.id`) as the study's struct, or
/// a message naming the sample.
pub fn from_scores<T: DeserializeOwned>(id: &str, scores: Scores) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::Object(scores.into_iter().collect()))
        .map_err(|e| format!("sample {id}: unreadable scores: {e}"))
}
