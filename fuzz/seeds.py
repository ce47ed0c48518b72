#!/usr/bin/env python3
"""Writes the hand-made seed inputs of the fuzz targets (run once, before
the first fuzzing session; the committed corpus grew from these).

    python3 fuzz/seeds.py [--data ../shared/data]

Seeds are the shapes each parser must tell apart: the chatbot's object,
bare arrays, raw f32 blobs (including the two issue 16 lost: one starting
with the bytes `{"`, one made of printable bytes only), broken JSON, number
tokens at f32's edges; request bodies of every query kind and error. The
`keys` target takes structured input (`arbitrary`) and starts empty.
"""

import argparse
import json
import pathlib
import struct

HERE = pathlib.Path(__file__).resolve().parent


def blob(floats):
    return struct.pack(f"<{len(floats)}f", *floats)


def decode_seeds(corpus_lines):
    seeds = {}
    for i, line in enumerate(corpus_lines[:3]):
        doc = json.loads(line)
        seeds[f"doc-{i}"] = line.encode()
        seeds[f"blob-{i}"] = blob(doc["embedding"])
        seeds[f"array-{i}"] = json.dumps(doc["embedding"][:16]).encode()
    doc = json.loads(corpus_lines[0])
    short = {"title": doc["title"], "url": doc["url"], "text": "t \\\"é\\u00e9", "embedding": doc["embedding"][:8]}
    seeds["doc-short"] = json.dumps(short).encode()
    seeds["doc-escaped"] = rb'{"ti\u0074le":"a \"q\" \u00e9","x":{"n":[1,"}",null]},"url":null,"embedding":[3,4]}'
    seeds["doc-dup"] = b'{"embedding":[1],"embedding":[2]}'
    seeds["doc-nan"] = b'{"embedding":[1,NaN]}'
    seeds["array-lenient"] = b"[01, 1., .5, -.5e3, 1E5]"
    seeds["array-edges"] = b"[3.4028235e38, 1e-45, 1e39, -0, 0.30000001192092896, 123456789012345678901234]"
    seeds["array-zero"] = b"[0, 0.0, -0]"
    seeds["array-empty"] = b" [] "
    seeds["broken"] = b'{"embedding":[1,2'
    # issue 16: blobs that read like text or start like JSON.
    seeds["blob-printable"] = bytes.fromhex("7e66703f3e3f303e")
    seeds["blob-brace"] = b'{"' + bytes.fromhex("803f") + blob([0.5])
    seeds["blob-bracket"] = b"[1" + bytes.fromhex("803f") + blob([0.5])
    seeds["blob-nan"] = blob([float("nan"), 1.0])
    for token in ["0.1273911", "-4.560939e-05", "1e-7", "16777217", "7.006492321624085e-46", "1e309", "-Infinity"]:
        seeds[f"token-{token}"] = token.encode()
    return seeds


def request_seeds(query_lines):
    vector = json.loads(query_lines[0])["embedding"]
    bodies = {
        "vector": {"vector": vector[:3], "k": 3, "min_score": 0.2, "with_text": False},
        "vector-384": {"vector": vector, "k": 10},
        "text": {"text": "relational database server", "k": 5},
        "id": {"id": "https://packages.debian.org/bookworm/gpick", "context_key": "abc"},
        "ambiguous": {"vector": [1], "text": "x"},
        "null": {"vector": [1, None]},
        "zero": {"vector": [0, -0.0]},
        "k0": {"vector": [1], "k": 0},
        "unknown": {"vector": [1], "kk": 3},
        "batch": {"queries": [{"vector": [0.1, 0.2], "k": 2}, {"id": "https://example.org/a"}]},
    }
    seeds = {name: b"\x00" + json.dumps(body).encode() for name, body in bodies.items()}
    seeds["huge-number"] = b'\x00{"vector":[1e39,1e309]}'
    seeds["min-score-inf"] = b'\x00{"vector":[1],"min_score":1e39}'
    seeds["array-body"] = b"\x00[[1,2],null,null,2,null,false]"
    seeds["malformed"] = b'\x00{"k":"a",'
    seeds["empty"] = b"\x00  "
    seeds["text-plain"] = b'\x09{"vector":[1]}'
    seeds["raw-content-type"] = b"\x90application/x+json" + b'{"vector":[1]}'
    return seeds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=HERE.parent.parent / "shared" / "data", type=pathlib.Path)
    args = parser.parse_args()
    corpus = (args.data / "corpus-dev.jsonl").read_text().splitlines()
    queries = (args.data / "queries-dev.jsonl").read_text().splitlines()
    for target, seeds in [("decode", decode_seeds(corpus)), ("request", request_seeds(queries))]:
        folder = HERE / "corpus" / target
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in seeds.items():
            (folder / f"seed-{name}").write_bytes(content)
        print(f"{target}: {len(seeds)} seeds in {folder}")
    (HERE / "corpus" / "keys").mkdir(parents=True, exist_ok=True)


if __name__ == "__main__":
    main()
