//! Logistic (binomial) generalised linear mixed model fitted by maximum
//! likelihood with the Laplace approximation — the model of lme4's
//! `glmer(cbind(k, n - k) ~ x + (z | group) [+ (1 | obs)], family = binomial,
//! nAGQ = 1)`.
//!
//! Model, row `j` of group `g`: `k_j ~ Binomial(n_j, μ_j)`,
//! `logit μ_j = x_j β + z_j b_g [+ e_j]`, `b_g ~ N(0, Ψ)` (q×q, unstructured),
//! and optionally an observation-level effect `e_j ~ N(0, τ²)` (one per row:
//! over-dispersion, i.e. a per-row logit that varies beyond the fixed and
//! group effects, as a logit read exactly from a model does).
//!
//! How it is computed:
//! * `Ψ = L L'`, `b_g = L u_g`, `e_j = τ v_j` with `u, v` standard normal.
//!   For fixed `(β, L, τ)` each group's integrand
//!   `h(u, v) = Σ_j [k_j η_j − n_j log(1 + e^{η_j})] − ½|u|² − ½|v|²` is
//!   concave; its mode comes from Newton steps (halved until `h` rises). The
//!   negative Hessian is `[[I + L'Z'WZL, τL'Z'W], [τWZL, I + τ²W]]` with
//!   `W = diag(n μ (1 − μ))`; the `v` block is diagonal, so it is eliminated
//!   (Schur complement `S = I + L'Z' diag(W/(1 + τ²W)) Z L`) and every step
//!   costs `O(n_g q²)`.
//! * Laplace: `log p(k_g) ≈ h(û, v̂) − ½ log|H| + Σ_j log C(n_j, k_j)` with
//!   `log|H| = Σ_j log(1 + τ²W_j) + log|S|`.
//! * The log-likelihood is maximised over `(β, L, τ)` jointly by BFGS with
//!   central-difference gradients, from the pooled logistic regression and
//!   `L = I`, `τ = ½`.
//! * Standard errors of β: the inverse of the finite-difference Hessian of
//!   the Laplace deviance over all parameters (lme4's default `use.hessian`);
//!   where that Hessian is not invertible (a variance on the boundary), the
//!   β block alone (conditional on the variances).

#![allow(clippy::needless_range_loop)]

use serde::{Deserialize, Serialize};

use crate::dist::lgamma;
use crate::linalg::{cholesky, cholesky_solve, invert, least_squares, Mat};
use crate::mixed::{bfgs, check_design, pack, unpack, wald_intervals, Data};
use crate::{check_finite, check_len, half_alpha, Interval, StatsError};

/// Result of [`glmm_binomial`]. Vectors by fixed effect follow the columns of
/// `x`; `cov_re` follows the columns of `z`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinomialGlmmFit {
    /// Fixed effects β (logit scale, conditional on the random effects).
    pub coef: Vec<f64>,
    pub se: Vec<f64>,
    /// Whether `se` came from the full Hessian (else from the β block).
    pub se_from_full_hessian: bool,
    /// Wald intervals `coef ± z_{1-α/2} se`.
    pub intervals: Vec<Interval>,
    pub confidence: f64,
    /// Random-effects covariance Ψ (q×q).
    pub cov_re: Vec<Vec<f64>>,
    /// Variance τ² of the observation-level effect (`None` without one).
    pub obs_var: Option<f64>,
    /// Laplace log-likelihood at the optimum, binomial coefficients included.
    pub log_likelihood: f64,
    /// The optimiser ended with `max |gradient| <= 1e-7 · max(1, |llf|)`.
    pub converged: bool,
    pub iterations: usize,
    pub n_obs: usize,
    pub n_groups: usize,
}

struct Group {
    rows: Vec<usize>,
}

struct Problem<'a> {
    k: &'a [f64],
    n: &'a [f64],
    x: &'a [Vec<f64>],
    z: &'a [Vec<f64>],
    groups: Vec<Group>,
    p: usize,
    q: usize,
    obs: bool,
    /// Σ log C(n_j, k_j).
    log_binom: f64,
}

fn softplus(t: f64) -> f64 {
    if t > 0.0 {
        t + (-t).exp().ln_1p()
    } else {
        t.exp().ln_1p()
    }
}

fn sigmoid(t: f64) -> f64 {
    if t >= 0.0 {
        1.0 / (1.0 + (-t).exp())
    } else {
        let e = t.exp();
        e / (1.0 + e)
    }
}

