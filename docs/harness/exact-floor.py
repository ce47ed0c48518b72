#!/usr/bin/env python3
"""How many multiply-adds an exact top-k needs at least, on real vectors.

A full scan costs n × dim multiply-adds per query. An exact search can
skip rows only where a bound proves they cannot enter the top-k. This
script measures, for the two bound families an exact engine could use,
how much they would let it skip on the given corpus and queries, with an
*oracle* cut: the true k-th score, known before the scan starts. A real
search must discover its cut while scanning, so it skips less; the
figures are lower bounds on the work of any search of that family.

- head pass: rotate rows and queries into the corpus's principal axes
  (PCA, an exact isometry in real arithmetic), take the dot product over
  the first h axes, bound the rest by Cauchy-Schwarz
  (|q_tail · x_tail| ≤ ‖q_tail‖ ‖x_tail‖), and finish the rows whose bound
  reaches the cut: n × h + survivors × (dim − h) multiply-adds, at the
  best h for each query.
- head pass without a rotation: the same, over the original dimensions
  ordered by their mean square (no 384 × 384 rotation per row at load).
- clusters: k-means cells with centre c and radius r; for unit queries
  q · x ≤ q · c + ‖x − c‖, so a cell whose q · c + r is below the cut is
  skipped whole: cells × dim + rows of the surviving cells × dim.

Prints the median and worst query's share of the full scan for each, so a
throughput goal can be checked against the kernel's measured time per
multiply-add (docs/benchmarks.md, "Where exact stops").

    exact-floor.py corpus.jsonl queries-dev.jsonl [--k 10] [--cells 64,256]

Needs numpy.
"""
import argparse
import json

import numpy as np


def load(path, field="embedding"):
    with open(path, encoding="utf-8") as f:
        return np.array([json.loads(line)[field] for line in f if line.strip()], dtype=np.float64)


def head_pass(x, q, cut, heads, rotate=True):
    """Share of n × dim multiply-adds at the best head length, per query:
    in the principal axes, or (rotate=False) in the original dimensions
    ordered by mean square."""
    n, dim = x.shape
    if rotate:
        _, _, vt = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
        xr, qr = x @ vt.T, q @ vt.T
    else:
        order = np.argsort(-(x**2).mean(axis=0))
        xr, qr = x[:, order], q[:, order]
    # Tail norms for every head length h: ‖v[h:]‖.
    x_tail = np.sqrt(np.cumsum((xr**2)[:, ::-1], axis=1)[:, ::-1])
    q_tail = np.sqrt(np.cumsum((qr**2)[:, ::-1], axis=1)[:, ::-1])
    shares, best_heads = [], []
    for j in range(len(q)):
        best = (1.0, dim)
        for h in heads:
            partial = xr[:, :h] @ qr[j, :h]
            tail = x_tail[:, h] * q_tail[j, h] if h < dim else 0.0
            survivors = int(np.count_nonzero(partial + tail >= cut[j] - 1e-9))
            share = (n * h + survivors * (dim - h)) / (n * dim)
            best = min(best, (share, h))
        shares.append(best[0])
        best_heads.append(best[1])
    return np.array(shares), best_heads


def kmeans(x, cells, iters=20, seed=0):
    rng = np.random.default_rng(seed)
    centres = x[rng.choice(len(x), cells, replace=False)].copy()
    for _ in range(iters):
        assign = np.argmax(x @ centres.T - 0.5 * (centres**2).sum(axis=1), axis=1)
        for c in range(cells):
            members = x[assign == c]
            if len(members):
                centres[c] = members.mean(axis=0)
    assign = np.argmax(x @ centres.T - 0.5 * (centres**2).sum(axis=1), axis=1)
    return centres, assign


def cluster_pass(x, q, cut, cells):
    n, dim = x.shape
    centres, assign = kmeans(x, cells)
    radius = np.zeros(cells)
    sizes = np.bincount(assign, minlength=cells)
    for c in range(cells):
        members = x[assign == c]
        if len(members):
            radius[c] = np.sqrt(((members - centres[c]) ** 2).sum(axis=1)).max()
    shares = []
    for j in range(len(q)):
        reach = q[j] @ centres.T + radius * np.linalg.norm(q[j]) >= cut[j] - 1e-9
        shares.append((cells * dim + sizes[reach].sum() * dim) / (n * dim))
    return np.array(shares)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus")
    ap.add_argument("queries")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--cells", default="64,256")
    args = ap.parse_args()
    x, q = load(args.corpus), load(args.queries)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    scores = q @ x.T
    cut = np.sort(scores, axis=1)[:, -args.k]
    n, dim = x.shape
    print(f"# n={n} dim={dim} k={args.k} queries={len(q)}; share of the full scan's n x dim multiply-adds (oracle cut)")
    heads = list(range(8, dim, 8)) + [dim]
    shares, best = head_pass(x, q, cut, heads)
    print(f"head pass (PCA, Cauchy-Schwarz tail): median {np.median(shares):.3f}, worst {shares.max():.3f}, best h median {int(np.median(best))}")
    shares, best = head_pass(x, q, cut, heads, rotate=False)
    print(f"head pass (dimensions by mean square, no rotation): median {np.median(shares):.3f}, worst {shares.max():.3f}, best h median {int(np.median(best))}")
    for cells in (int(c) for c in args.cells.split(",")):
        s = cluster_pass(x, q, cut, cells)
        print(f"clusters ({cells} k-means cells, centre + radius): median {np.median(s):.3f}, worst {s.max():.3f}")


if __name__ == "__main__":
    main()
