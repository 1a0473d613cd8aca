//! What both model families share about weights: reading GGUF metadata, the
//! re-quantization policy, and the matrix type that picks a kernel per call.

use std::sync::Arc;

use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};

use crate::qmm::{self, QMatrix};
use crate::LocalError;

/// `general.architecture` (empty when the file has none), which picks the model family.
pub(crate) fn architecture(c: &gguf_file::Content) -> String {
    c.metadata
        .get("general.architecture")
        .and_then(|v| v.to_string().ok().cloned())
        .unwrap_or_default()
}

pub(crate) fn md<'a>(
    c: &'a gguf_file::Content,
    key: &str,
) -> Result<&'a gguf_file::Value, LocalError> {
    c.metadata
        .get(key)
        .ok_or_else(|| LocalError::Format(format!("GGUF metadata has no `{key}`")))
}

pub(crate) fn md_usize(c: &gguf_file::Content, key: &str) -> Result<usize, LocalError> {
    let v = md(c, key)?;
    v.to_u32()
        .map(|x| x as usize)
        .or_else(|_| v.to_u64().map(|x| x as usize))
        .or_else(|_| v.to_i32().map(|x| x.max(0) as usize))
        .map_err(|e| LocalError::Format(format!("`{key}`: {e}")))
}

pub(crate) fn md_f64(c: &gguf_file::Content, key: &str) -> Result<f64, LocalError> {
    let v = md(c, key)?;
    v.to_f32()
        .map(f64::from)
        .or_else(|_| v.to_f64())
        .map_err(|e| LocalError::Format(format!("`{key}`: {e}")))
}

/// Our kernels (`qmm`) multiply Q8_0 and Q4_K weights, and Q5_0/Q4_0 ones widened to Q8_0
/// blocks of exactly their values; every other quantized type is re-quantized to Q8_0 once
/// at load on the CPU (candle's kernels for them are scalar or switch rounding with the
/// number of rows, and a request's numbers must not depend on its batch). 8-bit steps are
/// far finer than the 2–6-bit grids, so the values barely move (the llama.cpp comparison in
/// tests/it/llama_cpp.rs holds), at the memory of Q8_0 for those tensors. Unquantized
/// weights (F32/F16/BF16) stay as they are, on candle.
pub(crate) fn fast_kernel(t: QTensor) -> Result<QTensor, LocalError> {
    let (_, k) = t.shape().dims2()?;
    match t.dtype() {
        GgmlDType::F32
        | GgmlDType::F16
        | GgmlDType::BF16
        | GgmlDType::Q8_0
        | GgmlDType::Q4K
        | GgmlDType::Q5_0
        | GgmlDType::Q4_0 => Ok(t),
        _ if t.device().is_cuda() || !k.is_multiple_of(qmm::QK8_0) => Ok(t),
        _ => {
            let dev = t.device();
            Ok(QTensor::quantize(&t.dequantize(&dev)?, GgmlDType::Q8_0)?)
        }
    }
}

/// A weight matrix, with an optional low-rank adapter. Quantized weights on the CPU run
/// on our kernels (`qmm`) for every number of rows, so a request's numbers never depend on
/// the batch it ran in; unquantized weights and CUDA run on candle's.
pub struct Linear {
    kernel: Kernel,
    /// (out, in) of the weight.
    dims: (usize, usize),
    lora: Option<Lora>,
}

enum Kernel {
    Ours(QMatrix),
    /// The weight (kept for merging adapters) and candle's product over it.
    Candle(Arc<QTensor>, QMatMul),
}

/// A LoRA delta `scale · B·A` added to a projection: `A` is (rank, in), `B` is (out, rank),
/// both row-major f32. Applied row by row in a fixed order, so like the base kernels it
/// gives every row the same numbers whatever the batch.
#[derive(Debug, Clone)]
pub struct Lora {
    pub rank: usize,
    pub a: Vec<f32>,
    pub b: Vec<f32>,
    pub scale: f32,
}

impl Linear {
    /// Over `t` as it is (no re-quantization); Q8_0 and Q4_K weights are repacked for our
    /// kernels (and `t` may be dropped), anything else stays on candle.
    pub(crate) fn shared(t: Arc<QTensor>) -> Result<Self, LocalError> {
        let dims = t.shape().dims2()?;
        let kernel = match QMatrix::from_qtensor(&t, qmm::isa()) {
            Some(m) => Kernel::Ours(m),
            None => Kernel::Candle(t.clone(), QMatMul::from_arc(t)?),
        };
        Ok(Linear {
            kernel,
            dims,
            lora: None,
        })
    }

