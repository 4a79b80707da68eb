#!/usr/bin/env python3
"""Compares the final `done:` lines of two trainer runs (standard library only).

    compare-losses.py A.out B.out [--tol 1e-3]

train_loss and test_loss must agree within tol relative, and the step
counts must be equal.  Prints `losses agree (worst R)` or what differs, and
exits 1.
"""
import re, sys

def done(path):
    lines = [l for l in open(path) if l.startswith("done:")]
    if not lines:
        sys.exit(f"{path}: no done: line")
    return {k: float(v) for k, v in re.findall(r"(\w+)=([-+0-9.eE]+|nan|inf)", lines[-1])}

def main():
    args = sys.argv[1:]
    tol = 1e-3
    if "--tol" in args:
        i = args.index("--tol")
        tol = float(args[i + 1])
        del args[i:i + 2]
    a, b = done(args[0]), done(args[1])
    if a.get("steps") != b.get("steps"):
        sys.exit(f"steps differ: {a.get('steps')} vs {b.get('steps')}")
    worst = 0.0
    for key in ("train_loss", "test_loss"):
        x, y = a[key], b[key]
        r = abs(x - y) / max(abs(x), abs(y), 1e-30)
        if not r <= tol:
            sys.exit(f"{key} differs: {x} vs {y} (relative {r:.3g})")
        worst = max(worst, r)
    print(f"losses agree (worst {worst:.3g})")

if __name__ == "__main__":
    main()
