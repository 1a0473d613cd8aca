//! A BERT encoder (post-LayerNorm, absolute positions) over `model.safetensors` weights in
//! the Hugging Face `BertModel` layout, returning the last hidden state.
//!
//! It runs on plain buffers, not on tensors: a batch is its texts' tokens packed one after
//! another (no padding, so no attention mask), the query, key and value projections are
//! one product, each bias is added by the product itself, and the residual sums, layer
//! norms and activations are done in place by loops compiled for the CPU's vector unit
//! (`shammie_local::vectorized!`). One call runs on its calling thread only; the
//! [`crate::Embedder`] runs batches on several threads at once. A token's output depends
//! only on its own text, never on what else is in the batch.
//!
//! The products are f32 (the `gemm` crate, the kernels candle uses) or, with
//! [`Precision::Int8`], `shammie_local::qmm`'s 8-bit kernels. The exact GELU's `erf` is
//! computed from a published rational-Chebyshev fit of `erfc` (relative error below
//! 1.2 × 10⁻⁷, Numerical Recipes §6.2) with `shammie_local::rows::exp`.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::Deserialize;
use shammie_local::qmm::{Acts, Isa, QMatrix};

use crate::EmbedError;

/// The fields of `config.json` the encoder needs.
#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab_size")]
    pub type_vocab_size: usize,
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

fn default_type_vocab_size() -> usize {
    2
}
fn default_layer_norm_eps() -> f64 {
    1e-12
}
fn default_hidden_act() -> String {
    "gelu".into()
}

#[derive(Debug, Clone, Copy)]
enum Activation {
    /// Exact GELU, `x Φ(x)`, what `"gelu"` means in transformers.
    GeluErf,
    /// The tanh approximation (`"gelu_new"`, `"gelu_pytorch_tanh"`).
    GeluTanh,
    Relu,
}

/// How the encoder's matrix products are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// f32, as sentence-transformers computes them (the default).
    #[default]
    F32,
    /// Weights as Q8_0 blocks and activations quantized to 8 bits per product, on
    /// `shammie_local::qmm`'s integer kernels: faster, with vectors slightly off the exact
    /// ones (the tests bound how far).
    Int8,
}

/// A dense layer `y = x Wᵀ + b`.
struct Linear {
    inputs: usize,
    outputs: usize,
    weight: Weight,
    bias: Vec<f32>,
}

enum Weight {
    /// (in, out) row-major: the stored (out, in) matrix transposed once.
    F32(Vec<f32>),
    Int8(QMatrix),
}

impl Linear {
    /// `weight` (out, in) and `bias` (out) as stored.
    fn new(
        weight: &Tensor,
        bias: &Tensor,
        precision: Precision,
        isa: Isa,
    ) -> Result<Self, EmbedError> {
        let (outputs, inputs) = weight.dims2()?;
        let weight = match precision {
            Precision::F32 => Weight::F32(weight.t()?.flatten_all()?.to_vec1::<f32>()?),
            Precision::Int8 => {
                let q = candle_core::quantized::QTensor::quantize(
                    weight,
                    candle_core::quantized::GgmlDType::Q8_0,
                )?;
                Weight::Int8(QMatrix::from_qtensor(&q, isa).ok_or_else(|| {
                    EmbedError::Unsupported(format!(
                        "an 8-bit product of {outputs}×{inputs} (inputs must be a multiple of 32)"
                    ))
                })?)
            }
        };
        Ok(Linear {
            inputs,
            outputs,
            weight,
            bias: bias.to_vec1::<f32>()?,
        })
    }

