//! Line-by-line JSONL reading from a file or from text built into the binary, with every
//! problem reported as `FILE:LINE: what is wrong`.

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor};
use std::path::PathBuf;

use shammie_engine::DataError;

/// Where a JSONL source lives.
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

    /// Iterates non-empty lines as `(line number, parsed JSON)`.
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
            buf: String::new(),
        })
    }
}

pub struct JsonLines {
    reader: Box<dyn BufRead + Send>,
    path: String,
    line: u64,
    buf: String,
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
        loop {
            self.buf.clear();
            match self.reader.read_line(&mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    return Some(Err(DataError::File {
                        path: self.path.clone(),
                        message: e.to_string(),
                    }))
                }
            }
            self.line += 1;
            if self.buf.trim().is_empty() {
                continue;
            }
            return Some(
                serde_json::from_str(self.buf.trim())
                    .map(|v| (self.line, v))
                    .map_err(|e| self.error(self.line, format!("not valid JSON: {e}"))),
            );
        }
    }
}
