#!/usr/bin/env bash
# EK-FAC on a language model: kronfluence (lm_kron.py) vs `shammie influence` on the same sequences, 2 threads.
# usage: bench/influence/run_lm.sh SEQUENCES.jsonl [SHAMMIE_BIN]
#   SEQUENCES.jsonl: the sequences file (README.md, "Language-model benchmark"); make one with
#     lm_sequences.py TEXTFILE OUT.jsonl --n N --max-tokens T --query PROMPT COMPLETION
#   SHAMMIE_BIN defaults to target/release/shammie.
#   env: PY (/work/venv-torch/bin/python), GGUF (Gemma 3 270M q4_k_m in ~/.cache/shammie/models),
#        OUT (runs/influence_bench/lm), LAYERS (all | 0,1,...), FISHER (empirical | sampled),
#        DAMPING (heuristic | X), SEED (0), DTYPE (float32 | float64), SHAMMIE_LM_CMD (below),
#        REUSE_KRON=1 (keep an existing $OUT/kron instead of rerunning lm_kron.py).
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SEQ="${1:?usage: run_lm.sh SEQUENCES.jsonl [SHAMMIE_BIN]}"
BIN="${2:-$ROOT/target/release/shammie}"
PY="${PY:-/work/venv-torch/bin/python}"
GGUF="${GGUF:-$HOME/.cache/shammie/models/gemma-3-270m/gemma-3-270m-q4_k_m.gguf}"
OUT="${OUT:-$ROOT/runs/influence_bench/lm}"
LAYERS="${LAYERS:-all}" FISHER="${FISHER:-empirical}" DAMPING="${DAMPING:-heuristic}"
SEED="${SEED:-0}" DTYPE="${DTYPE:-float32}"
export RAYON_NUM_THREADS=2 OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2
KR_OUT="$OUT/kron" SH_OUT="$OUT/shammie"
mkdir -p "$KR_OUT" "$SH_OUT"

# TODO(shammie LM flags are not final): the command that fits on the "fit" set (or "train") and scores
# "query" x "train" from SEQ, leaving factors.safetensors, scores.npy (and optionally nll.json) in $SH_OUT.
# Evaluated with eval; $BIN $GGUF $SEQ $SH_OUT $FISHER $SEED $LAYERS $DAMPING are set. Override by env.
SHAMMIE_LM_CMD="${SHAMMIE_LM_CMD:-\"\$BIN\" influence scores --model \"\$GGUF\" --sequences \"\$SEQ\" --out \"\$SH_OUT\" --fisher \"\$FISHER\" --seed \"\$SEED\" --layers \"\$LAYERS\"}"

if [ "${REUSE_KRON:-0}" = 1 ] && [ -f "$KR_OUT/scores.npy" ]; then
  echo "== kronfluence: reusing $KR_OUT"
else
  echo "== kronfluence: lm_kron.py (fisher $FISHER, damping $DAMPING, dtype $DTYPE, layers $LAYERS)"
  rm -f "$KR_OUT/scores.npy"
  "$PY" "$HERE/lm_kron.py" "$SEQ" "$GGUF" "$KR_OUT" --fisher "$FISHER" --damping "$DAMPING" --seed "$SEED" \
    --dtype "$DTYPE" --layers "$LAYERS" 2>&1 | grep -v -E "Warning|scaler =|Converting and de-quantizing|Loading weights"
fi
[ -f "$KR_OUT/scores.npy" ] || { echo "lm_kron.py wrote no scores"; exit 1; }
KR_ROW="$("$PY" -c "import json;t=json.load(open('$KR_OUT/timing.json'));print('%.1f %.1f %.1f - %.0f'%(t['load_s'],t['fit_s'],t['scores_s'],t['peak_rss_mb']))")"

SH_ROW="- - - - -"
echo "== shammie: $(eval echo "$SHAMMIE_LM_CMD")"
t0=$(date +%s.%N)
if [ -x /usr/bin/time ]; then
  eval /usr/bin/time -f "%M" -o "\"$SH_OUT/run.log.rss\"" "$SHAMMIE_LM_CMD" >"$SH_OUT/run.log" 2>&1; rc=$?
else
  eval "$SHAMMIE_LM_CMD" >"$SH_OUT/run.log" 2>&1; rc=$?; echo 0 >"$SH_OUT/run.log.rss"
fi
t1=$(date +%s.%N)
if [ $rc -ne 0 ] || [ ! -f "$SH_OUT/scores.npy" ]; then
  echo "   shammie failed or wrote no scores.npy (LM flags not final? set SHAMMIE_LM_CMD); skipping the comparison:"
  tail -3 "$SH_OUT/run.log" | sed 's/^/   | /'
else
  SH_ROW="- - - $(printf '%.1f' "$(echo "$t1 - $t0" | bc)") $(( $(tail -1 "$SH_OUT/run.log.rss") / 1024 ))"
  echo "== compare (A = kronfluence, B = shammie)"
  "$PY" "$HERE/lm_compare.py" "$KR_OUT" "$SH_OUT" || echo "   compare: FAILED threshold"
fi

echo
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1); threads: 2"
printf "%-12s %8s %8s %10s %9s %12s\n" impl load_s fit_s scores_s total_s peak_rss_mb
set -- $KR_ROW; printf "%-12s %8s %8s %10s %9s %12s\n" kronfluence "$1" "$2" "$3" "$4" "$5"
set -- $SH_ROW; printf "%-12s %8s %8s %10s %9s %12s\n" shammie "$1" "$2" "$3" "$4" "$5"
echo "(kronfluence: load_s = GGUF load + dequantisation, fit_s = fit_all_factors, scores_s = compute_pairwise_scores,"
echo " peak RSS of the Python process; shammie: total_s = wall seconds of the whole command (load, fit, scores),"
echo " peak RSS from /usr/bin/time; its own phase timings are in its log, $SH_OUT/run.log)"
