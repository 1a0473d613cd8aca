//! Decision prompts in the format of the released discrim-eval files (`explicit.jsonl`,
//! `implicit.jsonl`): one JSON object a line with `filled_template`,
//! `decision_question_id`, `age`, `gender`, `race` and `fill_type`.
//!
//! Labels are read case-insensitively and normalised to the paper's spelling; anything
//! else (an unknown race, an age that is not a number, a missing field, a question with a
//! single prompt) is an error naming the file and line. A file has one row per
//! demographic cell of a question: a second row with the same (`decision_question_id`,
//! `fill_type`, `age`, `gender`, `race`), in any of the files of a run, is an error at its
//! line.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use shammie_engine::DataError;

use shammie_kit::jsonl::Origin;
use shammie_kit::records::check_prompt_size;

/// The age grid of the paper: 20, 30, …, 100.
pub const AGES: [u32; 9] = [20, 30, 40, 50, 60, 70, 80, 90, 100];
/// The reference age of the mixed-effects model.
pub const REFERENCE_AGE: f64 = 60.0;

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum Gender {
    #[default]
    #[serde(rename = "male")]
    Male,
    #[serde(rename = "female")]
    Female,
    #[serde(rename = "non-binary")]
    NonBinary,
}

impl Gender {
    pub const ALL: [Gender; 3] = [Gender::Male, Gender::Female, Gender::NonBinary];
    pub fn label(self) -> &'static str {
        match self {
            Gender::Male => "male",
            Gender::Female => "female",
            Gender::NonBinary => "non-binary",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        let t = s.trim().to_ascii_lowercase().replace(['_', ' '], "-");
        match t.as_str() {
            "male" => Some(Gender::Male),
            "female" => Some(Gender::Female),
            "non-binary" | "nonbinary" => Some(Gender::NonBinary),
            _ => None,
        }
    }
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum Race {
    #[default]
    #[serde(rename = "white")]
    White,
    #[serde(rename = "Black")]
    Black,
    #[serde(rename = "Asian")]
    Asian,
    #[serde(rename = "Hispanic")]
    Hispanic,
    #[serde(rename = "Native American")]
    NativeAmerican,
}

impl Race {
    pub const ALL: [Race; 5] = [
        Race::White,
        Race::Black,
        Race::Asian,
        Race::Hispanic,
        Race::NativeAmerican,
    ];
    pub fn label(self) -> &'static str {
        match self {
            Race::White => "white",
            Race::Black => "Black",
            Race::Asian => "Asian",
            Race::Hispanic => "Hispanic",
            Race::NativeAmerican => "Native American",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        let t = s.trim().to_ascii_lowercase().replace(['_', '-'], " ");
        match t.as_str() {
            "white" => Some(Race::White),
            "black" => Some(Race::Black),
            "asian" => Some(Race::Asian),
            "hispanic" => Some(Race::Hispanic),
            "native american" => Some(Race::NativeAmerican),
            _ => None,
        }
    }
}

/// One decision prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRow {
    pub filled_template: String,
    /// The scenario; a string so that ids of any released or generated file fit.
    pub decision_question_id: String,
    pub age: f64,
    pub gender: Gender,
    pub race: Race,
    /// `explicit` or `implicit` (or whatever the file says).
    pub fill_type: String,
}

impl DecisionRow {
    /// The row as a line of the released format.
    pub fn to_official_json(&self) -> Value {
        let id: Value = match self.decision_question_id.parse::<i64>() {
            Ok(n) => n.into(),
            Err(_) => self.decision_question_id.clone().into(),
        };
        serde_json::json!({
            "filled_template": self.filled_template,
            "decision_question_id": id,
            "age": self.age,
            "gender": self.gender.label(),
            "race": self.race.label(),
            "fill_type": self.fill_type,
        })
    }
}

/// Reads a question id (number or string).
pub fn question_id(v: Option<&Value>) -> Result<String, String> {
    match v {
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Some(other) => Err(format!(
            "`decision_question_id` must be a number or a string, got {other}"
        )),
        None => Err("missing field `decision_question_id`".into()),
    }
}

/// Reads an age (a number, or a string holding one).
pub fn age(v: Option<&Value>) -> Result<f64, String> {
    let a = match v {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        None => return Err("missing field `age`".into()),
        _ => None,
    };
    match a {
        Some(a) if a.is_finite() && (0.0..=150.0).contains(&a) => Ok(a),
        _ => Err(format!(
            "`age` must be a number of years, got {}",
            v.unwrap()
        )),
    }
}

pub fn gender(v: Option<&Value>) -> Result<Gender, String> {
    let s = v
        .ok_or("missing field `gender`")?
        .as_str()
        .ok_or("`gender` must be a string")?;
    Gender::parse(s)
        .ok_or_else(|| format!("unknown gender `{s}`; expected one of: male, female, non-binary"))
}

pub fn race(v: Option<&Value>) -> Result<Race, String> {
    let s = v
        .ok_or("missing field `race`")?
        .as_str()
        .ok_or("`race` must be a string")?;
    Race::parse(s).ok_or_else(|| {
        format!(
            "unknown race `{s}`; expected one of: white, Black, Asian, Hispanic, Native American"
        )
    })
}

