#!/usr/bin/env python3
"""Full load and quick-key reload of raw-f32 documents vs Python's SCAN +
pipelined MGET of the same values (issue 24, item 4), in one run.

Starts a private redis-server (unix socket, temp dir; never 6379), fills it
with N keys `cache:embedding:https://synthetic.example/doc/NNNNNNN` holding
384 little-endian f32 (1,536 bytes, a TTL of one day, as the chatbot's keys
have), then per round, interleaved:

  1. baseline: SCAN MATCH (COUNT 1000) + sort + MGET of 500 keys, 20 MGETs
     per pipeline round trip, values received (redis-py + hiredis) and dropped;
  2. full load: `semsearch serve` started, time until /readyz answers 200
     (process start, connect, SCAN, MGET+PTTL, decode, int8 copy, lexical);
  3. quick-key reload: SET of the quick key (or, with `--quick-op del`, the
     chatbot's DEL of it), time until /v1/stats shows the new version; the
     server's own `last_reload.duration_ms` is printed too, and how many
     full reloads that one invalidation caused (it should be one); with
     `--reloads N`, N - 1 more, one after another: the first reload of a
     process faults in a second matrix, the later ones write into the matrix
     the previous reload retired, as an hourly-invalidated service does.
     With `--grow K`, K keys are added before every reload, so each one
     loads a larger index than the buffers the last one retired.

Each round prints both ratios; the last lines give the medians.

`--values chatbot` stores the chatbot's JSON instead (title, url, ~2 KB of
Portuguese text from the dev corpus when SEMSEARCH_SHARED_DATA names it,
384 floats as JSON.stringify prints them): what a real reload decodes and
analyses for the lexical side.

  python3 -m venv /tmp/v && /tmp/v/bin/pip install redis hiredis
  /tmp/v/bin/python docs/harness/load-vs-mget.py --docs 200000 --rounds 3
  SEMSEARCH_LEXICAL_LANGUAGE=none /tmp/v/bin/python docs/harness/load-vs-mget.py ...

Extra server settings pass through the environment (SEMSEARCH_*). A second
binary (--baseline-bin) is measured in the same rounds, interleaved, so a
before/after ratio comes from one run on a noisy machine.
"""

import argparse
import json
import math
import os
import random
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

import redis

DIM = 384
PREFIX = "cache:embedding:"
QUICK_KEY = "cache:processed_articles:quick"
DISTINCT_VECTORS = 1000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def portuguese_texts():
    """Titles and texts of the Portuguese dev corpus, or a few synthetic ones without it."""
    path = os.path.join(os.environ.get("SEMSEARCH_SHARED_DATA", ""), "corpus-pt-dev.jsonl")
    try:
        with open(path, encoding="utf-8") as f:
            docs = [json.loads(line) for line in f if line.strip()]
        return [(d.get("title", ""), d.get("text", "")) for d in docs]
    except OSError:
        words = "planilha eletrônica configuração conta pagamento maquininha cartão taxa recebimento".split()
        return [(f"Artigo {i}", " ".join(words[(i + j) % len(words)] for j in range(60))) for i in range(50)]


def fill(r, n, values="f32", seed=42):
    rng = random.Random(seed)
    blobs = []
    texts = portuguese_texts() if values == "chatbot" else []
    for i in range(DISTINCT_VECTORS):
        v = [rng.gauss(0.0, 1.0) for _ in range(DIM)]
        norm = math.sqrt(sum(x * x for x in v))
        unit = [x / norm for x in v]
        if values == "f32":
            blobs.append(struct.pack(f"<{DIM}f", *unit))
            continue
        # The chatbot's value: ~2 KB of Portuguese text, floats as JSON.stringify prints f32 promoted to f64.
        title, text = texts[i % len(texts)]
        while len(text) < 2000:
            text += " " + rng.choice(texts)[1]
        unit = [float(struct.unpack("<f", struct.pack("<f", x))[0]) for x in unit]
        blobs.append(json.dumps({"title": title, "url": f"https://help.example/{i}", "text": text, "embedding": unit}))
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        pipe.set(f"{PREFIX}https://synthetic.example/doc/{i:07d}", blobs[i % DISTINCT_VECTORS], ex=86400)
        if i % 10_000 == 9_999:
            pipe.execute()
    pipe.execute()
    r.set(QUICK_KEY, "0")


