#!/usr/bin/env bash
# router + 3 shards vs one node, 100k synthetic docs, same box, same run.
set -euo pipefail
B=${SEMSEARCH_BIN:-target/release/semsearch}
W=${WORKDIR:-/tmp/semsearch-router-bench}; rm -rf $W; mkdir -p $W
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
redis-server --port 0 --unixsocket $W/redis.sock --unixsocketperm 700 --save "" --appendonly no --dir $W >$W/redis.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do redis-cli -s $W/redis.sock ping >/dev/null 2>&1 && break; sleep 0.1; done
R="unix://$W/redis.sock"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() { # name port extra-env...
  local name=$1 p=$2; shift 2
  env -i PATH=$PATH HOME=$HOME REDIS_URL=$R SEMSEARCH_BIND=127.0.0.1:$p SEMSEARCH_MODEL_DIR=/nonexistent RUST_LOG=warn "$@" $B ${CMD:-serve} >$W/$name.log 2>&1 &
  pids+=($!)
}
ready() { for _ in $(seq 1200); do curl -fsS "http://127.0.0.1:$1/readyz" >/dev/null 2>&1 && return 0; sleep 0.25; done; echo "not ready $1"; exit 1; }
PS=$(port); start single $PS
ready $PS
LEVELS=${LEVELS:-1,8,32}; DUR=${DUR:-10s}
$B bench --url http://127.0.0.1:$PS --synthetic 100000 --dim 384 --redis $R --duration $DUR --concurrency $LEVELS --no-progress --json $W/single-1.json > $W/single-1.txt
P0=$(port); P0b=$(port); P1=$(port); P2=$(port); PR=$(port)
start s0a $P0 SEMSEARCH_SHARD=0/3 SEMSEARCH_CONTEXT_TTL_SECS=0
start s0b $P0b SEMSEARCH_SHARD=0/3 SEMSEARCH_CONTEXT_TTL_SECS=0
start s1 $P1 SEMSEARCH_SHARD=1/3 SEMSEARCH_CONTEXT_TTL_SECS=0
start s2 $P2 SEMSEARCH_SHARD=2/3 SEMSEARCH_CONTEXT_TTL_SECS=0
for p in $P0 $P0b $P1 $P2; do ready $p; done
CMD=router start router $PR SEMSEARCH_ROUTER_SHARDS="http://127.0.0.1:$P0|http://127.0.0.1:$P0b,http://127.0.0.1:$P1,http://127.0.0.1:$P2"
ready $PR
curl -s http://127.0.0.1:$PR/v1/stats > $W/router-stats-before.json
$B bench --url http://127.0.0.1:$PR --duration $DUR --concurrency $LEVELS --no-progress --json $W/router.json > $W/router.txt
curl -s http://127.0.0.1:$PR/v1/stats > $W/router-stats.json
# The single node again, to see drift on the shared machine.
$B bench --url http://127.0.0.1:$PS --duration $DUR --concurrency $LEVELS --no-progress --json $W/single-2.json > $W/single-2.txt
curl -s http://127.0.0.1:$PS/v1/stats > $W/single-stats.json
for p in $P0 $P1 $P2; do curl -s http://127.0.0.1:$p/v1/stats; echo; done > $W/shard-stats.jsonl
ps -o pid,rss,args -p "$(IFS=,; echo "${pids[*]}")" > $W/rss.txt
echo done
