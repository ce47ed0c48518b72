#!/usr/bin/env bash
# Checks the container files without a Docker engine. None runs on our
# machines or in CI, so the image is built by its users, not by us (see
# docs/deploy.md). What can be checked here is:
#   - Dockerfile: hadolint (rules waived in .hadolint.yaml, each with its reason);
#   - docker-compose.yml: the compose-spec JSON schema, as vendored by
#     check-jsonschema.
# Each tool must also reject a known-bad file, so a check that cannot fail
# (a tool that found no input, a schema that accepts anything) fails here.
# Python tools are pinned in .ci/requirements-container.txt; the pip cache
# is kept in ${XDG_CACHE_HOME:-$HOME/.cache}/semsearch/pip.
set -euo pipefail
cd "$(dirname "$0")/.."

work="$(mktemp -d -t semsearch-container.XXXXXX)"
trap 'rm -rf "$work"' EXIT

echo "container: linters (.ci/requirements-container.txt)"
python3 -m venv "$work/venv"
PIP_CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/semsearch/pip" \
  "$work/venv/bin/pip" install -q --disable-pip-version-check -r .ci/requirements-container.txt
hadolint() { "$work/venv/bin/hadolint" --no-color --config .hadolint.yaml "$@"; }
compose_schema() { "$work/venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec "$@"; }
"$work/venv/bin/hadolint" --version

echo "container: hadolint Dockerfile"
hadolint Dockerfile

echo "container: docker-compose.yml against the compose-spec schema"
compose_schema docker-compose.yml

echo "container: both checks reject broken files"
printf 'FROM debian\nRUN cd /tmp && apt-get install curl\n' > "$work/Dockerfile.bad"
if hadolint "$work/Dockerfile.bad" >"$work/hadolint.out" 2>&1; then
  echo "container: hadolint accepted an unpinned, unversioned Dockerfile" >&2
  exit 1
fi
printf 'services:\n  semsearch:\n    image: semsearch\n    enviroment:\n      RUST_LOG: info\n' > "$work/compose.bad.yml"
if compose_schema "$work/compose.bad.yml" >"$work/schema.out" 2>&1; then
  echo "container: the compose schema accepted a misspelt service key (enviroment)" >&2
  exit 1
fi

echo "container: ok"
