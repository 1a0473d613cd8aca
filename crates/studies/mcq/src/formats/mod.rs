//! Loaders for public multiple-choice and yes/no data sets, read into [`McQuestion`]s.
//!
//! | [`Format`] | accepted shapes |
//! |---|---|
//! | `aqua` | AQuA-RAT: `question`, `options` (`["A)21", "B)22", …]`, the `X)` labels removed), `correct` (a letter); `rationale` ignored |
//! | `generic` | `question`, `choices` (strings), `answer` (0-based index, letter, or the exact text of a choice), optional `id` |
//! | `arc` | ARC and OpenBookQA, AI2 shape `{id, question: {stem, choices: [{text, label}]}, answerKey}` or Hugging Face shape `{id, question` or `question_stem, choices: {text: […], label: […]}, answerKey}`; `answerKey` a letter or a digit label (`"1"`…) |
//! | `mmlu` | headerless CSV rows `question, A, B, C, D, answer letter` (a first row whose last column is `answer`/`target`/`label`/`correct` is taken as a header), or JSON `{question, subject, choices, answer}` |
//! | `hellaswag` | `ctx` (or `ctx_a` + `ctx_b`), `endings`, `label` (number or digit string), optional `activity_label`, id from `ind` |
//! | `truthfulqa` | mc1 of TruthfulQA: `mc_task.json` (an array of `{question, mc1_targets: {choice text: 0 or 1}}`, choices kept in file order) or the Hugging Face shape `{question, mc1_targets: {choices: […], labels: […]}}`; exactly one choice must be correct |
//! | `logiqa` | LogiQA text files: blocks separated by blank lines, each the answer letter (`a`–`d`), the context (one or more lines), the question line and the option lines `A. …`; or JSON `{context` or `text, query` or `question, options, correct_option` or `answer}` |
//! | `strategyqa` | `{qid, question, answer: true/false, …}` as Yes/No |
//! | `hotpotqa` | `{_id, question, answer, type, …}` as Yes/No; rows whose answer is not yes/no are skipped and listed in [`Loaded::skipped`] |
//!
//! Every JSON format may be a JSON array of records or JSON Lines (one record a line;
//! blank lines ignored). With [`load`]`(…, None, …)` the format is detected from the
//! first record (JSON) or the first line (`logiqa` text if it is a lone letter a–d, else
//! `mmlu` CSV); a format given by name ([`Format::parse`]) overrides detection.
//!
//! **Errors** name the file and the line: `FILE:LINE: message` for a record, `FILE:
//! message` for the whole file. Files are read by `shammie_kit::jsonl::read_text`, like
//! every study's data: a byte-order mark is dropped, bytes that are not UTF-8 are an
//! error at their line, an empty or blank file is an error. In a JSON array the line is **computed** for each record
//! (the line of its opening `{`), and a syntax error inside a record points at the line
//! of the error; a LogiQA block is reported at its first line (the answer letter). Ids
//! come from the record (`id`, `qid`, `_id`, `ind`) or, when it has none, are its
//! 1-based position among the file's records; a repeated id is an error, and so is a
//! question whose text and choices (in order) repeat an earlier one's. Every question
//! is checked with [`McQuestion::validate`] and `shammie_kit::records` (at most 1 MiB of
//! question and choice text).
//!
//! This file holds detection, the JSON-array splitter, validation and the field helpers
//! the formats share; each format has its own file.

mod aqua;
mod arc;
mod generic;
mod hellaswag;
mod hotpotqa;
mod logiqa;
mod mmlu;
mod strategyqa;
#[cfg(test)]
mod test_support;
mod truthfulqa;

use std::fmt;
use std::path::Path;

use serde_json::{Map, Value};
use shammie_engine::DataError;
use shammie_kit::jsonl::{self, Origin};
use shammie_kit::records::{check_prompt_size, Duplicates};

use crate::mcq::{letter, parse_letter, McQuestion, MAX_CHOICES};

/// A data format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Aqua,
    Generic,
    Arc,
    Mmlu,
    HellaSwag,
    TruthfulQa,
    LogiQa,
    StrategyQa,
    HotpotQa,
}

