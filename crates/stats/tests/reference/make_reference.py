#!/usr/bin/env python3
# Reference values for the `shammie-stats` crate.
#
# Generates deterministic fixture inputs (numpy seeds below) together with the
# expected outputs computed by statsmodels / scipy, and writes them next to this
# script as `reference.json`. The Rust test `crates/stats/tests/it/reference.rs`
# reads that JSON, so running the Rust tests needs no Python.
#
# Generated with:
#   Python 3.11.7, numpy 2.4.6, scipy 1.17.1, statsmodels 0.15.0, pandas 3.1.1
#
# Regenerate (from the repository root; the venv lives outside the repo):
#   python3 -m venv /work/.venv-ref
#   /work/.venv-ref/bin/pip install numpy==2.4.6 scipy==1.17.1 statsmodels==0.15.0 pandas==3.1.1
#   /work/.venv-ref/bin/python crates/stats/tests/reference/make_reference.py
#
# Which library call each section reproduces is recorded in the JSON itself
# ("reference" fields) so a failing Rust assertion can be traced back.

import json
import pathlib
import platform

import numpy as np
import pandas as pd
import scipy
import statsmodels
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint
from statsmodels.stats.weightstats import DescrStatsW

OUT = pathlib.Path(__file__).with_name("reference.json")


def f(x):
    """numpy scalar -> python float (json round-trips doubles exactly)."""
    return float(x)


def fl(xs):
    return [float(x) for x in xs]


def normal_section():
    ps = [1e-300, 1e-100, 1e-20, 1e-10, 1e-5, 0.001, 0.01, 0.02425, 0.025, 0.05, 0.075,
          0.1, 0.3, 0.4, 0.5, 0.6, 0.7, 0.9, 0.95, 0.975, 0.99, 0.999, 1 - 1e-10]
    rng = np.random.default_rng(11)
    ps += fl(rng.uniform(0, 1, 8))
    quantile = [{"p": f(p), "expected": f(stats.norm.ppf(p))} for p in ps]
    xs = [-37.5, -30.0, -20.0, -12.3, -8.0, -5.0, -3.0, -1.959963984540054, -1.0, -0.7, -0.3,
          0.0, 0.2, 0.69, 1.0, 1.5, 2.5, 4.0, 8.5]
    cdf = [{"x": f(x), "expected": f(stats.norm.cdf(x))} for x in xs]
    confs = [0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.999, 0.999999]
    z = [{"confidence": c, "expected": f(stats.norm.isf((1 - c) / 2))} for c in confs]
    return {
        "reference": "scipy.stats.norm.ppf / norm.cdf / norm.isf((1-c)/2)",
        "quantile": quantile,
        "cdf": cdf,
        "z_for": z,
    }


def t_section():
    dfs = [1, 2, 3, 4, 5, 7, 10, 15, 29, 60, 120, 1000, 100000]
    ps = [1e-10, 0.0005, 0.005, 0.025, 0.05, 0.1, 0.3, 0.7, 0.975, 0.995]
    quantile = [{"p": p, "df": float(d), "expected": f(stats.t.ppf(p, d))} for d in dfs for p in ps]
    ts = [-50.0, -6.0, -2.0, -0.5, 0.0, 0.3, 1.0, 2.5, 12.0]
    cdf = [{"t": t, "df": float(d), "expected": f(stats.t.cdf(t, d))} for d in dfs for t in ts]
    return {"reference": "scipy.stats.t.ppf / t.cdf", "quantile": quantile, "cdf": cdf}


def wilson_section():
    pairs = [(0, 1), (1, 1), (0, 5), (5, 5), (1, 5), (2, 7), (0, 20), (20, 20), (13, 40),
             (50, 100), (1, 1000), (999, 1000), (123456, 1000000)]
    out = []
    for x, n in pairs:
        for c in [0.9, 0.95, 0.99]:
            lo, hi = proportion_confint(x, n, alpha=1 - c, method="wilson")
            out.append({"x": x, "n": n, "confidence": c, "estimate": x / n, "lo": f(lo), "hi": f(hi)})
    return {"reference": "statsmodels proportion_confint(x, n, alpha=1-c, method='wilson')", "cases": out}


def newcombe_section():
    quads = [(0, 10, 0, 10), (10, 10, 0, 10), (0, 10, 10, 10), (3, 10, 7, 12), (56, 70, 48, 80),
             (9, 10, 3, 10), (1, 1, 0, 1), (5, 56, 0, 29), (480, 1000, 520, 1000),
             (17, 150, 4, 30)]
    out = []
    for x1, n1, x2, n2 in quads:
        for c in [0.9, 0.95, 0.99]:
            lo, hi = confint_proportions_2indep(x1, n1, x2, n2, method="newcomb", compare="diff",
                                                alpha=1 - c)
            out.append({"x1": x1, "n1": n1, "x2": x2, "n2": n2, "confidence": c,
                        "estimate": x1 / n1 - x2 / n2, "lo": f(lo), "hi": f(hi)})
    return {"reference": "statsmodels confint_proportions_2indep(..., method='newcomb', "
                         "compare='diff', alpha=1-c)", "cases": out}


