#!/usr/bin/env python3
"""Writes the binary seed inputs of the runtime fuzz targets into
corpus/{idx,csv,safetensors} (the .nn and .nnir seeds are copies of test
inputs; the .kir seeds test/Passes/Kernel's inputs without their comment
lines and the kernel IR nnc prints for small test models, some without
their locations).  Deterministic; standard library only.  Run from test/fuzz:

    python3 make-seeds.py
"""
import gzip
import json
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def put(kind, name, blob):
    d = os.path.join(HERE, "corpus", kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(blob)


def idx(dims, data, type_byte=0x08, fmt="B"):
    head = struct.pack(">BBBB", 0, 0, type_byte, len(dims)) + b"".join(struct.pack(">I", d) for d in dims)
    return head + b"".join(struct.pack(">" + fmt, v) for v in data)


def idx_seed(flags, images, labels):
    # fuzz_idx.c: flags (bit 0: images gzipped, 1: labels gzipped, 2: checked
    # as 784 features and 10 classes, 3: f32 labels), the images length
    # (u16 LE), images, labels
    return bytes([flags]) + struct.pack("<H", len(images)) + images + labels


def safetensors(tensors, meta=None):
    header, data = {}, b""
    for name, shape, values in tensors:
        blob = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    if meta is not None:
        header["__metadata__"] = meta
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def checksum(tensors, meta):
    """The "checksum" of a checkpoint (runtime/checkpoint.c): CRC-32 of each
    metadata pair (key, value, each NUL-terminated) in order, each tensor's
    name and shape (rank and dims as u64 LE), then the data section."""
    crc = 0
    for k, v in meta.items():
        crc = zlib.crc32(k.encode() + b"\0" + v.encode() + b"\0", crc)
    for name, shape, _ in tensors:
        crc = zlib.crc32(name.encode() + b"\0" + struct.pack("<%dq" % (len(shape) + 1), len(shape), *shape), crc)
    for _, _, values in tensors:
        crc = zlib.crc32(struct.pack("<%df" % len(values), *values), crc)
    return "crc32:%08x" % crc


def main():
    # IDX: 3 samples of 2x2 u8 pixels, classes 0..2; raw, gzipped (both
    # files, the images only, two gzip members), the checked (784 features)
    # mode, f32 labels, f32 and i16 pixels.
    pix = [(i * 37) % 256 for i in range(12)]
    img, lab = idx([3, 2, 2], pix), idx([3], [0, 1, 2])
    put("idx", "u8", idx_seed(0, img, lab))
    put("idx", "u8-gz", idx_seed(3, gzip.compress(img, mtime=0), gzip.compress(lab, mtime=0)))
    put("idx", "images-gz", idx_seed(1, gzip.compress(img, mtime=0), lab))
    put("idx", "two-members", idx_seed(2, img, gzip.compress(lab[:5], mtime=0) + gzip.compress(lab[5:], mtime=0)))
    put("idx", "f32-labels", idx_seed(8, img, idx([3], [0.5, -1, 2], 0x0D, "f")))
    put("idx", "checked-784", idx_seed(4, idx([1, 28, 28], [7] * 784), idx([1], [9])))
    put("idx", "f32", idx_seed(0, idx([2, 1, 3], [0.5, 1, 2, -1, 3, 4], 0x0D, "f"), idx([2], [1, 0])))
    put("idx", "i16", idx_seed(0, idx([2, 2], [300, -2, 5, 7], 0x0B, "h"), idx([2], [1, 0])))
    # CSV: flags byte (label column, checks), then the file.
    put("csv", "header-last", b"\x00a,b,c,y\n1,2,3,0.5\n4,5,6,1.5\n")
    put("csv", "named-y", b"\x01y,a,b,c\n1,0.1,0.2,0.3\n0,1e3,-2,3.5\n")
    put("csv", "index-0-i32", b"\x0e0,1,2,3\n2,1,2,3\n9,4,5,6\n")
    put("csv", "quoted", b'\x03"label","x"\n"1","2.5"\n"0",\'3\'\n')
    put("csv", "crlf-empty", b"\x00x,y\r\n\r\n1,2\r\n,3\r\n")
    # safetensors: a --save file, a checkpoint (nnc-checkpoint-2, with its checksum), empty.
    put("safetensors", "save", safetensors([("h.w", [2, 3], [1, 2, 3, 4, 5, 6]), ("h.b", [3], [0, 0, 0])],
                                           {"format": "nnc", "model": "m", "step": "3"}))
    meta = {"format": "nnc-checkpoint-2", "model": "m", "nnc": "0.1.0", "step": "5", "epoch": "2",
            "epoch_sample": "64", "epoch_loss_sum": "12.5", "train_samples": "100", "batch": "32",
            "epochs": "3", "max_steps": "0", "seed": "1", "shuffle": "1", "hyper.lr": "0.01"}
    tensors = [("h.w", [2, 3], [1, 2, 3, 4, 5, 6]), ("h.w/m", [], [0.25])]
    meta["checksum"] = checksum(tensors, meta)
    put("safetensors", "checkpoint", safetensors(tensors, meta))
    put("safetensors", "empty", safetensors([]))
    put("safetensors", "scalar-meta-only", safetensors([("s", [], [1.0])], {"k": "v"}))


if __name__ == "__main__":
    main()
