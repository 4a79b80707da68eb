#!/usr/bin/env bash
# Data-parallel scaling on one machine: 1 process of one thread against
# 2 MPI ranks of one thread each (mpirun, Open MPI), same global batch.
#
#   bench/mpi.sh [build-dir]          (default: build)
#
# 1. examples/wide.nn (784-4096-4096-10, Adam, batch 256; GEMM-bound):
#    seconds per step as bench/cpu.sh measures it, a difference of two
#    runs that removes the first steps' one-time costs:
#      T(n) = n * 256 / samples_per_s,  step = (T(2 + N) - T(2)) / N
#    (N = $WIDE_STEPS, default 4; each T the least of $REPEAT runs,
#    default 2).  speedup = step(1 process) / step(2 ranks).
# 2. examples/mnist.nn (784-64-10, Adam, batch 32; latency-bound): seconds
#    of training per epoch of 60000 samples (60000 / samples_per_s).
# 3. The all-reduce of the gradients: calls, bytes per call and time per
#    call as rank 0 measures it (NNRT_COMM_TIMES=1), for both models.
#
# Needs mpirun (openmpi-bin) and the Fashion-MNIST data
# (dataset-fashion-mnist).  docs/performance.md has a run and the
# estimate for N machines made from part 3.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
steps=${WIDE_STEPS:-4}
repeat=${REPEAT:-2}
data=/usr/share/datasets/fashion-mnist
command -v mpirun > /dev/null || { echo "bench/mpi.sh: mpirun not found (apt-get install openmpi-bin)" >&2; exit 1; }
[ -e "$data/train-images-idx3-ubyte.gz" ] || { echo "bench/mpi.sh: no data in $data" >&2; exit 1; }
cmake --build "$build" --target nnc nnrt > /dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$build/nnc" examples/wide.nn -o "$tmp/wide"
"$build/nnc" examples/mnist.nn -o "$tmp/mnist"
mpi=(mpirun --oversubscribe --allow-run-as-root --bind-to core -np 2)
# The 500-sample test set of test/Inputs/fashion-small: evaluation is not
# timed, only shortened.
mkdir -p "$tmp/data"
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz; do ln -s "$data/$f" "$tmp/data/$f"; done
for f in t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do ln -s "$PWD/test/Inputs/fashion-small/$f" "$tmp/data/$f"; done

rate() { grep '^epoch=' | tail -1 | sed 's/.*samples_per_s=\([0-9.]*\).*/\1/'; }
# T(n): the least of $repeat runs, training seconds of n steps of 256.
wide_t() { # launcher... -- n
  local n=${!#} best=""
  for _ in $(seq "$repeat"); do
    local r
    r=$("${@:1:$#-1}" "$tmp/wide" --steps "$n" --threads 1 --data "$tmp/data" | rate)
    local t
    t=$(python3 -c "print($n * 256 / $r)")
    best=$(python3 -c "print(min(float(x) for x in '$best $t'.split()))")
  done
  echo "$best"
}
echo "1. wide.nn, batch 256, one thread per process: seconds per step"
echo "   config        step_s    speedup"
s1=$(python3 -c "print(($(wide_t env -- $((2 + steps))) - $(wide_t env -- 2)) / $steps)")
s2=$(python3 -c "print(($(wide_t "${mpi[@]}" -- $((2 + steps))) - $(wide_t "${mpi[@]}" -- 2)) / $steps)")
printf "   1 process   %8.3f\n   2 ranks     %8.3f   %.2fx\n" "$s1" "$s2" "$(python3 -c "print($s1 / $s2)")"

echo "2. mnist.nn, batch 32, one thread per process: seconds per epoch of 60000"
m1=$("$tmp/mnist" --epochs 1 --threads 1 --data "$tmp/data" | rate)
m2=$("${mpi[@]}" "$tmp/mnist" --epochs 1 --threads 1 --data "$tmp/data" | rate)
printf "   1 process   %8.3f\n   2 ranks     %8.3f   %.2fx\n" "$(python3 -c "print(60000 / $m1)")" \
  "$(python3 -c "print(60000 / $m2)")" "$(python3 -c "print($m2 / $m1)")"

echo "3. the all-reduce (rank 0)"
NNRT_COMM_TIMES=1 "${mpi[@]}" -x NNRT_COMM_TIMES "$tmp/wide" --steps 6 --threads 1 --data "$tmp/data" 2>&1 >/dev/null |
  grep all-reduce | sed 's/^.*all-reduce:/   wide.nn: /'
NNRT_COMM_TIMES=1 "${mpi[@]}" -x NNRT_COMM_TIMES "$tmp/mnist" --epochs 1 --threads 1 --data "$tmp/data" 2>&1 >/dev/null |
  grep all-reduce | sed 's/^.*all-reduce:/   mnist.nn: /'
