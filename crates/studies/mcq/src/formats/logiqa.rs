//! LogiQA: text files of blocks separated by blank lines, each the answer letter
//! (`a`–`d`), the context (one or more lines), the question line and the option lines
//! `A. …`; or JSON `{context` or `text, query` or `question, options, correct_option` or
//! `answer}`.

use shammie_engine::DataError;

use super::{
    field, flexible_answer, id_of, opt_text, text_list, too_many, Collector, Format, Loaded, Obj,
    Row, Src,
};
use crate::mcq::{letter, letter_index, MAX_CHOICES};

pub(super) fn logiqa_json(o: &Obj, ordinal: usize) -> Result<Row, String> {
    let context = match opt_text(o, "context")? {
        Some(c) => Some(c),
        None => opt_text(o, "text")?,
    };
    let query = match opt_text(o, "query")? {
        Some(q) => q,
        None => opt_text(o, "question")?.ok_or("missing field `query` (or `question`)")?,
    };
    let choices = text_list(field(o, "options")?, "options")?;
    too_many(choices.len(), "options")?;
    let (key, v) = match o.get("correct_option").filter(|v| !v.is_null()) {
        Some(v) => ("correct_option", v),
        None => (
            "answer",
            field(o, "answer").map_err(|_| "missing field `correct_option` (or `answer`)")?,
        ),
    };
    let answer = flexible_answer(v, key, &choices)?;
    let question = match context.filter(|c| !c.trim().is_empty()) {
        Some(c) => format!("{}\n\n{}", c.trim(), query.trim()),
        None => query,
    };
    Ok(Row::Question {
        id: id_of(o, &["id"], ordinal)?,
        question,
        choices,
        answer,
    })
}

/// The letter and text of a LogiQA option line (`A. text`, `B.text`, `C) text`).
fn option_line(line: &str) -> Option<(usize, &str)> {
    let t = line.trim();
    let mut cs = t.char_indices();
    let (_, l) = cs.next()?;
    let (p, d) = cs.next()?;
    (l.is_ascii_uppercase() && matches!(d, '.' | '．' | ')' | '、'))
        .then(|| (letter_index(l).unwrap_or(0), t[p + d.len_utf8()..].trim()))
}

