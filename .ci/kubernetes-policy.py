#!/usr/bin/env python3
"""What our Kubernetes manifests promise, checked on what `kubectl kustomize`
renders (deploy/kubernetes/). kubernetes-validate says the objects are valid
Kubernetes; this says they are a sound semsearch deployment:
  - every Deployment/StatefulSet container: readiness on /readyz, liveness on
    /healthz, memory and CPU requests, a memory limit;
  - every pod template carries the prometheus.io/* scrape annotations
    (components/prometheus-scrape), pointing at the container's http port;
  - every Deployment and StatefulSet is covered by a PodDisruptionBudget,
    every Deployment by a HorizontalPodAutoscaler;
  - sharded: the shards' SEMSEARCH_SHARD values are exactly 0/n..n-1/n and
    the router lists n shards, each with the pods of that shard's
    StatefulSet behind its headless Service;
  - with --image, every container runs that image (an overlay's `images:`).

Usage:
  kubernetes-policy.py check [--image IMAGE] RENDERED.yaml
      prints every problem and exits 1 if there is one.
  kubernetes-policy.py prove REPLICAS.yaml SHARDED.yaml
      breaks sound renders one way at a time and fails unless each check
      rejects its broken input (a check that cannot fail, fails here).
"""
import copy
import sys

import yaml

SCRAPE_PORT = "8080"


def workloads_of(objects):
    return [o for o in objects if o["kind"] in ("Deployment", "StatefulSet")]


