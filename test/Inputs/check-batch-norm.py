#!/usr/bin/env python3
"""Batch norm's semantics, checked from outside (standard library only).

    check-batch-norm.py make CSV          writes 16 samples of x: f32[2, 2, 2] and y
    check-batch-norm.py check CSV OUT ST  checks a trainer's run of test/E2E/batch-norm.nn

The run is one training step on all 16 samples (momentum 0.25, eps 1e-5),
then an evaluation on the same samples.  Checked: the saved running mean and
variance are the batch's mean and unbiased variance per channel moved by the
momentum from 0 and 1; the reported train loss uses the batch statistics
(biased variance, gamma 1, beta 0: the values before the step); the test
loss uses the running statistics and the saved gamma and beta.
"""
import math, os, random, re, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testdata import load, rows

MOMENTUM, EPS, C, PER = 0.25, 1e-5, 2, 4

def make(path):
    rng = random.Random(7)
    with open(path, "w") as f:
        f.write(",".join(f"x{i}" for i in range(C * PER)) + ",y\n")
        for _ in range(16):
            xs = [rng.gauss(3 if i < PER else -1, 2 if i < PER else 0.5) for i in range(C * PER)]
            f.write(",".join(f"{v:.6f}" for v in xs) + f",{rng.gauss(0, 1):.6f}\n")

def loss(data, mean, var, gamma, beta):
    total = 0.0
    for r in data:
        s = sum((r[c * PER + k] - mean[c]) / math.sqrt(var[c] + EPS) * gamma[c] + beta[c]
                for c in range(C) for k in range(PER))
        total += (s - r[-1]) ** 2
    return total / len(data)

def close(what, got, want, tol=2e-4):
    if abs(got - want) > tol * max(1.0, abs(want)):
        sys.exit(f"{what}: got {got}, expected {want}")

def check(csv, out, st):
    data = rows(csv)
    n = len(data) * PER
    mean = [sum(r[c * PER + k] for r in data for k in range(PER)) / n for c in range(C)]
    ss = [sum((r[c * PER + k] - mean[c]) ** 2 for r in data for k in range(PER)) for c in range(C)]
    biased, unbiased = [s / n for s in ss], [s / (n - 1) for s in ss]
    saved = load(st)
    for c in range(C):
        close(f"running_mean[{c}]", saved["h.running_mean"][c], MOMENTUM * mean[c])
        close(f"running_var[{c}]", saved["h.running_var"][c], 1 - MOMENTUM + MOMENTUM * unbiased[c])
    text = open(out).read()
    train = float(re.search(r"train_loss=(\S+)", text).group(1))
    test = float(re.search(r"test_loss=(\S+)", text).group(1))
    close("train_loss", train, loss(data, mean, biased, [1] * C, [0] * C))
    close("test_loss", test, loss(data, saved["h.running_mean"], saved["h.running_var"], saved["h.gamma"],
                                  saved["h.beta"]))
    print("batch norm ok")

if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        check(*sys.argv[2:5])
