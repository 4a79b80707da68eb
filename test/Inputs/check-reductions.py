#!/usr/bin/env python3
"""Checks softmax, log_softmax, logsumexp, the reductions and layer_norm
(whose gamma and beta start at 1 and 0, and the loss leaves them there)
against NumPy.

For each input shape (rank 2 and rank 3 with no two extents equal, so that
a result along the wrong axis cannot even broadcast, and a square one,
where it silently could) it writes a
model whose metrics are every element of each expression below, and a
one-row CSV test set with values of mixed magnitudes (one slice near 90,
where exp overflows f32 unless the maximum is subtracted along the right
axis).  It trains that model for one step (`nnc --run`, or a trainer built
by nnc for the cpu target with --cpu), reads the test metrics from the
epoch line and compares each element with NumPy in f64 (tolerance 2e-5,
relative above 1: the values are printed with 6 digits).  Prints one line
per expression, `maxdiff=...`, and exits 1 on any mismatch.
"""
import argparse
import os
import subprocess
import sys

import numpy as np


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def logsumexp(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return np.squeeze(m, axis=axis) + np.log(np.exp(x - m).sum(axis=axis))


def layer_norm(x, eps=1e-5):
    c = x - x.mean(axis=-1, keepdims=True)
    return c / np.sqrt((c * c).mean(axis=-1, keepdims=True) + eps)


def cases(rank):
    """(nn expression, NumPy function of x) pairs for an input of this rank."""
    axes = [None, 0] + ([1] if rank == 3 else [])
    out = []
    for name, fn in (("softmax", softmax), ("log_softmax", log_softmax), ("logsumexp", logsumexp)):
        for a in axes:
            call = "%s(x)" % name if a is None else "%s(x, axis = %d)" % (name, a)
            out.append((call, lambda x, fn=fn, a=a: fn(x, -1 if a is None else a)))
    a = 1
    out += [
        ("sum(x, axis = %d, keepdims = true)" % a, lambda x: x.sum(axis=a, keepdims=True)),
        ("mean(x, axis = 0, keepdims = true)", lambda x: x.mean(axis=0, keepdims=True)),
        ("max(x, axis = -1, keepdims = true)", lambda x: x.max(axis=-1, keepdims=True)),
        ("min(x, axis = %d, keepdims = true)" % a, lambda x: x.min(axis=a, keepdims=True)),
        ("sum(x, axis = [0, %d], keepdims = true)" % (rank - 1),
         lambda x: x.sum(axis=(0, rank - 1), keepdims=True)),
        ("x - max(x, axis = 0, keepdims = true)", lambda x: x - x.max(axis=0, keepdims=True)),
        ("sum(x, keepdims = true) + 0 * x", lambda x: x.sum() + 0 * x),
        ("argmax(x, keepdims = true)", lambda x: x.argmax(axis=-1)[..., None].astype(np.float64)),
        ("layer_norm(x)", layer_norm),
        ("layer_norm(x, eps = 0.5)", lambda x: layer_norm(x, 0.5)),
    ]
    return out


def write_model(path, shape, exprs, data):
    lines = ["model m {", "  input x: f32[%s]" % ", ".join(map(str, shape))]
    for k, (expr, ref) in enumerate(exprs):
        lines.append("  y%d = %s" % (k, expr))
        lines.append("  f%d = reshape(y%d, [-1])" % (k, k))
        for i in range(ref.size):
            lines.append("  metric e%d_%d = f%d[%d]" % (k, i, k, i))
    lines += ["  loss = sum(x) * 0", "}", "train m {",
              '  data = csv("%s", test = "%s")' % (data, data),
              "  optimizer = sgd", "  batch = 1", "  epochs = 1", "}"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def metrics(output):
    for line in output.splitlines():
        if line.startswith("epoch="):
            return {k[5:]: float(v) for k, v in (t.split("=", 1) for t in line.split()) if k.startswith("test_")}
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nnc", required=True)
    ap.add_argument("--dir", required=True, help="a directory for the models, data and trainers")
    ap.add_argument("--cpu", action="store_true", help="build a cpu trainer instead of nnc --run")
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    failed = 0
    for shape in ((3, 5), (2, 3, 4), (4, 4)):
        x = (rng.standard_normal(shape) * 4).astype(np.float32)
        x[(0,) * (len(shape) - 1)] += 90  # one row near the f32 exp overflow
        x64 = x.astype(np.float64)
        exprs = [(e, fn(x64)) for e, fn in cases(len(shape))]
        tag = "x".join(map(str, shape))
        data = os.path.join(args.dir, tag + ".csv")
        with open(data, "w") as f:
            f.write(",".join("%.9g" % v for v in x.ravel()) + ",0\n")
        model = os.path.join(args.dir, tag + ".nn")
        write_model(model, shape, exprs, data)
        if args.cpu:
            exe = os.path.join(args.dir, tag + ".train")
            subprocess.run([args.nnc, model, "-o", exe], check=True)
            cmd = [exe]
        else:
            cmd = [args.nnc, model, "--run"]
        run = subprocess.run(cmd, stdout=subprocess.PIPE, universal_newlines=True)
        got = metrics(run.stdout) if run.returncode == 0 else None
        if got is None:
            print("%s: FAILED: %s exited %d without an epoch line" % (tag, cmd[0], run.returncode))
            failed += 1
            continue
        for k, (expr, ref) in enumerate(exprs):
            ref = ref.ravel()
            val = np.array([got.get("e%d_%d" % (k, i), np.nan) for i in range(ref.size)])
            diff = np.abs(val - ref)
            bad = not np.all(diff <= 2e-5 * np.maximum(1, np.abs(ref)))
            print("%s %s: maxdiff=%.3g %s" % (tag, expr, np.nanmax(diff) if ref.size else 0,
                                              "FAILED" if bad else "ok"))
            failed += bad
    print("check-reductions: %s" % ("FAILED" if failed else "ok"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
