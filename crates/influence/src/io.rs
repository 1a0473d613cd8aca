//! Files: factors as safetensors (f64, or f32 to halve them; kronfluence's names: `NAME.activation_covariance`,
//! `NAME.gradient_covariance`, `NAME.activation_eigenvalues`,
//! `NAME.activation_eigenvectors`, `NAME.gradient_eigenvalues`,
//! `NAME.gradient_eigenvectors`, `NAME.lambda`) beside `factors.json` (the layers' shapes
//! and counts), and score matrices as NumPy `.npy` (little-endian f64, C order) and CSV.

use std::io::Write;
use std::path::Path;

use faer::Mat;

use crate::ekfac::{LayerFactors, LayerSpec};
use crate::InfluenceError;

pub const FACTORS_FILE: &str = "factors.safetensors";
pub const FACTORS_META: &str = "factors.json";

/// How floats are stored in a tensor file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    F64,
    /// Half the size; what kronfluence stores by default.
    F32,
}

impl Dtype {
    pub fn parse(s: &str) -> Result<Dtype, String> {
        match s {
            "f64" | "float64" => Ok(Dtype::F64),
            "f32" | "float32" => Ok(Dtype::F32),
            o => Err(format!("dtype `{o}`: f64 or f32")),
        }
    }
    fn tag(self) -> &'static str {
        match self {
            Dtype::F64 => "F64",
            Dtype::F32 => "F32",
        }
    }
}

/// A tensor to write: a matrix (rows × cols, row-major in the file) or a vector.
pub(crate) enum Data<'a> {
    Mat(&'a Mat<f64>),
    Vec(&'a [f64]),
}

/// Writes `entries` as a safetensors file at `path` (through a temporary file renamed into
/// place, so a reader never sees half a file), streaming each tensor.
pub(crate) fn write_tensors(
    path: &Path,
    entries: &[(String, Data<'_>)],
    dtype: Dtype,
) -> Result<(), InfluenceError> {
    let width = match dtype {
        Dtype::F64 => 8,
        Dtype::F32 => 4,
    };
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, d) in entries {
        let shape: Vec<usize> = match d {
            Data::Mat(m) => vec![m.nrows(), m.ncols()],
            Data::Vec(v) => vec![v.len()],
        };
        let n: usize = shape.iter().product();
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": dtype.tag(), "shape": shape, "data_offsets": [offset, offset + n * width]}),
        );
        offset += n * width;
    }
    let mut h = serde_json::to_string(&header).expect("plain values");
    while !h.len().is_multiple_of(8) {
        h.push(' ');
    }
    let tmp = path.with_extension("partial");
    let io = |e| InfluenceError::io(path, e);
    let mut f =
        std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp).map_err(io)?);
    f.write_all(&(h.len() as u64).to_le_bytes()).map_err(io)?;
    f.write_all(h.as_bytes()).map_err(io)?;
    // A row's bytes at a time.
    let mut buf: Vec<u8> = Vec::new();
    let mut put = |row: &mut dyn Iterator<Item = f64>,
                   f: &mut std::io::BufWriter<std::fs::File>| {
        buf.clear();
        for x in row {
            match dtype {
                Dtype::F64 => buf.extend_from_slice(&x.to_le_bytes()),
                Dtype::F32 => buf.extend_from_slice(&(x as f32).to_le_bytes()),
            }
        }
        f.write_all(&buf)
    };
    for (_, d) in entries {
        match d {
            Data::Mat(m) => {
                for i in 0..m.nrows() {
                    put(&mut m.row(i).iter().copied(), &mut f).map_err(io)?;
                }
            }
            Data::Vec(v) => put(&mut v.iter().copied(), &mut f).map_err(io)?,
        }
    }
    let file = f.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// A safetensors file's tensors (F64 or F32), read one at a time.
pub(crate) struct TensorFile {
    path: String,
    file: std::fs::File,
    start: u64,
    header: serde_json::Map<String, serde_json::Value>,
}