impl Problem<'_> {
    fn split<'p>(&self, params: &'p [f64]) -> (&'p [f64], Mat, f64) {
        let p = self.p;
        let nl = self.q * (self.q + 1) / 2;
        let beta = &params[..p];
        let l = unpack(&params[p..p + nl], self.q);
        let tau = if self.obs { params[p + nl] } else { 0.0 };
        (beta, l, tau)
    }

    /// The Laplace log-likelihood of one group and its mode (u, v), started
    /// from `start`; `None` if the Newton iteration fails.
    fn group_laplace(
        &self,
        g: &Group,
        beta: &[f64],
        l: &Mat,
        tau: f64,
        start: &mut (Vec<f64>, Vec<f64>),
    ) -> Option<f64> {
        let q = self.q;
        let m = g.rows.len();
        // ZL for the group's rows, and the fixed part of η.
        let zl: Vec<Vec<f64>> = g
            .rows
            .iter()
            .map(|&j| {
                (0..q)
                    .map(|c| (c..q).map(|a| self.z[j][a] * l[a][c]).sum())
                    .collect()
            })
            .collect();
        let fixed: Vec<f64> = g
            .rows
            .iter()
            .map(|&j| self.x[j].iter().zip(beta).map(|(a, b)| a * b).sum())
            .collect();
        let h = |u: &[f64], v: &[f64]| -> f64 {
            let mut s = 0.0;
            for r in 0..m {
                let j = g.rows[r];
                let eta = fixed[r] + dot(&zl[r], u) + tau * v[r];
                s += self.k[j] * eta - self.n[j] * softplus(eta);
            }
            s - 0.5 * dot(u, u) - 0.5 * dot(v, v)
        };
        let (u, v) = start;
        if u.len() != q || v.len() != m {
            *u = vec![0.0; q];
            *v = vec![0.0; m];
        }
        let mut f = h(u, v);
        for _ in 0..100 {
            // Gradient and the pieces of the Hessian at (u, v).
            let mut w = vec![0.0; m];
            let mut gu: Vec<f64> = u.iter().map(|x| -x).collect();
            let mut gv = vec![0.0; m];
            for r in 0..m {
                let j = g.rows[r];
                let eta = fixed[r] + dot(&zl[r], u) + tau * v[r];
                let mu = sigmoid(eta);
                let resid = self.k[j] - self.n[j] * mu;
                w[r] = self.n[j] * mu * (1.0 - mu);
                for c in 0..q {
                    gu[c] += zl[r][c] * resid;
                }
                gv[r] = tau * resid - v[r];
            }
            let d: Vec<f64> = w.iter().map(|wr| 1.0 + tau * tau * wr).collect();
            let mut s = identity(q);
            let mut rhs = gu.clone();
            for r in 0..m {
                let a = w[r] / d[r];
                for c1 in 0..q {
                    for c2 in 0..q {
                        s[c1][c2] += a * zl[r][c1] * zl[r][c2];
                    }
                    rhs[c1] -= tau * zl[r][c1] * w[r] * gv[r] / d[r];
                }
            }
            let chol = cholesky(&s)?;
            let du = cholesky_solve(&chol, &rhs);
            let dv: Vec<f64> = (0..m)
                .map(|r| (gv[r] - tau * w[r] * dot(&zl[r], &du)) / d[r])
                .collect();
            let step = max_abs(&du).max(max_abs(&dv));
            // Halve the step until h does not fall.
            let mut t = 1.0;
            let (mut nu, mut nv);
            loop {
                nu = u
                    .iter()
                    .zip(&du)
                    .map(|(a, b)| a + t * b)
                    .collect::<Vec<_>>();
                nv = v
                    .iter()
                    .zip(&dv)
                    .map(|(a, b)| a + t * b)
                    .collect::<Vec<_>>();
                let nf = h(&nu, &nv);
                if nf >= f - 1e-12 * f.abs().max(1.0) || t < 1e-10 {
                    f = nf;
                    break;
                }
                t *= 0.5;
            }
            *u = nu;
            *v = nv;
            if step * t < 1e-11 {
                break;
            }
        }
        // log|H| at the mode.
        let mut logdet = 0.0;
        let mut s = identity(q);
        for r in 0..m {
            let j = g.rows[r];
            let eta = fixed[r] + dot(&zl[r], u) + tau * v[r];
            let mu = sigmoid(eta);
            let w = self.n[j] * mu * (1.0 - mu);
            let d = 1.0 + tau * tau * w;
            logdet += d.ln();
            for c1 in 0..q {
                for c2 in 0..q {
                    s[c1][c2] += w / d * zl[r][c1] * zl[r][c2];
                }
            }
        }
        let chol = cholesky(&s)?;
        logdet += 2.0 * (0..q).map(|c| chol[c][c].ln()).sum::<f64>();
        let value = f - 0.5 * logdet;
        value.is_finite().then_some(value)
    }

    /// The Laplace log-likelihood (binomial coefficients included), warm-started
    /// from the modes in `modes`.
    fn loglik(&self, params: &[f64], modes: &mut [(Vec<f64>, Vec<f64>)]) -> Option<f64> {
        let (beta, l, tau) = self.split(params);
        let mut total = self.log_binom;
        for (g, mode) in self.groups.iter().zip(modes.iter_mut()) {
            total += self.group_laplace(g, beta, &l, tau, mode)?;
        }
        Some(total)
    }
}

