#!/usr/bin/env bash
# Checks the Kubernetes manifests (deploy/kubernetes/) without a cluster:
#   - each overlay is rendered by .ci/kustomize-render.py (the kustomize
#     subset we use; it refuses fields it does not implement) and its
#     workloads checked for what the issue asks: /readyz and /healthz probes,
#     requests and limits, a PodDisruptionBudget, an HPA, and in sharded mode
#     shards 0..n-1 matching the router's list;
#   - every rendered object is validated with kubernetes-validate --strict
#     against the Kubernetes 1.31 schemas (unknown fields are errors).
# Each check must also reject a known-bad input, so a check that cannot fail
# fails here. Python tools are pinned in .ci/requirements-kubernetes.txt; the
# pip cache is kept in ${XDG_CACHE_HOME:-$HOME/.cache}/semsearch/pip.
set -euo pipefail
cd "$(dirname "$0")/.."

k8s_version=1.31.0
work="$(mktemp -d -t semsearch-kubernetes.XXXXXX)"
trap 'rm -rf "$work"' EXIT

echo "kubernetes: tools (.ci/requirements-kubernetes.txt)"
python3 -m venv "$work/venv"
PIP_CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/semsearch/pip" \
  "$work/venv/bin/pip" install -q --disable-pip-version-check -r .ci/requirements-kubernetes.txt
render() { "$work/venv/bin/python" .ci/kustomize-render.py "$@"; }
validate() { "$work/venv/bin/kubernetes-validate" --strict --quiet -k "$k8s_version" "$@"; }

for overlay in replicas sharded; do
  echo "kubernetes: overlays/$overlay (render, check, validate against Kubernetes $k8s_version)"
  render "deploy/kubernetes/overlays/$overlay" > "$work/$overlay.yaml"
  validate "$work/$overlay.yaml"
  echo "kubernetes: overlays/$overlay: $(grep -c '^kind:' "$work/$overlay.yaml") objects valid"
done

echo "kubernetes: both checks reject broken manifests"
# A misspelt field (readinesProbe) is an unknown property under --strict.
sed 's/readinessProbe:/readinesProbe:/' "$work/replicas.yaml" > "$work/bad-field.yaml"
if validate "$work/bad-field.yaml" >"$work/validate.out" 2>&1; then
  echo "kubernetes: kubernetes-validate accepted a misspelt readinessProbe" >&2
  exit 1
fi
# A router listing two shards in front of three shard StatefulSets.
cp -r deploy/kubernetes "$work/k"
sed -i 's#,http://semsearch-shard-2-0[^,]*$##' "$work/k/overlays/sharded/router.yaml"
if render "$work/k/overlays/sharded" >"$work/render.out" 2>&1; then
  echo "kubernetes: the renderer accepted a router that lists 2 of 3 shards" >&2
  exit 1
fi
echo "kubernetes: ok"
