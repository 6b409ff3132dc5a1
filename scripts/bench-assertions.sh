#!/usr/bin/env bash
# What the always-on checks cost (core/assert.h), measured, not assumed (make bench-assertions):
# the same simulator built with them (BUILD_DIR, the regular build) and without them
# (-DEVENTMART_ASSERTIONS=OFF in build-noassert/), run in turn on a swarm of seeds and on a
# plain day, RUNS times each; prints each one's median wall time and the ratio with/without.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
with=${1:-$root/build}/apps/eventmart
nodir=$root/build-noassert
runs=${RUNS:-5}
jobs=${JOBS:-$(nproc)}
cmake -S "$root" -B "$nodir" -DCMAKE_BUILD_TYPE=Release -DEVENTMART_BUILD_TESTS=OFF \
  -DEVENTMART_ASSERTIONS=OFF >/dev/null
cmake --build "$nodir" -j "$jobs" --target eventmart >/dev/null
without=$nodir/apps/eventmart

# median of the numbers on stdin
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
# seconds one run of "$@" takes
seconds() {
  local start end
  start=$(date +%s%N)
  "$@" >/dev/null 2>&1 || true
  end=$(date +%s%N)
  awk -v s="$start" -v e="$end" 'BEGIN {printf "%.4f\n", (e - s) / 1e9}'
}
# compare NAME ARGS...: RUNS runs of each build in turn, medians and their ratio
compare() {
  local name=$1
  shift
  local a=() b=()
  for _ in $(seq "$runs"); do
    a+=("$(seconds "$with" "$@")")
    b+=("$(seconds "$without" "$@")")
  done
  local ma mb
  ma=$(printf '%s\n' "${a[@]}" | median)
  mb=$(printf '%s\n' "${b[@]}" | median)
  printf '%-40s with checks %8.3f s   without %8.3f s   ratio %.3f\n' "$name" "$ma" "$mb" \
    "$(awk -v a="$ma" -v b="$mb" 'BEGIN {printf "%.4f", a / b}')"
}
echo "bench-assertions: $runs runs of each, in turn; medians"
compare "swarm, 200 seeds of 1,000 customers" sim --faults swarm --customers 1000 --seeds 200 --jobs 1
compare "a plain day of 20,000 customers" sim --customers 20000
