//! Linear mixed-effects model with grouped random effects and an unstructured
//! random-effects covariance, fitted by REML or ML — the model of
//! `statsmodels.regression.mixed_linear_model.MixedLM`.
//!
//! Model, for group `g` with `n_g` rows:
//! `y_g = X_g β + Z_g b_g + ε_g`, `b_g ~ N(0, Ψ)` (q×q, unstructured),
//! `ε_g ~ N(0, σ² I)`, independent across groups. Write `Ψ = σ² Ψ*` and
//! `V_g = I + Z_g Ψ* Z_g'` (the marginal covariance of `y_g` divided by σ²).
//!
//! How it is computed:
//! * The per-group sufficient statistics `Z'Z`, `Z'X`, `Z'e` and the totals
//!   `X'X`, `X'e`, `e'e` are formed once (`e` is the OLS residual, which
//!   leaves the likelihood unchanged and avoids cancellation); every later
//!   step costs `O(G·(q³ + q²p + qp²))`, independent of the number of rows.
//! * `Ψ* = L L'` with `L` lower triangular (its `q(q+1)/2` entries are the
//!   optimisation variables). With `C C' = I + L'Z_g'Z_g L` (Cholesky),
//!   `log|V_g| = 2 Σ log C_ii` and `a'V_g⁻¹b = a'b − (C⁻¹L'Z'a)'(C⁻¹L'Z'b)`
//!   (Woodbury and the determinant lemma in the form that stays valid when
//!   `Ψ*` is singular, so the boundary needs no special case).
//! * β (generalised least squares) and σ² are profiled out; the profiled
//!   log-likelihood is maximised over `L` by BFGS with the analytic gradient
//!   and a strong-Wolfe line search, from `Ψ* = I` (statsmodels' start),
//!   then polished by a few Newton steps (Hessian from differences of the
//!   analytic gradient, steps judged by the gradient, not by `f`, whose
//!   changes near the optimum drown in rounding). The result sits where the
//!   largest gradient entry is ~1e-10·|llf|, so it does not depend on where
//!   a line search happened to stall.
//! * Standard errors follow statsmodels' `MixedLM.hessian` formulas (see
//!   [`mixed_lm`]), evaluated from the same per-group `q×q`, `q×p` blocks.

// Small dense matrix code indexes several matrices in lockstep; index loops
// are the clearest way to write it.
#![allow(clippy::needless_range_loop)]

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::dist::{normal_cdf, z_for};
use crate::linalg::{
    cholesky, cholesky_inverse, cholesky_solve, invert, least_squares, solve_lower, Mat,
};
use crate::{check_finite, check_len, half_alpha, Interval, StatsError};

/// Which likelihood [`mixed_lm`] maximises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MixedMethod {
    /// Restricted maximum likelihood (statsmodels' default, `reml=True`).
    Reml,
    /// Full maximum likelihood (`reml=False`).
    Ml,
}

/// Result of [`mixed_lm`].
///
/// Vectors indexed by fixed effect follow the columns of `x`; `cov_re`
/// follows the columns of `z`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixedLmFit {
    pub method: MixedMethod,
    /// Fixed effects β (GLS at the fitted covariance; statsmodels `fe_params`).
    pub coef: Vec<f64>,
    /// Standard errors of β as statsmodels reports them (`bse_fe`): from the
    /// inverse of the full observed Hessian, cross terms with the covariance
    /// parameters included (see [`mixed_lm`]). When that Hessian cannot be
    /// inverted, these are [`MixedLmFit::se_gls`] and `se_from_hessian` is
    /// false.
    pub se: Vec<f64>,
    /// `√diag(σ² (X'V⁻¹X)⁻¹)`: the conditional (GLS) standard errors that
    /// lme4 and SAS PROC MIXED report. Never larger than `se` when the
    /// Hessian is negative definite; equal to it when the cross terms vanish
    /// (e.g. balanced designs with `z` ⊂ `x`).
    pub se_gls: Vec<f64>,
    /// Whether `se` came from the full Hessian (statsmodels' `bse_fe`).
    pub se_from_hessian: bool,
    /// `coef / se` (statsmodels `tvalues`, which are normal z statistics).
    pub z_values: Vec<f64>,
    /// Two-sided normal p-values (statsmodels `pvalues`).
    pub p_values: Vec<f64>,
    /// Wald intervals `coef ± z_{1-α/2} se` (statsmodels `conf_int`).
    pub intervals: Vec<Interval>,
    /// The confidence level of `intervals`.
    pub confidence: f64,
    /// Random-effects covariance Ψ (q×q; statsmodels `cov_re`).
    pub cov_re: Vec<Vec<f64>>,
    /// Residual variance σ² (statsmodels `scale`).
    pub scale: f64,
    /// Log-likelihood at the optimum with statsmodels' convention (`llf`):
    /// the full Gaussian log-likelihood for ML; for REML the restricted one
    /// **without** the `+½ log|X'X|` term that some programs add.
    pub log_likelihood: f64,
    /// The optimiser ended with `max |gradient| <= 1e-7 · max(1, |llf|)`
    /// (gradient with respect to the Cholesky entries of `Ψ/σ²`).
    pub converged: bool,
    /// BFGS iterations (the few Newton polishing steps are not counted).
    pub iterations: usize,
    /// Largest absolute entry of the gradient of the negative profiled
    /// log-likelihood with respect to the Cholesky entries at the end.
    pub gradient_max: f64,
    pub n_obs: usize,
    pub n_groups: usize,
}

