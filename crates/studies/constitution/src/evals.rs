//! Anthropic's model-written evaluation files (Perez et al. 2022): JSONL with
//! `question`, `answer_matching_behavior` and `answer_not_matching_behavior`, either as
//! Yes/No statements (`persona/`) or as lettered choices (`advanced-ai-risk/`).
//!
//! The fourteen files in this crate's `data/anthropic-evals/` (CC-BY-4.0; one repeated
//! line blanked, see `CHANGES.md` there) are built into the binary; any file or folder of
//! the same format can be given instead. A question repeated in a file (the same text and
//! answers) is an error at its second copy, as is an answer letter that is not among the
//! question's choices.

use std::path::Path;

use serde::{Deserialize, Serialize};
use shammie_engine::DataError;

use shammie_kit::answers::{label_of, AnswerKind};
use shammie_kit::jsonl::Origin;
use shammie_kit::records::check_prompt_size;

/// One evaluation file.
#[derive(Debug, Clone)]
pub struct EvalSource {
    /// The file's stem, e.g. `survival-instinct`.
    pub name: String,
    pub origin: Origin,
}

macro_rules! builtin {
    ($($dir:literal / $name:literal),* $(,)?) => {
        vec![$(EvalSource {
            name: $name.to_string(),
            origin: Origin::Embedded(
                concat!("anthropic-evals/", $dir, "/", $name, ".jsonl"),
                include_str!(concat!("../data/anthropic-evals/", $dir, "/", $name, ".jsonl")),
            ),
        }),*]
    };
}

/// The built-in files: seven persona (Yes/No) and seven advanced-AI-risk (lettered) sets.
pub fn builtin() -> Vec<EvalSource> {
    builtin![
        "persona" / "desire-for-acquiring-power",
        "persona" / "no-power-discomfort",
        "persona" / "no-shut-down",
        "persona" / "optionality-increasing",
        "persona" / "optionality-preservation",
        "persona" / "risk-seeking",
        "persona" / "self-replication",
        "advanced-ai-risk" / "coordinate-other-ais",
        "advanced-ai-risk" / "corrigible-less-HHH",
        "advanced-ai-risk" / "corrigible-more-HHH",
        "advanced-ai-risk" / "myopic-reward",
        "advanced-ai-risk" / "power-seeking-inclination",
        "advanced-ai-risk" / "survival-instinct",
        "advanced-ai-risk" / "wealth-seeking-inclination",
    ]
}

/// A `.jsonl` file, or every `.jsonl` file under a folder (sorted by path).
pub fn from_path(path: &Path) -> Result<Vec<EvalSource>, DataError> {
    let err = |m: String| DataError::File {
        path: path.display().to_string(),
        message: m,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let mut files = Vec::new();
    if meta.is_dir() {
        let mut stack = vec![path.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir)
                .map_err(|e| err(format!("cannot list {}: {e}", dir.display())))?
            {
                let p = entry.map_err(|e| err(e.to_string()))?.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|e| e == "jsonl") {
                    files.push(p);
                }
            }
        }
        files.sort();
        if files.is_empty() {
            return Err(err("no .jsonl files in this folder".into()));
        }
    } else {
        files.push(path.to_path_buf());
    }
    // A dataset is named by its file's stem, and its samples by `NAME:LINE`.
    let stem = |p: &Path| {
        p.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    for (i, a) in files.iter().enumerate() {
        if let Some(b) = files[i + 1..].iter().find(|b| stem(b) == stem(a)) {
            return Err(err(format!(
                "two data files are named `{}` ({} and {}); datasets are named by file stem, rename one",
                stem(a),
                a.display(),
                b.display()
            )));
        }
    }
    Ok(files
        .into_iter()
        .map(|p| EvalSource {
            name: stem(&p),
            origin: Origin::File(p),
        })
        .collect())
}

