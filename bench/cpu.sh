#!/usr/bin/env bash
# CPU benchmark: nnc's CPU target against PyTorch CPU, in one run, on the
# same data (Fashion-MNIST), at 1 and 2 threads and batch 32 and 256.
#
#   bench/cpu.sh [build-dir]          (default: build)
#
# Prints one line per configuration with both epoch times and the ratio
# torch/nnc (above 1: nnc is faster).  Timings are noisy on shared
# machines: run it twice and read the medians.  Never part of the tests.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../build}"
nnc="$build/nnc"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$nnc" "$here/../examples/mnist.nn" -o "$tmp/train"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores"
printf '%-8s %-6s %12s %12s %8s\n' threads batch nnc_s torch_s ratio
for threads in 1 2; do
  for batch in 32 256; do
    line="$("$tmp/train" --epochs 1 --batch "$batch" --threads "$threads" | grep '^epoch=1 ')"
    rate="$(sed -n 's/.*samples_per_s=\([0-9.]*\).*/\1/p' <<<"$line")"
    nnc_s="$(/usr/bin/python3 -c "print(f'{60000 / $rate:.3f}')")"
    torch_line="$(/usr/bin/python3 "$here/torch_mlp.py" --batch "$batch" --threads "$threads")"
    torch_s="$(sed -n 's/.*epoch_seconds=\([0-9.]*\).*/\1/p' <<<"$torch_line")"
    ratio="$(/usr/bin/python3 -c "print(f'{$torch_s / $nnc_s:.2f}')")"
    printf '%-8s %-6s %12s %12s %8s\n' "$threads" "$batch" "$nnc_s" "$torch_s" "$ratio"
  done
done
