#!/usr/bin/env python3
"""Checks the epoch lines of `nnc --run` (or a built trainer) against conditions.

Reads the run's output on stdin, keeps the lines of the form
    epoch=N key=value key=value ...
and evaluates every --expect EXPR, a Python expression over
    first, last   the first and the last epoch line, as dicts of numbers
    epochs        all of them, in order
for example  --expect "last['test_accuracy'] >= 0.70"
             --expect "last['test_loss'] < first['test_loss'] / 10"
Prints its input (the epoch lines and the final done: line without their
seconds= and samples_per_s= fields with --no-time, so two runs can be
compared with diff) and one line per condition; exits 1 when
there is no epoch line or a condition does not hold.  Standard library only.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from expect import check  # noqa: E402


def parse(line):
    fields = {}
    for tok in line.split():
        key, eq, value = tok.partition("=")
        if not eq:
            return None
        try:
            fields[key] = float(value)
        except ValueError:
            fields[key] = value
    return fields if "epoch" in fields else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--expect", action="append", default=[], help="a condition on first, last, epochs")
    ap.add_argument("--no-time", action="store_true", help="leave the timing fields out of the echo")
    args = ap.parse_args()
    epochs = []
    for line in sys.stdin:
        fields = parse(line.strip()) if line.startswith("epoch=") else None
        if (fields or line.startswith("done:")) and args.no_time:
            line = " ".join(t for t in line.split() if not t.startswith(("seconds=", "samples_per_s="))) + "\n"
        sys.stdout.write(line)
        if fields:
            epochs.append(fields)
    if not epochs:
        print("check-epochs: FAILED: no epoch lines in the input")
        return 1
    env = {"first": epochs[0], "last": epochs[-1], "epochs": epochs}
    return check("check-epochs", args.expect, env)


if __name__ == "__main__":
    sys.exit(main())