def containers_of(workload):
    return workload["spec"]["template"]["spec"]["containers"]


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def check(objects, image=None):
    """Every problem found, as sentences; empty when the render is sound."""
    problems = []
    names = {}
    for o in objects:
        key = (o["kind"], o["metadata"]["name"])
        if key in names:
            problems.append(f"{key[0]}/{key[1]} is defined twice")
        names[key] = o
    workloads = workloads_of(objects)
    if not workloads:
        return problems + ["no Deployment or StatefulSet rendered"]
    pdbs = [o for o in objects if o["kind"] == "PodDisruptionBudget"]
    hpas = [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"]
    for w in workloads:
        name = f"{w['kind']}/{w['metadata']['name']}"
        template = w["spec"]["template"]
        labels = template["metadata"].get("labels", {})
        annotations = template["metadata"].get("annotations", {})
        for c in containers_of(w):
            if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
                problems.append(f"{name}: readiness must GET /readyz")
            if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
                problems.append(f"{name}: liveness must GET /healthz")
            res = c.get("resources", {})
            if not {"cpu", "memory"} <= set(res.get("requests", {})) or "memory" not in res.get("limits", {}):
                problems.append(f"{name}: needs cpu and memory requests and a memory limit")
            ports = {str(p["containerPort"]) for p in c.get("ports", []) if p.get("name") == "http"}
            if annotations.get("prometheus.io/port") not in ports:
                problems.append(f"{name}: prometheus.io/port must be the http port {sorted(ports)}")
            if image is not None and c.get("image") != image:
                problems.append(f"{name}: container {c['name']} runs {c.get('image')}, not {image}")
        if annotations.get("prometheus.io/scrape") != "true" or annotations.get("prometheus.io/path") != "/metrics":
            problems.append(f"{name}: pods need prometheus.io/scrape \"true\" and prometheus.io/path /metrics")
        if not any(set(p["spec"]["selector"]["matchLabels"].items()) <= set(labels.items()) for p in pdbs):
            problems.append(f"{name}: no PodDisruptionBudget selects its pods")
        if w["kind"] == "Deployment" and not any(
            h["spec"]["scaleTargetRef"]["kind"] == "Deployment"
            and h["spec"]["scaleTargetRef"]["name"] == w["metadata"]["name"]
            for h in hpas
        ):
            problems.append(f"{name}: no HorizontalPodAutoscaler scales it")
    return problems + check_shards(workloads, names)


def check_shards(workloads, names):
    problems = []
    shards = {}
    routers = []
    for w in workloads:
        for c in containers_of(w):
            env = env_of(c)
            if env.get("SEMSEARCH_SHARD"):
                shard = env["SEMSEARCH_SHARD"]
                if shard in shards:
                    problems.append(f"two workloads keep shard {shard}")
                shards[shard] = w
            if env.get("SEMSEARCH_ROUTER_SHARDS"):
                routers.append(env["SEMSEARCH_ROUTER_SHARDS"])
    if not shards and not routers:
        return problems
    if len(routers) != 1:
        return problems + [f"sharded mode needs exactly one router, found {len(routers)}"]
    listed = [s.split("|") for s in routers[0].split(",")]
    n = len(listed)
    if sorted(shards) != sorted(f"{i}/{n}" for i in range(n)):
        return problems + [f"the router lists {n} shards but the shards are {sorted(shards)}"]
    for i, replicas in enumerate(listed):
        sts = shards[f"{i}/{n}"]
        if sts["kind"] != "StatefulSet":
            problems.append(f"shard {i}: the router needs stable pod names (a StatefulSet)")
            continue
        sname, svc = sts["metadata"]["name"], sts["spec"]["serviceName"]
        want = [f"http://{sname}-{r}.{svc}:8080" for r in range(sts["spec"]["replicas"])]
        if replicas != want:
            problems.append(f"shard {i}: the router lists {replicas}, the StatefulSet runs {want}")
        if ("Service", svc) not in names or names[("Service", svc)]["spec"].get("clusterIP") != "None":
            problems.append(f"shard {i}: the headless Service {svc} is missing")
    return problems


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def first(objects, kind, name_prefix=""):
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"].startswith(name_prefix))


def drop(objects, kind):
    objects[:] = [o for o in objects if o["kind"] != kind]


def container(objects, kind, name_prefix=""):
    return containers_of(first(objects, kind, name_prefix))[0]


def annotations(objects, kind):
    return first(objects, kind)["spec"]["template"]["metadata"]["annotations"]


def router_env(objects):
    return next(e for e in container(objects, "Deployment", "semsearch-router")["env"] if e["name"] == "SEMSEARCH_ROUTER_SHARDS")


def shard_env(objects, name):
    return next(e for e in container(objects, "StatefulSet", name)["env"] if e["name"] == "SEMSEARCH_SHARD")


# Each break: (which render, what it does, a phrase the check must report).
BREAKS = [
    ("replicas", lambda o: container(o, "Deployment")["readinessProbe"]["httpGet"].update(path="/healthz"),
     "readiness must GET /readyz"),
    ("replicas", lambda o: container(o, "Deployment").pop("livenessProbe"), "liveness must GET /healthz"),
    ("replicas", lambda o: container(o, "Deployment")["resources"]["requests"].pop("cpu"), "needs cpu and memory"),
    ("replicas", lambda o: container(o, "Deployment")["resources"].pop("limits"), "needs cpu and memory"),
    ("replicas", lambda o: annotations(o, "Deployment").pop("prometheus.io/scrape"), "prometheus.io/scrape"),
    ("replicas", lambda o: annotations(o, "Deployment").update({"prometheus.io/port": "9090"}), "prometheus.io/port"),
    ("sharded", lambda o: annotations(o, "StatefulSet").update({"prometheus.io/path": "/"}), "prometheus.io/path"),
    ("replicas", lambda o: drop(o, "PodDisruptionBudget"), "no PodDisruptionBudget"),
    ("replicas", lambda o: drop(o, "HorizontalPodAutoscaler"), "no HorizontalPodAutoscaler"),
    ("replicas", lambda o: o.append(copy.deepcopy(first(o, "Service"))), "defined twice"),
    ("replicas", lambda o: [drop(o, "Deployment"), drop(o, "StatefulSet")], "no Deployment or StatefulSet"),
    ("sharded", lambda o: router_env(o).update(value=router_env(o)["value"].rsplit(",", 1)[0]),
     "the router lists 2 shards"),
    ("sharded", lambda o: shard_env(o, "semsearch-shard-2").update(value="1/3"), "two workloads keep shard 1/3"),
    ("sharded", lambda o: first(o, "StatefulSet", "semsearch-shard-1")["spec"].update(replicas=3),
     "the StatefulSet runs"),
    ("sharded", lambda o: first(o, "Service", "semsearch-shard-0")["spec"].pop("clusterIP"),
     "headless Service semsearch-shard-0"),
    ("sharded", lambda o: first(o, "StatefulSet", "semsearch-shard-0").update(kind="Deployment"),
     "stable pod names"),
]


def prove(renders):
    failures = []
    for which, breaks, phrase in BREAKS:
        if check(renders[which]):
            sys.exit(f"kubernetes-policy: the sound {which} render has problems: {check(renders[which])}")
        broken = copy.deepcopy(renders[which])
        breaks(broken)
        problems = check(broken)
        if not any(phrase in p for p in problems):
            failures.append(f"{which}, expecting '{phrase}': reported {problems}")
    image = "registry.example.com/semsearch:1.2.3"
    if not any("not " + image in p for p in check(renders["replicas"], image=image)):
        failures.append("--image accepted a render that runs another image")
    if failures:
        sys.exit("kubernetes-policy: a check accepted a broken render:\n  " + "\n  ".join(failures))
    print(f"kubernetes-policy: each of {len(BREAKS) + 1} checks rejected its broken render")


def main(argv):
    if len(argv) >= 2 and argv[0] == "check":
        image = None
        if argv[1] == "--image" and len(argv) == 4:
            image, argv = argv[2], argv[2:]
        if len(argv) == 2:
            problems = check(load(argv[1]), image)
            for p in problems:
                print(f"kubernetes-policy: {argv[1]}: {p}", file=sys.stderr)
            sys.exit(1 if problems else 0)
    if len(argv) == 3 and argv[0] == "prove":
        prove({"replicas": load(argv[1]), "sharded": load(argv[2])})
        return
    sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
