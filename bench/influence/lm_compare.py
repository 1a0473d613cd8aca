"""Compare two language-model EK-FAC result folders (factors.safetensors + scores.npy), e.g.
lm_kron.py's (A, the reference) and `shammie influence`'s (B).

usage: lm_compare.py A_DIR B_DIR [--min-r 0.99] [--damping-scale 0.1] [--top 10] [--no-factors]

Factors (modules present in both; tensors read one module at a time, any float dtype): relative
Frobenius error of the activation and gradient covariances, of the sorted eigenvalues, of the
sorted Lambda entries, and `ihvp` (both damped EK-FAC inverses, same damping
damping_scale * mean(Lambda_A), applied to 2 seeded random matrices: basis-free), as compare.py.
Scores: Pearson r of all entries, r of each query's row, max|A-B|/max|A|, relative Frobenius,
mean top-k overlap (k = min(--top, n_train)). With nll.json in both folders (lm_kron.py's format:
{set: [{"id", "nll", "tokens"}]}), also the per-sequence NLL difference. Exit 1 if r < --min-r.
"""
import argparse
import json
import os
import sys

import numpy as np
from safetensors import safe_open

KINDS = ["activation_covariance", "gradient_covariance", "activation_eigenvalues", "activation_eigenvectors",
         "gradient_eigenvalues", "gradient_eigenvectors", "lambda"]


def rel_fro(a, b):
    den = np.linalg.norm(a)
    return np.linalg.norm(a - b) / den if den > 0 else np.linalg.norm(b)


def ihvp(v, qa, qs, lam, damping):
    return qs @ (((qs.T @ v @ qa) / (lam + damping)) @ qa.T)


class Factors:
    def __init__(self, path):
        self.f = safe_open(path, framework="numpy")
        self.keys = set(self.f.keys())
        self.modules = sorted({k.rsplit(".", 1)[0] for k in self.keys if k.endswith(".lambda")},
                              key=module_order)

    def get(self, module, kind):
        return np.asarray(self.f.get_tensor(f"{module}.{kind}"), dtype=np.float64)


def module_order(name):
    parts = name.split(".")
    key = []
    for p in parts:
        key.append((0, int(p), "") if p.isdigit() else (1, 0, {"gate_proj": "0", "up_proj": "1",
                                                                   "down_proj": "2"}.get(p, p)))
    return key


def compare_module(fa, fb, m, damping_scale, rng, n_probe=2):
    row = {}
    for k, short in (("activation_covariance", "A_cov"), ("gradient_covariance", "S_cov")):
        row[short] = rel_fro(fa.get(m, k), fb.get(m, k))
    for k, short in (("activation_eigenvalues", "A_eigval"), ("gradient_eigenvalues", "S_eigval")):
        row[short] = rel_fro(np.sort(fa.get(m, k)), np.sort(fb.get(m, k)))
    la, lb = fa.get(m, "lambda"), fb.get(m, "lambda")
    if la.shape != lb.shape:
        raise SystemExit(f"{m}: lambda shapes differ: {la.shape} vs {lb.shape}")
    row["lambda_sorted"] = rel_fro(np.sort(la.ravel()), np.sort(lb.ravel()))
    d = damping_scale * la.mean()
    qa_a, qs_a = fa.get(m, "activation_eigenvectors"), fa.get(m, "gradient_eigenvectors")
    qa_b, qs_b = fb.get(m, "activation_eigenvectors"), fb.get(m, "gradient_eigenvectors")
    errs = []
    for _ in range(n_probe):
        v = rng.standard_normal(la.shape)
        errs.append(rel_fro(ihvp(v, qa_a, qs_a, la, d), ihvp(v, qa_b, qs_b, lb, d)))
    row["ihvp"] = max(errs)
    return row