/// Fits a logistic mixed model to binomial counts by Laplace-approximated
/// maximum likelihood.
///
/// * `successes[j]` of `trials[j]` (non-negative whole numbers, `trials ≥ 1`,
///   `successes ≤ trials`); `x`: fixed-effects design (N rows of p columns,
///   with a column of ones for an intercept); `z`: random-effects design
///   (N rows of q columns); `groups`: the group of each row.
/// * `observation_effect`: add a normal random intercept per row (the
///   over-dispersion of per-row probabilities that vary around the model).
///
/// Errors: empty input or columns, mismatched or ragged lengths, non-finite
/// values, counts that are not whole or out of range
/// ([`StatsError::InvalidArgument`]), fewer than two groups, `N <= p`, a
/// rank-deficient `x`, bad confidence, a likelihood that cannot be evaluated
/// at the start. Failure to converge is not an error: see
/// [`BinomialGlmmFit::converged`].
pub fn glmm_binomial(
    successes: &[f64],
    trials: &[f64],
    x: &[Vec<f64>],
    z: &[Vec<f64>],
    groups: &[usize],
    observation_effect: bool,
    confidence: f64,
) -> Result<BinomialGlmmFit, StatsError> {
    half_alpha(confidence)?;
    let n_obs = successes.len();
    if n_obs == 0 {
        return Err(StatsError::EmptyInput);
    }
    check_len("trials", n_obs, trials.len())?;
    let Data {
        p,
        q,
        index,
        n_groups,
    } = check_design(n_obs, x, z, groups)?;
    check_finite(successes, "successes")?;
    check_finite(trials, "trials")?;
    for (k, n) in successes.iter().zip(trials) {
        if k.fract() != 0.0 || n.fract() != 0.0 || *n < 1.0 || *k < 0.0 || k > n {
            return Err(StatsError::InvalidArgument(format!(
                "counts must be whole numbers with 0 <= successes <= trials and trials >= 1, got {k} of {n}"
            )));
        }
    }
    let mut gs: Vec<Group> = (0..n_groups).map(|_| Group { rows: Vec::new() }).collect();
    for (j, i) in index.into_iter().enumerate() {
        gs[i].rows.push(j);
    }
    // Rank check of x, and of z.
    least_squares(x, successes)?;
    least_squares(z, successes)?;

    let log_binom = successes
        .iter()
        .zip(trials)
        .map(|(k, n)| lgamma(n + 1.0) - lgamma(k + 1.0) - lgamma(n - k + 1.0))
        .sum();
    let prob = Problem {
        k: successes,
        n: trials,
        x,
        z,
        groups: gs,
        p,
        q,
        obs: observation_effect,
        log_binom,
    };

    let mut start = pooled_logistic(successes, trials, x)?;
    start.extend(pack(&identity(q)));
    if observation_effect {
        start.push(0.5);
    }
    let mut modes: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); prob.groups.len()];
    if prob.loglik(&start, &mut modes).is_none() {
        return Err(StatsError::InvalidArgument(
            "the likelihood cannot be evaluated at the start".into(),
        ));
    }
    let mut fg = |t: &[f64]| -> Option<(f64, Vec<f64>)> {
        let f = -prob.loglik(t, &mut modes)?;
        let mut g = vec![0.0; t.len()];
        let mut tp = t.to_vec();
        for i in 0..t.len() {
            let h = 1e-5 * t[i].abs().max(1.0);
            tp[i] = t[i] + h;
            let fp = -prob.loglik(&tp, &mut modes.clone())?;
            tp[i] = t[i] - h;
            let fm = -prob.loglik(&tp, &mut modes.clone())?;
            tp[i] = t[i];
            g[i] = (fp - fm) / (2.0 * h);
        }
        Some((f, g))
    };
    let opt = bfgs(&mut fg, start);
    let params = opt.x;
    let llf = prob
        .loglik(&params, &mut modes)
        .ok_or(StatsError::SingularMatrix)?;

    // Hessian of the deviance-scale objective −llf by central differences.
    let np = params.len();
    let f_at = |t: &[f64], modes: &mut Vec<(Vec<f64>, Vec<f64>)>| -> Option<f64> {
        prob.loglik(t, &mut modes.clone()).map(|v| -v)
    };
    let steps: Vec<f64> = params.iter().map(|v| 1e-4 * v.abs().max(1.0)).collect();
    let mut hess = vec![vec![0.0; np]; np];
    let mut ok = true;
    'outer: for i in 0..np {
        for j in 0..=i {
            let mut at = |di: f64, dj: f64| {
                let mut t = params.clone();
                t[i] += di * steps[i];
                t[j] += dj * steps[j];
                f_at(&t, &mut modes)
            };
            let v = if i == j {
                match (at(1.0, 0.0), at(-1.0, 0.0)) {
                    (Some(a), Some(b)) => (a - 2.0 * (-llf) + b) / (steps[i] * steps[i]),
                    _ => {
                        ok = false;
                        break 'outer;
                    }
                }
            } else {
                match (at(1.0, 1.0), at(1.0, -1.0), at(-1.0, 1.0), at(-1.0, -1.0)) {
                    (Some(a), Some(b), Some(c), Some(d)) => {
                        (a - b - c + d) / (4.0 * steps[i] * steps[j])
                    }
                    _ => {
                        ok = false;
                        break 'outer;
                    }
                }
            };
            hess[i][j] = v;
            hess[j][i] = v;
        }
    }
    let positive = |se: &Vec<f64>| se.iter().all(|s| s.is_finite() && *s > 0.0);
    let full = ok
        .then(|| invert(&hess).ok())
        .flatten()
        .map(|cov| {
            (0..p)
                .map(|k| cov[k][k].max(0.0).sqrt())
                .collect::<Vec<f64>>()
        })
        .filter(|se| positive(se) && np > p);
    let se_from_full_hessian = full.is_some();
    let se = match full {
        Some(se) => se,
        None => {
            let block: Mat = hess[..p].iter().map(|r| r[..p].to_vec()).collect();
            let cov = invert(&block)?;
            let se: Vec<f64> = (0..p).map(|k| cov[k][k].max(0.0).sqrt()).collect();
            if !positive(&se) {
                return Err(StatsError::SingularMatrix);
            }
            se
        }
    };
    let (beta, l, tau) = prob.split(&params);
    let coef = beta.to_vec();
    let intervals = wald_intervals(&coef, &se, confidence);
    let cov_re: Mat = (0..q)
        .map(|a| {
            (0..q)
                .map(|b| (0..q).map(|c| l[a][c] * l[b][c]).sum())
                .collect()
        })
        .collect();
    Ok(BinomialGlmmFit {
        coef,
        se,
        se_from_full_hessian,
        intervals,
        confidence,
        cov_re,
        obs_var: observation_effect.then_some(tau * tau),
        log_likelihood: llf,
        converged: opt.converged,
        iterations: opt.iterations,
        n_obs,
        n_groups: prob.groups.len(),
    })
}

