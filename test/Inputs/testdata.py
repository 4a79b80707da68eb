"""Readers the test checkers share (standard library only): CSV rows with a
header line, and the f32 tensors of a safetensors file."""
import json, struct

def rows(path):
    """The data rows of a CSV file with a header line, as lists of floats."""
    with open(path) as f:
        next(f)
        return [[float(v) for v in line.split(",")] for line in f if line.strip()]

def load(path):
    """{name: tuple of values} for every tensor of a safetensors file (F32)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, t in header.items():
        if name != "__metadata__":
            b, e = t["data_offsets"]
            out[name] = struct.unpack(f"<{(e - b) // 4}f", data[8 + n + b:8 + n + e])
    return out
