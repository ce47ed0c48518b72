#!/usr/bin/env bash
# Soak benchmark (issue 16): search load with reloads and key rewrites for N
# minutes against a semsearch this script starts itself, reporting every
# SOAK_REPORT_SECS the requests sent, the non-2xx answers and the server's
# RSS, and at the end RSS after warm-up against RSS at the end.
#
#   benches/soak.sh                      # 10 minutes, the issue's "done when"
#   SOAK_MINUTES=3 benches/soak.sh       # a shorter run
#   SOAK_ROUTER=1 benches/soak.sh        # the load through a router over two shards (issue 22)
#
# What it starts, all private and all stopped on exit (by pid):
#   - redis-server on a unix socket in a temp dir (no TCP port; never 6379),
#     filled with data/demo-corpus.jsonl.gz by `semsearch seed`, and the
#     quick key set as the chatbot sets it;
#   - `semsearch serve` on a free loopback port, default settings (context
#     writes on, change feed on), no API keys. Nothing scrapes /metrics, as in
#     a deployment without Prometheus: that is what issue 16 item 1 is about.
#   - with SOAK_ROUTER=1, instead: two shards (`semsearch serve` with
#     SEMSEARCH_SHARD=0/2 and 1/2, context writes off, as the router's
#     shards run) and `semsearch router` in front of them, which writes the
#     contexts; the load goes to the router. RSS is sampled for all three
#     processes; the ratio reported and checked is the largest of the three.
# Load: `semsearch bench`, one SOAK_REPORT_SECS slice after the other (each
# slice is one report line), SOAK_CONCURRENCY requests in flight, random unit
# query vectors, k=10. Bounded by time and by SOAK_MAX_REQUESTS per slice.
# Churn, at the same time (a small RESP client in python3, stdlib only):
#   - every SOAK_REWRITE_SECS, SOAK_REWRITE_KEYS embedding keys rewritten in
#     place (SET … KEEPTTL) with a changed vector: per-key updates;
#   - every SOAK_QUICK_SECS, the quick key deleted and set again a second
#     later, as the chatbot does after reprocessing: a full reload for each
#     of the two changes (usually two per cycle).
#
# Why a script around `semsearch bench` and not a Rust bench: the load
# generator already exists and is what we measure throughput with; what the
# soak adds is process plumbing (start, churn, sample /proc, stop), which is
# shell's job. A Rust file under benches/ would also become a cargo bench
# target (Cargo.toml autobenches) that `cargo bench` runs for 10 minutes.
#
# Environment (all optional):
#   SOAK_MINUTES        total run time (default 10)
#   SOAK_REPORT_SECS    report interval = one bench slice (default 30)
#   SOAK_WARMUP_SECS    RSS at the first report at or after this is the
#                       warm-up baseline (default 60)
#   SOAK_CONCURRENCY    requests in flight (default 16)
#   SOAK_MAX_REQUESTS   most requests per slice (default 5000000)
#   SOAK_REWRITE_SECS / SOAK_REWRITE_KEYS   key rewrites (default 3 / 10)
#   SOAK_QUICK_SECS     quick key churn period (default 10)
#   SOAK_MAX_RSS_RATIO  end/warm-up RSS ratio above which the run fails (1.2)
#   SOAK_CORPUS         JSONL(.gz) in the chatbot's format (data/demo-corpus.jsonl.gz)
#   SOAK_JSON           also write the per-interval numbers as JSON here
#   SOAK_ROUTER         1: a router over two shards instead of one node
#   SEMSEARCH_BIN       the binary (default: target/release/semsearch, built
#                       here with `cargo build --release`)
# Exit status: 0 when every answer was 2xx and the RSS ratio is within
# SOAK_MAX_RSS_RATIO, 1 otherwise. Say the machine was shared next to any number.
set -euo pipefail
cd "$(dirname "$0")/.."

minutes="${SOAK_MINUTES:-10}"
report_secs="${SOAK_REPORT_SECS:-30}"
warmup_secs="${SOAK_WARMUP_SECS:-60}"
concurrency="${SOAK_CONCURRENCY:-16}"
max_requests="${SOAK_MAX_REQUESTS:-5000000}"
rewrite_secs="${SOAK_REWRITE_SECS:-3}"
rewrite_keys="${SOAK_REWRITE_KEYS:-10}"
quick_secs="${SOAK_QUICK_SECS:-10}"
max_ratio="${SOAK_MAX_RSS_RATIO:-1.2}"
corpus="${SOAK_CORPUS:-data/demo-corpus.jsonl.gz}"
router_mode="${SOAK_ROUTER:-0}"
quick_key="cache:processed_articles:quick"

