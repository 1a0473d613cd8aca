"""kronfluence EK-FAC on a GGUF language model (Gemma 3 270M), the reference for `shammie influence` on LMs.

usage: lm_kron.py SEQUENCES.jsonl GGUF OUT [--fisher empirical|sampled] [--damping heuristic|X]
                  [--seed S] [--dtype float32|float64] [--layers all|0,1,...]
                  [--check-queries Q] [--check-train T]

SEQUENCES.jsonl: one object per line {"set": "fit"|"train"|"query", "id", "ids": [BOS first], "loss_from": K};
the loss / measurement of a sequence is the summed NLL of ids[K:] (positions K-1 .. len-2 predict).
Factors are fitted on the "fit" set (on the "train" set when there is none), scores are pairwise
"query" x "train". The model is loaded with transformers' GGUF support (dequantised to float32,
eager attention) and run at batch size 1 (no padding). Tracked: mlp.gate_proj, mlp.up_proj,
mlp.down_proj of the chosen layers. Writes OUT/scores.npy (float64, n_query x n_train),
OUT/factors.safetensors (float64, layout in README.md), OUT/timing.json, OUT/meta.json, OUT/nll.json.
A self-check then recomputes a block of the scores from factors.safetensors with plain autograd
per-example gradients (one backward per sequence, products in float64) and prints max|diff|/max|s|.
"""
import argparse
import json
import logging
import os
import resource
import shutil
import sys
import tempfile
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from kronfluence.analyzer import Analyzer, prepare_model
from kronfluence.arguments import FactorArguments, ScoreArguments
from kronfluence.module.tracked_module import ModuleMode
from kronfluence.module.utils import set_mode
from kronfluence.task import Task

HEURISTIC_SCALE = 0.1  # kronfluence.utils.constants.HEURISTIC_DAMPING_SCALE
PROJECTIONS = ("gate_proj", "up_proj", "down_proj")
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=UserWarning)


def read_sequences(path):
    sets = {"fit": [], "train": [], "query": []}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            r = json.loads(line)
            s, ids, k = r["set"], [int(t) for t in r["ids"]], int(r["loss_from"])
            if s not in sets:
                sys.exit(f"{path}:{n}: unknown set {s!r}")
            if not 1 <= k < len(ids):
                sys.exit(f"{path}:{n}: loss_from {k} leaves nothing to predict in {len(ids)} tokens")
            sets[s].append({"id": str(r["id"]), "ids": ids, "loss_from": k})
    return sets


class SeqDataset(torch.utils.data.Dataset):
    def __init__(self, seqs):
        self.seqs = seqs

    def __len__(self):
        return len(self.seqs)

    def __getitem__(self, i):
        s = self.seqs[i]
        return {"input_ids": torch.tensor(s["ids"], dtype=torch.long), "loss_from": s["loss_from"]}


def loss_logits(model, input_ids, k):
    """Logits at the loss positions k-1 .. L-2 (rows) of one sequence (batch size 1), and targets."""
    if input_ids.size(0) != 1:
        raise ValueError("batch size must be 1 (no padding)")
    length = input_ids.size(1)
    out = model(input_ids=input_ids, use_cache=False, logits_to_keep=length - k + 1)
    return out.logits[0, :-1], input_ids[0, k:]


class LmTask(Task):
    """Train loss: summed NLL of ids[K:] (data labels, or labels drawn from the model's softmax
    when `sample`); measurement: the same summed NLL with the data labels."""

    def __init__(self, modules):
        self.modules = modules

    def compute_train_loss(self, batch, model, sample=False):
        logits, targets = loss_logits(model, batch["input_ids"], int(batch["loss_from"][0]))
        if sample:
            with torch.no_grad():
                probs = F.softmax(logits.detach().float(), dim=-1)
                targets = torch.multinomial(probs, num_samples=1).flatten()
        return F.cross_entropy(logits.float(), targets, reduction="sum")

    def compute_measurement(self, batch, model):
        return self.compute_train_loss(batch, model, sample=False)

    def get_influence_tracked_modules(self):
        return list(self.modules)

    def get_attention_mask(self, batch):
        return None  # batch size 1, no padding: every token counts