pub(super) fn logiqa_text(src: &Src, text: &str, source: &str) -> Result<Loaded, DataError> {
    let mut c = Collector::new(src, source, Format::LogiQa);
    let mut blocks: Vec<Vec<(u64, &str)>> = Vec::new();
    let mut cur: Vec<(u64, &str)> = Vec::new();
    for (i, l) in text.split('\n').enumerate() {
        let l = l.trim_end_matches('\r');
        if l.trim().is_empty() {
            if !cur.is_empty() {
                blocks.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push((i as u64 + 1, l));
        }
    }
    if !cur.is_empty() {
        blocks.push(cur);
    }
    for (n, block) in blocks.iter().enumerate() {
        let line = block[0].0;
        let err = |m: String| src.line(line, m);
        let first = block[0].1.trim();
        let key = match (first.chars().count(), first.chars().next().and_then(letter_index)) {
            (1, Some(i)) => i,
            _ => {
                return Err(err(format!(
                    "expected the answer letter (a–d) alone on the first line of a LogiQA block, got `{first}`"
                )))
            }
        };
        // Options are the block's last lines; at least the question line stays before.
        let mut k = block.len();
        while k > 2 && option_line(block[k - 1].1).is_some() {
            k -= 1;
        }
        let options = &block[k..];
        if options.len() < 2 {
            return Err(err(
                "expected the context, the question and the option lines (`A. …`, `B. …`, …) after the answer letter"
                    .into(),
            ));
        }
        let mut choices = Vec::new();
        for (j, (_, l)) in options.iter().enumerate() {
            let (label, body) = option_line(l).expect("checked above");
            if label != j {
                return Err(err(format!(
                    "option line `{}` is labelled {}, expected {}",
                    l.trim(),
                    letter(label),
                    letter(j.min(MAX_CHOICES - 1))
                )));
            }
            choices.push(body.to_string());
        }
        if key >= choices.len() {
            return Err(err(format!(
                "the answer is {}, but there are only {} options",
                letter(key),
                choices.len()
            )));
        }
        let question_line = block[k - 1].1.trim();
        let context: Vec<&str> = block[1..k - 1].iter().map(|(_, l)| l.trim()).collect();
        let question = if context.is_empty() {
            question_line.to_string()
        } else {
            format!("{}\n\n{question_line}", context.join("\n"))
        };
        c.add(
            line,
            Row::Question {
                id: (n + 1).to_string(),
                question,
                choices,
                answer: key,
            },
        )?;
    }
    Ok(c.out)
}

#[cfg(test)]
mod tests {
    use crate::formats::test_support::{choices, err, ok};
    use crate::formats::Format;

    const LOGIQA: &str = "\nc\nSome birds cannot fly.\nPenguins are birds.\nWhich follows?\nA.All birds fly\nB. No bird flies\nC.Penguins may not fly\nD.Penguins are fish\n\n\na\nContext two.\nQuestion two?\nA.yes\nB.no\nC.maybe\nD.never\n";

    #[test]
    fn logiqa_text_and_json() {
        let l = ok("Test.txt", LOGIQA, None);
        assert_eq!(l.format, Format::LogiQa);
        let q = &l.questions[0];
        assert_eq!(
            q.question,
            "Some birds cannot fly.\nPenguins are birds.\n\nWhich follows?"
        );
        assert_eq!(
            choices(q),
            [
                "All birds fly",
                "No bird flies",
                "Penguins may not fly",
                "Penguins are fish"
            ]
        );
        assert_eq!(
            (q.answer, l.questions[1].answer, l.questions[1].id.as_str()),
            (2, 0, "2")
        );
        // Errors point at the first line of the block.
        let bad = LOGIQA.replace("\na\n", "\n5\n");
        assert_eq!(
            err("Test.txt", &bad, Some(Format::LogiQa)),
            "FILE:12: expected the answer letter (a–d) alone on the first line of a LogiQA block, got `5`"
        );
        let bad = LOGIQA.replace("\na\n", "\ne\n");
        assert_eq!(
            err("Test.txt", &bad, Some(Format::LogiQa)),
            "FILE:12: the answer is E, but there are only 4 options"
        );
        let bad = LOGIQA.replace("B. No bird flies", "C. No bird flies");
        assert_eq!(
            err("Test.txt", &bad, None),
            "FILE:2: option line `C. No bird flies` is labelled C, expected B"
        );
        let bad = LOGIQA
            .replace("D.never\n", "")
            .replace("C.maybe\n", "")
            .replace("B.no\n", "");
        assert_eq!(
            err("Test.txt", &bad, None),
            "FILE:12: expected the context, the question and the option lines (`A. …`, `B. …`, …) after the answer letter"
        );

        let json = r#"{"context": "Ctx.", "query": "Q?", "options": ["a", "b", "c", "d"], "correct_option": 2}
{"id": 9, "text": "Ctx2.", "question": "Q2?", "options": ["a", "b"], "answer": 5}
"#;
        assert_eq!(
            err("logiqa.jsonl", json, None),
            "FILE:2: `answer` is index 5, but there are only 2 choices (indices start at 0)"
        );
        let l = ok(
            "logiqa.jsonl",
            &json.replace("\"answer\": 5", "\"answer\": 1"),
            None,
        );
        assert_eq!(l.format, Format::LogiQa);
        assert_eq!(l.questions[0].question, "Ctx.\n\nQ?");
        assert_eq!(
            (l.questions[0].answer, l.questions[1].id.as_str()),
            (2, "9")
        );
    }
}
