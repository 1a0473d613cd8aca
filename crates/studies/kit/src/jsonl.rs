//! Reading data files: whole text, JSONL line by line, or TOML ([`parse_toml`]), from a
//! file or from text built into the binary, with every problem reported as
//! `FILE:LINE: what is wrong`.
//!
//! Every loader reads its files through here, so they all treat the same bytes alike:
//! - a UTF-8 byte-order mark at the start of a file is dropped ([`strip_bom`]);
//! - bytes that are not UTF-8 are an error at their line and column ([`decode`]);
//! - a file with no records (empty, or only blank lines) is an error naming the file
//!   ([`empty_file`]).

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader, Cursor};
use std::path::{Path, PathBuf};

use shammie_engine::DataError;

/// The UTF-8 byte-order mark.
const BOM: &str = "\u{feff}";

/// Where a data source lives.
#[derive(Debug, Clone)]
pub enum Origin {
    /// Shipped inside the binary: `(display name, content)`.
    Embedded(&'static str, &'static str),
    File(PathBuf),
}

impl Origin {
    pub fn display(&self) -> String {
        match self {
            Origin::Embedded(name, _) => format!("<built-in>/{name}"),
            Origin::File(p) => p.display().to_string(),
        }
    }

    /// The whole text, as [`read_text`] reads a file.
    pub fn text(&self) -> Result<Cow<'static, str>, DataError> {
        match self {
            Origin::Embedded(_, text) => Ok(Cow::Borrowed(strip_bom(text))),
            Origin::File(p) => read_text(p).map(Cow::Owned),
        }
    }

    /// Iterates non-empty lines as `(line number, parsed JSON)`. A source without any
    /// yields one error, [`empty_file`].
    pub fn lines(&self) -> Result<JsonLines, DataError> {
        let reader: Box<dyn BufRead + Send> = match self {
            Origin::Embedded(_, text) => Box::new(Cursor::new(text.as_bytes())),
            Origin::File(p) => Box::new(BufReader::new(File::open(p).map_err(|e| {
                DataError::File {
                    path: p.display().to_string(),
                    message: format!("cannot open: {e}"),
                }
            })?)),
        };
        Ok(JsonLines {
            reader,
            path: self.display(),
            line: 0,
            records: 0,
            done: false,
            buf: Vec::new(),
        })
    }
}

/// A TOML data file (or built-in text) parsed as `T`; a syntax or shape error names the
/// file and, where TOML gives a position, the line.
pub fn parse_toml<T: serde::de::DeserializeOwned>(origin: &Origin) -> Result<T, DataError> {
    let text = origin.text()?;
    toml::from_str(&text).map_err(|e| match e.span() {
        Some(s) => DataError::Line {
            path: origin.display(),
            line: 1 + text[..s.start].matches('\n').count() as u64,
            message: e.message().to_string(),
        },
        None => DataError::File {
            path: origin.display(),
            message: e.message().to_string(),
        },
    })
}

/// The text without a byte-order mark at its start.
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix(BOM).unwrap_or(text)
}

/// What every loader says about a file with no records.
pub fn empty_file(path: &str) -> DataError {
    DataError::File {
        path: path.to_string(),
        message: "no records: the file is empty or blank".into(),
    }
}

/// A file's bytes as text: a byte-order mark at the start is dropped; bytes that are
/// not UTF-8 are an error naming their line (1-based) and column (1-based, in bytes).
pub fn decode(path: &str, bytes: Vec<u8>) -> Result<String, DataError> {
    let mut text = String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        let line_start = bytes[..at]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count() as u64;
        not_utf8(path, line, bytes[at], at - line_start + 1)
    })?;
    if text.starts_with(BOM) {
        text.drain(..BOM.len());
    }
    Ok(text)
}

/// [`decode`] of bytes that may be gzip-compressed (told by the gzip magic number, so
/// `.jsonl` and `.jsonl.gz` files are read alike); a damaged gzip stream is an error
/// naming the file.
pub fn decode_maybe_gzip(path: &str, bytes: Vec<u8>) -> Result<String, DataError> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return decode(path, bytes);
    }
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut out).map_err(
        |e| DataError::File {
            path: path.to_string(),
            message: format!("not a readable gzip file: {e}"),
        },
    )?;
    decode(path, out)
}