impl Format {
    pub const ALL: [Format; 9] = [
        Format::Aqua,
        Format::Generic,
        Format::Arc,
        Format::Mmlu,
        Format::HellaSwag,
        Format::TruthfulQa,
        Format::LogiQa,
        Format::StrategyQa,
        Format::HotpotQa,
    ];

    /// The names [`Format::parse`] accepts (besides aliases), in the order of `ALL`.
    pub const NAMES: &'static [&'static str] = &[
        "aqua",
        "generic",
        "arc",
        "mmlu",
        "hellaswag",
        "truthfulqa",
        "logiqa",
        "strategyqa",
        "hotpotqa",
    ];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// A format by name, ignoring case, `-`, `_` and spaces; aliases: `aqua-rat`,
    /// `jsonl`/`mcq` (generic), `openbookqa`/`obqa`/`arc-challenge`/`arc-easy` (arc),
    /// `truthfulqa-mc`/`truthful_qa` (truthfulqa), `hotpot` (hotpotqa).
    pub fn parse(name: &str) -> Option<Format> {
        let n: String = name
            .chars()
            .filter(|c| !matches!(c, '-' | '_' | ' '))
            .collect::<String>()
            .to_ascii_lowercase();
        Some(match n.as_str() {
            "aqua" | "aquarat" => Format::Aqua,
            "generic" | "jsonl" | "mcq" => Format::Generic,
            "arc" | "arcchallenge" | "arceasy" | "openbookqa" | "obqa" => Format::Arc,
            "mmlu" => Format::Mmlu,
            "hellaswag" => Format::HellaSwag,
            "truthfulqa" | "truthfulqamc" => Format::TruthfulQa,
            "logiqa" => Format::LogiQa,
            "strategyqa" => Format::StrategyQa,
            "hotpotqa" | "hotpot" => Format::HotpotQa,
            _ => return None,
        })
    }

    /// The `format` option's value: `None` for `auto` (or empty: detect it), else the
    /// format it names; an unknown name is an error listing the known ones.
    pub fn from_option(value: &str) -> Result<Option<Format>, DataError> {
        match value {
            "auto" | "" => Ok(None),
            name => Format::parse(name)
                .map(Some)
                .ok_or_else(|| DataError::File {
                    path: "--set format".into(),
                    message: format!(
                        "unknown format `{name}`; expected auto or one of: {}",
                        Format::NAMES.join(", ")
                    ),
                }),
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a file held.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The format read (detected or given).
    pub format: Format,
    pub questions: Vec<McQuestion>,
    /// Records left out, as `(line, reason)` (HotpotQA answers that are not yes/no).
    pub skipped: Vec<(u64, String)>,
}

/// Reads the file at `path` in `format` (detected when `None`); every question gets
/// `source` as its data set name.
pub fn load(path: &Path, format: Option<Format>, source: &str) -> Result<Loaded, DataError> {
    let text = jsonl::read_text(path)?;
    load_str(&path.display().to_string(), &text, format, source)
}

/// [`load`] for a built-in text or a file.
pub fn load_origin(
    origin: &Origin,
    format: Option<Format>,
    source: &str,
) -> Result<Loaded, DataError> {
    load_str(&origin.display(), &origin.text()?, format, source)
}

/// [`load`] for text already in memory; `path` is the name errors use.
pub fn load_str(
    path: &str,
    text: &str,
    format: Option<Format>,
    source: &str,
) -> Result<Loaded, DataError> {
    let src = Src { path };
    let text = jsonl::strip_bom(text);
    let Some(first) = text.trim_start().chars().next() else {
        return Err(jsonl::empty_file(path));
    };
    if first == '[' || first == '{' {
        let recs = json_records(&src, text)?;
        let format = match format {
            Some(f) => f,
            None => {
                let r = recs
                    .first()
                    .ok_or_else(|| src.file("the JSON array is empty"))?;
                let v = r.value(&src)?;
                let o = v
                    .as_object()
                    .ok_or_else(|| src.line(r.line, "expected a JSON object"))?;
                detect_json(o).ok_or_else(|| {
                    let keys: Vec<&str> = o.keys().map(String::as_str).collect();
                    src.line(
                        r.line,
                        format!(
                            "cannot tell the data format from this record (fields: {}); \
                             name the format, one of: {}",
                            keys.join(", "),
                            Format::NAMES.join(", ")
                        ),
                    )
                })?
            }
        };
        load_json(&src, &recs, format, source)
    } else {
        let format = format.unwrap_or_else(|| {
            let first_line = text.lines().map(str::trim).find(|l| !l.is_empty());
            let is_letter = first_line.is_some_and(|l| {
                l.chars().count() == 1 && l.chars().all(|c| "abcdABCD".contains(c))
            });
            if is_letter {
                Format::LogiQa
            } else {
                Format::Mmlu
            }
        });
        let mut out = match format {
            Format::LogiQa => logiqa::logiqa_text(&src, text, source)?,
            Format::Mmlu => mmlu::mmlu_csv(&src, text, source)?,
            other => {
                return Err(src.file(format!(
                    "expected JSON (an array of records, or one record a line) for the `{other}` format"
                )))
            }
        };
        out.format = format;
        Ok(out)
    }
}

/// The format a JSON record looks like, if any.
pub fn detect_json(o: &Map<String, Value>) -> Option<Format> {
    let has = |k: &str| o.get(k).is_some_and(|v| !v.is_null());
    let format = if has("mc1_targets") {
        Format::TruthfulQa
    } else if has("endings") && (has("ctx") || has("ctx_a")) {
        Format::HellaSwag
    } else if has("answerKey") || o.get("question").is_some_and(Value::is_object) {
        Format::Arc
    } else if has("options") && has("correct") {
        Format::Aqua
    } else if has("options")
        && (has("correct_option")
            || (has("query") || has("text") || has("context"))
                && o.get("answer").is_some_and(Value::is_number))
    {
        Format::LogiQa
    } else if has("qid") || o.get("answer").is_some_and(Value::is_boolean) {
        Format::StrategyQa
    } else if has("_id") || has("supporting_facts") || (has("type") && has("level")) {
        Format::HotpotQa
    } else if has("choices") && has("answer") && has("subject") {
        Format::Mmlu
    } else if has("choices") && has("answer") {
        Format::Generic
    } else {
        return None;
    };
    Some(format)
}

/// The file errors are about.
struct Src<'a> {
    path: &'a str,
}

