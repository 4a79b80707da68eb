"""Trains a small model with nnc's trainer and with PyTorch from the same
weights, data and settings, and compares the weights after the run.

usage: check-optimizer-torch.py TRAINER DIR OPTIMIZER SCHEDULE STEPS [CLIP]

OPTIMIZER: adamw:lr,beta1,beta2,eps,weight_decay | adam:lr,beta1,beta2,eps | sgd:lr
SCHEDULE:  constant | cosine:warmup,min | step:every,factor
CLIP:      the train block's clip (torch.nn.utils.clip_grad_norm_ before each step)
The trainer's model (test/E2E/optimizer-torch.test) is
  h = dense(x, 3); pred = dense(h, 1); loss = mse(pred, y)
on DIR/train.csv (written here: 16 rows of 4 features and a target),
batch 8, no shuffling; the test writes the train block to match.
"""
import json
import math
import os
import struct
import subprocess
import sys

import numpy as np
import torch

trainer, d, opt_spec, sched_spec, steps = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
clip = float(sys.argv[6]) if len(sys.argv) > 6 else 0.0
rng = np.random.default_rng(7)
X = rng.normal(size=(16, 4)).astype(np.float32)
Y = (X @ np.array([1, -2, 0.5, 3], np.float32) + 0.1).astype(np.float32)
with open(os.path.join(d, "train.csv"), "w") as f:
    f.write("a,b,c,d,y\n")
    for x, y in zip(X, Y):
        f.write(",".join("%.9g" % v for v in list(x) + [y]) + "\n")

init = {"h.w": rng.normal(size=(4, 3)).astype(np.float32), "h.b": rng.normal(size=(3,)).astype(np.float32),
        "pred.w": rng.normal(size=(3, 1)).astype(np.float32), "pred.b": rng.normal(size=(1,)).astype(np.float32)}


def write_safetensors(path, tensors):
    header, off, blobs = {"__metadata__": {"format": "nnc", "model": "lin"}}, 0, []
    for k, v in tensors.items():
        b = v.tobytes()
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read_safetensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    return {k: np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], np.float32).reshape(v["shape"])
            for k, v in h.items() if k != "__metadata__"}


write_safetensors(os.path.join(d, "init.safetensors"), init)
out = os.path.join(d, "out.safetensors")
subprocess.run([trainer, "--load", os.path.join(d, "init.safetensors"), "--save", out], check=True,
               stdout=subprocess.DEVNULL)
got = read_safetensors(out)

# PyTorch: the same model, data order (no shuffling, batches of 8) and run.
P = {k: torch.tensor(v, requires_grad=True) for k, v in init.items()}
kind, _, args = opt_spec.partition(":")
a = [float(v) for v in args.split(",")]
decayed = [P["h.w"], P["pred.w"]]  # rank 2 and more
others = [P["h.b"], P["pred.b"]]
if kind == "adamw":
    opt = torch.optim.AdamW([{"params": decayed, "weight_decay": a[4]}, {"params": others, "weight_decay": 0.0}],
                            lr=a[0], betas=(a[1], a[2]), eps=a[3])
elif kind == "adam":
    opt = torch.optim.Adam(decayed + others, lr=a[0], betas=(a[1], a[2]), eps=a[3])
else:
    opt = torch.optim.SGD(decayed + others, lr=a[0])
skind, _, sargs = sched_spec.partition(":")
s = [float(v) for v in sargs.split(",")] if sargs else []


def multiplier(it):  # it counts from 0, as nanoGPT's get_lr
    if skind == "cosine":
        warmup, lo = int(s[0]), s[1]
        if it < warmup:
            return (it + 1) / warmup
        ratio = min(1.0, (it - warmup) / (steps - warmup))
        return lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * ratio))
    if skind == "step":
        return s[1] ** (it // int(s[0]))
    return 1.0


sched = torch.optim.lr_scheduler.LambdaLR(opt, multiplier)
Xt, Yt = torch.tensor(X), torch.tensor(Y)
for it in range(steps):
    lo = (it * 8) % 16
    xb, yb = Xt[lo:lo + 8], Yt[lo:lo + 8]
    pred = (xb @ P["h.w"] + P["h.b"]) @ P["pred.w"] + P["pred.b"]
    loss = ((pred[:, 0] - yb) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    if clip > 0:
        torch.nn.utils.clip_grad_norm_(list(P.values()), clip)
    opt.step()
    sched.step()

worst = 0.0
for k, v in P.items():
    want = v.detach().numpy()
    err = float(np.max(np.abs(got[k] - want) / (np.abs(want) + 1e-3)))
    worst = max(worst, err)
    print("%s: max_rel_err=%.3g" % (k, err))
print("ok" if worst < 1e-4 else "MISMATCH", "worst=%.3g" % worst)
sys.exit(0 if worst < 1e-4 else 1)