/// Fits a linear mixed model by REML or ML.
///
/// * `y`: response (N); `x`: fixed-effects design as N rows of p columns
///   (include a column of ones for an intercept); `z`: random-effects design
///   as N rows of q columns (e.g. a column of ones for a random intercept);
///   `groups`: the group of each row (any labels; rows need not be sorted and
///   groups may be unbalanced; single-row groups are allowed, as in
///   statsmodels and lme4).
/// * The random-effects covariance Ψ is unstructured (all `q(q+1)/2`
///   entries free) and may end up singular (on the boundary).
///
/// Reproduces `statsmodels.api.MixedLM(y, x, groups, exog_re=z)
/// .fit(reml=…)`: `fe_params`, `bse_fe`, `cov_re`, `scale`, `llf`,
/// `tvalues`, `pvalues` and `conf_int(alpha=1-confidence)` for the fixed
/// effects.
///
/// **Standard errors.** statsmodels' `bse_fe` is *not*
/// `√diag(σ²(X'V⁻¹X)⁻¹)`: `MixedLM.fit` inverts the full analytic Hessian
/// (`MixedLM.hessian`) of the σ²-profiled log-likelihood with respect to
/// `(β, lower triangle of Ψ/σ²)` — fixed-effect/covariance cross terms
/// included, observed rather than expected information — and takes the
/// square roots of the first `p` diagonal entries of `inv(-H)`. For REML the
/// β block and the cross terms are those of the profiled likelihood with
/// `N - p` in place of `N`, and the covariance block carries the REML
/// corrections; this function evaluates exactly those formulas. The
/// conditional (GLS) standard errors are in [`MixedLmFit::se_gls`].
///
/// Errors: empty input or zero columns ([`StatsError::EmptyInput`]),
/// mismatched lengths or ragged rows, non-finite values, fewer than two
/// groups ([`StatsError::TooFewClusters`]), `N <= p` or `N <= G·q` (the
/// residual variance would not be identified, as lme4 checks;
/// [`StatsError::InsufficientData`]), a rank-deficient `x` or `z`
/// ([`StatsError::SingularMatrix`]), a response fitted exactly by `x`
/// ([`StatsError::InvalidArgument`]), bad confidence. Failure to converge is
/// not an error: see [`MixedLmFit::converged`].
pub fn mixed_lm(
    y: &[f64],
    x: &[Vec<f64>],
    z: &[Vec<f64>],
    groups: &[usize],
    method: MixedMethod,
    confidence: f64,
) -> Result<MixedLmFit, StatsError> {
    half_alpha(confidence)?;
    let data = validate(y, x, z, groups)?;
    let (p, q) = (data.p, data.q);

    // OLS gives the rank check of X and the residuals the statistics use.
    let ols = least_squares(x, y)?;
    let e: Vec<f64> = x
        .iter()
        .zip(y)
        .map(|(row, yi)| yi - dot(row, &ols.coef))
        .collect();
    let rss = dot(&e, &e);
    let yty = dot(y, y);
    if rss <= 1e-24 * yty || rss == 0.0 {
        return Err(StatsError::InvalidArgument(
            "the fixed effects fit y exactly; the residual variance is zero".into(),
        ));
    }
    // Rank check of Z (the coefficients are not used).
    least_squares(z, y)?;

    let suff = Suff::new(x, z, &e, &data);
    let theta0 = pack(&identity(q));
    let mut fg = |t: &[f64]| objective(&suff, method, t);
    let first = bfgs(&mut fg, theta0);
    let opt = newton_polish(&mut fg, first);

    let l = unpack(&opt.x, q);
    let prof = profile(&suff, &l, method).ok_or(StatsError::SingularMatrix)?;
    let terms = group_terms(&suff, &prof);
    let coef: Vec<f64> = ols
        .coef
        .iter()
        .zip(&prof.delta)
        .map(|(b, d)| b + d)
        .collect();
    let fac = suff.fac(method);
    let scale = prof.qf / fac;
    let psi = lower_times_transpose(&l);
    let cov_re: Mat = psi
        .iter()
        .map(|r| r.iter().map(|v| v * scale).collect())
        .collect();

    let xvx_inv = cholesky_inverse(&prof.xvx_chol);
    let se_gls: Vec<f64> = (0..p).map(|k| (scale * xvx_inv[k][k]).sqrt()).collect();
    let hess = statsmodels_hessian(&suff, method, &prof, &terms, &xvx_inv);
    let neg: Mat = hess
        .iter()
        .map(|r| r.iter().map(|v| -v).collect())
        .collect();
    let se_full = invert(&neg).ok().and_then(|cov| {
        let se: Vec<f64> = (0..p).map(|k| cov[k][k].sqrt()).collect();
        se.iter().all(|s| s.is_finite()).then_some(se)
    });
    let se_from_hessian = se_full.is_some();
    let se = se_full.unwrap_or_else(|| se_gls.clone());

    let z_values: Vec<f64> = coef.iter().zip(&se).map(|(b, s)| b / s).collect();
    let p_values = z_values
        .iter()
        .map(|t| 2.0 * normal_cdf(-t.abs()))
        .collect();
    let intervals = wald_intervals(&coef, &se, confidence);
    Ok(MixedLmFit {
        method,
        coef,
        se,
        se_gls,
        se_from_hessian,
        z_values,
        p_values,
        intervals,
        confidence,
        cov_re,
        scale,
        log_likelihood: -prof.f,
        converged: opt.converged,
        iterations: opt.iterations,
        gradient_max: max_abs(&opt.g),
        n_obs: suff.n,
        n_groups: suff.groups.len(),
    })
}

// ---------------------------------------------------------------------------
// Input validation and sufficient statistics
// ---------------------------------------------------------------------------

pub(crate) struct Data {
    pub(crate) p: usize,
    pub(crate) q: usize,
    /// Dense group index of each row.
    pub(crate) index: Vec<usize>,
    pub(crate) n_groups: usize,
}

fn validate(
    y: &[f64],
    x: &[Vec<f64>],
    z: &[Vec<f64>],
    groups: &[usize],
) -> Result<Data, StatsError> {
    if groups.is_empty() {
        return Err(StatsError::EmptyInput);
    }
    let d = check_design(y.len(), x, z, groups)?;
    check_finite(y, "y")?;
    let n = y.len();
    if n <= d.n_groups * d.q {
        return Err(StatsError::InsufficientData {
            needed: d.n_groups * d.q + 1,
            got: n,
        });
    }
    Ok(d)
}

/// Wald intervals `b ± z·se` at `confidence` (normal quantile), one per coefficient.
pub(crate) fn wald_intervals(coef: &[f64], se: &[f64], confidence: f64) -> Vec<Interval> {
    let crit = z_for(confidence);
    coef.iter()
        .zip(se)
        .map(|(b, s)| Interval {
            estimate: *b,
            lo: b - crit * s,
            hi: b + crit * s,
        })
        .collect()
}

/// Checks the design of a mixed model with `n` observations (shared by the linear and
/// the binomial model): `x` (n × p) and `z` (n × q) non-empty, rectangular and finite,
/// one group per row, at least two groups and more rows than fixed effects. Gives the
/// widths and the dense group index of each row.
pub(crate) fn check_design(
    n: usize,
    x: &[Vec<f64>],
    z: &[Vec<f64>],
    groups: &[usize],
) -> Result<Data, StatsError> {
    if n == 0 || x.is_empty() || z.is_empty() {
        return Err(StatsError::EmptyInput);
    }
    check_len("x", n, x.len())?;
    check_len("z", n, z.len())?;
    check_len("groups", n, groups.len())?;
    let (p, q) = (x[0].len(), z[0].len());
    if p == 0 || q == 0 {
        return Err(StatsError::EmptyInput);
    }
    for row in x {
        check_len("x row", p, row.len())?;
        check_finite(row, "x")?;
    }
    for row in z {
        check_len("z row", q, row.len())?;
        check_finite(row, "z")?;
    }
    let mut map: HashMap<usize, usize> = HashMap::new();
    let index: Vec<usize> = groups
        .iter()
        .map(|g| {
            let next = map.len();
            *map.entry(*g).or_insert(next)
        })
        .collect();
    let n_groups = map.len();
    if n_groups < 2 {
        return Err(StatsError::TooFewClusters(n_groups));
    }
    if n <= p {
        return Err(StatsError::InsufficientData {
            needed: p + 1,
            got: n,
        });
    }
    Ok(Data {
        p,
        q,
        index,
        n_groups,
    })
}

struct GroupSuff {
    /// `Z'Z` (q×q).
    ztz: Mat,
    /// `X'Z` (p×q): row `k` is `Z' x_k`.
    xtz: Mat,
    /// `Z'e` (q).
    zte: Vec<f64>,
}