for tool in redis-server redis-cli python3 curl; do
  command -v "$tool" >/dev/null || { echo "soak: needs $tool" >&2; exit 2; }
done
if [ -z "${SEMSEARCH_BIN:-}" ]; then
  echo "soak: cargo build --release"
  cargo build --release -q
  SEMSEARCH_BIN=target/release/semsearch
fi
slices=$(( minutes * 60 / report_secs ))
[ "$slices" -ge 1 ] || { echo "soak: SOAK_MINUTES is shorter than one report interval" >&2; exit 2; }

work="$(mktemp -d -t semsearch-soak.XXXXXX)"
redis_pid="" server_pid="" churn_pid="" shard_pids=""
logs="target/soak-logs"
cleanup() {
  local status=$?
  set +e
  # Only what this script started, by pid.
  for pid in "$churn_pid" "$server_pid" $shard_pids "$redis_pid"; do
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
  done
  if [ "$status" -ne 0 ]; then
    mkdir -p "$logs" && cp "$work"/*.log "$work"/*.json "$logs"/ 2>/dev/null
    echo "soak: logs of this run are in $logs/" >&2
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
fail() { echo "soak: $*" >&2; exit 2; }

sock="$work/redis.sock"
redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 --save "" --appendonly no \
  --dir "$work" >"$work/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 300); do redis-cli -s "$sock" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -s "$sock" ping >/dev/null 2>&1 || fail "redis-server did not start (see redis.log)"
"$SEMSEARCH_BIN" seed "$corpus" --redis-url "unix://$sock" >"$work/seed.log" 2>&1 || fail "semsearch seed failed (see seed.log)"
sed 's/^/soak: /' "$work/seed.log"
redis-cli -s "$sock" set "$quick_key" 1 >/dev/null

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Polls $1/readyz until 200 while pid $2 lives; $3 names it.
wait_ready() {
  for _ in $(seq 1200); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$1/readyz")" = 200 ] && return 0
    kill -0 "$2" 2>/dev/null || fail "$3 exited at start-up (see $3.log)"
    sleep 0.1
  done
  fail "$3 was not ready after 2 minutes (see $3.log)"
}
port="$(free_port)"
url="http://127.0.0.1:$port"
shard_urls=""
if [ "$router_mode" = 1 ]; then
  for i in 0 1; do
    shard_port="$(free_port)"
    REDIS_URL="unix://$sock" SEMSEARCH_BIND="127.0.0.1:$shard_port" SEMSEARCH_SHARD="$i/2" \
      SEMSEARCH_CONTEXT_TTL_SECS=0 RUST_LOG=warn "$SEMSEARCH_BIN" serve 2>"$work/shard$i.log" &
    shard_pids="$shard_pids $!"
    wait_ready "http://127.0.0.1:$shard_port" "$!" "shard$i"
    shard_urls="${shard_urls:+$shard_urls,}http://127.0.0.1:$shard_port"
  done
  REDIS_URL="unix://$sock" SEMSEARCH_BIND="127.0.0.1:$port" SEMSEARCH_ROUTER_SHARDS="$shard_urls" RUST_LOG=warn \
    "$SEMSEARCH_BIN" router 2>"$work/server.log" &
  server_pid=$!
  wait_ready "$url" "$server_pid" server
else
  REDIS_URL="unix://$sock" SEMSEARCH_BIND="127.0.0.1:$port" RUST_LOG=warn \
    "$SEMSEARCH_BIN" serve 2>"$work/server.log" &
  server_pid=$!
  wait_ready "$url" "$server_pid" server
fi

# The churn: rewrites and quick key cycles until the deadline, counting both.
# The deadline has a margin: on a loaded machine the load slices run late
# (stats between them), and the churn must outlast them; it is killed on exit.
python3 - "$sock" "$corpus" "$(( slices * report_secs * 3 / 2 + 60 ))" "$rewrite_secs" "$rewrite_keys" \
  "$quick_secs" "$quick_key" "$work/churn.json" 2>"$work/churn.log" <<'PY' &
import gzip, json, os, random, socket, sys, time

sock_path, corpus, duration, rewrite_secs, rewrite_keys, quick_secs, quick_key, status_path = sys.argv[1:]
duration, rewrite_secs, rewrite_keys, quick_secs = float(duration), float(rewrite_secs), int(rewrite_keys), float(quick_secs)
with open(corpus, "rb") as f:
    opener = gzip.open if f.read(2) == b"\x1f\x8b" else open
with opener(corpus, "rt") as f:
    docs = [json.loads(line) for line in f if line.strip()]

conn = socket.socket(socket.AF_UNIX)
conn.connect(sock_path)
reader = conn.makefile("rb")

def command(*args):
    """One RESP command; returns the reply's first line (errors abort the churn)."""
    parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    conn.sendall(b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))
    line = reader.readline()
    if line.startswith(b"-"):
        raise SystemExit(f"churn: redis said {line!r}")
    if line.startswith(b"$") and int(line[1:]) >= 0:
        reader.read(int(line[1:]) + 2)
    return line

rng = random.Random(16)
rewrites = quick_cycles = 0
start = time.monotonic()
next_rewrite, next_quick = start + rewrite_secs, start + quick_secs
while (now := time.monotonic()) < start + duration:
    if now >= next_rewrite:
        for doc in rng.sample(docs, min(rewrite_keys, len(docs))):
            # A changed vector: the same direction nudged by noise (unit length is the server's job).
            changed = dict(doc, embedding=[x + rng.gauss(0, 0.01) for x in doc["embedding"]])
            command("SET", "cache:embedding:" + doc["url"], json.dumps(changed, separators=(",", ":")), "KEEPTTL")
            rewrites += 1
        next_rewrite += rewrite_secs
    if now >= next_quick:
        command("DEL", quick_key)
        time.sleep(1)
        command("SET", quick_key, "1")
        quick_cycles += 1
        next_quick += quick_secs
    with open(status_path + ".tmp", "w") as f:
        json.dump({"rewrites": rewrites, "quick_cycles": quick_cycles}, f)
    os.replace(status_path + ".tmp", status_path)
    time.sleep(0.2)
PY
churn_pid=$!

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/${1:-$server_pid}/status"; }
# Where the node's refresh counters are: the router shows each shard's stats.
refresh_of='d["refresh"]'
[ "$router_mode" = 1 ] && refresh_of='d["shards"][0]["stats"]["refresh"]'
# Per process (the server, then each shard): RSS after warm-up and now, in KiB.
declare -A warm_of=() now_of=()
json_field() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {"d": d}))' "$@"; }

what="semsearch serve"
[ "$router_mode" = 1 ] && what="semsearch router over shards $shard_urls (pids$shard_pids)"
echo "soak: $minutes min against $what at $url (pid $server_pid), $concurrency in flight, report every ${report_secs}s;" \
  "rewrite $rewrite_keys keys every ${rewrite_secs}s, quick key cycle every ${quick_secs}s"
printf 'soak: %8s %12s %9s %9s %9s %8s %8s %8s\n' elapsed_s requests non_2xx transport rss_mib reloads updates rewrites
total_requests=0 total_non2xx=0 total_transport=0 warm_rss="" rss=""
intervals="[]"
for i in $(seq "$slices"); do
  "$SEMSEARCH_BIN" bench --url "$url" --duration "${report_secs}s" --warmup 0s --concurrency "$concurrency" \
    --max-requests "$max_requests" --json "$work/slice.json" >"$work/bench.log" 2>&1 \
    || fail "semsearch bench failed in interval $i (see bench.log)"
  for pid in "$server_pid" $shard_pids; do
    kill -0 "$pid" 2>/dev/null || { echo "soak: a server ($pid) died (see server.log, shard*.log)" >&2; exit 1; }
  done
  if [ "$i" -lt "$slices" ]; then kill -0 "$churn_pid" 2>/dev/null || fail "the churn stopped early (see churn.log)"; fi
  # bench's errors_by_kind: [{source: problem|status|client_timeout|connect|..., count}, ...]
  ok="$(json_field "$work/slice.json" 'd["levels"][0]["ok"]')"
  non2xx="$(json_field "$work/slice.json" 'sum(e["count"] for e in d["levels"][0]["errors_by_kind"] if e["source"] in ("problem", "status"))')"
  transport="$(json_field "$work/slice.json" 'sum(e["count"] for e in d["levels"][0]["errors_by_kind"] if e["source"] not in ("problem", "status"))')"
  sent=$(( ok + non2xx + transport ))
  rss="$(rss_kib)"
  curl -s "$url/v1/stats" >"$work/stats.json"
  reloads="$(json_field "$work/stats.json" "${refresh_of}[\"reloads\"]")"
  updates="$(json_field "$work/stats.json" "${refresh_of}[\"docs_updated\"]")"
  rewrites="$(json_field "$work/churn.json" 'd["rewrites"]' 2>/dev/null || echo 0)"
  total_requests=$(( total_requests + sent )); total_non2xx=$(( total_non2xx + non2xx ))
  total_transport=$(( total_transport + transport ))
  elapsed=$(( i * report_secs ))
  if [ -z "$warm_rss" ] && [ "$elapsed" -ge "$warmup_secs" ]; then warm_rss="$rss"; fi
  for pid in "$server_pid" $shard_pids; do
    now_of[$pid]="$(rss_kib "$pid")"
    if [ -z "${warm_of[$pid]:-}" ] && [ "$elapsed" -ge "$warmup_secs" ]; then warm_of[$pid]="${now_of[$pid]}"; fi
  done
  printf 'soak: %8d %12d %9d %9d %9.1f %8d %8d %8d\n' "$elapsed" "$sent" "$non2xx" "$transport" \
    "$(echo "$rss" | awk '{print $1/1024}')" "$reloads" "$updates" "$rewrites"
  intervals="$(python3 -c 'import json,sys; a=json.loads(sys.argv[1]); a.append(dict(zip(["elapsed_s","requests","non_2xx","transport_errors","rss_kib","reloads","docs_updated","rewrites"], map(int, sys.argv[2:])))); print(json.dumps(a))' \
    "$intervals" "$elapsed" "$sent" "$non2xx" "$transport" "$rss" "$reloads" "$updates" "$rewrites")"
done

warm_rss="${warm_rss:-$rss}"
ratio="$(awk -v a="$rss" -v b="$warm_rss" 'BEGIN {printf "%.3f", a / b}')"
if [ "$router_mode" = 1 ]; then
  # The largest ratio of the three processes is the one checked.
  for pid in "$server_pid" $shard_pids; do
    w="${warm_of[$pid]:-${now_of[$pid]}}"
    r="$(awk -v a="${now_of[$pid]}" -v b="$w" 'BEGIN {printf "%.3f", a / b}')"
    name="router"; [ "$pid" = "$server_pid" ] || name="shard (pid $pid)"
    echo "soak: $name RSS after warm-up $(awk -v k="$w" 'BEGIN {printf "%.1f", k/1024}') MiB," \
      "at the end $(awk -v k="${now_of[$pid]}" 'BEGIN {printf "%.1f", k/1024}') MiB: ratio $r"
    ratio="$(awk -v a="$ratio" -v b="$r" 'BEGIN {printf "%.3f", (b > a) ? b : a}')"
  done
fi
quick_cycles="$(json_field "$work/churn.json" 'd["quick_cycles"]' 2>/dev/null || echo 0)"
echo "soak: total $total_requests requests, $total_non2xx non-2xx, $total_transport transport errors;" \
  "$reloads reloads, $quick_cycles quick key cycles, $rewrites key rewrites"
echo "soak: RSS after warm-up (${warmup_secs}s) $(awk -v k="$warm_rss" 'BEGIN {printf "%.1f", k/1024}') MiB," \
  "at the end $(awk -v k="$rss" 'BEGIN {printf "%.1f", k/1024}') MiB: ratio $ratio (limit $max_ratio)"
if [ -n "${SOAK_JSON:-}" ]; then
  python3 -c 'import json,sys; print(json.dumps({"intervals": json.loads(sys.argv[1]), "rss_warm_kib": int(sys.argv[2]), "rss_end_kib": int(sys.argv[3]), "ratio": float(sys.argv[4])}, indent=1))' \
    "$intervals" "$warm_rss" "$rss" "$ratio" >"$SOAK_JSON"
fi
if [ "$total_non2xx" -eq 0 ] && [ "$total_transport" -eq 0 ] && awk -v r="$ratio" -v m="$max_ratio" 'BEGIN {exit !(r <= m)}'; then
  echo "soak: PASS"
else
  echo "soak: FAIL"
  exit 1
fi
