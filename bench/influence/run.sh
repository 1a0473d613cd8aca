#!/usr/bin/env bash
# EK-FAC reference bench: kronfluence vs `shammie influence`, 2 threads.
# usage: bench/influence/run.sh [PYTHON] [SHAMMIE_BIN]
#   PYTHON defaults to /work/venv-torch/bin/python, SHAMMIE_BIN to target/release/shammie.
#   OUT (env) is the work folder, default runs/influence_bench.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PY="${1:-/work/venv-torch/bin/python}"
BIN="${2:-$ROOT/target/release/shammie}"
OUT="${OUT:-$ROOT/runs/influence_bench}"
export RAYON_NUM_THREADS=2 OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2
mkdir -p "$OUT"
CPU="$(lscpu | sed -n 's/^Model name: *//p' | head -1)"

# run_timed LOG CMD...: runs CMD, appends "wall_s peak_rss_mb" to LOG.time, returns its status
run_timed() {
  local log="$1"; shift
  local t0 t1 rc
  t0=$(date +%s.%N)
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f "%M" -o "$log.rss" "$@" >"$log" 2>&1; rc=$?
  else
    "$@" >"$log" 2>&1; rc=$?; echo 0 >"$log.rss"
  fi
  t1=$(date +%s.%N)
  echo "$(echo "$t1 - $t0" | bc) $(( $(tail -1 "$log.rss") / 1024 ))" >"$log.time"
  return $rc
}

declare -A ROWS
have_rust=1
for spec in "regression 1000 100 0" "classification 2000 100 1"; do
  set -- $spec; task=$1; ntr=$2; nq=$3; seed=$4
  M="$OUT/$task"
  echo "== $task: make_mlp ($ntr train / $nq query)"
  "$PY" "$HERE/make_mlp.py" "$M" --task "$task" --seed "$seed" --n-train "$ntr" --n-query "$nq" || exit 1
  echo "== $task: kronfluence (empirical Fisher, heuristic damping)"
  "$PY" "$HERE/kron.py" "$M" "$M/kron" --fisher empirical --damping heuristic --seed 0 2>&1 | grep -v Warning | grep -v "scaler =" || exit 1
  ROWS[$task.kron]="$("$PY" -c "import json;t=json.load(open('$M/kron/timing.json'));print('%.2f %.2f %.0f'%(t['fit_s'],t['scores_s'],t['peak_rss_mb']))")"

  if [ "$have_rust" = 1 ]; then
    echo "== $task: shammie influence fit / scores"
    mkdir -p "$M/shammie"
    if ! run_timed "$M/shammie/fit.log" "$BIN" influence fit --model "$M/model.safetensors" --arch "$M/arch.json" \
         --train "$M/train.csv" --out "$M/shammie" --fisher empirical; then
      echo "   shammie influence fit failed (command missing or not built yet?); skipping the Rust side:"
      tail -3 "$M/shammie/fit.log" | sed 's/^/   | /'
      have_rust=0
    elif ! run_timed "$M/shammie/scores.log" "$BIN" influence scores --model "$M/model.safetensors" --arch "$M/arch.json" \
         --train "$M/train.csv" --query "$M/query.csv" --out "$M/shammie" --fisher empirical --factors "$M/shammie"; then
      echo "   shammie influence scores failed; skipping the Rust side:"
      tail -3 "$M/shammie/scores.log" | sed 's/^/   | /'
      have_rust=0
    else
      read fw frss < "$M/shammie/fit.log.time"; read sw srss < "$M/shammie/scores.log.time"
      ROWS[$task.rust]="$fw $sw $(( frss > srss ? frss : srss ))"
      echo "== $task: compare (A = kronfluence, B = shammie)"
      "$PY" "$HERE/compare.py" "$M/kron" "$M/shammie" || echo "   compare: FAILED threshold"
    fi
  fi
done

echo
echo "CPU: $CPU; threads: 2 (RAYON/OMP/MKL=2, torch.set_num_threads(2))"
printf "%-15s %-12s %10s %10s %12s\n" task impl fit_s scores_s peak_rss_mb
for task in regression classification; do
  for impl in kron rust; do
    v="${ROWS[$task.$impl]:-}"
    [ -z "$v" ] && v="- - -"
    set -- $v
    printf "%-15s %-12s %10s %10s %12s\n" "$task" "$([ $impl = kron ] && echo kronfluence || echo shammie)" "$1" "$2" "$3"
  done
done
echo "(kronfluence peak RSS is the whole Python process incl. torch; shammie's is /usr/bin/time max RSS)"
echo "(both sides' fit_s and scores_s are wall seconds of the whole process, loading and writing included, except"
echo " kronfluence's, which its script times around the fit and score calls; shammie's own timings of the"
echo " computation alone are on its stderr and in scores.json; scores use the factors already fitted)"
