"""Run kronfluence EK-FAC on a shammie-format MLP and write the reference outputs.

usage: kron.py MODEL_DIR OUT_DIR --fisher empirical|sampled --damping X|heuristic --seed S
writes OUT_DIR/factors.safetensors (float64, layout in README.md), scores.npy (float64,
n_query x n_train), timing.json (wall seconds, peak RSS) and meta.json (damping used per layer).
"""
import argparse
import warnings
import json
import logging
import math
import os
import resource
import shutil
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ekfac_ihvp, linear_names, load_csv, load_model, loss_sum, per_example_grads  # noqa: E402

from kronfluence.analyzer import Analyzer, prepare_model  # noqa: E402
from kronfluence.arguments import FactorArguments, ScoreArguments  # noqa: E402
from kronfluence.task import Task  # noqa: E402

HEURISTIC_SCALE = 0.1  # kronfluence.utils.constants.HEURISTIC_DAMPING_SCALE
warnings.filterwarnings("ignore", category=FutureWarning)


class MlpTask(Task):
    def __init__(self, loss):
        self.loss = loss

    def compute_train_loss(self, batch, model, sample=False):
        x, y = batch
        out = model(x)
        if sample:
            with torch.no_grad():
                if self.loss == "mse_sum":
                    # (y - t)^2 is the Gaussian NLL with variance 1/2 (kronfluence's UCI example/tests)
                    y = torch.normal(out.detach(), std=math.sqrt(0.5))
                else:
                    y = torch.multinomial(F.softmax(out.detach(), dim=-1), num_samples=1).flatten()
        return loss_sum(self.loss, out, y)

    def compute_measurement(self, batch, model):
        return self.compute_train_loss(batch, model, sample=False)


class PairDataset(torch.utils.data.Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], self.y[i]


def run_kronfluence(arch, model, xtr, ytr, xq, yq, fisher, damping, seed, work_dir, batch=256):
    """Returns (factors dict in the shammie layout, scores ndarray, timings, meta)."""
    task = MlpTask(arch["loss"])
    model = prepare_model(model, task)
    analyzer = Analyzer(analysis_name="ref", model=model, task=task, cpu=True,
                        disable_tqdm=True, output_dir=work_dir, log_level=logging.WARNING)
    fargs = FactorArguments(
        strategy="ekfac",
        use_empirical_fisher=(fisher == "empirical"),
        amp_dtype=None,
        activation_covariance_dtype=torch.float64,
        gradient_covariance_dtype=torch.float64,
        eigendecomposition_dtype=torch.float64,
        per_sample_gradient_dtype=torch.float64,
        lambda_dtype=torch.float64,
    )
    sargs = ScoreArguments(
        damping_factor=None if damping == "heuristic" else float(damping),
        amp_dtype=None,
        query_gradient_low_rank=None,
        per_sample_gradient_dtype=torch.float64,
        precondition_dtype=torch.float64,
        score_dtype=torch.float64,
    )
    train = PairDataset(xtr, ytr)
    query = PairDataset(xq, yq)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    analyzer.fit_all_factors(factors_name="f", dataset=train, per_device_batch_size=batch,
                             factor_args=fargs, overwrite_output_dir=True)
    t1 = time.perf_counter()
    analyzer.compute_pairwise_scores(scores_name="s", factors_name="f", query_dataset=query,
                                     train_dataset=train, per_device_query_batch_size=len(query),
                                     per_device_train_batch_size=batch, score_args=sargs,
                                     overwrite_output_dir=True)
    t2 = time.perf_counter()
    scores = analyzer.load_pairwise_scores("s")["all_modules"].to(torch.float64).numpy()

    cov = analyzer.load_covariance_matrices("f")
    eig = analyzer.load_eigendecomposition("f")
    lam = analyzer.load_lambda_matrices("f")
    factors, meta = {}, {"fisher": fisher, "damping_arg": damping, "seed": seed, "layers": {}}
    for name in linear_names(arch):
        n_a = int(cov["num_activation_covariance_processed"][name].item())
        n_g = int(cov["num_gradient_covariance_processed"][name].item())
        n_l = int(lam["num_lambda_processed"][name].item())
        A = cov["activation_covariance"][name].double() / n_a
        S = cov["gradient_covariance"][name].double() / n_g
        L = lam["lambda_matrix"][name].double() / n_l
        factors[f"{name}.activation_covariance"] = 0.5 * (A + A.T)  # kronfluence symmetrises before eigh
        factors[f"{name}.gradient_covariance"] = 0.5 * (S + S.T)
        for k in ["activation_eigenvalues", "activation_eigenvectors", "gradient_eigenvalues",
                  "gradient_eigenvectors"]:
            factors[f"{name}.{k}"] = eig[k][name].double()
        factors[f"{name}.lambda"] = L
        d = HEURISTIC_SCALE * L.mean().item() if damping == "heuristic" else float(damping)
        meta["layers"][name] = {"damping": d, "num_activation_covariance_processed": n_a,
                                "num_gradient_covariance_processed": n_g, "num_lambda_processed": n_l}
    factors = {k: v.contiguous() for k, v in factors.items()}
    return factors, scores, {"fit_s": t1 - t0, "scores_s": t2 - t1}, meta


def recompute_scores(arch, model_dir, factors, meta, xtr, ytr, xq, yq):
    """Independent check: EK-FAC scores from the written factors and plain autograd gradients."""
    _, model = load_model(model_dir)
    gq = per_example_grads(model, arch, xq, yq)
    gt = per_example_grads(model, arch, xtr, ytr)
    s = 0
    for name in linear_names(arch):
        p = ekfac_ihvp(gq[name], factors[f"{name}.activation_eigenvectors"],
                       factors[f"{name}.gradient_eigenvectors"], factors[f"{name}.lambda"],
                       meta["layers"][name]["damping"])
        s = s + torch.einsum("qoi,toi->qt", p, gt[name])
    return s.numpy()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--fisher", choices=["empirical", "sampled"], default="empirical")
    ap.add_argument("--damping", default="heuristic")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--no-check", action="store_true", help="skip the independent recomputation")
    args = ap.parse_args()
    torch.set_num_threads(2)
    from safetensors.torch import save_file

    arch, model = load_model(args.model_dir)
    xtr, ytr = load_csv(os.path.join(args.model_dir, "train.csv"), arch["loss"])
    xq, yq = load_csv(os.path.join(args.model_dir, "query.csv"), arch["loss"])
    os.makedirs(args.out_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="kron_")
    try:
        factors, scores, timing, meta = run_kronfluence(arch, model, xtr, ytr, xq, yq, args.fisher,
                                                        args.damping, args.seed, work, args.batch)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    timing["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    timing["threads"] = torch.get_num_threads()
    timing["n_train"], timing["n_query"] = len(xtr), len(xq)
    save_file(factors, os.path.join(args.out_dir, "factors.safetensors"))
    np.save(os.path.join(args.out_dir, "scores.npy"), scores)
    if not args.no_check:
        again = recompute_scores(arch, args.model_dir, factors, meta, xtr, ytr, xq, yq)
        err = np.abs(again - scores).max() / np.abs(scores).max()
        meta["self_check_max_rel_err"] = float(err)
        print(f"self-check: scores recomputed from factors.safetensors, max |diff|/max|s| = {err:.2e}")
    with open(os.path.join(args.out_dir, "timing.json"), "w") as f:
        json.dump(timing, f, indent=1)
    with open(os.path.join(args.out_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(json.dumps(timing))


if __name__ == "__main__":
    main()