struct Suff {
    n: usize,
    p: usize,
    q: usize,
    xtx: Mat,
    xte: Vec<f64>,
    ete: f64,
    groups: Vec<GroupSuff>,
}

impl Suff {
    fn new(x: &[Vec<f64>], z: &[Vec<f64>], e: &[f64], d: &Data) -> Suff {
        let (p, q) = (d.p, d.q);
        let mut groups: Vec<GroupSuff> = (0..d.n_groups)
            .map(|_| GroupSuff {
                ztz: vec![vec![0.0; q]; q],
                xtz: vec![vec![0.0; q]; p],
                zte: vec![0.0; q],
            })
            .collect();
        let mut xtx = vec![vec![0.0; p]; p];
        let mut xte = vec![0.0; p];
        for (((xr, zr), ei), &g) in x.iter().zip(z).zip(e).zip(&d.index) {
            let gs = &mut groups[g];
            for i in 0..q {
                for j in 0..=i {
                    gs.ztz[i][j] += zr[i] * zr[j];
                }
                gs.zte[i] += zr[i] * ei;
            }
            for k in 0..p {
                for i in 0..q {
                    gs.xtz[k][i] += xr[k] * zr[i];
                }
                for j in 0..=k {
                    xtx[k][j] += xr[k] * xr[j];
                }
                xte[k] += xr[k] * ei;
            }
        }
        for gs in &mut groups {
            symmetrise_lower(&mut gs.ztz);
        }
        symmetrise_lower(&mut xtx);
        Suff {
            n: e.len(),
            p,
            q,
            xtx,
            xte,
            ete: dot(e, e),
            groups,
        }
    }

    /// `N` for ML, `N - p` for REML.
    fn fac(&self, method: MixedMethod) -> f64 {
        match method {
            MixedMethod::Ml => self.n as f64,
            MixedMethod::Reml => (self.n - self.p) as f64,
        }
    }
}

// ---------------------------------------------------------------------------
// Profiled likelihood, gradient, Hessian
// ---------------------------------------------------------------------------

struct GroupCache {
    /// Cholesky factor of `I + L'Z'ZL`.
    c: Mat,
    /// `Z'Z L` (q×q).
    zl: Mat,
    /// Row `k`: `C⁻¹ L'Z'x_k` (p×q).
    sxt: Mat,
    /// `C⁻¹ L'Z'e` (q).
    se: Vec<f64>,
}

struct Profile {
    /// Negative log-likelihood (statsmodels' `-llf`) at this `L`.
    f: f64,
    /// GLS β minus the OLS β.
    delta: Vec<f64>,
    /// `Σ_g r_g' V_g⁻¹ r_g` at the GLS β.
    qf: f64,
    /// Cholesky factor of `X'V⁻¹X`.
    xvx_chol: Mat,
    caches: Vec<GroupCache>,
}

/// Evaluates the profiled likelihood at `Ψ* = L L'`. `None` when `X'V⁻¹X`
/// is not positive definite or the quadratic form is not positive.
fn profile(s: &Suff, l: &Mat, method: MixedMethod) -> Option<Profile> {
    let (p, q) = (s.p, s.q);
    let mut xvx = s.xtx.clone();
    let mut xve = s.xte.clone();
    let mut eve = s.ete;
    let mut logdet_v = 0.0;
    let mut caches = Vec::with_capacity(s.groups.len());
    for g in &s.groups {
        let zl = mat_mul(&g.ztz, l);
        // M = I + L' (Z'Z L), lower triangle.
        let mut m = vec![vec![0.0; q]; q];
        for i in 0..q {
            for j in 0..=i {
                let t: f64 = (i..q).map(|k| l[k][i] * zl[k][j]).sum();
                m[i][j] = t + if i == j { 1.0 } else { 0.0 };
            }
        }
        let c = cholesky(&m)?;
        logdet_v += 2.0 * c.iter().enumerate().map(|(i, r)| r[i].ln()).sum::<f64>();
        let sxt: Mat = g
            .xtz
            .iter()
            .map(|v| {
                let mut w = lt_times(l, v);
                solve_lower(&c, &mut w);
                w
            })
            .collect();
        let mut se = lt_times(l, &g.zte);
        solve_lower(&c, &mut se);
        for k1 in 0..p {
            for k2 in 0..=k1 {
                xvx[k1][k2] -= dot(&sxt[k1], &sxt[k2]);
            }
            xve[k1] -= dot(&sxt[k1], &se);
        }
        eve -= dot(&se, &se);
        caches.push(GroupCache { c, zl, sxt, se });
    }
    symmetrise_lower(&mut xvx);
    let xvx_chol = cholesky(&xvx)?;
    let delta = cholesky_solve(&xvx_chol, &xve);
    let qf = eve - dot(&delta, &xve);
    if !(qf > 0.0 && qf.is_finite()) {
        return None;
    }
    let fac = s.fac(method);
    let two_pi = 2.0 * std::f64::consts::PI;
    let mut ll = -0.5 * logdet_v - 0.5 * fac * qf.ln() - 0.5 * fac * two_pi.ln()
        + 0.5 * fac * fac.ln()
        - 0.5 * fac;
    if method == MixedMethod::Reml {
        let logdet_xvx: f64 = 2.0
            * xvx_chol
                .iter()
                .enumerate()
                .map(|(i, r)| r[i].ln())
                .sum::<f64>();
        ll -= 0.5 * logdet_xvx;
    }
    if !ll.is_finite() {
        return None;
    }
    Some(Profile {
        f: -ll,
        delta,
        qf,
        xvx_chol,
        caches,
    })
}

/// Per-group quantities at the GLS β for the gradient and the Hessian.
struct Terms {
    /// `W = Z'V⁻¹Z` (q×q).
    w: Mat,
    /// `u = Z'V⁻¹r` (q).
    u: Vec<f64>,
    /// `A = Z'V⁻¹X` (q×p).
    a: Mat,
    /// `A (X'V⁻¹X)⁻¹ A'` (q×q).
    qm: Mat,
}

fn group_terms(s: &Suff, prof: &Profile) -> Vec<Terms> {
    let (p, q) = (s.p, s.q);
    s.groups
        .iter()
        .zip(&prof.caches)
        .map(|(g, cache)| {
            // Row j of K' where K = C⁻¹ L'Z'Z: C⁻¹ (Z'Z L)[j].
            let kt: Mat = cache
                .zl
                .iter()
                .map(|r| {
                    let mut v = r.clone();
                    solve_lower(&cache.c, &mut v);
                    v
                })
                .collect();
            let mut w = vec![vec![0.0; q]; q];
            for i in 0..q {
                for j in 0..=i {
                    w[i][j] = g.ztz[i][j] - dot(&kt[i], &kt[j]);
                }
            }
            symmetrise_lower(&mut w);
            let a: Mat = (0..q)
                .map(|i| {
                    (0..p)
                        .map(|k| g.xtz[k][i] - dot(&kt[i], &cache.sxt[k]))
                        .collect()
                })
                .collect();
            let u: Vec<f64> = (0..q)
                .map(|i| g.zte[i] - dot(&kt[i], &cache.se) - dot(&a[i], &prof.delta))
                .collect();
            // B = A R⁻ᵀ with R R' = X'V⁻¹X, so that A (X'V⁻¹X)⁻¹ A' = B B'.
            let b: Mat = a
                .iter()
                .map(|r| {
                    let mut v = r.clone();
                    solve_lower(&prof.xvx_chol, &mut v);
                    v
                })
                .collect();
            let mut qm = vec![vec![0.0; q]; q];
            for i in 0..q {
                for j in 0..=i {
                    qm[i][j] = dot(&b[i], &b[j]);
                }
            }
            symmetrise_lower(&mut qm);
            Terms { w, u, a, qm }
        })
        .collect()
}

