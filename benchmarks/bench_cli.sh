#!/usr/bin/env bash
# End-to-end wall time of the README's main command (process start, imports, data, fit, predictions, writes),
# cold (empty JAX compilation cache) and warm (second run with the persistent cache). Usage:
#   bash benchmarks/bench_cli.sh [MODEL] [DATASET]      # default: clv cdnow
set -euo pipefail
model=${1:-clv}
dataset=${2:-cdnow}
cache=$(mktemp -d)
out=$(mktemp -d)
trap 'rm -rf "$cache" "$out"' EXIT
export BTYD_LTV_CACHE_DIR="$cache"
run() {
  local start end
  start=$(date +%s.%N)
  btyd-ltv fit "$model" --dataset "$dataset" --out "$out" --quiet >/dev/null 2>"$out/stderr" \
    || { cat "$out/stderr" >&2; exit 1; }
  end=$(date +%s.%N)
  python3 -c "print($end - $start)"
}
command -v btyd-ltv >/dev/null || { echo "btyd-ltv not on PATH: pip install -e . first" >&2; exit 1; }
cold=$(run)
warm=$(run)
echo "| command | cold cache (s) | warm cache (s) |"
echo "|---|---|---|"
printf '| `btyd-ltv fit %s --dataset %s` (4 chains x 1000 x 1000, predictions, writes) | %.1f | %.1f |\n' \
  "$model" "$dataset" "$cold" "$warm"
