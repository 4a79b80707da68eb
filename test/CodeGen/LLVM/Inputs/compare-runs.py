#!/usr/bin/env python3
"""Compares the last `done:` (or epoch) line of two training runs.

    compare-runs.py RUN.txt REFERENCE.txt [--tol 1e-3] [--keys a,b,c]

Prints `agree` when every key (default: train_loss, test_loss and every
test_* metric of the reference) matches within tol relative (absolute below
1), else one `KEY: got X, want Y` line per difference, and exits 1.  Used to
hold a compiled trainer to the interpreter.  Standard library only.
"""
import argparse
import sys


def last_fields(path):
    fields = None
    with open(path) as f:
        for line in f:
            if line.startswith("done:") or line.startswith("epoch="):
                fields = {}
                for tok in line.split():
                    key, eq, value = tok.partition("=")
                    if eq:
                        try:
                            fields[key] = float(value)
                        except ValueError:
                            pass
    if fields is None:
        sys.exit("%s: no epoch or done: line" % path)
    return fields


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("reference")
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--keys", default="")
    args = ap.parse_args()
    got, want = last_fields(args.run), last_fields(args.reference)
    keys = args.keys.split(",") if args.keys else [
        k for k in want if k in ("train_loss", "test_loss") or k.startswith("test_")]
    bad = []
    for k in keys:
        if k not in got or k not in want:
            bad.append("%s: missing" % k)
        elif abs(got[k] - want[k]) > args.tol * max(1.0, abs(want[k])):
            bad.append("%s: got %g, want %g" % (k, got[k], want[k]))
    print("\n".join(bad) if bad else "agree")
    sys.exit(1 if bad else 0)


main()
