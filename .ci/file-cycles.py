#!/usr/bin/env python3
"""No two files of the service import each other.

structure.py checks cycles between top-level modules; this checks pairs of
files (`query::dto` <-> `query::plan`, `bench::load` <-> `bench::progress`):
a file that both uses and is used by a sibling should share a third file
with it, or one of them should own the other's part. Paths are read from
`crate::`/`super::` paths outside `#[cfg(test)]` code; a parent and its own
children are exempt (a `mod.rs` re-exports what its children use).

Usage: python3 .ci/file-cycles.py [src]   (exit 1 and the pairs on a cycle)
"""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "src"
files = {}
for dirpath, _, names in os.walk(root):
    for name in names:
        if name.endswith(".rs"):
            path = os.path.join(dirpath, name)
            with open(path, encoding="utf-8") as f:
                files[path] = f.read()


def module(path):
    parts = path[len(root) + 1 : -3].split("/")
    return tuple(parts[:-1] if parts[-1] in ("mod", "lib", "main") else parts)


modules = {module(p) for p in files}


def target(parts):
    """The longest prefix of `parts` that is a module with a file."""
    for n in range(len(parts), 0, -1):
        if tuple(parts[:n]) in modules:
            return tuple(parts[:n])
    return None


edges = {}
for path, text in files.items():
    me = module(path)
    code = re.sub(r"//[^\n]*", "", text.split("#[cfg(test)]")[0])
    deps = set()
    for m in re.finditer(r"\b(crate|super)((?:::[a-z_][a-z0-9_]*)+)", code):
        base = [] if m.group(1) == "crate" else list(me[:-1])
        t = target(base + m.group(2).strip(":").split("::"))
        if t and t != me:
            deps.add(t)
    for m in re.finditer(r"use (crate|super)::\{([^;]*)\};", code, re.S):
        base = [] if m.group(1) == "crate" else list(me[:-1])
        for name in re.findall(r"(?:^|[,{\s])([a-z_][a-z0-9_]*)(?=::|\s*[,}]|$)", m.group(2)):
            t = tuple(base + [name])
            if t in modules and t != me:
                deps.add(t)
    edges[me] = deps

cycles = sorted(
    ("::".join(a), "::".join(b))
    for a, deps in edges.items()
    for b in deps
    if a < b and a in edges.get(b, ()) and a[: len(b)] != b and b[: len(a)] != a
)
for a, b in cycles:
    print(f"file cycle: {a} <-> {b}")
if cycles:
    sys.exit(1)
print(f"file cycles: none among {len(files)} files")
