#!/usr/bin/env python3
"""Reference timings for `cargo bench --bench embed`: the same all-MiniLM-L6-v2
forward pass in plain numpy (OpenBLAS), and onnxruntime when it is installed.

Run by the bench with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed (for this
command only), so OpenBLAS picks its fastest kernels. Prints one line per
configuration: p50 and p99 of one question, tokenisation included, plus the
max abs difference from sentence-transformers' stored vector when the question
is in queries-dev.jsonl (a check that the reference computes the right thing).

Needs: numpy, tokenizers (pip). Optional: threadpoolctl (to report and set the
BLAS threads).
"""
import argparse
import json
import os
import struct
import sys
import time

import numpy as np
from tokenizers import Tokenizer


def load_tensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=np.float32).reshape(info["shape"])
    return out


def erf(x):
    # Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7), vectorised, float32.
    s = np.sign(x)
    a = np.abs(x)
    t = np.float32(1.0) / (np.float32(1.0) + np.float32(0.3275911) * a)
    y = np.float32(1.0) - (((((np.float32(1.061405429) * t - np.float32(1.453152027)) * t + np.float32(1.421413741)) * t
                              - np.float32(0.284496736)) * t + np.float32(0.254829592)) * t) * np.exp(-a * a)
    return s * y


class NumpyBert:
    def __init__(self, model_dir):
        self.w = load_tensors(os.path.join(model_dir, "model.safetensors"))
        with open(os.path.join(model_dir, "config.json")) as f:
            self.cfg = json.load(f)
        w = self.w
        self.layers = []
        for l in range(self.cfg["num_hidden_layers"]):
            p = f"encoder.layer.{l}."
            g = lambda n: w[p + n]
            qkv_w = np.concatenate([g(f"attention.self.{n}.weight") for n in ("query", "key", "value")]).T.copy()
            qkv_b = np.concatenate([g(f"attention.self.{n}.bias") for n in ("query", "key", "value")])
            self.layers.append((qkv_w, qkv_b, g("attention.output.dense.weight").T.copy(), g("attention.output.dense.bias"),
                                g("attention.output.LayerNorm.weight"), g("attention.output.LayerNorm.bias"),
                                g("intermediate.dense.weight").T.copy(), g("intermediate.dense.bias"),
                                g("output.dense.weight").T.copy(), g("output.dense.bias"),
                                g("output.LayerNorm.weight"), g("output.LayerNorm.bias")))

    @staticmethod
    def ln(x, g, b):
        m = x.mean(-1, keepdims=True)
        v = ((x - m) ** 2).mean(-1, keepdims=True)
        return (x - m) / np.sqrt(v + np.float32(1e-12)) * g + b

    def forward(self, ids):
        w, h = self.w, self.cfg["hidden_size"]
        heads = self.cfg["num_attention_heads"]
        d = h // heads
        t = len(ids)
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.token_type_embeddings.weight"][0] \
            + w["embeddings.position_embeddings.weight"][:t]
        x = self.ln(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        scale = np.float32(1.0 / np.sqrt(d))
        for (qkv_w, qkv_b, o_w, o_b, ln1_g, ln1_b, i_w, i_b, d_w, d_b, ln2_g, ln2_b) in self.layers:
            qkv = x @ qkv_w + qkv_b
            q, k, v = (qkv[:, i * h:(i + 1) * h].reshape(t, heads, d).transpose(1, 0, 2) for i in range(3))
            s = (q @ k.transpose(0, 2, 1)) * scale
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(1, 0, 2).reshape(t, h)
            x = self.ln(ctx @ o_w + o_b + x, ln1_g, ln1_b)
            u = x @ i_w + i_b
            u = np.float32(0.5) * u * (np.float32(1.0) + erf(u * np.float32(0.7071067811865476)))
            x = self.ln(u @ d_w + d_b + x, ln2_g, ln2_b)
        e = x.mean(0)
        return e / max(np.linalg.norm(e), 1e-12)


def percentiles(f, runs):
    for _ in range(max(10, runs // 10)):
        f()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[len(ts) // 2] * 1e3, ts[min(len(ts) - 1, int(len(ts) * 0.99))] * 1e3


def stored_vector(question, queries_path):
    try:
        with open(queries_path) as f:
            for line in f:
                q = json.loads(line)
                if q["query"] == question:
                    return np.array(q["embedding"], dtype=np.float32)
    except OSError:
        pass
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--question", required=True)
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--queries", default=os.path.join(os.path.dirname(__file__), "../../shared/data/queries-dev.jsonl"))
    args = ap.parse_args()

    tok = Tokenizer.from_file(os.path.join(args.model_dir, "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(256)
    model = NumpyBert(args.model_dir)
    embed = lambda: model.forward(np.array(tok.encode(args.question).ids))
    want = stored_vector(args.question, args.queries)
    check = "" if want is None else f", max abs diff vs stored {np.abs(embed() - want).max():.1e}"

    try:
        from threadpoolctl import threadpool_info, threadpool_limits
        info = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        arch = info[0].get("architecture", "?") if info else "?"
        for threads in sorted({1, info[0]["num_threads"] if info else 1}):
            with threadpool_limits(limits=threads, user_api="blas"):
                p50, p99 = percentiles(embed, args.runs)
            print(f"python numpy forward ({arch}, {threads} BLAS thread(s)): p50 {p50:.3f} ms, p99 {p99:.3f} ms{check}")
    except ImportError:
        p50, p99 = percentiles(embed, args.runs)
        print(f"python numpy forward (BLAS threads: default): p50 {p50:.3f} ms, p99 {p99:.3f} ms{check}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