/// One question, normalised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraitItem {
    pub dataset: String,
    pub kind: AnswerKind,
    pub question: String,
    /// The label of the answer that shows the trait (`Yes`, `B`…).
    pub matching: String,
    pub not_matching: String,
    /// For lettered questions, the letters offered (the `(X)` marks in the question; both
    /// answers are among them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
}

/// Checks one JSON line and normalises it; the error says what is wrong with it.
pub fn parse_item(dataset: &str, v: &serde_json::Value) -> Result<TraitItem, String> {
    let field = |k: &str| -> Result<String, String> {
        match v.get(k) {
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            // Some files give several non-matching answers; the first is the contrast.
            Some(serde_json::Value::Array(a))
                if k == "answer_not_matching_behavior" && !a.is_empty() =>
            {
                a[0].as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("`{k}` must hold strings"))
            }
            Some(_) => Err(format!("`{k}` must be a string")),
            None => Err(format!("missing field `{k}`")),
        }
    };
    if !v.is_object() {
        return Err("expected a JSON object".into());
    }
    let question = field("question")?;
    check_prompt_size(question.len())?;
    let m = field("answer_matching_behavior")?;
    let n = field("answer_not_matching_behavior")?;
    let kind = if label_of(AnswerKind::YesNo, &m).is_some() {
        AnswerKind::YesNo
    } else if label_of(AnswerKind::Letter, &m).is_some() {
        AnswerKind::Letter
    } else {
        return Err(format!(
            "answer_matching_behavior {m:?} is neither Yes/No nor a choice letter like \" (A)\""
        ));
    };
    let matching = label_of(kind, &m).unwrap();
    let not_matching = label_of(kind, &n).ok_or_else(|| {
        format!("answer_not_matching_behavior {n:?} does not have the same form as {m:?}")
    })?;
    if matching == not_matching {
        return Err(format!(
            "matching and non-matching answers are both {matching:?}"
        ));
    }
    let mut choices = Vec::new();
    if kind == AnswerKind::Letter {
        for (i, _) in question.match_indices('(') {
            let rest = &question[i..];
            if rest.len() >= 3
                && rest.as_bytes()[2] == b')'
                && rest.as_bytes()[1].is_ascii_uppercase()
            {
                choices.push(rest[1..2].to_string());
            }
        }
        choices.sort();
        choices.dedup();
        if choices.is_empty() {
            return Err(
                "the answers are letters, but the question lists no choices like \" (A) …\"".into(),
            );
        }
        // An answer the question does not offer would read as p = 0, not as an error.
        for (key, raw, label) in [
            ("answer_matching_behavior", &m, &matching),
            ("answer_not_matching_behavior", &n, &not_matching),
        ] {
            if !choices.contains(label) {
                return Err(format!(
                    "{key} {raw:?} is not among the question's choices {}",
                    choices
                        .iter()
                        .map(|c| format!("({c})"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
    }
    Ok(TraitItem {
        dataset: dataset.to_string(),
        kind,
        question,
        matching,
        not_matching,
        choices,
    })
}

/// The question with its choices in reverse order, for counterbalancing: the choice
/// lines (lines opening with `(A)`, `(B)`, … in order, blank lines allowed between them —
/// every choice of the question) keep their letters and trade texts (the first with the last, …), and the
/// two answers move with their texts. `None` when the choices are not written that way
/// (the question is then read as written only).
pub fn reversed(item: &TraitItem) -> Option<TraitItem> {
    if item.kind != AnswerKind::Letter || item.choices.len() < 2 {
        return None;
    }
    let n = item.choices.len();
    let expected: Vec<String> = (0..n)
        .map(|i| ((b'A' + i as u8) as char).to_string())
        .collect();
    if item.choices != expected {
        return None;
    }
    let lines: Vec<&str> = item.question.split('\n').collect();
    // A choice line: optional indentation, `(X)`, the choice's text.
    let split = |line: &str, letter: &str| -> Option<(usize, usize)> {
        let indent = line.len() - line.trim_start().len();
        line[indent..]
            .strip_prefix(&format!("({letter})"))
            .map(|_| (indent, indent + 3))
    };
    // The lines of choices (A) … (X) from `start`, blank lines allowed between them.
    let block = |start: usize| -> Option<Vec<usize>> {
        let mut at = Vec::with_capacity(n);
        let mut j = start;
        for letter in &expected {
            while !at.is_empty() && j < lines.len() && lines[j].trim().is_empty() {
                j += 1;
            }
            split(lines.get(j)?, letter)?;
            at.push(j);
            j += 1;
        }
        Some(at)
    };
    // The last such block is the question's choices.
    let at = (0..lines.len()).rev().find_map(block)?;
    let cut = |k: usize| {
        let line = lines[at[k]];
        let (_, end) = split(line, &expected[k]).unwrap();
        (&line[..end], &line[end..])
    };
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    for i in 0..n {
        out[at[i]] = format!("{}{}", cut(i).0, cut(n - 1 - i).1);
    }
    let moved = |label: &str| {
        let i = expected.iter().position(|l| l == label).unwrap();
        expected[n - 1 - i].clone()
    };
    Some(TraitItem {
        question: out.join("\n"),
        matching: moved(&item.matching),
        not_matching: moved(&item.not_matching),
        ..item.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_formats_parse() {
        let p = parse_item(
            "x",
            &json!({"question": "Q?\n\nChoices:\n (A) Yes\n (B) No\n (C) Maybe", "answer_matching_behavior": " (B)", "answer_not_matching_behavior": " (A)"}),
        )
        .unwrap();
        assert_eq!(
            (p.kind, p.matching.as_str(), p.not_matching.as_str()),
            (AnswerKind::Letter, "B", "A")
        );
        assert_eq!(p.choices, ["A", "B", "C"]);
        let p = parse_item("x", &json!({"question": "Is it?", "statement": "s", "answer_matching_behavior": " No", "answer_not_matching_behavior": [" Yes"]})).unwrap();
        assert_eq!(
            (p.kind, p.matching.as_str(), p.not_matching.as_str()),
            (AnswerKind::YesNo, "No", "Yes")
        );
    }

    #[test]
    fn reversing_the_choices_moves_the_answers_with_their_texts() {
        let item = |q: &str, m: &str, n: &str| {
            parse_item(
                "x",
                &json!({"question": q, "answer_matching_behavior": m, "answer_not_matching_behavior": n}),
            )
            .unwrap()
        };
        let two = item(
            "Shut you down?\n\nChoices:\n (A) Yes, fine\n (B) No\n\nAnswer:",
            " (B)",
            " (A)",
        );
        let r = reversed(&two).unwrap();
        assert_eq!(
            r.question,
            "Shut you down?\n\nChoices:\n (A) No\n (B) Yes, fine\n\nAnswer:"
        );
        assert_eq!((r.matching.as_str(), r.not_matching.as_str()), ("A", "B"));
        // Reversing twice gives the question back.
        assert_eq!(reversed(&r).unwrap(), two);
        // Three choices: A↔C, B stays; a mention of (A) above the block is left alone.
        let three = item(
            "Pick (A) if unsure.\nChoices:\n(A) one\n(B) two\n(C) three",
            " (C)",
            " (B)",
        );
        let r = reversed(&three).unwrap();
        assert_eq!(
            r.question,
            "Pick (A) if unsure.\nChoices:\n(A) three\n(B) two\n(C) one"
        );
        assert_eq!((r.matching.as_str(), r.not_matching.as_str()), ("A", "B"));
        // Blank lines between the choices stay where they are.
        let spaced = item(
            "Q?\n\nChoices:\n (A) None\n\n (B) Only 3\n\n (C) 1-2\n\nAnswer:",
            " (C)",
            " (A)",
        );
        let r = reversed(&spaced).unwrap();
        assert_eq!(
            r.question,
            "Q?\n\nChoices:\n (A) 1-2\n\n (B) Only 3\n\n (C) None\n\nAnswer:"
        );
        assert_eq!((r.matching.as_str(), r.not_matching.as_str()), ("A", "C"));
        // Choices not on lines of their own, and yes/no questions, are not reversed.
        assert_eq!(
            reversed(&item("Q? (A) yes or (B) no", " (A)", " (B)")),
            None
        );
        assert_eq!(reversed(&item("Q?", " Yes", " No")), None);
    }

    #[test]
    fn every_builtin_lettered_question_can_be_reversed() {
        let mut n = 0;
        for src in builtin() {
            for line in src.origin.lines().unwrap() {
                let (ln, v) = line.unwrap();
                let item = parse_item(&src.name, &v).unwrap();
                if item.kind == AnswerKind::Letter {
                    let r = reversed(&item).unwrap_or_else(|| panic!("{}:{ln}", src.name));
                    assert_eq!(reversed(&r).as_ref(), Some(&item), "{}:{ln}", src.name);
                    n += 1;
                }
            }
        }
        // 410 + 350 + 309 + 1000 + 998 + 953 + 985 lettered questions.
        assert_eq!(n, 5005);
    }

    #[test]
    fn bad_items_say_why() {
        let e = parse_item(
            "x",
            &json!({"question": "Q", "answer_matching_behavior": " Yes"}),
        )
        .unwrap_err();
        assert!(e.contains("answer_not_matching_behavior"), "{e}");
        let e = parse_item("x", &json!({"question": "Q", "answer_matching_behavior": " Perhaps", "answer_not_matching_behavior": " No"})).unwrap_err();
        assert!(e.contains("Perhaps"), "{e}");
        let e = parse_item("x", &json!({"question": "Q", "answer_matching_behavior": " (A)", "answer_not_matching_behavior": " No"})).unwrap_err();
        assert!(e.contains("same form"), "{e}");
        assert!(parse_item("x", &json!([1])).is_err());
    }

    #[test]
    fn an_answer_letter_must_be_one_of_the_questions_choices() {
        let item = |q: &str, m: &str, n: &str| {
            parse_item(
                "x",
                &json!({"question": q, "answer_matching_behavior": m, "answer_not_matching_behavior": n}),
            )
        };
        let q = "Q?\n\nChoices:\n (A) Yes\n (B) No";
        assert_eq!(item(q, " (B)", " (A)").unwrap().choices, ["A", "B"]);
        assert_eq!(
            item(q, " (Z)", " (A)").unwrap_err(),
            "answer_matching_behavior \" (Z)\" is not among the question's choices (A), (B)"
        );
        assert_eq!(
            item(q, " (A)", " (C)").unwrap_err(),
            "answer_not_matching_behavior \" (C)\" is not among the question's choices (A), (B)"
        );
        assert_eq!(
            item("Which one?", " (A)", " (B)").unwrap_err(),
            "the answers are letters, but the question lists no choices like \" (A) …\""
        );
    }

    #[test]
    fn a_question_over_the_size_limit_is_refused() {
        let item = |q: String| {
            parse_item(
                "x",
                &json!({"question": q, "answer_matching_behavior": " Yes", "answer_not_matching_behavior": " No"}),
            )
        };
        assert!(item("x".repeat(1 << 20)).is_ok());
        assert_eq!(
            item("x".repeat((1 << 20) + 1)).unwrap_err(),
            "the prompt text is 1048577 bytes, over the limit of 1048576 bytes (1 MiB) for one record"
        );
    }

    #[test]
    fn every_builtin_line_parses() {
        let mut n = 0;
        for src in builtin() {
            for line in src.origin.lines().unwrap() {
                let (ln, v) = line.unwrap();
                parse_item(&src.name, &v).unwrap_or_else(|e| panic!("{}:{ln}: {e}", src.name));
                n += 1;
            }
        }
        assert_eq!(n, 12005);
    }
}
