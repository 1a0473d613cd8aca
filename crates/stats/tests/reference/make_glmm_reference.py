"""Reference values for `glmm_binomial` (tests/it/glmm_reference.rs).

An independent implementation of the Laplace-approximated logistic mixed model, in
numpy/scipy with dense matrices: for each group the mode of the integrand over
(u, v) (random effects, and observation-level effects when asked) by Newton steps on
the full Hessian, the Laplace value h(mode) - 1/2 log|H| plus the binomial
coefficients, maximised over (beta, L, tau) by scipy (Nelder-Mead from the pooled
logistic fit, then BFGS), then the Hessian of -llf by Richardson-extrapolated central
differences for the standard errors. Run: python3 make_glmm_reference.py > glmm_reference.json
(needs numpy and scipy; the tests only read the JSON).
"""
import json

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln, expit


def data(seed, groups, per, q_slope):
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(groups):
        b0 = rng.normal(0, 0.8)
        b1 = rng.normal(0, 0.5) if q_slope else 0.0
        for j in range(per):
            x1 = float(j % 2)
            x2 = round(float(rng.normal()), 3)
            n = int(rng.integers(3, 12))
            eta = -0.3 + 0.9 * x1 - 0.5 * x2 + b0 + b1 * x2 + rng.normal(0, 0.6)
            k = int(rng.binomial(n, expit(eta)))
            rows.append((g, x1, x2, k, n))
    return rows


def fit(rows, slope, obs):
    g = np.array([r[0] for r in rows])
    X = np.array([[1.0, r[1], r[2]] for r in rows])
    Z = np.array([[1.0, r[2]] if slope else [1.0] for r in rows])
    k = np.array([float(r[3]) for r in rows])
    n = np.array([float(r[4]) for r in rows])
    p, q = X.shape[1], Z.shape[1]
    nl = q * (q + 1) // 2
    groups = [np.where(g == i)[0] for i in np.unique(g)]
    logc = float(np.sum(gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)))

    def unpack(t):
        L = np.zeros((q, q))
        L[np.tril_indices(q)] = t  # row-major lower triangle
        return L

    def laplace(params):
        beta = params[:p]
        L = unpack(params[p:p + nl])
        tau = params[p + nl] if obs else 0.0
        total = logc
        for idx in groups:
            m = len(idx)
            # Design of (u, v): eta = X beta + [Z L, tau I] w.
            A = np.hstack([Z[idx] @ L, tau * np.eye(m)]) if obs else Z[idx] @ L
            off = X[idx] @ beta
            w = np.zeros(A.shape[1])

            def h(w):
                eta = off + A @ w
                return float(np.sum(k[idx] * eta - n[idx] * np.logaddexp(0, eta)) - 0.5 * w @ w)

            f = h(w)
            for _ in range(200):
                mu = expit(off + A @ w)
                grad = A.T @ (k[idx] - n[idx] * mu) - w
                H = A.T @ np.diag(n[idx] * mu * (1 - mu)) @ A + np.eye(len(w))
                step = np.linalg.solve(H, grad)
                t = 1.0
                while True:
                    nf = h(w + t * step)
                    if nf >= f - 1e-12 or t < 1e-10:
                        break
                    t /= 2
                w = w + t * step
                f = nf
                if np.max(np.abs(step)) * t < 1e-12:
                    break
            mu = expit(off + A @ w)
            H = A.T @ np.diag(n[idx] * mu * (1 - mu)) @ A + np.eye(len(w))
            total += h(w) - 0.5 * np.linalg.slogdet(H)[1]
        return total

    # Start: pooled logistic regression.
    b0 = minimize(lambda b: -float(np.sum(k * (X @ b) - n * np.logaddexp(0, X @ b))), np.zeros(p),
                  method="BFGS").x
    start = np.concatenate([b0, np.eye(q)[np.tril_indices(q)], [0.5] if obs else []])
    obj = lambda t: -laplace(t)
    r = minimize(obj, start, method="Nelder-Mead",
                 options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 40000, "maxfev": 40000})
    r = minimize(obj, r.x, method="BFGS", options={"gtol": 1e-9})
    x = r.x
    # Hessian of -llf: central differences, Richardson-extrapolated over steps h and h/2.
    def hess(hs):
        m = len(x)
        H = np.zeros((m, m))
        for i in range(m):
            for j in range(m):
                e_i = np.eye(m)[i] * hs
                e_j = np.eye(m)[j] * hs
                H[i, j] = (obj(x + e_i + e_j) - obj(x + e_i - e_j) - obj(x - e_i + e_j)
                           + obj(x - e_i - e_j)) / (4 * hs * hs)
        return H
    H = (4 * hess(1e-3) - hess(2e-3)) / 3
    cov = np.linalg.inv(H)
    se = np.sqrt(np.diag(cov)[:p])
    L = unpack(x[p:p + nl])
    return {
        "slope": slope,
        "obs": obs,
        "coef": x[:p].tolist(),
        "se": se.tolist(),
        "cov_re": (L @ L.T).tolist(),
        "obs_var": float(x[p + nl] ** 2) if obs else None,
        "llf": -float(r.fun),
    }


cases = []
for seed, groups, per, slope, obs in [(1, 6, 7, False, False), (2, 6, 7, False, True), (3, 8, 6, True, False)]:
    rows = data(seed, groups, per, slope)
    out = fit(rows, slope, obs)
    out["rows"] = [list(r) for r in rows]
    cases.append(out)
print(json.dumps({"cases": cases}, indent=1))
