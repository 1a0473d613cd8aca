"""Sampled-label (true Fisher) gradient covariances: kronfluence vs `shammie influence fit --fisher sampled`.

usage: sampled_fisher.py [--out DIR] [--seeds K] [--shammie BIN] [--tasks regression,classification]
                         [--n-train-regression N] [--n-train-classification N]

On the small MLPs of make_mlp.py (regression 8-128-128-1 relu / mse_sum, seed 0; classification
10-64-64-3 tanh,gelu / cross_entropy_sum, seed 1), fits the gradient covariance S of every layer
with labels drawn from the model (seeds 0..K-1), by kronfluence (kron.py's task: y ~ N(out, 1/2)
for mse_sum, y ~ softmax(out) for cross entropy, torch's generator) and by
`BIN influence fit --fisher sampled --seed S` (Rust's generator). The two draw the labels from
the same distribution with different generators, so the distance between the two implementations'
S should be the distance between two seeds of one implementation (and sqrt(2) times the distance
of one draw to the exact expectation E_y[S]). Also reported: each one's distance to the
empirical-Fisher S (data labels) and to the exact expectation, computed in closed form per example:
S* = (1/N) sum_n 2 J_n J_n^T for mse_sum, (1/N) sum_n sum_c p_nc g_nc g_nc^T for cross entropy
(J_n = d out / d s_n, g_nc = the loss gradient at s_n for label c).
Distances: ||X - Y||_F / ||S*||_F per layer; mean +- sd over seeds (pairs of seeds for within one
implementation, all K x K pairs across the two); mean(kron)-S* is the distance of the average over
seeds (shrinks like 1/sqrt(K) when unbiased); ratio = rms(kron-rust) / sqrt(rms(kron-S*)^2 +
rms(rust-S*)^2), about 1 for independent unbiased draws. The activation covariance A does not depend on
the labels: its kronfluence-vs-shammie distance checks that both saw the same model and data.
"""
import argparse
import itertools
import json
import logging
import os
import subprocess
import sys
import tempfile
import shutil

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import linear_names, load_csv, load_model, loss_sum  # noqa: E402
from kron import MlpTask, PairDataset  # noqa: E402

from kronfluence.analyzer import Analyzer, prepare_model  # noqa: E402
from kronfluence.arguments import FactorArguments  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))


def kron_factors(model_dir, fisher, seed, batch=256):
    """kronfluence covariances (float64 everywhere): {layer: (A, S)} normalised and symmetrised."""
    arch, model = load_model(model_dir)
    x, y = load_csv(os.path.join(model_dir, "train.csv"), arch["loss"])
    task = MlpTask(arch["loss"])
    model = prepare_model(model, task)
    work = tempfile.mkdtemp(prefix="sf_")
    try:
        an = Analyzer(analysis_name="sf", model=model, task=task, cpu=True, disable_tqdm=True,
                      output_dir=work, log_level=logging.WARNING)
        f64 = torch.float64
        fargs = FactorArguments(strategy="ekfac", use_empirical_fisher=(fisher == "empirical"), amp_dtype=None,
                                activation_covariance_dtype=f64, gradient_covariance_dtype=f64,
                                eigendecomposition_dtype=f64, per_sample_gradient_dtype=f64, lambda_dtype=f64)
        torch.manual_seed(seed)
        an.fit_all_factors(factors_name="f", dataset=PairDataset(x, y), per_device_batch_size=batch,
                           factor_args=fargs, overwrite_output_dir=True)
        cov = an.load_covariance_matrices("f")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = {}
    for name in linear_names(arch):
        A = cov["activation_covariance"][name].double() / int(cov["num_activation_covariance_processed"][name])
        S = cov["gradient_covariance"][name].double() / int(cov["num_gradient_covariance_processed"][name])
        out[name] = (0.5 * (A + A.T)).numpy(), (0.5 * (S + S.T)).numpy()
    return out


