#!/usr/bin/env python3
"""Scores a --predict CSV against the true labels.

    check-predict.py PRED.csv idx DIR      argmax accuracy against DIR's t10k labels
    check-predict.py PRED.csv csv FILE COL mean |prediction - FILE's column COL|

Prints "rows=N values=K header=NAMES" and "accuracy=A" (the fraction of
rows whose largest value is at the label, as test_accuracy counts it) or
"mae=E".  Standard library only.
"""
import csv
import gzip
import os
import struct
import sys


def idx_labels(d):
    for name in ("t10k-labels-idx1-ubyte", "t10k-labels-idx1-ubyte.gz"):
        p = os.path.join(d, name)
        if os.path.exists(p):
            data = (gzip.open if p.endswith(".gz") else open)(p, "rb").read()
            n = struct.unpack(">I", data[4:8])[0]
            return list(data[8:8 + n])
    sys.exit("no t10k labels in " + d)


def main():
    rows = list(csv.reader(open(sys.argv[1])))
    header, values = rows[0], [[float(v) for v in r] for r in rows[1:]]
    k = len(header)
    if any(len(r) != k for r in values):
        sys.exit("a row does not have %d values" % k)
    print("rows=%d values=%d header=%s" % (len(values), k, ",".join(header)))
    if sys.argv[2] == "idx":
        labels = idx_labels(sys.argv[3])
        if len(labels) != len(values):
            sys.exit("%d labels for %d rows" % (len(labels), len(values)))
        hits = sum(1 for r, y in zip(values, labels) if max(range(k), key=lambda j: r[j]) == y)
        print("accuracy=%.6g" % (hits / len(values)))
    else:
        data = list(csv.DictReader(open(sys.argv[3])))
        target = [float(r[sys.argv[4]]) for r in data]
        if len(target) != len(values):
            sys.exit("%d targets for %d rows" % (len(target), len(values)))
        print("mae=%.6g" % (sum(abs(r[0] - t) for r, t in zip(values, target)) / len(values)))


main()
