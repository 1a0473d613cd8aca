//! Generic multiple-choice JSONL: `question`, `choices` (strings), `answer` (0-based
//! index, letter, or the exact text of a choice), optional `id`. MMLU's JSON shape is
//! read the same way.

use super::{field, flexible_answer, id_of, text, text_list, too_many, Obj, Row};

pub(super) fn generic(o: &Obj, ordinal: usize) -> Result<Row, String> {
    let question = text(o, "question")?;
    let choices = text_list(field(o, "choices")?, "choices")?;
    too_many(choices.len(), "choices")?;
    let answer = flexible_answer(field(o, "answer")?, "answer", &choices)?;
    Ok(Row::Question {
        id: id_of(o, &["id"], ordinal)?,
        question,
        choices,
        answer,
    })
}

#[cfg(test)]
mod tests {
    use crate::formats::test_support::{err, ok};
    use crate::formats::Format;

    #[test]
    fn generic_jsonl() {
        let text = r#"{"id": "a", "question": "Q1", "choices": ["x", "y", "z"], "answer": 2}
{"id": 7, "question": "Q2", "choices": ["x", "y"], "answer": "(B)"}
{"question": "Q3", "choices": ["red", "green"], "answer": "green"}
{"question": "Q4", "choices": ["A", "B"], "answer": "B"}
"#;
        let l = ok("g.jsonl", text, None);
        assert_eq!(l.format, Format::Generic);
        let got: Vec<(&str, usize)> = l
            .questions
            .iter()
            .map(|q| (q.id.as_str(), q.answer))
            .collect();
        // "B" is the letter and the text of the same choice in the last.
        assert_eq!(got, [("a", 2), ("7", 1), ("3", 1), ("4", 1)]);
        let ambiguous = text.replace("[\"A\", \"B\"]", "[\"B\", \"A\"]");
        assert_eq!(
            err("g.jsonl", &ambiguous, None),
            "FILE:4: `answer` `B` is ambiguous: the letter of choice (B) and the text of choice (A)"
        );
        let bad = text.replace("\"answer\": 2", "\"answer\": 3");
        assert_eq!(
            err("g.jsonl", &bad, None),
            "FILE:1: `answer` is index 3, but there are only 3 choices (indices start at 0)"
        );
        let bad = text.replace("\"answer\": \"green\"", "\"answer\": \"blue\"");
        assert_eq!(
            err("g.jsonl", &bad, None),
            "FILE:3: `answer` `blue` is neither a choice letter nor the text of a choice"
        );
        let bad = text.replace("[\"x\", \"y\"]", "[\"x\"]");
        assert_eq!(
            err("g.jsonl", &bad, None),
            "FILE:2: `answer` is B, but there are only 1 choices"
        );
        let bad = text.replace("\"id\": 7", "\"id\": \"a\"");
        assert_eq!(
            err("g.jsonl", &bad, None),
            "FILE:2: duplicate id `a` (first at line 1)"
        );
        let bad = text.replace("\"question\": \"Q3\", ", "");
        assert_eq!(
            err("g.jsonl", &bad, Some(Format::Generic)),
            "FILE:3: missing field `question`"
        );
    }
}