/// Gradient of the negative profiled log-likelihood with respect to the
/// packed lower triangle of `L`.
///
/// With `dℓ = tr(G dΨ*)`,
/// `G = -½ Σ W_g + fac/(2 qf) Σ u_g u_g' [+ ½ Σ A_g (X'V⁻¹X)⁻¹ A_g' for REML]`
/// (β at its GLS value, so its own derivative drops out), and
/// `∂ℓ/∂L = 2 G L`.
fn gradient(s: &Suff, method: MixedMethod, l: &Mat, prof: &Profile, terms: &[Terms]) -> Vec<f64> {
    let q = s.q;
    let c = s.fac(method) / (2.0 * prof.qf);
    let mut g = vec![vec![0.0; q]; q];
    for t in terms {
        for i in 0..q {
            for j in 0..q {
                let mut v = -0.5 * t.w[i][j] + c * t.u[i] * t.u[j];
                if method == MixedMethod::Reml {
                    v += 0.5 * t.qm[i][j];
                }
                g[i][j] += v;
            }
        }
    }
    let gl = mat_mul(&g, l);
    let mut out = Vec::with_capacity(q * (q + 1) / 2);
    for (a, row) in gl.iter().enumerate() {
        for v in &row[..=a] {
            out.push(-2.0 * v);
        }
    }
    out
}

fn objective(s: &Suff, method: MixedMethod, theta: &[f64]) -> Option<(f64, Vec<f64>)> {
    let l = unpack(theta, s.q);
    let prof = profile(s, &l, method)?;
    let terms = group_terms(s, &prof);
    let g = gradient(s, method, &l, &prof, &terms);
    g.iter().all(|v| v.is_finite()).then_some((prof.f, g))
}

/// The covariance parameters' index pairs in statsmodels' order (lower
/// triangle by rows) and, for each, the nonzero positions of `dΨ*/dθ_j`.
fn derivative_patterns(q: usize) -> Vec<Vec<(usize, usize)>> {
    let mut out = Vec::new();
    for a in 0..q {
        for b in 0..=a {
            out.push(if a == b {
                vec![(a, a)]
            } else {
                vec![(a, b), (b, a)]
            });
        }
    }
    out
}

/// `MixedLM.hessian` of statsmodels 0.15 (no variance components), in terms
/// of the per-group `W`, `u`, `A`: the Hessian of the σ²-profiled
/// log-likelihood with respect to `(β, lower triangle of Ψ*)`, evaluated at
/// the GLS β. With `D_j = dΨ*/dθ_j`, `fac = N` (ML) or `N - p` (REML) and
/// `qf = Σ r'V⁻¹r`:
/// * ββ: `-fac X'V⁻¹X / qf`;
/// * θβ: `-fac/qf Σ_g A'D_j u`;
/// * θθ: `½ Σ tr(D_i W D_j W) - ½ fac (Σ 2u'D_i W D_j u / qf
///   - b_i b_j / qf²)`, `b_j = Σ u'D_j u`, plus for REML
///   `½ [tr(P T_i P T_j) - 2 Σ tr(P A'D_i W D_j A)]` with `P = (X'V⁻¹X)⁻¹`,
///   `T_j = Σ A'D_j A`.
fn statsmodels_hessian(
    s: &Suff,
    method: MixedMethod,
    prof: &Profile,
    terms: &[Terms],
    xvx_inv: &Mat,
) -> Mat {
    let (p, q) = (s.p, s.q);
    let pats = derivative_patterns(q);
    let m = pats.len();
    let fac = s.fac(method);
    let qf = prof.qf;
    let reml = method == MixedMethod::Reml;

    let mut h = vec![vec![0.0; p + m]; p + m];
    // ββ block.
    let mut xvx = vec![vec![0.0; p]; p];
    for i in 0..p {
        for j in 0..p {
            xvx[i][j] = (0..=i.min(j))
                .map(|k| prof.xvx_chol[i][k] * prof.xvx_chol[j][k])
                .sum();
            h[i][j] = -fac * xvx[i][j] / qf;
        }
    }

    let mut fere = vec![vec![0.0; p]; m];
    let mut bvec = vec![0.0; m];
    let mut dmat = vec![vec![0.0; m]; m];
    let mut re = vec![vec![0.0; m]; m];
    let mut trf = vec![vec![0.0; m]; m];
    let mut xtax = vec![vec![vec![0.0; p]; p]; if reml { m } else { 0 }];
    for t in terms {
        for (j, pj) in pats.iter().enumerate() {
            for &(a, b) in pj {
                for k in 0..p {
                    fere[j][k] += t.a[a][k] * t.u[b];
                }
                bvec[j] += t.u[a] * t.u[b];
                if reml {
                    for k1 in 0..p {
                        for k2 in 0..p {
                            xtax[j][k1][k2] += t.a[a][k1] * t.a[b][k2];
                        }
                    }
                }
            }
            for (j2, p2) in pats.iter().enumerate().take(j + 1) {
                let (mut dv, mut rt, mut tf) = (0.0, 0.0, 0.0);
                for &(c, d) in p2 {
                    for &(a, b) in pj {
                        dv += t.u[c] * t.w[d][a] * t.u[b];
                        rt += t.w[d][a] * t.w[b][c];
                        tf += t.w[d][a] * t.qm[b][c];
                    }
                }
                dmat[j][j2] += 2.0 * dv;
                re[j][j2] += 0.5 * rt;
                trf[j][j2] += 2.0 * tf;
            }
        }
    }
    let ql: Vec<Mat> = xtax.iter().map(|t| mat_mul(xvx_inv, t)).collect();
    for j in 0..m {
        for k in 0..p {
            let v = -fac * fere[j][k] / qf;
            h[p + j][k] = v;
            h[k][p + j] = v;
        }
        for j2 in 0..=j {
            let mut v = re[j][j2] - 0.5 * fac * (dmat[j][j2] / qf - bvec[j] * bvec[j2] / (qf * qf));
            if reml {
                let tr: f64 = (0..p)
                    .map(|a| (0..p).map(|b| ql[j][a][b] * ql[j2][b][a]).sum::<f64>())
                    .sum();
                v += 0.5 * (tr - trf[j][j2]);
            }
            h[p + j][p + j2] = v;
            h[p + j2][p + j] = v;
        }
    }
    h
}

// ---------------------------------------------------------------------------
// BFGS with a strong-Wolfe line search
// ---------------------------------------------------------------------------

pub(crate) struct Minimum {
    pub(crate) x: Vec<f64>,
    f: f64,
    pub(crate) g: Vec<f64>,
    pub(crate) iterations: usize,
    pub(crate) converged: bool,
}

