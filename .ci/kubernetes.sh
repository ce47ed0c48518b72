#!/usr/bin/env bash
# Checks the Kubernetes manifests (deploy/kubernetes/) without a cluster:
#   - each overlay is rendered by `kubectl kustomize` (kustomize v5, built
#     into kubectl), the renderer users run, and the render checked by
#     .ci/kubernetes-policy.py (probes, requests and limits, PDB and HPA,
#     scrape annotations, the sharded mode's shard list);
#   - every rendered object is validated with kubernetes-validate --strict
#     against the Kubernetes 1.31 schemas (unknown fields are errors);
#   - an overlay of the kind the Deployment's comment tells users to write
#     (`images:` naming their registry) renders with that image everywhere.
# Each check must also reject a known-bad input, so a check that cannot fail
# fails here. Python tools are pinned in .ci/requirements-kubernetes.txt; the
# pip cache is kept in ${XDG_CACHE_HOME:-$HOME/.cache}/semsearch/pip.
set -euo pipefail
cd "$(dirname "$0")/.."

k8s_version=1.31.0
# `labels:` and `components:` need kustomize v4.1 or later; kubectl embeds
# kustomize v5 since Kubernetes 1.27.
min_kubectl_minor=27
if ! command -v kubectl >/dev/null 2>&1; then
  echo "kubernetes: kubectl is not installed. Install kubectl 1.$min_kubectl_minor or later (it embeds kustomize v5):" >&2
  echo "  Debian's kubernetes-client package is 1.20 (kustomize v2) and cannot render these overlays;" >&2
  echo "  use the Kubernetes project's apt repository or your platform's kubectl package." >&2
  exit 1
fi
kubectl_minor="$(kubectl version --client -o json | python3 -c 'import json, sys, re; print(re.sub(r"\D.*", "", json.load(sys.stdin)["clientVersion"]["minor"]))')"
if [ "$kubectl_minor" -lt "$min_kubectl_minor" ]; then
  echo "kubernetes: kubectl 1.$kubectl_minor is too old: its kustomize cannot render labels/components; need 1.$min_kubectl_minor or later" >&2
  exit 1
fi
echo "kubernetes: $(kubectl version --client | tr '\n' ' ')"

work="$(mktemp -d -t semsearch-kubernetes.XXXXXX)"
trap 'rm -rf "$work"' EXIT

echo "kubernetes: tools (.ci/requirements-kubernetes.txt)"
python3 -m venv "$work/venv"
PIP_CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/semsearch/pip" \
  "$work/venv/bin/pip" install -q --disable-pip-version-check -r .ci/requirements-kubernetes.txt
policy() { "$work/venv/bin/python" .ci/kubernetes-policy.py "$@"; }
validate() { "$work/venv/bin/kubernetes-validate" --strict --quiet -k "$k8s_version" "$@"; }

for overlay in replicas sharded; do
  echo "kubernetes: overlays/$overlay (kubectl kustomize, policy, validate against Kubernetes $k8s_version)"
  kubectl kustomize "deploy/kubernetes/overlays/$overlay" > "$work/$overlay.yaml"
  policy check "$work/$overlay.yaml"
  validate "$work/$overlay.yaml"
  echo "kubernetes: overlays/$overlay: $(grep -c '^kind:' "$work/$overlay.yaml") objects valid"
done

echo "kubernetes: your own overlay with images: (registry and tag) on top of each mode"
image="registry.example.com/team/semsearch:1.2.3"
cp -r deploy/kubernetes "$work/k"
for overlay in replicas sharded; do
  mkdir -p "$work/k/overlays/mine-$overlay"
  cat > "$work/k/overlays/mine-$overlay/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../$overlay
images:
  - name: semsearch
    newName: ${image%:*}
    newTag: "${image##*:}"
YAML
  kubectl kustomize "$work/k/overlays/mine-$overlay" > "$work/mine-$overlay.yaml"
  policy check --image "$image" "$work/mine-$overlay.yaml"
done

echo "kubernetes: every check rejects a broken input"
policy prove "$work/replicas.yaml" "$work/sharded.yaml"
# A misspelt field (readinesProbe) is an unknown property under --strict.
sed 's/readinessProbe:/readinesProbe:/' "$work/replicas.yaml" > "$work/bad-field.yaml"
if validate "$work/bad-field.yaml" >"$work/validate.out" 2>&1; then
  echo "kubernetes: kubernetes-validate accepted a misspelt readinessProbe" >&2
  exit 1
fi
# kubectl kustomize itself refuses a kustomization field it does not know.
mkdir -p "$work/k/overlays/bad"
printf 'resources:\n  - ../replicas\nimagez:\n  - name: semsearch\n' > "$work/k/overlays/bad/kustomization.yaml"
if kubectl kustomize "$work/k/overlays/bad" >"$work/render.out" 2>&1; then
  echo "kubernetes: kubectl kustomize accepted an unknown field (imagez)" >&2
  exit 1
fi
echo "kubernetes: ok"
