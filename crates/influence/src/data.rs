//! Tabular data for the network format: CSV with a header row, the feature columns then
//! the target column (a float for regression, a class index for classification). A bad
//! value is an error naming the file and line; nothing is returned then.

use std::path::Path;

use faer::Mat;

use crate::net::{Loss, Net, Targets};
use crate::InfluenceError;

/// Features (rows × columns) and targets.
#[derive(Debug, Clone)]
pub struct Table {
    pub x: Mat<f64>,
    pub y: Targets,
}

impl Table {
    pub fn rows(&self) -> usize {
        self.y.len()
    }

    /// Rows `start..start + n` as a table of their own.
    pub fn slice(&self, start: usize, n: usize) -> Table {
        Table {
            x: self.x.as_ref().subrows(start, n).to_owned(),
            y: self.y[start..start + n].to_vec(),
        }
    }
}

/// Reads `path` for `net`: as many feature columns as the network takes, then the target
/// (for `cross_entropy_sum` an integer in `0..outputs`).
pub fn read_csv(path: &Path, net: &Net) -> Result<Table, InfluenceError> {
    let shown = path.display().to_string();
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .map_err(|e| InfluenceError::File {
            path: shown.clone(),
            why: e.to_string(),
        })?;
    let want = net.inputs() + 1;
    let header = r.headers().map_err(|e| InfluenceError::File {
        path: shown.clone(),
        why: e.to_string(),
    })?;
    if header.len() != want {
        return Err(InfluenceError::Line {
            path: shown,
            line: 1,
            why: format!(
                "{} columns; the network takes {} features, then the target",
                header.len(),
                net.inputs()
            ),
        });
    }
    let mut values: Vec<f64> = Vec::new();
    let mut y = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| InfluenceError::File {
            path: shown.clone(),
            why: e.to_string(),
        })?;
        let line = rec.position().map_or(0, |p| p.line());
        let bad = |why: String| InfluenceError::Line {
            path: shown.clone(),
            line,
            why,
        };
        if rec.len() != want {
            return Err(bad(format!("{} columns, expected {want}", rec.len())));
        }
        for (i, f) in rec.iter().enumerate() {
            let v: f64 = f
                .trim()
                .parse()
                .map_err(|_| bad(format!("column {}: `{f}` is not a number", i + 1)))?;
            if !v.is_finite() {
                return Err(bad(format!("column {}: `{f}` is not finite", i + 1)));
            }
            if i + 1 < want {
                values.push(v);
            } else {
                if net.loss == Loss::CrossEntropySum
                    && (v.fract() != 0.0 || v < 0.0 || v as usize >= net.outputs())
                {
                    return Err(bad(format!(
                        "target `{f}` is not a class index in 0..{}",
                        net.outputs()
                    )));
                }
                y.push(v);
            }
        }
    }
    if y.is_empty() {
        return Err(InfluenceError::File {
            path: shown,
            why: "no rows".into(),
        });
    }
    let cols = net.inputs();
    Ok(Table {
        x: Mat::from_fn(y.len(), cols, |i, j| values[i * cols + j]),
        y,
    })
}
