//! What both model families share about weights: reading GGUF metadata, the
//! re-quantization policy, and the matrix type that picks a kernel per call.

use std::sync::Arc;

use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QTensor};
use candle_core::{Module, Tensor, D};

use crate::q8::Q8Matrix;
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

/// candle's CPU kernels for Q4_0/Q4_1/Q5_0/Q5_1 are scalar (measured: Q5_0 at 2.5 GMAC/s
/// against Q8_0 at 19 on this machine), and for Q6_K it switches to a differently rounding
/// kernel when a matmul has more than one row, so a batched request would not get exactly
/// the numbers it gets alone. Such weights are re-quantized to Q8_0 once at load: 8-bit
/// steps are far finer than the 5- and 6-bit grids, so the values barely move (the
/// llama.cpp comparison in tests/it/llama_cpp.rs holds), at about 1.5× the memory of those
/// tensors.
pub(crate) fn fast_kernel(t: QTensor) -> Result<QTensor, LocalError> {
    match t.dtype() {
        GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1 | GgmlDType::Q6K
            if !t.device().is_cuda() =>
        {
            let dev = t.device();
            Ok(QTensor::quantize(&t.dequantize(&dev)?, GgmlDType::Q8_0)?)
        }
        _ => Ok(t),
    }
}

/// A weight matrix, with an optional low-rank adapter. Q8_0 weights keep two views of the
/// same blocks: candle's kernel for a single row (its thread pool suits the many small
/// products of decoding) and ours for several rows (prefill, batched decoding), which
/// compute bit-identical dot products (see `q8.rs`), so a request's numbers never depend
/// on the batch it ran in.
pub struct Linear {
    /// The weight as loaded (after the re-quantization policy).
    weight: Arc<QTensor>,
    kernel: Kernel,
    /// (out, in) of the weight.
    dims: (usize, usize),
    lora: Option<Lora>,
}

enum Kernel {
    Q8(QMatMul, Q8Matrix),
    Candle(QMatMul),
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
    /// Over `t` as it is (no re-quantization).
    pub(crate) fn shared(t: Arc<QTensor>) -> Result<Self, LocalError> {
        let dims = t.shape().dims2()?;
        let kernel = match Q8Matrix::from_qtensor(t.clone()) {
            Some(m) => Kernel::Q8(QMatMul::from_arc(t.clone())?, m),
            None => Kernel::Candle(QMatMul::from_arc(t.clone())?),
        };
        Ok(Linear {
            weight: t,
            kernel,
            dims,
            lora: None,
        })
    }

    pub(crate) fn new(t: QTensor) -> Result<Self, LocalError> {
        Self::shared(Arc::new(fast_kernel(t)?))
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
        let dev = self.weight.device();
        let w = self.weight.dequantize(&dev)?;
        let a = Tensor::from_vec(l.a, (l.rank, inn), &dev)?;
        let b = Tensor::from_vec(l.b, (out, l.rank), &dev)?;
        let merged = (w + (b.matmul(&a)? * l.scale as f64)?)?;
        // Unquantized weights stay unquantized.
        let dtype = match self.weight.dtype() {
            GgmlDType::F32 | GgmlDType::F16 => self.weight.dtype(),
            _ => GgmlDType::Q8_0,
        };
        let q = QTensor::quantize(&merged, dtype)?;
        *self = Linear::shared(Arc::new(q))?;
        Ok(())
    }

    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = match &self.kernel {
            Kernel::Q8(_, many) if x.elem_count() > x.dim(D::Minus1)? => many.forward(x)?,
            Kernel::Q8(one, _) => one.forward(x)?,
            Kernel::Candle(m) => m.forward(x)?,
        };
        match &self.lora {
            None => Ok(y),
            Some(l) => y.add(&self.lora_delta(l, x)?),
        }
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
