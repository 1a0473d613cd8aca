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
    let (rows, cols) = t.dims2().map_err(err)?;
    let v: Vec<f32> = t.flatten_all().and_then(|f| f.to_vec1()).map_err(err)?;
    Ok(Mat::from_fn(rows, cols, |i, j| v[i * cols + j] as f64))
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

/// A token sequence as influence reads it: the ids (BOS first) and where the part whose
/// log-probability counts starts (`ids[loss_from..]` are predicted; `loss_from` ≥ 1).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sequence {
    pub id: String,
    pub ids: Vec<u32>,
    pub loss_from: usize,
}

impl Sequence {
    /// The positions whose next-token loss counts.
    pub fn positions(&self) -> Vec<usize> {
        (self.loss_from.max(1) - 1..self.ids.len().saturating_sub(1)).collect()
    }

    fn check(&self) -> Result<(), InfluenceError> {
        if self.loss_from == 0 || self.loss_from >= self.ids.len() {
            return Err(InfluenceError::Data(format!(
                "sequence `{}`: nothing to score ({} tokens, the scored part from token {})",
                self.id,
                self.ids.len(),
                self.loss_from
            )));
        }
        Ok(())
    }
}

/// The records of several sequences as one batch (rows one after the other).
fn concat(parts: Vec<Batch>) -> Batch {
    let mut it = parts.into_iter();
    let Some(first) = it.next() else {
        return Batch {
            layers: Vec::new(),
            tokens: Vec::new(),
        };
    };
    let rest: Vec<Batch> = it.collect();
    if rest.is_empty() {
        return first;
    }
    let layers = first
        .layers
        .iter()
        .enumerate()
        .map(|(l, r0)| {
            let rows = r0.a.nrows() + rest.iter().map(|b| b.layers[l].a.nrows()).sum::<usize>();
            let stack = |get: &dyn Fn(&LayerRecord) -> &Mat<f64>| {
                let mut m = Mat::zeros(rows, get(r0).ncols());
                let mut at = 0;
                for r in std::iter::once(r0).chain(rest.iter().map(|b| &b.layers[l])) {
                    let x = get(r);
                    m.as_mut().subrows_mut(at, x.nrows()).copy_from(x);
                    at += x.nrows();
                }
                m
            };
            LayerRecord {
                a: stack(&|r| &r.a),
                s: stack(&|r| &r.s),
            }
        })
        .collect();
    let tokens = std::iter::once(first.tokens)
        .chain(rest.into_iter().map(|b| b.tokens))
        .flatten()
        .collect();
    Batch { layers, tokens }
}

/// Groups consecutive sequences into batches of at most `max_tokens` tokens (a longer
/// sequence is a batch of its own): `[start, end)` ranges.
pub fn batch_ranges(seqs: &[Sequence], max_tokens: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut tokens = 0;
    for (i, s) in seqs.iter().enumerate() {
        if i > start && tokens + s.ids.len() > max_tokens {
            out.push((start, i));
            start = i;
            tokens = 0;
        }
        tokens += s.ids.len();
    }
    if start < seqs.len() {
        out.push((start, seqs.len()));
    }
    out
}

/// Tokens per batch when fitting: enough rows for efficient products, few enough to keep
/// a batch's records (2 × rows × width × 8 bytes per projection) in a few hundred MB.
pub const FIT_BATCH_TOKENS: usize = 512;

/// How many bytes of records an empirical-Fisher fit keeps from its first pass for its
/// second.
pub const CACHE_BYTES: usize = 2 << 30;

/// A language model with taps set, ready for influence.
pub struct Lm<'a> {
    pub wb: &'a WhiteBox,
    pub taps: Arc<Taps>,
    pub specs: Vec<LayerSpec>,
    /// Tokens per batch when fitting ([`FIT_BATCH_TOKENS`]); each batch is a checkpoint
    /// step.
    pub batch_tokens: usize,
}

