#!/usr/bin/env bash
# Trains a small LoRA adapter on Gemma 3 270M with `shammie train sft`, dumps Shammie's
# logits (white box and served path, base and adapted) for three training sequences, and
# checks them against transformers + PEFT loading the same GGUF and the adapter
# (check_peft_adapter.py). Results: docs/benchmarks.md, "Numerics".
#
#   python3 -m venv /work/venv-torch
#   /work/venv-torch/bin/pip install torch transformers peft gguf safetensors numpy
#   crates/train/tests/reference/check-peft.sh [PYTHON]     # default /work/venv-torch/bin/python
#
# WORK=DIR keeps the files there (default: a new temporary folder).
set -euo pipefail
cd "$(dirname "$0")/../../../.."
PY=${1:-/work/venv-torch/bin/python}
W=${WORK:-$(mktemp -d)}
mkdir -p "$W"
GGUF=${GGUF:-$HOME/.cache/shammie/models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf}
cargo build --release -j1 -p shammie -p shammie-train --example pyref
python3 bench/train/make_data.py /work/shared/data/hh-rlhf/harmless-base-test.jsonl.gz 16 > "$W/chat16.jsonl"
target/release/shammie train sft --model "local:$GGUF" --data "$W/chat16.jsonl" \
  --rank 4 --alpha 16 --targets q_proj,v_proj --batch 4 --steps 4 --lr 5e-3 \
  --log-dir "$W/runs" --quiet | tee "$W/train.out"
ADAPTER=$(sed -n 's/^adapter: //p' "$W/train.out")
target/release/examples/pyref tokens "$GGUF" "$W/chat16.jsonl" "$W/tokens.json"
python3 -c "import json,sys; t=json.load(open(sys.argv[1])); json.dump([e['ids'] for e in t[:3]], open(sys.argv[2],'w'))" \
  "$W/tokens.json" "$W/ids.json"
target/release/examples/pyref logits "$GGUF" "$W/ids.json" "$W/base"
target/release/examples/pyref logits "$GGUF" "$W/ids.json" "$W/adapted" "$ADAPTER"
HF_HUB_OFFLINE=1 "$PY" crates/train/tests/reference/check_peft_adapter.py \
  "$GGUF" "$ADAPTER" "$W/ids.json" "$W/base" "$W/adapted"
