#!/usr/bin/env bash
# Exact search at 64 connections vs the same server's /healthz, one run.
#
# Seeds a private redis-server with N real-distribution MiniLM documents
# (replicate-corpus.py: the 2,000 shared documents, copies perturbed and
# renormalised), starts one server per binary given (so a before and an
# after build run side by side on the same data), and drives each with wrk
# at 64 connections, interleaved: search, healthz, next binary, ROUNDS times.
# Prints every run and, per binary, the median search QPS, the median
# healthz QPS and search ÷ healthz, with the load average at each run.
#
#   docs/harness/c64-vs-healthz.sh                        # target/release/semsearch, 20k
#   N=100000 BINS="/tmp/before/semsearch target/release/semsearch" docs/harness/c64-vs-healthz.sh
#
# Needs redis-server, wrk and python3 (no numpy). SEMSEARCH_SHARED_DATA
# points at the shared data (corpus-dev.jsonl, queries-dev.jsonl).
#
# RediSearch HNSW on the same data (a box with the module; it is in neither
# Debian nor PyPI): start redis-server --loadmodule /path/redisearch.so on
# another port, load the same JSONL as HASH fields (a FLOAT32 blob per key),
# then
#   FT.CREATE idx ON HASH PREFIX 1 doc: SCHEMA v VECTOR HNSW 10 TYPE FLOAT32 \
#       DIM 384 DISTANCE_METRIC COSINE M 16 EF_CONSTRUCTION 200 EF_RUNTIME 10
# wait for FT.INFO idx to show indexing 0, and drive it with the C client:
#   redis-benchmark -p PORT -c 64 -n 200000 -P 1 FT.SEARCH idx \
#       '*=>[KNN 10 @v $q]' PARAMS 2 q "$(query blob)" DIALECT 2 NOCONTENT
# (the query blob: a query vector as 1,536 little-endian f32 bytes; a
# Python one-liner with struct.pack('<384f', *v) writes it). Its QPS over
# this script's search QPS is the comparison; run both in one session.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
DATA=${SEMSEARCH_SHARED_DATA:-$here/../../../shared/data}
N=${N:-20000}
BINS=${BINS:-target/release/semsearch}
DUR=${DUR:-10s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
W=${WORKDIR:-/tmp/semsearch-c64}
mkdir -p "$W"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

RP=$(port)
redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --dir "$W" >"$W/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$RP" ping >/dev/null 2>&1 && break; sleep 0.1; done
R="redis://127.0.0.1:$RP"

corpus="$W/n$N.jsonl"
[ -s "$corpus" ] || python3 "$here/replicate-corpus.py" "$DATA/corpus-dev.jsonl" "$N" >"$corpus"
first=${BINS%% *}
"$first" seed "$corpus" --redis-url "$R" --ttl-secs 0 --no-progress >/dev/null
python3 "$here/wrk-search-bodies.py" "$DATA/queries-dev.jsonl" >"$W/search.lua"

ports=()
spids=()
for b in $BINS; do
  p=$(port)
  env -i PATH="$PATH" HOME="$HOME" REDIS_URL="$R" SEMSEARCH_BIND="127.0.0.1:$p" \
    SEMSEARCH_MODEL_DIR=/nonexistent RUST_LOG=warn "$b" serve >"$W/server-$p.log" 2>&1 &
  pids+=($!)
  spids+=($!)
  ports+=("$p")
done
for p in "${ports[@]}"; do
  for _ in $(seq 1200); do
    docs=$(curl -fsS "http://127.0.0.1:$p/v1/stats" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["documents"])' 2>/dev/null || true)
    [ "$docs" = "$N" ] && break
    sleep 0.25
  done
  [ "$docs" = "$N" ] || { echo "server on $p did not load $N documents"; exit 1; }
  # Warm-up: page faults, the allocator, wrk's connections.
  wrk -t2 -c"$CONNS" -d2s -s "$W/search.lua" "http://127.0.0.1:$p/v1/search" >/dev/null
done

qps() { awk '/^Requests\/sec/ {print $2}'; }
# CPU seconds (user + system) the process has used: the server's own cost
# per request, which moves less with the machine's load than QPS does.
cpu() { awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$1/stat"; }
per_req() { # cpu-before cpu-after wrk-output-file
  python3 -c 'import sys; a, b, f = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
n = next(int(l.split()[0]) for l in open(f) if "requests in" in l)
print(f"{(b - a) / n * 1e6:.1f}")' "$1" "$2" "$3"
}
load() { awk '{print $(NF-2)}' /proc/loadavg 2>/dev/null || uptime; }
: >"$W/runs.tsv"
echo "# N=$N conns=$CONNS dur=$DUR rounds=$ROUNDS"
printf 'round\tbinary\tsearch_qps\thealthz_qps\tload1\tsearch_cpu_us\thealthz_cpu_us\n'
for r in $(seq "$ROUNDS"); do
  i=0
  for b in $BINS; do
    p=${ports[$i]}; sp=${spids[$i]}; i=$((i + 1))
    c0=$(cpu "$sp")
    s=$(wrk -t2 -c"$CONNS" -d"$DUR" -s "$W/search.lua" "http://127.0.0.1:$p/v1/search" | tee "$W/wrk-search-$r-$i.txt" | qps)
    c1=$(cpu "$sp")
    h=$(wrk -t2 -c"$CONNS" -d"$DUR" "http://127.0.0.1:$p/healthz" | tee "$W/wrk-healthz-$r-$i.txt" | qps)
    c2=$(cpu "$sp")
    l=$(cut -d' ' -f1 /proc/loadavg)
    sc=$(per_req "$c0" "$c1" "$W/wrk-search-$r-$i.txt")
    hc=$(per_req "$c1" "$c2" "$W/wrk-healthz-$r-$i.txt")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$b" "$s" "$h" "$l" "$sc" "$hc" | tee -a "$W/runs.tsv"
    grep -h 'Non-2xx\|non2xx_or_errors [1-9]' "$W/wrk-search-$r-$i.txt" || true
  done
done
echo "# how the scans ran (/v1/stats): rows rescored in f32 per query, f32 fallbacks"
i=0
for b in $BINS; do
  p=${ports[$i]}; i=$((i + 1))
  curl -fsS "http://127.0.0.1:$p/v1/stats" | python3 -c '
import json, sys
s = json.load(sys.stdin)["scan"]
n8, n32, rows, fb = s["int8_queries"], s["f32_queries"], s["rescored_rows"], s["f32_fallbacks"]
print(f"{sys.argv[1]}: int8 queries {n8}, f32 queries {n32}, rescored/query {rows / max(n8, 1):.1f}, fallbacks {fb}")' "$b"
done
echo "# medians per binary"
python3 - "$W/runs.tsv" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
by = {}
for r, b, s, h, l, sc, hc in rows:
    by.setdefault(b, []).append((float(s), float(h), float(sc), float(hc)))
for b, v in by.items():
    med = lambda i: statistics.median(x[i] for x in v)
    ratios = ", ".join(f"{x[0] / x[1]:.3f}" for x in v)
    print(f"{b}: search {med(0):.0f} QPS, healthz {med(1):.0f} QPS, search/healthz {med(0) / med(1):.3f}"
          f" (per round: {ratios}); server CPU per request: search {med(2):.1f} us, healthz {med(3):.1f} us")
PY