def compare_scores(a, b, top):
    a, b = a.astype(np.float64), b.astype(np.float64)
    if a.shape != b.shape:
        raise SystemExit(f"score shapes differ: {a.shape} vs {b.shape}")
    k = min(top, a.shape[1])

    def r(x, y):
        return float(np.corrcoef(x, y)[0, 1]) if x.size > 1 and x.std() > 0 and y.std() > 0 else float("nan")

    return {
        "shape": a.shape,
        "pearson_r": r(a.ravel(), b.ravel()),
        "query_r": [r(x, y) for x, y in zip(a, b)],
        "max_abs_err_over_max_abs": float(np.abs(a - b).max() / np.abs(a).max()),
        "rel_fro": float(rel_fro(a, b)),
        "top_k": k,
        "top_k_overlap": float(np.mean([len(set(np.argsort(-x)[:k]) & set(np.argsort(-y)[:k])) / k
                                        for x, y in zip(a, b)])),
        "sign_agreement": float(np.mean(np.sign(a) == np.sign(b))),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a_dir")
    ap.add_argument("b_dir")
    ap.add_argument("--min-r", type=float, default=0.99)
    ap.add_argument("--damping-scale", type=float, default=0.1)
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--no-factors", action="store_true", help="compare the scores only")
    args = ap.parse_args()

    fa_path, fb_path = (os.path.join(d, "factors.safetensors") for d in (args.a_dir, args.b_dir))
    if not args.no_factors and os.path.exists(fa_path) and os.path.exists(fb_path):
        fa, fb = Factors(fa_path), Factors(fb_path)
        both = [m for m in fa.modules if m in set(fb.modules)]
        for side, f, other in (("A", fa, fb), ("B", fb, fa)):
            only = [m for m in f.modules if m not in set(other.modules)]
            if only:
                print(f"modules only in {side} ({len(only)}): {', '.join(only[:6])}{' ...' if len(only) > 6 else ''}")
        cols = ["A_cov", "S_cov", "A_eigval", "S_eigval", "lambda_sorted", "ihvp"]
        width = max([len(m) for m in both] + [6])
        print("relative Frobenius errors (B vs A):")
        print(f"{'module':<{width}}" + "".join(f"{c:>14}" for c in cols))
        rng = np.random.default_rng(0)
        worst = {c: 0.0 for c in cols}
        for m in both:
            row = compare_module(fa, fb, m, args.damping_scale, rng)
            worst = {c: max(worst[c], row[c]) for c in cols}
            print(f"{m:<{width}}" + "".join(f"{row[c]:>14.3e}" for c in cols))
        if len(both) > 1:
            print(f"{'max':<{width}}" + "".join(f"{worst[c]:>14.3e}" for c in cols))
    elif not args.no_factors:
        print("factors.safetensors missing in one folder; comparing scores only")

    s = compare_scores(np.load(os.path.join(args.a_dir, "scores.npy")),
                       np.load(os.path.join(args.b_dir, "scores.npy")), args.top)
    qids = None
    meta_a = os.path.join(args.a_dir, "meta.json")
    if os.path.exists(meta_a):
        qids = json.load(open(meta_a)).get("query_ids")
    print(f"scores {s['shape'][0]}x{s['shape'][1]}: pearson r {s['pearson_r']:.6f}  "
          f"max|A-B|/max|A| {s['max_abs_err_over_max_abs']:.3e}  rel Fro {s['rel_fro']:.3e}  "
          f"top-{s['top_k']} overlap {s['top_k_overlap']:.3f}  sign agreement {s['sign_agreement']:.3f}")
    rs = np.array(s["query_r"])
    if len(rs) > 1:
        print(f"per-query r: min {np.nanmin(rs):.6f}  median {np.nanmedian(rs):.6f}  mean {np.nanmean(rs):.6f}")
    for i, r in enumerate(rs[:20]):
        print(f"  query {qids[i] if qids and i < len(qids) else i}: r {r:.6f}")
    if len(rs) > 20:
        print(f"  ... ({len(rs) - 20} more)")

    na, nb = (os.path.join(d, "nll.json") for d in (args.a_dir, args.b_dir))
    if os.path.exists(na) and os.path.exists(nb):
        a, b = json.load(open(na)), json.load(open(nb))
        for st in a:
            if st not in b:
                continue
            bi = {r["id"]: r for r in b[st]}
            d = [(r["nll"] - bi[r["id"]]["nll"]) / r["tokens"] for r in a[st] if r["id"] in bi]
            if d:
                print(f"nll {st}: {len(d)} sequences, max |A-B| per token {np.abs(d).max():.3e} nats, "
                      f"mean (A-B) per token {np.mean(d):+.3e}")

    if not s["pearson_r"] >= args.min_r:
        print(f"FAIL: pearson r {s['pearson_r']:.6f} < {args.min_r}")
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