impl Src<'_> {
    fn line(&self, line: u64, message: impl Into<String>) -> DataError {
        DataError::Line {
            path: self.path.to_string(),
            line,
            message: message.into(),
        }
    }
    fn file(&self, message: impl Into<String>) -> DataError {
        DataError::File {
            path: self.path.to_string(),
            message: message.into(),
        }
    }
}

/// One JSON record: the line it starts on and its text.
struct Rec<'a> {
    line: u64,
    raw: &'a str,
}

impl Rec<'_> {
    fn value(&self, src: &Src) -> Result<Value, DataError> {
        serde_json::from_str(self.raw).map_err(|e| {
            // serde's position is within the record: turn it into a file line.
            let line = self.line + (e.line() as u64).saturating_sub(1);
            let msg = e.to_string();
            let msg = match msg.rfind(" at line ") {
                Some(p) => msg[..p].to_string(),
                None => msg,
            };
            src.line(line, format!("not valid JSON: {msg}"))
        })
    }
}

/// The records of a JSON array (with the line each starts on) or of JSON Lines.
fn json_records<'a>(src: &Src, text: &'a str) -> Result<Vec<Rec<'a>>, DataError> {
    let start = text.len() - text.trim_start().len();
    if text[start..].starts_with('[') {
        array_records(src, text, start)
    } else {
        Ok(text
            .split('\n')
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| Rec {
                line: i as u64 + 1,
                raw: l.trim(),
            })
            .collect())
    }
}

