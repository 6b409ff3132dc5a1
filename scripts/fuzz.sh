#!/usr/bin/env bash
# Runs each libFuzzer target of tests/fuzz for FUZZ_SECONDS (make fuzz), starting from its
# seed corpus in tests/fuzz/corpus/NAME (a few hand-made inputs per target). What the fuzzer
# grows stays in BUILD_DIR/fuzz-corpus/NAME, minimized with -merge=1 after each run and reused
# by the next, not committed (a json_wire run grows about 1,500 inputs); an input worth pinning
# is copied into the seed corpus by hand. A crash is written to tests/fuzz/crashes/NAME/, where
# make test replays it from then on (fix it first).
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
  minimized=$build/fuzz-corpus/$name.min
  rm -rf "$minimized" && mkdir -p "$minimized"
  if "$build/tests/fuzz/fuzz_$name" -merge=1 "$minimized" "$work" "$corpus" \
    >"$build/fuzz-$name.merge.log" 2>&1; then
    rm -rf "$work" && mv "$minimized" "$work"
  fi
  echo "  corpus kept in $work: $(ls "$work" | wc -l) inputs"
  after=$(ls "$crashes" | wc -l)
  if [ "$status" -ne 0 ] || [ "$after" -ne "$before" ]; then
    echo "fuzz: $name CRASHED (exit $status); the input is in $crashes, the log in $build/fuzz-$name.log"
    crashed=1
  fi
done
[ "$crashed" -eq 0 ] && echo "fuzz: no target crashed"
exit $crashed
