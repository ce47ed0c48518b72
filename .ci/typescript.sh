#!/usr/bin/env bash
# The TypeScript round trip (issue 14): clients/typescript (@semsearch/client)
# installed from scratch, openapi.yaml linted (@redocly/cli, .ci/redocly.yaml),
# the generated types checked for drift, everything type-checked with
# `tsc --noEmit --strict` (test/types.check.ts proves `{vector}` compiles and
# `{}` does not), then the package's tests (node's test runner) against a
# live semsearch holding the shared corpus. Last, the package as users get
# it: `npm pack` (its contents checked, `npm publish --dry-run` accepting
# it), the tarball installed into three fresh projects (install-test/:
# CommonJS as NestJS compiles, nodenext CommonJS, ESM) that type-check and
# call the same server.
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
# npm's cache is ${XDG_CACHE_HOME:-$HOME/.cache}/semsearch/npm: used when it
# is there (--prefer-offline), filled from the registry when it is not.
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
(cd "$pkg" && rm -rf node_modules dist build && npm ci --cache "$cache" --prefer-offline --no-audit --no-fund --loglevel=error)

echo "typescript: @redocly/cli lint openapi.yaml"
(cd "$pkg" && npm run --silent lint:openapi)

echo "typescript: generated types up to date with openapi.yaml"
work="$(mktemp -d -t semsearch-ts.XXXXXX)"
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
(cd "$pkg" && npx openapi-typescript ../../openapi.yaml --output "$work/schema.ts" >/dev/null)
if ! diff -u "$pkg/src/schema.ts" "$work/schema.ts"; then
  echo "typescript: clients/typescript/src/schema.ts is out of date; regenerate it with" >&2
  echo "    (cd clients/typescript && npm run generate)" >&2
  exit 1
fi

echo "typescript: tsc --noEmit --strict, then build (the package: dist/esm, dist/cjs; the tests: build/)"
(cd "$pkg" && npx tsc --noEmit --strict -p tsconfig.json && npm run --silent build && npm run --silent build:test)

shared_data="${SEMSEARCH_SHARED_DATA:-$(cd "$repo/.." && pwd)/shared/data}"
url="${SEMSEARCH_URL:-}"
key="${SEMSEARCH_API_KEY:-}"
if [ -z "$url" ]; then
  start_private_server typescript "$shared_data/corpus-dev.jsonl"
fi

echo "typescript: client tests against $url"
(cd "$pkg" && SEMSEARCH_URL="$url" SEMSEARCH_API_KEY="$key" SEMSEARCH_SHARED_DATA="$shared_data" npm test --silent)

echo "typescript: npm pack, then the tarball installed into fresh projects (install-test/)"
tarball="$work/$(cd "$pkg" && npm pack --pack-destination "$work" --silent --loglevel=error | tail -n 1)"
tar tzf "$tarball" | sort > "$work/packed.txt"
for want in package/package.json package/README.md package/dist/esm/index.js package/dist/esm/index.d.ts \
  package/dist/cjs/index.js package/dist/cjs/index.d.ts package/dist/cjs/package.json; do
  grep -qx "$want" "$work/packed.txt" || { echo "typescript: $want is not in the tarball" >&2; cat "$work/packed.txt" >&2; exit 1; }
done
if grep -v -e '^package/dist/' -e '^package/package.json$' -e '^package/README.md$' "$work/packed.txt"; then
  echo "typescript: the tarball holds more than dist/, package.json and README.md (above)" >&2
  exit 1
fi
(cd "$pkg" && npm publish --dry-run --ignore-scripts --loglevel=error >/dev/null) || {
  echo "typescript: npm publish --dry-run refuses the package" >&2
  exit 1
}
versions="$(cd "$pkg" && node -p 'const d = require("./package.json").devDependencies; `typescript@${d.typescript} @types/node@${d["@types/node"]}`')"
for project in commonjs nodenext-commonjs esm; do
  dir="$work/install-$project"
  cp -r "$pkg/install-test/$project" "$dir"
  cp "$pkg/install-test/main.ts" "$dir/"
  # shellcheck disable=SC2086 # two package specs
  (cd "$dir" && npm install --cache "$cache" --prefer-offline --no-audit --no-fund --loglevel=error \
    "$tarball" $versions >/dev/null && node node_modules/typescript/bin/tsc -p tsconfig.json)
  (cd "$dir" && SEMSEARCH_URL="$url" SEMSEARCH_API_KEY="$key" node dist/main.js "$project")
done
# The type check must be able to fail: the esm project with the package
# swapped for a stub that types everything `any` breaks on the
# @ts-expect-error line (TS2578: unused directive).
dir="$work/install-untyped"
cp -r "$work/install-esm" "$dir"
stub="$dir/node_modules/@semsearch/client"
rm -rf "$stub" && mkdir -p "$stub"
printf '{"name": "@semsearch/client", "type": "module", "types": "index.d.ts"}\n' > "$stub/package.json"
printf 'export const Semsearch: any, SemsearchError: any;\nexport type SearchRequest = any;\nexport type SearchResponse = any;\n' \
  > "$stub/index.d.ts"
if (cd "$dir" && node node_modules/typescript/bin/tsc -p tsconfig.json --noEmit) >"$work/untyped.out" 2>&1 \
  || ! grep -q "TS2578" "$work/untyped.out"; then
  echo "typescript: install-test type-checked against an untyped stub without TS2578; it proves nothing:" >&2
  cat "$work/untyped.out" >&2
  exit 1
fi
echo "typescript: ok"