/// Splits a JSON array (opening `[` at byte `open`) into its elements without parsing
/// them, counting lines; strings and nesting are tracked so that commas and brackets
/// inside them do not split.
fn array_records<'a>(src: &Src, text: &'a str, open: usize) -> Result<Vec<Rec<'a>>, DataError> {
    let b = text.as_bytes();
    let mut line = 1 + b[..open].iter().filter(|&&c| c == b'\n').count() as u64;
    let open_line = line;
    let unclosed = || src.line(open_line, "the JSON array is not closed (no `]`)");
    let mut pos = open + 1;
    let mut recs = Vec::new();
    loop {
        while pos < b.len() && b[pos].is_ascii_whitespace() {
            if b[pos] == b'\n' {
                line += 1;
            }
            pos += 1;
        }
        if pos >= b.len() {
            return Err(unclosed());
        }
        if b[pos] == b']' && recs.is_empty() {
            pos += 1;
            break;
        }
        let (start, start_line) = (pos, line);
        let (mut depth, mut in_str, mut esc) = (0usize, false, false);
        let end = loop {
            let Some(&c) = b.get(pos) else {
                return Err(unclosed());
            };
            if c == b'\n' {
                line += 1;
            }
            if in_str {
                if esc {
                    esc = false;
                } else if c == b'\\' {
                    esc = true;
                } else if c == b'"' {
                    in_str = false;
                }
            } else {
                match c {
                    b'"' => in_str = true,
                    b'[' | b'{' => depth += 1,
                    b']' | b'}' if depth > 0 => depth -= 1,
                    b']' | b',' if depth == 0 => break c,
                    _ => {}
                }
            }
            pos += 1;
        };
        let raw = text[start..pos].trim_end();
        if raw.is_empty() {
            return Err(src.line(
                start_line,
                "an empty element in the JSON array (a stray or trailing comma?)",
            ));
        }
        recs.push(Rec {
            line: start_line,
            raw,
        });
        pos += 1;
        if end == b']' {
            break;
        }
    }
    if !text[pos..].trim().is_empty() {
        let rest = pos + (text[pos..].len() - text[pos..].trim_start().len());
        let l = line + b[pos..rest].iter().filter(|&&c| c == b'\n').count() as u64;
        return Err(src.line(l, "unexpected text after the end of the JSON array"));
    }
    Ok(recs)
}

/// One parsed record.
enum Row {
    Question {
        id: String,
        question: String,
        choices: Vec<String>,
        answer: usize,
    },
    Skip(String),
}

/// Collects questions: validation, trimming, unique ids.
struct Collector<'a> {
    src: &'a Src<'a>,
    source: &'a str,
    out: Loaded,
    /// By explicit id (or position), and by what the model is shown.
    ids: Duplicates,
    contents: Duplicates,
}

impl<'a> Collector<'a> {
    fn new(src: &'a Src<'a>, source: &'a str, format: Format) -> Self {
        Collector {
            src,
            source,
            out: Loaded {
                format,
                questions: Vec::new(),
                skipped: Vec::new(),
            },
            ids: Duplicates::new(),
            contents: Duplicates::new(),
        }
    }

    fn add(&mut self, line: u64, row: Row) -> Result<(), DataError> {
        let (id, question, choices, answer) = match row {
            Row::Skip(reason) => {
                self.out.skipped.push((line, reason));
                return Ok(());
            }
            Row::Question {
                id,
                question,
                choices,
                answer,
            } => (id, question, choices, answer),
        };
        let q = McQuestion {
            id,
            question: question.trim().to_string(),
            choices: choices.iter().map(|c| c.trim().to_string()).collect(),
            answer,
            source: self.source.to_string(),
        };
        q.validate().map_err(|m| self.src.line(line, m))?;
        let text = q.question.len() + q.choices.iter().map(String::len).sum::<usize>();
        check_prompt_size(text).map_err(|m| self.src.line(line, m))?;
        self.ids
            .check(self.src.path, line, &[&q.id], || format!("id `{}`", q.id))?;
        let mut key = vec![q.question.as_str()];
        key.extend(q.choices.iter().map(String::as_str));
        self.contents.check(self.src.path, line, &key, || {
            "question: the same question and choices".into()
        })?;
        self.out.questions.push(q);
        Ok(())
    }
}

fn load_json(src: &Src, recs: &[Rec], format: Format, source: &str) -> Result<Loaded, DataError> {
    let mut c = Collector::new(src, source, format);
    for (n, rec) in recs.iter().enumerate() {
        let v = rec.value(src)?;
        let o = v
            .as_object()
            .ok_or_else(|| src.line(rec.line, "expected a JSON object"))?;
        let ordinal = n + 1;
        let row = match format {
            Format::Aqua => aqua::aqua(o, ordinal),
            Format::Generic | Format::Mmlu => generic::generic(o, ordinal),
            Format::Arc => arc::arc(o, ordinal),
            Format::HellaSwag => hellaswag::hellaswag(o, ordinal),
            Format::TruthfulQa => truthfulqa::truthfulqa(o, rec.raw, ordinal),
            Format::LogiQa => logiqa::logiqa_json(o, ordinal),
            Format::StrategyQa => strategyqa::strategyqa(o, ordinal),
            Format::HotpotQa => hotpotqa::hotpotqa(o, ordinal),
        }
        .map_err(|m| src.line(rec.line, m))?;
        c.add(rec.line, row)?;
    }
    Ok(c.out)
}

