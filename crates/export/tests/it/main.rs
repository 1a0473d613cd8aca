//! Tests of `shammie-export` on hand-built run directories with known values
//! ([`fixture`]): the CSV cells exactly, the Parquet types and values read back with the
//! `parquet` crate's Arrow reader, the Inspect log's fields, the errors, and the Python
//! readers (pandas, polars, inspect_ai) through `tests/read_exports.py`.

mod csv_out;
mod errors;
mod fixture;
mod inspect;
mod parquet_out;
mod python;
