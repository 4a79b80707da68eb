#!/usr/bin/env python3
"""Greedy text generation from an nnc --emit=onnx model of a byte-level
language model, as the trainer's `--generate PROMPT --temperature 0` does it.

    onnx-generate.py MODEL.onnx PROMPT TOKENS

The model takes a window of byte tokens int32[N, T] and gives logits
[N, T, V].  The window starts with the prompt's last T bytes, the positions
after the last filled one hold 0, each new byte is the argmax of the logits
at the last filled position (the first of equal ones), and the window slides
once it is full (runtime/generate.c).  Writes the prompt and the generated
bytes, then a newline, as the trainer does.  Each window also runs in a
batch of two (the other sample all 255s, in range or out of the table's
rows) to check the batch axis.
"""
import sys

import numpy as np
import onnxruntime as ort


def main():
    model, prompt, tokens = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    context = inp.shape[1]
    window = list(prompt[-context:])
    text = bytearray(prompt)
    for _ in range(tokens):
        x = np.zeros((1, context), dtype=np.int32)
        x[0, :len(window)] = window
        logits = session.run([out.name], {inp.name: x})[0]
        pair = session.run([out.name], {inp.name: np.concatenate([x, np.full_like(x, 255)])})[0]
        if not np.allclose(pair[0], logits[0], rtol=0, atol=1e-4):
            sys.exit("the logits of a window differ in a batch of two")
        vocab = logits.shape[-1]
        row = logits.reshape(context, vocab)[len(window) - 1]
        nxt = int(np.argmax(row))
        if len(window) == context:
            window.pop(0)
        window.append(nxt)
        text.append(nxt)
    sys.stdout.buffer.write(bytes(text) + b"\n")


if __name__ == "__main__":
    main()
