#!/usr/bin/env python3
"""Makes test/Inputs/fashion-small/: a commit-sized Fashion-MNIST subset.

Source: the gzipped IDX files of the Debian package dataset-fashion-mnist
(/usr/share/datasets/fashion-mnist; 60000 train + 10000 test, 28x28 u8).
Selection (deterministic): walking each split in file order, keep the first
200 training samples of each of the 10 classes (2000 in all) and the first 50
test samples of each class (500), in their original order.  Output: the four
standard file names (train-/t10k-images-idx3-ubyte.gz, -labels-idx1-ubyte.gz),
same IDX headers as the originals (0x803 images, 0x801 labels), gzipped with
mtime 0 so that reruns give identical files.

Run from the repository root (standard library only):
    python3 test/Inputs/make-fashion-subset.py [SOURCE_DIR [OUT_DIR [TRAIN_PER_CLASS TEST_PER_CLASS]]]
Tests make smaller subsets of fashion-small with the last two arguments.
"""
import gzip
import os
import struct
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
OUT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "fashion-small")
PER_CLASS = {"train": int(sys.argv[3]), "t10k": int(sys.argv[4])} if len(sys.argv) > 4 else {"train": 200, "t10k": 50}


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype, ndims = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        sys.exit(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndims, data[4:4 + 4 * ndims])
    body = data[4 + 4 * ndims:]
    per = 1
    for d in dims[1:]:
        per *= d
    if len(body) != dims[0] * per:
        sys.exit(f"{path}: size does not match the header")
    return dims, per, body


def write_idx(path, dims, body):
    header = struct.pack(">HBB", 0, 0x08, len(dims)) + struct.pack(">" + "I" * len(dims), *dims)
    with open(path, "wb") as f:
        f.write(gzip.compress(header + body, compresslevel=9, mtime=0))


def main():
    os.makedirs(OUT, exist_ok=True)
    for split, per_class in PER_CLASS.items():
        idims, per, images = read_idx(os.path.join(SRC, f"{split}-images-idx3-ubyte.gz"))
        ldims, _, labels = read_idx(os.path.join(SRC, f"{split}-labels-idx1-ubyte.gz"))
        if idims[0] != ldims[0]:
            sys.exit(f"{split}: image and label counts differ")
        taken = [0] * 10
        keep = []
        for i, y in enumerate(labels):
            if taken[y] < per_class:
                taken[y] += 1
                keep.append(i)
        n = len(keep)
        write_idx(os.path.join(OUT, f"{split}-images-idx3-ubyte.gz"), (n,) + tuple(idims[1:]),
                  b"".join(images[i * per:(i + 1) * per] for i in keep))
        write_idx(os.path.join(OUT, f"{split}-labels-idx1-ubyte.gz"), (n,), bytes(labels[i] for i in keep))
        print(f"{split}: {n} samples, first label {labels[keep[0]]}, from indices {keep[0]}..{keep[-1]}")


if __name__ == "__main__":
    main()