    /// `x` (rows, in) → `y` (rows, out), on the calling thread.
    fn forward(&self, x: &[f32], y: &mut [f32]) {
        let rows = x.len() / self.inputs;
        debug_assert_eq!(y.len(), rows * self.outputs);
        match &self.weight {
            Weight::F32(w) => {
                for row in y.chunks_exact_mut(self.outputs) {
                    row.copy_from_slice(&self.bias);
                }
                // SAFETY: x is (rows, in), w (in, out) and y (rows, out), all row-major
                // and of those lengths (asserted by the slices' construction above), so
                // every index the strides reach lies inside its slice.
                unsafe {
                    gemm::gemm(
                        rows,
                        self.outputs,
                        self.inputs,
                        y.as_mut_ptr(),
                        1,
                        self.outputs as isize,
                        true,
                        x.as_ptr(),
                        1,
                        self.inputs as isize,
                        w.as_ptr(),
                        1,
                        self.outputs as isize,
                        1.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    )
                }
            }
            Weight::Int8(q) => {
                let acts = Acts::quantize_on(x, self.inputs, q.act_format(), q.isa(), 1);
                q.forward_into(&acts, y, 1);
                add_bias(q.isa(), y, &self.bias);
            }
        }
    }
}

struct LayerNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

struct Layer {
    /// Query, key and value as one (3h, h) product: each output row holds q, then k, then v.
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// The encoder: embeddings and transformer layers (the pooler is not used).
pub struct Bert {
    config: BertConfig,
    activation: Activation,
    isa: Isa,
    /// (vocab, h).
    word_embeddings: Vec<f32>,
    /// (positions, h), with the token-type-0 row already added (single sentences only ever
    /// use type 0).
    position_embeddings: Vec<f32>,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
}

/// One batch's working buffers, reused from layer to layer.
struct Buffers {
    x: Vec<f32>,
    x1: Vec<f32>,
    qkv: Vec<f32>,
    context: Vec<f32>,
    inner: Vec<f32>,
}

impl Bert {
    /// Reads the weights of `config` from a safetensors file (and, with
    /// `Precision::Int8`, repacks the projections for the integer kernels).
    pub fn load(
        config: BertConfig,
        weights: &Path,
        precision: Precision,
    ) -> Result<Self, EmbedError> {
        let format = |message: String| EmbedError::Format {
            path: weights.to_path_buf(),
            message,
        };
        if config.hidden_size.checked_rem(config.num_attention_heads) != Some(0) {
            return Err(EmbedError::Unsupported(format!(
                "hidden size {} is not a multiple of {} heads",
                config.hidden_size, config.num_attention_heads
            )));
        }
        let activation = match config.hidden_act.as_str() {
            "gelu" => Activation::GeluErf,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            other => return Err(EmbedError::Unsupported(format!("activation {other:?}"))),
        };
        match config.position_embedding_type.as_deref() {
            None | Some("absolute") => {}
            Some(other) => {
                return Err(EmbedError::Unsupported(format!(
                    "position embeddings {other:?}"
                )))
            }
        }
        if !weights.exists() {
            return Err(EmbedError::Io {
                path: weights.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
        let tensors = candle_core::safetensors::load(weights, &Device::Cpu)
            .map_err(|e| format(e.to_string()))?;
        let w = Weights {
            tensors,
            path: weights,
        };
        let isa = shammie_local::qmm::isa();

        let h = config.hidden_size;
        let linear = |prefixes: &[String], out: usize, inp: usize| -> Result<Linear, EmbedError> {
            let mut ws = Vec::new();
            let mut bs = Vec::new();
            for prefix in prefixes {
                ws.push(w.get(&format!("{prefix}.weight"), &[out, inp])?);
                bs.push(w.get(&format!("{prefix}.bias"), &[out])?);
            }
            Linear::new(&Tensor::cat(&ws, 0)?, &Tensor::cat(&bs, 0)?, precision, isa)
        };
        let norm = |prefix: &str| -> Result<LayerNorm, EmbedError> {
            Ok(LayerNorm {
                weight: w.get(&format!("{prefix}.weight"), &[h])?.to_vec1()?,
                bias: w.get(&format!("{prefix}.bias"), &[h])?.to_vec1()?,
                eps: config.layer_norm_eps as f32,
            })
        };

        let word_embeddings = w
            .get("embeddings.word_embeddings.weight", &[config.vocab_size, h])?
            .flatten_all()?
            .to_vec1()?;
        let token_type = w.get(
            "embeddings.token_type_embeddings.weight",
            &[config.type_vocab_size, h],
        )?;
        let position_embeddings = w
            .get(
                "embeddings.position_embeddings.weight",
                &[config.max_position_embeddings, h],
            )?
            .broadcast_add(&token_type.narrow(0, 0, 1)?)?
            .flatten_all()?
            .to_vec1()?;
        let embedding_norm = norm("embeddings.LayerNorm")?;

        let i = config.intermediate_size;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            let one = |name: &str| [format!("{p}.{name}")];
            let qkv = ["query", "key", "value"].map(|n| format!("{p}.attention.self.{n}"));
            layers.push(Layer {
                qkv: linear(&qkv, h, h)?,
                attention_out: linear(&one("attention.output.dense"), h, h)?,
                attention_norm: norm(&format!("{p}.attention.output.LayerNorm"))?,
                intermediate: linear(&one("intermediate.dense"), i, h)?,
                output: linear(&one("output.dense"), h, i)?,
                output_norm: norm(&format!("{p}.output.LayerNorm"))?,
            });
        }
        Ok(Self {
            config,
            activation,
            isa,
            word_embeddings,
            position_embeddings,
            embedding_norm,
            layers,
        })
    }

    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// The last hidden state of each text in `texts` (token ids, `[CLS]` and `[SEP]`
    /// included), packed: (Σ lengths, hidden) row-major, text after text. Runs on the
    /// calling thread.
    ///
    /// # Errors
    /// A text longer than the model's positions, or a token id outside its vocabulary.
    pub fn forward(&self, texts: &[&[u32]]) -> Result<Vec<f32>, EmbedError> {
        let h = self.config.hidden_size;
        let rows: usize = texts.iter().map(|t| t.len()).sum();
        let mut b = Buffers {
            x: vec![0.0; rows * h],
            x1: vec![0.0; rows * h],
            qkv: vec![0.0; rows * 3 * h],
            context: vec![0.0; rows * h],
            inner: vec![0.0; rows * self.config.intermediate_size],
        };

        // Embeddings: word + position (+ type 0), then the embedding LayerNorm.
        let mut starts = Vec::with_capacity(texts.len() + 1);
        let mut r = 0;
        for ids in texts {
            if ids.len() > self.config.max_position_embeddings {
                return Err(EmbedError::Unsupported(format!(
                    "a sequence of {} tokens is longer than {} positions",
                    ids.len(),
                    self.config.max_position_embeddings
                )));
            }
            starts.push(r);
            for (pos, &id) in ids.iter().enumerate() {
                let id = id as usize;
                if id >= self.config.vocab_size {
                    return Err(EmbedError::Unsupported(format!(
                        "token id {id} outside a vocabulary of {}",
                        self.config.vocab_size
                    )));
                }
                let row = &mut b.x[r * h..][..h];
                row.copy_from_slice(&self.word_embeddings[id * h..][..h]);
                add_rows(self.isa, row, &self.position_embeddings[pos * h..][..h]);
                r += 1;
            }
        }
        starts.push(r);
        let n = &self.embedding_norm;
        layer_norm_rows(self.isa, &mut b.x, None, &n.weight, &n.bias, n.eps, h);

        for layer in &self.layers {
            self.layer(layer, &starts, &mut b);
        }
        Ok(b.x)
    }

    fn layer(&self, layer: &Layer, starts: &[usize], b: &mut Buffers) {
        let h = self.config.hidden_size;
        let heads = self.config.num_attention_heads;
        layer.qkv.forward(&b.x, &mut b.qkv);
        attention_rows(self.isa, &b.qkv, starts, heads, h / heads, &mut b.context);
        layer.attention_out.forward(&b.context, &mut b.x1);
        let n = &layer.attention_norm;
        layer_norm_rows(
            self.isa,
            &mut b.x1,
            Some(&b.x),
            &n.weight,
            &n.bias,
            n.eps,
            h,
        );

        layer.intermediate.forward(&b.x1, &mut b.inner);
        match self.activation {
            Activation::GeluErf => gelu_erf_rows(self.isa, &mut b.inner),
            Activation::GeluTanh => gelu_tanh_rows(self.isa, &mut b.inner),
            Activation::Relu => relu_rows(self.isa, &mut b.inner),
        }
        layer.output.forward(&b.inner, &mut b.x);
        let n = &layer.output_norm;
        layer_norm_rows(
            self.isa,
            &mut b.x,
            Some(&b.x1),
            &n.weight,
            &n.bias,
            n.eps,
            h,
        );
    }
}

/// Lanes of the vectorized sums: a sum over a row is kept in 16 partial sums (lane l takes
/// elements l, l + 16, …) added in a fixed order at the end, which the compiler turns into
/// one or two vector registers.
const LANES: usize = 16;

#[inline(always)]
fn lane_sum(acc: [f32; LANES]) -> f32 {
    let mut a = acc;
    let mut w = LANES / 2;
    while w > 0 {
        for l in 0..w {
            a[l] += a[l + w];
        }
        w /= 2;
    }
    a[0]
}

/// Σ f(x_i) over a row, in lanes.
#[inline(always)]
fn row_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f(v);
        }
    }
    for (a, &v) in acc.iter_mut().zip(chunks.remainder()) {
        *a += f(v);
    }
    lane_sum(acc)
}

