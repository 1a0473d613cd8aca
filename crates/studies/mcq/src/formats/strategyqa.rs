//! StrategyQA: `{qid, question, answer: true/false, …}` as Yes/No.

use serde_json::Value;

use super::{id_of, text, yes_no, Obj, Row};

pub(super) fn strategyqa(o: &Obj, ordinal: usize) -> Result<Row, String> {
    let question = text(o, "question")?;
    let yes = match o.get("answer") {
        None | Some(Value::Null) => {
            return Err("missing field `answer` (the StrategyQA test split has no answers)".into())
        }
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" => true,
            "false" | "no" => false,
            _ => return Err(format!("`answer` must be true or false, got `{s}`")),
        },
        Some(other) => return Err(format!("`answer` must be true or false, got {other}")),
    };
    Ok(Row::Question {
        id: id_of(o, &["qid", "id"], ordinal)?,
        question,
        choices: yes_no(),
        answer: if yes { 0 } else { 1 },
    })
}

#[cfg(test)]
mod tests {
    use crate::formats::test_support::{choices, err, ok};
    use crate::formats::Format;

    #[test]
    fn strategyqa() {
        let text = r#"[{"qid": "abc1", "term": "Sun", "question": "Is the sun hot?", "answer": true, "facts": []},
 {"qid": "abc2", "question": "Is ice hot?", "answer": false}]"#;
        let l = ok("strategyqa_train.json", text, None);
        assert_eq!(l.format, Format::StrategyQa);
        assert_eq!(choices(&l.questions[0]), ["Yes", "No"]);
        assert_eq!((l.questions[0].answer, l.questions[1].answer), (0, 1));
        assert_eq!(l.questions[1].id, "abc2");
        let bad = text.replace(", \"answer\": false", "");
        assert_eq!(
            err("s.json", &bad, None),
            "FILE:2: missing field `answer` (the StrategyQA test split has no answers)"
        );
    }
}