    pub(crate) fn new(t: QTensor) -> Result<Self, LocalError> {
        Self::shared(Arc::new(fast_kernel(t)?))
    }

    /// The output head tied to the embedding table `t`, and the table to keep for embedding
    /// lookups: none when the head runs on our kernel over `t` itself (Q8_0, Q4_K), whose
    /// `rows` are the table's; else `t`, beside a head over a Q8_0 copy of it (quantized
    /// types on the CPU) or over `t` (unquantized, CUDA).
    #[allow(clippy::type_complexity)]
    pub(crate) fn tied_head(t: Arc<QTensor>) -> Result<(Self, Option<Arc<QTensor>>), LocalError> {
        let (_, k) = t.shape().dims2()?;
        match t.dtype() {
            GgmlDType::Q8_0 | GgmlDType::Q4K | GgmlDType::Q5_0 | GgmlDType::Q4_0
                if t.device().is_cpu() =>
            {
                let head = Self::shared(t.clone())?;
                let keep = (!matches!(head.kernel, Kernel::Ours(_))).then_some(t);
                Ok((head, keep))
            }
            GgmlDType::F32
            | GgmlDType::F16
            | GgmlDType::BF16
            | GgmlDType::Q8_0
            | GgmlDType::Q4K => Ok((Self::shared(t.clone())?, Some(t))),
            _ if t.device().is_cuda() || !k.is_multiple_of(qmm::QK8_0) => {
                Ok((Self::shared(t.clone())?, Some(t)))
            }
            _ => {
                let copy = QTensor::quantize(&t.dequantize(&t.device())?, GgmlDType::Q8_0)?;
                Ok((Self::shared(Arc::new(copy))?, Some(t)))
            }
        }
    }

    /// Embedding rows `ids` from `table`, or from the head's own weights when it holds
    /// the table (see `tied_head`).
    pub(crate) fn embedding(
        &self,
        table: Option<&Arc<QTensor>>,
        ids: &[u32],
    ) -> candle_core::Result<Tensor> {
        match table {
            Some(t) => t.embedding(&Tensor::new(ids, &t.device())?),
            None => self
                .rows(ids)
                .unwrap_or_else(|| candle_core::bail!("the output head holds no embedding table")),
        }
    }

    /// Rows `ids` of the weight, dequantized exactly as GGUF defines them (so equal to
    /// candle's embedding lookup on the tensor the weight was built from); `None` when the
    /// weight is not on our kernels.
    pub(crate) fn rows(&self, ids: &[u32]) -> Option<candle_core::Result<Tensor>> {
        let Kernel::Ours(m) = &self.kernel else {
            return None;
        };
        let (n, k) = self.dims;
        let mut out = vec![0f32; ids.len() * k];
        for (row, &id) in out.chunks_exact_mut(k).zip(ids) {
            if id as usize >= n {
                return Some(Err(candle_core::Error::Msg(format!(
                    "token id {id} is outside the vocabulary of {n}"
                ))));
            }
            m.dequantize_row(id as usize, row);
        }
        Some(Tensor::from_vec(out, (ids.len(), k), &Device::Cpu))
    }

    /// (out, in) of the weight.
    pub fn dims(&self) -> (usize, usize) {
        self.dims
    }

    /// Adds a LoRA delta, checking its shapes against the weight's.
    pub(crate) fn set_lora(&mut self, lora: Lora, what: &str) -> Result<(), LocalError> {
        let (out, inn) = self.dims;
        if lora.rank == 0 || lora.a.len() != lora.rank * inn || lora.b.len() != out * lora.rank {
            return Err(LocalError::Format(format!(
                "adapter for {what}: A is {} values and B {} for rank {}, but the weight is {out}×{inn}",
                lora.a.len(),
                lora.b.len(),
                lora.rank
            )));
        }
        self.lora = Some(lora);
        Ok(())
    }

