//! Language models through the white box (`shammie_local::white_box`): the records EK-FAC
//! needs for a token sequence, at chosen projections (the paper's MLP layers by default:
//! `gate_proj`, `up_proj`, `down_proj` of every layer).
//!
//! For a sequence and the positions whose next-token loss counts, one forward and one
//! backward pass of the summed negative log-likelihood give, per tapped projection, its
//! input at every token (ā, no bias column: these projections have none) and the loss
//! gradient at its output (s), through the white box's taps (`Taps`: a zero probe added
//! to the output, whose gradient is s). The next tokens are the sequence's own (the
//! empirical Fisher, and the training loss and query measurement) or drawn from the
//! model's softmax at each position (the true Fisher). Every token of the sequence is a
//! row (the last one's gradient is zero, as it predicts nothing), so the covariances count
//! the sequence's tokens, as kronfluence counts unmasked tokens.

use std::sync::Arc;

use candle_core::Tensor;
use faer::Mat;
use rand::Rng;
use shammie_local::white_box::{Taps, WhiteBox};

use crate::ekfac::{Batch, LayerRecord, LayerSpec};
use crate::InfluenceError;

/// The projections influence is computed over by default (the paper's MLP layers).
pub const MLP: &[&str] = &["gate_proj", "up_proj", "down_proj"];

fn err(e: impl std::fmt::Display) -> InfluenceError {
    InfluenceError::Numeric(e.to_string())
}

/// Taps on `modules` (of `gate_proj`, `up_proj`, `down_proj`, `o_proj`: projections
/// without a bias in every family) of `layers` (all when `None`), set on `wb`, and the
/// layers as EK-FAC sees them, named as Hugging Face names them
/// (`model.layers.3.mlp.up_proj`).
pub fn tap(
    wb: &mut WhiteBox,
    modules: &[&str],
    layers: Option<&[usize]>,
) -> Result<(Arc<Taps>, Vec<LayerSpec>), InfluenceError> {
    let all: Vec<usize> = (0..wb.cfg.layers).collect();
    let layers = layers.unwrap_or(&all);
    if let Some(bad) = layers.iter().find(|&&l| l >= wb.cfg.layers) {
        return Err(InfluenceError::Data(format!(
            "layer {bad}: the model has {} layers",
            wb.cfg.layers
        )));
    }
    if let Some(bad) = modules
        .iter()
        .find(|m| !["gate_proj", "up_proj", "down_proj", "o_proj"].contains(m))
    {
        return Err(InfluenceError::Data(format!(
            "projection `{bad}`: influence is computed over gate_proj, up_proj, down_proj or o_proj"
        )));
    }
    let taps = Arc::new(Taps::new(layers, modules).map_err(err)?);
    let specs = taps
        .targets()
        .into_iter()
        .map(|(l, m)| {
            let (outputs, inputs) = wb.projection_dims(m).expect("a known projection");
            let part = if m == "o_proj" { "self_attn" } else { "mlp" };
            LayerSpec {
                name: format!("model.layers.{l}.{part}.{m}"),
                inputs,
                outputs,
            }
        })
        .collect();
    wb.set_taps(Some(taps.clone()));
    Ok((taps, specs))
}

/// Where the next tokens come from.
pub enum Labels<'a, R: Rng> {
    /// The sequence's own next tokens.
    Data,
    /// Drawn from the model's softmax at each position.
    Sampled(&'a mut R),
}

fn to_mat(t: &Tensor) -> Result<Mat<f64>, InfluenceError> {
    let v: Vec<Vec<f32>> = t.to_vec2().map_err(err)?;
    let cols = v.first().map_or(0, Vec::len);
    Ok(Mat::from_fn(v.len(), cols, |i, j| v[i][j] as f64))
}

/// Draws one token from the softmax of each row of `logits` (rows × vocab).
fn sample_rows(logits: &Tensor, rng: &mut impl Rng) -> Result<Vec<u32>, InfluenceError> {
    let rows: Vec<Vec<f32>> = logits.to_vec2().map_err(err)?;
    Ok(rows
        .iter()
        .map(|row| {
            let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f64> = row.iter().map(|v| ((v - m) as f64).exp()).collect();
            let mut u = rng.gen::<f64>() * e.iter().sum::<f64>();
            for (k, p) in e.iter().enumerate() {
                if u < *p {
                    return k as u32;
                }
                u -= p;
            }
            (e.len() - 1) as u32
        })
        .collect())
}

/// The records of one sequence `ids` with the loss over `positions` (each predicting the
/// token after it), one row per token; `taps` must be the white box's (from [`tap`]).
pub fn records<R: Rng>(
    wb: &WhiteBox,
    taps: &Taps,
    specs: &[LayerSpec],
    ids: &[u32],
    positions: &[usize],
    labels: Labels<'_, R>,
) -> Result<Batch, InfluenceError> {
    if let Some(bad) = positions.iter().find(|&&p| p + 1 >= ids.len()) {
        return Err(InfluenceError::Data(format!(
            "position {bad} has no next token (the sequence has {})",
            ids.len()
        )));
    }
    if positions.is_empty() {
        return Err(InfluenceError::Data(
            "no position to take the loss at".into(),
        ));
    }
    let targets: Vec<u32> = match labels {
        Labels::Data => positions.iter().map(|&p| ids[p + 1]).collect(),
        Labels::Sampled(rng) => {
            let logits = wb.forward(ids).map_err(err)?.logits.detach();
            let rows: Vec<u32> = positions.iter().map(|&p| p as u32).collect();
            let rows = Tensor::new(rows.as_slice(), wb.device()).map_err(err)?;
            sample_rows(&logits.index_select(&rows, 0).map_err(err)?, rng)?
        }
    };
    taps.take();
    let loss = wb
        .token_losses_for(ids, positions, &targets)
        .and_then(|l| l.sum_all())
        .map_err(err)?;
    let grads = loss.backward().map_err(err)?;
    let caught = taps.take();
    let mut layers = Vec::with_capacity(specs.len());
    for (spec, c) in specs.iter().zip(caught) {
        let (x, probe) = c.ok_or_else(|| {
            InfluenceError::Numeric(format!("{}: not reached by the forward pass", spec.name))
        })?;
        let s = match grads.get(probe.as_tensor()) {
            Some(g) => to_mat(g)?,
            // No path from the loss to this projection: a zero gradient.
            None => Mat::zeros(ids.len(), spec.outputs),
        };
        layers.push(LayerRecord { a: to_mat(&x)?, s });
    }
    Ok(Batch {
        layers,
        tokens: vec![ids.len()],
    })
}
