#!/usr/bin/env python3
"""The runner's module graph, from its source text: which files import which, the import circles
(strongly connected components of more than one file) and the dependencies that point from a
lower layer up to a higher one (by the layer order below, the data flow of docs/how-it-works.md's "How a run
works"). Usage: deps.py [runner/src]  (prints the circles and the upward arrows, then counts).

A file depends on another when it names a path of it (`crate::a::b`, `super::x`, `use` lists
included). Re-exports are followed no further than the file that declares them."""
import os, re, sys
from itertools import count

# Lowest first: a file may depend on any file of its own or a lower layer. A file's layer is that
# of its longest listed prefix ("console" is the log sink every layer writes to; its bars and
# tables, "console/progress" and "console/terminal", sit above what they show). The run is the
# orchestrator: data flows scenario -> plan -> run -> measurements -> exports, and the run calls
# each stage in turn, so in the code it sits above the stages it calls.
LAYERS = [
    ["stats", "os", "console"],
    ["scenario"],
    ["protocol", "error"],
    ["plugin"],
    ["cluster"],
    ["plan"],
    ["loadgen"],
    ["measure"],
    ["supervise"],
    ["results"],
    ["judge"],
    ["plot"],
    ["console/progress", "console/terminal"],
    ["run"],
    ["nightly", "deploy"],
    ["cli", "lib", "main", "authoring"],
]
# The same layers under the names the modules had before runner/src was grouped into folders
# (0cdf565), so the script measures that tree too.
OLD_NAMES = {
    "sys": "os", "procfs": "os", "netns": "os", "interrupt": "os",
    "histograms": "protocol",
    "audit": "measure", "timeline": "measure", "rss_trend": "measure",
    "objectives": "judge",
    "progress": "console/progress", "terminal": "console/progress",
    "budget": "plan", "report": "plot", "render": "plot",
    "notes": "plugin", "serve_child": "plugin",
}
RANK = {m: i for i, layer in enumerate(LAYERS) for m in layer}
RANK.update({old: RANK[new] for old, new in OLD_NAMES.items()})

def rank(mod):
    """The layer of a file: that of its longest listed prefix."""
    for n in range(len(mod), 0, -1):
        key = "/".join(mod[:n])
        if key in RANK:
            return RANK[key]
    return None

def modules(root):
    files = {}
    for d, _, fs in os.walk(root):
        for f in fs:
            if f.endswith(".rs"):
                p = os.path.join(d, f)
                rel = os.path.relpath(p, root)[:-3].split(os.sep)
                if rel[-1] == "mod":
                    rel = rel[:-1]
                files[tuple(rel)] = p
    return files

def resolve(path, files):
    """The longest module prefix of `path` that is a file."""
    for n in range(len(path), 0, -1):
        if tuple(path[:n]) in files:
            return tuple(path[:n])
    return None

def strip_tests(text):
    """The code a build compiles: unit tests and comments (doc links) left out."""
    i = text.find("#[cfg(test)]")
    text = text if i < 0 else text[:i]
    return re.sub(r"//[^\n]*", "", text)

def expand_use(text):
    """`use crate::{a, b::{c, d}}` -> crate::a, crate::b::c, crate::b::d (brace lists only)."""
    out = []
    for m in re.finditer(r"use\s+(crate|super)::([^;]*);", text, re.S):
        base, body = m.group(1), re.sub(r"\s+", "", m.group(2))
        stack = [(base, body)]
        while stack:
            prefix, b = stack.pop()
            if b.startswith("{") and b.endswith("}"):
                depth, cur, parts = 0, "", []
                for ch in b[1:-1]:
                    if ch == "," and depth == 0:
                        parts.append(cur); cur = ""
                        continue
                    depth += ch == "{"; depth -= ch == "}"
                    cur += ch
                parts.append(cur)
                for p in parts:
                    if p:
                        stack.append((prefix, p))
                continue
            head, _, rest = b.partition("::{")
            if rest:
                stack.append((prefix + "::" + head, "{" + rest))
            else:
                out.append(prefix + "::" + b)
    return out

def deps(files):
    edges = {}
    for mod, p in files.items():
        text = strip_tests(open(p).read())
        paths = re.findall(r"\b(?:crate|super)(?:::\w+)+", text) + expand_use(text)
        targets = set()
        for raw in paths:
            parts = raw.split("::")
            if parts[0] == "super":
                base = list(mod[:-1]) if not files[mod].endswith("mod.rs") else list(mod)
                while parts and parts[0] == "super":
                    parts = parts[1:]
                    base = base[:-1] if parts and parts[0] == "super" else base
                full = base + parts
            else:
                full = parts[1:]
            t = resolve(full, files)
            if t and t != mod and not (t == () ):
                targets.add(t)
        edges[mod] = targets
    return edges

def sccs(edges):
    index, low, on, stack, out = {}, {}, set(), [], []
    c = count()
    def visit(v):
        index[v] = low[v] = next(c); stack.append(v); on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: out.append(sorted(comp))
    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index: visit(v)
    return out

def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "runner/src"
    files = modules(root)
    edges = deps(files)
    name = lambda m: "/".join(m) or "lib"
    circles = sccs(edges)
    print(f"import circles: {len(circles)}")
    for c in circles:
        print("  " + " <-> ".join(name(m) for m in c))
    up = []
    for a, ts in edges.items():
        for b in ts:
            ra, rb = rank(a), rank(b)
            if a and b and a[0] != b[0] and ra is not None and rb is not None and rb > ra:
                up.append((name(a), name(b)))
    print(f"upward dependencies: {len(up)}")
    for a, b in sorted(up):
        print(f"  {a} -> {b}")
    unknown = sorted({m[0] for m in files if m and rank(m) is None})
    if unknown:
        print("modules without a layer: " + ", ".join(unknown))
    root_files = [m for m in files if len(m) == 1 and not files[m].endswith("mod.rs")]
    print(f"files at the root: {len(root_files)}")

main()
