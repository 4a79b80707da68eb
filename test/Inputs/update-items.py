#!/usr/bin/env python3
"""Work-items per parameter update: update-items.py PLAN.

PLAN is an OpenCL launch plan (FILE.plan.json, --emit=cl) or a trainer
descriptor (model.c, kept by nnc -v).  For every parameter, the last kernel
of the program that takes it (its optimizer update) and that kernel's
launch range (times the batch when batched) are printed as
"NAME ITEMS of ELEMENTS", in buffer order.  Standard library only.
"""
import json
import re
import sys

path = sys.argv[1]
params, kernels, batch = {}, [], 32
if path.endswith(".json"):
    plan = json.load(open(path))
    batch = plan.get("batch", 32)
    for b in plan["buffers"]:
        if b["kind"] == "param":
            n = 1
            for d in b["shape"]:
                n *= d
            params[b["id"]] = (b["name"], n)
    kernels = [(k["args"], k["range"] * (batch if k["range_batched"] else 1)) for k in plan["kernels"]]
else:
    text = open(path).read()
    for m in re.finditer(r'\{"([^"]+)", RT_BUF_PARAM, \d+, \d+, \{([\d, ]+)\}.*/\* (\d+) \*/', text):
        n = 1
        for d in m.group(2).split(","):
            n *= int(d)
        params[int(m.group(3))] = (m.group(1), n)
    args = {int(m.group(1)): [int(a) for a in m.group(2).split(",")]
            for m in re.finditer(r"nnc_args_(\d+)\[\] = \{([\d, ]+)\}", text)}
    seen = set()
    for m in re.finditer(r"\{(\d+), \d+, nnc_args_\d+, (\d+), (\d)\}", text):
        k = int(m.group(1))
        if k in seen:
            break  # the eval plan repeats kernels
        seen.add(k)
        kernels.append((args[k], int(m.group(2)) * (batch if m.group(3) == "1" else 1)))
for pid, (name, n) in sorted(params.items()):
    items = [r for a, r in kernels if pid in a][-1]
    print("%s %d of %d" % (name, items, n))
