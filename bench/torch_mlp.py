#!/usr/bin/python3
"""PyTorch reference for nnc's benchmarks: CPU (run with Debian's /usr/bin/python3)
or, with --device cuda, an NVIDIA GPU (a PyTorch built with CUDA; bench/gpu.sh).

Trains the same MLP as examples/mnist.nn (784-64-10, ReLU, cross-entropy,
Adam lr 0.001) for one epoch of Fashion-MNIST at a given batch size and
thread count, on tensors already in memory (the data is loaded and scaled
before timing, as nnc's trainer does), and prints one line:

    torch epoch_seconds=1.234 samples_per_s=48600.0 train_loss=0.51 threads=1 batch=32

--flush-denormal sets torch.set_flush_denormal(True) first (FTZ/DAZ, as
nnc's CPU threads run; bench/cpu.sh reports PyTorch's better of the two).

--wide times the 784-4096-4096-10 MLP instead: seconds per training step at
--steps steps after 2 warm-up steps, and achieved GFLOP/s.

--device cuda trains on the GPU: the data is moved there first, float32
matmuls stay float32 (TF32 off, PyTorch's default), and the clock stops
after torch.cuda.synchronize().  Each step still reads its loss back, as
nnc's trainer does.
"""
import argparse, gzip, struct, time

import numpy as np
import torch

def load_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--wide", action="store_true")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--flush-denormal", action="store_true",
                    help="torch.set_flush_denormal(True), as nnc's CPU runtime does (FTZ/DAZ)")
    a = ap.parse_args()
    if a.flush_denormal and not torch.set_flush_denormal(True):
        raise SystemExit("torch_mlp.py: this CPU cannot flush denormals")
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    dev = torch.device(a.device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("torch_mlp.py: error: --device cuda, but this PyTorch sees no CUDA GPU")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    x = torch.from_numpy(load_idx(a.data + "/train-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255)
    y = torch.from_numpy(load_idx(a.data + "/train-labels-idx1-ubyte.gz").astype(np.int64))
    x, y = x.to(dev), y.to(dev)
    sizes = [784, 4096, 4096, 10] if a.wide else [784, 64, 10]
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=0.001)
    lossf = torch.nn.CrossEntropyLoss()

    def step(idx):
        opt.zero_grad(set_to_none=True)
        loss = lossf(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        return loss.item()

    if a.wide:
        idx = torch.arange(a.batch, device=dev)
        for _ in range(2):
            step(idx)
        sync()
        t0 = time.perf_counter()
        for _ in range(a.steps):
            step(idx)
        sync()
        per_step = (time.perf_counter() - t0) / a.steps
        flops = 6 * a.batch * sum(sizes[i] * sizes[i + 1] for i in range(len(sizes) - 1))
        print(f"torch step_seconds={per_step:.5f} gflops={flops / per_step / 1e9:.1f} threads={a.threads} "
              f"batch={a.batch} device={a.device}")
        return
    perm = torch.randperm(x.shape[0], device=dev)
    sync()
    t0 = time.perf_counter()
    total = 0.0
    for start in range(0, x.shape[0], a.batch):
        idx = perm[start:start + a.batch]
        total += step(idx) * len(idx)
    sync()
    secs = time.perf_counter() - t0
    print(f"torch epoch_seconds={secs:.3f} samples_per_s={x.shape[0] / secs:.1f} "
          f"train_loss={total / x.shape[0]:.4f} threads={a.threads} batch={a.batch} device={a.device}")

if __name__ == "__main__":
    main()
