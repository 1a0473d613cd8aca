//! TruthfulQA mc1: `mc_task.json` (an array of `{question, mc1_targets: {choice text: 0
//! or 1}}`, choices kept in file order) or the Hugging Face shape `{question,
//! mc1_targets: {choices: […], labels: […]}}`; exactly one choice must be correct.

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::{field, id_of, text, text_list, too_many, Obj, Row};

/// A JSON object's entries in file order (serde_json's `Map` sorts its keys).
struct Entries(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Entries, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = a.next_entry::<String, Value>()? {
                    out.push(entry);
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Deserialize)]
struct TruthfulQaOrder {
    mc1_targets: Entries,
}

fn zero_one(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_f64() {
            Some(0.0) => Some(false),
            Some(1.0) => Some(true),
            _ => None,
        },
        _ => None,
    }
}

pub(super) fn truthfulqa(o: &Obj, raw: &str, ordinal: usize) -> Result<Row, String> {
    let question = text(o, "question")?;
    let targets = field(o, "mc1_targets")?
        .as_object()
        .ok_or("`mc1_targets` must be an object")?;
    let hf = targets.get("choices").is_some_and(Value::is_array)
        && targets.get("labels").is_some_and(Value::is_array);
    let (choices, correct): (Vec<String>, Vec<bool>) = if hf {
        let choices = text_list(&targets["choices"], "mc1_targets.choices")?;
        let labels = targets["labels"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if labels.len() != choices.len() {
            return Err(format!(
                "`mc1_targets.choices` has {} items but `mc1_targets.labels` has {}",
                choices.len(),
                labels.len()
            ));
        }
        let correct = labels
            .iter()
            .map(|l| {
                zero_one(l).ok_or_else(|| format!("`mc1_targets.labels` must be 0 or 1, got {l}"))
            })
            .collect::<Result<_, _>>()?;
        (choices, correct)
    } else {
        // The original mc_task.json: choice text → 0/1, in file order.
        let order: TruthfulQaOrder =
            serde_json::from_str(raw).map_err(|e| format!("`mc1_targets`: {e}"))?;
        let mut choices = Vec::new();
        let mut correct = Vec::new();
        for (k, v) in order.mc1_targets.0 {
            correct.push(zero_one(&v).ok_or_else(|| {
                format!("`mc1_targets` values must be 0 or 1, got {v} for `{k}`")
            })?);
            choices.push(k);
        }
        (choices, correct)
    };
    too_many(choices.len(), "choices")?;
    let marked: Vec<usize> = (0..correct.len()).filter(|&i| correct[i]).collect();
    if marked.len() != 1 {
        return Err(format!(
            "`mc1_targets` must mark exactly one choice correct (1), it marks {}",
            marked.len()
        ));
    }
    Ok(Row::Question {
        id: id_of(o, &["id"], ordinal)?,
        question,
        choices,
        answer: marked[0],
    })
}

#[cfg(test)]
mod tests {
    use crate::formats::test_support::{choices, err, ok};
    use crate::formats::Format;

    #[test]
    fn truthfulqa_original_and_hf() {
        // Pretty-printed like mc_task.json; choices keep the file's order.
        let text = r#"[
  {
    "question": "What is the capital of France?",
    "mc1_targets": {"Paris": 1, "Lyon": 0, "Berlin": 0},
    "mc2_targets": {"Paris": 1, "Lyon": 0, "Berlin": 0}
  },
  {
    "question": "Is the sky green?",
    "mc1_targets": {
      "No": 1,
      "Yes": 0
    }
  }
]
"#;
        let l = ok("mc_task.json", text, None);
        assert_eq!(l.format, Format::TruthfulQa);
        assert_eq!(choices(&l.questions[0]), ["Paris", "Lyon", "Berlin"]);
        assert_eq!(
            (l.questions[0].answer, l.questions[1].id.as_str()),
            (0, "2")
        );
        let bad = text.replace("\"Yes\": 0", "\"Yes\": 1");
        assert_eq!(
            err("mc_task.json", &bad, None),
            "FILE:7: `mc1_targets` must mark exactly one choice correct (1), it marks 2"
        );
        let bad = text.replace("\"Yes\": 0", "\"Yes\": 2");
        assert_eq!(
            err("mc_task.json", &bad, None),
            "FILE:7: `mc1_targets` values must be 0 or 1, got 2 for `Yes`"
        );

        let hf = r#"{"question": "Q?", "mc1_targets": {"choices": ["wrong", "right"], "labels": [0, 1]}, "mc2_targets": {"choices": [], "labels": []}}
{"question": "Q2?", "mc1_targets": {"choices": ["a", "b"], "labels": [0, 0]}}
"#;
        assert_eq!(
            err("tqa.jsonl", hf, None),
            "FILE:2: `mc1_targets` must mark exactly one choice correct (1), it marks 0"
        );
        let l = ok("tqa.jsonl", &hf.replace("[0, 0]", "[1, 0]"), None);
        assert_eq!((l.questions[0].answer, l.questions[1].answer), (1, 0));
    }
}
