#!/usr/bin/env python3
"""Independent PyTorch reference for Shammie's LoRA SFT steps (issue 14).

Writes `sft_reference.json`, which `crates/train/tests/it/reference.rs` replays with
`shammie_train::sft::Trainer` and compares step by step.

Reproduce (from the repository root):

    python3 -m venv /work/venv-torch
    /work/venv-torch/bin/pip install torch transformers peft gguf safetensors numpy
    cargo run -p shammie-train --example pyref -- tiny-gguf /tmp/tiny6.gguf 11 6
    /work/venv-torch/bin/python crates/train/tests/reference/make_sft_reference.py \
        /tmp/tiny6.gguf crates/train/tests/reference/sft_reference.json

Nothing here calls Shammie's code: the model is read from the GGUF with the `gguf`
package and written from the Gemma 3 definition (Hugging Face transformers'
`modeling_gemma3.py`), with plain torch ops:

- embeddings looked up and multiplied by sqrt(hidden);
- Gemma's RMSNorm `x / sqrt(mean(x^2) + eps) * (1 + w)`; GGUF stores `1 + w`
  (llama.cpp's converter adds the 1), so `w = gguf - 1` as transformers' GGUF loader does;
- attention: q/k/v projections, per-head RMSNorm of q and k, rotary embedding with
  `rotate_half` (the two halves of each head), base 1e4 on sliding-window layers and
  `rope.freq_base` (default 1e6) on global ones; every 6th layer (1-based) is global;
  a sliding layer lets query i see key j iff j <= i and i - j < sliding_window;
  grouped-query heads (query head h uses kv head h // (heads / kv_heads));
- scores scaled by query_pre_attn_scalar^-0.5. The GGUF does not store that scalar;
  llama.cpp takes 1/sqrt(head_dim) for every Gemma 3 size but the 27B (and Gemma 3's
  configs set query_pre_attn_scalar = head_dim there), so 1/sqrt(head_dim) here;
- no attention or final-logit soft-capping (Gemma 3 has none);
- o_proj, post-attention RMSNorm, residual; pre-FFN RMSNorm, down(gelu_tanh(gate) * up),
  post-FFN RMSNorm, residual; final RMSNorm; logits against the tied embedding.

LoRA (PEFT's formulation): a projection W becomes `x W^T + (alpha / r) (x A^T) B^T` on
every target module of every layer. A starts uniform in +-1/sqrt(in) (PEFT's
kaiming_uniform(a=sqrt 5)); B starts small and non-zero (PEFT starts it at zero; a
non-zero B makes A's gradient live from the first step, so the test sees it).

Training: the loss of a step is the summed cross-entropy of the reply tokens of all its
examples divided by their count (token-weighted mean); each example's share is
back-propagated separately and the gradients accumulate (gradient accumulation);
`torch.nn.utils.clip_grad_norm_` on the global norm; `torch.optim.AdamW`; learning rate
from transformers' `get_cosine_schedule_with_warmup`. The batch is the whole data set, so
the example order of a step does not matter.

The reference is computed in float64; Shammie trains in float32.
"""

import argparse
import hashlib
import json
import math

import numpy as np
import torch
from gguf import GGUFReader
from transformers import get_cosine_schedule_with_warmup

MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
GGUF_PROJ = {
    "q_proj": "attn_q",
    "k_proj": "attn_k",
    "v_proj": "attn_v",
    "o_proj": "attn_output",
    "gate_proj": "ffn_gate",
    "up_proj": "ffn_up",
    "down_proj": "ffn_down",
}
# GGUF norm name -> transformers' name (documentation of the mapping used below).
GGUF_NORM = {
    "attn_norm": "input_layernorm",
    "post_attention_norm": "post_attention_layernorm",
    "ffn_norm": "pre_feedforward_layernorm",
    "post_ffw_norm": "post_feedforward_layernorm",
    "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm",
}

