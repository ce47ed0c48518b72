#!/usr/bin/env bash
# What hybrid ranking costs a text question end to end: p50 of `"mode":
# "hybrid"` ÷ p50 of `"mode": "vector"` over HTTP, every question embedded by
# the server (query caches off), on N documents grown from the Portuguese dev
# corpus by benches/hybrid.rs (the same documents as its in-process figures).
# Rounds alternate vector and hybrid, so both see the same machine.
#
#   benches/hybrid_e2e.sh [N=100000] [ROUNDS=3] [CONNECTIONS=1]
#
# Needs target/release/semsearch (or SEMSEARCH_BIN), the model files (`semsearch
# model fetch`), redis-server on PATH, and SEMSEARCH_SHARED_DATA (default
# ../shared/data beside the repository) for corpus-pt-dev.jsonl and
# queries-pt-dev.jsonl. Everything runs against a private redis-server.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-100000}"
rounds="${2:-3}"
conns="${3:-1}"
data="${SEMSEARCH_SHARED_DATA:-$(cd .. && pwd)/shared/data}"
export SEMSEARCH_SHARED_DATA="$data"
export SEMSEARCH_BIN="${SEMSEARCH_BIN:-$PWD/target/release/semsearch}"

work="$(mktemp -d -t semsearch-hybrid.XXXXXX)"
# shellcheck source=.ci/private-server.sh
source .ci/private-server.sh
cleanup() {
  local status=$?
  set +e
  stop_private_server
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT

# SEMSEARCH_HYBRID_BENCH: an already built benches/hybrid binary (else cargo builds it).
if [ -n "${SEMSEARCH_HYBRID_BENCH:-}" ]; then
  "$SEMSEARCH_HYBRID_BENCH" --write-corpus "$work/grown.jsonl" "$n"
else
  cargo bench -q --bench hybrid -- --write-corpus "$work/grown.jsonl" "$n"
fi
# Every question embedded every time; no context writes (they are not ranking).
export SEMSEARCH_QUERY_CACHE_TTL_SECS=0 SEMSEARCH_QUERY_CACHE_CAPACITY=0 SEMSEARCH_CONTEXT_TTL_SECS=0
start_private_server hybrid-e2e "$work/grown.jsonl"

p50() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); l=r["levels"][0]; assert l["errors"] == 0, l; print(l["latency"]["p50_ms"], round(l["qps"], 1))' "$1"; }
echo "round mode p50_ms qps"
for r in $(seq "$rounds"); do
  for mode in vector hybrid; do
    "$SEMSEARCH_BIN" bench --url "$url" --api-key "$key" --queries "$data/queries-pt-dev.jsonl" \
      --text-mode "$mode" --concurrency "$conns" --duration 10s --warmup 2s --no-progress \
      --json "$work/$mode-$r.json" >/dev/null
    echo "$r $mode $(p50 "$work/$mode-$r.json")"
  done
done | tee "$work/table"
python3 - "$work/table" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l[0].isdigit()]
med = {m: statistics.median(float(r[2]) for r in rows if r[1] == m) for m in ("vector", "hybrid")}
print(f"median p50: vector {med['vector']:.2f} ms, hybrid {med['hybrid']:.2f} ms, hybrid / vector = {med['hybrid'] / med['vector']:.3f}")
PY
