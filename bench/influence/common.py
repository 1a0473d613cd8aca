"""Shared helpers for the EK-FAC reference scripts (arch.json / safetensors / CSV formats)."""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ACTS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


class MLP(nn.Module):
    """Sequential MLP stored under `layers`, so linear i is named `layers.{i}`."""

    def __init__(self, arch):
        super().__init__()
        mods = []
        for i, layer in enumerate(arch["layers"]):
            if layer["type"] == "linear":
                if layer.get("name", f"layers.{i}") != f"layers.{i}":
                    raise ValueError(f"linear at position {i} must be named layers.{i}")
                mods.append(nn.Linear(layer["in"], layer["out"]))
            else:
                mods.append(ACTS[layer["type"]]())
        self.layers = nn.Sequential(*mods)

    def forward(self, x):
        return self.layers(x)


def linear_names(arch):
    return [l["name"] for l in arch["layers"] if l["type"] == "linear"]


def load_arch(model_dir):
    with open(os.path.join(model_dir, "arch.json")) as f:
        return json.load(f)


def load_model(model_dir, dtype=torch.float64):
    from safetensors.torch import load_file

    arch = load_arch(model_dir)
    model = MLP(arch)
    sd = load_file(os.path.join(model_dir, "model.safetensors"))
    model.load_state_dict({k: v for k, v in sd.items()})
    return arch, model.to(dtype)


def load_csv(path, loss):
    data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    x = torch.from_numpy(data[:, :-1].copy())
    if loss == "cross_entropy_sum":
        y = torch.from_numpy(data[:, -1].astype(np.int64))
    else:
        y = torch.from_numpy(data[:, -1:].copy())
    return x, y


def write_csv(path, x, y, classification):
    x = np.asarray(x, dtype=np.float64)
    with open(path, "w") as f:
        f.write(",".join([f"x{i}" for i in range(x.shape[1])] + ["y"]) + "\n")
        for row, t in zip(x, y):
            # float32 values printed exactly (%.17g of the float64 widening) so f32 and f64 parsers agree
            cells = ["%.17g" % float(np.float32(v)) for v in row]
            cells.append(str(int(t)) if classification else "%.17g" % float(np.float32(t)))
            f.write(",".join(cells) + "\n")


def loss_sum(name, out, y):
    if name == "mse_sum":
        return F.mse_loss(out, y, reduction="sum")
    if name == "cross_entropy_sum":
        return F.cross_entropy(out, y, reduction="sum")
    raise ValueError(name)


def per_example_grads(model, arch, x, y, objective=None):
    """Per-example gradient of each linear layer, shape (N, out, in+1), bias column last.

    The summed loss makes row n of d(loss)/d(layer output) depend on example n only, so one
    backward pass gives every per-example gradient: G_n = ds_n [a_n, 1]^T.
    `objective(output)` replaces the summed loss when given (it must be a sum over examples).
    """
    acts, outs = {}, {}
    h = x
    names = {}
    for i, (layer, mod) in enumerate(zip(arch["layers"], model.layers)):
        if layer["type"] == "linear":
            acts[layer["name"]] = h.detach()
            h = mod(h)
            h.retain_grad()
            outs[layer["name"]] = h
        else:
            h = mod(h)
    loss = loss_sum(arch["loss"], h, y) if objective is None else objective(h)
    loss.backward()
    grads = {}
    for name in linear_names(arch):
        a = acts[name]
        abar = torch.cat([a, torch.ones(a.shape[0], 1, dtype=a.dtype)], dim=1)
        grads[name] = torch.einsum("no,ni->noi", outs[name].grad.detach(), abar)
    model.zero_grad(set_to_none=True)
    return grads


def ekfac_ihvp(v, qa, qs, lam, damping):
    """Q_S [(Q_S^T V Q_A) / (Lambda + damping)] Q_A^T for V of shape (..., out, in+1)."""
    r = qs.T @ v @ qa
    r = r / (lam + damping)
    return qs @ r @ qa.T
