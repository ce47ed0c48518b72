#!/usr/bin/env python3
"""Splits a `perf script` of the server into the stages of a search.

    perf record -F 499 -g --call-graph dwarf,16384 -p PID -o perf.data -- sleep 8
    perf script -i perf.data -F comm,tid,period,ip,sym --no-inline | perf-stages.py

See SPECIFIC and GENERIC below for how a sample is given a stage. Prints each
stage's share of the server's CPU samples; `--other N` lists the N most
frequent leaf symbols left unclassified (to refine the rules).
"""
import collections
import re
import sys

# Specific work first: a sample goes to the first of these stages whose
# every regex matches some frame of its stack (the f32 kernel called from
# the int8 search is the rescore), so a malloc under the JSON decoder counts
# as JSON decode and a socket write under the Redis client as the context
# write.
SPECIFIC = [
    ("f32 rescore (int8 survivors)", (r"int8::rescore|semsearch_scan::kernel|semsearch_scan::topk", r"semsearch_scan::int8::(search|rescore)")),
    ("int8 candidate scan (its heap inlined)", (r"semsearch_scan::int8|int8::kernel|count_reaching|block_vnni",)),
    ("f32 scan", (r"semsearch_scan::f32_scan|semsearch_scan::kernel|semsearch_scan::filter",)),
    ("heap / top-k, merge", (r"semsearch_scan::topk|BinaryHeap|TopK|index::search",)),
    ("context write (hash, encode, Redis)", (r"store::context|context_key|sha2::|redis::|combine::",)),
    ("JSON body decode", (r"api::extract::parse|serde_path_to_error|serde_json::de::",)),
    ("validation / plan / resolve", (r"query::plan|query::resolve|ready_index|AppState>::rules",)),
    ("answer building + serialisation", (r"serde_json::ser|query::answer|search::render_ranked|search::hit_view",)),
]
# The rest by the innermost frame that says where it runs (a malloc under
# tower_http's request-id layer is that layer's).
GENERIC = [
    ("coalescer hand-off", r"index::coalesce|tokio::sync::oneshot|query::execute"),
    ("metrics / tracing / request id", r"metrics|tracing|request_id|RequestId|telemetry"),
    ("HTTP accept / parse / write (hyper, kernel TCP)", r"hyper::|hyper_util|tcp_|sock_|inet_|__sys_|ip_|net_rx|skb|sys_(sendto|recvfrom|write|read|accept|writev)|api::server|http_body|Bytes"),
    ("axum routing / middleware / handler", r"axum::|tower::|tower_http|semsearch::api::"),
    ("tokio / rayon scheduling, wake-ups", r"tokio::|rayon|futex|schedule|switch|epoll|sched_|wake|park|crossbeam|do_sched_yield|irqentry|syscall"),
]
STAGES = [(n, r) for n, r in SPECIFIC] + [(n, (r,)) for n, r in GENERIC]
COMPILED_SPECIFIC = [(n, [re.compile(r) for r in rs]) for n, rs in SPECIFIC]
COMPILED_GENERIC = [(n, re.compile(r)) for n, r in GENERIC]


def classify(stack):
    for name, rxs in COMPILED_SPECIFIC:
        if all(any(rx.search(f) for f in stack) for rx in rxs):
            return name
    for frame in stack:
        for name, rx in COMPILED_GENERIC:
            if rx.search(frame):
                return name
    return None


def samples(lines):
    stack, head = [], None
    for line in lines:
        line = line.rstrip("\n")
        if not line:
            if head is not None:
                yield head, stack
            stack, head = [], None
        elif not line.startswith(("\t", " ")):
            head = line
        else:
            parts = line.strip().split(None, 1)
            stack.append(parts[1] if len(parts) > 1 else "")
    if head is not None:
        yield head, stack


def main() -> None:
    other_n = int(sys.argv[sys.argv.index("--other") + 1]) if "--other" in sys.argv else 0
    counts, other, total = collections.Counter(), collections.Counter(), 0
    for _, stack in samples(sys.stdin):
        total += 1
        name = classify(stack)
        if name is None:
            counts["other"] += 1
            other[stack[0] if stack else "?"] += 1
        else:
            counts[name] += 1
    print(f"samples\t{total}")
    for name, _ in STAGES + [("other", None)]:
        print(f"{100.0 * counts[name] / max(total, 1):5.1f}%\t{name}")
    for sym, n in other.most_common(other_n):
        print(f"  other: {n}\t{sym}")


if __name__ == "__main__":
    main()
