"""Compare two EK-FAC result folders (factors.safetensors + scores.npy).

usage: compare.py A_DIR B_DIR [--min-r 0.999] [--damping-scale 0.1]
A is the reference. Exits 1 if the Pearson r of all scores is below --min-r.
"""
import argparse
import os
import sys

import numpy as np
from safetensors.numpy import load_file


def rel_fro(a, b):
    den = np.linalg.norm(a)
    return np.linalg.norm(a - b) / den if den > 0 else np.linalg.norm(b)


def ihvp(v, qa, qs, lam, damping):
    return qs @ (((qs.T @ v @ qa) / (lam + damping)) @ qa.T)


def compare_factors(fa, fb, damping_scale, n_probe=4, seed=0):
    layers = sorted({k.rsplit(".", 1)[0] for k in fa if k.endswith(".lambda")})
    rows = []
    rng = np.random.default_rng(seed)
    for name in layers:
        g = lambda f, k: np.asarray(f[f"{name}.{k}"], dtype=np.float64)  # noqa: E731
        row = {"layer": name}
        row["A_cov"] = rel_fro(g(fa, "activation_covariance"), g(fb, "activation_covariance"))
        row["S_cov"] = rel_fro(g(fa, "gradient_covariance"), g(fb, "gradient_covariance"))
        row["A_eigval"] = rel_fro(np.sort(g(fa, "activation_eigenvalues")), np.sort(g(fb, "activation_eigenvalues")))
        row["S_eigval"] = rel_fro(np.sort(g(fa, "gradient_eigenvalues")), np.sort(g(fb, "gradient_eigenvalues")))
        la, lb = g(fa, "lambda"), g(fb, "lambda")
        row["lambda_sorted"] = rel_fro(np.sort(la.ravel()), np.sort(lb.ravel()))
        # Basis-free check: apply both damped EK-FAC inverses to random matrices (same damping,
        # damping_scale * mean(Lambda_A)); invariant to eigenvector signs, order and rotations
        # inside degenerate eigenspaces.
        d = damping_scale * la.mean()
        errs = []
        for _ in range(n_probe):
            v = rng.standard_normal(la.shape)
            pa = ihvp(v, g(fa, "activation_eigenvectors"), g(fa, "gradient_eigenvectors"), la, d)
            pb = ihvp(v, g(fb, "activation_eigenvectors"), g(fb, "gradient_eigenvectors"), lb, d)
            errs.append(rel_fro(pa, pb))
        row["ihvp"] = max(errs)
        rows.append(row)
    return rows


def compare_scores(sa, sb):
    a, b = sa.astype(np.float64), sb.astype(np.float64)
    if a.shape != b.shape:
        raise SystemExit(f"score shapes differ: {a.shape} vs {b.shape}")
    r_all = np.corrcoef(a.ravel(), b.ravel())[0, 1]
    r_rows = [np.corrcoef(x, y)[0, 1] for x, y in zip(a, b)]
    scale = np.abs(a).max()
    return {
        "shape": a.shape,
        "pearson_r": r_all,
        "min_query_r": float(np.min(r_rows)),
        "max_abs_err_over_max_abs": np.abs(a - b).max() / scale,
        "rel_fro": rel_fro(a, b),
        "top10_overlap": float(np.mean([len(set(np.argsort(-x)[:10]) & set(np.argsort(-y)[:10])) / 10
                                        for x, y in zip(a, b)])),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a_dir")
    ap.add_argument("b_dir")
    ap.add_argument("--min-r", type=float, default=0.999)
    ap.add_argument("--damping-scale", type=float, default=0.1)
    args = ap.parse_args()
    fa_path, fb_path = (os.path.join(d, "factors.safetensors") for d in (args.a_dir, args.b_dir))
    if os.path.exists(fa_path) and os.path.exists(fb_path):
        rows = compare_factors(load_file(fa_path), load_file(fb_path), args.damping_scale)
        cols = ["A_cov", "S_cov", "A_eigval", "S_eigval", "lambda_sorted", "ihvp"]
        print("relative Frobenius errors (B vs A):")
        print(f"{'layer':<12}" + "".join(f"{c:>14}" for c in cols))
        for r in rows:
            print(f"{r['layer']:<12}" + "".join(f"{r[c]:>14.3e}" for c in cols))
    else:
        print("factors.safetensors missing in one folder; comparing scores only")
    s = compare_scores(np.load(os.path.join(args.a_dir, "scores.npy")),
                       np.load(os.path.join(args.b_dir, "scores.npy")))
    print(f"scores {s['shape'][0]}x{s['shape'][1]}: pearson r {s['pearson_r']:.6f}  "
          f"min per-query r {s['min_query_r']:.6f}  max|A-B|/max|A| {s['max_abs_err_over_max_abs']:.3e}  "
          f"rel Fro {s['rel_fro']:.3e}  top-10 overlap {s['top10_overlap']:.3f}")
    if not s["pearson_r"] >= args.min_r:
        print(f"FAIL: pearson r {s['pearson_r']:.6f} < {args.min_r}")
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
