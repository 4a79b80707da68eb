#!/usr/bin/env python3
"""Writes a small MNIST-format (IDX) dataset, well-formed or broken on purpose.

    make-idx.py DIR [options]

DIR receives train-images-idx3-ubyte, train-labels-idx1-ubyte and the same
for t10k (test split): N samples of ROWSxCOLS u8 pixels and u8 labels
(label i is i % CLASSES).  Options break one thing in the chosen --split
(default train), so a loader test can check each error:

  --n N               samples (default 8); --rows R --cols C (default 28x28)
  --labels-n N        label count written (data and header), default N
  --label-value V     make one label V (e.g. 10: out of range)
  --images-magic HEX  the first 4 bytes of the images file (e.g. 0x00000999)
  --header-n N        the count the images header claims (data stays N)
  --truncate B        drop the last B bytes of the images file
  --extra B           append B bytes of garbage to the images file
  --omit NAME         leave out a file (images or labels)
  --gzip              write FILE.gz instead of FILE
  --corrupt-gzip      gzip, with the compressed bytes damaged
  --f64-value V       images as f64 (pixel / 255), element 5 set to V
Standard library only.
"""
import argparse
import gzip
import os
import struct


def idx(dims, data, magic=None, f64=False):
    head = struct.pack(">BBBB", 0, 0, 0x0E if f64 else 0x08, len(dims)) + b"".join(struct.pack(">I", d) for d in dims)
    if magic is not None:
        head = struct.pack(">I", magic) + head[4:]
    return head + (b"".join(struct.pack(">d", v) for v in data) if f64 else bytes(data))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--split", choices=["train", "t10k"], default="train")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--rows", type=int, default=28)
    ap.add_argument("--cols", type=int, default=28)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--labels-n", type=int)
    ap.add_argument("--label-value", type=int)
    ap.add_argument("--images-magic", type=lambda s: int(s, 0))
    ap.add_argument("--header-n", type=int)
    ap.add_argument("--truncate", type=int, default=0)
    ap.add_argument("--extra", type=int, default=0)
    ap.add_argument("--omit", choices=["images", "labels"])
    ap.add_argument("--gzip", action="store_true")
    ap.add_argument("--corrupt-gzip", action="store_true")
    ap.add_argument("--f64-value", type=float)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    for split in ("train", "t10k"):
        broken = split == a.split
        n = a.n
        pixels = [(i * 7 + j * 13) % 256 for i in range(n) for j in range(a.rows * a.cols)]
        ln = a.labels_n if broken and a.labels_n is not None else n
        labels = [i % a.classes for i in range(ln)]
        if broken and a.label_value is not None:
            labels[-1] = a.label_value
        f64 = broken and a.f64_value is not None
        if f64:
            pixels = [p / 255 for p in pixels]
            pixels[5] = a.f64_value
        images = idx([a.header_n if broken and a.header_n is not None else n, a.rows, a.cols], pixels,
                     a.images_magic if broken else None, f64)
        if broken and a.truncate:
            images = images[:-a.truncate]
        if broken and a.extra:
            images += b"\xab" * a.extra
        files = {"images": (split + "-images-idx3-ubyte", images),
                 "labels": (split + "-labels-idx1-ubyte", idx([ln], labels))}
        for kind, (name, blob) in files.items():
            if broken and a.omit == kind:
                continue
            path = os.path.join(a.dir, name)
            if a.gzip or (broken and a.corrupt_gzip):
                blob = gzip.compress(blob, mtime=0)
                if broken and a.corrupt_gzip and kind == "images":
                    blob = blob[:10] + bytes(b ^ 0x5A for b in blob[10:40]) + blob[40:]
                path += ".gz"
            with open(path, "wb") as f:
                f.write(blob)


if __name__ == "__main__":
    main()
