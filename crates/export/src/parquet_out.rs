//! Rows of JSON values into a Parquet file, one typed nullable column each, in record
//! batches of [`BATCH_ROWS`] rows (or fewer, when their text passes [`BATCH_BYTES`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde_json::Value;

use crate::frame::{Kind, Sink, BATCH_ROWS};
use crate::{AtomicFile, ExportError};

/// Text held in one batch before it is written (bounds memory when fields are long).
const BATCH_BYTES: usize = 32 << 20;
/// Rows per row group: the writer keeps one row group's encoded pages in memory.
const ROW_GROUP_ROWS: usize = 16 * BATCH_ROWS;
const ROW_GROUP_BYTES: usize = 64 << 20;

enum Builder {
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    /// Text as is.
    Text(StringBuilder),
    /// Every value as JSON text (a mixed or nested column).
    Json(StringBuilder),
}

impl Builder {
    fn new(k: Kind) -> Self {
        match k {
            Kind::Int => Builder::Int(Int64Builder::with_capacity(BATCH_ROWS)),
            Kind::Float => Builder::Float(Float64Builder::with_capacity(BATCH_ROWS)),
            Kind::Bool => Builder::Bool(BooleanBuilder::with_capacity(BATCH_ROWS)),
            Kind::Text | Kind::Null => Builder::Text(StringBuilder::new()),
            Kind::Json | Kind::Mixed => Builder::Json(StringBuilder::new()),
        }
    }

    fn data_type(k: Kind) -> DataType {
        match k {
            Kind::Int => DataType::Int64,
            Kind::Float => DataType::Float64,
            Kind::Bool => DataType::Boolean,
            Kind::Text | Kind::Null | Kind::Json | Kind::Mixed => DataType::Utf8,
        }
    }

    /// Appends `v`; returns the bytes of text appended.
    fn append(&mut self, v: &Value) -> usize {
        match (self, v) {
            (Builder::Int(b), Value::Null) => b.append_null(),
            (Builder::Float(b), Value::Null) => b.append_null(),
            (Builder::Bool(b), Value::Null) => b.append_null(),
            (Builder::Text(b) | Builder::Json(b), Value::Null) => b.append_null(),
            (Builder::Int(b), v) => b.append_option(v.as_i64()),
            (Builder::Float(b), v) => b.append_option(v.as_f64()),
            (Builder::Bool(b), v) => b.append_option(v.as_bool()),
            (Builder::Text(b), Value::String(s)) => {
                b.append_value(s);
                return s.len();
            }
            (Builder::Text(b) | Builder::Json(b), v) => {
                let s = v.to_string();
                b.append_value(&s);
                return s.len();
            }
        }
        0
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Int(b) => Arc::new(b.finish()),
            Builder::Float(b) => Arc::new(b.finish()),
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::Text(b) | Builder::Json(b) => Arc::new(b.finish()),
        }
    }
}

pub(crate) struct ParquetSink {
    path: PathBuf,
    schema: SchemaRef,
    builders: Vec<Builder>,
    rows: usize,
    bytes: usize,
    writer: ArrowWriter<AtomicFile>,
}

impl ParquetSink {
    pub(crate) fn create(path: &Path, cols: &[(String, Kind)]) -> Result<Self, ExportError> {
        let schema: SchemaRef = Arc::new(Schema::new(
            cols.iter()
                .map(|(n, k)| Field::new(n, Builder::data_type(*k), true))
                .collect::<Vec<_>>(),
        ));
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
            .set_created_by(format!("shammie {}", env!("CARGO_PKG_VERSION")))
            .build();
        let file = AtomicFile::create(path)?;
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))
            .map_err(|e| parquet_err(path, e))?;
        Ok(ParquetSink {
            path: path.to_path_buf(),
            schema,
            builders: cols.iter().map(|(_, k)| Builder::new(*k)).collect(),
            rows: 0,
            bytes: 0,
            writer,
        })
    }

    fn write_batch(&mut self) -> Result<(), ExportError> {
        if self.rows == 0 {
            return Ok(());
        }
        let arrays = self.builders.iter_mut().map(Builder::finish).collect();
        let batch =
            RecordBatch::try_new(self.schema.clone(), arrays).map_err(|e| ExportError::Write {
                path: self.path.clone(),
                message: e.to_string(),
            })?;
        self.writer
            .write(&batch)
            .map_err(|e| parquet_err(&self.path, e))?;
        self.rows = 0;
        self.bytes = 0;
        Ok(())
    }
}

fn parquet_err(path: &Path, e: parquet::errors::ParquetError) -> ExportError {
    ExportError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

impl Sink for ParquetSink {
    fn row(&mut self, row: &[Value]) -> Result<(), ExportError> {
        for (b, v) in self.builders.iter_mut().zip(row) {
            self.bytes += b.append(v);
        }
        self.rows += 1;
        if self.rows >= BATCH_ROWS || self.bytes >= BATCH_BYTES {
            self.write_batch()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<PathBuf, ExportError> {
        self.write_batch()?;
        let path = self.path.clone();
        let file = self
            .writer
            .into_inner()
            .map_err(|e| parquet_err(&path, e))?;
        file.commit()
    }
}
