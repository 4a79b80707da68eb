#!/usr/bin/env python3
"""The kernel IR round trip (test/IR/roundtrip-kir.test).

For every model of the examples and of the test models (every `model` of
every .nn file under examples/ and test/, but test/Diagnostics and the
fuzz corpus), prints its kernel IR at several points of the pipeline,
reads each text back with `nnc FILE.kir --emit=kernels` and checks that the
bytes are the same:

  cpu      --target=cpu after the default pipeline (fuse, memplan, and the
           cpu schedule, whose tiles print as comments and are recomputed:
           the statements are those before scheduling)
  lower    before any kernel pass (--stop-after=lower; the examples only)
  opencl   --target=opencl after the default pipeline (fuse, which keeps
           contractions alone for NDRange targets, and memplan): before
           the NDRange schedule
  ndrange  --target=opencl after schedule-ndrange too
  expanded --target=cpu after schedule-cpu and expand-contractions (the
           examples only)

Then, for the examples, the text compiles to the same code: `--emit=cl`
from the opencl text and from lower's text through
--kernel-passes=fuse,memplan equals --emit=cl from the .nn; with --llvm M
(repeatable), `--emit=llvm` of model file M from its cpu and lower texts
equals the .nn's.

A model whose .nn does not compile to kernels (a file with no model, a
model too large) is skipped, except for the examples.  Prints one line per
difference and `kir round trip: N programs, M differ`; exit status 1 when
any differ.

usage: kir-roundtrip.py NNC SOURCE-ROOT WORK-DIR [--llvm FILE ...]
"""
import concurrent.futures
import glob
import os
import re
import subprocess
import sys

CPU = ["--cpu=skylake-avx512"]  # the cpu schedule depends on the CPU: pin it
STAGES = {
    "cpu": (CPU, []),
    "lower": (CPU + ["--stop-after=lower"], ["--kernel-passes="]),
    "opencl": (["--target=opencl"], []),
    "ndrange": (["--target=opencl", "--kernel-passes=fuse,memplan,schedule-ndrange"], ["--kernel-passes="]),
    "expanded": (CPU + ["--kernel-passes=fuse,memplan,schedule-cpu,expand-contractions"], ["--kernel-passes=schedule-cpu"]),
}


def models(root):
    files = sorted(glob.glob(os.path.join(root, "examples", "*.nn")))
    for f in sorted(glob.glob(os.path.join(root, "test", "**", "*.nn"), recursive=True)):
        rel = os.path.relpath(f, root)
        if rel.startswith(("test/Diagnostics", "test/fuzz")):
            continue
        files.append(f)
    for f in files:
        with open(f, encoding="utf-8", errors="replace") as fh:
            names = re.findall(r"^\s*model\s+(\w+)", fh.read(), re.M)
        for m in names:
            yield f, m


def nnc(args):
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return r.returncode, r.stdout, r.stderr.decode(errors="replace")


def check(nnc_path, root, work, f, m, llvm):
    """Returns (programs, differences, skipped) for one model."""
    rel = os.path.relpath(f, root)
    base = os.path.join(work, re.sub(r"[^A-Za-z0-9]+", "_", rel) + "-" + m)
    src = [nnc_path, f, "--model=" + m]
    diffs, programs = [], 0
    texts = {}
    example = rel.startswith("examples/")
    for stage, (make, reread) in STAGES.items():
        if stage in ("lower", "expanded") and not example:
            continue
        kir = base + "." + stage + ".kir"
        rc, out, err = nnc(src + make + ["--emit=kernels", "-o", kir])
        if rc != 0:
            if stage == "cpu":
                if example:
                    return 1, ["%s %s: does not compile: %s" % (rel, m, err.strip())], False
                return 0, [], True
            diffs.append("%s %s %s: does not print: %s" % (rel, m, stage, err.strip()))
            continue
        programs += 1
        target = [a for a in make if a.startswith(("--target", "--cpu"))]
        rc, out, err = nnc([nnc_path, kir, "--emit=kernels"] + target + reread)
        with open(kir, "rb") as fh:
            texts[stage] = fh.read()
        if rc != 0:
            diffs.append("%s %s %s: does not read back: %s" % (rel, m, stage, err.strip()))
        elif out != texts[stage]:
            diffs.append("%s %s %s: reads back differently (%s)" % (rel, m, stage, kir))
    # The same code from the text as from the .nn.
    same = []
    if example:  # lowering is the same for every target: lower's text fuses for opencl as for cpu
        same += [("opencl", ["--target=opencl", "--emit=cl"], []),
                 ("lower", ["--target=opencl", "--emit=cl"], ["--kernel-passes=fuse,memplan"])]
    if rel in llvm:
        same += [("cpu", CPU + ["--emit=llvm"], []), ("lower", CPU + ["--emit=llvm"], ["--kernel-passes=fuse,memplan"])]
    for stage, emit, passes in same:
        if stage not in texts:
            continue
        ra, a, ea = nnc(src + emit + ["-o", "-"])
        rb, b, eb = nnc([nnc_path, base + "." + stage + ".kir"] + emit + passes + ["-o", "-"])
        if ra != 0 or rb != 0 or a != b:
            diffs.append("%s %s %s: %s differs from the .nn's%s" % (rel, m, stage, " ".join(emit + passes),
                                                                    (": " + (ea or eb).strip()) if ra or rb else ""))
    return programs, diffs, False


def main():
    args = sys.argv[1:]
    if len(args) < 3:
        sys.exit(__doc__)
    nnc_path, root, work = args[:3]
    llvm = set()
    rest = args[3:]
    while rest:
        if rest[0] != "--llvm" or len(rest) < 2:
            sys.exit(__doc__)
        llvm.add(rest[1])
        rest = rest[2:]
    os.makedirs(work, exist_ok=True)
    total, differ, skipped = 0, 0, 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        jobs = [pool.submit(check, nnc_path, root, work, f, m, llvm) for f, m in models(root)]
        for j in jobs:
            programs, diffs, skip = j.result()
            total += programs
            skipped += skip
            differ += len(diffs)
            for d in diffs:
                print(d)
    print("kir round trip: %d programs, %d differ (%d models skipped)" % (total, differ, skipped))
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
