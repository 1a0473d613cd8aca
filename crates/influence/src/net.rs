//! Small feed-forward networks for regression and classification — the setting of
//! kronfluence's tutorials — read from an architecture JSON and safetensors weights:
//!
//! ```json
//! {"layers": [{"type": "linear", "in": 8, "out": 128, "name": "layers.0"}, {"type": "relu"},
//!             {"type": "linear", "in": 128, "out": 1, "name": "layers.2"}],
//!  "loss": "mse_sum"}
//! ```
//!
//! Layers: `linear` (`NAME.weight` out × in, as PyTorch stores it, and `NAME.bias`, unless
//! `"bias": false`), `relu`, `tanh`, `gelu` (the exact one, x·Φ(x), PyTorch's default).
//! Losses, summed over examples: `mse_sum` = Σ (output − target)² over the output's
//! entries, `cross_entropy_sum` = Σ −log softmax(logits)[class]. Everything runs in f64.
//!
//! [`Net::records`] gives what EK-FAC needs per linear layer: the inputs with a 1 appended
//! for the bias, and the gradient of each example's loss with respect to the layer's
//! outputs — for the data's targets, or for targets sampled from the model (the true
//! Fisher): y ~ N(output, ½) for `mse_sum` (the Gaussian whose negative log-likelihood is
//! (y − output)² up to a constant, so E[s sᵀ] is the Gauss–Newton 2I), a class from
//! softmax(logits) for `cross_entropy_sum`.

use std::path::Path;

use faer::Mat;
use rand::Rng;

use crate::ekfac::{Batch, LayerRecord, LayerSpec};
use crate::InfluenceError;

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum LayerJson {
    Linear {
        #[serde(rename = "in")]
        inputs: usize,
        #[serde(rename = "out")]
        outputs: usize,
        name: String,
        #[serde(default = "yes")]
        bias: bool,
    },
    Relu,
    Tanh,
    Gelu,
}

fn yes() -> bool {
    true
}

/// The loss a network is trained with (summed over examples).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    MseSum,
    CrossEntropySum,
}

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ArchJson {
    layers: Vec<LayerJson>,
    loss: Loss,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    Relu,
    Tanh,
    Gelu,
}

#[derive(Debug, Clone)]
enum Layer {
    Linear {
        name: String,
        /// (out × in)
        w: Mat<f64>,
        b: Option<Vec<f64>>,
    },
    Act(Act),
}

/// A feed-forward network (module comment).
#[derive(Debug, Clone)]
pub struct Net {
    layers: Vec<Layer>,
    pub loss: Loss,
}

/// Targets of a batch: one value per example (a regression target, or a class index).
pub type Targets = Vec<f64>;

