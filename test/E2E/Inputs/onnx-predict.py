#!/usr/bin/env python3
"""Runs an nnc --emit=onnx model in onnxruntime and compares it with --predict.

    onnx-predict.py MODEL.onnx INPUTS PRED.csv SCALE

INPUTS is an IDX images file (.gz or not) or a CSV file of feature columns
with a header row, as the trainer's --predict reads them; SCALE the train
block's scale ("1/255", "1"), which the caller applies (docs/onnx.md):
each value is multiplied by it in double and rounded to f32, as the
trainer's loaders do.  PRED.csv is the trainer's --predict output for the
same inputs.  The model runs on all samples at once and in batches of 7
(the batch axis is symbolic).  Prints the model's signature, then
"rows=N", then "values=within 1e-4" or where they differ, then the largest
difference ("maxdiff=...", for reports; tests do not check it).
"""
import csv
import gzip
import sys
from fractions import Fraction

import numpy as np
import onnxruntime as ort

TOLERANCE = 1e-4


def read_inputs(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        head = f.read(4)
        if head[:2] == b"\0\0" and head[2] == 0x08:  # IDX of unsigned bytes
            rank = head[3]
            dims = [int.from_bytes(f.read(4), "big") for _ in range(rank)]
            data = np.frombuffer(f.read(), dtype=np.uint8)
            return data.reshape(dims[0], -1).astype(np.float64)
    rows = list(csv.reader(open(path)))[1:]
    return np.array([[float(v) for v in r] for r in rows], dtype=np.float64)


def shape_text(shape):
    return "[" + ", ".join(str(d) for d in shape) + "]"


def main():
    model, inputs, pred, scale = sys.argv[1:5]
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta()
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    print("input %s %s %s" % (inp.name, shape_text(inp.shape), inp.type))
    print("output %s %s %s" % (out.name, shape_text(out.shape), out.type))
    print("producer=%s scale=%s" % (meta.producer_name, meta.custom_metadata_map.get("nnc.input_scale")))

    x = (read_inputs(inputs) * float(Fraction(scale))).astype(np.float32)
    x = x.reshape([x.shape[0]] + list(inp.shape[1:]))
    whole = session.run([out.name], {inp.name: x})[0]
    parts = np.concatenate([session.run([out.name], {inp.name: x[i:i + 7]})[0] for i in range(0, len(x), 7)])
    rows = list(csv.reader(open(pred)))[1:]
    want = np.array([[float(v) for v in r] for r in rows], dtype=np.float64)
    print("rows=%d" % len(want) if len(want) == len(whole) == len(parts) else
          "rows differ: %d predicted, %d from onnxruntime" % (len(want), len(whole)))
    worst, at = 0.0, None
    for got in (whole, parts):
        diff = np.abs(got.reshape(len(got), -1).astype(np.float64) - want)
        if diff.size and (diff.max() > worst or np.isnan(diff).any()):
            worst, at = float(np.nan_to_num(diff.max(), nan=np.inf)), np.unravel_index(np.nanargmax(diff), diff.shape)
    if worst <= TOLERANCE:
        print("values=within 1e-4")
    else:
        print("values=differ by %g at row %d, value %d" % (worst, at[0], at[1]))
    print("maxdiff=%.3g" % worst)


main()