def shammie_factors(bin_path, model_dir, fisher, seed, out_dir):
    from safetensors.numpy import load_file

    os.makedirs(out_dir, exist_ok=True)
    cmd = [bin_path, "influence", "fit", "--model", os.path.join(model_dir, "model.safetensors"),
           "--arch", os.path.join(model_dir, "arch.json"), "--train", os.path.join(model_dir, "train.csv"),
           "--out", out_dir, "--fisher", fisher, "--seed", str(seed)]
    env = dict(os.environ, RAYON_NUM_THREADS="2", OMP_NUM_THREADS="2")
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    f = load_file(os.path.join(out_dir, "factors.safetensors"))
    arch = json.load(open(os.path.join(model_dir, "arch.json")))
    return {name: (np.asarray(f[f"{name}.activation_covariance"], np.float64),
                   np.asarray(f[f"{name}.gradient_covariance"], np.float64)) for name in linear_names(arch)}


def layer_output_grads(model, arch, x, objective):
    """d objective / d (each linear layer's output), rows = examples."""
    outs, h = {}, x
    for layer, mod in zip(arch["layers"], model.layers):
        h = mod(h)
        if layer["type"] == "linear":
            h.retain_grad()
            outs[layer["name"]] = h
    objective(h).backward()
    g = {n: o.grad.detach().clone() for n, o in outs.items()}
    model.zero_grad(set_to_none=True)
    return g, h.detach()


def exact_expected_S(model_dir):
    """E over labels drawn from the model of the gradient covariance, in closed form."""
    arch, model = load_model(model_dir)
    x, _ = load_csv(os.path.join(model_dir, "train.csv"), arch["loss"])
    n = x.shape[0]
    if arch["loss"] == "mse_sum":
        # ds = 2 (out - t) J, t ~ N(out, 1/2): E[ds ds^T] = 4 * 1/2 * J J^T
        j, _ = layer_output_grads(model, arch, x, lambda out: out.sum())
        return {k: (2.0 * v.T @ v / n).numpy() for k, v in j.items()}
    with torch.no_grad():
        p = F.softmax(model(x), dim=-1)
    S = None
    for c in range(p.shape[1]):
        yc = torch.full((n,), c, dtype=torch.long)
        g, _ = layer_output_grads(model, arch, x, lambda out: loss_sum("cross_entropy_sum", out, yc))
        part = {k: (v * p[:, c:c + 1]).T @ v / n for k, v in g.items()}
        S = part if S is None else {k: S[k] + part[k] for k in S}
    return {k: v.numpy() for k, v in S.items()}