#[inline(always)]
fn add_body(x: &mut [f32], y: &[f32]) {
    for (x, &y) in x.iter_mut().zip(y) {
        *x += y;
    }
}

#[inline(always)]
fn add_bias_body(y: &mut [f32], bias: &[f32]) {
    for row in y.chunks_exact_mut(bias.len()) {
        add_body(row, bias);
    }
}

/// Each row of `x` (rows of `h`) ← LayerNorm(x + residual): (v − mean) / √(var + eps) · w + b
/// with the biased variance, as torch's `LayerNorm`.
#[inline(always)]
fn layer_norm_body(
    x: &mut [f32],
    residual: Option<&[f32]>,
    w: &[f32],
    b: &[f32],
    eps: f32,
    h: usize,
) {
    for (i, row) in x.chunks_exact_mut(h).enumerate() {
        if let Some(res) = residual {
            add_body(row, &res[i * h..][..h]);
        }
        let mean = row_sum(row, |v| v) / h as f32;
        let var = row_sum(row, |v| (v - mean) * (v - mean)) / h as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, &w), &b) in row.iter_mut().zip(w).zip(b) {
            *v = (*v - mean) * inv * w + b;
        }
    }
}

/// erfc(z) for z ≥ 0: t·exp(−z² − 1.26551223 + t(1.00002368 + …)), t = 1/(1 + z/2), the
/// rational-Chebyshev fit of Numerical Recipes (§6.2), relative error < 1.2 × 10⁻⁷.
#[inline(always)]
#[allow(clippy::excessive_precision)] // the coefficients as published
fn erfc_nonneg(z: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * z);
    let mut p = 0.170_872_77f32;
    for c in [
        -0.822_152_23,
        1.488_515_87,
        -1.135_203_98,
        0.278_868_07,
        -0.186_288_06,
        0.096_784_18,
        0.374_091_96,
        1.000_023_68,
        -1.265_512_23,
    ] {
        p = p * t + c;
    }
    t * shammie_local::rows::exp(p - z * z)
}

