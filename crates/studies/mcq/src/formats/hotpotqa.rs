//! HotpotQA: `{_id, question, answer, type, …}` as Yes/No; rows whose answer is not
//! yes/no are skipped and listed in [`super::Loaded::skipped`].

use serde_json::Value;
use shammie_kit::answers::{label_of, AnswerKind};

use super::{id_of, text, yes_no, Obj, Row};

pub(super) fn hotpotqa(o: &Obj, ordinal: usize) -> Result<Row, String> {
    let question = text(o, "question")?;
    let answer = match o.get("answer") {
        None | Some(Value::Null) => {
            return Err("missing field `answer` (the HotpotQA test split has no answers)".into())
        }
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => if *b { "yes" } else { "no" }.to_string(),
        Some(other) => return Err(format!("`answer` must be a string, got {other}")),
    };
    let yes = match label_of(AnswerKind::YesNo, &answer).as_deref() {
        Some("Yes") => true,
        Some(_) => false,
        None => {
            let shown: String = answer.chars().take(60).collect();
            let more = if answer.chars().count() > 60 {
                "…"
            } else {
                ""
            };
            return Ok(Row::Skip(format!(
                "answer `{shown}{more}` is not yes or no"
            )));
        }
    };
    Ok(Row::Question {
        id: id_of(o, &["_id", "id"], ordinal)?,
        question,
        choices: yes_no(),
        answer: if yes { 0 } else { 1 },
    })
}

#[cfg(test)]
mod tests {
    use crate::formats::test_support::{err, ok};
    use crate::formats::Format;

    #[test]
    fn hotpotqa_skips_open_answers() {
        let text = r#"[
 {"_id": "h1", "question": "Were both men American?", "answer": "yes", "type": "comparison", "level": "hard"},
 {"_id": "h2", "question": "Which city is bigger?", "answer": "Paris", "type": "comparison", "level": "easy"},
 {"_id": "h3", "question": "Is X older than Y?", "answer": "no", "type": "comparison", "level": "medium"}
]"#;
        let l = ok("hotpot_dev_distractor_v1.json", text, None);
        assert_eq!(l.format, Format::HotpotQa);
        assert_eq!(l.questions.len(), 2);
        assert_eq!((l.questions[0].answer, l.questions[1].answer), (0, 1));
        assert_eq!(l.questions[1].id, "h3");
        assert_eq!(
            l.skipped,
            vec![(3, "answer `Paris` is not yes or no".to_string())]
        );
        // JSON Lines work too.
        let jsonl = "{\"_id\": \"a\", \"question\": \"Q?\", \"answer\": \"No\"}\n{\"_id\": \"b\", \"question\": \"Q2?\", \"answer\": 3}\n";
        assert_eq!(
            err("h.jsonl", jsonl, None),
            "FILE:2: `answer` must be a string, got 3"
        );
    }
}
