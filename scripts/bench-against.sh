#!/usr/bin/env bash
# Runs `eventmart-bench` of an older commit and of the working tree alternately, on the same
# machine in one go, and prints each headline figure side by side with the ratio new/old.
#
#   scripts/bench-against.sh [REF] [ROUNDS]     (REF default c3c493f, ROUNDS default 2)
#
# REF is checked out with `git worktree` under build-ref/REF and built there once (Release);
# the working tree's bench is built in build/. Each round runs old then new, and the best of
# the rounds is kept for each figure (the benchmark itself already keeps the best of 3).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
ref=${1:-c3c493f}
rounds=${2:-2}
jobs=${JOBS:-$(nproc)}
tree=$root/build-ref/$ref
out=$root/build-ref/$ref-build

if [ ! -d "$tree" ]; then
  git -C "$root" worktree add --detach "$tree" "$ref" >/dev/null
fi
if [ ! -x "$out/bench/eventmart-bench" ]; then
  echo "bench-against: building $ref in $out"
  cmake -S "$tree" -B "$out" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$out" -j "$jobs" --target eventmart-bench >/dev/null
fi
cmake --build "$root/build" -j "$jobs" --target eventmart-bench >/dev/null

# The figures: a label and the awk program that finds it in the benchmark's output.
figure() { # $1 output file, $2 section start, $3 line label -> the number on that line
  awk -v section="$2" -v label="$3" '
    index($0, section) == 1 { inside = 1; next }
    inside && /^$/ { inside = 0 }
    inside && index($0, label) { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9.]+$/) { print $i; exit } }
  ' "$1"
}

best() { # $1 "max" or "min", then values
  local mode=$1
  shift
  printf '%s\n' "$@" | sort -g | { if [ "$mode" = max ]; then tail -1; else head -1; fi; }
}

declare -a old_bus new_bus old_day new_day old_swarm new_swarm
for round in $(seq 1 "$rounds"); do
  for side in old new; do
    file=$root/build-ref/bench-$side-$round.txt
    if [ "$side" = old ]; then "$out/bench/eventmart-bench" >"$file"; else
      "$root/build/bench/eventmart-bench" >"$file"
    fi
    bus=$(figure "$file" "memory bus" "  bus ")
    day=$(figure "$file" "store day" "wall time")
    swarm=$(figure "$file" "swarm:" "swarm faults")
    eval "${side}_bus+=(\"$bus\"); ${side}_day+=(\"$day\"); ${side}_swarm+=(\"$swarm\")"
    echo "round $round $side: bus $bus messages/s, 10,000-customer day $day s, swarm $swarm seeds/s"
  done
done

ob=$(best max "${old_bus[@]}") nb=$(best max "${new_bus[@]}")
od=$(best min "${old_day[@]}") nd=$(best min "${new_day[@]}")
os=$(best max "${old_swarm[@]}") ns=$(best max "${new_swarm[@]}")
echo
printf '%-34s %14s %14s %8s\n' "figure (best of $rounds rounds)" "$ref" "working tree" "new/old"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf '%-34s %14.0f %14.0f %8s\n' "memory bus, messages/s" "$ob" "$nb" "$(ratio "$nb" "$ob")"
printf '%-34s %14.3f %14.3f %8s\n' "10,000-customer day, s (speedup)" "$od" "$nd" "$(ratio "$od" "$nd")"
printf '%-34s %14.1f %14.1f %8s\n' "swarm, seeds/s" "$os" "$ns" "$(ratio "$ns" "$os")"
echo "(the swarm's mix is whatever each side draws: it grew since c3c493f, so that ratio"
echo " compares the searches each version runs, not the same work)"
