//! Shammie's statistics: the numbers that go into an evaluation report.
//!
//! What this crate **is**: a small set of pure functions — confidence
//! intervals for proportions (Wilson, Newcombe), the Student-t interval for a
//! mean, percentile bootstrap, a pooled proportion with cluster-robust
//! standard errors, ordinary least squares with classical and cluster-robust
//! (CR1) standard errors, AUROC, and a linear mixed-effects model
//! ([`mixed_lm`]: grouped random effects with an unstructured covariance,
//! REML or ML, as statsmodels `MixedLM`), and a logistic mixed model for
//! binomial counts ([`glmm_binomial`]: Laplace approximation, as lme4's
//! `glmer`, optionally with an observation-level random effect) — plus the distribution functions
//! and small dense linear algebra they need (normal CDF/quantile, Student-t
//! CDF/quantile, QR, Cholesky), all written by hand; and TF-IDF document similarity
//! ([`tfidf`], scikit-learn's smoothed idf, checked against a hand-computed example).
//!
//! What it **is not**: there is no I/O, no async, no global state, no logging
//! and no external numerics (no BLAS/LAPACK, no linear-algebra crate). Every
//! function takes slices and returns a value or a [`StatsError`]; the only
//! randomness is the bootstrap, which is driven by an explicit seed.
//!
//! Every formula is checked against reference values produced by statsmodels
//! and scipy (see `tests/reference/make_reference.py`, whose output
//! `tests/reference/reference.json` is checked in, and `tests/it/reference.rs`,
//! which compares to 1e-9). The mixed model has its own generator and
//! fixtures (`tests/reference/make_mixed_reference.py`,
//! `mixed_reference.json`, `tests/it/mixed_reference.rs`: fixed effects and
//! their standard errors to 1e-7). Where statsmodels makes a choice
//! (small-sample factors, normal vs t critical values, which Hessian the
//! mixed model's standard errors come from) the doc comment of the function
//! says which statsmodels call it reproduces.

mod auroc;
mod bootstrap;
mod dist;
mod glmm;
mod linalg;
mod mean;
mod mixed;
mod proportion;
mod regression;
pub mod tfidf;

use serde::{Deserialize, Serialize};

pub use auroc::auroc;
pub use bootstrap::{bootstrap_mean, bootstrap_percentile, percentile_linear};
pub use dist::{normal_cdf, normal_pdf, normal_quantile, student_t_cdf, student_t_quantile, z_for};
pub use glmm::{glmm_binomial, BinomialGlmmFit};
pub use mean::mean_ci_t;
pub use mixed::{mixed_lm, MixedLmFit, MixedMethod};
pub use proportion::{clustered_ratio, newcombe_diff, wilson};
pub use regression::{ols, ols_clustered, ols_clustered_with, ClusterInference, OlsFit};

/// Everything that can go wrong. Each function documents which variants it
/// can return.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    /// An input slice was empty (or had no usable observations).
    #[error("empty input")]
    EmptyInput,
    /// Two inputs that must be parallel have different lengths.
    #[error("mismatched lengths: {what} has length {got}, expected {expected}")]
    MismatchedLengths {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// Too few observations for the requested quantity (e.g. a t interval
    /// from one value, or OLS with no residual degrees of freedom).
    #[error("not enough data: need at least {needed}, got {got}")]
    InsufficientData { needed: usize, got: usize },
    /// Cluster-robust variance needs at least two clusters.
    #[error("need at least 2 clusters, got {0}")]
    TooFewClusters(usize),
    /// A (normal-equation / design) matrix is singular or numerically
    /// rank-deficient.
    #[error("singular matrix (design is rank-deficient)")]
    SingularMatrix,
    /// Confidence level must be a finite number strictly between 0 and 1.
    #[error("invalid confidence level {0}: must be strictly between 0 and 1")]
    InvalidConfidence(f64),
    /// A probability argument was outside (0, 1) or a parameter was invalid.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// An input (or a bootstrap statistic) was NaN or infinite.
    #[error("non-finite value in {0}")]
    NonFinite(&'static str),
}

/// A point estimate with a confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub estimate: f64,
    pub lo: f64,
    pub hi: f64,
}

/// A point estimate with its standard error and a confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub estimate: f64,
    pub se: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Estimate {
    /// The estimate and its interval, without the standard error.
    pub fn interval(&self) -> Interval {
        Interval {
            estimate: self.estimate,
            lo: self.lo,
            hi: self.hi,
        }
    }
}

/// Validates a confidence level and returns the two-sided tail mass
/// `alpha / 2 = (1 - confidence) / 2`.
pub(crate) fn half_alpha(confidence: f64) -> Result<f64, StatsError> {
    if !(confidence.is_finite() && confidence > 0.0 && confidence < 1.0) {
        return Err(StatsError::InvalidConfidence(confidence));
    }
    Ok((1.0 - confidence) / 2.0)
}

pub(crate) fn check_finite(values: &[f64], what: &'static str) -> Result<(), StatsError> {
    if values.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(StatsError::NonFinite(what))
    }
}

pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<(), StatsError> {
    if expected == got {
        Ok(())
    } else {
        Err(StatsError::MismatchedLengths {
            what,
            expected,
            got,
        })
    }
}
