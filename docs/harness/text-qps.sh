#!/usr/bin/env bash
# Text search at 1 and 16 connections, every question new, one run.
#
# Seeds a private redis-server with the 2,000 shared documents, starts the
# server with the local MiniLM model and both question-embedding caches off
# (SEMSEARCH_QUERY_CACHE_CAPACITY=0, SEMSEARCH_QUERY_CACHE_TTL_SECS=0), and
# drives `{"text": …}` searches with wrk: the 30 shared query texts, each
# request with a suffix no other request had (" <thread>x<counter>"), so no
# cache could answer even if one were on. Modes: `vector` and the default
# (hybrid). Prints QPS, p50 and p99 at 1 and 16 connections, the ratio, and
# the FLOP floor of the same questions (see flop_floor below).
#
#   docs/harness/text-qps.sh
#   BIN=/tmp/other/semsearch DUR=20s docs/harness/text-qps.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
DATA=${SEMSEARCH_SHARED_DATA:-$here/../../../shared/data}
BIN=${BIN:-target/release/semsearch}
DUR=${DUR:-10s}
MODEL=${SEMSEARCH_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/semsearch/models/all-MiniLM-L6-v2}
W=${WORKDIR:-/tmp/semsearch-text-qps}
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
"$BIN" seed "$DATA/corpus-dev.jsonl" --redis-url "$R" --ttl-secs 0 --no-progress >/dev/null
P=$(port)
env -i PATH="$PATH" HOME="$HOME" REDIS_URL="$R" SEMSEARCH_BIND="127.0.0.1:$P" SEMSEARCH_MODEL_DIR="$MODEL" \
  SEMSEARCH_EMBEDDER=local SEMSEARCH_QUERY_CACHE_CAPACITY=0 SEMSEARCH_QUERY_CACHE_TTL_SECS=0 \
  SEMSEARCH_LEXICAL_LANGUAGE=english RUST_LOG=warn "$BIN" serve >"$W/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 1200); do curl -fsS "http://127.0.0.1:$P/readyz" >/dev/null 2>&1 && break; sleep 0.25; done
curl -fsS "http://127.0.0.1:$P/readyz" >/dev/null

python3 "$here/wrk-search-bodies.py" "$DATA/queries-dev.jsonl" --text --distinct --mode vector >"$W/vector.lua"
python3 "$here/wrk-search-bodies.py" "$DATA/queries-dev.jsonl" --text --distinct >"$W/hybrid.lua"
# Warm-up: the model's weights in cache, the allocator.
wrk -t1 -c4 -d3s -s "$W/vector.lua" "http://127.0.0.1:$P/v1/search" >/dev/null

run() { # mode conns threads
  local out
  out=$(wrk -t"$3" -c"$2" -d"$DUR" --latency -s "$W/$1.lua" "http://127.0.0.1:$P/v1/search")
  echo "$out" >"$W/wrk-$1-c$2.txt"
  local qps p50 p99
  qps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$qps" "$p50" "$p99" "$(cut -d' ' -f1 /proc/loadavg)"
}
printf 'mode\tconns\tqps\tp50\tp99\tload1\n'
{
  run vector 1 1
  run vector 16 2
  run hybrid 1 1
  run hybrid 16 2
} | tee "$W/runs.tsv"
python3 - "$W/runs.tsv" <<'PY'
import sys
rows = {(m, int(c)): float(q) for m, c, q, *_ in (l.split("\t") for l in open(sys.argv[1]) if l.strip())}
for mode in ("vector", "hybrid"):
    print(f"{mode}: QPS at 16 connections / at 1 = {rows[(mode, 16)] / rows[(mode, 1)]:.2f}")
PY

# The FLOP floor of the same questions: word pieces counted with the
# model's own tokenizer.json (BERT uncased WordPiece, reimplemented here
# for counting: lower case, accents stripped, split on spaces and
# punctuation, greedy longest match), plus [CLS] and [SEP].
python3 - "$DATA/queries-dev.jsonl" "$MODEL/tokenizer.json" "$MODEL/config.json" <<'PY'
import json, os, sys, unicodedata
queries = [json.loads(l)["query"] for l in open(sys.argv[1]) if l.strip()]
vocab = json.load(open(sys.argv[2]))["model"]["vocab"]
cfg = json.load(open(sys.argv[3]))
def words(text):
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    out, cur = [], ""
    for c in text:
        if c.isspace():
            out += [cur] if cur else []; cur = ""
        elif unicodedata.category(c).startswith("P") or (33 <= ord(c) <= 47 or 58 <= ord(c) <= 64 or 91 <= ord(c) <= 96 or 123 <= ord(c) <= 126):
            out += [cur] if cur else []; out.append(c); cur = ""
        else:
            cur += c
    return out + ([cur] if cur else [])
def pieces(word):
    n, start = 0, 0
    while start < len(word):
        end = len(word)
        while end > start and ((word[start:end] if start == 0 else "##" + word[start:end]) not in vocab):
            end -= 1
        if end == start:
            return 1  # [UNK]
        n += 1; start = end
    return n
def tokens(text):
    return 2 + sum(pieces(w) for w in words(text))
# A typical request's question: the text and a suffix like " 1x123".
T = [tokens(q + " 1x123") for q in queries]
t_mean = sum(T) / len(T)
h, L, ff, vocab_n = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["intermediate_size"], cfg["vocab_size"]
dense = L * (4 * h * h + 2 * h * ff)          # the matrices a token goes through
emb = (vocab_n + cfg["max_position_embeddings"] + cfg["type_vocab_size"]) * h  # looked up, not multiplied
def flops(t):
    # 2 FLOP per multiply-add: dense layers per token, plus QK^T and AV per layer.
    return 2 * dense * t + L * 2 * 2 * t * t * h
per_q = sum(flops(t) for t in T) / len(T)
per_q_all = sum(2 * (dense + emb) * t + L * 4 * t * t * h for t in T) / len(T)
cores = os.cpu_count()
mhz = max(float(l.split(":")[1]) for l in open("/proc/cpuinfo") if l.startswith("cpu MHz"))
# f32 FLOP per cycle and core from FMA, 2 FLOP per lane: AMD family 26
# (Zen 5) has two 512-bit FMA pipes, Zen 4 and most others two 256-bit ones.
cpuinfo = open("/proc/cpuinfo").read()
field = lambda name: next((l.split(":")[1].strip() for l in cpuinfo.splitlines() if l.startswith(name)), "")
zen5 = field("vendor_id") == "AuthenticAMD" and field("cpu family") == "26"
flop_cycle, pipes = (64, "two 512-bit FMA pipes (Zen 5)") if zen5 else (32, "two 256-bit FMA pipes")
peak = cores * flop_cycle * mhz * 1e6
print(f"tokens per question (with [CLS], [SEP], suffix): mean {t_mean:.1f}, min {min(T)}, max {max(T)}")
print(f"FLOP per question = 2 x {dense/1e6:.2f}M dense params x T + {L} layers x 4 x T^2 x {h} = {per_q/1e6:.0f} MFLOP"
      f" (counting the {emb/1e6:.1f}M embedding-table params as if multiplied, the brief's 2 x 22.7M x T: {per_q_all/1e6:.0f} MFLOP)")
print(f"peak f32: {cores} cores x {flop_cycle} FLOP/cycle ({pipes}) x {mhz:.0f} MHz (nominal; a boost is higher)"
      f" = {peak/1e9:.0f} GFLOP/s -> floor {peak/per_q:.0f} questions/s ({peak/per_q_all:.0f} with the brief's count)")
PY