impl TensorFile {
    pub(crate) fn open(path: &Path) -> Result<TensorFile, InfluenceError> {
        use std::io::Read;
        let shown = path.display().to_string();
        let bad = |why: String| InfluenceError::File {
            path: shown.clone(),
            why,
        };
        let mut file = std::fs::File::open(path).map_err(|e| InfluenceError::io(path, e))?;
        let mut n = [0u8; 8];
        file.read_exact(&mut n)
            .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let n = u64::from_le_bytes(n);
        if n > 100 << 20 {
            return Err(bad(format!("not a safetensors file (header of {n} bytes)")));
        }
        let mut h = vec![0u8; n as usize];
        file.read_exact(&mut h)
            .map_err(|e| bad(format!("truncated header: {e}")))?;
        let header: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&h).map_err(|e| bad(format!("header: {e}")))?;
        Ok(TensorFile {
            path: shown,
            file,
            start: 8 + n,
            header,
        })
    }

    /// Tensor `name` as f64 values (row-major) with its shape.
    pub(crate) fn get(&mut self, name: &str) -> Result<(Vec<usize>, Vec<f64>), InfluenceError> {
        use std::io::{Read, Seek, SeekFrom};
        let bad = |why: String| InfluenceError::File {
            path: self.path.clone(),
            why,
        };
        let e = self
            .header
            .get(name)
            .ok_or_else(|| bad(format!("no tensor `{name}`")))?;
        let shape: Vec<usize> = serde_json::from_value(e["shape"].clone())
            .map_err(|x| bad(format!("`{name}`: shape: {x}")))?;
        let [a, b]: [u64; 2] = serde_json::from_value(e["data_offsets"].clone())
            .map_err(|x| bad(format!("`{name}`: data_offsets: {x}")))?;
        let width = match e["dtype"].as_str() {
            Some("F64") => 8,
            Some("F32") => 4,
            o => return Err(bad(format!("`{name}`: dtype {o:?}, expected F64 or F32"))),
        };
        let n: usize = shape.iter().product();
        if b < a || (b - a) as usize != n * width {
            return Err(bad(format!(
                "`{name}`: {} bytes for shape {shape:?}",
                b.saturating_sub(a)
            )));
        }
        let mut bytes = vec![0u8; n * width];
        self.file
            .seek(SeekFrom::Start(self.start + a))
            .and_then(|_| self.file.read_exact(&mut bytes))
            .map_err(|x| bad(format!("`{name}`: {x}")))?;
        let v = if width == 8 {
            bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect()
        } else {
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")) as f64)
                .collect()
        };
        Ok((shape, v))
    }

    /// Tensor `name` as a rows × cols matrix (a vector is one column).
    pub(crate) fn matrix(
        &mut self,
        name: &str,
        rows: usize,
        cols: usize,
    ) -> Result<Mat<f64>, InfluenceError> {
        let (shape, v) = self.get(name)?;
        let ok = shape == [rows, cols] || (cols == 1 && shape == [rows]);
        if !ok {
            return Err(InfluenceError::File {
                path: self.path.clone(),
                why: format!("`{name}`: shape {shape:?}, expected [{rows}, {cols}]"),
            });
        }
        Ok(Mat::from_fn(rows, cols, |i, j| v[i * cols + j]))
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Meta {
    layers: Vec<LayerSpec>,
    tokens: u64,
    examples: u64,
    #[serde(default = "f64_dtype")]
    dtype: Dtype,
}

fn f64_dtype() -> Dtype {
    Dtype::F64
}

/// Writes `factors.safetensors` (in `dtype`) and `factors.json` into `dir` (created if
/// needed).
pub fn save_factors(
    dir: &Path,
    factors: &[LayerFactors],
    dtype: Dtype,
) -> Result<(), InfluenceError> {
    std::fs::create_dir_all(dir).map_err(|e| InfluenceError::io(dir, e))?;
    let mut entries = Vec::new();
    for f in factors {
        let n = &f.spec.name;
        entries.push((
            format!("{n}.activation_covariance"),
            Data::Mat(&f.activation_covariance),
        ));
        entries.push((
            format!("{n}.gradient_covariance"),
            Data::Mat(&f.gradient_covariance),
        ));
        entries.push((
            format!("{n}.activation_eigenvalues"),
            Data::Vec(&f.activation_eigenvalues),
        ));
        entries.push((
            format!("{n}.activation_eigenvectors"),
            Data::Mat(&f.activation_eigenvectors),
        ));
        entries.push((
            format!("{n}.gradient_eigenvalues"),
            Data::Vec(&f.gradient_eigenvalues),
        ));
        entries.push((
            format!("{n}.gradient_eigenvectors"),
            Data::Mat(&f.gradient_eigenvectors),
        ));
        entries.push((format!("{n}.lambda"), Data::Mat(&f.lambda)));
    }
    write_tensors(&dir.join(FACTORS_FILE), &entries, dtype)?;
    let meta = Meta {
        layers: factors.iter().map(|f| f.spec.clone()).collect(),
        tokens: factors.first().map_or(0, |f| f.tokens),
        examples: factors.first().map_or(0, |f| f.examples),
        dtype,
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
    let mut t = TensorFile::open(&dir.join(FACTORS_FILE))?;
    let mut out = Vec::new();
    for s in meta.layers {
        let n = s.name.clone();
        let mut get = |k: &str, r: usize, c: usize| t.matrix(&format!("{n}.{k}"), r, c);
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
