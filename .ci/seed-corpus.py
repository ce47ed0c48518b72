"""Writes corpus-dev.jsonl as Redis protocol for `redis-cli --pipe`, exactly as
the chatbot stores it: SET cache:embedding:<url> <line> EX 86400."""

import json
import sys


def resp(*args: bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


with open(sys.argv[1], "rb") as corpus:
    for line in corpus:
        line = line.rstrip(b"\r\n")
        if not line.strip():
            continue
        url = json.loads(line)["url"].encode()
        sys.stdout.buffer.write(resp(b"SET", b"cache:embedding:" + url, line, b"EX", b"86400"))