// ---- field helpers -------------------------------------------------------------------

type Obj = Map<String, Value>;

fn field<'v>(o: &'v Obj, key: &str) -> Result<&'v Value, String> {
    match o.get(key) {
        Some(Value::Null) | None => Err(format!("missing field `{key}`")),
        Some(v) => Ok(v),
    }
}

/// A string field (numbers are taken as their text).
fn text(o: &Obj, key: &str) -> Result<String, String> {
    as_text(field(o, key)?).ok_or_else(|| format!("`{key}` must be a string"))
}

/// A string field that may be missing or null.
fn opt_text(o: &Obj, key: &str) -> Result<Option<String>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => as_text(v)
            .map(Some)
            .ok_or_else(|| format!("`{key}` must be a string")),
    }
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An array of strings (numbers are taken as their text).
fn text_list(v: &Value, what: &str) -> Result<Vec<String>, String> {
    let a = v
        .as_array()
        .ok_or_else(|| format!("`{what}` must be an array of strings"))?;
    a.iter()
        .enumerate()
        .map(|(i, x)| {
            as_text(x).ok_or_else(|| format!("`{what}` item {} must be a string, got {x}", i + 1))
        })
        .collect()
}

/// The record's id from the first of `keys` present, else its position in the file.
fn id_of(o: &Obj, keys: &[&str], ordinal: usize) -> Result<String, String> {
    for key in keys {
        match o.get(*key) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) if !s.trim().is_empty() => return Ok(s.trim().to_string()),
            Some(Value::Number(n)) => return Ok(n.to_string()),
            Some(other) => {
                return Err(format!("`{key}` must be a string or a number, got {other}"))
            }
        }
    }
    Ok(ordinal.to_string())
}

fn too_many(n: usize, what: &str) -> Result<(), String> {
    if n > MAX_CHOICES {
        Err(format!(
            "has {n} {what}, more than the {MAX_CHOICES} that letters A–Z can name"
        ))
    } else {
        Ok(())
    }
}

/// An answer given as a letter, checked against the number of choices.
fn letter_answer(what: &str, s: &str, n: usize) -> Result<usize, String> {
    match parse_letter(s) {
        Some(i) if i < n => Ok(i),
        Some(i) => Err(format!(
            "{what} is {}, but there are only {n} choices",
            letter(i)
        )),
        None => Err(format!(
            "{what} must be a choice letter, got `{}`",
            s.trim()
        )),
    }
}

/// An answer given as a 0-based index, a letter or the text of a choice.
fn flexible_answer(v: &Value, key: &str, choices: &[String]) -> Result<usize, String> {
    let n = choices.len();
    match v {
        Value::Number(x) => match x.as_u64() {
            Some(i) if (i as usize) < n => Ok(i as usize),
            Some(i) => Err(format!(
                "`{key}` is index {i}, but there are only {n} choices (indices start at 0)"
            )),
            None => Err(format!("`{key}` must be a whole number from 0, got {x}")),
        },
        Value::String(s) => {
            let by_text = choices.iter().position(|c| c.trim() == s.trim());
            let by_letter = parse_letter(s);
            match (by_text, by_letter) {
                (Some(t), Some(l)) if t != l => Err(format!(
                    "`{key}` `{s}` is ambiguous: the letter of choice ({}) and the text of choice ({})",
                    letter(l.min(MAX_CHOICES - 1)),
                    letter(t)
                )),
                (Some(t), _) => Ok(t),
                (None, Some(_)) => letter_answer(&format!("`{key}`"), s, n),
                (None, None) => Err(format!(
                    "`{key}` `{s}` is neither a choice letter nor the text of a choice"
                )),
            }
        }
        other => Err(format!(
            "`{key}` must be an index, a letter or the text of a choice, got {other}"
        )),
    }
}

