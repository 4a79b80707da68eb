#!/usr/bin/env python3
"""Reads a safetensors file and prints its header, for FileCheck.

    check-safetensors.py FILE

Checks the layout (u64 little-endian header length, a JSON object, data
offsets that are contiguous, cover the data section exactly and match
numel * 4 for F32), then prints one line per tensor in offset order,
    NAME F32 [d0,d1] numel=N finite=yes
and the metadata as  meta KEY=VALUE.  Exits 1 with a message on any
problem.  Standard library only.
"""
import json
import math
import struct
import sys


def fail(msg):
    print("check-safetensors: FAILED: " + msg)
    sys.exit(1)


def main():
    blob = open(sys.argv[1], "rb").read()
    if len(blob) < 8:
        fail("file shorter than 8 bytes")
    (hlen,) = struct.unpack("<Q", blob[:8])
    if 8 + hlen > len(blob):
        fail("header length %d past the end of the file" % hlen)
    header = json.loads(blob[8:8 + hlen].decode("utf-8"))
    data = blob[8 + hlen:]
    meta = header.pop("__metadata__", {})
    entries = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    pos = 0
    for name, t in entries:
        begin, end = t["data_offsets"]
        numel = 1
        for d in t["shape"]:
            numel *= d
        if t["dtype"] != "F32":
            fail("%s: dtype %s" % (name, t["dtype"]))
        if begin != pos or end - begin != 4 * numel:
            fail("%s: offsets %d..%d, expected %d..%d" % (name, begin, end, pos, pos + 4 * numel))
        pos = end
        values = struct.unpack("<%df" % numel, data[begin:end])
        finite = all(math.isfinite(v) for v in values)
        print("%s F32 [%s] numel=%d finite=%s" % (name, ",".join(str(d) for d in t["shape"]), numel,
                                                 "yes" if finite else "no"))
    if pos != len(data):
        fail("the tensors cover %d of %d data bytes" % (pos, len(data)))
    for k in sorted(meta):
        print("meta %s=%s" % (k, meta[k]))


if __name__ == "__main__":
    main()
