#!/usr/bin/env bash
# Browser test of the playground at `/`: Debian's headless chromium, driven by
# playwright-core (pinned in tests/browser/package-lock.json), against a live
# semsearch. The test lets the browser reach nothing but that server.
#
# Environment (all optional):
#   SEMSEARCH_BROWSER_URL  a running semsearch to test, e.g. http://127.0.0.1:8080.
#                          Unset: this script starts its own: a private
#                          redis-server on a unix socket in a temp dir, the
#                          demo corpus (data/demo-corpus.jsonl.gz) written by
#                          `semsearch seed`, and `semsearch serve` on a free
#                          loopback port with a random API key.
#   SEMSEARCH_API_KEY      the key SEMSEARCH_BROWSER_URL wants, if it wants one.
#   SEMSEARCH_SCREENSHOT   where the PNG goes (default target/browser/playground.png).
#   SEMSEARCH_BIN          the binary for the self-started server (default:
#                          target/debug/semsearch, built here with `cargo build`).
# npm's cache is ${XDG_CACHE_HOME:-$HOME/.cache}/semsearch/npm.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

if [ ! -x /usr/bin/chromium ]; then
  echo "browser: installing chromium (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$node_major" -lt 20 ]; then
  echo "browser: playwright-core needs Node.js 20 or later; found $(node --version 2>/dev/null || echo none)" >&2
  exit 1
fi

cache="${XDG_CACHE_HOME:-$HOME/.cache}/semsearch/npm"
mkdir -p "$cache"
(cd tests/browser && npm ci --cache "$cache" --prefer-offline --no-audit --no-fund --loglevel=error)

screenshot="${SEMSEARCH_SCREENSHOT:-$repo/target/browser/playground.png}"
mkdir -p "$(dirname "$screenshot")"

work="$(mktemp -d -t semsearch-browser.XXXXXX)"
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

url="${SEMSEARCH_BROWSER_URL:-}"
key="${SEMSEARCH_API_KEY:-}"
if [ -z "$url" ]; then
  bin="${SEMSEARCH_BIN:-}"
  if [ -z "$bin" ]; then
    cargo build -q
    bin="$repo/target/debug/semsearch"
  fi
  socket="$work/redis.sock"
  echo "browser: private redis-server on $socket, demo corpus"
  redis-server --port 0 --unixsocket "$socket" --unixsocketperm 700 \
    --save "" --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 100); do redis-cli -s "$socket" ping >/dev/null 2>&1 && break; sleep 0.1; done
  "$bin" seed data/demo-corpus.jsonl.gz --redis-url "unix://$socket" --no-progress

  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  url="http://127.0.0.1:$port"
  key="browser-$RANDOM$RANDOM$RANDOM"
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
    echo "browser: semsearch did not become ready; its log:" >&2
    cat "$work/server.log" >&2
    exit 1
  fi
fi

echo "browser: playground test against $url"
(cd tests/browser && SEMSEARCH_URL="$url" SEMSEARCH_API_KEY="$key" SEMSEARCH_SCREENSHOT="$screenshot" \
  CHROMIUM=/usr/bin/chromium node --test playground.test.mjs)
echo "browser: screenshot at $screenshot"
