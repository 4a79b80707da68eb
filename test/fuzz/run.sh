#!/bin/sh
# test/fuzz/run.sh SECONDS [TARGET...] - builds the libFuzzer targets with
# clang-19 and runs each for SECONDS (the CI smoke run: 60; a long run:
# hours, see docs/hardening.md), then prints the inputs executed per target.
#
#   test/fuzz/run.sh 60                 # every target: nn nnir idx csv safetensors
#   test/fuzz/run.sh 3600 nn            # one target for an hour
#
# Environment: NNC_FUZZ_BUILD (default: build-fuzz in the repository root),
# NNC_FUZZ_WORK (scratch corpora and crash files; default: a new temporary
# directory), NNC_FUZZ_JOBS (parallel libFuzzer workers per target, default 1).
# The committed seeds in test/fuzz/corpus/TARGET are copied, never changed.
# A crash leaves its input in WORK/TARGET/crash-* and makes the exit status 1;
# minimize it (fuzz_TARGET -minimize_crash=1 -runs=10000 FILE), fix the bug and
# commit the input as a regression test (docs/hardening.md).
set -eu
if [ $# -lt 1 ]; then
  echo "usage: $0 SECONDS [TARGET...]" >&2
  exit 2
fi
seconds=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${NNC_FUZZ_BUILD:-$root/build-fuzz}
work=${NNC_FUZZ_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/nnc-fuzz-run.XXXXXX")}
jobs=${NNC_FUZZ_JOBS:-1}
mkdir -p "$work"
targets=${*:-nn nnir idx csv safetensors}

if [ ! -f "$build/build.ninja" ] && [ ! -f "$build/Makefile" ]; then
  gen=""
  command -v ninja > /dev/null && gen="-G Ninja"
  cmake -S "$here" -B "$build" $gen -DCMAKE_C_COMPILER=clang-19 > "$work/configure.log" 2>&1 ||
    { cat "$work/configure.log" >&2; exit 1; }
fi
cmake --build "$build" > "$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; exit 1; }

status=0
printf '%-20s %12s %10s %8s  %s\n' target inputs execs/s seconds result
for t in $targets; do
  bin=$build/fuzz_$t
  [ -x "$bin" ] || { echo "no fuzz target '$t' (have: nn nnir idx csv safetensors)" >&2; exit 2; }
  mkdir -p "$work/$t/corpus"
  cp "$here/corpus/$t/"* "$work/$t/corpus/" 2> /dev/null || true
  log=$work/$t/fuzz.log
  # stdin from /dev/null: a fuzzed `import "/dev/stdin"` must not block.
  set +e
  parallel=""
  [ "$jobs" -gt 1 ] && parallel="-jobs=$jobs -workers=$jobs"
  (cd "$work/$t" && UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
    "$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=20 -rss_limit_mb=2560 -max_len=8192 \
    $parallel -artifact_prefix="$work/$t/" corpus < /dev/null > "$log" 2>&1)
  rc=$?
  set -e
  # jobs > 1: each worker logs to WORK/TARGET/fuzz-N.log, and libFuzzer
  # copies those logs (with their stats) into ours as the jobs end.
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | awk '{s += $1} END {print s + 0}')
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | awk '{s += $1} END {print s + 0}')
  crashes=$(find "$work/$t" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  result=ok
  if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    result="FAILED (exit $rc, $crashes inputs in $work/$t; log $log)"
    status=1
  fi
  printf '%-20s %12s %10s %8s  %s\n' "fuzz_$t" "$runs" "$rate" "$seconds" "$result"
done
echo "work directory: $work"
exit $status
