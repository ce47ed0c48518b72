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
# RediSearch HNSW on the same data: with REDISEARCH_MODULE=/path/redisearch.so
# (a build of the module; it is in neither Debian nor PyPI), a second private
# redis-server loads it, hnsw-peer.py stores the same documents as hashes and
# builds FT.CREATE ... VECTOR HNSW (M 16, EF_CONSTRUCTION 200, EF_RUNTIME 10),
# prints its recall@10 against this server's exact answers, and each round
# also drives FT.SEARCH KNN 10 with redis-benchmark (the C client, CONNS
# connections, every shared query in turn). The medians then give
# semsearch QPS ÷ HNSW QPS from the same rounds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
DATA=${SEMSEARCH_SHARED_DATA:-$here/../../../shared/data}
N=${N:-20000}
BINS=${BINS:-target/release/semsearch}
DUR=${DUR:-10s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
HNSW_REQUESTS=${HNSW_REQUESTS:-5000}  # per query, 30 queries per round
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

HP=
if [ -n "${REDISEARCH_MODULE:-}" ]; then
  HP=$(port)
  mkdir -p "$W/hnsw"
  redis-server --port "$HP" --bind 127.0.0.1 --save '' --appendonly no --dir "$W/hnsw" \
    --loadmodule "$REDISEARCH_MODULE" >"$W/hnsw/redis.log" 2>&1 &
  pids+=($!)
  hpid=$!
  for _ in $(seq 100); do redis-cli -p "$HP" ping >/dev/null 2>&1 && break; sleep 0.1; done
  python3 "$here/hnsw-peer.py" load --port "$HP" --corpus "$corpus"
  python3 "$here/hnsw-peer.py" recall --port "$HP" --queries "$DATA/queries-dev.jsonl" \
    --semsearch "http://127.0.0.1:${ports[0]}"
  python3 "$here/hnsw-peer.py" bench --port "$HP" --queries "$DATA/queries-dev.jsonl" --conns "$CONNS" --requests 2000 >/dev/null
fi

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
  if [ -n "$HP" ]; then
    c0=$(cpu "$hpid")
    t0=$(date +%s.%N)
    hq=$(python3 "$here/hnsw-peer.py" bench --port "$HP" --queries "$DATA/queries-dev.jsonl" --conns "$CONNS" --requests "$HNSW_REQUESTS")
    c1=$(cpu "$hpid")
    l=$(cut -d' ' -f1 /proc/loadavg)
    hc=$(python3 -c 'import sys; print(f"{(float(sys.argv[2]) - float(sys.argv[1])) / (30 * int(sys.argv[3])) * 1e6:.1f}")' "$c0" "$c1" "$HNSW_REQUESTS")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "redisearch-hnsw" "$hq" "-" "$l" "$hc" "-" | tee -a "$W/runs.tsv"
  fi
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
hnsw = [float(s) for r, b, s, h, l, sc, hc in rows if b == "redisearch-hnsw"]
for r, b, s, h, l, sc, hc in rows:
    if b != "redisearch-hnsw":
        by.setdefault(b, []).append((float(s), float(h), float(sc), float(hc)))
if hnsw:
    print(f"redisearch-hnsw: {statistics.median(hnsw):.0f} QPS (redis-benchmark, per round: "
          + ", ".join(f"{x:.0f}" for x in hnsw) + ")")
for b, v in by.items():
    med = lambda i: statistics.median(x[i] for x in v)
    ratios = ", ".join(f"{x[0] / x[1]:.3f}" for x in v)
    print(f"{b}: search {med(0):.0f} QPS, healthz {med(1):.0f} QPS, search/healthz {med(0) / med(1):.3f}"
          f" (per round: {ratios}); server CPU per request: search {med(2):.1f} us, healthz {med(3):.1f} us")
    if hnsw:
        print(f"{b}: search / redisearch-hnsw {med(0) / statistics.median(hnsw):.3f}")
PY