def load_model(gguf):
    from transformers import AutoModelForCausalLM

    folder, name = os.path.dirname(os.path.abspath(gguf)), os.path.basename(gguf)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, attn_implementation="eager",
                                                 dtype=torch.float32)
    model.config.use_cache = False
    return model.eval()


@torch.no_grad()
def sequence_nll(model, seqs):
    out = []
    for s in seqs:
        logits, targets = loss_logits(model, torch.tensor([s["ids"]]), s["loss_from"])
        nll = F.cross_entropy(logits.double(), targets, reduction="sum").item()
        out.append({"id": s["id"], "nll": nll, "tokens": len(targets)})
    return out


def module_names(model, layers):
    n_layers = model.config.num_hidden_layers
    layers = list(range(n_layers)) if layers == "all" else [int(x) for x in layers.split(",")]
    bad = [l for l in layers if not 0 <= l < n_layers]
    if bad:
        sys.exit(f"layers {bad}: the model has {n_layers}")
    return [f"model.layers.{l}.mlp.{p}" for l in layers for p in PROJECTIONS]


def run_kronfluence(model, names, fit, train, query, args, work_dir):
    task = LmTask(names)
    model = prepare_model(model, task)
    analyzer = Analyzer(analysis_name="lm", model=model, task=task, cpu=True, disable_tqdm=True,
                        output_dir=work_dir, log_level=logging.WARNING)
    f64 = args.dtype == "float64"
    fkw = dict(strategy="ekfac", use_empirical_fisher=(args.fisher == "empirical"), amp_dtype=None)
    skw = dict(damping_factor=None if args.damping == "heuristic" else float(args.damping), amp_dtype=None,
               query_gradient_low_rank=None)
    if f64:
        fkw.update(activation_covariance_dtype=torch.float64, gradient_covariance_dtype=torch.float64,
                   eigendecomposition_dtype=torch.float64, per_sample_gradient_dtype=torch.float64,
                   lambda_dtype=torch.float64)
        skw.update(per_sample_gradient_dtype=torch.float64, precondition_dtype=torch.float64,
                   score_dtype=torch.float64)
    fargs, sargs = FactorArguments(**fkw), ScoreArguments(**skw)
    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    analyzer.fit_all_factors(factors_name="f", dataset=SeqDataset(fit), per_device_batch_size=1,
                             factor_args=fargs, overwrite_output_dir=True)
    t1 = time.perf_counter()
    analyzer.compute_pairwise_scores(scores_name="s", factors_name="f", query_dataset=SeqDataset(query),
                                     train_dataset=SeqDataset(train), per_device_query_batch_size=1,
                                     per_device_train_batch_size=1, score_args=sargs,
                                     overwrite_output_dir=True)
    t2 = time.perf_counter()
    scores = analyzer.load_pairwise_scores("s")["all_modules"].to(torch.float64).numpy()

    cov = analyzer.load_covariance_matrices("f")
    eig = analyzer.load_eigendecomposition("f")
    lam = analyzer.load_lambda_matrices("f")
    factors, layers_meta = {}, {}
    for name in names:
        n_a = int(cov["num_activation_covariance_processed"][name].item())
        n_g = int(cov["num_gradient_covariance_processed"][name].item())
        n_l = int(lam["num_lambda_processed"][name].item())
        A = cov["activation_covariance"][name].double() / n_a
        S = cov["gradient_covariance"][name].double() / n_g
        L = lam["lambda_matrix"][name].double() / n_l
        factors[f"{name}.activation_covariance"] = 0.5 * (A + A.T)  # what kronfluence eigendecomposes
        factors[f"{name}.gradient_covariance"] = 0.5 * (S + S.T)
        for k in ["activation_eigenvalues", "activation_eigenvectors", "gradient_eigenvalues",
                  "gradient_eigenvectors"]:
            factors[f"{name}.{k}"] = eig[k][name].double()
        factors[f"{name}.lambda"] = L
        d = HEURISTIC_SCALE * L.mean().item() if args.damping == "heuristic" else float(args.damping)
        layers_meta[name] = {"damping": d, "num_activation_covariance_processed": n_a,
                             "num_gradient_covariance_processed": n_g, "num_lambda_processed": n_l}
    factors = {k: v.contiguous() for k, v in factors.items()}
    return model, factors, scores, {"fit_s": t1 - t0, "scores_s": t2 - t1}, layers_meta


