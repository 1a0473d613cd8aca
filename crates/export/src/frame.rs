//! The sample table and the result tables as rows of typed columns, written as CSV or
//! Parquet.
//!
//! **Samples** (`samples.csv`, `samples.parquet`), one row per record, columns in this
//! order:
//! - `id`, `epoch`, `stage` (the stage of a multi-stage run; empty otherwise);
//! - `input.FIELD` for each top-level field of the sample's `input` (an input that is not
//!   an object is one column, `input`);
//! - `score.NAME` for each score; a score that is an object is flattened one level, as
//!   `score.NAME.SUB`;
//! - `input_tokens`, `output_tokens` (the record's usage), `calls` (model calls in the
//!   transcript), `error` (empty unless the sample failed), `started_at` (RFC 3339),
//!   `duration_ms`.
//!
//! The input and score columns are the union over all records, each in the order it first
//! appears; a record without one has it empty (null). Values deeper than these columns
//! (arrays, objects) are compact JSON text.
//!
//! **Result tables** (`table.NAME.csv`, `.parquet`): the table's columns; a column holding
//! estimates becomes `COL`, `COL.lo`, `COL.hi` and, when any estimate has its number of
//! units, `COL.n`. A column name met twice gets `.2`, `.3`, ….
//!
//! **Types.** CSV: numbers as JSON writes them, booleans `true`/`false`, null empty, text as
//! is. Parquet: each column gets one nullable type from all its values — Int64 (only
//! integers), Float64 (numbers, some not integers), Boolean, Utf8 (text; or arrays and
//! objects as JSON text). A column whose values mix these kinds (text and numbers, say) is
//! Utf8 with every value as JSON text (`"a"`, `1`, `true`), so no value is lost or
//! ambiguous; a column that is always null is Utf8.
//!
//! What is lost: transcripts (the prompts, answers, tool steps and notes; the Inspect
//! export keeps them), per-call details, the tables' titles, captions, notes and decimals.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use shammie_core::{Cell, SampleRecord, Table};

use crate::{ExportError, Format, Source};

/// Rows per Parquet record batch (and the most rows held in memory at once).
pub const BATCH_ROWS: usize = 4096;

/// What a column holds, as far as its values have been seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only nulls so far.
    Null,
    Int,
    /// Numbers, at least one of them not an `i64`.
    Float,
    Bool,
    Text,
    /// Arrays and objects (written as JSON text).
    Json,
    /// Values of different kinds (written as JSON text).
    Mixed,
}

impl Kind {
    pub fn of(v: &Value) -> Kind {
        match v {
            Value::Null => Kind::Null,
            Value::Bool(_) => Kind::Bool,
            Value::Number(n) if n.is_i64() => Kind::Int,
            Value::Number(_) => Kind::Float,
            Value::String(_) => Kind::Text,
            Value::Array(_) | Value::Object(_) => Kind::Json,
        }
    }

    /// The kind of a column holding values of kinds `self` and `other`.
    pub fn merge(self, other: Kind) -> Kind {
        use Kind::*;
        match (self, other) {
            (Null, k) | (k, Null) => k,
            (a, b) if a == b => a,
            (Int, Float) | (Float, Int) => Float,
            _ => Mixed,
        }
    }
}

/// A set of columns in a fixed order, with the kind of each.
#[derive(Debug, Default)]
pub struct Columns {
    /// (group, name, kind), in order of first appearance.
    cols: Vec<(u8, String, Kind)>,
    index: HashMap<String, usize>,
}

impl Columns {
    /// Notes `v` in column `name` of `group` (columns are ordered by group, then by first
    /// appearance).
    pub fn observe(&mut self, group: u8, name: &str, v: &Value) {
        let k = Kind::of(v);
        match self.index.get(name) {
            Some(&i) => self.cols[i].2 = self.cols[i].2.merge(k),
            None => {
                self.index.insert(name.to_string(), self.cols.len());
                self.cols.push((group, name.to_string(), k));
            }
        }
    }

    /// The columns in their final order, as (name, kind).
    pub fn finish(mut self) -> Vec<(String, Kind)> {
        // A stable sort: first appearance within each group.
        self.cols.sort_by_key(|c| c.0);
        self.cols.into_iter().map(|(_, n, k)| (n, k)).collect()
    }
}

const HEAD: u8 = 0;
const INPUT: u8 = 1;
const SCORE: u8 = 2;
const TAIL: u8 = 3;