/// The pooled logistic regression by iteratively reweighted least squares
/// (the starting point of the mixed fit). Counts of 0 or n are fine: the
/// weights keep the working response finite.
fn pooled_logistic(k: &[f64], n: &[f64], x: &[Vec<f64>]) -> Result<Vec<f64>, StatsError> {
    let p = x[0].len();
    let mut beta = vec![0.0; p];
    for _ in 0..50 {
        let mut rows = Vec::with_capacity(x.len());
        let mut resp = Vec::with_capacity(x.len());
        for j in 0..x.len() {
            let eta = dot(&x[j], &beta);
            let mu = sigmoid(eta).clamp(1e-6, 1.0 - 1e-6);
            let w = n[j] * mu * (1.0 - mu);
            let zr = eta + (k[j] - n[j] * mu) / w;
            let sw = w.sqrt();
            rows.push(x[j].iter().map(|v| v * sw).collect::<Vec<f64>>());
            resp.push(zr * sw);
        }
        let next = least_squares(&rows, &resp)?.coef;
        let change = next
            .iter()
            .zip(&beta)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        // Separation would run off to infinity: a bounded start is enough.
        beta = next.into_iter().map(|b| b.clamp(-10.0, 10.0)).collect();
        if change < 1e-10 {
            break;
        }
    }
    Ok(beta)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m, v| m.max(v.abs()))
}

fn identity(n: usize) -> Mat {
    (0..n)
        .map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect()
}