def layer_grads(model, tracked, seq):
    """Per-module gradient (out x in, float64) of one sequence's summed NLL by plain autograd:
    sum over tokens of ds_t a_t^T, ds = autograd's gradient at the projection's output."""
    caught, hooks = {}, []
    for n, m in tracked.items():
        def hook(mod, inp, out, n=n):
            out.retain_grad()
            caught[n] = (inp[0].detach(), out)
        hooks.append(m.register_forward_hook(hook))
    try:
        logits, targets = loss_logits(model, torch.tensor([seq["ids"]]), seq["loss_from"])
        F.cross_entropy(logits.float(), targets, reduction="sum").backward()
    finally:
        for h in hooks:
            h.remove()
    for m in tracked.values():
        m.weight.grad = None
    return {n: out.grad[0].double().T @ a[0].double() for n, (a, out) in caught.items()}


def self_check(model, names, factors, layers_meta, train, query, scores, nq, nt):
    """Recompute scores[:nq, :nt] from the written factors and autograd per-example gradients."""
    set_mode(model, ModuleMode.DEFAULT, release_memory=True)
    tracked = {n: model.get_submodule(n) for n in names}
    tracked = {n: getattr(m, "original_module", m) for n, m in tracked.items()}
    for m in tracked.values():
        m.weight.requires_grad_(True)
    pre = []
    for q in query[:nq]:
        g = layer_grads(model, tracked, q)
        p = {}
        for n in names:
            qa, qs = factors[f"{n}.activation_eigenvectors"], factors[f"{n}.gradient_eigenvectors"]
            r = (qs.T @ g[n] @ qa) / (factors[f"{n}.lambda"] + layers_meta[n]["damping"])
            p[n] = qs @ r @ qa.T
        pre.append(p)
    again = np.zeros((len(pre), min(nt, len(train))))
    for j, t in enumerate(train[:nt]):
        g = layer_grads(model, tracked, t)
        for i, p in enumerate(pre):
            again[i, j] = sum(float((p[n] * g[n]).sum()) for n in names)
    for m in tracked.values():
        m.weight.requires_grad_(False)
        m.weight.grad = None
    ref = scores[: again.shape[0], : again.shape[1]]
    return float(np.abs(again - ref).max() / np.abs(ref).max()), again


