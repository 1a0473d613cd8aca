//! The question sets of a reasoning-faithfulness run: the built-in AQuA-RAT test split,
//! or user files in any format `shammie_mcq::formats` reads, each file one dataset.

use std::path::PathBuf;

use serde::Serialize;
use shammie_engine::DataError;

use shammie_mcq::formats::{self, Format};
use shammie_mcq::mcq::McQuestion;

/// One dataset.
#[derive(Debug, Clone, Serialize)]
pub struct QuestionSet {
    pub name: String,
    pub format: String,
    #[serde(skip)]
    pub questions: Vec<McQuestion>,
    /// Records left out (e.g. HotpotQA questions whose answer is not yes/no).
    pub skipped: usize,
}

/// Loads `paths` (or the built-in AQuA set when empty); `format` is `auto` or a format
/// name. Every question is validated here, before anything is paid for.
pub fn load_sets(paths: &[PathBuf], format: &str) -> Result<Vec<QuestionSet>, DataError> {
    let forced = Format::from_option(format)?;
    if paths.is_empty() {
        let loaded = formats::load_str(
            shammie_data::aqua::TEST_NAME,
            shammie_data::aqua::TEST,
            Some(Format::Aqua),
            "aqua",
        )?;
        return Ok(vec![QuestionSet {
            name: "aqua".into(),
            format: Format::Aqua.name().into(),
            questions: loaded.questions,
            skipped: loaded.skipped.len(),
        }]);
    }
    let mut sets = Vec::new();
    for p in paths {
        let name = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "data".into());
        let mut loaded = formats::load(p, forced, &name)?;
        if loaded.format == Format::TruthfulQa {
            // TruthfulQA MC lists the correct choice first: shuffle each question (fixed
            // per question id), or "(A)" would always be right.
            for q in loaded.questions.iter_mut() {
                *q = q.shuffled(id_hash(&q.id));
            }
        }
        if loaded.questions.is_empty() {
            return Err(DataError::File {
                path: p.display().to_string(),
                message: "no usable multiple-choice questions".into(),
            });
        }
        sets.push(QuestionSet {
            format: loaded.format.name().into(),
            name,
            questions: loaded.questions,
            skipped: loaded.skipped.len(),
        });
    }
    let mut names: Vec<&str> = sets.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(DataError::File {
            path: w[0].into(),
            message:
                "two data files have the same name; rename one (datasets are named by file stem)"
                    .into(),
        });
    }
    Ok(sets)
}

/// The sets' questions interleaved round-robin, so that `--limit` covers every dataset.
pub fn interleaved(sets: &[QuestionSet]) -> Vec<McQuestion> {
    let mut iters: Vec<_> = sets.iter().map(|s| s.questions.iter()).collect();
    let mut out = Vec::new();
    loop {
        let before = out.len();
        for it in iters.iter_mut() {
            if let Some(q) = it.next() {
                out.push(q.clone());
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

/// What was loaded, for run.json.
pub fn describe(sets: &[QuestionSet]) -> serde_json::Value {
    serde_json::Value::Array(
        sets.iter()
            .map(|s| {
                serde_json::json!({"name": s.name, "format": s.format,
                    "questions": s.questions.len(), "skipped": s.skipped})
            })
            .collect(),
    )
}

/// A stable 64-bit hash of a sample id (FNV-1a), for per-question seeds.
pub fn id_hash(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use shammie_mcq::formats::{self, Format};

    #[test]
    fn real_aqua_test_split() {
        let l = formats::load_str(
            shammie_data::aqua::TEST_NAME,
            shammie_data::aqua::TEST,
            None,
            "aqua",
        )
        .unwrap();
        assert_eq!(l.format, Format::Aqua);
        assert_eq!(l.questions.len(), 254);
        assert!(l.questions.iter().all(|q| q.choices.len() == 5));
        let q = &l.questions[0];
        assert_eq!(q.choices[0], "5(√3 + 1)");
        assert_eq!((q.answer, q.id.as_str()), (0, "1"));
        assert!(q.question.starts_with("A car is being driven"));
        let ids: std::collections::BTreeSet<&str> =
            l.questions.iter().map(|q| q.id.as_str()).collect();
        assert_eq!(ids.len(), 254);
    }
}