impl Lm<'_> {
    /// The records of `seq` with the data's next tokens.
    pub fn records(&self, seq: &Sequence) -> Result<Batch, InfluenceError> {
        seq.check()?;
        records::<rand_chacha::ChaCha8Rng>(
            self.wb,
            &self.taps,
            &self.specs,
            &seq.ids,
            &seq.positions(),
            Labels::Data,
        )
    }

    /// The records of `seq` with its next tokens drawn from the model, from a generator
    /// seeded by (`seed`, the sequence's index, the pass): the same draws whenever asked.
    fn sampled(
        &self,
        seq: &Sequence,
        index: usize,
        pass: crate::ekfac::Pass,
        seed: u64,
    ) -> Result<Batch, InfluenceError> {
        use rand::SeedableRng;
        seq.check()?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(((index as u64) << 1) | u64::from(pass == crate::ekfac::Pass::Lambda));
        records(
            self.wb,
            &self.taps,
            &self.specs,
            &seq.ids,
            &seq.positions(),
            Labels::Sampled(&mut rng),
        )
    }

    /// Fits the factors on `seqs` (batches of [`FIT_BATCH_TOKENS`]), with sampled or the
    /// data's labels, checkpointed when asked; `progress(done, total)` counts batches
    /// over both passes.
    pub fn fit(
        &self,
        seqs: &[Sequence],
        fisher: crate::Fisher,
        seed: u64,
        checkpoint: Option<&crate::checkpoint::Checkpoint>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Vec<crate::ekfac::LayerFactors>, InfluenceError> {
        let ranges = batch_ranges(seqs, self.batch_tokens);
        let n = ranges.len();
        // With the data's labels both passes see the same records: the first pass keeps
        // batches (up to `CACHE_BYTES`) for the second instead of running them again.
        let width: usize = self.specs.iter().map(|s| s.inputs + s.outputs).sum();
        let mut cache: Vec<Option<Batch>> = (0..n).map(|_| None).collect();
        let mut cached = 0usize;
        crate::ekfac::fit_checkpointed(
            &self.specs,
            n,
            |i, pass| {
                if pass == crate::ekfac::Pass::Lambda {
                    if let Some(b) = cache[i].take() {
                        progress(i + 1 + n, 2 * n);
                        return Ok(b);
                    }
                }
                let (a, b) = ranges[i];
                let parts = (a..b)
                    .map(|k| match fisher {
                        crate::Fisher::Empirical => self.records(&seqs[k]),
                        crate::Fisher::Sampled => self.sampled(&seqs[k], k, pass, seed),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                progress(
                    i + 1
                        + if pass == crate::ekfac::Pass::Lambda {
                            n
                        } else {
                            0
                        },
                    2 * n,
                );
                let batch = concat(parts);
                if fisher == crate::Fisher::Empirical && pass == crate::ekfac::Pass::Covariance {
                    let rows: usize = batch.tokens.iter().sum();
                    let bytes = rows * width * std::mem::size_of::<f64>();
                    if cached + bytes <= CACHE_BYTES {
                        cached += bytes;
                        cache[i] = Some(batch.clone());
                    }
                }
                Ok(batch)
            },
            checkpoint,
        )
    }

    /// The summed log-probability of `seq`'s scored tokens.
    pub fn logprob(&self, seq: &Sequence) -> Result<f64, InfluenceError> {
        seq.check()?;
        let targets: Vec<u32> = seq.positions().iter().map(|&p| seq.ids[p + 1]).collect();
        let l = self
            .wb
            .token_losses_for(&seq.ids, &seq.positions(), &targets)
            .and_then(|l| l.sum_all())
            .and_then(|l| l.to_scalar::<f32>())
            .map_err(err)?;
        Ok(-(l as f64))
    }
}

/// Scores training sequences against a fixed set of queries.
pub struct Scorer<'a> {
    lm: &'a Lm<'a>,
    factors: &'a [crate::ekfac::LayerFactors],
    damping: crate::ekfac::Damping,
    pre: crate::ekfac::Preconditioned,
}

/// One training sequence's scores.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scored {
    /// Per query, per token of the sequence, its part of the score (they sum to it).
    pub tokens: Vec<Vec<f64>>,
    pub self_influence: Option<f64>,
}

impl Scored {
    /// Per query, the sequence's score.
    pub fn scores(&self) -> Vec<f64> {
        self.tokens.iter().map(|t| t.iter().sum()).collect()
    }
}

impl<'a> Scorer<'a> {
    /// Preconditions the queries' gradients (their measurement: the summed log-probability
    /// of the scored tokens, whose gradient is minus the loss's), exactly or at `rank`.
    pub fn new(
        lm: &'a Lm<'a>,
        factors: &'a [crate::ekfac::LayerFactors],
        damping: crate::ekfac::Damping,
        queries: &[Sequence],
        rank: Option<usize>,
    ) -> Result<Scorer<'a>, InfluenceError> {
        if factors.iter().map(|f| &f.spec).ne(lm.specs.iter()) {
            return Err(InfluenceError::Data(
                "the factors were fitted on other projections than the ones tapped".into(),
            ));
        }
        let q = concat(
            queries
                .iter()
                .map(|s| lm.records(s))
                .collect::<Result<Vec<_>, _>>()?,
        );
        let pre = crate::ekfac::precondition_queries(factors, damping, &q, rank)?;
        Ok(Scorer {
            lm,
            factors,
            damping,
            pre,
        })
    }

    /// The influence of training on `seq` on each query: positive when a gradient step on
    /// `seq`'s loss raises the query's log-probability (kronfluence's sign with the
    /// query's loss as the measurement).
    pub fn score(&self, seq: &Sequence, self_influence: bool) -> Result<Scored, InfluenceError> {
        let b = self.lm.records(seq)?;
        let tokens = crate::ekfac::token_scores(self.factors, &self.pre, &b)?
            .pop()
            .expect("one sequence");
        let self_influence = if self_influence {
            Some(crate::ekfac::self_influence(self.factors, self.damping, &b)?[0])
        } else {
            None
        };
        Ok(Scored {
            tokens,
            self_influence,
        })
    }
}
