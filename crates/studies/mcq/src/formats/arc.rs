//! ARC and OpenBookQA, in the AI2 shape `{id, question: {stem, choices: [{text,
//! label}]}, answerKey}` or the Hugging Face shape `{id, question` or `question_stem,
//! choices: {text: […], label: […]}, answerKey}`.

use serde_json::Value;

use super::{field, id_of, opt_text, text, text_list, too_many, Obj, Row};

pub(super) fn arc(o: &Obj, ordinal: usize) -> Result<Row, String> {
    let (question, labels, texts) = match o.get("question") {
        Some(Value::Object(q)) => {
            // AI2: {"question": {"stem", "choices": [{"text", "label"}]}}
            let stem = text(q, "stem").map_err(|e| e.replace("`stem`", "`question.stem`"))?;
            let list = field(q, "choices")
                .map_err(|_| "missing field `question.choices`".to_string())?
                .as_array()
                .ok_or("`question.choices` must be an array of {text, label}")?;
            let mut labels = Vec::new();
            let mut texts = Vec::new();
            for (i, c) in list.iter().enumerate() {
                let c = c.as_object().ok_or_else(|| {
                    format!(
                        "`question.choices` item {} must be an object {{text, label}}",
                        i + 1
                    )
                })?;
                texts.push(text(c, "text").map_err(|e| format!("choice {}: {e}", i + 1))?);
                labels.push(text(c, "label").map_err(|e| format!("choice {}: {e}", i + 1))?);
            }
            (stem, labels, texts)
        }
        _ => {
            // Hugging Face: {"question" or "question_stem", "choices": {"text", "label"}}
            let question = match (opt_text(o, "question")?, opt_text(o, "question_stem")?) {
                (Some(q), _) | (None, Some(q)) => q,
                (None, None) => return Err("missing field `question` (or `question_stem`)".into()),
            };
            let ch = field(o, "choices")?
                .as_object()
                .ok_or("`choices` must be an object {text: […], label: […]}")?;
            let texts = text_list(
                field(ch, "text").map_err(|_| "missing field `choices.text`")?,
                "choices.text",
            )?;
            let labels = text_list(
                field(ch, "label").map_err(|_| "missing field `choices.label`")?,
                "choices.label",
            )?;
            if texts.len() != labels.len() {
                return Err(format!(
                    "`choices.text` has {} items but `choices.label` has {}",
                    texts.len(),
                    labels.len()
                ));
            }
            (question, labels, texts)
        }
    };
    too_many(texts.len(), "choices")?;
    for (i, l) in labels.iter().enumerate() {
        if labels[..i]
            .iter()
            .any(|m| m.trim().eq_ignore_ascii_case(l.trim()))
        {
            return Err(format!("the choice label `{l}` appears twice"));
        }
    }
    let key = text(o, "answerKey")?;
    let answer = labels
        .iter()
        .position(|l| l.trim().eq_ignore_ascii_case(key.trim()))
        .ok_or_else(|| {
            format!(
                "`answerKey` `{}` is not one of the choice labels ({})",
                key.trim(),
                labels.join(", ")
            )
        })?;
    Ok(Row::Question {
        id: id_of(o, &["id"], ordinal)?,
        question,
        choices: texts,
        answer,
    })
}

#[cfg(test)]
mod tests {
    use crate::formats::test_support::{choices, err, ok};
    use crate::formats::Format;

    #[test]
    fn arc_and_openbookqa() {
        let ai2 = r#"{"id": "Mercury_1", "question": {"stem": "Which is a gas?", "choices": [{"text": "ice", "label": "A"}, {"text": "steam", "label": "B"}, {"text": "rock", "label": "C"}]}, "answerKey": "B"}
{"id": "Mercury_2", "question": {"stem": "Pick three.", "choices": [{"text": "one", "label": "1"}, {"text": "two", "label": "2"}, {"text": "three", "label": "3"}, {"text": "four", "label": "4"}]}, "answerKey": "3"}
"#;
        let l = ok("ARC-Challenge-Test.jsonl", ai2, None);
        assert_eq!(l.format, Format::Arc);
        assert_eq!(choices(&l.questions[0]), ["ice", "steam", "rock"]);
        assert_eq!((l.questions[0].answer, l.questions[1].answer), (1, 2));
        assert_eq!(l.questions[1].id, "Mercury_2");
        let bad = ai2.replace("\"answerKey\": \"3\"", "\"answerKey\": \"5\"");
        assert_eq!(
            err("arc.jsonl", &bad, None),
            "FILE:2: `answerKey` `5` is not one of the choice labels (1, 2, 3, 4)"
        );

        let hf = r#"{"id": "x1", "question": "Which is a gas?", "choices": {"text": ["ice", "steam"], "label": ["A", "B"]}, "answerKey": "A"}
{"id": "7-980", "question_stem": "The sun is", "choices": {"text": ["cold", "hot", "blue", "small"], "label": ["A", "B", "C", "D"]}, "answerKey": "B"}
"#;
        let l = ok("obqa.jsonl", hf, None);
        assert_eq!(l.format, Format::Arc);
        assert_eq!((l.questions[0].answer, l.questions[1].answer), (0, 1));
        assert_eq!(l.questions[1].question, "The sun is");
        let bad = hf.replace("\"label\": [\"A\", \"B\"]", "\"label\": [\"A\"]");
        assert_eq!(
            err("obqa.jsonl", &bad, None),
            "FILE:1: `choices.text` has 2 items but `choices.label` has 1"
        );
        let bad = ai2.replace("\"stem\": \"Pick three.\", ", "");
        assert_eq!(
            err("arc.jsonl", &bad, None),
            "FILE:2: missing field `question.stem`"
        );
    }
}
