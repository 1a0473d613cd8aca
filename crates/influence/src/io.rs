//! Files: factors as safetensors (f64, kronfluence's names: `NAME.activation_covariance`,
//! `NAME.gradient_covariance`, `NAME.activation_eigenvalues`,
//! `NAME.activation_eigenvectors`, `NAME.gradient_eigenvalues`,
//! `NAME.gradient_eigenvectors`, `NAME.lambda`) beside `factors.json` (the layers' shapes
//! and counts), and score matrices as NumPy `.npy` (little-endian f64, C order) and CSV.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use candle_core::{Device, Tensor};
use faer::Mat;

use crate::ekfac::{LayerFactors, LayerSpec};
use crate::InfluenceError;

pub const FACTORS_FILE: &str = "factors.safetensors";
pub const FACTORS_META: &str = "factors.json";

fn tensor(m: &Mat<f64>) -> Result<Tensor, InfluenceError> {
    let v: Vec<f64> = (0..m.nrows())
        .flat_map(|i| (0..m.ncols()).map(move |j| m[(i, j)]))
        .collect();
    Tensor::from_vec(v, (m.nrows(), m.ncols()), &Device::Cpu)
        .map_err(|e| InfluenceError::Numeric(e.to_string()))
}

fn matrix(t: &Tensor, rows: usize, cols: usize) -> Result<Mat<f64>, String> {
    if t.dims() != [rows, cols] {
        return Err(format!("shape {:?}, expected [{rows}, {cols}]", t.dims()));
    }
    let v = t
        .to_dtype(candle_core::DType::F64)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f64>())
        .map_err(|e| e.to_string())?;
    Ok(Mat::from_fn(rows, cols, |i, j| v[i * cols + j]))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Meta {
    layers: Vec<LayerSpec>,
    tokens: u64,
    examples: u64,
}

/// Writes `factors.safetensors` and `factors.json` into `dir` (created if needed).
pub fn save_factors(dir: &Path, factors: &[LayerFactors]) -> Result<(), InfluenceError> {
    std::fs::create_dir_all(dir).map_err(|e| InfluenceError::io(dir, e))?;
    let mut t = HashMap::new();
    for f in factors {
        let n = &f.spec.name;
        let col = |v: &[f64]| Mat::from_fn(v.len(), 1, |i, _| v[i]);
        t.insert(
            format!("{n}.activation_covariance"),
            tensor(&f.activation_covariance)?,
        );
        t.insert(
            format!("{n}.gradient_covariance"),
            tensor(&f.gradient_covariance)?,
        );
        t.insert(
            format!("{n}.activation_eigenvalues"),
            tensor(&col(&f.activation_eigenvalues))?
                .flatten_all()
                .map_err(|e| InfluenceError::Numeric(e.to_string()))?,
        );
        t.insert(
            format!("{n}.activation_eigenvectors"),
            tensor(&f.activation_eigenvectors)?,
        );
        t.insert(
            format!("{n}.gradient_eigenvalues"),
            tensor(&col(&f.gradient_eigenvalues))?
                .flatten_all()
                .map_err(|e| InfluenceError::Numeric(e.to_string()))?,
        );
        t.insert(
            format!("{n}.gradient_eigenvectors"),
            tensor(&f.gradient_eigenvectors)?,
        );
        t.insert(format!("{n}.lambda"), tensor(&f.lambda)?);
    }
    let p = dir.join(FACTORS_FILE);
    candle_core::safetensors::save(&t, &p).map_err(|e| InfluenceError::File {
        path: p.display().to_string(),
        why: e.to_string(),
    })?;
    let meta = Meta {
        layers: factors.iter().map(|f| f.spec.clone()).collect(),
        tokens: factors.first().map_or(0, |f| f.tokens),
        examples: factors.first().map_or(0, |f| f.examples),
    };
    let p = dir.join(FACTORS_META);
    std::fs::write(
        &p,
        serde_json::to_string_pretty(&meta).expect("plain values"),
    )
    .map_err(|e| InfluenceError::io(&p, e))
}