/// Exact GELU: x Φ(x) = x · erfc(−x/√2) / 2.
#[inline(always)]
fn gelu_erf_body(x: &mut [f32]) {
    for v in x.iter_mut() {
        let w = -*v * std::f32::consts::FRAC_1_SQRT_2;
        let e = erfc_nonneg(w.abs());
        let erfc = if w >= 0.0 { e } else { 2.0 - e };
        *v = 0.5 * *v * erfc;
    }
}

/// GELU, tanh approximation: x / (1 + e^(−2y)), y = √(2/π)(x + 0.044715x³).
#[inline(always)]
fn gelu_tanh_body(x: &mut [f32]) {
    for v in x.iter_mut() {
        let y = 0.797_884_6 * (*v + 0.044_715 * *v * *v * *v);
        *v /= 1.0 + shammie_local::rows::exp(-2.0 * y);
    }
}

#[inline(always)]
fn relu_body(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v = v.max(0.0);
    }
}

/// Queries per block of the attention kernel.
const QUERIES: usize = 4;

/// Self-attention of every text: `qkv` rows (q | k | v, each `heads × dim`), texts at
/// rows `starts[i]..starts[i + 1]`; `context` gets softmax(q kᵀ / √dim) v per head.
///
/// Laid out for the vector unit: a head's keys are copied transposed (dim × t, padded to
/// whole lanes), and queries go four at a time, so each vector of keys or values read
/// serves four queries and the running sums stay in registers. The context is the
/// exponentiated scores' weighted sum of value rows, divided by their total once.
#[inline(always)]
fn attention_body(qkv: &[f32], starts: &[usize], heads: usize, dim: usize, context: &mut [f32]) {
    let h = heads * dim;
    let scale = 1.0 / (dim as f32).sqrt();
    let mut keys_t = Vec::new();
    let mut scores = Vec::new();
    let mut queries = vec![0f32; QUERIES * dim];
    for span in starts.windows(2) {
        let (s0, t) = (span[0], span[1] - span[0]);
        let tp = t.div_ceil(LANES) * LANES;
        keys_t.clear();
        keys_t.resize(dim * tp, 0.0);
        scores.resize(QUERIES * tp, 0.0);
        let row = |i: usize, part: usize| (s0 + i) * 3 * h + part * h;
        for head in 0..heads {
            let col = head * dim;
            for j in 0..t {
                let k = &qkv[row(j, 1) + col..][..dim];
                for (d, &v) in k.iter().enumerate() {
                    keys_t[d * tp + j] = v;
                }
            }
            for i0 in (0..t).step_by(QUERIES) {
                let n = QUERIES.min(t - i0);
                // The block's queries, scaled; missing ones repeat the last.
                for (r, q) in queries.chunks_exact_mut(dim).enumerate() {
                    let src = &qkv[row(i0 + r.min(n - 1), 0) + col..][..dim];
                    for (q, &s) in q.iter_mut().zip(src) {
                        *q = s * scale;
                    }
                }
                for j0 in (0..tp).step_by(LANES) {
                    let mut acc = [[0f32; LANES]; QUERIES];
                    for d in 0..dim {
                        let k = &keys_t[d * tp + j0..][..LANES];
                        for (r, acc) in acc.iter_mut().enumerate() {
                            let q = queries[r * dim + d];
                            for (a, &k) in acc.iter_mut().zip(k) {
                                *a += q * k;
                            }
                        }
                    }
                    for (r, acc) in acc.iter().enumerate() {
                        scores[r * tp + j0..][..LANES].copy_from_slice(acc);
                    }
                }
                let mut totals = [1f32; QUERIES];
                for (r, total) in totals.iter_mut().enumerate().take(n) {
                    let s = &mut scores[r * tp..][..t];
                    let max = s.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
                    for x in s.iter_mut() {
                        *x = shammie_local::rows::exp(*x - max);
                    }
                    *total = row_sum(s, |x| x);
                }
                let mut c0 = 0;
                while c0 < dim {
                    let w = LANES.min(dim - c0);
                    let mut acc = [[0f32; LANES]; QUERIES];
                    for j in 0..t {
                        let v = &qkv[row(j, 2) + col + c0..][..w];
                        for (r, acc) in acc.iter_mut().enumerate() {
                            let e = scores[r * tp + j];
                            for (a, &v) in acc.iter_mut().zip(v) {
                                *a += e * v;
                            }
                        }
                    }
                    for (r, acc) in acc.iter().enumerate().take(n) {
                        let inv = 1.0 / totals[r];
                        let out = &mut context[(s0 + i0 + r) * h + col + c0..][..w];
                        for (o, &a) in out.iter_mut().zip(acc) {
                            *o = a * inv;
                        }
                    }
                    c0 += w;
                }
            }
        }
    }
}