/// Parses one line of the released format.
pub fn parse_row(v: &Value) -> Result<DecisionRow, String> {
    let o = v.as_object().ok_or("expected a JSON object")?;
    let filled_template = match o.get("filled_template") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::String(_)) => return Err("`filled_template` is empty".into()),
        Some(_) => return Err("`filled_template` must be a string".into()),
        None => return Err("missing field `filled_template`".into()),
    };
    check_prompt_size(filled_template.len())?;
    let fill_type = match o.get("fill_type") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        Some(_) => return Err("`fill_type` must be a non-empty string".into()),
        None => return Err("missing field `fill_type`".into()),
    };
    Ok(DecisionRow {
        filled_template,
        decision_question_id: question_id(o.get("decision_question_id"))?,
        age: age(o.get("age"))?,
        gender: gender(o.get("gender"))?,
        race: race(o.get("race"))?,
        fill_type,
    })
}

/// A decision file and a short name for it (its stem).
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub origin: Origin,
}

/// A `.jsonl` file, or every `.jsonl` file in a folder (e.g. `explicit.jsonl` and
/// `implicit.jsonl` side by side), sorted by name.
pub fn sources(path: &Path) -> Result<Vec<Source>, DataError> {
    let err = |m: String| DataError::File {
        path: path.display().to_string(),
        message: m,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let files = if meta.is_dir() {
        let mut v: Vec<_> = std::fs::read_dir(path)
            .map_err(|e| err(format!("cannot list: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        v.sort();
        if v.is_empty() {
            return Err(err("no .jsonl files in this folder".into()));
        }
        v
    } else {
        vec![path.to_path_buf()]
    };
    Ok(files
        .into_iter()
        .map(|p| Source {
            name: p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            origin: Origin::File(p),
        })
        .collect())
}

/// Validates a whole source: every line parses, and every question has at least two
/// prompts (a question with one prompt says nothing about any demographic). Returns the
/// rows with their line numbers.
pub fn read_all(src: &Source) -> Result<Vec<(u64, DecisionRow)>, DataError> {
    let mut lines = src.origin.lines()?;
    let mut rows = Vec::new();
    while let Some(line) = lines.next() {
        let (ln, v) = line?;
        let row = parse_row(&v).map_err(|m| lines.error(ln, m))?;
        rows.push((ln, row));
    }
    check_question_sizes(&src.origin.display(), rows.iter().map(|(ln, r)| (*ln, r)))?;
    Ok(rows)
}

/// Every `(fill_type, question)` must have at least two rows.
pub fn check_question_sizes<'a>(
    path: &str,
    rows: impl Iterator<Item = (u64, &'a DecisionRow)>,
) -> Result<(), DataError> {
    let mut first: BTreeMap<(&str, &str), (u64, usize)> = BTreeMap::new();
    for (ln, r) in rows {
        let e = first
            .entry((r.fill_type.as_str(), r.decision_question_id.as_str()))
            .or_insert((ln, 0));
        e.1 += 1;
    }
    if let Some(((_, q), (ln, _))) = first.iter().find(|(_, (_, n))| *n < 2) {
        return Err(DataError::Line {
            path: path.to_string(),
            line: *ln,
            message: format!(
                "decision_question_id {q} has a single prompt; a question needs prompts for \
                 at least two demographic profiles to be compared"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row() -> Value {
        json!({"filled_template": "Should we? ", "decision_question_id": 3, "age": 20.0,
               "gender": "female", "race": "Native American", "fill_type": "explicit"})
    }

    #[test]
    fn parses_the_released_format() {
        let r = parse_row(&row()).unwrap();
        assert_eq!(r.decision_question_id, "3");
        assert_eq!(r.age, 20.0);
        assert_eq!(r.gender, Gender::Female);
        assert_eq!(r.race, Race::NativeAmerican);
        assert_eq!(r.to_official_json(), row());
    }

    #[test]
    fn a_prompt_over_the_size_limit_is_refused() {
        let mut r = row();
        r["filled_template"] = json!("x".repeat(1 << 20));
        assert!(parse_row(&r).is_ok());
        r["filled_template"] = json!("x".repeat(50 << 20));
        assert_eq!(
            parse_row(&r).unwrap_err(),
            "the prompt text is 52428800 bytes, over the limit of 1048576 bytes (1 MiB) for one record"
        );
    }

    #[test]
    fn labels_are_case_insensitive_and_round_trip() {
        for g in Gender::ALL {
            assert_eq!(Gender::parse(&g.label().to_uppercase()), Some(g));
        }
        for r in Race::ALL {
            assert_eq!(Race::parse(&r.label().to_lowercase()), Some(r));
        }
        assert_eq!(Race::parse("native_american"), Some(Race::NativeAmerican));
        assert_eq!(Gender::parse("nonbinary"), Some(Gender::NonBinary));
    }

    #[test]
    fn bad_rows_say_what_is_wrong() {
        let cases = [
            ("race", json!("Martian"), "unknown race `Martian`"),
            ("age", json!("old"), "`age` must be a number"),
            ("gender", json!(7), "`gender` must be a string"),
            (
                "decision_question_id",
                json!(null),
                "must be a number or a string",
            ),
        ];
        for (k, v, want) in cases {
            let mut r = row();
            r[k] = v;
            let e = parse_row(&r).unwrap_err();
            assert!(e.contains(want), "{k}: {e}");
        }
        let mut r = row();
        r.as_object_mut().unwrap().remove("filled_template");
        assert_eq!(
            parse_row(&r).unwrap_err(),
            "missing field `filled_template`"
        );
        assert_eq!(
            parse_row(&json!({"x": 1})).unwrap_err(),
            "missing field `filled_template`"
        );
    }
}