def ms(v):
    v = np.asarray(v, dtype=np.float64)
    return f"{v.mean():.3f}±{v.std(ddof=1) if len(v) > 1 else 0.0:.3f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "runs", "influence_bench", "sampled_fisher"))
    ap.add_argument("--seeds", type=int, default=5, help="seeds 0..K-1 for each implementation")
    ap.add_argument("--shammie", default=os.path.join(ROOT, "target", "release", "shammie"))
    ap.add_argument("--tasks", default="regression,classification")
    ap.add_argument("--n-train-regression", type=int, default=1000)
    ap.add_argument("--n-train-classification", type=int, default=2000)
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()
    torch.set_num_threads(2)
    have_rust = os.path.exists(args.shammie)
    if not have_rust:
        print(f"{args.shammie} not found: kronfluence side only (build: cargo build --release -p shammie)")
    seeds = list(range(args.seeds))
    summary = {}
    for task in args.tasks.split(","):
        ntr = args.n_train_regression if task == "regression" else args.n_train_classification
        mseed = 0 if task == "regression" else 1
        m = os.path.join(args.out, task)
        subprocess.run([args.python, os.path.join(HERE, "make_mlp.py"), m, "--task", task, "--seed", str(mseed),
                        "--n-train", str(ntr), "--n-query", "10"], check=True, stdout=subprocess.DEVNULL)
        arch = json.load(open(os.path.join(m, "arch.json")))
        layers = linear_names(arch)
        exact = exact_expected_S(m)
        emp = kron_factors(m, "empirical", 0)
        kr = [kron_factors(m, "sampled", s) for s in seeds]
        rs = [shammie_factors(args.shammie, m, "sampled", s, os.path.join(m, f"shammie_sampled_{s}"))
              for s in seeds] if have_rust else []
        rs_emp = shammie_factors(args.shammie, m, "empirical", 0, os.path.join(m, "shammie_empirical")) \
            if have_rust else None

        print(f"\n== {task} ({ntr} train rows, {len(seeds)} seeds; distances ||X-Y||_F / ||S*||_F of the "
              f"gradient covariance S, S* = exact expectation over sampled labels)")
        cols = ["kron-kron", "rust-rust", "kron-rust", "kron-S*", "rust-S*", "kron-emp", "rust-emp",
                "mean(kron)-S*", "mean(rust)-S*", "ratio"]
        print(f"{'layer':<9}" + "".join(f"{c:>15}" for c in cols))
        summary[task] = {}
        for L in layers:
            nrm = np.linalg.norm(exact[L])
            d = lambda a, b: np.linalg.norm(a - b) / nrm  # noqa: E731
            row = {
                "kron-kron": [d(kr[i][L][1], kr[j][L][1]) for i, j in itertools.combinations(range(len(kr)), 2)],
                "rust-rust": [d(rs[i][L][1], rs[j][L][1]) for i, j in itertools.combinations(range(len(rs)), 2)],
                "kron-rust": [d(a[L][1], b[L][1]) for a in kr for b in rs],
                "kron-S*": [d(a[L][1], exact[L]) for a in kr],
                "rust-S*": [d(b[L][1], exact[L]) for b in rs],
                "kron-emp": [d(a[L][1], emp[L][1]) for a in kr],
                "rust-emp": [d(b[L][1], emp[L][1]) for b in rs],
                "mean(kron)-S*": [d(np.mean([a[L][1] for a in kr], 0), exact[L])],
                "mean(rust)-S*": [d(np.mean([b[L][1] for b in rs], 0), exact[L])] if rs else [],
            }
            # independent unbiased draws: E||X-Y||^2 = E||X-S*||^2 + E||Y-S*||^2, so ratio ~ 1
            rms = lambda v: np.sqrt(np.mean(np.square(v)))  # noqa: E731
            row["ratio"] = [rms(row["kron-rust"]) / np.sqrt(rms(row["kron-S*"]) ** 2 + rms(row["rust-S*"]) ** 2)] \
                if rs else []
            cells = []
            for c in cols:
                v = row[c]
                if not v:
                    cells.append("-")
                elif len(v) == 1:
                    cells.append(f"{v[0]:.3f}")
                else:
                    cells.append(ms(v))
            print(f"{L:<9}" + "".join(f"{c:>15}" for c in cells))
            summary[task][L] = {k: [float(x) for x in v] for k, v in row.items()}
            if rs:
                summary[task][L]["A_kron_vs_rust_max"] = max(
                    float(np.linalg.norm(a[L][0] - b[L][0]) / np.linalg.norm(a[L][0])) for a in kr for b in rs)
                summary[task][L]["S_empirical_kron_vs_rust"] = float(
                    np.linalg.norm(emp[L][1] - rs_emp[L][1]) / np.linalg.norm(emp[L][1]))
        if rs:
            a_max = max(summary[task][L]["A_kron_vs_rust_max"] for L in layers)
            e_max = max(summary[task][L]["S_empirical_kron_vs_rust"] for L in layers)
            print(f"checks: A (label-free) kron vs rust max rel. Frobenius {a_max:.2e}; "
                  f"empirical-Fisher S kron vs rust {e_max:.2e}")
        print("expected for unbiased draws from the same distribution: kron-kron ≈ rust-rust ≈ kron-rust "
              "≈ sqrt(2) × kron-S*; ratio = rms(kron-rust) / sqrt(rms(kron-S*)² + rms(rust-S*)²) ≈ 1; "
              f"mean(·)-S* ≈ (·-S*)/sqrt({len(seeds)})")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(f"\nwrote {os.path.join(args.out, 'summary.json')}")


if __name__ == "__main__":
    main()