/// Reads what [`save_factors`] wrote.
pub fn load_factors(dir: &Path) -> Result<Vec<LayerFactors>, InfluenceError> {
    let p = dir.join(FACTORS_META);
    let text = std::fs::read_to_string(&p).map_err(|e| InfluenceError::io(&p, e))?;
    let meta: Meta = serde_json::from_str(&text).map_err(|e| InfluenceError::File {
        path: p.display().to_string(),
        why: e.to_string(),
    })?;
    let p = dir.join(FACTORS_FILE);
    let shown = p.display().to_string();
    let t = candle_core::safetensors::load(&p, &Device::Cpu).map_err(|e| InfluenceError::File {
        path: shown.clone(),
        why: e.to_string(),
    })?;
    let mut out = Vec::new();
    for s in meta.layers {
        let get = |k: &str, r: usize, c: usize| -> Result<Mat<f64>, InfluenceError> {
            let name = format!("{}.{k}", s.name);
            let x = t.get(&name).ok_or_else(|| InfluenceError::File {
                path: shown.clone(),
                why: format!("no tensor `{name}`"),
            })?;
            let x = if c == 1 {
                x.reshape((r, 1))
                    .map_err(|e| InfluenceError::Numeric(e.to_string()))?
            } else {
                x.clone()
            };
            matrix(&x, r, c).map_err(|why| InfluenceError::File {
                path: shown.clone(),
                why: format!("`{name}`: {why}"),
            })
        };
        let v = |m: Mat<f64>| (0..m.nrows()).map(|i| m[(i, 0)]).collect::<Vec<_>>();
        out.push(LayerFactors {
            activation_covariance: get("activation_covariance", s.inputs, s.inputs)?,
            gradient_covariance: get("gradient_covariance", s.outputs, s.outputs)?,
            activation_eigenvalues: v(get("activation_eigenvalues", s.inputs, 1)?),
            activation_eigenvectors: get("activation_eigenvectors", s.inputs, s.inputs)?,
            gradient_eigenvalues: v(get("gradient_eigenvalues", s.outputs, 1)?),
            gradient_eigenvectors: get("gradient_eigenvectors", s.outputs, s.outputs)?,
            lambda: get("lambda", s.outputs, s.inputs)?,
            tokens: meta.tokens,
            examples: meta.examples,
            spec: s,
        });
    }
    Ok(out)
}

/// Writes `m` as a NumPy `.npy` file (format 1.0, `<f8`, C order).
pub fn write_npy(path: &Path, m: &Mat<f64>) -> Result<(), InfluenceError> {
    let mut header = format!(
        "{{'descr': '<f8', 'fortran_order': False, 'shape': ({}, {}), }}",
        m.nrows(),
        m.ncols()
    );
    // Magic (6) + version (2) + length (2) + header + newline, padded to 64 bytes.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + 8 * m.nrows() * m.ncols());
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for i in 0..m.nrows() {
        for j in 0..m.ncols() {
            bytes.extend_from_slice(&m[(i, j)].to_le_bytes());
        }
    }
    std::fs::write(path, bytes).map_err(|e| InfluenceError::io(path, e))
}

/// Writes `m` as CSV: a header `query,train_0,…`, one row per query.
pub fn write_csv(path: &Path, m: &Mat<f64>) -> Result<(), InfluenceError> {
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(path).map_err(|e| InfluenceError::io(path, e))?,
    );
    let mut line = String::from("query");
    for j in 0..m.ncols() {
        line.push_str(&format!(",train_{j}"));
    }
    writeln!(f, "{line}").map_err(|e| InfluenceError::io(path, e))?;
    for i in 0..m.nrows() {
        let mut line = i.to_string();
        for j in 0..m.ncols() {
            line.push_str(&format!(",{:e}", m[(i, j)]));
        }
        writeln!(f, "{line}").map_err(|e| InfluenceError::io(path, e))?;
    }
    f.flush().map_err(|e| InfluenceError::io(path, e))
}