/// Reads a whole file as text ([`decode`]).
pub fn read_text(path: &Path) -> Result<String, DataError> {
    let display = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| DataError::File {
        path: display.clone(),
        message: format!("cannot read: {e}"),
    })?;
    decode(&display, bytes)
}

fn not_utf8(path: &str, line: u64, byte: u8, column: usize) -> DataError {
    DataError::Line {
        path: path.to_string(),
        line,
        message: format!(
            "not UTF-8 text (byte 0x{byte:02X} at column {column}); save the file as UTF-8"
        ),
    }
}

pub struct JsonLines {
    reader: Box<dyn BufRead + Send>,
    path: String,
    line: u64,
    /// Non-blank lines seen.
    records: u64,
    done: bool,
    buf: Vec<u8>,
}

impl JsonLines {
    pub fn error(&self, line: u64, message: impl Into<String>) -> DataError {
        DataError::Line {
            path: self.path.clone(),
            line,
            message: message.into(),
        }
    }
}

impl Iterator for JsonLines {
    type Item = Result<(u64, serde_json::Value), DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            self.buf.clear();
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => {
                    self.done = true;
                    return (self.records == 0).then(|| Err(empty_file(&self.path)));
                }
                Ok(_) => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(DataError::File {
                        path: self.path.clone(),
                        message: e.to_string(),
                    }));
                }
            }
            self.line += 1;
            let mut bytes = &self.buf[..];
            if self.line == 1 {
                bytes = bytes.strip_prefix(BOM.as_bytes()).unwrap_or(bytes);
            }
            let text = match std::str::from_utf8(bytes) {
                Ok(t) => t.trim(),
                Err(e) => {
                    let at = e.valid_up_to();
                    let column = self.buf.len() - bytes.len() + at + 1;
                    return Some(Err(not_utf8(&self.path, self.line, bytes[at], column)));
                }
            };
            if text.is_empty() {
                continue;
            }
            self.records += 1;
            return Some(
                serde_json::from_str(text)
                    .map(|v| (self.line, v))
                    .map_err(|e| self.error(self.line, format!("not valid JSON: {e}"))),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every item a file with these bytes yields, as `Ok(line)` or the error's text with
    /// the file's path replaced by `FILE`.
    fn read(bytes: &[u8]) -> Vec<Result<u64, String>> {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.jsonl");
        std::fs::write(&p, bytes).unwrap();
        let shown = p.display().to_string();
        Origin::File(p)
            .lines()
            .unwrap()
            .map(|r| {
                r.map(|(ln, _)| ln)
                    .map_err(|e| e.to_string().replace(&shown, "FILE"))
            })
            .collect()
    }

    #[test]
    fn a_byte_order_mark_at_the_start_is_ignored() {
        assert_eq!(
            read(b"\xEF\xBB\xBF{\"a\": 1}\n{\"a\": 2}\n"),
            [Ok(1), Ok(2)]
        );
        let o = Origin::Embedded("x.jsonl", "\u{feff}{\"a\": 1}\n");
        assert_eq!(
            o.lines().unwrap().map(|r| r.unwrap().0).collect::<Vec<_>>(),
            [1]
        );
        // Only at the start of the file: elsewhere it is not JSON.
        let later = read(b"{\"a\": 1}\n\xEF\xBB\xBF{\"a\": 2}\n");
        assert!(
            matches!(&later[1], Err(e) if e.starts_with("FILE:2: not valid JSON")),
            "{later:?}"
        );
    }

    #[test]
    fn invalid_utf8_is_reported_at_its_line() {
        let r = read(b"{\"a\": 1}\n\n{\"a\": \"caf\xE9\"}\n");
        assert_eq!(r[0], Ok(1));
        assert_eq!(
            r[1],
            Err("FILE:3: not UTF-8 text (byte 0xE9 at column 11); save the file as UTF-8".into())
        );
    }

    #[test]
    fn an_empty_or_blank_file_is_an_error() {
        for bytes in [
            &b""[..],
            b"\n",
            b" \n\r\n\t\n",
            b"\xEF\xBB\xBF",
            b"\xEF\xBB\xBF\n\n",
        ] {
            assert_eq!(
                read(bytes),
                [Err("FILE: no records: the file is empty or blank".into())],
                "{bytes:?}"
            );
        }
    }
}
