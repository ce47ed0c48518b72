#!/usr/bin/env python3
"""Writes a wrk Lua script that POSTs /v1/search bodies round-robin.

Each body is `{"vector":[384 floats],"k":K}` (or `{"text":...}` with --text),
taken from a queries JSONL (`embedding` / `query` per line). With --text and
--distinct, every request carries a question no earlier request asked (the
query text with a numeric suffix), so no embedding cache can answer it.

    wrk-search-bodies.py queries-dev.jsonl > search.lua
    wrk -t2 -c64 -d10s -s search.lua http://127.0.0.1:PORT/v1/search
"""
import argparse
import json


def lua_string(s: str) -> str:
    return "[==[" + s + "]==]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("queries")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--text", action="store_true", help="send the question text instead of its vector")
    ap.add_argument("--mode", default=None, help="the body's mode (vector, lexical, hybrid); default: none")
    ap.add_argument("--distinct", action="store_true", help="--text: a new suffix on every request")
    args = ap.parse_args()
    with open(args.queries, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    out = ["bodies = {"]
    for r in rows:
        body = {"k": args.k}
        if args.mode:
            body["mode"] = args.mode
        if args.text:
            body["text"] = r["query"]
        else:
            body["vector"] = r["embedding"]
        out.append("  " + lua_string(json.dumps(body, separators=(",", ":"))) + ",")
    out.append("}")
    out.append('wrk.method = "POST"')
    out.append('wrk.headers["Content-Type"] = "application/json"')
    if args.text and args.distinct:
        # Each wrk thread numbers its own requests; `thread_id` keeps two
        # threads from asking the same question.
        out.append(
            """
counter = 0
thread_id = 0
local next_id = 0
function setup(thread) thread:set("thread_id", next_id); next_id = next_id + 1 end
request = function()
  counter = counter + 1
  local b = bodies[(counter % #bodies) + 1]
  local suffix = " " .. thread_id .. "x" .. counter
  b = string.gsub(b, '"text":"([^"]*)"', function(t) return '"text":"' .. t .. suffix .. '"' end)
  return wrk.format(nil, nil, nil, b)
end"""
        )
    else:
        out.append(
            """
counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil, bodies[(counter % #bodies) + 1])
end"""
        )
    out.append(
        """
done = function(summary, latency, requests)
  io.write(string.format("non2xx_or_errors %d\\n", summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end"""
    )
    print("\n".join(out))


if __name__ == "__main__":
    main()
