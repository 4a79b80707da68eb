#!/usr/bin/python3
"""PyTorch CPU reference for nnc's CNN benchmarks (run with Debian's /usr/bin/python3).

The same models as examples/lenet.nn and examples/vgg.nn, in plain torch.nn
(PyTorch's default initialization; the same layers, layouts and arithmetic),
trained with Adam lr 0.001 on Fashion-MNIST tensors already in memory
(scaled by 1/255, shaped [n, 1, 28, 28]), shuffled, at a given batch size and
thread count.  Prints one line:

    torch model=lenet step_seconds=0.0081 samples_per_s=3950.0 gflops=9.8 train_loss=0.61 threads=1 batch=32

--steps N times N training steps after 3 warm-up steps (the default 200 for
lenet, 30 for vgg); --flush-denormal sets torch.set_flush_denormal(True)
first, as nnc's CPU threads run.  GFLOP/s counts the convolutions' and dense
layers' multiply-adds as 2 FLOPs, 3 passes (forward, input and weight
gradients; the first layer's input gradient included, as PyTorch computes
it only when needed: it does not, so this slightly favours neither side).
"""
import argparse, gzip, struct, time

import numpy as np
import torch
import torch.nn as nn

def load_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)

def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))

def conv_bn(c, f):
    return [nn.Conv2d(c, f, 3, padding=1, bias=False), nn.BatchNorm2d(f), nn.ReLU()]

def vgg():
    return nn.Sequential(
        *conv_bn(1, 32), *conv_bn(32, 32), nn.MaxPool2d(2),
        *conv_bn(32, 64), *conv_bn(64, 64), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(3136, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, 10))

# multiply-adds of one sample's forward pass
MACS = {
    "lenet": 6 * 25 * 28 * 28 + 16 * 6 * 25 * 10 * 10 + 400 * 120 + 120 * 84 + 84 * 10,
    "vgg": 32 * 9 * 784 + 32 * 32 * 9 * 784 + 64 * 32 * 9 * 196 + 64 * 64 * 9 * 196 + 3136 * 128 + 128 * 10,
}

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=["lenet", "vgg"])
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--flush-denormal", action="store_true")
    a = ap.parse_args()
    if a.flush_denormal and not torch.set_flush_denormal(True):
        raise SystemExit("torch_cnn.py: this CPU cannot flush denormals")
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    steps = a.steps or (200 if a.model == "lenet" else 30)
    x = torch.from_numpy(load_idx(a.data + "/train-images-idx3-ubyte.gz").astype(np.float32) / 255).reshape(-1, 1, 28, 28)
    y = torch.from_numpy(load_idx(a.data + "/train-labels-idx1-ubyte.gz").astype(np.int64))
    model = lenet() if a.model == "lenet" else vgg()
    opt = torch.optim.Adam(model.parameters(), lr=0.001)
    loss_fn = nn.CrossEntropyLoss()
    order = torch.randperm(x.shape[0])
    model.train()
    def step(i):
        idx = order[(i * a.batch) % (x.shape[0] - a.batch):][:a.batch]
        opt.zero_grad()
        loss = loss_fn(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        return loss.item()
    for i in range(3):
        step(i)
    t0 = time.perf_counter()
    total = 0.0
    for i in range(steps):
        total += step(3 + i)
    dt = (time.perf_counter() - t0) / steps
    gflops = 6 * MACS[a.model] * a.batch / dt / 1e9
    print(f"torch model={a.model} step_seconds={dt:.5f} samples_per_s={a.batch / dt:.1f} gflops={gflops:.1f} "
          f"train_loss={total / steps:.4f} threads={a.threads} batch={a.batch}")

if __name__ == "__main__":
    main()
