//! MMLU: headerless CSV rows `question, A, B, C, D, answer letter` (a first row whose
//! last column is `answer`/`target`/`label`/`correct` is taken as a header). Its JSON
//! shape `{question, subject, choices, answer}` is read as [`super::generic`].

use shammie_engine::DataError;

use super::{letter_answer, Collector, Format, Loaded, Row, Src};
use crate::mcq::MAX_CHOICES;

pub(super) fn mmlu_csv(src: &Src, text: &str, source: &str) -> Result<Loaded, DataError> {
    let mut c = Collector::new(src, source, Format::Mmlu);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut ordinal = 0;
    for (n, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| match e.position() {
            Some(p) => src.line(p.line(), format!("not valid CSV: {e}")),
            None => src.file(format!("not valid CSV: {e}")),
        })?;
        let line = rec.position().map_or(0, |p| p.line());
        let fields: Vec<&str> = rec.iter().collect();
        let last = fields.last().map(|s| s.trim().to_ascii_lowercase());
        if n == 0
            && matches!(
                last.as_deref(),
                Some("answer" | "target" | "label" | "correct")
            )
        {
            continue; // a header row
        }
        if fields.len() < 4 {
            return Err(src.line(
                line,
                format!(
                    "expected `question, choice A, choice B, …, answer letter` (MMLU CSV), got {} column{}",
                    fields.len(),
                    if fields.len() == 1 { "" } else { "s" }
                ),
            ));
        }
        ordinal += 1;
        let choices: Vec<String> = fields[1..fields.len() - 1]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if choices.len() > MAX_CHOICES {
            return Err(src.line(line, format!("has {} choices, more than 26", choices.len())));
        }
        let answer = letter_answer("the answer column", fields[fields.len() - 1], choices.len())
            .map_err(|m| src.line(line, m))?;
        c.add(
            line,
            Row::Question {
                id: ordinal.to_string(),
                question: fields[0].to_string(),
                choices,
                answer,
            },
        )?;
    }
    Ok(c.out)
}

#[cfg(test)]
mod tests {
    use crate::formats::test_support::{choices, err, ok};
    use crate::formats::Format;

    #[test]
    fn mmlu_csv_and_json() {
        let csv = "What is 2+2?,3,4,5,6,B\n\"Which, with a comma?\",a,b,c,d,D\n\"A question\nover two lines\",w,x,y,z,a\n";
        let l = ok("abstract_algebra_test.csv", csv, None);
        assert_eq!(l.format, Format::Mmlu);
        assert_eq!(l.questions.len(), 3);
        assert_eq!(choices(&l.questions[0]), ["3", "4", "5", "6"]);
        assert_eq!(l.questions[1].question, "Which, with a comma?");
        assert_eq!(
            l.questions.iter().map(|q| q.answer).collect::<Vec<_>>(),
            [1, 3, 0]
        );
        assert_eq!(l.questions[2].question, "A question\nover two lines");
        // Line numbers count the line breaks inside quoted fields.
        let bad = format!("{csv}Last,1,2,3,4,E\n");
        assert_eq!(
            err("t.csv", &bad, None),
            "FILE:5: the answer column is E, but there are only 4 choices"
        );
        let bad = format!("{csv}Short,1,A\n");
        assert_eq!(
            err("t.csv", &bad, None),
            "FILE:5: expected `question, choice A, choice B, …, answer letter` (MMLU CSV), got 3 columns"
        );
        let headed = format!("question,A,B,C,D,answer\n{csv}");
        assert_eq!(ok("h.csv", &headed, None).questions.len(), 3);

        let json = r#"{"question": "2+2?", "subject": "math", "choices": ["3", "4", "5", "6"], "answer": 1}
{"question": "3+3?", "subject": "math", "choices": ["6", "7", "8", "9"], "answer": 9}
"#;
        assert_eq!(
            err("mmlu.jsonl", json, None),
            "FILE:2: `answer` is index 9, but there are only 4 choices (indices start at 0)"
        );
        let l = ok("mmlu.jsonl", &json.replace("9}", "0}"), None);
        assert_eq!(l.format, Format::Mmlu);
        assert_eq!(
            (l.questions[0].answer, l.questions[1].id.as_str()),
            (1, "2")
        );
    }
}
