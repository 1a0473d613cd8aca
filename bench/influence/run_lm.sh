#!/usr/bin/env bash
# EK-FAC on a language model: `shammie influence scores` and kronfluence (lm_kron.py) on the
# same token sequences, side by side, 2 threads. Shammie runs first and writes the sequences
# it tokenised (sequences.jsonl); kronfluence reads those ids, so both see identical inputs.
# usage: bench/influence/run_lm.sh CORPUS.jsonl QUERIES.jsonl [SHAMMIE_BIN]
#   CORPUS.jsonl: {"text"} or {"messages"} per line; QUERIES.jsonl: {"prompt", "completion"}.
#   SHAMMIE_BIN defaults to target/release/shammie.
#   env: PY (/work/venv-torch/bin/python), GGUF (Gemma 3 270M q4_k_m in ~/.cache/shammie/models),
#        OUT (runs/influence_bench/lm), LAYERS (all | 0,1,...), MAX_TOKENS (64), DAMPING
#        (heuristic | X), DTYPE (kronfluence's factor dtype: float32 | float64),
#        REUSE_KRON=1 (keep an existing $OUT/kron instead of rerunning lm_kron.py).
# Both sides: the empirical Fisher (sampled labels cannot agree draw for draw), factors fitted
# on every corpus document, every query scored against every document, exact queries (no
# low-rank approximation).
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CORPUS="${1:?usage: run_lm.sh CORPUS.jsonl QUERIES.jsonl [SHAMMIE_BIN]}"
QUERIES="${2:?usage: run_lm.sh CORPUS.jsonl QUERIES.jsonl [SHAMMIE_BIN]}"
BIN="${3:-$ROOT/target/release/shammie}"
PY="${PY:-/work/venv-torch/bin/python}"
GGUF="${GGUF:-$HOME/.cache/shammie/models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf}"
OUT="${OUT:-$ROOT/runs/influence_bench/lm}"
LAYERS="${LAYERS:-all}" DAMPING="${DAMPING:-heuristic}" DTYPE="${DTYPE:-float32}" MAX_TOKENS="${MAX_TOKENS:-64}"
export RAYON_NUM_THREADS=2 OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2
KR_OUT="$OUT/kron" SH_OUT="$OUT/shammie"
rm -rf "$SH_OUT"; mkdir -p "$KR_OUT" "$SH_OUT"

LAYER_ARGS=()
[ "$LAYERS" != all ] && LAYER_ARGS=(--layers "$LAYERS")
DAMP_ARGS=()
[ "$DAMPING" != heuristic ] && DAMP_ARGS=(--damping "$DAMPING")
echo "== shammie influence scores (empirical Fisher, damping $DAMPING, layers $LAYERS, max $MAX_TOKENS tokens)"
/usr/bin/time -f "%M" -o "$SH_OUT/rss.txt" "$BIN" influence scores --model "$GGUF" --train "$CORPUS" \
  --query "$QUERIES" --out "$SH_OUT" --fisher empirical --rank 0 --max-tokens "$MAX_TOKENS" \
  "${LAYER_ARGS[@]}" "${DAMP_ARGS[@]}" >"$SH_OUT/run.log" 2>&1 || { tail -5 "$SH_OUT/run.log"; exit 1; }
# The factors the comparison reads (written under the command's work folder).
ln -sf "$SH_OUT/work/factors/factors.safetensors" "$SH_OUT/factors.safetensors"
SH_ROW="$("$PY" -c "import json;t=json.load(open('$SH_OUT/scores.json'));print('%.1f %.1f'%(t['fit_seconds'],t['score_seconds']))") $(( $(tail -1 "$SH_OUT/rss.txt") / 1024 ))"

if [ "${REUSE_KRON:-0}" = 1 ] && [ -f "$KR_OUT/scores.npy" ]; then
  echo "== kronfluence: reusing $KR_OUT"
else
  echo "== kronfluence: lm_kron.py on shammie's sequences (dtype $DTYPE)"
  rm -f "$KR_OUT/scores.npy"
  "$PY" "$HERE/lm_kron.py" "$SH_OUT/sequences.jsonl" "$GGUF" "$KR_OUT" --fisher empirical --damping "$DAMPING" \
    --dtype "$DTYPE" --layers "$LAYERS" 2>&1 | grep -v -E "Warning|scaler =|Converting and de-quantizing|Loading weights"
fi
[ -f "$KR_OUT/scores.npy" ] || { echo "lm_kron.py wrote no scores"; exit 1; }
KR_ROW="$("$PY" -c "import json;t=json.load(open('$KR_OUT/timing.json'));print('%.1f %.1f %.0f'%(t['fit_s'],t['scores_s'],t['peak_rss_mb']))")"

echo "== compare (A = kronfluence, B = shammie)"
"$PY" "$HERE/lm_compare.py" "$KR_OUT" "$SH_OUT" || echo "   compare: FAILED threshold"

echo
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1); threads: 2"
printf "%-12s %8s %10s %12s\n" impl fit_s scores_s peak_rss_mb
set -- $KR_ROW; printf "%-12s %8s %10s %12s\n" kronfluence "$1" "$2" "$3"
set -- $SH_ROW; printf "%-12s %8s %10s %12s\n" shammie "$1" "$2" "$3"
echo "(fit_s and scores_s: each side's own timing of the factor fit and of the pairwise scores,"
echo " model loading excluded; peak RSS of the whole process)"
