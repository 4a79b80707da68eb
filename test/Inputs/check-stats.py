#!/usr/bin/env python3
"""Checks the `--stats` counters of an nnc run against conditions.

Reads nnc's stderr on stdin, keeps the `name = value` lines after
`; statistics`, and evaluates every --expect EXPR, a Python expression over
    s   a dict from counter name ("names.probes") to its value
for example  --expect "s['names.probes'] <= 3 * s['names.lookups']"
Prints one line per condition; exits 1 when there are no counters or a
condition does not hold.  Standard library only.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from expect import check  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--expect", action="append", default=[], help="a condition on s")
    args = ap.parse_args()
    stats, on = {}, False
    for line in sys.stdin:
        line = line.strip()
        if line == "; statistics":
            on = True
            continue
        name, eq, value = line.partition(" = ")
        if on and eq:
            stats[name] = int(value)
    if not stats:
        print("check-stats: FAILED: no statistics in the input")
        return 1
    return check("check-stats", args.expect, {"s": stats})


if __name__ == "__main__":
    sys.exit(main())
