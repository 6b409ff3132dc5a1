#!/usr/bin/env bash
# Runs each libFuzzer target of tests/fuzz for FUZZ_SECONDS (make fuzz), starting from its
# corpus in tests/fuzz/corpus/NAME. The fuzzer grows its working corpus in
# BUILD_DIR/fuzz-corpus/NAME (kept for the next run: every feature, hit counts included);
# what reaches code the kept corpus does not (a new edge: -merge=1 -use_counters=0) is merged
# back into tests/fuzz/corpus/NAME, which make test replays. That keeps the committed corpus
# small (about 1,400 inputs and 100 KB for all four targets after a minute each). A crash is
# written to tests/fuzz/crashes/NAME/, where make test replays it from then on (fix it first).
#   scripts/fuzz.sh BUILD_DIR [SECONDS]     exit 1 when a target crashed
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$1
seconds=${2:-60}
targets=(capnp_wire json_wire device_input scenario)
crashed=0
for name in "${targets[@]}"; do
  corpus=$root/tests/fuzz/corpus/$name
  crashes=$root/tests/fuzz/crashes/$name
  work=$build/fuzz-corpus/$name
  mkdir -p "$corpus" "$crashes" "$work"
  before=$(ls "$crashes" | wc -l)
  echo "fuzz: $name for ${seconds}s"
  "$build/tests/fuzz/fuzz_$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$crashes/" -print_final_stats=1 "$work" "$corpus" \
    >"$build/fuzz-$name.log" 2>&1
  status=$?
  grep -E "^stat::number_of_executed_units|^stat::new_units_added|^#[0-9]+ +DONE" \
    "$build/fuzz-$name.log" | sed 's/^/  /'
  kept_before=$(ls "$corpus" | wc -l)
  "$build/tests/fuzz/fuzz_$name" -merge=1 -use_counters=0 "$corpus" "$work" \
    >"$build/fuzz-$name.merge.log" 2>&1
  echo "  kept in tests/fuzz/corpus/$name: $kept_before -> $(ls "$corpus" | wc -l) inputs"
  after=$(ls "$crashes" | wc -l)
  if [ "$status" -ne 0 ] || [ "$after" -ne "$before" ]; then
    echo "fuzz: $name CRASHED (exit $status); the input is in $crashes, the log in $build/fuzz-$name.log"
    crashed=1
  fi
done
[ "$crashed" -eq 0 ] && echo "fuzz: no target crashed"
exit $crashed