fn phi(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Φ(x) = (1 + erf(x/√2))/2 with libm's erf (musl's, under 1 ulp; what PyTorch's GELU
/// uses, through the C library), far faster than a series.
fn big_phi(x: f64) -> f64 {
    0.5 * (1.0 + libm::erf(x * std::f64::consts::FRAC_1_SQRT_2))
}

impl Act {
    fn apply(self, x: f64) -> f64 {
        match self {
            Act::Relu => x.max(0.0),
            Act::Tanh => x.tanh(),
            Act::Gelu => x * big_phi(x),
        }
    }
    /// d act / dx at the pre-activation x.
    fn derivative(self, x: f64) -> f64 {
        match self {
            Act::Relu => {
                if x > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Act::Tanh => 1.0 - x.tanh().powi(2),
            Act::Gelu => big_phi(x) + x * phi(x),
        }
    }
}

/// What a forward pass keeps for the backward pass.
struct Trace {
    /// The input of every layer (index i: the input of layer i), and the output last.
    values: Vec<Mat<f64>>,
}

impl Net {
    /// Reads the architecture JSON and the safetensors weights (f32 or f64), checking
    /// every shape.
    pub fn load(arch: &Path, weights: &Path) -> Result<Net, InfluenceError> {
        let text = std::fs::read_to_string(arch).map_err(|e| InfluenceError::io(arch, e))?;
        let a: ArchJson = serde_json::from_str(&text).map_err(|e| InfluenceError::File {
            path: arch.display().to_string(),
            why: format!("not a network architecture: {e}"),
        })?;
        let tensors =
            candle_core::safetensors::load(weights, &candle_core::Device::Cpu).map_err(|e| {
                InfluenceError::File {
                    path: weights.display().to_string(),
                    why: format!("not readable safetensors: {e}"),
                }
            })?;
        let bad = |why: String| InfluenceError::File {
            path: weights.display().to_string(),
            why,
        };
        let get = |name: &str, dims: &[usize]| -> Result<Vec<f64>, InfluenceError> {
            let t = tensors
                .get(name)
                .ok_or_else(|| bad(format!("no tensor `{name}`")))?;
            if t.dims() != dims {
                return Err(bad(format!(
                    "`{name}` has shape {:?}, the architecture says {dims:?}",
                    t.dims()
                )));
            }
            t.to_dtype(candle_core::DType::F64)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1::<f64>())
                .map_err(|e| bad(format!("`{name}`: {e}")))
        };
        let mut layers = Vec::new();
        let mut width: Option<usize> = None;
        for (i, l) in a.layers.iter().enumerate() {
            layers.push(match l {
                LayerJson::Linear {
                    inputs,
                    outputs,
                    name,
                    bias,
                } => {
                    if let Some(w) = width {
                        if w != *inputs {
                            return Err(InfluenceError::File {
                                path: arch.display().to_string(),
                                why: format!(
                                    "layer {} (`{name}`) takes {inputs} inputs, but the layer before gives {w}",
                                    i + 1
                                ),
                            });
                        }
                    }
                    width = Some(*outputs);
                    let w = get(&format!("{name}.weight"), &[*outputs, *inputs])?;
                    let b = if *bias {
                        Some(get(&format!("{name}.bias"), &[*outputs])?)
                    } else {
                        None
                    };
                    Layer::Linear {
                        name: name.clone(),
                        w: Mat::from_fn(*outputs, *inputs, |r, c| w[r * inputs + c]),
                        b,
                    }
                }
                LayerJson::Relu => Layer::Act(Act::Relu),
                LayerJson::Tanh => Layer::Act(Act::Tanh),
                LayerJson::Gelu => Layer::Act(Act::Gelu),
            });
        }
        let net = Net {
            layers,
            loss: a.loss,
        };
        if net.specs().is_empty() {
            return Err(InfluenceError::File {
                path: arch.display().to_string(),
                why: "no linear layer".into(),
            });
        }
        Ok(net)
    }

    /// Features the network takes.
    pub fn inputs(&self) -> usize {
        self.layers
            .iter()
            .find_map(|l| match l {
                Layer::Linear { w, .. } => Some(w.ncols()),
                Layer::Act(_) => None,
            })
            .expect("a linear layer")
    }

    /// Outputs the network gives.
    pub fn outputs(&self) -> usize {
        self.layers
            .iter()
            .rev()
            .find_map(|l| match l {
                Layer::Linear { w, .. } => Some(w.nrows()),
                Layer::Act(_) => None,
            })
            .expect("a linear layer")
    }

    /// The linear layers, in order, as EK-FAC sees them.
    pub fn specs(&self) -> Vec<LayerSpec> {
        self.layers
            .iter()
            .filter_map(|l| match l {
                Layer::Linear { name, w, b } => Some(LayerSpec {
                    name: name.clone(),
                    inputs: w.ncols() + usize::from(b.is_some()),
                    outputs: w.nrows(),
                }),
                Layer::Act(_) => None,
            })
            .collect()
    }

    fn forward_trace(&self, x: &Mat<f64>) -> Trace {
        let mut values = vec![x.clone()];
        for l in &self.layers {
            let h = values.last().expect("the input");
            let next = match l {
                Layer::Linear { w, b, .. } => {
                    let mut z = h * w.transpose();
                    if let Some(b) = b {
                        for j in 0..z.ncols() {
                            for i in 0..z.nrows() {
                                z[(i, j)] += b[j];
                            }
                        }
                    }
                    z
                }
                Layer::Act(a) => Mat::from_fn(h.nrows(), h.ncols(), |i, j| a.apply(h[(i, j)])),
            };
            values.push(next);
        }
        Trace { values }
    }

    /// The outputs (rows × outputs) for inputs x (rows × features).
    pub fn forward(&self, x: &Mat<f64>) -> Mat<f64> {
        self.forward_trace(x).values.pop().expect("an output")
    }

    /// Each example's loss.
    pub fn losses(&self, x: &Mat<f64>, y: &Targets) -> Vec<f64> {
        let out = self.forward(x);
        (0..out.nrows())
            .map(|i| match self.loss {
                Loss::MseSum => (0..out.ncols()).map(|j| (out[(i, j)] - y[i]).powi(2)).sum(),
                Loss::CrossEntropySum => {
                    let row: Vec<f64> = (0..out.ncols()).map(|j| out[(i, j)]).collect();
                    let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
                    lse - row[y[i] as usize]
                }
            })
            .collect()
    }

    /// Targets drawn from the model's own predictive distribution (module comment).
    pub fn sample_targets(&self, x: &Mat<f64>, rng: &mut impl Rng) -> Targets {
        let out = self.forward(x);
        (0..out.nrows())
            .map(|i| match self.loss {
                Loss::MseSum => {
                    // Box–Muller, standard deviation √½.
                    let u1: f64 = 1.0 - rng.gen::<f64>();
                    let u2: f64 = rng.gen::<f64>();
                    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                    out[(i, 0)] + z * 0.5f64.sqrt()
                }
                Loss::CrossEntropySum => {
                    let row: Vec<f64> = (0..out.ncols()).map(|j| out[(i, j)]).collect();
                    let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let e: Vec<f64> = row.iter().map(|v| (v - m).exp()).collect();
                    let total: f64 = e.iter().sum();
                    let mut u = rng.gen::<f64>() * total;
                    let mut k = e.len() - 1;
                    for (j, p) in e.iter().enumerate() {
                        if u < *p {
                            k = j;
                            break;
                        }
                        u -= p;
                    }
                    k as f64
                }
            })
            .collect()
    }

    /// The records of a batch: per linear layer, its inputs (a 1 appended when it has a
    /// bias) and the gradient of each example's loss (for targets `y`) with respect to
    /// its outputs; one row per example.
    pub fn records(&self, x: &Mat<f64>, y: &Targets) -> Batch {
        let tr = self.forward_trace(x);
        let out = tr.values.last().expect("an output");
        let n = out.nrows();
        // d loss / d output.
        let mut g = match self.loss {
            Loss::MseSum => Mat::from_fn(n, out.ncols(), |i, j| 2.0 * (out[(i, j)] - y[i])),
            Loss::CrossEntropySum => {
                let mut g = Mat::zeros(n, out.ncols());
                for i in 0..n {
                    let m = (0..out.ncols())
                        .map(|j| out[(i, j)])
                        .fold(f64::NEG_INFINITY, f64::max);
                    let total: f64 = (0..out.ncols()).map(|j| (out[(i, j)] - m).exp()).sum();
                    for j in 0..out.ncols() {
                        g[(i, j)] = (out[(i, j)] - m).exp() / total;
                    }
                    g[(i, y[i] as usize)] -= 1.0;
                }
                g
            }
        };
        let mut layers = Vec::new();
        for (k, l) in self.layers.iter().enumerate().rev() {
            let input = &tr.values[k];
            match l {
                Layer::Linear { w, b, .. } => {
                    let inputs = input.ncols() + usize::from(b.is_some());
                    let a = Mat::from_fn(n, inputs, |i, j| {
                        if j < input.ncols() {
                            input[(i, j)]
                        } else {
                            1.0
                        }
                    });
                    layers.push(LayerRecord { a, s: g.clone() });
                    g = &g * w;
                }
                Layer::Act(act) => {
                    g = Mat::from_fn(n, g.ncols(), |i, j| {
                        g[(i, j)] * act.derivative(input[(i, j)])
                    });
                }
            }
        }
        layers.reverse();
        Batch {
            layers,
            tokens: vec![1; n],
        }
    }

    /// Every linear layer's parameters flattened (weight row-major, then bias) — the
    /// order of [`Net::flat_gradients`].
    pub fn parameter_count(&self) -> usize {
        self.specs().iter().map(|s| s.inputs * s.outputs).sum()
    }

    /// Each example's full gradient, flattened per layer as the EK-FAC layout (out ×
    /// in′, bias column last, row-major), layers in order: for exact solves in tests.
    pub fn flat_gradients(&self, x: &Mat<f64>, y: &Targets) -> Vec<Vec<f64>> {
        let b = self.records(x, y);
        let per_layer: Vec<Vec<Mat<f64>>> = b
            .layers
            .iter()
            .map(|r| crate::ekfac::example_gradients(r, &b.tokens))
            .collect();
        (0..b.tokens.len())
            .map(|n| {
                let mut v = Vec::with_capacity(self.parameter_count());
                for g in &per_layer {
                    let g = &g[n];
                    for i in 0..g.nrows() {
                        for j in 0..g.ncols() {
                            v.push(g[(i, j)]);
                        }
                    }
                }
                v
            })
            .collect()
    }
}
