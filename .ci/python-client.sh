#!/usr/bin/env bash
# The Python client, clients/python (package semsearch_client), generated
# from openapi.yaml by openapi-python-client (pinned in
# .ci/python-client/requirements.txt, settings and README template beside it):
#   - drift: a fresh generation must equal the committed copy;
#   - install: `pip install clients/python` into a fresh venv (a real build
#     of the wheel, not the source tree on PYTHONPATH);
#   - live: tests/python against a semsearch holding corpus-dev.jsonl.
# With --write it only regenerates clients/python (run it after changing
# openapi.yaml or the generator's settings, and commit the result).
#
# Environment (all optional):
#   SEMSEARCH_URL          a running semsearch holding ../shared/data/corpus-dev.jsonl.
#                          Unset: this script starts its own (.ci/private-server.sh).
#   SEMSEARCH_API_KEY      the key SEMSEARCH_URL wants, if it wants one.
#   SEMSEARCH_SHARED_DATA  the folder of corpus-dev.jsonl and queries-dev.jsonl
#                          (default ../shared/data beside the repository).
#   SEMSEARCH_BIN          the binary for the self-started server.
# pip's cache is ${XDG_CACHE_HOME:-$HOME/.cache}/semsearch/pip.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
out="clients/python"

work="$(mktemp -d -t semsearch-py.XXXXXX)"
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
export PIP_CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/semsearch/pip"
pip_quiet=(-q --disable-pip-version-check)

echo "python-client: generator (.ci/python-client/requirements.txt)"
python3 -m venv "$work/tools"
"$work/tools/bin/pip" install "${pip_quiet[@]}" -r .ci/python-client/requirements.txt
generate() {
  "$work/tools/bin/openapi-python-client" generate --path openapi.yaml --meta pdm \
    --config .ci/python-client/config.yaml --custom-template-path .ci/python-client/templates \
    --output-path "$1" --fail-on-warning >"$work/generate.log" 2>&1 || { cat "$work/generate.log" >&2; return 1; }
}

if [ "${1:-}" = "--write" ]; then
  generate "$work/fresh"
  rm -rf "$out"
  cp -r "$work/fresh" "$out"
  echo "python-client: regenerated $out"
  exit 0
fi

echo "python-client: $out is what openapi.yaml generates"
generate "$work/fresh"
if ! diff -ru "$out" "$work/fresh" >"$work/drift.diff"; then
  head -n 60 "$work/drift.diff" >&2
  echo "python-client: $out is out of date with openapi.yaml; regenerate it with" >&2
  echo "    bash .ci/python-client.sh --write" >&2
  exit 1
fi
# The drift check must be able to fail: a one-line edit is found.
cp -r "$out" "$work/edited"
echo "# edited by hand" >> "$work/edited/semsearch_client/client.py"
if diff -ru "$work/edited" "$work/fresh" >/dev/null; then
  echo "python-client: the drift check missed a hand edit" >&2
  exit 1
fi

echo "python-client: pip install $out into a fresh venv"
# From a copy: the build backend writes its build directories beside the sources.
cp -r "$out" "$work/package"
python3 -m venv "$work/user"
"$work/user/bin/pip" install "${pip_quiet[@]}" "$work/package" "$(grep '^pytest==' .ci/python-client/requirements.txt)"
"$work/user/bin/python" - "$repo/$out" "$work/package" <<'PY'
import pathlib, sys
import semsearch_client
where = pathlib.Path(semsearch_client.__file__).resolve()
for tree in sys.argv[1:]:
    if pathlib.Path(tree).resolve() in where.parents:
        sys.exit(f"semsearch_client was imported from the source tree ({where}), not the installed wheel")
print(f"python-client: installed semsearch_client at {where.parent}")
PY

shared_data="${SEMSEARCH_SHARED_DATA:-$(cd "$repo/.." && pwd)/shared/data}"
url="${SEMSEARCH_URL:-}"
key="${SEMSEARCH_API_KEY:-}"
if [ -z "$url" ]; then
  start_private_server python-client "$shared_data/corpus-dev.jsonl"
fi

echo "python-client: tests/python against $url"
# From the temp dir, so `semsearch_client` can only come from the venv.
(cd "$work" && SEMSEARCH_URL="$url" SEMSEARCH_API_KEY="$key" SEMSEARCH_SHARED_DATA="$shared_data" \
  "$work/user/bin/python" -m pytest -q -p no:cacheprovider "$repo/tests/python")
echo "python-client: ok"
