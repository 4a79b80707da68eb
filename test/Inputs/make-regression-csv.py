#!/usr/bin/env python3
"""Makes test/Inputs/regression/{train,test}.csv: a small synthetic regression set.

Each row has 8 features x1..x8, drawn uniformly from [-1, 1), and a target

    target = 1 + 2*x1 - 3*x2 + 0.5*x3 + x4*x5 + sin(pi*x6) + 0.5*x7^2 - 0.25*x8 + noise

with noise ~ N(0, 0.05^2).  The header row is "x1,...,x8,target"; values have
6 decimals.  1000 training rows, then 200 test rows, from one stream of
random.Random(20240601) (only random() is used, with a Box-Muller of our own,
so the output does not depend on the Python version).  Reruns give identical
files.

Run from the repository root (standard library only):
    python3 test/Inputs/make-regression-csv.py [OUT_DIR]
"""
import math
import os
import random
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "regression")
SEED = 20240601
NOISE = 0.05


def gauss(rng):
    u1 = 1.0 - rng.random()
    u2 = rng.random()
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def target(x):
    return (1 + 2 * x[0] - 3 * x[1] + 0.5 * x[2] + x[3] * x[4] + math.sin(math.pi * x[5])
            + 0.5 * x[6] ** 2 - 0.25 * x[7])


def write(path, rng, rows):
    with open(path, "w", newline="\n") as f:
        f.write(",".join([f"x{i}" for i in range(1, 9)] + ["target"]) + "\n")
        for _ in range(rows):
            x = [round(rng.random() * 2 - 1, 6) for _ in range(8)]
            y = target(x) + NOISE * gauss(rng)
            f.write(",".join(f"{v:.6f}" for v in x + [y]) + "\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = random.Random(SEED)
    write(os.path.join(OUT, "train.csv"), rng, 1000)
    write(os.path.join(OUT, "test.csv"), rng, 200)


if __name__ == "__main__":
    main()
