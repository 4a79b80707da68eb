#!/usr/bin/env python3
"""Compares two safetensors files tensor by tensor (standard library only).

    compare-params.py A B [--tol 1e-4] [--atol 0]

Every tensor must exist in both with the same shape, and agree elementwise
within tol relative to the tensor's largest magnitude (so values near zero
are not held to a relative standard their rounding cannot meet), or within
atol absolutely: a tensor whose exact value stays 0 (attention's key bias,
whose gradient cancels in the softmax) holds only rounding noise.  Prints
`agree (N tensors, worst R)` or, per mismatch, the tensor, the index and
both values, and exits 1.
"""
import json, struct, sys

def load(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if t["dtype"] != "F32":
            sys.exit(f"{path}: {name} has dtype {t['dtype']}, expected F32")
        b, e = t["data_offsets"]
        out[name] = (t["shape"], struct.unpack(f"<{(e - b) // 4}f", body[b:e]))
    return out

def main():
    args = sys.argv[1:]
    tol, atol = 1e-4, 0.0
    if "--tol" in args:
        i = args.index("--tol")
        tol = float(args[i + 1])
        del args[i:i + 2]
    if "--atol" in args:
        i = args.index("--atol")
        atol = float(args[i + 1])
        del args[i:i + 2]
    a, b = load(args[0]), load(args[1])
    if sorted(a) != sorted(b):
        sys.exit(f"tensor names differ: {sorted(a)} vs {sorted(b)}")
    worst, bad = 0.0, 0
    for name in sorted(a):
        (sa, va), (sb, vb) = a[name], b[name]
        if sa != sb:
            print(f"{name}: shape {sa} vs {sb}")
            bad += 1
            continue
        scale = max(1e-30, max(abs(x) for x in va) if va else 1.0)
        for i, (x, y) in enumerate(zip(va, vb)):
            r = abs(x - y) / scale
            if abs(x - y) <= atol:
                continue
            worst = max(worst, r)
            if r > tol:
                print(f"{name}[{i}]: {x!r} vs {y!r} (relative {r:.3g})")
                bad += 1
                break
    if bad:
        sys.exit(1)
    print(f"agree ({len(a)} tensors, worst {worst:.3g})")

if __name__ == "__main__":
    main()
