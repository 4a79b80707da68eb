#!/usr/bin/env bash
# test/fuzz/run.sh - builds the libFuzzer targets with clang-19 and runs them
# (docs/hardening.md), either for a time or for a number of inputs each:
#
#   test/fuzz/run.sh --runs 1000000     # the smoke run (CI): 1M inputs per target
#   test/fuzz/run.sh 60                 # every target 60 s
#   test/fuzz/run.sh 14400 nn           # the long run: hours per target
#
# Targets: nn nnir kir idx csv safetensors (default: all).  For each it prints
# the inputs executed, executions per second and seconds taken, then a
# closing line "fuzz: N passed, N failed" (one test per target).
#
# Environment: NNC_FUZZ_BUILD (default: build-fuzz in the repository root),
# NNC_FUZZ_WORK (scratch corpora and crash files; default: a new temporary
# directory), NNC_FUZZ_PARALLEL (targets run at once, default 1; CI: 2),
# NNC_FUZZ_JOBS (libFuzzer workers per target, time mode only, default 1).
# The committed seeds in test/fuzz/corpus/TARGET are copied, never changed.
# A crash, leak, timeout or out-of-memory input leaves its file in
# WORK/TARGET/ and makes the target fail and the exit status 1; minimize it
# (fuzz_TARGET -minimize_crash=1 -runs=10000 FILE), fix the bug and commit
# the input as a regression test (docs/hardening.md).
set -eu
usage() {
  echo "usage: $0 SECONDS [TARGET...]   or   $0 --runs N [TARGET...]" >&2
  exit 2
}
all="nn nnir kir idx csv safetensors"
mode=time
if [ $# -ge 1 ] && [ "$1" = --runs ]; then
  [ $# -ge 2 ] || usage
  mode=runs
  amount=$2
  shift 2
elif [ $# -ge 1 ]; then
  amount=$1
  shift
else
  usage
fi
case $amount in '' | *[!0-9]*) usage ;; esac
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${NNC_FUZZ_BUILD:-$root/build-fuzz}
work=${NNC_FUZZ_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/nnc-fuzz-run.XXXXXX")}
jobs=${NNC_FUZZ_JOBS:-1}
parallel=${NNC_FUZZ_PARALLEL:-1}
mkdir -p "$work"
targets=${*:-$all}
for t in $targets; do
  case " $all " in *" $t "*) ;; *) echo "no fuzz target '$t' (have: $all)" >&2; exit 2 ;; esac
done

if [ ! -f "$build/build.ninja" ] && [ ! -f "$build/Makefile" ]; then
  gen=""
  command -v ninja > /dev/null && gen="-G Ninja"
  cmake -S "$here" -B "$build" $gen -DCMAKE_C_COMPILER=clang-19 > "$work/configure.log" 2>&1 ||
    { cat "$work/configure.log" >&2; exit 1; }
fi
cmake --build "$build" > "$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; exit 1; }

# One target: fuzzes, then writes WORK/TARGET/result (the table row, then
# "ok" or "FAILED ...").
run_target() {
  local t=$1 bin=$build/fuzz_$1 dir=$work/$1
  mkdir -p "$dir/corpus"
  cp "$here/corpus/$t/"* "$dir/corpus/" 2> /dev/null || true
  local log=$dir/fuzz.log
  # Per-target options: fuzz_nn reads .nn text (a dictionary of its tokens;
  # inputs up to 4 KiB, its lexer and parser being the slow part), fuzz_kir
  # kernel IR text (a dictionary of its words), the others binary files;
  # all but .nn up to 8 KiB.
  local opts=(-print_final_stats=1 -timeout=20 -rss_limit_mb=2560 -max_len=8192)
  [ "$t" = nn ] && opts=(-print_final_stats=1 -timeout=20 -rss_limit_mb=2560 -max_len=4096 -dict="$here/nn.dict")
  [ "$t" = kir ] && opts+=(-dict="$here/kir.dict")
  if [ "$mode" = runs ]; then
    opts+=(-runs="$amount")
  else
    opts+=(-max_total_time="$amount")
    [ "$jobs" -gt 1 ] && opts+=(-jobs="$jobs" -workers="$jobs")
  fi
  local start end rc
  start=$(date +%s.%N)
  # stdin from /dev/null: a fuzzed `import "/dev/stdin"` must not block.
  set +e
  (cd "$dir" && UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
    "$bin" "${opts[@]}" -artifact_prefix="$dir/" corpus < /dev/null > "$log" 2>&1)
  rc=$?
  set -e
  end=$(date +%s.%N)
  # jobs > 1: each worker logs to WORK/TARGET/fuzz-N.log, and libFuzzer
  # copies those logs (with their stats) into ours as the jobs end.
  local runs secs rate crashes result=ok
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | awk '{s += $1} END {print s + 0}')
  secs=$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.1f", b - a}')
  rate=$(awk -v n="$runs" -v s="$secs" 'BEGIN {printf "%d", (s > 0 ? n / s : 0)}')
  crashes=$(find "$dir" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    result="FAILED (exit $rc, $crashes inputs in $dir; log $log)"
  elif [ "$mode" = runs ] && [ "$runs" -lt "$amount" ]; then
    result="FAILED (only $runs of $amount inputs; log $log)"
  fi
  printf '%-20s %12s %10s %8s  %s\n' "fuzz_$t" "$runs" "$rate" "$secs" "$result" > "$dir/result"
}

printf '%-20s %12s %10s %8s  %s\n' target inputs execs/s seconds result
running=0
for t in $targets; do
  if [ "$running" -ge "$parallel" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  run_target "$t" &
  running=$((running + 1))
done
wait
passed=0 failed=0
for t in $targets; do
  if [ -f "$work/$t/result" ]; then
    cat "$work/$t/result"
    if grep -q '  ok$' "$work/$t/result"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  else
    printf '%-20s %12s %10s %8s  %s\n' "fuzz_$t" - - - "FAILED (no result)"
    failed=$((failed + 1))
  fi
done
echo "work directory: $work"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
