//! AQuA-RAT: `question`, `options` (`["A)21", "B)22", …]`, the `X)` labels removed),
//! `correct` (a letter); `rationale` ignored.

use super::{field, id_of, letter_answer, text, text_list, too_many, Obj, Row};
use crate::mcq::{letter, letter_index};

pub(super) fn aqua(o: &Obj, ordinal: usize) -> Result<Row, String> {
    let question = text(o, "question")?;
    let options = text_list(field(o, "options")?, "options")?;
    too_many(options.len(), "options")?;
    let choices = options
        .iter()
        .enumerate()
        .map(|(i, opt)| strip_option_label(opt, i))
        .collect::<Result<Vec<_>, _>>()?;
    let answer = letter_answer("`correct`", &text(o, "correct")?, choices.len())?;
    Ok(Row::Question {
        id: id_of(o, &["id"], ordinal)?,
        question,
        choices,
        answer,
    })
}

/// `"B)22"` → `"22"` (the label must be the option's own letter); unlabelled options
/// are kept as they are.
fn strip_option_label(opt: &str, i: usize) -> Result<String, String> {
    let t = opt.trim();
    let mut cs = t.char_indices();
    if let (Some((_, l)), Some((p, ')'))) = (cs.next(), cs.next()) {
        if l.is_ascii_alphabetic() {
            if letter_index(l) != Some(i) {
                return Err(format!(
                    "option {} `{t}` is labelled {}, expected {}",
                    i + 1,
                    l.to_ascii_uppercase(),
                    letter(i)
                ));
            }
            return Ok(t[p + 1..].trim().to_string());
        }
    }
    Ok(t.to_string())
}

#[cfg(test)]
mod tests {
    use crate::formats::test_support::{choices, err, ok, AQUA};
    use crate::formats::Format;

    #[test]
    fn aqua() {
        let l = ok("aqua.json", AQUA, None);
        assert_eq!(l.format, Format::Aqua);
        assert_eq!(l.questions.len(), 2);
        let q = &l.questions[0];
        assert_eq!(choices(q), ["1", "2", "3", "4", "5"]);
        assert_eq!(
            (q.answer, q.id.as_str(), q.source.as_str()),
            (1, "1", "set")
        );
        assert_eq!(
            (l.questions[1].answer, l.questions[1].id.as_str()),
            (4, "2")
        );
        assert!(l.skipped.is_empty());

        let bad = AQUA.replace("\"correct\": \"E\"", "\"correct\": \"F\"");
        assert_eq!(
            err("aqua.json", &bad, None),
            "FILE:3: `correct` is F, but there are only 5 choices"
        );
        let bad = AQUA.replace("\"C)3\"", "\"D)3\"");
        assert_eq!(
            err("aqua.json", &bad, None),
            "FILE:1: option 3 `D)3` is labelled D, expected C"
        );
        let bad = format!("{AQUA}{{\"question\": \"x\", \"options\": [\n");
        assert!(
            err("aqua.json", &bad, Some(Format::Aqua)).starts_with("FILE:4: not valid JSON: EOF")
        );
        let bad = AQUA.replace("\"A)1\"", "\"A) \"");
        assert_eq!(err("aqua.json", &bad, None), "FILE:1: choice (A) is empty");
    }
}