shammie_local::vectorized!(fn add_rows(x: &mut [f32], y: &[f32]) => add_body);
shammie_local::vectorized!(fn add_bias(y: &mut [f32], bias: &[f32]) => add_bias_body);
shammie_local::vectorized!(fn layer_norm_rows(x: &mut [f32], residual: Option<&[f32]>, w: &[f32], b: &[f32], eps: f32, h: usize) => layer_norm_body);
shammie_local::vectorized!(fn gelu_erf_rows(x: &mut [f32]) => gelu_erf_body);
shammie_local::vectorized!(fn gelu_tanh_rows(x: &mut [f32]) => gelu_tanh_body);
shammie_local::vectorized!(fn relu_rows(x: &mut [f32]) => relu_body);
shammie_local::vectorized!(fn attention_rows(qkv: &[f32], starts: &[usize], heads: usize, dim: usize, context: &mut [f32]) => attention_body);

struct Weights<'a> {
    tensors: HashMap<String, Tensor>,
    path: &'a Path,
}

impl Weights<'_> {
    /// The tensor `name` (also found under a `bert.` prefix), checked for shape, as f32.
    fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor, EmbedError> {
        let format = |message: String| EmbedError::Format {
            path: self.path.to_path_buf(),
            message,
        };
        let t = self
            .tensors
            .get(name)
            .or_else(|| self.tensors.get(&format!("bert.{name}")))
            .ok_or_else(|| format(format!("tensor {name} is missing")))?;
        if t.dims() != shape {
            return Err(format(format!(
                "tensor {name} has shape {:?}, expected {shape:?}",
                t.dims()
            )));
        }
        Ok(t.to_dtype(DType::F32)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf from its Maclaurin series (f64, enough terms for |x| ≤ 3), and erfc = 1 − erf.
    fn erfc_series(z: f64) -> f64 {
        let mut term = z;
        let mut sum = z;
        for n in 1..200 {
            term *= -z * z / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        1.0 - 2.0 / std::f64::consts::PI.sqrt() * sum
    }

    /// The fit's own error (1.2 × 10⁻⁷) plus f32 rounding, chiefly of `exp`'s argument
    /// −z² − 1.27 + …, whose last bit is worth 6 × 10⁻⁸ · |argument| of the result (up to
    /// ~10⁻⁶ at z = 3, where erfc is 2 × 10⁻⁵).
    #[test]
    fn erfc_matches_the_series() {
        for i in 0..=300 {
            let z = i as f64 * 0.01;
            let want = erfc_series(z);
            let got = erfc_nonneg(z as f32) as f64;
            assert!(
                ((got - want) / want).abs() < 3e-6,
                "erfc({z}) = {got}, series {want}"
            );
        }
    }

    #[test]
    fn gelu_erf_matches_x_phi_x_on_every_kernel() {
        let xs: Vec<f32> = (-400..=400).map(|i| i as f32 * 0.01).collect();
        for isa in [Isa::Scalar, shammie_local::qmm::isa()] {
            let mut y = xs.clone();
            gelu_erf_rows(isa, &mut y);
            for (&x, &y) in xs.iter().zip(&y) {
                let want = 0.5 * x as f64 * erfc_series(-(x as f64) / std::f64::consts::SQRT_2);
                assert!(
                    (y as f64 - want).abs() <= 1e-6 * (1.0 + want.abs()),
                    "{isa:?}: gelu({x}) = {y}, want {want}"
                );
            }
        }
    }

    #[test]
    fn layer_norm_by_hand() {
        // Row (1, 2, 3, 6) + residual (1, 0, 1, 0) = (2, 2, 4, 6): mean 3.5, biased
        // variance (2.25 + 2.25 + 0.25 + 6.25) / 4 = 2.75.
        let mut x = vec![1.0, 2.0, 3.0, 6.0];
        let res = [1.0, 0.0, 1.0, 0.0];
        let w = [1.0, 2.0, 1.0, 1.0];
        let b = [0.0, 0.0, 1.0, 0.0];
        layer_norm_rows(
            shammie_local::qmm::isa(),
            &mut x,
            Some(&res),
            &w,
            &b,
            0.0,
            4,
        );
        let s = 2.75f32.sqrt();
        let want = [-1.5 / s, 2.0 * -1.5 / s, 0.5 / s + 1.0, 2.5 / s];
        for (g, w) in x.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{x:?} vs {want:?}");
        }
    }

    /// softmax(q kᵀ/√dim) v for each text and head, in f64, the plain way.
    fn attention_naive(qkv: &[f32], starts: &[usize], heads: usize, dim: usize) -> Vec<f64> {
        let h = heads * dim;
        let mut out = vec![0f64; (qkv.len() / (3 * h)) * h];
        for span in starts.windows(2) {
            for head in 0..heads {
                for i in span[0]..span[1] {
                    let q = |d: usize| qkv[i * 3 * h + head * dim + d] as f64;
                    let s: Vec<f64> = (span[0]..span[1])
                        .map(|j| {
                            (0..dim)
                                .map(|d| q(d) * qkv[j * 3 * h + h + head * dim + d] as f64)
                                .sum::<f64>()
                                / (dim as f64).sqrt()
                        })
                        .collect();
                    let max = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = s.iter().map(|x| (x - max).exp()).collect();
                    let total: f64 = e.iter().sum();
                    for d in 0..dim {
                        out[i * h + head * dim + d] = (span[0]..span[1])
                            .zip(&e)
                            .map(|(j, e)| {
                                e / total * qkv[j * 3 * h + 2 * h + head * dim + d] as f64
                            })
                            .sum();
                    }
                }
            }
        }
        out
    }

    /// Texts of 1 to 37 tokens (blocks of queries and lanes of keys partly filled), heads
    /// of 32 and of 20 values (a part-lane remainder), on both kernels.
    #[test]
    fn attention_matches_the_plain_formula() {
        let mut seed = 7u64;
        let mut rand = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        };
        for (heads, dim) in [(3, 32), (2, 20)] {
            let starts = [0, 1, 5, 21, 58];
            let rows = *starts.last().unwrap();
            let qkv: Vec<f32> = (0..rows * 3 * heads * dim).map(|_| rand()).collect();
            let want = attention_naive(&qkv, &starts, heads, dim);
            for isa in [Isa::Scalar, shammie_local::qmm::isa()] {
                let mut got = vec![0f32; rows * heads * dim];
                attention_rows(isa, &qkv, &starts, heads, dim, &mut got);
                for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g as f64 - w).abs() < 1e-5,
                        "{isa:?} {dim}: [{i}] {g} vs {w}"
                    );
                }
            }
        }
    }

    #[test]
    fn attention_by_hand() {
        // One head of dimension 2, a text of two tokens. Scores for token 0:
        // q0·k0 = 1, q0·k1 = 0, scaled by 1/√2; context = Σ softmax · v.
        let (heads, dim) = (1, 2);
        let qkv = vec![
            1.0, 0.0, /* k0 */ 1.0, 0.0, /* v0 */ 10.0, 0.0, //
            0.0, 1.0, /* k1 */ 0.0, 0.0, /* v1 */ 0.0, 10.0,
        ];
        let mut ctx = vec![0.0; 4];
        attention_rows(Isa::Scalar, &qkv, &[0, 2], heads, dim, &mut ctx);
        let a = (1.0f32 / 2f32.sqrt()).exp();
        let p0 = a / (a + 1.0);
        let want = [10.0 * p0, 10.0 * (1.0 - p0), 5.0, 5.0];
        for (g, w) in ctx.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{ctx:?} vs {want:?}");
        }
    }
}
