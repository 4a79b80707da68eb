#!/usr/bin/env bash
# GPU benchmark: nnc's gpu target (PTX through LLVM NVPTX, run by the CUDA
# driver) against PyTorch on the same GPU, on the same data (Fashion-MNIST).
#
#   bench/gpu.sh [build-dir]          (default: build; it must hold nnc and
#                                      libnnrt.a built from this tree)
#
# Prints two tables:
#
#   1. examples/mnist.nn (784-64-10, Adam) at batch 32 and 256: seconds of
#      training per epoch.  nnc: 60000 / samples_per_s of its epoch line
#      (training steps only; every step reads its loss back); PyTorch:
#      bench/torch_mlp.py --device cuda, the same model on tensors already
#      on the GPU, reading each step's loss back too.  ratio = torch / nnc
#      (above 1: nnc is faster).
#   2. examples/wide.nn (784-4096-4096-10, Adam) at batch 256: seconds per
#      training step and TFLOP/s = 6 * 256 * (784*4096 + 4096*4096 +
#      4096*10) / step seconds (the matmuls only).  nnc's step time is a
#      difference of two runs, T(n) = n * 256 / samples_per_s for --steps n:
#        step = (T(2 + N) - T(2)) / N     (N = $WIDE_STEPS, default 20)
#      which removes the one-time costs (loading the PTX, capturing the
#      CUDA graph), as torch_mlp.py --wide removes them with 2 warm-up
#      steps.  Each T is the least of $WIDE_REPEAT runs (default 3).
#      Both sides compute in float32 (PyTorch with TF32 off, its default).
#
# Needs an NVIDIA GPU, its driver, and a Python whose PyTorch has CUDA
# ($PYTHON, else python3, else /usr/bin/python3: the first that sees the
# GPU).  Refuses with one line and exit 1 without them.  Never part of the
# tests.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
refuse() { echo "bench/gpu.sh: error: $*" >&2; exit 1; }
build="$(cd "${1:-$root/build}" 2>/dev/null && pwd)" || refuse "no build directory '${1:-$root/build}'"
nnc="$build/nnc"
data=/usr/share/datasets/fashion-mnist
wide_steps="${WIDE_STEPS:-20}"
wide_repeat="${WIDE_REPEAT:-3}"

command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 ||
  refuse "no NVIDIA GPU here (nvidia-smi -L fails); run it on a machine with one"
[ -x "$nnc" ] && [ -f "$build/libnnrt.a" ] ||
  refuse "$build has no nnc or libnnrt.a (build it: cmake -S . -B build -G Ninja && cmake --build build)"
"$nnc" --list-targets | grep -q '^  gpu .*\[not built yet\]' && refuse "this nnc has no gpu target"
py=""
for cand in "${PYTHON:-}" python3 /usr/bin/python3; do
  [ -n "$cand" ] || continue
  if "$cand" -c 'import sys, torch, numpy; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    py="$cand"
    break
  fi
done
[ -n "$py" ] || refuse "no Python with a CUDA PyTorch (set PYTHON=/path/to/python)"
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  [ -f "$data/$f.gz" ] || [ -f "$data/$f" ] || refuse "the dataset is missing ($data/$f.gz; apt-get install dataset-fashion-mnist)"
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
calc() { "$py" -c "print($1)"; }
# field NAME LINE: the value of NAME=... in LINE
field() { sed -n "s/.*[ :]$1=\([0-9.e+-]*\).*/\1/p" <<<" $2"; }

"$nnc" "$root/examples/mnist.nn" --target=gpu -o "$tmp/mnist"
"$nnc" "$root/examples/wide.nn" --target=gpu -o "$tmp/wide"
"$nnc" "$root/examples/wide.nn" --emit=ptx -o "$tmp/wide.ptx"

echo "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader | head -1)"
echo "software: $("$nnc" --version | head -1), PyTorch $("$py" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)')"
if command -v ptxas >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/ptxas ]; then
  ptxas="$(command -v ptxas || echo /usr/local/cuda/bin/ptxas)"
  echo "wide.nn matmul kernels (ptxas -arch=sm_90 -v):"
  "$ptxas" -arch=sm_90 -v "$tmp/wide.ptx" -o "$tmp/wide.cubin" 2>&1 |
    awk '/Compiling entry function/ { name = $7 } /Used [0-9]+ registers/ && /smem/ { print "  " name ": " $0 }' |
    sed 's/ptxas info *: //'
fi

# ---- 1. mnist.nn ------------------------------------------------------------------
echo
echo "== 1. examples/mnist.nn (784-64-10, Adam): seconds per epoch (60,000 samples) =="
printf '%-6s %12s %12s %8s\n' batch nnc_s torch_s ratio
for batch in 32 256; do
  line="$("$tmp/mnist" --epochs 1 --batch "$batch" | grep '^epoch=1 ')"
  nnc_s="$(calc "f'{60000 / $(field samples_per_s "$line"):.3f}'")"
  tline="$("$py" "$here/torch_mlp.py" --device cuda --batch "$batch")"
  torch_s="$(field epoch_seconds "$tline")"
  printf '%-6s %12s %12s %8s\n' "$batch" "$nnc_s" "$torch_s" "$(calc "f'{$torch_s / $nnc_s:.2f}'")"
done

# ---- 2. wide.nn ---------------------------------------------------------------------
echo
echo "== 2. examples/wide.nn (784-4096-4096-10, Adam), batch 256: seconds per step =="
flop="6 * 256 * (784 * 4096 + 4096 * 4096 + 4096 * 10)"
# T STEPS: the least training time of $wide_repeat runs of --steps STEPS
T() {
  local best="" t line
  for _ in $(seq "$wide_repeat"); do
    line="$("$tmp/wide" --epochs 1 --steps "$1" --batch 256 | grep '^epoch=1 ')"
    t="$(calc "$1 * 256 / $(field samples_per_s "$line")")"
    best="$(calc "min(${best:-$t}, $t)")"
  done
  echo "$best"
}
t0="$(T 2)"
t1="$(T $((2 + wide_steps)))"
nnc_step="$(calc "max(($t1 - $t0) / $wide_steps, 1e-9)")"
tline="$("$py" "$here/torch_mlp.py" --device cuda --wide --batch 256 --steps "$wide_steps")"
torch_step="$(field step_seconds "$tline")"
printf '%-6s %12s %10s\n' who step_s TFLOP/s
printf '%-6s %12.5f %10.2f\n' nnc "$nnc_step" "$(calc "$flop / $nnc_step / 1e12")"
printf '%-6s %12.5f %10.2f\n' torch "$torch_step" "$(calc "$flop / $torch_step / 1e12")"
echo "ratio (torch / nnc): $(calc "f'{$torch_step / $nnc_step:.2f}'")"