    /// Adds a LoRA delta into the weight itself (`+lora=DIR+merge`): the weight is
    /// dequantized, `scale · B·A` added in f32, and the sum stored as Q8_0 — 8 bits, finer
    /// than the 4–6-bit originals; F32/F16 weights keep their type — so serving costs what
    /// the base model costs. The
    /// numbers differ from the separate low-rank path by that re-quantization.
    pub(crate) fn merge_lora(&mut self, lora: Lora, what: &str) -> Result<(), LocalError> {
        self.set_lora(lora, what)?;
        let l = self.lora.take().expect("just set");
        let (out, inn) = self.dims;
        let (w, dtype) = match &self.kernel {
            Kernel::Ours(m) => (
                Tensor::from_vec(m.dequantize(), (out, inn), &Device::Cpu)?,
                GgmlDType::Q8_0,
            ),
            // Unquantized weights stay unquantized.
            Kernel::Candle(t, _) => (
                t.dequantize(&t.device())?,
                match t.dtype() {
                    GgmlDType::F32 | GgmlDType::F16 => t.dtype(),
                    _ => GgmlDType::Q8_0,
                },
            ),
        };
        let dev = w.device().clone();
        let a = Tensor::from_vec(l.a, (l.rank, inn), &dev)?;
        let b = Tensor::from_vec(l.b, (out, l.rank), &dev)?;
        let merged = (w + (b.matmul(&a)? * l.scale as f64)?)?;
        let q = QTensor::quantize(&merged, dtype)?;
        *self = Linear::shared(Arc::new(q))?;
        Ok(())
    }

    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        Ok(forward_all(x, &[self])?.remove(0))
    }

    /// `scale · B·(A·x)` for every row of `x`, summed in a fixed order.
    fn lora_delta(&self, l: &Lora, x: &Tensor) -> candle_core::Result<Tensor> {
        let (out, inn) = self.dims;
        let mut shape = x.dims().to_vec();
        let xs: Vec<f32> = x
            .to_dtype(candle_core::DType::F32)?
            .flatten_all()?
            .to_vec1()?;
        let rows = xs.len() / inn;
        let mut ys = vec![0f32; rows * out];
        let mut t = vec![0f32; l.rank];
        for (row, y) in xs.chunks_exact(inn).zip(ys.chunks_exact_mut(out)) {
            for (k, tk) in t.iter_mut().enumerate() {
                let a = &l.a[k * inn..(k + 1) * inn];
                *tk = a.iter().zip(row).map(|(a, x)| a * x).sum();
            }
            for (o, yo) in y.iter_mut().enumerate() {
                let b = &l.b[o * l.rank..(o + 1) * l.rank];
                *yo = l.scale * b.iter().zip(&t).map(|(b, t)| b * t).sum::<f32>();
            }
        }
        *shape.last_mut().expect("x has a last dimension") = out;
        Tensor::from_vec(ys, shape, x.device())
    }
}

/// `x` through several matrices that read the same input (q/k/v, gate/up): the input is
/// quantized once per activation format, not once per matrix.
pub(crate) fn forward_all(x: &Tensor, ls: &[&Linear]) -> candle_core::Result<Vec<Tensor>> {
    let dims = x.dims().to_vec();
    let k = *dims.last().expect("x has a last dimension");
    // The activation formats our kernels need, each quantized once.
    let mut formats: Vec<(qmm::ActFormat, qmm::Isa)> = Vec::new();
    for l in ls {
        if let Kernel::Ours(m) = &l.kernel {
            if k != l.dims.1 {
                candle_core::bail!("input has {k} columns, the weight {}", l.dims.1);
            }
            if !formats.iter().any(|f| f.0 == m.act_format()) {
                formats.push((m.act_format(), m.isa()));
            }
        }
    }
    let acts: Vec<qmm::Acts> = if formats.is_empty() {
        Vec::new()
    } else {
        crate::rows::with_values(x, |xs| {
            Ok(formats
                .iter()
                .map(|&(fmt, isa)| qmm::Acts::quantize(xs, k, fmt, isa))
                .collect())
        })?
    };
    let mut out = Vec::with_capacity(ls.len());
    for l in ls {
        let y = match &l.kernel {
            Kernel::Candle(_, m) => m.forward(x)?,
            Kernel::Ours(m) => {
                let a = acts
                    .iter()
                    .find(|a| a.format() == m.act_format())
                    .expect("quantized above");
                let mut shape = dims.clone();
                *shape.last_mut().expect("x has a last dimension") = l.dims.0;
                Tensor::from_vec(m.forward_acts(a), shape, &Device::Cpu)?
            }
        };
        out.push(match &l.lora {
            None => y,
            Some(lora) => y.add(&l.lora_delta(lora, x)?)?,
        });
    }
    Ok(out)
}
