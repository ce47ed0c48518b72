#!/usr/bin/env python3
"""RediSearch HNSW on the same documents as c64-vs-healthz.sh: the
approximate engine semsearch's exact search is compared with.

Talks RESP over a plain socket (python3 only, no packages) to a
redis-server that has loaded the RediSearch module, and drives it with
redis-benchmark, the C client, as the comparison asks:

  hnsw-peer.py load   --port P --corpus n20000.jsonl
      HSET doc:<i> v <384 f32, little-endian> url <url>, pipelined; then
      FT.CREATE idx ON HASH PREFIX 1 doc: SCHEMA v VECTOR HNSW 12
        TYPE FLOAT32 DIM 384 DISTANCE_METRIC COSINE M 16
        EF_CONSTRUCTION 200 EF_RUNTIME 10
      and waits until FT.INFO shows indexing done.
  hnsw-peer.py recall --port P --queries queries-dev.jsonl --semsearch http://127.0.0.1:PORT
      recall@10 of HNSW against semsearch's exact top 10 for the same queries.
  hnsw-peer.py bench  --port P --queries queries-dev.jsonl --conns 64 --requests 6000
      redis-benchmark -c CONNS -n REQUESTS FT.SEARCH idx '*=>[KNN 10 @v $q]'
      PARAMS 2 q <blob> DIALECT 2 NOCONTENT, once per query (the 30 shared
      queries in turn, as the wrk script cycles them); prints the total QPS:
      all requests ÷ the summed wall time of the runs.

A query blob goes on redis-benchmark's command line, where a NUL byte
cannot: every zero byte of it becomes 0x01 (see `nul_free`: a change of a
few components by under 1%, which cannot matter to a throughput figure).
The recall check uses the unchanged queries.
"""

import argparse
import json
import math
import socket
import struct
import subprocess
import time
import urllib.request

DIM = 384
INDEX = "idx"
KNN = "*=>[KNN 10 @v $q]"


class Resp:
    """The smallest RESP2 client this needs: commands out, replies parsed."""

    def __init__(self, port, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port))
        self.buf = b""

    @staticmethod
    def encode(*args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RuntimeError(f"unexpected reply {line!r}")

    def call(self, *args):
        self.sock.sendall(self.encode(*args))
        return self.reply()

    def pipeline(self, commands):
        self.sock.sendall(b"".join(self.encode(*c) for c in commands))
        return [self.reply() for _ in commands]


def blob(vector):
    return struct.pack(f"<{DIM}f", *vector)


def nul_free(vector):
    """The query with every zero byte of its floats made 0x01.

    In the low mantissa byte that is a change of at most one ulp; in the
    next two, a relative change below 2^-7 of that component; an exponent
    byte of zero (a zero or subnormal) becomes ~1e-38."""
    data = bytearray(blob(vector))
    for i, b in enumerate(data):
        if b == 0:
            data[i] = 1
    return list(struct.unpack(f"<{DIM}f", bytes(data)))


def queries(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["embedding"] for line in f if line.strip()]


def text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def info(r):
    """FT.INFO's top level as {name: value}, scalars as text."""
    raw = r.call("FT.INFO", INDEX)
    return {text(raw[i]): raw[i + 1] if isinstance(raw[i + 1], list) else text(raw[i + 1]) for i in range(0, len(raw) - 1, 2)}


def load(args):
    r = Resp(args.port)
    started = time.monotonic()
    batch, n = [], 0
    with open(args.corpus, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            doc = json.loads(line)
            batch.append(("HSET", f"doc:{n}", "v", blob(doc["embedding"]), "url", doc["url"]))
            n += 1
            if len(batch) == 500:
                r.pipeline(batch)
                batch = []
    if batch:
        r.pipeline(batch)
    r.call("FT.CREATE", INDEX, "ON", "HASH", "PREFIX", 1, "doc:", "SCHEMA", "v", "VECTOR", "HNSW", 12,
           "TYPE", "FLOAT32", "DIM", DIM, "DISTANCE_METRIC", "COSINE", "M", 16, "EF_CONSTRUCTION", 200,
           "EF_RUNTIME", 10)
    while True:
        i = info(r)
        if i.get("indexing", "0") == "0" and int(i.get("num_docs", "0")) >= n:
            break
        time.sleep(0.5)
    print(f"hnsw: {n} documents indexed in {time.monotonic() - started:.1f} s")


def recall(args):
    r = Resp(args.port)
    found = total = 0
    for q in queries(args.queries):
        body = json.dumps({"vector": q, "k": 10, "with_text": False}).encode()
        req = urllib.request.Request(f"{args.semsearch}/v1/search", body, {"content-type": "application/json"})
        with urllib.request.urlopen(req) as resp:
            exact = {h["url"] for h in json.load(resp)["results"]}
        reply = r.call("FT.SEARCH", INDEX, KNN, "PARAMS", 2, "q", blob(q), "RETURN", 1, "url", "DIALECT", 2)
        approx = {fields[1].decode() for fields in reply[2::2]}
        found += len(exact & approx)
        total += len(exact)
    print(f"hnsw: recall@10 against semsearch's exact top 10: {found / total:.3f} ({found}/{total})")


def bench(args):
    requests = wall = 0.0
    for q in queries(args.queries):
        cmd = [b"redis-benchmark", b"-p", str(args.port).encode(), b"-c", str(args.conns).encode(),
               b"-n", str(args.requests).encode(), b"--csv", b"FT.SEARCH", INDEX.encode(), KNN.encode(),
               b"PARAMS", b"2", b"q", blob(nul_free(q)), b"DIALECT", b"2", b"NOCONTENT"]
        started = time.monotonic()
        out = subprocess.run(cmd, check=True, capture_output=True).stdout
        wall += time.monotonic() - started
        requests += args.requests
        if b"ERR" in out:
            raise SystemExit(f"redis-benchmark reported an error: {out[:200]!r}")
    print(f"{requests / wall:.0f}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["load", "recall", "bench"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--corpus")
    p.add_argument("--queries")
    p.add_argument("--semsearch")
    p.add_argument("--conns", type=int, default=64)
    p.add_argument("--requests", type=int, default=6000)
    args = p.parse_args()
    {"load": load, "recall": recall, "bench": bench}[args.command](args)


if __name__ == "__main__":
    main()
