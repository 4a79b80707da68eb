#!/usr/bin/env python3
"""Compares the inference library's output with the trainer's --predict CSV.

    compare-predict.py PRED.csv CLASSES.txt VALUES.txt

CLASSES.txt holds one class per line (examples/c-inference/predict),
VALUES.txt one comma-separated row of values per line (predict --values).
Prints "rows=N classes=same|differ at row R" and "values=within 1e-5" or the
largest difference.  Standard library only.
"""
import csv
import sys


def main():
    rows = list(csv.reader(open(sys.argv[1])))[1:]
    want = [[float(v) for v in r] for r in rows]
    classes = [int(line) for line in open(sys.argv[2])]
    values = [[float(v) for v in line.split(",")] for line in open(sys.argv[3])]
    print("rows=%d" % len(want) if len(want) == len(classes) == len(values) else
          "rows differ: %d %d %d" % (len(want), len(classes), len(values)))
    argmax = [max(range(len(r)), key=r.__getitem__) for r in want]
    bad = [i for i, (a, b) in enumerate(zip(argmax, classes)) if a != b]
    print("classes=same" if not bad else "classes=differ at row %d" % bad[0])
    diff = max(abs(a - b) for r, s in zip(want, values) for a, b in zip(r, s))
    print("values=within 1e-5" if diff <= 1e-5 else "values=differ by %g" % diff)


main()