const MAX_ITER: usize = 5000;
/// The polished optimum: `max |∂f/∂θ| <= GTOL · max(1, |f|)`.
const GTOL: f64 = 1e-10;
/// BFGS hands over to [`newton_polish`] once `max |∂f/∂θ|` is below
/// `GTOL_FLOOR · max(1, |f|)` (or when its line search fails there: the
/// decrease of `f` it would need to see is then below the rounding noise of
/// `f`), and the fit counts as converged when the gradient ends below it.
const GTOL_FLOOR: f64 = 1e-7;

/// BFGS with the inverse-Hessian update, scaled initial matrix (Nocedal &
/// Wright eq. 6.20) and restarts from steepest descent when needed.
pub(crate) fn bfgs<F>(fg: &mut F, x0: Vec<f64>) -> Minimum
where
    F: FnMut(&[f64]) -> Option<(f64, Vec<f64>)>,
{
    let n = x0.len();
    let mut x = x0;
    let Some((mut f, mut g)) = fg(&x) else {
        return Minimum {
            g: vec![f64::NAN; n],
            f: f64::NAN,
            x,
            iterations: 0,
            converged: false,
        };
    };
    let mut hinv = identity(n);
    let mut fresh = true;
    let mut iterations = 0;
    let handover = |f: f64| GTOL_FLOOR * f.abs().max(1.0);
    while iterations < MAX_ITER {
        if max_abs(&g) <= handover(f) {
            return Minimum {
                x,
                f,
                g,
                iterations,
                converged: true,
            };
        }
        let mut d: Vec<f64> = hinv.iter().map(|r| -dot(r, &g)).collect();
        if dot(&d, &g) >= 0.0 {
            // Not a descent direction: restart from steepest descent.
            hinv = identity(n);
            fresh = true;
            d = g.iter().map(|v| -v).collect();
        }
        let alpha0 = if fresh {
            (1.0 / norm2(&g).max(1e-300)).min(1.0)
        } else {
            1.0
        };
        let step = line_search(fg, &x, f, &g, &d, alpha0);
        let Some((alpha, f_new, g_new)) = step else {
            if !fresh && max_abs(&g) > GTOL_FLOOR * f.abs().max(1.0) {
                hinv = identity(n);
                fresh = true;
                continue;
            }
            let converged = max_abs(&g) <= GTOL_FLOOR * f.abs().max(1.0);
            return Minimum {
                x,
                f,
                g,
                iterations,
                converged,
            };
        };
        iterations += 1;
        let s: Vec<f64> = d.iter().map(|v| alpha * v).collect();
        let yv: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &yv);
        for (xi, si) in x.iter_mut().zip(&s) {
            *xi += si;
        }
        f = f_new;
        g = g_new;
        if sy > 1e-12 * norm2(&s) * norm2(&yv) {
            if fresh {
                let scale = sy / dot(&yv, &yv);
                hinv = identity(n)
                    .into_iter()
                    .map(|r| r.into_iter().map(|v| v * scale).collect())
                    .collect();
                fresh = false;
            }
            bfgs_update(&mut hinv, &s, &yv, sy);
        }
    }
    Minimum {
        x,
        f,
        g,
        iterations,
        converged: false,
    }
}

/// Up to a few Newton steps with the Hessian from forward differences of the
/// analytic gradient, each accepted only if it reduces the largest gradient
/// entry and does not raise `f` beyond rounding. Near the optimum the
/// decrease of `f` that a line search must detect falls below the rounding
/// noise of `f` long before the gradient does; judging steps by the gradient
/// instead takes the optimum to (close to) the precision of the gradient, so
/// that the result does not depend on where BFGS happened to stall.
/// Singular or indefinite Hessians (a boundary optimum) get a ridge.
fn newton_polish<F>(fg: &mut F, start: Minimum) -> Minimum
where
    F: FnMut(&[f64]) -> Option<(f64, Vec<f64>)>,
{
    let Minimum {
        mut x,
        mut f,
        mut g,
        iterations,
        ..
    } = start;
    if !f.is_finite() {
        return Minimum {
            x,
            f,
            g,
            iterations,
            converged: false,
        };
    }
    let n = x.len();
    let tol = |f: f64| GTOL * f.abs().max(1.0);
    let floor = |f: f64| GTOL_FLOOR * f.abs().max(1.0);
    for _ in 0..8 {
        if max_abs(&g) <= tol(f) {
            break;
        }
        let mut h = vec![vec![0.0; n]; n];
        let mut ok = true;
        for i in 0..n {
            let step = 1e-6 * x[i].abs().max(1.0);
            let mut xs = x.clone();
            xs[i] += step;
            match fg(&xs) {
                Some((_, gs)) => {
                    for j in 0..n {
                        h[j][i] = (gs[j] - g[j]) / step;
                    }
                }
                None => ok = false,
            }
        }
        if !ok {
            break;
        }
        for i in 0..n {
            for j in 0..i {
                let m = 0.5 * (h[i][j] + h[j][i]);
                h[i][j] = m;
                h[j][i] = m;
            }
        }
        let diag_max = (0..n)
            .fold(0.0_f64, |m, i| m.max(h[i][i].abs()))
            .max(1e-300);
        let mut accepted = false;
        let mut ridge = 0.0;
        for _ in 0..12 {
            let mut hr = h.clone();
            for (i, row) in hr.iter_mut().enumerate() {
                row[i] += ridge;
            }
            if let Some(c) = cholesky(&hr) {
                let step = cholesky_solve(&c, &g);
                let xn: Vec<f64> = x.iter().zip(&step).map(|(a, b)| a - b).collect();
                if let Some((fnew, gnew)) = fg(&xn) {
                    if max_abs(&gnew) < max_abs(&g) && fnew <= f + 1e-12 * f.abs().max(1.0) {
                        x = xn;
                        f = fnew;
                        g = gnew;
                        accepted = true;
                        break;
                    }
                }
            }
            ridge = if ridge == 0.0 {
                1e-8 * diag_max
            } else {
                ridge * 10.0
            };
        }
        if !accepted {
            break;
        }
    }
    let converged = max_abs(&g) <= floor(f);
    Minimum {
        x,
        f,
        g,
        iterations,
        converged,
    }
}

/// `H ← (I - ρ s y') H (I - ρ y s') + ρ s s'`, `ρ = 1 / s'y`.
fn bfgs_update(h: &mut Mat, s: &[f64], y: &[f64], sy: f64) {
    let n = s.len();
    let rho = 1.0 / sy;
    let hy: Vec<f64> = h.iter().map(|r| dot(r, y)).collect();
    let yhy = dot(y, &hy);
    for i in 0..n {
        for j in 0..n {
            h[i][j] += -rho * (hy[i] * s[j] + s[i] * hy[j]) + (rho * rho * yhy + rho) * s[i] * s[j];
        }
    }
}

const C1: f64 = 1e-4;
const C2: f64 = 0.9;

struct Point {
    a: f64,
    f: f64,
    d: f64,
    g: Vec<f64>,
}

