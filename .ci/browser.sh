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

url="${SEMSEARCH_BROWSER_URL:-}"
key="${SEMSEARCH_API_KEY:-}"
if [ -z "$url" ]; then
  start_private_server browser data/demo-corpus.jsonl.gz
fi

echo "browser: playground test against $url"
(cd tests/browser && SEMSEARCH_URL="$url" SEMSEARCH_API_KEY="$key" SEMSEARCH_SCREENSHOT="$screenshot" \
  CHROMIUM=/usr/bin/chromium node --test playground.test.mjs)
echo "browser: screenshot at $screenshot"