/// The cells of one record's row, as (group, column, value), in column order within each
/// group.
pub fn sample_cells(stage: Option<&str>, r: &SampleRecord) -> Vec<(u8, String, Value)> {
    let mut out = vec![
        (HEAD, "id".to_string(), Value::from(r.id.as_str())),
        (HEAD, "epoch".into(), Value::from(r.epoch)),
        (
            HEAD,
            "stage".into(),
            stage.map(Value::from).unwrap_or(Value::Null),
        ),
    ];
    match &r.input {
        Value::Object(m) => {
            for (k, v) in m {
                out.push((INPUT, format!("input.{k}"), v.clone()));
            }
        }
        Value::Null => {}
        v => out.push((INPUT, "input".into(), v.clone())),
    }
    for (name, v) in &r.scores {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (sub, sv) in m {
                    out.push((SCORE, format!("score.{name}.{sub}"), sv.clone()));
                }
            }
            v => out.push((SCORE, format!("score.{name}"), v.clone())),
        }
    }
    out.extend([
        (
            TAIL,
            "input_tokens".into(),
            Value::from(r.usage.input_tokens),
        ),
        (
            TAIL,
            "output_tokens".into(),
            Value::from(r.usage.output_tokens),
        ),
        (
            TAIL,
            "calls".into(),
            Value::from(r.transcript.calls().count()),
        ),
        (
            TAIL,
            "error".into(),
            r.error.as_deref().map(Value::from).unwrap_or(Value::Null),
        ),
        (
            TAIL,
            "started_at".into(),
            Value::from(r.started_at.as_str()),
        ),
        (TAIL, "duration_ms".into(), Value::from(r.duration_ms)),
    ]);
    out
}

/// A result table as named columns and rows of values (estimates spread over
/// `COL`, `COL.lo`, `COL.hi`, `COL.n`; counts over `COL` and `COL.of`).
pub fn table_frame(t: &Table) -> (Vec<(String, Kind)>, Vec<Vec<Value>>) {
    // Which columns hold estimates, and whether any of them has its n.
    let ncols = t.columns.len();
    let mut estimate = vec![false; ncols];
    let mut with_n = vec![false; ncols];
    let mut count = vec![false; ncols];
    for row in &t.rows {
        for (i, c) in row.iter().enumerate().take(ncols) {
            match c {
                Cell::Estimate { n, .. } => {
                    estimate[i] = true;
                    with_n[i] |= n.is_some();
                }
                Cell::Count { .. } => count[i] = true,
                _ => {}
            }
        }
    }
    let mut names = Vec::new();
    let mut seen = HashMap::<String, usize>::new();
    let mut unique = |name: String| -> String {
        let count = seen.entry(name.clone()).or_insert(0);
        *count += 1;
        if *count == 1 {
            name
        } else {
            format!("{name}.{count}")
        }
    };
    for (i, col) in t.columns.iter().enumerate() {
        let base = unique(col.clone());
        if estimate[i] {
            names.extend([base.clone(), format!("{base}.lo"), format!("{base}.hi")]);
            if with_n[i] {
                names.push(format!("{base}.n"));
            }
        } else if count[i] {
            names.extend([base.clone(), format!("{base}.of")]);
        } else {
            names.push(base);
        }
    }
    let mut rows = Vec::with_capacity(t.rows.len());
    for row in &t.rows {
        let mut out = Vec::with_capacity(names.len());
        for i in 0..ncols {
            let cell = row.get(i).unwrap_or(&Cell::Empty);
            let v = match cell {
                Cell::Estimate { estimate, .. } => num(*estimate),
                Cell::Count { count, .. } => Value::from(*count),
                Cell::Int(x) => Value::from(*x),
                Cell::Float(x) => num(*x),
                Cell::Text(s) => Value::from(s.as_str()),
                Cell::Empty => Value::Null,
            };
            out.push(v);
            if estimate[i] {
                let (lo, hi, n) = match cell {
                    Cell::Estimate { lo, hi, n, .. } => (num(*lo), num(*hi), Value::from(*n)),
                    _ => (Value::Null, Value::Null, Value::Null),
                };
                out.push(lo);
                out.push(hi);
                if with_n[i] {
                    out.push(n);
                }
            } else if count[i] {
                out.push(match cell {
                    Cell::Count { of, .. } => Value::from(*of),
                    _ => Value::Null,
                });
            }
        }
        rows.push(out);
    }
    let mut cols = Columns::default();
    for n in &names {
        cols.observe(0, n, &Value::Null);
    }
    for row in &rows {
        for (n, v) in names.iter().zip(row) {
            cols.observe(0, n, v);
        }
    }
    (cols.finish(), rows)
}