def mean_t_section():
    rng = np.random.default_rng(22)
    datasets = [
        [1.0, 3.0],
        [0.2, 0.9, 0.4],
        fl(rng.normal(10, 2, 5)),
        fl(rng.exponential(1.5, 10)),
        fl(rng.normal(-3, 0.1, 30)),
        fl(1e6 + rng.normal(0, 1, 50)),
        fl(rng.binomial(1, 0.3, 200).astype(float)),
    ]
    out = []
    for v in datasets:
        for c in [0.9, 0.95, 0.99]:
            d = DescrStatsW(np.array(v))
            lo, hi = d.tconfint_mean(alpha=1 - c)
            out.append({"values": v, "confidence": c, "estimate": f(d.mean), "se": f(d.std_mean),
                        "lo": f(lo), "hi": f(hi)})
    return {"reference": "statsmodels DescrStatsW(values).tconfint_mean(alpha=1-c), "
                         "se = DescrStatsW.std_mean", "cases": out}


def ols_dataset(seed, n, g, k_extra):
    rng = np.random.default_rng(seed)
    # Non-contiguous, unsorted u64 cluster ids with unbalanced cluster sizes.
    ids = rng.choice(np.arange(10_000, 99_999), size=g, replace=False)
    sizes = rng.dirichlet(np.ones(g) * 2.0)
    groups = rng.choice(ids, size=n, p=sizes)
    cluster_effect = dict(zip(ids, rng.normal(0, 1.0, g)))
    u = np.array([cluster_effect[c] for c in groups])
    cols = [np.ones(n)]
    cols.append(rng.normal(0, 1, n) + 0.8 * u)  # regressor correlated within cluster
    if k_extra >= 2:
        cols.append(rng.binomial(1, 0.4, n).astype(float))
    if k_extra >= 3:
        cols.append(rng.uniform(-2, 2, n))
    X = np.column_stack(cols)
    beta = np.array([0.5, 1.2, -0.7, 0.3])[: X.shape[1]]
    noise = rng.normal(0, 1, n) * (0.5 + np.abs(X[:, 1]) * 0.5)
    y = X @ beta + 1.5 * u + noise
    return X, y, groups


def ols_section():
    out = []
    for name, (seed, n, g, k) in {"main_n200_g25_k4": (33, 200, 25, 3),
                                  "small_n40_g6_k2": (44, 40, 6, 1)}.items():
        X, y, groups = ols_dataset(seed, n, g, k)
        cases = []
        for c in [0.9, 0.95, 0.99]:
            a = 1 - c
            r0 = sm.OLS(y, X).fit()
            r1 = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": groups})
            r2 = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)
            assert r0.use_t is True and r1.use_t is False and r2.use_t is True
            cases.append({
                "confidence": c,
                "classical": {"coef": fl(r0.params), "se": fl(r0.bse),
                              "ci": [fl(row) for row in r0.conf_int(alpha=a)]},
                "cluster_normal": {"coef": fl(r1.params), "se": fl(r1.bse),
                                   "ci": [fl(row) for row in r1.conf_int(alpha=a)]},
                "cluster_t": {"coef": fl(r2.params), "se": fl(r2.bse),
                              "ci": [fl(row) for row in r2.conf_int(alpha=a)],
                              "df": int(r2.df_resid_inference)},
            })
        out.append({
            "name": name,
            "x": [fl(row) for row in X],
            "y": fl(y),
            "clusters": [int(c) for c in groups],
            "n_clusters": int(len(np.unique(groups))),
            "cases": cases,
        })
    return {
        "reference": {
            "classical": "sm.OLS(y, X).fit(): params, bse, conf_int(alpha=1-c) (t, N-K df)",
            "cluster_normal": "sm.OLS(y, X).fit(cov_type='cluster', cov_kwds={'groups': g}) "
                              "(default use_t=False -> normal CI; CR1 factor G/(G-1)*(N-1)/(N-K))",
            "cluster_t": "same with use_t=True (t with df_resid_inference = G-1)",
        },
        "datasets": out,
    }


