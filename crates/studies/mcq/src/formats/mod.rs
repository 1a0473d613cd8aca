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
//! message` for the whole file. In a JSON array the line is **computed** for each record
//! (the line of its opening `{`), and a syntax error inside a record points at the line
//! of the error; a LogiQA block is reported at its first line (the answer letter). Ids
//! come from the record (`id`, `qid`, `_id`, `ind`) or, when it has none, are its
//! 1-based position among the file's records; a repeated id is an error. Every question
//! is checked with [`McQuestion::validate`].

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};
use shammie_engine::DataError;
use shammie_kit::answers::{label_of, AnswerKind};
use shammie_kit::jsonl::Origin;

use crate::mcq::{letter, letter_index, parse_letter, McQuestion, MAX_CHOICES};

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
    let display = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| DataError::File {
        path: display.clone(),
        message: format!("cannot read: {e}"),
    })?;
    let text = String::from_utf8(bytes).map_err(|e| DataError::File {
        path: display.clone(),
        message: format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ),
    })?;
    load_str(&display, &text, format, source)
}

/// [`load`] for a built-in text or a file.
pub fn load_origin(
    origin: &Origin,
    format: Option<Format>,
    source: &str,
) -> Result<Loaded, DataError> {
    match origin {
        Origin::Embedded(_, text) => load_str(&origin.display(), text, format, source),
        Origin::File(p) => load(p, format, source),
    }
}

