#!/usr/bin/env python3
"""Functions longer than a limit (default 100 lines, from `fn` to its closing brace), outside
test modules and chart drawing (runner/src/plot/). Usage: long_fns.py [LIMIT] [DIR...]"""
import os, re, sys

def functions(text):
    """(name, first line, lines) of every fn with a body, by brace matching on code (strings,
    chars and comments skipped)."""
    out = []
    for m in re.finditer(r"\bfn\s+(\w+)", text):
        i = text.find("{", m.end())
        semi = text.find(";", m.end())
        if i < 0 or (0 <= semi < i):
            continue
        depth, j, n = 0, i, len(text)
        while j < n:
            c = text[j]
            if text.startswith("//", j):
                j = text.find("\n", j)
                j = n if j < 0 else j
                continue
            if c == '"':
                j += 1
                while j < n and text[j] != '"':
                    j += 2 if text[j] == "\\" else 1
            elif c == "'" and j + 2 < n and (text[j + 2] == "'" or text[j + 1] == "\\"):
                j = text.find("'", j + 2 if text[j + 1] != "\\" else j + 3)
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        start = text.count("\n", 0, m.start()) + 1
        end = text.count("\n", 0, j) + 1
        out.append((m.group(1), start, end - start + 1))
    return out

def main():
    args = sys.argv[1:]
    limit = int(args.pop(0)) if args and args[0].isdigit() else 100
    dirs = args or ["runner/src", "plugins"]
    found = 0
    for root in dirs:
        for d, _, fs in os.walk(root):
            if "/plot" in d.replace(os.sep, "/") or "/target" in d:
                continue
            for f in fs:
                if not f.endswith(".rs"):
                    continue
                p = os.path.join(d, f)
                text = open(p).read()
                cut = text.find("#[cfg(test)]")
                code = text if cut < 0 else text[:cut]
                # Comments (doc examples included) blanked, lines kept.
                code = re.sub(r"//[^\n]*", "", code)
                for name, line, n in functions(code):
                    if n > limit:
                        found += 1
                        print(f"{p}:{line}: fn {name}: {n} lines")
    print(f"functions over {limit} lines: {found}")

main()