CONFIG = {
    "model_seed": 11,
    "layers": 6,
    "lora": {"rank": 2, "alpha": 8.0, "targets": MODULES, "init_seed": 5, "b_init": 0.1},
    "optim": {"lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1},
    "steps": 5,
    "warmup": 1,
    "decay": "cosine",
    "max_grad_norm": 5.0,
    "data_seed": 3,
}


class Gemma3:
    def __init__(self, path, dtype):
        r = GGUFReader(path)
        f = {k: v.contents() for k, v in r.fields.items() if not k.startswith("tokenizer")}
        assert f["general.architecture"] == "gemma3"
        g = lambda k, d=None: f.get("gemma3." + k, d)
        self.hidden = g("embedding_length")
        self.layers = g("block_count")
        self.heads = g("attention.head_count")
        self.kv_heads = g("attention.head_count_kv")
        self.head_dim = g("attention.key_length")
        self.eps = float(g("attention.layer_norm_rms_epsilon"))
        self.window = g("attention.sliding_window")
        self.theta_global = float(g("rope.freq_base", 1e6))
        self.theta_local = 1e4
        self.scaling = self.head_dim**-0.5
        w = {}
        for t in r.tensors:
            assert t.tensor_type == 0, f"{t.name}: only F32 tensors here"
            w[t.name] = torch.tensor(np.array(t.data), dtype=dtype)
        self.w = w
        self.vocab = w["token_embd.weight"].shape[0]

    def norm(self, x, name):
        wt = self.w[name] - 1.0  # transformers' convention: the weight is w, applied as 1 + w
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * (1.0 + wt)

    def dims(self, module):
        qd, kvd = self.heads * self.head_dim, self.kv_heads * self.head_dim
        ffn = self.w["blk.0.ffn_gate.weight"].shape[0]
        return {
            "q_proj": (qd, self.hidden),
            "k_proj": (kvd, self.hidden),
            "v_proj": (kvd, self.hidden),
            "o_proj": (self.hidden, qd),
            "gate_proj": (ffn, self.hidden),
            "up_proj": (ffn, self.hidden),
            "down_proj": (self.hidden, ffn),
        }[module]

    def proj(self, x, i, module, lora, scale):
        y = x @ self.w[f"blk.{i}.{GGUF_PROJ[module]}.weight"].T
        ab = lora.get((i, module))
        if ab is not None:
            a, b = ab
            y = y + scale * ((x @ a.T) @ b.T)
        return y

    def rope(self, x, theta):
        t, d = x.shape[-2], x.shape[-1]
        inv = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
        freqs = torch.arange(t, dtype=torch.float64)[:, None] * inv[None, :]
        emb = torch.cat([freqs, freqs], dim=-1)
        cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
        x1, x2 = x[..., : d // 2], x[..., d // 2 :]
        rot = torch.cat([-x2, x1], dim=-1)
        return x * cos + rot * sin

    def logits(self, ids, lora, scale):
        t = len(ids)
        ids = torch.tensor(ids)
        h = self.w["token_embd.weight"][ids] * math.sqrt(self.hidden)
        pos = torch.arange(t)
        causal = pos[None, :] <= pos[:, None]
        for i in range(self.layers):
            sliding = (i + 1) % 6 != 0
            allowed = causal & ((pos[:, None] - pos[None, :]) < self.window) if sliding else causal
            theta = self.theta_local if sliding else self.theta_global
            x = self.norm(h, f"blk.{i}.attn_norm.weight")
            q = self.proj(x, i, "q_proj", lora, scale).view(t, self.heads, self.head_dim).transpose(0, 1)
            k = self.proj(x, i, "k_proj", lora, scale).view(t, self.kv_heads, self.head_dim).transpose(0, 1)
            v = self.proj(x, i, "v_proj", lora, scale).view(t, self.kv_heads, self.head_dim).transpose(0, 1)
            q = self.rope(self.norm(q, f"blk.{i}.attn_q_norm.weight"), theta)
            k = self.rope(self.norm(k, f"blk.{i}.attn_k_norm.weight"), theta)
            rep = self.heads // self.kv_heads
            k = k.repeat_interleave(rep, dim=0)
            v = v.repeat_interleave(rep, dim=0)
            s = (q @ k.transpose(-1, -2)) * self.scaling
            s = s.masked_fill(~allowed, float("-inf"))
            o = torch.softmax(s, dim=-1) @ v  # (heads, t, d)
            o = o.transpose(0, 1).reshape(t, self.heads * self.head_dim)
            a = self.proj(o, i, "o_proj", lora, scale)
            h = h + self.norm(a, f"blk.{i}.post_attention_norm.weight")
            x = self.norm(h, f"blk.{i}.ffn_norm.weight")
            gate = torch.nn.functional.gelu(self.proj(x, i, "gate_proj", lora, scale), approximate="tanh")
            m = self.proj(gate * self.proj(x, i, "up_proj", lora, scale), i, "down_proj", lora, scale)
            h = h + self.norm(m, f"blk.{i}.post_ffw_norm.weight")
        return self.norm(h, "output_norm.weight") @ self.w["token_embd.weight"].T


def order(key):
    """Factors layer-major, then in MODULES order (as Shammie lists them)."""
    return (key[0], MODULES.index(key[1]))


def make_data(vocab, seed):
    """Four sequences of 9-16 tokens: a prompt, a reply; one has two replies."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for n, spans in [(12, [(4, 12)]), (16, [(3, 7), (10, 16)]), (9, [(5, 9)]), (14, [(6, 14)])]:
        ids = torch.randint(1, vocab, (n,), generator=g).tolist()
        train = [any(a <= j < b for a, b in spans) for j in range(n)]
        out.append({"ids": ids, "train": train})
    return out


def init_factors(m, cfg, dtype):
    g = torch.Generator().manual_seed(cfg["init_seed"])
    out = {}
    for i in range(m.layers):
        for mod in MODULES:
            if mod not in cfg["targets"]:
                continue
            o, n = m.dims(mod)
            bound = 1.0 / math.sqrt(n)
            a = (torch.rand((cfg["rank"], n), generator=g, dtype=torch.float64) * 2 - 1) * bound
            b = (torch.rand((o, cfg["rank"]), generator=g, dtype=torch.float64) * 2 - 1) * cfg["b_init"]
            # Rounded to f32 so both sides start from exactly the same values.
            out[(i, mod)] = (a.float().to(dtype), b.float().to(dtype))
    return out


def train(m, data, init, dtype):
    cfg = CONFIG
    lora = {k: (a.clone().requires_grad_(), b.clone().requires_grad_()) for k, (a, b) in init.items()}
    params = [p for k in sorted(lora, key=order) for p in lora[k]]
    scale = cfg["lora"]["alpha"] / cfg["lora"]["rank"]
    o = cfg["optim"]
    opt = torch.optim.AdamW(
        params, lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"], weight_decay=o["weight_decay"]
    )
    sched = get_cosine_schedule_with_warmup(opt, cfg["warmup"], cfg["steps"])
    steps = []
    for step in range(cfg["steps"]):
        opt.zero_grad()
        tokens = sum(sum(e["train"][1:]) for e in data)
        loss = 0.0
        for e in data:
            lg = m.logits(e["ids"], lora, scale)[:-1]
            target = torch.tensor(e["ids"][1:])
            mask = torch.tensor(e["train"][1:], dtype=dtype)
            nll = torch.nn.functional.cross_entropy(lg, target, reduction="none")
            l = (nll * mask).sum() / tokens
            l.backward()
            loss += l.item()
        norm = torch.nn.utils.clip_grad_norm_(params, cfg["max_grad_norm"]).item()
        lr = sched.get_last_lr()[0]
        opt.step()
        sched.step()
        steps.append({"step": step, "loss": loss, "grad_norm": norm, "lr": lr, "tokens": tokens})
    return steps, lora


def factor_json(lora):
    return [
        {
            "layer": i,
            "module": mod,
            "a": [float(f"{x:.9g}") for x in a.detach().flatten().tolist()],
            "b": [float(f"{x:.9g}") for x in b.detach().flatten().tolist()],
        }
        for (i, mod), (a, b) in sorted(lora.items(), key=lambda kv: order(kv[0]))
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf")
    ap.add_argument("out")
    args = ap.parse_args()
    sha = hashlib.sha256(open(args.gguf, "rb").read()).hexdigest()
    results = {}
    for name, dtype in [("f64", torch.float64), ("f32", torch.float32)]:
        m = Gemma3(args.gguf, dtype)
        assert m.layers == CONFIG["layers"]
        data = make_data(m.vocab, CONFIG["data_seed"])
        init = init_factors(m, CONFIG["lora"], dtype)
        results[name] = (data, init, *train(m, data, init, dtype))
    data, init, steps, final = results["f64"]
    _, _, steps32, final32 = results["f32"]
    for s, s32 in zip(steps, steps32):
        print(
            f"step {s['step']}: loss {s['loss']:.8f} (f32 {s32['loss']:.8f}) grad norm {s['grad_norm']:.6f} "
            f"(f32 {s32['grad_norm']:.6f}) lr {s['lr']:.6g} tokens {s['tokens']}"
        )
    worst = max(
        (final[k][j] - final32[k][j].double()).abs().max().item() for k in final for j in range(2)
    )
    print(f"final factors: max |f64 - f32| = {worst:.3g}")
    fixture = {
        "about": "written by crates/train/tests/reference/make_sft_reference.py (its docstring says how); float64 PyTorch",
        "gguf_sha256": sha,
        "config": CONFIG,
        "data": data,
        "init": factor_json(init),
        "steps": steps,
        "final": factor_json(final),
        "f32_vs_f64_final_max_abs": worst,
    }
    # One line per top-level entry, data example, step and factor.
    lines = []
    for k, v in fixture.items():
        if isinstance(v, list):
            inner = ",\n".join("  " + json.dumps(x) for x in v)
            lines.append(f" {json.dumps(k)}: [\n{inner}\n ]")
        else:
            lines.append(f" {json.dumps(k)}: {json.dumps(v)}")
    with open(args.out, "w") as fh:
        fh.write("{\n" + ",\n".join(lines) + "\n}\n")
    json.load(open(args.out))  # well-formed


if __name__ == "__main__":
    main()