fn yes_no() -> Vec<String> {
    vec!["Yes".into(), "No".into()]
}

#[cfg(test)]
mod tests {
    use super::test_support::{err, err_bytes, ok, AQUA};
    use super::*;

    #[test]
    fn json_array_structure_errors() {
        let rec = r#"{"question": "Q", "choices": ["a", "b"], "answer": 0}"#;
        // A syntax error inside the second record points at its own line.
        let broken = format!("[\n  {rec},\n  {{\"question\": \"Q2\",\n   \"choices\": [\"a\" \"b\"], \"answer\": 0}}\n]");
        let e = err("a.json", &broken, None);
        assert!(
            e.starts_with("FILE:4: not valid JSON: expected `,` or `]`"),
            "{e}"
        );
        assert_eq!(
            err("a.json", &format!("[{rec},\n{rec}"), None),
            "FILE:1: the JSON array is not closed (no `]`)"
        );
        assert_eq!(
            err("a.json", &format!("[{rec},\n]"), None),
            "FILE:2: an empty element in the JSON array (a stray or trailing comma?)"
        );
        assert_eq!(
            err("a.json", &format!("[{rec}]\n\n{rec}"), None),
            "FILE:3: unexpected text after the end of the JSON array"
        );
        assert_eq!(
            err("a.json", " [ ] ", None),
            "FILE: the JSON array is empty"
        );
        assert!(ok("a.json", "[]", Some(Format::Generic))
            .questions
            .is_empty());
        // Strings may hold brackets, commas and escaped quotes.
        let tricky = r#"[{"question": "a ] b, \" }", "choices": ["[", "]"], "answer": "]"}]"#;
        let l = ok("t.json", tricky, None);
        assert_eq!(
            (l.questions[0].question.as_str(), l.questions[0].answer),
            ("a ] b, \" }", 1)
        );
    }

    #[test]
    fn detection_and_names() {
        for f in Format::ALL {
            assert_eq!(Format::parse(f.name()), Some(f));
            assert_eq!(f.to_string(), f.name());
        }
        assert_eq!(Format::parse("OpenBookQA"), Some(Format::Arc));
        assert_eq!(Format::parse("AQuA-RAT"), Some(Format::Aqua));
        assert_eq!(Format::parse("truthful_qa"), Some(Format::TruthfulQa));
        assert_eq!(Format::parse("jsonl"), Some(Format::Generic));
        assert_eq!(Format::parse("squad"), None);
        assert_eq!(
            err("x.jsonl", "{\"prompt\": \"hi\", \"completion\": \"there\"}\n", None),
            "FILE:1: cannot tell the data format from this record (fields: completion, prompt); \
             name the format, one of: aqua, generic, arc, mmlu, hellaswag, truthfulqa, logiqa, strategyqa, hotpotqa"
        );
        assert_eq!(
            err("x.jsonl", "[1, 2]", None),
            "FILE:1: expected a JSON object"
        );
        // An explicit format overrides detection.
        let json = r#"{"question": "2+2?", "subject": "math", "choices": ["3", "4"], "answer": 1}"#;
        assert_eq!(
            ok("m.jsonl", json, Some(Format::Generic)).format,
            Format::Generic
        );
        assert_eq!(
            err("m.jsonl", json, Some(Format::Aqua)),
            "FILE:1: missing field `options`"
        );
        assert_eq!(
            err("m.csv", "q,a,b,A\n", Some(Format::Aqua)),
            "FILE: expected JSON (an array of records, or one record a line) for the `aqua` format"
        );
        for blank in ["", " \n", "\u{feff}", "\u{feff}\n\n"] {
            assert_eq!(
                err("e.json", blank, None),
                "FILE: no records: the file is empty or blank"
            );
        }
        let missing = load(Path::new("/nonexistent/x.json"), None, "s")
            .unwrap_err()
            .to_string();
        assert!(
            missing.starts_with("/nonexistent/x.json: cannot read:"),
            "{missing}"
        );
        // A byte-order mark is ignored.
        assert_eq!(
            ok("bom.jsonl", &format!("\u{feff}{}", AQUA), None)
                .questions
                .len(),
            2
        );
    }

