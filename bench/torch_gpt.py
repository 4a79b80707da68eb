#!/usr/bin/python3
"""PyTorch CPU reference for nnc's GPT benchmark (run with Debian's /usr/bin/python3).

The model of examples/gpt.nn in plain torch.nn, nanoGPT's block: byte
embedding plus learned positions, pre-norm blocks of causal multi-head
self-attention (q, k, v and output projections with biases) and a 4x MLP
with tanh GELU, a final layer norm and a dense head over the 256 bytes.
Trained as the train block says: AdamW (betas 0.9 and 0.95, decay on the
rank-2 weights and embeddings only), global gradient-norm clipping, a
cosine schedule with linear warm-up (nanoGPT's get_lr, as a multiplier),
random windows of the text each step, the last 10% of the file held out.
Prints one line:

    torch model=gpt blocks=4 width=128 step_seconds=0.311 tokens_per_s=6590 train_loss=2.1 test_loss=2.3 threads=1

--steps N trains N steps (timed after 3 warm-up steps that count as steps
of the run); test_loss is the mean over the test text's non-overlapping
windows at the end, as nnc's test_loss.
"""
import argparse, math, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def attention(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        s = (q @ k.transpose(-2, -1)) / math.sqrt(d // self.heads)
        mask = torch.tril(torch.ones(t, t, dtype=torch.bool))
        s = s.masked_fill(~mask, float("-inf"))
        y = F.softmax(s, dim=-1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, t, d))

    def forward(self, x):
        x = x + self.attention(self.ln1(x))
        return x + self.out(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, blocks, heads, d, context):
        super().__init__()
        self.emb = nn.Embedding(256, d)
        self.pos = nn.Parameter(torch.randn(context, d) * 0.02)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(blocks))
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, 256)

    def forward(self, x):
        h = self.emb(x) + self.pos
        for b in self.blocks:
            h = b(h)
        return self.head(self.ln(h))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--text", required=True)
    ap.add_argument("--blocks", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--context", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--lr", type=float, default=0.001)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--min", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    data = np.frombuffer(open(a.text, "rb").read(), dtype=np.uint8)
    cut = len(data) - len(data) // 10
    train, test = torch.from_numpy(data[:cut].astype(np.int64)), torch.from_numpy(data[cut:].astype(np.int64))
    T = a.context
    model = GPT(a.blocks, a.heads, a.width, T)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)

    def multiplier(it):
        if it < a.warmup:
            return (it + 1) / a.warmup
        ratio = min(1.0, (it - a.warmup) / max(1, a.steps - a.warmup))
        return a.min + (1 - a.min) * 0.5 * (1 + math.cos(math.pi * ratio))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, multiplier)
    gen = torch.Generator().manual_seed(a.seed)

    def step():
        off = torch.randint(0, len(train) - T, (a.batch,), generator=gen)
        x = torch.stack([train[o:o + T] for o in off])
        y = torch.stack([train[o + 1:o + T + 1] for o in off])
        loss = F.cross_entropy(model(x).reshape(-1, 256), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        sched.step()
        return loss.item()

    model.train()
    warm = min(3, a.steps)
    for _ in range(warm):
        step()
    t0, losses = time.perf_counter(), []
    for _ in range(a.steps - warm):
        losses.append(step())
    dt = (time.perf_counter() - t0) / max(1, a.steps - warm)
    model.eval()
    with torch.no_grad():
        n = (len(test) - 1) // T
        xs = torch.stack([test[i * T:i * T + T] for i in range(n)])
        ys = torch.stack([test[i * T + 1:i * T + T + 1] for i in range(n)])
        test_loss = sum(F.cross_entropy(model(xs[i:i + 64]).reshape(-1, 256), ys[i:i + 64].reshape(-1),
                                        reduction="sum").item() for i in range(0, n, 64)) / (n * T)
    train_loss = sum(losses[-20:]) / max(1, len(losses[-20:]))
    print("torch model=gpt blocks=%d width=%d step_seconds=%.4f tokens_per_s=%.0f train_loss=%.4f test_loss=%.4f "
          "threads=%d steps=%d" % (a.blocks, a.width, dt, a.batch * T / dt, train_loss, test_loss, a.threads, a.steps))


if __name__ == "__main__":
    main()
