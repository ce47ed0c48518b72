#!/usr/bin/env python3
"""Writes N chatbot documents (JSONL) built from the shared real corpus.

Copy 0 of each document is the real one (real 384-d MiniLM vector, title,
url, text). Copies 1, 2, ... get `#rN` appended to their url (a distinct key)
and their vector perturbed by Gaussian noise of `--sigma` per component,
renormalised to unit length, so a larger index keeps the real vectors'
distribution (clusters, norms, dimension) without being 50 identical copies.
Pure Python, deterministic (`--seed`): the same N gives the same file.

    replicate-corpus.py corpus-dev.jsonl 20000 > n20k.jsonl
"""
import argparse
import json
import math
import random
import sys


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", help="JSONL of {title,url,text,embedding}")
    ap.add_argument("n", type=int, help="documents to write")
    ap.add_argument("--sigma", type=float, default=0.03, help="noise per component before renormalising (0.03: a copy is at cosine ~0.86 from its original, a neighbour in the same topic, not a near-duplicate)")
    ap.add_argument("--seed", type=int, default=24)
    args = ap.parse_args()
    with open(args.corpus, encoding="utf-8") as f:
        docs = [json.loads(line) for line in f if line.strip()]
    rng = random.Random(args.seed)
    out = sys.stdout
    for i in range(args.n):
        copy, doc = divmod(i, len(docs))
        doc = docs[doc]
        if copy == 0:
            out.write(json.dumps(doc, ensure_ascii=False) + "\n")
            continue
        v = [x + rng.gauss(0.0, args.sigma) for x in doc["embedding"]]
        norm = math.sqrt(sum(x * x for x in v))
        v = [x / norm for x in v]
        new = dict(doc, url=f"{doc['url']}#r{copy}", embedding=[float(f"{x:.7g}") for x in v])
        out.write(json.dumps(new, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
