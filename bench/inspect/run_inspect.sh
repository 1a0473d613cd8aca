#!/usr/bin/env bash
# Runs the Inspect AI counterpart of `shammie run constitution/traits` (logprob path)
# against a running shammie-mock server.
#
#   usage: run_inspect.sh PORT LIMIT MAX_CONNECTIONS
#
# PORT: the mock's port on 127.0.0.1 (`shammie-mock --port 0` prints it).
# Optional env: INSPECT_VENV (default /work/.venv-inspect); INSPECT_BENCH_LOG_DIR
# (default: a fresh temp dir, kept so the log can be checked; its path goes to stderr).
# Exits with Inspect's exit status.
set -euo pipefail

if [ $# -ne 3 ]; then
  echo "usage: $0 PORT LIMIT MAX_CONNECTIONS" >&2
  exit 2
fi
PORT=$1 LIMIT=$2 MAXCONN=$3
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VENV=${INSPECT_VENV:-/work/.venv-inspect}
LOG_DIR=${INSPECT_BENCH_LOG_DIR:-$(mktemp -d /tmp/inspect-bench-log.XXXXXX)}
echo "inspect log dir: $LOG_DIR" >&2

# Only Inspect's defaults plus the flags below: drop any INSPECT_EVAL_* settings
# (e.g. INSPECT_EVAL_CACHE) that the caller's environment might carry.
for v in $(compgen -e | grep '^INSPECT_EVAL_' || true); do unset "$v"; done

# Provider openai-api/<service>/<model> reads <SERVICE>_BASE_URL and <SERVICE>_API_KEY
# (inspect_ai/model/_providers/openai_compatible.py): service "mock" -> MOCK_*.
export MOCK_BASE_URL="http://127.0.0.1:${PORT}/v1"
export MOCK_API_KEY=x

cd "$HERE"
# `inspect` is the venv's console script (#!/work/.venv-inspect/bin/python3).
exec "$VENV/bin/inspect" eval traits_task.py@traits \
  --model openai-api/mock/bench \
  --limit "$LIMIT" \
  --max-connections "$MAXCONN" \
  --log-dir "$LOG_DIR" \
  --display none
