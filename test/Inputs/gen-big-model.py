#!/usr/bin/env python3
"""Writes a large generated .nn model to stdout, for tests of compile time
and of limits that only large models reach.

  gen-big-model.py KIND N [--data CSV]

KIND  bind:  N bindings chained h_i = relu(h_{i-1} * 0.5) / h_{i-1} + x
      fn:    N fn definitions, each called once in a chain
      layer: N layer definitions with a [8] parameter each, called in a chain
      dense: N dense layers of width 8 (2N parameters)
The input is f32[8] and the label an f32 (the columns of
test/Inputs/regression/*.csv, the default data source).
"""
import argparse
import sys

ap = argparse.ArgumentParser()
ap.add_argument("kind", choices=["bind", "fn", "layer", "dense"])
ap.add_argument("n", type=int)
ap.add_argument("--data", default="train.csv")
a = ap.parse_args()
n = a.n
o = []
head = "model big {\n  input x: f32[8]\n  label y: f32\n"
if a.kind == "bind":
    o.append(head + "  h0 = relu(x * 0.5)\n")
    for i in range(1, n):
        o.append(f"  h{i} = relu(h{i-1} * 0.5)\n" if i % 2 else f"  h{i} = h{i-1} + x\n")
    o.append(f"  s = dense(h{n-1}, 1)\n")
elif a.kind == "fn":
    o.extend(f"fn fun{i}(a: f32[8]) = relu(a * 0.5) + a\n" for i in range(n))
    o.append(head + "  h0 = fun0(x)\n")
    o.extend(f"  h{i} = fun{i}(h{i-1})\n" for i in range(1, n))
    o.append(f"  s = dense(h{n-1}, 1)\n")
elif a.kind == "layer":
    o.extend(f"layer l{i}(a: f32[n]) {{\n  param w: f32[n] = ones()\n  return a * w\n}}\n" for i in range(n))
    o.append(head + "  h0 = l0(x)\n")
    o.extend(f"  h{i} = l{i}(h{i-1})\n" for i in range(1, n))
    o.append(f"  s = dense(h{n-1}, 1)\n")
else:
    o.append(head + "  h0 = tanh(dense(x, 8))\n")
    o.extend(f"  h{i} = tanh(dense(h{i-1}, 8))\n" for i in range(1, n))
    o.append(f"  s = dense(h{n-1}, 1)\n")
o.append("  loss = mse(s, y)\n}\n")
o.append(f'train big {{\n  data = csv("{a.data}", label = "target")\n  optimizer = sgd(lr = 0.001)\n'
         "  batch = 32\n  epochs = 1\n  seed = 1\n}\n")
sys.stdout.write("".join(o))