def clustered_ratio_section():
    rng = np.random.default_rng(55)
    datasets = []
    # (a) binary outcomes (m = 1), 300 units in 30 clusters with cluster-level rates.
    g = 30
    ids = rng.choice(np.arange(1, 1_000_000), size=g, replace=False)
    groups = rng.choice(ids, size=300)
    rate = dict(zip(ids, rng.beta(4, 3, g)))
    y = np.array([rng.binomial(1, rate[c]) for c in groups], dtype=float)
    datasets.append(("binary_m1_g30", y, np.ones_like(y), groups))
    # (b) several trials per unit (m in 1..10), 120 units in 17 clusters.
    g = 17
    ids = rng.choice(np.arange(1, 5000), size=g, replace=False)
    groups = rng.choice(ids, size=120)
    rate = dict(zip(ids, rng.beta(2, 5, g)))
    m = rng.integers(1, 11, size=120).astype(float)
    y = np.array([rng.binomial(int(mi), rate[c]) for mi, c in zip(m, groups)], dtype=float)
    datasets.append(("binomial_m1to10_g17", y, m, groups))
    # (c) rare successes with few clusters: the normal interval dips below 0.
    groups = np.repeat([7, 8, 9, 10], 10)
    m = np.full(40, 3.0)
    y = np.zeros(40)
    y[3] = 2.0
    y[25] = 1.0
    datasets.append(("rare_clipped_g4", y, m, groups))
    # (d) fractional credit in [0, m], singleton clusters.
    m = rng.integers(1, 6, size=25).astype(float)
    y = np.round(m * rng.uniform(0, 1, 25), 2)
    groups = np.arange(25) * 3 + 100
    datasets.append(("fractional_singletons", y, m, groups))

    out = []
    for name, y, m, groups in datasets:
        for c in [0.9, 0.95, 0.99]:
            res = sm.WLS(y / m, np.ones(len(y)), weights=m).fit(
                cov_type="cluster", cov_kwds={"groups": groups})
            assert res.use_t is False
            lo_raw, hi_raw = res.conf_int(alpha=1 - c)[0]
            case = {"name": name, "y": fl(y), "m": fl(m), "clusters": [int(x) for x in groups],
                    "confidence": c, "estimate": f(res.params[0]), "se": f(res.bse[0]),
                    "lo_unclipped": f(lo_raw), "hi_unclipped": f(hi_raw),
                    "lo": f(np.clip(lo_raw, 0, 1)), "hi": f(np.clip(hi_raw, 0, 1))}
            if np.all(m == 1):
                r_ols = sm.OLS(y, np.ones(len(y))).fit(cov_type="cluster",
                                                       cov_kwds={"groups": groups})
                case["ols_se"] = f(r_ols.bse[0])
            out.append(case)
    return {
        "reference": "sm.WLS(y/m, ones, weights=m).fit(cov_type='cluster', "
                     "cov_kwds={'groups': clusters}): params[0], bse[0], "
                     "clip(conf_int(alpha=1-c)[0], 0, 1); for m == 1 also "
                     "sm.OLS(y, ones).fit(cov_type='cluster', ...).bse[0]",
        "cases": out,
    }


def auroc_section():
    rng = np.random.default_rng(66)
    out = []
    for n1, n0, shift, decimals in [(5, 7, 1.0, None), (40, 60, 0.5, 1), (100, 30, -0.3, None),
                                    (25, 25, 0.0, 0), (3, 200, 2.0, 2)]:
        pos = rng.normal(shift, 1, n1)
        neg = rng.normal(0, 1, n0)
        if decimals is not None:  # force ties
            pos = np.round(pos, decimals)
            neg = np.round(neg, decimals)
        scores = np.concatenate([pos, neg])
        labels = np.array([True] * n1 + [False] * n0)
        perm = rng.permutation(len(scores))
        scores, labels = scores[perm], labels[perm]
        u = stats.mannwhitneyu(scores[labels], scores[~labels]).statistic
        out.append({"scores": fl(scores), "labels": [bool(b) for b in labels],
                    "expected": f(u / (n1 * n0))})
    return {"reference": "scipy.stats.mannwhitneyu(pos, neg).statistic / (n1*n0)", "cases": out}


def bootstrap_section():
    rng = np.random.default_rng(77)
    data = rng.exponential(2.0, 60)
    res = stats.bootstrap((data,), np.mean, n_resamples=20000, method="percentile",
                          confidence_level=0.95, rng=np.random.default_rng(78))
    return {
        "reference": "scipy.stats.bootstrap((data,), np.mean, n_resamples=20000, "
                     "method='percentile', confidence_level=0.95)",
        "values": fl(data),
        "resamples": 20000,
        "confidence": 0.95,
        "mean": f(np.mean(data)),
        "lo": f(res.confidence_interval.low),
        "hi": f(res.confidence_interval.high),
    }


def main():
    ref = {
        "meta": {
            "generator": "crates/stats/tests/reference/make_reference.py",
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "statsmodels": statsmodels.__version__,
            "pandas": pd.__version__,
        },
        "normal": normal_section(),
        "student_t": t_section(),
        "wilson": wilson_section(),
        "newcombe": newcombe_section(),
        "mean_ci_t": mean_t_section(),
        "ols": ols_section(),
        "clustered_ratio": clustered_ratio_section(),
        "auroc": auroc_section(),
        "bootstrap_mean": bootstrap_section(),
    }
    text = json.dumps(ref, separators=(",", ":"))
    OUT.write_text(text + "\n")
    print(f"wrote {OUT} ({len(text)} bytes)")


if __name__ == "__main__":
    main()
