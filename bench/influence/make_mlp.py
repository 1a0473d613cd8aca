"""Make a synthetic dataset and a briefly trained small MLP in the shammie influence formats.

usage: make_mlp.py OUT_DIR --task regression|classification --seed S --n-train N --n-query M
writes OUT_DIR/{arch.json, model.safetensors, train.csv, query.csv}
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import MLP, loss_sum, write_csv  # noqa: E402


def make_arch(task):
    if task == "regression":
        return {
            "layers": [
                {"type": "linear", "in": 8, "out": 128, "name": "layers.0"},
                {"type": "relu"},
                {"type": "linear", "in": 128, "out": 128, "name": "layers.2"},
                {"type": "relu"},
                {"type": "linear", "in": 128, "out": 1, "name": "layers.4"},
            ],
            "loss": "mse_sum",
        }
    return {
        "layers": [
            {"type": "linear", "in": 10, "out": 64, "name": "layers.0"},
            {"type": "tanh"},
            {"type": "linear", "in": 64, "out": 64, "name": "layers.2"},
            {"type": "gelu"},
            {"type": "linear", "in": 64, "out": 3, "name": "layers.4"},
        ],
        "loss": "cross_entropy_sum",
    }


def make_data(task, n, rng, teacher=None):
    if task == "regression":
        x = rng.standard_normal((n, 8))
        y = (np.sin(2.0 * x[:, 0]) + 0.5 * x[:, 1] * x[:, 2] + 0.3 * x[:, 3] ** 2
             - 0.4 * x[:, 4] + 0.2 * np.tanh(x[:, 5] + x[:, 6]) + 0.1 * rng.standard_normal(n))
        return x.astype(np.float32), y.astype(np.float32)
    w1, w2 = teacher
    x = rng.standard_normal((n, 10))
    logits = np.tanh(x @ w1) @ w2
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = np.array([rng.choice(3, p=pi) for pi in p], dtype=np.int64)
    return x.astype(np.float32), y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--task", choices=["regression", "classification"], required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--n-query", type=int, default=100)
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    os.makedirs(args.out_dir, exist_ok=True)

    teacher = None
    if args.task == "classification":
        teacher = (rng.standard_normal((10, 16)) * 0.8, rng.standard_normal((16, 3)) * 2.0)
    xtr, ytr = make_data(args.task, args.n_train, rng, teacher)
    xq, yq = make_data(args.task, args.n_query, rng, teacher)

    arch = make_arch(args.task)
    model = MLP(arch)
    X = torch.from_numpy(xtr)
    Y = torch.from_numpy(ytr).unsqueeze(1) if args.task == "regression" else torch.from_numpy(ytr)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(args.steps):
        idx = torch.randint(0, len(X), (min(128, len(X)),))
        loss = loss_sum(arch["loss"], model(X[idx]), Y[idx]) / len(idx)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        full = loss_sum(arch["loss"], model(X), Y).item() / len(X)
    print(f"{args.task}: final mean train loss {full:.4f}")

    from safetensors.torch import save_file

    sd = {k: v.detach().to(torch.float32).contiguous() for k, v in model.state_dict().items()}
    save_file(sd, os.path.join(args.out_dir, "model.safetensors"))
    with open(os.path.join(args.out_dir, "arch.json"), "w") as f:
        json.dump(arch, f, indent=1)
    cls = args.task == "classification"
    write_csv(os.path.join(args.out_dir, "train.csv"), xtr, ytr, cls)
    write_csv(os.path.join(args.out_dir, "query.csv"), xq, yq, cls)


if __name__ == "__main__":
    main()
