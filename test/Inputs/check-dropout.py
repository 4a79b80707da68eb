#!/usr/bin/env python3
"""Dropout's masks, checked from outside (standard library only).

    check-dropout.py make CSV                 writes 4 samples of x: f32[64] and y = 1, 2, 4, 8
    check-dropout.py check CSV OUT ST SEED    checks a run of test/E2E/dropout.nn with that seed

The run is one SGD step (lr 1) on the 4 samples, then an evaluation on them.
The model's loss is y * sum(dropout(x + w, 0.25)) with w starting at 0, so
the step moves w[i] by -(1/4) * sum over samples b of y_b * m_b[i] / 0.75:
with y_b = 2^b the saved w spells out every sample's mask bit.  Each mask
must be Philox4x32-10's (docs/language.md): key (the run's 16-bit key from
the seed, dropout call 0 in the high half), counter (b * 64 + i, 0, step 1,
0), kept when the top 24 bits of word 0 times 2^-24 are at least the rate.
The train loss uses those masks; the test loss is without dropout.
"""
import os, re, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testdata import load, rows

RATE, N, B = 0.25, 64, 4
M32 = 0xFFFFFFFF

def mix64(z):
    z &= (1 << 64) - 1
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & ((1 << 64) - 1)
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & ((1 << 64) - 1)
    return z ^ (z >> 31)

def key16(seed):
    return mix64(seed + 0x3C6EF372FE94F82B) >> 48

def philox(ctr, key):
    x0, x1, x2, x3 = ctr
    k0, k1 = key
    for r in range(10):
        if r:
            k0, k1 = (k0 + 0x9E3779B9) & M32, (k1 + 0xBB67AE85) & M32
        p0, p1 = 0xD2511F53 * x0, 0xCD9E8D57 * x2
        x0, x1, x2, x3 = (p1 >> 32) ^ x1 ^ k0, p1 & M32, (p0 >> 32) ^ x3 ^ k1, p0 & M32
    return x0, x1, x2, x3

def kept(seed, site, step, pos):
    u = (philox((pos & M32, pos >> 32, step, 0), ((key16(seed) + (site << 16)) & M32, 0))[0] >> 8) * 2.0 ** -24
    return u >= RATE

def make(path):
    with open(path, "w") as f:
        f.write(",".join(f"x{i}" for i in range(N)) + ",y\n")
        for b in range(B):
            f.write(",".join(f"{(b * N + i) % 7 * 0.125 - 0.25:.3f}" for i in range(N)) + f",{2 ** b}\n")

def check(csv, out, st, seed):
    data, w, seed = rows(csv), load(st)["w"], int(seed)
    scale = 1 / (1 - RATE)
    masks = [[kept(seed, 0, 1, b * N + i) for i in range(N)] for b in range(B)]
    dropped = sum(not m for row in masks for m in row)
    if not 0.1 * B * N < dropped < 0.4 * B * N:
        sys.exit(f"the reference drops {dropped} of {B * N}")
    for i in range(N):
        code = round(-w[i] * B / scale)
        want = sum(2 ** b for b in range(B) if masks[b][i])
        if code != want or abs(-w[i] * B / scale - code) > 1e-4:
            sys.exit(f"w[{i}] = {w[i]}: the masks of element {i} are {code:04b} (sample 3..0), expected {want:04b}")
    text = open(out).read()
    train = float(re.search(r"train_loss=(\S+)", text).group(1))
    test = float(re.search(r"test_loss=(\S+)", text).group(1))
    want_train = sum(r[-1] * sum(r[i] * scale for i in range(N) if masks[b][i]) for b, r in enumerate(data)) / B
    want_test = sum(r[-1] * sum(r[i] + w[i] for i in range(N)) for r in data) / B
    for what, got, want in (("train_loss", train, want_train), ("test_loss", test, want_test)):
        if abs(got - want) > 1e-4 * max(1.0, abs(want)):
            sys.exit(f"{what}: got {got}, expected {want}")
    print(f"dropout ok: {dropped} of {B * N} dropped")

if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        check(*sys.argv[2:6])