def bare_mget(r, chunk=500, per_trip=20):
    t = time.perf_counter()
    keys = list(r.scan_iter(match=PREFIX + "*", count=1000))
    keys = sorted(set(keys))
    got = 0
    pipe = r.pipeline(transaction=False)
    for trip in range(0, len(keys), chunk * per_trip):
        for first in range(trip, min(trip + chunk * per_trip, len(keys)), chunk):
            pipe.mget(keys[first : first + chunk])
        for reply in pipe.execute():
            got += sum(1 for v in reply if v is not None)
    assert got == len(keys), (got, len(keys))
    return time.perf_counter() - t


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as res:
        return res.status, json.loads(res.read() or b"null")


class Server:
    def __init__(self, binary, redis_url, workdir, name):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k.startswith("SEMSEARCH_") or k in ("PATH", "HOME")}
        env.update(
            REDIS_URL=redis_url,
            SEMSEARCH_BIND=f"127.0.0.1:{self.port}",
            SEMSEARCH_MODEL_DIR="/nonexistent",
            SEMSEARCH_RELOAD_DEBOUNCE_MS="0",
            RUST_LOG=os.environ.get("RUST_LOG", "info"),
            SEMSEARCH_LOG_FORMAT="json",
        )
        self.log_path = os.path.join(workdir, f"{name}-{time.time_ns()}.log")
        self.log = open(self.log_path, "ab")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([binary, "serve"], env=env, stdout=self.log, stderr=self.log)

    def wait_ready(self):
        while True:
            if self.proc.poll() is not None:
                sys.exit(f"semsearch exited with {self.proc.returncode}; see its log")
            try:
                if get_json(self.base + "/readyz")[0] == 200:
                    return time.perf_counter() - self.started
            except OSError:
                pass
            time.sleep(0.005)

    def stats(self):
        """/v1/stats, or {} while the server is too busy to answer within the timeout."""
        try:
            return get_json(self.base + "/v1/stats")[1]
        except OSError:
            return {}

    def quick_reload(self, r, op="set"):
        """Time from invalidating the quick key (SET, or DEL as the chatbot
        does) to the new snapshot in /v1/stats, the server's own duration,
        and how many reloads the one invalidation caused (counted once the
        server has been quiet for a while after it)."""
        if op == "del":
            # The key must exist, and the reload its SET causes be over, first.
            version = self.version()
            r.set(QUICK_KEY, str(time.time()))
            while self.version() in (-1, version):
                time.sleep(0.005)
            time.sleep(1.0)
        before = self.version()
        reloads_before = self.stats().get("refresh", {}).get("reloads", 0)
        t = time.perf_counter()
        if op == "del":
            r.delete(QUICK_KEY)
        else:
            r.set(QUICK_KEY, str(time.time()))
        while True:
            last = self.stats().get("refresh", {}).get("last_reload") or {}
            if last.get("index_version", -1) != before and last.get("reason") != "startup":
                took = time.perf_counter() - t
                break
            time.sleep(0.005)
        time.sleep(max(2.0, 1.5 * took))
        reloads = self.stats().get("refresh", {}).get("reloads", 0) - reloads_before
        return took, last.get("duration_ms", float("nan")) / 1000, reloads

    def version(self):
        """The index version of the last reload, or -1 while unknown."""
        return (self.stats().get("refresh", {}).get("last_reload") or {}).get("index_version", -1)

    def stages(self):
        """Per-load stage times (ms) from the server's log, one dict per load."""
        loads, built = [], []
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if ev.get("message") == "embeddings loaded":
                    loads.append({k: ev[k] for k in ("duration_ms", "scan_ms", "read_ms", "finish_ms") if k in ev})
                elif ev.get("message") == "scan copy and lexical side built":
                    built.append({k: ev[k] for k in ("int8_ms", "lexical_ms")})
        return [dict(a, **b) for a, b in zip(loads, built + [{}] * (len(loads) - len(built)))]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class Grower:
    """Adds `per_reload` keys (copies of the first base value) before each
    reload, under a prefix of their own, and removes them all again."""

    def __init__(self, r, per_reload):
        self.r, self.per_reload, self.added = r, per_reload, 0

    def key(self, i):
        return f"{PREFIX}https://synthetic.example/grown/{i:07d}"

    def add(self):
        if not self.per_reload:
            return
        value = self.r.get(f"{PREFIX}https://synthetic.example/doc/{0:07d}")
        pipe = self.r.pipeline(transaction=False)
        for i in range(self.added, self.added + self.per_reload):
            pipe.set(self.key(i), value, ex=86400)
        pipe.execute()
        self.added += self.per_reload

    def remove(self):
        keys = [self.key(i) for i in range(self.added)]
        for at in range(0, len(keys), 10_000):
            self.r.delete(*keys[at : at + 10_000])
        self.added = 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=200_000)
    ap.add_argument(
        "--values",
        choices=("f32", "chatbot"),
        default="f32",
        help="raw little-endian f32 (no text), or the chatbot's JSON with ~2 KB of Portuguese text (lexical side included)",
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--bin", default="target/release/semsearch")
    ap.add_argument("--baseline-bin", help="another semsearch binary measured in the same rounds")
    ap.add_argument("--redis-socket", help="a private redis-server already filled by an earlier run (no fill)")
    ap.add_argument(
        "--quick-op",
        choices=("set", "del"),
        default="set",
        help="invalidate the quick key with SET, or with DEL as the chatbot does (the key is SET first, then deleted)",
    )
    ap.add_argument(
        "--reloads",
        type=int,
        default=1,
        help="quick-key reloads per server start; from the second on, a reload writes into the matrix the previous one retired",
    )
    ap.add_argument(
        "--settle",
        type=float,
        default=0.0,
        help="seconds each server idles between ready and its first quick-key reload (the chatbot's first "
        "invalidation comes up to an hour after a start; a server prepares its first reload's buffers meanwhile)",
    )
    ap.add_argument(
        "--grow",
        type=int,
        default=0,
        help="keys added before every quick-key reload, so each reload loads a larger index than the last "
        "(as help centres gain articles); they are removed again after each server, and each MGET is of the base keys",
    )
    args = ap.parse_args()

    workdir = tempfile.mkdtemp(prefix="semsearch-load-")
    sock = args.redis_socket or os.path.join(workdir, "redis.sock")
    redis_proc = None
    if not args.redis_socket:
        redis_proc = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
             "--save", "", "--appendonly", "no", "--dir", workdir],
            stdout=subprocess.DEVNULL,
        )
    try:
        r = redis.Redis(unix_socket_path=sock)
        for _ in range(200):
            try:
                r.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        if redis_proc is not None:
            t = time.perf_counter()
            fill(r, args.docs, args.values)
            what = f"raw-f32 values of {DIM * 4} bytes" if args.values == "f32" else "chatbot JSON values"
            print(f"filled {args.docs} {what} in {time.perf_counter() - t:.1f} s", flush=True)
        else:
            print(f"using {sock}: {r.dbsize()} keys", flush=True)
        bins = [("ours", args.bin)] + ([("baseline", args.baseline_bin)] if args.baseline_bin else [])
        results = {name: {"full": [], "quick": [], "quick_server": [], "later": []} for name, _ in bins}
        mgets = []
        for rnd in range(1, args.rounds + 1):
            for name, binary in bins:
                b = bare_mget(r)
                mgets.append(b)
                server = Server(binary, f"unix://{sock}", workdir, name)
                grower = Grower(r, args.grow)
                try:
                    full = server.wait_ready()
                    time.sleep(args.settle)
                    grower.add()
                    quick, quick_server, reloads = server.quick_reload(r, args.quick_op)
                    later = []
                    for _ in range(args.reloads - 1):
                        grower.add()
                        later.append(server.quick_reload(r, args.quick_op)[0])
                finally:
                    server.stop()
                    grower.remove()
                stages = server.stages()
                res = results[name]
                res["full"].append(full / b)
                res["quick"].append(quick / b)
                res["quick_server"].append(quick_server / b)
                res["later"].extend(t / b for t in later)
                print(
                    f"round {rnd} {name:8}: MGET {b:.3f} s | full load (start to ready) {full:.3f} s = {full / b:.2f}x"
                    f" | quick-key reload ({args.quick_op.upper()}) {quick:.3f} s = {quick / b:.2f}x"
                    f" (server says {quick_server:.3f} s = {quick_server / b:.2f}x), full reloads it caused: {reloads}",
                    flush=True,
                )
                if later:
                    print("    later reloads: " + ", ".join(f"{t:.3f} s = {t / b:.2f}x" for t in later), flush=True)
                # With DEL, load 1 is the reload the preparatory SET caused.
                picked = stages[:1] + stages[2 if args.quick_op == "del" else 1:][:1]
                for label, st in zip(("full", "quick"), picked):
                    print(f"    {label} stages (ms): " + ", ".join(f"{k} {v}" for k, v in st.items()), flush=True)
        print(f"median MGET {statistics.median(mgets):.3f} s over {len(mgets)} runs")
        for name, res in results.items():
            print(
                f"median {name:8}: full/MGET {statistics.median(res['full']):.2f}x, quick-key/MGET {statistics.median(res['quick']):.2f}x"
                f" (server-reported {statistics.median(res['quick_server']):.2f}x)  goal <= 1.5"
                + (f"; later reloads/MGET {statistics.median(res['later']):.2f}x" if res["later"] else "")
            )
    finally:
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