    #[test]
    fn invalid_utf8_is_reported_at_its_line_in_every_shape() {
        let want = "FILE:3: not UTF-8 text (byte 0xFF at column 16); save the file as UTF-8";
        // JSON Lines, a JSON array, MMLU CSV, LogiQA text.
        let jsonl = b"{\"question\": \"Q1\", \"choices\": [\"a\", \"b\"], \"answer\": 0}\n\n{\"question\": \"Q\xFF\", \"choices\": [\"a\", \"b\"], \"answer\": 0}\n";
        assert_eq!(err_bytes("g.jsonl", jsonl, None), want);
        let array = b"[\n{\"question\": \"Q1\", \"choices\": [\"a\", \"b\"], \"answer\": 0},\n{\"question\": \"Q\xFF\", \"choices\": [\"a\", \"b\"], \"answer\": 0}]\n";
        assert_eq!(err_bytes("g.json", array, None), want);
        let csv = b"What is 2+2?,3,4,5,6,B\nWhat is 3+3?,5,6,7,8,B\nWhat is 4+4?,\xFF,8,9,10,B\n";
        assert_eq!(
            err_bytes("m.csv", csv, None),
            want.replace("column 16", "column 14")
        );
        let logiqa = b"a\nContext.\nQuestion\xFF?\nA. x\nB. y\n";
        assert_eq!(
            err_bytes("l.txt", logiqa, None),
            want.replace("column 16", "column 9")
        );
    }

    #[test]
    fn a_question_over_the_size_limit_is_refused() {
        let rec = |q: &str, c: &str| {
            serde_json::json!({"question": q, "choices": [c, "b"], "answer": 0}).to_string()
        };
        let small = rec("Q?", "a");
        // The question and its choices together: what the prompt shows.
        let half = "x".repeat(1 << 19);
        let big = rec(&half, &half);
        assert_eq!(
            err("g.jsonl", &format!("{small}\n{big}\n"), None),
            "FILE:2: the prompt text is 1048577 bytes, over the limit of 1048576 bytes (1 MiB) for one record"
        );
        let csv = format!("Q?,a,b,A\n{half},{half},b,A\n");
        assert!(err("m.csv", &csv, None).starts_with("FILE:2: the prompt text is 1048"));
        let l = ok("g.jsonl", &rec(&half[3..], &half), None);
        assert_eq!(l.questions.len(), 1);
    }

    #[test]
    fn a_question_and_choices_given_twice_are_refused() {
        let rec = |id: &str, q: &str, c: &[&str]| {
            serde_json::json!({"id": id, "question": q, "choices": c, "answer": 0}).to_string()
        };
        let text = [
            rec("a", "Q?", &["x", "y"]),
            rec("b", "Q?", &["x", "z"]),
            rec("c", "R?", &["x", "y"]),
            rec("d", " Q? ", &["x ", "y"]),
        ]
        .join("\n");
        assert_eq!(
            err("g.jsonl", &text, None),
            "FILE:4: duplicate question: the same question and choices (first at line 1)"
        );
        // Without ids (AQuA): the same.
        let aqua = AQUA.lines().next().unwrap();
        assert_eq!(
            err("a.jsonl", &format!("{AQUA}{aqua}\n"), None),
            "FILE:4: duplicate question: the same question and choices (first at line 1)"
        );
        // Same question, other choices (or choices in another order): another question.
        let l = ok(
            "g.jsonl",
            &text
                .replace("\" Q? \"", "\"Q?\"")
                .replace("[\"x \",\"y\"]", "[\"y\",\"x\"]"),
            None,
        );
        assert_eq!(l.questions.len(), 4);
    }

    #[test]
    fn built_in_text() {
        let o = Origin::Embedded("aqua/test.json", AQUA);
        let l = load_origin(&o, None, "aqua").unwrap();
        assert_eq!(l.questions.len(), 2);
        let bad = AQUA.replace("\"correct\": \"B\"", "\"correct\": \"?\"");
        let e = load_str(
            "<built-in>/aqua/test.json",
            &bad,
            Some(Format::Aqua),
            "aqua",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "<built-in>/aqua/test.json:1: `correct` must be a choice letter, got `?`"
        );
    }
}
