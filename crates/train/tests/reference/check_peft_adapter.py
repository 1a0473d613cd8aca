#!/usr/bin/env python3
"""Does an adapter `shammie train sft` saved load in Hugging Face PEFT, and does PEFT's
model give Shammie's logits? Run by `check-peft.sh` (next to this file), which trains the
adapter and dumps Shammie's logits first; see docs/benchmarks.md ("Numerics").

    check_peft_adapter.py GGUF ADAPTER_DIR IDS.json SHAMMIE_BASE_DIR SHAMMIE_ADAPTED_DIR

Loads the GGUF with transformers (`from_pretrained(dir, gguf_file=...)`, which
dequantizes every tensor to float32), then `peft.PeftModel.from_pretrained` on the
adapter folder, and for every token sequence in IDS.json compares the logits at every
position with the files `pyref logits` wrote: `white-K.f32` (Shammie's f32 white box, the
training path) and `served-K.f32` (the quantized serving path), base and adapted. The
adapter's own effect (adapted minus base logits) is compared too, which separates the
adapter from differences of the base models. Prints a table and exits non-zero when the
adapter loaded but changed nothing, or when the adapter's effect disagrees by more than
`--tol` (default 0.02) between PEFT and the white box.
"""

import argparse
import json
import os
import sys

import numpy as np
import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf")
    ap.add_argument("adapter")
    ap.add_argument("ids")
    ap.add_argument("shammie_base")
    ap.add_argument("shammie_adapted")
    ap.add_argument("--tol", type=float, default=0.02)
    args = ap.parse_args()
    torch.set_num_threads(2)
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    seqs = json.load(open(args.ids))
    model = AutoModelForCausalLM.from_pretrained(
        os.path.dirname(os.path.abspath(args.gguf)),
        gguf_file=os.path.basename(args.gguf),
        dtype=torch.float32,
    ).eval()

    def run(m):
        with torch.no_grad():
            return [m(torch.tensor([s])).logits[0].numpy() for s in seqs]

    hf_base = run(model)
    peft = PeftModel.from_pretrained(model, args.adapter).eval()
    n_lora = sum(1 for n, _ in peft.named_modules() if n.endswith("lora_A"))
    hf_adapted = run(peft)

    def load(d, kind, k, like):
        return np.fromfile(os.path.join(d, f"{kind}-{k}.f32"), dtype="<f4").reshape(like.shape)

    rows = []
    worst = {}
    for k, s in enumerate(seqs):
        for kind in ["white", "served"]:
            sb = load(args.shammie_base, kind, k, hf_base[k])
            sa = load(args.shammie_adapted, kind, k, hf_adapted[k])
            d = {
                "base": np.abs(sb - hf_base[k]).max(),
                "adapted": np.abs(sa - hf_adapted[k]).max(),
                "effect": np.abs((sa - sb) - (hf_adapted[k] - hf_base[k])).max(),
                "effect_size": np.abs(hf_adapted[k] - hf_base[k]).max(),
                "argmax_agree": float((sa.argmax(-1) == hf_adapted[k].argmax(-1)).mean()),
            }
            rows.append((k, len(s), kind, d))
            for key, v in d.items():
                w = worst.setdefault((kind, key), v)
                worst[(kind, key)] = min(w, v) if key == "argmax_agree" else max(w, v)
    print(f"PEFT wrapped {n_lora} projections with LoRA")
    print("seq tokens shammie  max|base diff|  max|adapted diff|  max|effect diff|  max|effect|  argmax agree")
    for k, n, kind, d in rows:
        print(
            f"{k:>3} {n:>6} {kind:>7}  {d['base']:>14.4g}  {d['adapted']:>17.4g}  {d['effect']:>16.4g}"
            f"  {d['effect_size']:>11.4g}  {d['argmax_agree']:>12.3f}"
        )
    print(json.dumps({f"{a}.{b}": float(v) for (a, b), v in worst.items()}))
    if n_lora == 0 or worst[("white", "effect_size")] < 1e-3:
        print("FAIL: the adapter changed nothing in PEFT")
        sys.exit(1)
    if worst[("white", "effect")] > args.tol:
        print(f"FAIL: the adapter's effect differs by more than {args.tol}")
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
