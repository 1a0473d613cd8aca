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

/// One finished record's scores as the study's struct, with the record's id and epoch.
#[derive(Debug, Clone)]
pub struct Scored<T> {
    pub id: String,
    pub epoch: u32,
    pub scores: T,
}

/// The scores of every record that finished, in log order, and how many failed (a failed
/// record has no scores; the analysis leaves it out and says so with [`failed_note`]).
pub fn collect<T: DeserializeOwned>(
    records: &mut dyn Iterator<Item = shammie_core::SampleRecord>,
) -> Result<(Vec<Scored<T>>, u64), String> {
    let mut out = Vec::new();
    let mut failed = 0u64;
    for r in records {
        if r.error.is_some() {
            failed += 1;
            continue;
        }
        let scores = from_scores(&r.id, r.scores)?;
        out.push(Scored {
            id: r.id,
            epoch: r.epoch,
            scores,
        });
    }
    Ok((out, failed))
}

/// The table note for `failed` samples left out (none when there are none).
pub fn failed_note(failed: u64) -> Option<String> {
    (failed > 0).then(|| {
        format!(
            "{failed} samples failed (provider errors) and are left out; `shammie resume --retry-failed` solves them again."
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct S {
        x: u32,
    }

    fn record(
        id: &str,
        epoch: u32,
        scores: Scores,
        error: Option<&str>,
    ) -> shammie_core::SampleRecord {
        shammie_core::SampleRecord {
            id: id.into(),
            epoch,
            input: serde_json::Value::Null,
            transcript: Default::default(),
            scores,
            usage: Default::default(),
            error: error.map(str::to_string),
            started_at: String::new(),
            duration_ms: 0,
        }
    }

    #[test]
    fn finished_records_are_read_and_failures_counted() {
        let mut rs = vec![
            record("a", 1, to_scores(&S { x: 1 }), None),
            record("b", 2, Scores::default(), Some("provider down")),
            record("c", 2, to_scores(&S { x: 3 }), None),
        ]
        .into_iter();
        let (all, failed) = collect::<S>(&mut rs).unwrap();
        assert_eq!(failed, 1);
        assert_eq!(
            all.iter()
                .map(|s| (s.id.as_str(), s.epoch, s.scores.x))
                .collect::<Vec<_>>(),
            [("a", 1, 1), ("c", 2, 3)]
        );
        assert!(failed_note(1).unwrap().starts_with("1 samples failed"));
        assert_eq!(failed_note(0), None);
        let mut bad = vec![record("d", 1, Scores::default(), None)].into_iter();
        let e = collect::<S>(&mut bad).unwrap_err();
        assert!(e.starts_with("sample d: unreadable scores"), "{e}");
    }
}
