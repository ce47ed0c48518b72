#!/usr/bin/env python3
"""Renders a kustomization directory the way `kubectl kustomize` does, for the
subset our manifests use (deploy/kubernetes/): `resources` (files and
directories, recursively) and `labels` (pairs, added to metadata.labels;
with includeSelectors: true also to selectors and pod templates). Any other
field stops the render with an error, so a manifest never silently renders
differently here than in kustomize. No kubectl on our machines or in CI.

Then checks what the issue asks of the workloads, and prints the objects as
one multi-document YAML stream on stdout (for kubernetes-validate):
  - every Deployment/StatefulSet container: readiness on /readyz, liveness on
    /healthz, memory and CPU requests, a memory limit;
  - every Deployment and StatefulSet is covered by a PodDisruptionBudget,
    every Deployment by a HorizontalPodAutoscaler;
  - sharded: the shards' SEMSEARCH_SHARD values are exactly 0/n..n-1/n and
    the router lists n shards, each with the pods of that shard's StatefulSet.
Usage: kustomize-render.py DIR > rendered.yaml"""
import os
import sys

import yaml

KNOWN = {"apiVersion", "kind", "resources", "labels"}


def fail(msg):
    print(f"kustomize-render: {msg}", file=sys.stderr)
    sys.exit(1)


def render(directory, seen=()):
    path = os.path.join(directory, "kustomization.yaml")
    if not os.path.isfile(path):
        fail(f"{directory}: no kustomization.yaml")
    if os.path.realpath(directory) in seen:
        fail(f"{directory}: resource cycle")
    with open(path) as f:
        k = yaml.safe_load(f) or {}
    unknown = set(k) - KNOWN
    if unknown:
        fail(f"{path}: fields this renderer does not implement: {sorted(unknown)}")
    objects = []
    for res in k.get("resources", []):
        target = os.path.normpath(os.path.join(directory, res))
        if os.path.isdir(target):
            objects += render(target, seen + (os.path.realpath(directory),))
        elif os.path.isfile(target):
            with open(target) as f:
                objects += [d for d in yaml.safe_load_all(f) if d is not None]
        else:
            fail(f"{path}: resource {res} does not exist")
    for entry in k.get("labels", []):
        pairs = entry.get("pairs", {})
        for obj in objects:
            obj.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
            if entry.get("includeSelectors"):
                spec = obj.get("spec", {})
                if "selector" in spec and "matchLabels" in spec["selector"]:
                    spec["selector"]["matchLabels"].update(pairs)
                elif "selector" in spec:
                    spec["selector"].update(pairs)
                if "template" in spec:
                    spec["template"].setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
    return objects


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def check(objects):
    names = {}
    for o in objects:
        key = (o["kind"], o["metadata"]["name"])
        if key in names:
            fail(f"{key[0]}/{key[1]} is defined twice")
        names[key] = o
    workloads = [o for o in objects if o["kind"] in ("Deployment", "StatefulSet")]
    if not workloads:
        fail("no Deployment or StatefulSet rendered")
    pdbs = [o for o in objects if o["kind"] == "PodDisruptionBudget"]
    hpas = [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"]
    for w in workloads:
        name = f"{w['kind']}/{w['metadata']['name']}"
        labels = w["spec"]["template"]["metadata"]["labels"]
        for c in w["spec"]["template"]["spec"]["containers"]:
            if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
                fail(f"{name}: readiness must GET /readyz")
            if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
                fail(f"{name}: liveness must GET /healthz")
            res = c.get("resources", {})
            if not {"cpu", "memory"} <= set(res.get("requests", {})) or "memory" not in res.get("limits", {}):
                fail(f"{name}: needs cpu and memory requests and a memory limit")
        if not any(set(p["spec"]["selector"]["matchLabels"].items()) <= set(labels.items()) for p in pdbs):
            fail(f"{name}: no PodDisruptionBudget selects its pods")
        if w["kind"] == "Deployment" and not any(
            h["spec"]["scaleTargetRef"]["kind"] == "Deployment"
            and h["spec"]["scaleTargetRef"]["name"] == w["metadata"]["name"]
            for h in hpas
        ):
            fail(f"{name}: no HorizontalPodAutoscaler scales it")
    shards = {}
    routers = []
    for w in workloads:
        for c in w["spec"]["template"]["spec"]["containers"]:
            env = env_of(c)
            if env.get("SEMSEARCH_SHARD"):
                shards[env["SEMSEARCH_SHARD"]] = w
            if env.get("SEMSEARCH_ROUTER_SHARDS"):
                routers.append(env["SEMSEARCH_ROUTER_SHARDS"])
    if shards or routers:
        if len(routers) != 1:
            fail(f"sharded mode needs exactly one router, found {len(routers)}")
        listed = [s.split("|") for s in routers[0].split(",")]
        n = len(listed)
        if sorted(shards) != sorted(f"{i}/{n}" for i in range(n)):
            fail(f"the router lists {n} shards but the shards are {sorted(shards)}")
        for i, replicas in enumerate(listed):
            sts = shards[f"{i}/{n}"]
            if sts["kind"] != "StatefulSet":
                fail(f"shard {i}: the router needs stable pod names (a StatefulSet)")
            sname, svc = sts["metadata"]["name"], sts["spec"]["serviceName"]
            want = [f"http://{sname}-{r}.{svc}:8080" for r in range(sts["spec"]["replicas"])]
            if replicas != want:
                fail(f"shard {i}: the router lists {replicas}, the StatefulSet runs {want}")
            if ("Service", svc) not in names or names[("Service", svc)]["spec"].get("clusterIP") != "None":
                fail(f"shard {i}: the headless Service {svc} is missing")


def main():
    if len(sys.argv) != 2:
        fail("usage: kustomize-render.py DIR")
    objects = render(sys.argv[1])
    check(objects)
    yaml.safe_dump_all(objects, sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
