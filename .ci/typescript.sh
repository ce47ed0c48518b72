#!/usr/bin/env bash
# The TypeScript round trip (issue 14): clients/typescript (@semsearch/client)
# installed from scratch, openapi.yaml linted (@redocly/cli, .ci/redocly.yaml),
# the generated types checked for drift, everything type-checked with
# `tsc --noEmit --strict` (test/types.check.ts proves `{vector}` compiles and
# `{}` does not), then the package's tests (node's test runner) against a
# live semsearch holding the shared corpus.
#
# Environment (all optional):
#   SEMSEARCH_URL          a running semsearch holding ../shared/data/corpus-dev.jsonl.
#                          Unset: this script starts its own: a private
#                          redis-server on a unix socket in a temp dir, the
#                          corpus written by `semsearch seed`, and
#                          `semsearch serve` on a free loopback port with a
#                          random API key.
#   SEMSEARCH_API_KEY      the key SEMSEARCH_URL wants, if it wants one.
#   SEMSEARCH_SHARED_DATA  the folder of corpus-dev.jsonl and queries-dev.jsonl
#                          (default ../shared/data beside the repository).
#   SEMSEARCH_BIN          the binary for the self-started server (default:
#                          target/debug/semsearch, built here with `cargo build`).
# npm's cache is ${XDG_CACHE_HOME:-$HOME/.cache}/semsearch/npm.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
pkg="$repo/clients/typescript"

node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$node_major" -lt 20 ]; then
  echo "typescript: needs Node.js 20 or later; found $(node --version 2>/dev/null || echo none)" >&2
  exit 1
fi

cache="${XDG_CACHE_HOME:-$HOME/.cache}/semsearch/npm"
mkdir -p "$cache"
echo "typescript: npm ci (versions pinned in clients/typescript/package-lock.json)"
(cd "$pkg" && rm -rf node_modules dist && npm ci --cache "$cache" --prefer-offline --no-audit --no-fund --loglevel=error)

echo "typescript: @redocly/cli lint openapi.yaml"
(cd "$pkg" && npm run --silent lint:openapi)

echo "typescript: generated types up to date with openapi.yaml"
work="$(mktemp -d -t semsearch-ts.XXXXXX)"
redis_pid=""
server_pid=""
cleanup() {
  local status=$?
  set +e
  # Only the processes this script started, by pid.
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null; wait "$redis_pid" 2>/dev/null; fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
(cd "$pkg" && npx openapi-typescript ../../openapi.yaml --output "$work/schema.ts" >/dev/null)
if ! diff -u "$pkg/src/schema.ts" "$work/schema.ts"; then
  echo "typescript: clients/typescript/src/schema.ts is out of date; regenerate it with" >&2
  echo "    (cd clients/typescript && npm run generate)" >&2
  exit 1
fi

echo "typescript: tsc --noEmit --strict, then build"
(cd "$pkg" && npx tsc --noEmit --strict -p tsconfig.json && npx tsc -p tsconfig.json)

shared_data="${SEMSEARCH_SHARED_DATA:-$(cd "$repo/.." && pwd)/shared/data}"
url="${SEMSEARCH_URL:-}"
key="${SEMSEARCH_API_KEY:-}"
if [ -z "$url" ]; then
  bin="${SEMSEARCH_BIN:-}"
  if [ -z "$bin" ]; then
    cargo build -q
    bin="$repo/target/debug/semsearch"
  fi
  socket="$work/redis.sock"
  echo "typescript: private redis-server on $socket, corpus-dev.jsonl"
  redis-server --port 0 --unixsocket "$socket" --unixsocketperm 700 \
    --save "" --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 100); do redis-cli -s "$socket" ping >/dev/null 2>&1 && break; sleep 0.1; done
  "$bin" seed "$shared_data/corpus-dev.jsonl" --redis-url "unix://$socket" --no-progress

  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  url="http://127.0.0.1:$port"
  key="ts-$RANDOM$RANDOM$RANDOM"
  REDIS_URL="unix://$socket" SEMSEARCH_BIND="127.0.0.1:$port" SEMSEARCH_API_KEYS="$key" RUST_LOG=warn \
    "$bin" serve 2>"$work/server.log" &
  server_pid=$!
  ready=""
  for _ in $(seq 600); do
    if curl -fsS "$url/readyz" >/dev/null 2>&1; then ready=1; break; fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$ready" ]; then
    echo "typescript: semsearch did not become ready; its log:" >&2
    cat "$work/server.log" >&2
    exit 1
  fi
fi

echo "typescript: client tests against $url"
(cd "$pkg" && SEMSEARCH_URL="$url" SEMSEARCH_API_KEY="$key" SEMSEARCH_SHARED_DATA="$shared_data" npm test --silent)
echo "typescript: ok"
