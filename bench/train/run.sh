#!/usr/bin/env bash
# LoRA SFT on Gemma 3 270M, CPU: Shammie (`shammie train sft`) against PyTorch + PEFT,
# same token sequences, same batches, rank, targets, 2 threads; figures in
# docs/benchmarks.md ("LoRA fine-tuning").
#
#   python3 -m venv /work/venv-torch
#   /work/venv-torch/bin/pip install torch transformers peft gguf safetensors numpy
#   bench/train/run.sh [PYTHON]          # default /work/venv-torch/bin/python
#
# WORK=DIR keeps the files there (default: a new temporary folder); PACK=N has Shammie pack
# a step's examples into sequences of up to N tokens (default 512, as `shammie train sft`;
# 0: one pass per example).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${1:-/work/venv-torch/bin/python}
W=${WORK:-$(mktemp -d)}
mkdir -p "$W"
GGUF=${GGUF:-$HOME/.cache/shammie/models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf}
# Two commands: with `--example`, cargo builds only that example, not the `shammie` binary.
cargo build --release -j1 -p shammie
cargo build --release -j1 -p shammie-train --example pyref
# 72 conversations: 9 steps of 8 are exactly one pass (1 warm-up step + 8 measured).
python3 bench/train/make_data.py /work/shared/data/hh-rlhf/harmless-base-test.jsonl.gz 72 > "$W/chat72.jsonl"
python3 bench/train/bench.py target/release/shammie target/release/examples/pyref "$PY" "$GGUF" \
  "$W/chat72.jsonl" "$W" --steps 9 --batch 8 --rank 8 --targets q_proj,v_proj --threads 2 \
  --pack-tokens "${PACK:-512}"