/// Strong-Wolfe line search (Nocedal & Wright, algorithms 3.5 and 3.6) with
/// safeguarded cubic interpolation. Returns `(alpha, f, g)`.
fn line_search<F>(
    fg: &mut F,
    x: &[f64],
    f0: f64,
    g0: &[f64],
    d: &[f64],
    alpha0: f64,
) -> Option<(f64, f64, Vec<f64>)>
where
    F: FnMut(&[f64]) -> Option<(f64, Vec<f64>)>,
{
    let d0 = dot(g0, d);
    let mut eval = |a: f64| -> Point {
        let xt: Vec<f64> = x.iter().zip(d).map(|(xi, di)| xi + a * di).collect();
        match fg(&xt) {
            Some((f, g)) => Point {
                a,
                f,
                d: dot(&g, d),
                g,
            },
            None => Point {
                a,
                f: f64::INFINITY,
                d: f64::NAN,
                g: Vec::new(),
            },
        }
    };
    let mut prev = Point {
        a: 0.0,
        f: f0,
        d: d0,
        g: g0.to_vec(),
    };
    let mut a = alpha0;
    for i in 0..40 {
        let cur = eval(a);
        if !cur.f.is_finite() || cur.f > f0 + C1 * a * d0 || (i > 0 && cur.f >= prev.f) {
            return zoom(&mut eval, f0, d0, prev, cur);
        }
        if cur.d.abs() <= -C2 * d0 {
            return Some((cur.a, cur.f, cur.g));
        }
        if cur.d >= 0.0 {
            return zoom(&mut eval, f0, d0, cur, prev);
        }
        a *= 2.0;
        prev = cur;
    }
    None
}

fn zoom<E>(
    eval: &mut E,
    f0: f64,
    d0: f64,
    mut lo: Point,
    mut hi: Point,
) -> Option<(f64, f64, Vec<f64>)>
where
    E: FnMut(f64) -> Point,
{
    for _ in 0..30 {
        let (a_min, a_max) = if lo.a < hi.a {
            (lo.a, hi.a)
        } else {
            (hi.a, lo.a)
        };
        let width = a_max - a_min;
        if width <= 1e-10 * a_max {
            break;
        }
        let mut a = cubic_min(&lo, &hi).unwrap_or(0.5 * (lo.a + hi.a));
        let guard = 0.1 * width;
        if !(a > a_min + guard && a < a_max - guard) {
            a = 0.5 * (lo.a + hi.a);
        }
        let cur = eval(a);
        if !cur.f.is_finite() || cur.f > f0 + C1 * a * d0 || cur.f >= lo.f {
            hi = cur;
        } else {
            if cur.d.abs() <= -C2 * d0 {
                return Some((cur.a, cur.f, cur.g));
            }
            if cur.d * (hi.a - lo.a) >= 0.0 {
                hi = lo;
            }
            lo = cur;
        }
    }
    // Accept the best point with sufficient decrease even without the
    // curvature condition.
    (lo.a > 0.0 && lo.f < f0).then_some((lo.a, lo.f, lo.g))
}

/// Minimiser of the cubic through two points with their slopes.
fn cubic_min(p: &Point, q: &Point) -> Option<f64> {
    if !(p.f.is_finite() && q.f.is_finite() && p.d.is_finite() && q.d.is_finite()) {
        return None;
    }
    let d1 = p.d + q.d - 3.0 * (p.f - q.f) / (p.a - q.a);
    let disc = d1 * d1 - p.d * q.d;
    if disc < 0.0 {
        return None;
    }
    let d2 = (q.a - p.a).signum() * disc.sqrt();
    let a = q.a - (q.a - p.a) * (q.d + d2 - d1) / (q.d - p.d + 2.0 * d2);
    a.is_finite().then_some(a)
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm2(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0_f64, |m, v| m.max(v.abs()))
}

fn identity(n: usize) -> Mat {
    (0..n)
        .map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect()
}

fn symmetrise_lower(m: &mut Mat) {
    for i in 0..m.len() {
        for j in 0..i {
            m[j][i] = m[i][j];
        }
    }
}

/// `A B` for square/compatible row-stored matrices.
fn mat_mul(a: &Mat, b: &Mat) -> Mat {
    let m = b[0].len();
    a.iter()
        .map(|ar| {
            let mut out = vec![0.0; m];
            for (aik, br) in ar.iter().zip(b) {
                if *aik != 0.0 {
                    for (o, bkj) in out.iter_mut().zip(br) {
                        *o += aik * bkj;
                    }
                }
            }
            out
        })
        .collect()
}

/// `L' v` for lower-triangular `L`.
fn lt_times(l: &Mat, v: &[f64]) -> Vec<f64> {
    let q = l.len();
    (0..q)
        .map(|i| (i..q).map(|k| l[k][i] * v[k]).sum())
        .collect()
}

/// `L L'`.
fn lower_times_transpose(l: &Mat) -> Mat {
    let q = l.len();
    let mut out = vec![vec![0.0; q]; q];
    for i in 0..q {
        for j in 0..=i {
            let v: f64 = (0..=j).map(|k| l[i][k] * l[j][k]).sum();
            out[i][j] = v;
            out[j][i] = v;
        }
    }
    out
}

pub(crate) fn pack(l: &Mat) -> Vec<f64> {
    l.iter()
        .enumerate()
        .flat_map(|(a, r)| r[..=a].to_vec())
        .collect()
}