/// A float as a JSON number (a non-finite one, which JSON cannot hold, as null).
fn num(x: f64) -> Value {
    serde_json::Number::from_f64(x)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// Where rows go: a CSV or a Parquet file.
pub(crate) trait Sink {
    fn row(&mut self, row: &[Value]) -> Result<(), ExportError>;
    fn finish(self: Box<Self>) -> Result<PathBuf, ExportError>;
}

fn open_sink(
    format: Format,
    path: &Path,
    cols: &[(String, Kind)],
) -> Result<Box<dyn Sink>, ExportError> {
    match format {
        Format::Csv => Ok(Box::new(CsvSink::create(path, cols)?)),
        Format::Parquet => Ok(Box::new(crate::parquet_out::ParquetSink::create(
            path, cols,
        )?)),
        Format::Inspect => unreachable!("not a table format"),
    }
}

/// `samples.EXT` and one `table.NAME.EXT` per results table, in `dir`.
pub(crate) fn export_tables(
    src: &Source,
    format: Format,
    dir: &Path,
) -> Result<Vec<PathBuf>, ExportError> {
    let ext = format.name();
    // Pass 1: the columns and their kinds.
    let mut cols = Columns::default();
    src.for_each(|stage, r| {
        for (g, n, v) in sample_cells(stage, &r) {
            cols.observe(g, &n, &v);
        }
        Ok(())
    })?;
    if cols.cols.is_empty() {
        // A run without records still gets the fixed columns.
        for (g, n, _) in sample_cells(None, &empty_record()) {
            cols.observe(g, &n, &Value::Null);
        }
    }
    let cols = cols.finish();
    let index: HashMap<&str, usize> = cols
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (n.as_str(), i))
        .collect();
    // Pass 2: the rows.
    let mut sink = open_sink(format, &dir.join(format!("samples.{ext}")), &cols)?;
    let mut row = vec![Value::Null; cols.len()];
    src.for_each(|stage, r| {
        row.iter_mut().for_each(|v| *v = Value::Null);
        for (_, n, v) in sample_cells(stage, &r) {
            row[index[n.as_str()]] = v;
        }
        sink.row(&row)
    })?;
    let mut files = vec![sink.finish()?];
    if let Some(results) = &src.results {
        let mut used = HashMap::<String, usize>::new();
        for t in &results.tables {
            let (cols, rows) = table_frame(t);
            let mut name = file_safe(&t.name);
            let count = used.entry(name.clone()).or_insert(0);
            *count += 1;
            if *count > 1 {
                name = format!("{name}.{count}");
            }
            let mut sink = open_sink(format, &dir.join(format!("table.{name}.{ext}")), &cols)?;
            for r in &rows {
                sink.row(r)?;
            }
            files.push(sink.finish()?);
        }
    }
    Ok(files)
}

/// A table name as a file name part: letters, digits, `-`, `_` and `.`; anything else `_`.
fn file_safe(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    match s.trim_matches('.') {
        "" => "table".into(),
        t => t.to_string(),
    }
}

fn empty_record() -> SampleRecord {
    SampleRecord {
        id: String::new(),
        epoch: 0,
        input: Value::Null,
        transcript: Default::default(),
        scores: Default::default(),
        usage: Default::default(),
        error: None,
        started_at: String::new(),
        duration_ms: 0,
    }
}

/// A value as CSV text: null empty, text as is, everything else as JSON.
pub fn csv_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

struct CsvSink {
    path: PathBuf,
    csv: csv::Writer<crate::AtomicFile>,
}

impl CsvSink {
    fn create(path: &Path, cols: &[(String, Kind)]) -> Result<Self, ExportError> {
        let mut s = CsvSink {
            path: path.to_path_buf(),
            csv: csv::Writer::from_writer(crate::AtomicFile::create(path)?),
        };
        s.write_record(cols.iter().map(|(n, _)| n.clone()))?;
        Ok(s)
    }

    fn write_record(&mut self, fields: impl Iterator<Item = String>) -> Result<(), ExportError> {
        self.csv
            .write_record(fields)
            .map_err(|e| ExportError::Write {
                path: self.path.clone(),
                message: e.to_string(),
            })
    }
}

impl Sink for CsvSink {
    fn row(&mut self, row: &[Value]) -> Result<(), ExportError> {
        self.write_record(row.iter().map(csv_text))
    }
    fn finish(self: Box<Self>) -> Result<PathBuf, ExportError> {
        let path = self.path;
        let file = self
            .csv
            .into_inner()
            .map_err(|e| crate::io_err(&path)(e.into_error()))?;
        file.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A count column becomes two integer columns, `COL` and `COL.of`; an estimate column
    /// beside it keeps its own spread.
    #[test]
    fn counts_are_two_numbers() {
        let t = Table {
            name: "t".into(),
            title: String::new(),
            caption: String::new(),
            decimals: None,
            columns: vec!["env".into(), "gamed".into(), "rate".into()],
            rows: vec![
                vec![
                    Cell::text("a"),
                    Cell::count(3, 8, None),
                    Cell::estimate(0.375, 0.1, 0.7, 8),
                ],
                vec![Cell::text("b"), Cell::Empty, Cell::Empty],
            ],
            notes: Vec::new(),
        };
        let (cols, rows) = table_frame(&t);
        let names: Vec<&str> = cols.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["env", "gamed", "gamed.of", "rate", "rate.lo", "rate.hi", "rate.n"]
        );
        assert_eq!(cols[1].1, Kind::Int);
        assert_eq!(cols[2].1, Kind::Int);
        assert_eq!(rows[0][1], Value::from(3));
        assert_eq!(rows[0][2], Value::from(8));
        assert_eq!(rows[1][1], Value::Null);
        assert_eq!(rows[1][2], Value::Null);
    }
}
