#!/usr/bin/env python3
"""The folder include graph runs one way: include-graph.py SOURCE_ROOT.

    support -> ir -> {frontend, passes} -> codegen -> driver;  runtime apart

A file may include headers of its own folder and of folders below it
(support is the bottom); frontend and passes do not include each other;
runtime/ (libnnrt, which trainers link) includes only runtime/, and the
compiler may use it (the interpreter trains with its loaders and loop);
include/nnc/backend.h (the plugin API) is for codegen and the driver.  codegen/<target>/ directories are one folder
each beside codegen/ itself (the registry and the shared pieces), and a
target directory may use codegen/ and codegen/llvm/ but not another
target's directory.  Prints every include that breaks this, and exits 1
if there is one.  Standard library only.
"""
import os
import re
import sys

root = sys.argv[1]
RANK = {"support": 0, "ir": 1, "frontend": 2, "passes": 2, "codegen": 3, "driver": 4}
SHARED_CODEGEN = {"codegen", "codegen/llvm"}


def folder(path):
    parts = path.split("/")
    if parts[0] == "codegen" and len(parts) > 2:
        return "codegen/" + parts[1]
    return parts[0]


def top(f):
    return f.split("/")[0]


def allowed(src, dst):
    if src == dst:
        return True
    if top(src) == "runtime":
        return False  # libnnrt knows nothing of the compiler
    if top(dst) == "runtime":
        return True
    if dst == "include":
        return top(src) in ("codegen", "driver")
    if top(src) == "codegen" and top(dst) == "codegen":
        return dst in SHARED_CODEGEN and src != "codegen"
    if top(dst) not in RANK or top(src) not in RANK:
        return False
    if top(src) == top(dst):
        return True
    return RANK[top(dst)] < RANK[top(src)]


bad = []
for d in ["support", "ir", "frontend", "passes", "codegen", "driver", "runtime"]:
    for base, _, files in os.walk(os.path.join(root, d)):
        for name in sorted(files):
            if not name.endswith((".c", ".h", ".y", ".l", ".def")):
                continue
            path = os.path.relpath(os.path.join(base, name), root)
            src = folder(path)
            for line in open(os.path.join(root, path), errors="replace"):
                m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                if not m:
                    continue
                inc = m.group(1)
                target = inc if os.path.exists(os.path.join(root, inc)) else None
                if inc.startswith("nnc/"):
                    target = "include/" + inc
                if not target:
                    continue  # generated (lexer.h, parser.h) or system
                dst = "include" if target.startswith("include/") else folder(target)
                if not allowed(src, dst):
                    bad.append("%s: includes %s (%s -> %s)" % (path, inc, src, dst))
for b in sorted(set(bad)):
    print(b)
print("include graph: %d back edges" % len(set(bad)))
sys.exit(1 if bad else 0)
