//! A BERT encoder (post-LayerNorm, absolute positions) over `model.safetensors` weights in
//! the Hugging Face `BertModel` layout, returning the last hidden state.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, D};
use serde::Deserialize;

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

struct Linear {
    /// (in, out): the stored (out, in) weight transposed once, contiguous, so that every
    /// product reads it in order.
    weight_t: Tensor,
    bias: Tensor,
    /// The weight repacked for the integer kernels (`Precision::Int8`).
    quantized: Option<shammie_local::qmm::QMatrix>,
}

impl Linear {
    fn new(weight: Tensor, bias: Tensor, precision: Precision) -> candle_core::Result<Self> {
        let quantized = match precision {
            Precision::F32 => None,
            Precision::Int8 => {
                let q = candle_core::quantized::QTensor::quantize(
                    &weight,
                    candle_core::quantized::GgmlDType::Q8_0,
                )?;
                shammie_local::qmm::QMatrix::from_qtensor(&q, shammie_local::qmm::isa())
            }
        };
        Ok(Linear {
            weight_t: weight.t()?.contiguous()?,
            bias,
            quantized,
        })
    }

    /// `x` is (rows, in); returns (rows, out).
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = match &self.quantized {
            Some(q) => {
                let (rows, _) = x.dims2()?;
                let out = q.forward(&x.flatten_all()?.to_vec1::<f32>()?);
                Tensor::from_vec(out, (rows, q.dims().0), x.device())?
            }
            None => x.matmul(&self.weight_t)?,
        };
        y.broadcast_add(&self.bias)
    }
}

struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    /// Normalises over the last dimension.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(var + self.eps)?.sqrt()?)?;
        normed
            .broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)
    }
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
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
    word_embeddings: Tensor,
    position_embeddings: Tensor,
    /// The token-type-0 row: single sentences only ever use type 0.
    token_type_0: Tensor,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
    device: Device,
}

impl Bert {
    /// Reads the weights of `config` from a safetensors file, onto `device`, as f32 (and,
    /// with `Precision::Int8`, the projections also repacked for the integer kernels).
    pub fn load(
        config: BertConfig,
        weights: &Path,
        device: &Device,
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
        let tensors =
            candle_core::safetensors::load(weights, device).map_err(|e| format(e.to_string()))?;
        let w = Weights {
            tensors,
            path: weights,
        };

        let h = config.hidden_size;
        let linear = |prefix: &str, out: usize, inp: usize| -> Result<Linear, EmbedError> {
            Ok(Linear::new(
                w.get(&format!("{prefix}.weight"), &[out, inp])?,
                w.get(&format!("{prefix}.bias"), &[out])?,
                precision,
            )?)
        };
        let norm = |prefix: &str| -> Result<LayerNorm, EmbedError> {
            Ok(LayerNorm {
                weight: w.get(&format!("{prefix}.weight"), &[h])?,
                bias: w.get(&format!("{prefix}.bias"), &[h])?,
                eps: config.layer_norm_eps,
            })
        };

        let word_embeddings =
            w.get("embeddings.word_embeddings.weight", &[config.vocab_size, h])?;
        let position_embeddings = w.get(
            "embeddings.position_embeddings.weight",
            &[config.max_position_embeddings, h],
        )?;
        let token_type = w.get(
            "embeddings.token_type_embeddings.weight",
            &[config.type_vocab_size, h],
        )?;
        let token_type_0 = token_type.narrow(0, 0, 1)?;
        let embedding_norm = norm("embeddings.LayerNorm")?;

        let i = config.intermediate_size;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            layers.push(Layer {
                query: linear(&format!("{p}.attention.self.query"), h, h)?,
                key: linear(&format!("{p}.attention.self.key"), h, h)?,
                value: linear(&format!("{p}.attention.self.value"), h, h)?,
                attention_out: linear(&format!("{p}.attention.output.dense"), h, h)?,
                attention_norm: norm(&format!("{p}.attention.output.LayerNorm"))?,
                intermediate: linear(&format!("{p}.intermediate.dense"), i, h)?,
                output: linear(&format!("{p}.output.dense"), h, i)?,
                output_norm: norm(&format!("{p}.output.LayerNorm"))?,
            });
        }
        Ok(Self {
            config,
            activation,
            word_embeddings,
            position_embeddings,
            token_type_0,
            embedding_norm,
            layers,
            device: device.clone(),
        })
    }

    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// `ids` (batch, seq) u32 and `mask` (batch, seq) f32 with 1 for real tokens and 0 for
    /// padding; returns the last hidden state (batch, seq, hidden).
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let h = self.config.hidden_size;
        let heads = self.config.num_attention_heads;
        let head_dim = h / heads;
        if t > self.config.max_position_embeddings {
            candle_core::bail!(
                "sequence of {t} tokens is longer than {} positions",
                self.config.max_position_embeddings
            );
        }

        let words = self
            .word_embeddings
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((b, t, h))?;
        let positions = self.position_embeddings.narrow(0, 0, t)?;
        let x = words
            .broadcast_add(&positions)?
            .broadcast_add(&self.token_type_0)?;
        let mut x = self.embedding_norm.forward(&x)?.reshape((b * t, h))?;

        // Padding keys get a large negative score, so their softmax weight is exactly 0.
        let additive_mask = ((mask.to_dtype(DType::F32)? - 1.0)? * 1e30)?.reshape((b, 1, 1, t))?;
        let scale = 1.0 / (head_dim as f64).sqrt();

        for layer in &self.layers {
            let split = |y: Tensor| {
                y.reshape((b, t, heads, head_dim))?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let q = split(layer.query.forward(&x)?)?;
            let k = split(layer.key.forward(&x)?)?;
            let v = split(layer.value.forward(&x)?)?;
            let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(&additive_mask)?;
            let probs = softmax_last_dim(&scores)?;
            let context = probs.matmul(&v)?.transpose(1, 2)?.reshape((b * t, h))?;
            let attended = layer.attention_out.forward(&context)?;
            let x1 = layer.attention_norm.forward(&(attended + &x)?)?;

            let inner = layer.intermediate.forward(&x1)?;
            let inner = match self.activation {
                Activation::GeluErf => inner.gelu_erf()?,
                Activation::GeluTanh => inner.gelu()?,
                Activation::Relu => inner.relu()?,
            };
            let out = layer.output.forward(&inner)?;
            x = layer.output_norm.forward(&(out + x1)?)?;
        }
        x.reshape((b, t, h))
    }
}

fn softmax_last_dim(x: &Tensor) -> candle_core::Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?;
    let e = x.broadcast_sub(&max)?.exp()?;
    let sum = e.sum_keepdim(D::Minus1)?;
    e.broadcast_div(&sum)
}

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