/// [`load`] for text already in memory; `path` is the name errors use.
pub fn load_str(
    path: &str,
    text: &str,
    format: Option<Format>,
    source: &str,
) -> Result<Loaded, DataError> {
    let src = Src { path };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(first) = text.trim_start().chars().next() else {
        return Err(src.file("the file is empty"));
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
            Format::LogiQa => logiqa_text(&src, text, source)?,
            Format::Mmlu => mmlu_csv(&src, text, source)?,
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
    ids: HashMap<String, u64>,
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
            ids: HashMap::new(),
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
        if let Some(first) = self.ids.insert(q.id.clone(), line) {
            return Err(self.src.line(
                line,
                format!("duplicate id `{}` (first at line {first})", q.id),
            ));
        }
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
            Format::Aqua => aqua(o, ordinal),
            Format::Generic | Format::Mmlu => generic(o, ordinal),
            Format::Arc => arc(o, ordinal),
            Format::HellaSwag => hellaswag(o, ordinal),
            Format::TruthfulQa => truthfulqa(o, rec.raw, ordinal),
            Format::LogiQa => logiqa_json(o, ordinal),
            Format::StrategyQa => strategyqa(o, ordinal),
            Format::HotpotQa => hotpotqa(o, ordinal),
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

// ---- the formats ---------------------------------------------------------------------

fn aqua(o: &Obj, ordinal: usize) -> Result<Row, String> {
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

fn generic(o: &Obj, ordinal: usize) -> Result<Row, String> {
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

fn arc(o: &Obj, ordinal: usize) -> Result<Row, String> {
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

fn hellaswag(o: &Obj, ordinal: usize) -> Result<Row, String> {
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

/// A JSON object's entries in file order (serde_json's `Map` sorts its keys).
struct Entries(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Entries, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = a.next_entry::<String, Value>()? {
                    out.push(entry);
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Deserialize)]
struct TruthfulQaOrder {
    mc1_targets: Entries,
}

fn zero_one(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_f64() {
            Some(0.0) => Some(false),
            Some(1.0) => Some(true),
            _ => None,
        },
        _ => None,
    }
}

fn truthfulqa(o: &Obj, raw: &str, ordinal: usize) -> Result<Row, String> {
    let question = text(o, "question")?;
    let targets = field(o, "mc1_targets")?
        .as_object()
        .ok_or("`mc1_targets` must be an object")?;
    let hf = targets.get("choices").is_some_and(Value::is_array)
        && targets.get("labels").is_some_and(Value::is_array);
    let (choices, correct): (Vec<String>, Vec<bool>) = if hf {
        let choices = text_list(&targets["choices"], "mc1_targets.choices")?;
        let labels = targets["labels"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if labels.len() != choices.len() {
            return Err(format!(
                "`mc1_targets.choices` has {} items but `mc1_targets.labels` has {}",
                choices.len(),
                labels.len()
            ));
        }
        let correct = labels
            .iter()
            .map(|l| {
                zero_one(l).ok_or_else(|| format!("`mc1_targets.labels` must be 0 or 1, got {l}"))
            })
            .collect::<Result<_, _>>()?;
        (choices, correct)
    } else {
        // The original mc_task.json: choice text → 0/1, in file order.
        let order: TruthfulQaOrder =
            serde_json::from_str(raw).map_err(|e| format!("`mc1_targets`: {e}"))?;
        let mut choices = Vec::new();
        let mut correct = Vec::new();
        for (k, v) in order.mc1_targets.0 {
            correct.push(zero_one(&v).ok_or_else(|| {
                format!("`mc1_targets` values must be 0 or 1, got {v} for `{k}`")
            })?);
            choices.push(k);
        }
        (choices, correct)
    };
    too_many(choices.len(), "choices")?;
    let marked: Vec<usize> = (0..correct.len()).filter(|&i| correct[i]).collect();
    if marked.len() != 1 {
        return Err(format!(
            "`mc1_targets` must mark exactly one choice correct (1), it marks {}",
            marked.len()
        ));
    }
    Ok(Row::Question {
        id: id_of(o, &["id"], ordinal)?,
        question,
        choices,
        answer: marked[0],
    })
}

fn logiqa_json(o: &Obj, ordinal: usize) -> Result<Row, String> {
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

fn strategyqa(o: &Obj, ordinal: usize) -> Result<Row, String> {
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

fn hotpotqa(o: &Obj, ordinal: usize) -> Result<Row, String> {
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

// ---- text formats --------------------------------------------------------------------

/// The letter and text of a LogiQA option line (`A. text`, `B.text`, `C) text`).
fn option_line(line: &str) -> Option<(usize, &str)> {
    let t = line.trim();
    let mut cs = t.char_indices();
    let (_, l) = cs.next()?;
    let (p, d) = cs.next()?;
    (l.is_ascii_uppercase() && matches!(d, '.' | '．' | ')' | '、'))
        .then(|| (letter_index(l).unwrap_or(0), t[p + d.len_utf8()..].trim()))
}

fn logiqa_text(src: &Src, text: &str, source: &str) -> Result<Loaded, DataError> {
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

fn mmlu_csv(src: &Src, text: &str, source: &str) -> Result<Loaded, DataError> {
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
    use super::*;
    use std::path::PathBuf;

    struct Fixture {
        _dir: tempfile::TempDir,
        path: PathBuf,
    }

    fn fixture(name: &str, text: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        Fixture { _dir: dir, path }
    }

    fn ok(name: &str, text: &str, format: Option<Format>) -> Loaded {
        let f = fixture(name, text);
        load(&f.path, format, "set").unwrap_or_else(|e| panic!("{e}"))
    }

    /// The error's text with the file's path replaced by `FILE`.
    fn err(name: &str, text: &str, format: Option<Format>) -> String {
        let f = fixture(name, text);
        let e = load(&f.path, format, "set")
            .expect_err("should fail")
            .to_string();
        e.replace(&f.path.display().to_string(), "FILE")
    }

    fn choices(q: &McQuestion) -> Vec<&str> {
        q.choices.iter().map(String::as_str).collect()
    }

    const AQUA: &str = r#"{"question": "What is 1 + 1?", "options": ["A)1", "B) 2 ", "C)3", "D)4", "E)5"], "rationale": "1 + 1 = 2.", "correct": "B"}

{"question": "Pick E.", "options": ["A)a", "B)b", "C)c", "D)d", "E)e"], "rationale": "", "correct": "E"}
"#;

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

    #[test]
    fn truthfulqa_original_and_hf() {
        // Pretty-printed like mc_task.json; choices keep the file's order.
        let text = r#"[
  {
    "question": "What is the capital of France?",
    "mc1_targets": {"Paris": 1, "Lyon": 0, "Berlin": 0},
    "mc2_targets": {"Paris": 1, "Lyon": 0, "Berlin": 0}
  },
  {
    "question": "Is the sky green?",
    "mc1_targets": {
      "No": 1,
      "Yes": 0
    }
  }
]
"#;
        let l = ok("mc_task.json", text, None);
        assert_eq!(l.format, Format::TruthfulQa);
        assert_eq!(choices(&l.questions[0]), ["Paris", "Lyon", "Berlin"]);
        assert_eq!(
            (l.questions[0].answer, l.questions[1].id.as_str()),
            (0, "2")
        );
        let bad = text.replace("\"Yes\": 0", "\"Yes\": 1");
        assert_eq!(
            err("mc_task.json", &bad, None),
            "FILE:7: `mc1_targets` must mark exactly one choice correct (1), it marks 2"
        );
        let bad = text.replace("\"Yes\": 0", "\"Yes\": 2");
        assert_eq!(
            err("mc_task.json", &bad, None),
            "FILE:7: `mc1_targets` values must be 0 or 1, got 2 for `Yes`"
        );

        let hf = r#"{"question": "Q?", "mc1_targets": {"choices": ["wrong", "right"], "labels": [0, 1]}, "mc2_targets": {"choices": [], "labels": []}}
{"question": "Q2?", "mc1_targets": {"choices": ["a", "b"], "labels": [0, 0]}}
"#;
        assert_eq!(
            err("tqa.jsonl", hf, None),
            "FILE:2: `mc1_targets` must mark exactly one choice correct (1), it marks 0"
        );
        let l = ok("tqa.jsonl", &hf.replace("[0, 0]", "[1, 0]"), None);
        assert_eq!((l.questions[0].answer, l.questions[1].answer), (1, 0));
    }

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
        assert_eq!(err("e.json", " \n", None), "FILE: the file is empty");
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
