//! HellaSwag: `ctx` (or `ctx_a` + `ctx_b`), `endings`, `label` (number or digit
//! string), optional `activity_label`, id from `ind`.

use serde_json::Value;

use super::{field, id_of, opt_text, text_list, too_many, Obj, Row};

pub(super) fn hellaswag(o: &Obj, ordinal: usize) -> Result<Row, String> {
    let ctx = match opt_text(o, "ctx")?.filter(|c| !c.trim().is_empty()) {
        Some(c) => c,
        None => {
            let a = opt_text(o, "ctx_a")?.ok_or("missing field `ctx` (or `ctx_a`)")?;
            let b = opt_text(o, "ctx_b")?.unwrap_or_default();
            if b.trim().is_empty() {
                a
            } else {
                format!("{} {}", a.trim_end(), b.trim_start())
            }
        }
    };
    let endings = text_list(field(o, "endings")?, "endings")?;
    too_many(endings.len(), "endings")?;
    let label = match o.get("label") {
        None | Some(Value::Null) => {
            return Err("missing field `label` (the HellaSwag test split has no labels)".into())
        }
        Some(Value::Number(n)) => n.as_u64().map(|i| i as usize),
        Some(Value::String(s)) if s.trim().is_empty() => {
            return Err("`label` is empty (the HellaSwag test split has no labels)".into())
        }
        Some(Value::String(s)) => s.trim().parse::<usize>().ok(),
        Some(_) => None,
    }
    .ok_or_else(|| format!("`label` must be the index of an ending, got {}", o["label"]))?;
    if label >= endings.len() {
        return Err(format!(
            "`label` is {label}, but there are only {} endings (indices start at 0)",
            endings.len()
        ));
    }
    let context = match opt_text(o, "activity_label")?.filter(|a| !a.trim().is_empty()) {
        Some(a) => format!("{}: {}", a.trim(), ctx.trim()),
        None => ctx.trim().to_string(),
    };
    Ok(Row::Question {
        id: id_of(o, &["ind", "id"], ordinal)?,
        question: format!("Which ending best continues this text?\n\n{context}"),
        choices: endings,
        answer: label,
    })
}

#[cfg(test)]
mod tests {
    use crate::formats::test_support::{err, ok};
    use crate::formats::Format;

    #[test]
    fn hellaswag() {
        let text = r#"{"ind": 24, "activity_label": "Roof shingle removal", "ctx_a": "A man is sitting on a roof.", "ctx_b": "he", "ctx": "A man is sitting on a roof. he", "endings": ["is using wrap.", "is ripping level tiles off.", "is holding a rubik's cube.", "starts pulling up roofing."], "label": 3}
{"ind": 92, "ctx_a": "A woman cooks.", "ctx_b": "", "endings": ["She stirs.", "She sings.", "She flies.", "She sleeps."], "label": "0"}
"#;
        let l = ok("hellaswag_val.jsonl", text, None);
        assert_eq!(l.format, Format::HellaSwag);
        let q = &l.questions[0];
        assert_eq!(
            q.question,
            "Which ending best continues this text?\n\nRoof shingle removal: A man is sitting on a roof. he"
        );
        assert_eq!((q.answer, q.id.as_str(), q.choices.len()), (3, "24", 4));
        assert_eq!(
            l.questions[1].question,
            "Which ending best continues this text?\n\nA woman cooks."
        );
        assert_eq!(l.questions[1].answer, 0);
        let bad = text.replace(", \"label\": \"0\"", "");
        assert_eq!(
            err("hs.jsonl", &bad, None),
            "FILE:2: missing field `label` (the HellaSwag test split has no labels)"
        );
        let bad = text.replace("\"label\": 3", "\"label\": 4");
        assert_eq!(
            err("hs.jsonl", &bad, None),
            "FILE:1: `label` is 4, but there are only 4 endings (indices start at 0)"
        );
    }
}
