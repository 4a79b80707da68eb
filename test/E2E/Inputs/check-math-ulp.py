#!/usr/bin/env python3
"""Writes the inputs of test/E2E/math-accuracy.test, or checks a --predict
output against NumPy in double precision.

    check-math-ulp.py inputs DIR          writes DIR/train.csv and DIR/x.csv
    check-math-ulp.py check OP X.csv PRED.csv

x.csv holds 8 f32 values per row: a sweep of [-110, 95], the points where
the code switches form (tanh's 0.625, exp's range ends), tiny and huge
values and both zeros.  `check` reads PRED.csv (OP(x) for each value),
computes OP in double, rounds to f32 and prints the largest difference in
units in the last place ("max_ulp=N").  A result below the smallest normal
f32 may be 0: the trainer flushes denormal numbers to zero.
"""
import csv
import sys

import numpy as np


def values():
    edges = [0.0, -0.0, 1e-30, -1e-30, 1e-7, 3.5e-4, 0.6249999, 0.625, -0.625, 0.6250001, 1.0, -1.0, 9.0, 9.1,
             44.5, -44.5, 88.72, 88.7228, 88.73, 89.0, 95.0, -87.3, -87.34, -87.4, -100.0, -103.9, -104.0, -110.0,
             3.4e38, -3.4e38, 0.5, -0.5]
    rng = np.random.default_rng(7)
    sweep = list(rng.uniform(-110, 95, 4000)) + list(rng.uniform(-2, 2, 2000)) + list(rng.normal(0, 1e-3, 200))
    x = np.array(edges + sweep, dtype=np.float32)
    return x[: len(x) // 8 * 8].reshape(-1, 8)


def write_inputs(d):
    x = values()
    head = ",".join("x%d" % (i + 1) for i in range(8))
    with open(d + "/x.csv", "w") as f:
        f.write(head + "\n")
        for row in x:
            f.write(",".join(repr(float(v)) for v in row) + "\n")
    with open(d + "/train.csv", "w") as f:
        f.write(head + ",y\n")
        for row in x[:16]:
            f.write(",".join("0.5" for v in row) + ",0\n")


def ulps(a, b):
    """Distance of f32 arrays a and b in representable steps."""
    ia = a.view(np.int32).astype(np.int64)
    ib = b.view(np.int32).astype(np.int64)
    ia = np.where(ia < 0, -(ia & 0x7FFFFFFF), ia)
    ib = np.where(ib < 0, -(ib & 0x7FFFFFFF), ib)
    return np.abs(ia - ib)


def check(op, xpath, predpath):
    x = np.array([[float(v) for v in r] for r in list(csv.reader(open(xpath)))[1:]], dtype=np.float32).ravel()
    got = np.array([[float(v) for v in r] for r in list(csv.reader(open(predpath)))[1:]], dtype=np.float32).ravel()
    if len(got) != len(x):
        sys.exit("%d values predicted for %d inputs" % (len(got), len(x)))
    with np.errstate(over="ignore"):
        want = getattr(np, op)(x.astype(np.float64)).astype(np.float32)
    d = ulps(want, got)
    flushed = (np.abs(want) < np.finfo(np.float32).tiny) & (got == 0)
    d[flushed] = 0
    worst = int(np.argmax(d))
    print("values=%d max_ulp=%d" % (len(x), d[worst]))
    if d[worst] > 1:
        print("worst: %s(%r) = %r, want %r" % (op, float(x[worst]), float(got[worst]), float(want[worst])))


if __name__ == "__main__":
    if sys.argv[1] == "inputs":
        write_inputs(sys.argv[2])
    else:
        check(*sys.argv[2:5])