pub(crate) fn unpack(theta: &[f64], q: usize) -> Mat {
    let mut l = vec![vec![0.0; q]; q];
    let mut it = theta.iter();
    for (a, row) in l.iter_mut().enumerate() {
        for v in row.iter_mut().take(a + 1) {
            *v = *it.next().expect("theta has q(q+1)/2 entries");
        }
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random numbers (splitmix64 → uniform(-1, 1)).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        }
    }

    /// `(y, x, z, groups)`.
    type Data4 = (Vec<f64>, Vec<Vec<f64>>, Vec<Vec<f64>>, Vec<usize>);

    /// Unbalanced data: intercept + two covariates; Z = intercept + first
    /// covariate.
    fn small_data() -> Data4 {
        let mut r = Rng(42);
        let sizes = [3usize, 7, 1, 5, 9, 4, 6, 2, 8, 5];
        let (mut y, mut x, mut z, mut g) = (vec![], vec![], vec![], vec![]);
        for (gi, &ng) in sizes.iter().enumerate() {
            let (b0, b1) = (r.next(), 0.5 * r.next());
            for _ in 0..ng {
                let x1 = 2.0 * r.next();
                let x2 = r.next();
                x.push(vec![1.0, x1, x2]);
                z.push(vec![1.0, x1]);
                y.push(1.0 + 0.5 * x1 - x2 + b0 + b1 * x1 + 0.4 * r.next());
                g.push(100 + 7 * gi);
            }
        }
        (y, x, z, g)
    }

    fn suff_of(y: &[f64], x: &[Vec<f64>], z: &[Vec<f64>], g: &[usize]) -> (Suff, Vec<f64>) {
        let d = validate(y, x, z, g).unwrap();
        let ols = least_squares(x, y).unwrap();
        let e: Vec<f64> = x
            .iter()
            .zip(y)
            .map(|(r, yi)| yi - dot(r, &ols.coef))
            .collect();
        (Suff::new(x, z, &e, &d), ols.coef)
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let (y, x, z, g) = small_data();
        let (s, _) = suff_of(&y, &x, &z, &g);
        let theta = vec![0.7, -0.3, 0.4];
        for method in [MixedMethod::Reml, MixedMethod::Ml] {
            let (_, grad) = objective(&s, method, &theta).unwrap();
            for j in 0..theta.len() {
                let h = 1e-6;
                let mut tp = theta.clone();
                tp[j] += h;
                let mut tm = theta.clone();
                tm[j] -= h;
                let fd = (objective(&s, method, &tp).unwrap().0
                    - objective(&s, method, &tm).unwrap().0)
                    / (2.0 * h);
                assert!(
                    (fd - grad[j]).abs() < 1e-6,
                    "{method:?} {j}: {fd} vs {}",
                    grad[j]
                );
            }
        }
    }

    /// Dense O(n³) evaluation of statsmodels' profiled log-likelihood.
    fn dense_llf(
        y: &[f64],
        x: &[Vec<f64>],
        z: &[Vec<f64>],
        g: &[usize],
        psi: &Mat,
        method: MixedMethod,
    ) -> f64 {
        let n = y.len();
        let p = x[0].len();
        let mut v = vec![vec![0.0; n]; n];
        for i in 0..n {
            for j in 0..n {
                if g[i] == g[j] {
                    let zpz: f64 = (0..z[0].len())
                        .map(|a| {
                            (0..z[0].len())
                                .map(|b| z[i][a] * psi[a][b] * z[j][b])
                                .sum::<f64>()
                        })
                        .sum();
                    v[i][j] = zpz + if i == j { 1.0 } else { 0.0 };
                }
            }
        }
        let c = cholesky(&v).unwrap();
        let logdet: f64 = 2.0 * (0..n).map(|i| c[i][i].ln()).sum::<f64>();
        let vinv_x: Vec<Vec<f64>> = (0..p)
            .map(|k| cholesky_solve(&c, &x.iter().map(|r| r[k]).collect::<Vec<_>>()))
            .collect();
        let vinv_y = cholesky_solve(&c, y);
        let xvx: Mat = (0..p)
            .map(|a| {
                (0..p)
                    .map(|b| (0..n).map(|i| x[i][a] * vinv_x[b][i]).sum())
                    .collect()
            })
            .collect();
        let xvy: Vec<f64> = (0..p)
            .map(|a| (0..n).map(|i| x[i][a] * vinv_y[i]).sum())
            .collect();
        let cx = cholesky(&xvx).unwrap();
        let beta = cholesky_solve(&cx, &xvy);
        let r: Vec<f64> = (0..n).map(|i| y[i] - dot(&x[i], &beta)).collect();
        let qf = dot(&r, &cholesky_solve(&c, &r));
        let fac = match method {
            MixedMethod::Ml => n as f64,
            MixedMethod::Reml => (n - p) as f64,
        };
        let mut ll =
            -0.5 * logdet - 0.5 * fac * qf.ln() - 0.5 * fac * (2.0 * std::f64::consts::PI).ln()
                + 0.5 * fac * fac.ln()
                - 0.5 * fac;
        if method == MixedMethod::Reml {
            ll -= (0..p).map(|i| cx[i][i].ln()).sum::<f64>();
        }
        ll
    }

    #[test]
    fn woodbury_likelihood_matches_dense() {
        let (y, x, z, g) = small_data();
        let (s, _) = suff_of(&y, &x, &z, &g);
        for theta in [
            vec![0.7, -0.3, 0.4],
            vec![1.3, 0.0, 0.0],
            vec![0.0, 0.0, 0.0],
        ] {
            let l = unpack(&theta, 2);
            let psi = lower_times_transpose(&l);
            for method in [MixedMethod::Reml, MixedMethod::Ml] {
                let got = -profile(&s, &l, method).unwrap().f;
                let want = dense_llf(&y, &x, &z, &g, &psi, method);
                assert!(
                    (got - want).abs() < 1e-9,
                    "{method:?} {theta:?}: {got} vs {want}"
                );
            }
        }
    }

    fn normal(r: &mut Rng) -> f64 {
        // Box–Muller from two uniforms on (0, 1).
        let u1 = 0.5 * (r.next() + 1.0) + 1e-300;
        let u2 = 0.5 * (r.next() + 1.0);
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    #[test]
    fn errors() {
        let (y, x, z, g) = small_data();
        let fit = |y: &[f64], x: &[Vec<f64>], z: &[Vec<f64>], g: &[usize]| {
            mixed_lm(y, x, z, g, MixedMethod::Reml, 0.95)
        };
        assert_eq!(fit(&[], &[], &[], &[]), Err(StatsError::EmptyInput));
        let no_cols: Vec<Vec<f64>> = x.iter().map(|_| vec![]).collect();
        assert_eq!(fit(&y, &no_cols, &z, &g), Err(StatsError::EmptyInput));
        assert_eq!(fit(&y, &x, &no_cols, &g), Err(StatsError::EmptyInput));
        for (what, res) in [
            ("x", fit(&y, &x[1..], &z, &g)),
            ("z", fit(&y, &x, &z[1..], &g)),
            ("groups", fit(&y, &x, &z, &g[1..])),
        ] {
            assert!(
                matches!(res, Err(StatsError::MismatchedLengths { what: w, .. }) if w == what),
                "{what}: {res:?}"
            );
        }
        let mut ragged = x.clone();
        ragged[5].push(1.0);
        assert!(matches!(
            fit(&y, &ragged, &z, &g),
            Err(StatsError::MismatchedLengths { what: "x row", .. })
        ));
        let mut ragged_z = z.clone();
        ragged_z[0].pop();
        assert!(matches!(
            fit(&y, &x, &ragged_z, &g),
            Err(StatsError::MismatchedLengths { what: "z row", .. })
        ));
        let mut bad = y.clone();
        bad[3] = f64::NAN;
        assert_eq!(fit(&bad, &x, &z, &g), Err(StatsError::NonFinite("y")));
        let mut bad_x = x.clone();
        bad_x[2][1] = f64::INFINITY;
        assert_eq!(fit(&y, &bad_x, &z, &g), Err(StatsError::NonFinite("x")));
        let mut bad_z = z.clone();
        bad_z[2][1] = f64::NAN;
        assert_eq!(fit(&y, &x, &bad_z, &g), Err(StatsError::NonFinite("z")));
        let one_group = vec![1usize; y.len()];
        assert_eq!(
            fit(&y, &x, &z, &one_group),
            Err(StatsError::TooFewClusters(1))
        );
        // 50 rows in 25 groups with q = 2: N <= G·q.
        let pairs: Vec<usize> = (0..y.len()).map(|i| i / 2).collect();
        assert_eq!(
            fit(&y, &x, &z, &pairs),
            Err(StatsError::InsufficientData {
                needed: 51,
                got: 50
            })
        );
        let collinear: Vec<Vec<f64>> = x
            .iter()
            .map(|r| vec![r[0], r[1], 2.0 * r[1] - r[0]])
            .collect();
        assert_eq!(fit(&y, &collinear, &z, &g), Err(StatsError::SingularMatrix));
        let collinear_z: Vec<Vec<f64>> = z.iter().map(|r| vec![r[0], 3.0 * r[0]]).collect();
        assert_eq!(
            fit(&y, &x, &collinear_z, &g),
            Err(StatsError::SingularMatrix)
        );
        let exact: Vec<f64> = x.iter().map(|r| 1.0 + r[1] - 2.0 * r[2]).collect();
        assert!(matches!(
            fit(&exact, &x, &z, &g),
            Err(StatsError::InvalidArgument(_))
        ));
        assert_eq!(
            mixed_lm(&y, &x, &z, &g, MixedMethod::Ml, 1.0),
            Err(StatsError::InvalidConfidence(1.0))
        );
    }

    /// Residuals with zero sum in every group and orthogonal to X: the
    /// random-intercept variance estimate is exactly on the boundary (0) and
    /// the fit must reduce to OLS — coefficients, σ² (REML: RSS/(N-p)) and
    /// standard errors.
    #[test]
    fn zero_variance_reduces_to_ols() {
        let mut r = Rng(7);
        let (mut y, mut x, mut g) = (vec![], vec![], vec![]);
        for gi in 0..12 {
            for _ in 0..3 {
                let xv = 3.0 * r.next();
                let e = r.next();
                for sign in [1.0, -1.0] {
                    x.push(vec![1.0, xv]);
                    y.push(2.0 - 0.5 * xv + sign * e);
                    g.push(gi);
                }
            }
        }
        let z: Vec<Vec<f64>> = x.iter().map(|_| vec![1.0]).collect();
        let ols = crate::ols(&x, &y, 0.95).unwrap();
        let n = y.len() as f64;
        let rss: f64 = x
            .iter()
            .zip(&y)
            .map(|(row, yi)| (yi - dot(row, &ols.coef)).powi(2))
            .sum();
        for method in [MixedMethod::Reml, MixedMethod::Ml] {
            let fit = mixed_lm(&y, &x, &z, &g, method, 0.95).unwrap();
            assert!(fit.converged, "{method:?}");
            assert!(fit.cov_re[0][0] < 1e-10 * fit.scale, "{:?}", fit.cov_re);
            let df = match method {
                MixedMethod::Reml => n - 2.0,
                MixedMethod::Ml => n,
            };
            assert!((fit.scale - rss / df).abs() < 1e-9 * fit.scale);
            for k in 0..2 {
                assert!((fit.coef[k] - ols.coef[k]).abs() < 1e-9);
                // OLS SE uses RSS/(N-p); rescale for ML.
                let ols_se = ols.se[k] * ((n - 2.0) / df).sqrt();
                assert!(
                    (fit.se[k] - ols_se).abs() < 1e-7,
                    "{} vs {}",
                    fit.se[k],
                    ols_se
                );
                assert!((fit.se_gls[k] - ols_se).abs() < 1e-7);
            }
        }
    }

    /// Data simulated from the model with known β, Ψ and σ²: the estimates
    /// land near the truth.
    #[test]
    fn recovers_simulated_effects() {
        let mut r = Rng(2024);
        let (beta, sigma) = ([1.0, -2.0, 0.5], 0.5);
        // Ψ = [[1, 0.3], [0.3, 0.5]] via its Cholesky factor.
        let (l00, l10) = (1.0, 0.3);
        let l11 = (0.5f64 - 0.09).sqrt();
        let (mut y, mut x, mut z, mut g) = (vec![], vec![], vec![], vec![]);
        for gi in 0..300 {
            let (e0, e1) = (normal(&mut r), normal(&mut r));
            let (b0, b1) = (l00 * e0, l10 * e0 + l11 * e1);
            let ng = 10 + (gi % 11);
            for _ in 0..ng {
                let x1 = normal(&mut r);
                let x2 = if r.next() > 0.0 { 1.0 } else { 0.0 };
                x.push(vec![1.0, x1, x2]);
                z.push(vec![1.0, x1]);
                let mean = beta[0] + beta[1] * x1 + beta[2] * x2 + b0 + b1 * x1;
                y.push(mean + sigma * normal(&mut r));
                g.push(gi);
            }
        }
        let fit = mixed_lm(&y, &x, &z, &g, MixedMethod::Reml, 0.95).unwrap();
        assert!(fit.converged);
        for k in 0..3 {
            assert!(
                (fit.coef[k] - beta[k]).abs() < 4.0 * fit.se[k],
                "coef {k}: {} ± {}",
                fit.coef[k],
                fit.se[k]
            );
        }
        let psi = [[1.0, 0.3], [0.3, 0.5]];
        for i in 0..2 {
            for j in 0..2 {
                assert!(
                    (fit.cov_re[i][j] - psi[i][j]).abs() < 0.25,
                    "cov_re[{i}][{j}] = {}",
                    fit.cov_re[i][j]
                );
            }
        }
        assert!((fit.scale - sigma * sigma).abs() < 0.03, "{}", fit.scale);
    }

    /// Shuffling rows and relabelling groups changes nothing; affine maps of
    /// y (`a·y + X c`) move the estimates exactly as they should.
    #[test]
    fn invariances() {
        let (y, x, z, g) = small_data();
        let base = mixed_lm(&y, &x, &z, &g, MixedMethod::Reml, 0.95).unwrap();
        let n = y.len();
        let perm: Vec<usize> = (0..n).map(|i| (i * 17 + 5) % n).collect();
        let py: Vec<f64> = perm.iter().map(|&i| y[i]).collect();
        let px: Vec<Vec<f64>> = perm.iter().map(|&i| x[i].clone()).collect();
        let pz: Vec<Vec<f64>> = perm.iter().map(|&i| z[i].clone()).collect();
        let pg: Vec<usize> = perm.iter().map(|&i| 1_000_000 - g[i]).collect();
        let shuffled = mixed_lm(&py, &px, &pz, &pg, MixedMethod::Reml, 0.95).unwrap();
        for k in 0..3 {
            assert!((shuffled.coef[k] - base.coef[k]).abs() < 1e-8);
            assert!((shuffled.se[k] - base.se[k]).abs() < 1e-8);
        }
        assert!((shuffled.log_likelihood - base.log_likelihood).abs() < 1e-9);

        let (a, c) = (-3.0, [0.5, 1.0, -2.0]);
        let ty: Vec<f64> = x
            .iter()
            .zip(&y)
            .map(|(r, yi)| a * yi + dot(r, &c))
            .collect();
        let t = mixed_lm(&ty, &x, &z, &g, MixedMethod::Reml, 0.95).unwrap();
        for k in 0..3 {
            assert!((t.coef[k] - (a * base.coef[k] + c[k])).abs() < 1e-7);
            assert!((t.se[k] - a.abs() * base.se[k]).abs() < 1e-7);
        }
        assert!((t.scale - a * a * base.scale).abs() < 1e-7 * t.scale);
        for i in 0..2 {
            for j in 0..2 {
                assert!((t.cov_re[i][j] - a * a * base.cov_re[i][j]).abs() < 1e-6);
            }
        }
    }
}