def versions():
    import kronfluence
    import transformers

    v = {"torch": torch.__version__, "transformers": transformers.__version__,
         "kronfluence": getattr(kronfluence, "__version__", "?"), "numpy": np.__version__,
         "python": sys.version.split()[0]}
    try:
        import gguf

        v["gguf"] = getattr(gguf, "__version__", None) or __import__("importlib.metadata").metadata.version("gguf")
    except Exception:  # noqa: BLE001
        pass
    return v


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sequences")
    ap.add_argument("gguf")
    ap.add_argument("out_dir")
    ap.add_argument("--fisher", choices=["empirical", "sampled"], default="empirical")
    ap.add_argument("--damping", default="heuristic", help="'heuristic' (0.1 * mean Lambda per module) or a number")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                    help="float32: kronfluence's default dtypes; float64: every factor/score dtype float64")
    ap.add_argument("--layers", default="all", help="'all' or comma-separated layer indices")
    ap.add_argument("--check-queries", type=int, default=1, help="self-check block rows (0: no check)")
    ap.add_argument("--check-train", type=int, default=4, help="self-check block columns")
    args = ap.parse_args()
    if args.damping != "heuristic":
        float(args.damping)
    torch.set_num_threads(2)
    from safetensors.torch import save_file

    sets = read_sequences(args.sequences)
    fit_source = "fit" if sets["fit"] else "train"
    fit, train, query = sets[fit_source], sets["train"], sets["query"]
    if not train or not query:
        sys.exit(f"{args.sequences}: need train and query sequences (have {len(train)} train, {len(query)} query)")

    t0 = time.perf_counter()
    model = load_model(args.gguf)
    load_s = time.perf_counter() - t0
    vocab = model.config.vocab_size
    for s in fit + train + query:
        if max(s["ids"]) >= vocab or min(s["ids"]) < 0:
            sys.exit(f"sequence {s['id']}: token id out of range (vocab {vocab})")
    names = module_names(model, args.layers)

    t0 = time.perf_counter()
    nll = {k: sequence_nll(model, v) for k, v in sets.items() if v}
    nll_s = time.perf_counter() - t0
    for k, rows in nll.items():
        tot, tok = sum(r["nll"] for r in rows), sum(r["tokens"] for r in rows)
        print(f"{k:<6} {len(rows):4d} sequences, {tok:6d} loss tokens: mean NLL/token {tot / tok:.6f} nats")

    os.makedirs(args.out_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="lm_kron_")
    try:
        model, factors, scores, timing, layers_meta = run_kronfluence(model, names, fit, train, query, args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    timing["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    timing["load_s"], timing["nll_s"] = load_s, nll_s
    timing["threads"] = torch.get_num_threads()
    timing.update({f"n_{k}": len(v) for k, v in (("fit", fit), ("train", train), ("query", query))})
    timing.update({f"tokens_{k}": sum(len(s["ids"]) for s in v)
                   for k, v in (("fit", fit), ("train", train), ("query", query))})
    timing["versions"] = versions()
    save_file(factors, os.path.join(args.out_dir, "factors.safetensors"))
    np.save(os.path.join(args.out_dir, "scores.npy"), scores)
    meta = {"fisher": args.fisher, "damping_arg": args.damping, "seed": args.seed, "dtype": args.dtype,
            "gguf": os.path.abspath(args.gguf), "sequences": os.path.abspath(args.sequences),
            "fit_set": fit_source, "modules": names, "query_ids": [s["id"] for s in query],
            "train_ids": [s["id"] for s in train], "layers": layers_meta,
            "mean_nll_per_token": {k: sum(r["nll"] for r in v) / sum(r["tokens"] for r in v)
                                   for k, v in nll.items()}}
    with open(os.path.join(args.out_dir, "nll.json"), "w") as f:
        json.dump(nll, f, indent=1)
    if args.check_queries > 0:
        t0 = time.perf_counter()
        err, _ = self_check(model, names, factors, layers_meta, train, query, scores,
                            args.check_queries, args.check_train)
        meta["self_check_max_rel_err"] = err
        meta["self_check_block"] = [min(args.check_queries, len(query)), min(args.check_train, len(train))]
        print(f"self-check: scores[:{meta['self_check_block'][0]}, :{meta['self_check_block'][1]}] recomputed "
              f"from factors.safetensors with autograd gradients, max|diff|/max|s| = {err:.2e} "
              f"({time.perf_counter() - t0:.1f} s)")
    with open(os.path.join(args.out_dir, "timing.json"), "w") as f:
        json.dump(timing, f, indent=1)
    with open(os.path.join(args.out_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(json.dumps(timing))


if __name__ == "__main__":
    main()
