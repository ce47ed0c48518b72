#!/usr/bin/env bash
# Issue 12: `semsearch bench` at 64 clients against two servers holding the
# same 100k × 384 synthetic documents, one with SEMSEARCH_SCAN=f32 and one
# with SEMSEARCH_SCAN=int8, alternating f32, int8, f32, int8 in one run (the
# machine is shared: read the ratio per pair). Then each server's RSS against
# its own /v1/stats byte counts (f32 matrix + int8 copy + metadata).
#
#   cargo build --release && docs/harness/int8-bench.sh
#   N=1000000 DUR=20s LEVELS=1,8,64 docs/harness/int8-bench.sh
#
# Results in $WORKDIR (default /tmp/semsearch-int8-bench): *.json from
# `semsearch bench --json`, stats-*.json, rss.txt, summary.txt.
set -euo pipefail
B=${SEMSEARCH_BIN:-target/release/semsearch}
W=${WORKDIR:-/tmp/semsearch-int8-bench}; rm -rf "$W"; mkdir -p "$W"
N=${N:-100000}; LEVELS=${LEVELS:-64}; DUR=${DUR:-15s}; ROUNDS=${ROUNDS:-2}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
redis-server --port 0 --unixsocket "$W/redis.sock" --unixsocketperm 700 --save "" --appendonly no --dir "$W" >"$W/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do redis-cli -s "$W/redis.sock" ping >/dev/null 2>&1 && break; sleep 0.1; done
R="unix://$W/redis.sock"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
declare -A pid_of
start() { # scan port
  env -i PATH="$PATH" HOME="$HOME" REDIS_URL="$R" SEMSEARCH_BIND="127.0.0.1:$2" SEMSEARCH_SCAN="$1" \
    SEMSEARCH_MODEL_DIR=/nonexistent SEMSEARCH_CONTEXT_TTL_SECS=0 RUST_LOG=warn "$B" serve >"$W/$1.log" 2>&1 &
  pids+=($!); pid_of[$1]=$!
}
docs() { curl -fsS "http://127.0.0.1:$1/v1/stats" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["documents"])' 2>/dev/null || echo 0; }
wait_docs() { for _ in $(seq 2400); do [ "$(docs "$1")" -ge "$N" ] && return 0; sleep 0.25; done; echo "server on $1 never held $N documents" >&2; exit 1; }

PF=$(port); PI=$(port)
start f32 "$PF"
for _ in $(seq 400); do curl -fsS "http://127.0.0.1:$PF/readyz" >/dev/null 2>&1 && break; sleep 0.25; done
echo "int8-bench: filling $N synthetic documents (through the f32 server's first bench round)"
"$B" bench --url "http://127.0.0.1:$PF" --synthetic "$N" --dim 384 --redis "$R" --duration 2s --concurrency 1 --no-progress >"$W/fill.txt"
start int8 "$PI"
wait_docs "$PF"; wait_docs "$PI"
for r in $(seq "$ROUNDS"); do
  for scan in f32 int8; do
    p=$PF; [ "$scan" = int8 ] && p=$PI
    "$B" bench --url "http://127.0.0.1:$p" --duration "$DUR" --concurrency "$LEVELS" --no-progress \
      --json "$W/$scan-$r.json" >"$W/$scan-$r.txt"
  done
done
for scan in f32 int8; do
  p=$PF; [ "$scan" = int8 ] && p=$PI
  curl -fsS "http://127.0.0.1:$p/v1/stats" >"$W/stats-$scan.json"
  echo "$scan $(ps -o rss= -p "${pid_of[$scan]}")" >>"$W/rss.txt"
done
python3 - "$W" "$ROUNDS" <<'PY' | tee "$W/summary.txt"
import json, sys
w, rounds = sys.argv[1], int(sys.argv[2])
def levels(path):
    return {r["concurrency"]: r for r in json.load(open(path))["levels"]}
for r in range(1, rounds + 1):
    f, i = levels(f"{w}/f32-{r}.json"), levels(f"{w}/int8-{r}.json")
    for c in sorted(f):
        print(f"round {r}, {c} clients: f32 {f[c]['qps']:.0f} QPS, int8 {i[c]['qps']:.0f} QPS, "
              f"int8/f32 {i[c]['qps'] / f[c]['qps']:.2f}; p50 {f[c]['latency']['p50_ms']:.2f} -> {i[c]['latency']['p50_ms']:.2f} ms, "
              f"p99 {f[c]['latency']['p99_ms']:.2f} -> {i[c]['latency']['p99_ms']:.2f} ms; errors {f[c]['errors']} / {i[c]['errors']}")
rss = dict(line.split() for line in open(f"{w}/rss.txt"))
for scan in ("f32", "int8"):
    s = json.load(open(f"{w}/stats-{scan}.json"))
    parts = s["index_bytes"] + s.get("int8_bytes", 0) + s["metadata_bytes"]
    got = int(rss[scan]) * 1024
    print(f"{scan}: RSS {got / 2**20:.1f} MiB = {got / parts:.3f} x (f32 {s['index_bytes'] / 2**20:.1f} + "
          f"int8 {s.get('int8_bytes', 0) / 2**20:.1f} + metadata {s['metadata_bytes'] / 2**20:.1f} MiB); scan {s['scan']['active'] if isinstance(s['scan'], dict) else s['scan']}")
PY
