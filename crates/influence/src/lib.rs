//! `shammie-influence`: influence functions with EK-FAC (Grosse et al. 2023, STUDIES.md §8)
//! — which training examples drive a model's answer.
//!
//! What is here: the EK-FAC machinery for any set of linear layers, given each example's
//! per-layer inputs and output gradients ([`ekfac`]: covariance factors, their
//! eigendecompositions, the eigenvalue correction, damping, inverse-Hessian-vector products,
//! pairwise scores); small feed-forward networks in the format kronfluence's tutorials use
//! ([`net`]: architecture JSON, safetensors weights, summed MSE or cross-entropy, the data's
//! or sampled labels) with their CSV data ([`data`]); language models through the white
//! box ([`lm`]: taps on the MLP projections, a sequence's records for the data's or
//! sampled next tokens); and files ([`io`]: factors as
//! safetensors with kronfluence's names, scores as `.npy` and CSV). [`fit_network`] and
//! [`score_network`] are what `shammie influence fit|scores` run.
//!
//! Conventions are kronfluence's, verified on its source and outputs
//! (`bench/influence/README.md`, `tests/fixtures/kronfluence_small.json`): covariances
//! normalised by tokens, Λ by examples, the bias column last, the heuristic damping
//! 0.1 × mean(Λ) per layer, scores positive when the training example lowers the query's
//! loss (the negative of the spec's I(z) = −∇fᵀ(G + λI)⁻¹∇L, with f the query's loss).
//!
//! Beyond the pairwise matrix ([`ekfac`]): per-token scores, self-influence, queries at
//! low rank; fits that resume from a checkpoint ([`checkpoint`]); and the driver over
//! token sequences of a language model ([`lm::Lm`], [`lm::Scorer`]) that the CLI runs for
//! `shammie influence` and the study `influence/queries`.

pub mod checkpoint;
pub mod data;
pub mod ekfac;
pub mod io;
pub mod lm;
pub mod net;

use std::path::Path;

use rand::SeedableRng;

use crate::data::Table;
use crate::ekfac::{Batch, Damping, LayerFactors, Pass};
use crate::net::Net;

#[derive(Debug, thiserror::Error)]
pub enum InfluenceError {
    #[error("{path}: {why}")]
    File { path: String, why: String },
    #[error("{path}:{line}: {why}")]
    Line {
        path: String,
        line: u64,
        why: String,
    },
    #[error("{0}")]
    Data(String),
    #[error("{0}")]
    Shape(String),
    #[error("{0}")]
    Numeric(String),
}

impl InfluenceError {
    pub(crate) fn io(path: &Path, e: std::io::Error) -> Self {
        InfluenceError::File {
            path: path.display().to_string(),
            why: e.to_string(),
        }
    }
}

/// Which Fisher the factors estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fisher {
    /// Labels sampled from the model (the true Fisher, the paper's choice; for MSE the
    /// Gauss–Newton matrix in expectation).
    Sampled,
    /// The data's labels.
    Empirical,
}

impl Fisher {
    pub fn parse(s: &str) -> Result<Fisher, String> {
        match s {
            "sampled" => Ok(Fisher::Sampled),
            "empirical" => Ok(Fisher::Empirical),
            o => Err(format!("fisher `{o}`: sampled or empirical")),
        }
    }
}

/// Examples per batch when fitting and scoring networks.
pub const BATCH: usize = 256;

fn batches(n: usize) -> usize {
    n.div_ceil(BATCH)
}

/// Fits EK-FAC factors of every linear layer of `net` on `train`. With sampled labels the
/// draws come from ChaCha8 seeded with `seed` (stream 0 for the covariance pass, 1 for the
/// eigenvalue correction).
pub fn fit_network(
    net: &Net,
    train: &Table,
    fisher: Fisher,
    seed: u64,
) -> Result<Vec<LayerFactors>, InfluenceError> {
    let mut rngs = [0u64, 1].map(|s| {
        let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        r.set_stream(s);
        r
    });
    ekfac::fit(&net.specs(), batches(train.rows()), |i, pass| {
        let start = i * BATCH;
        let part = train.slice(start, BATCH.min(train.rows() - start));
        let y = match fisher {
            Fisher::Empirical => part.y.clone(),
            Fisher::Sampled => {
                let r = &mut rngs[usize::from(pass == Pass::Lambda)];
                net.sample_targets(&part.x, r)
            }
        };
        Ok(net.records(&part.x, &y))
    })
}

/// Pairwise scores (queries × training examples) of `net` with `factors`: every gradient
/// with the data's labels (the query's measurement is its loss).
pub fn score_network(
    net: &Net,
    factors: &[LayerFactors],
    damping: Damping,
    train: &Table,
    queries: &Table,
) -> Result<faer::Mat<f64>, InfluenceError> {
    let q: Batch = net.records(&queries.x, &queries.y);
    ekfac::pairwise(factors, damping, &q, batches(train.rows()), |i| {
        let start = i * BATCH;
        let part = train.slice(start, BATCH.min(train.rows() - start));
        Ok(net.records(&part.x, &part.y))
    })
}
