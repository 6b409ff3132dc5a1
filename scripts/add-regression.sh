#!/usr/bin/env bash
# Adds a failing swarm seed to the regression corpus (tests/regressions/), which `make test`
# replays forever after:
#
#   scripts/add-regression.sh SEED "what it found" [more eventmart sim options]
#   make regression SEED=N FOUND="what it found" [SIM_ARGS="--customers 1000"]
#
# SEED may be a recipe of eventmart explore (SEED/STEP:CHILD/...): the timeline it names is
# kept (its file: swarm-recipe-SEED_STEPxCHILD_...[-BUG].json).
#
# The seed runs once with `--faults swarm` and the options given; it is kept only if it fails
# now (a regression is added before its fix; once fixed, the replay must pass). With
# `--bug NAME` it keeps a bug-zoo run the harness must go on catching, with the invariants it
# violated. The file is tests/regressions/swarm-seed-SEED[-BUG].json.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
eventmart="${EVENTMART:-$here/build/apps/eventmart}"
if [ $# -lt 2 ] || [ -z "$2" ]; then
  echo "usage: $0 SEED \"what it found\" [eventmart sim options]" >&2
  exit 2
fi
seed="$1"; found="$2"; shift 2
if [ ! -x "$eventmart" ]; then
  echo "add-regression: $eventmart is not built (make build)" >&2
  exit 2
fi
bug=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[$i]}" in
    --bug) if [ $((i + 1)) -lt ${#args[@]} ]; then bug="-${args[$((i + 1))]}"; fi ;;
    --bug=*) bug="-${args[$i]#--bug=}" ;;
    --seed|--seed=*|--seeds|--seeds=*|--recipe*|--save-scenario*|--scenario*|--found*)
      echo "add-regression: ${args[$i]} is set by this script" >&2; exit 2 ;;
  esac
done
case "$bug" in
  -list|-none) echo "add-regression: --bug ${bug#-}: name a bug variant (eventmart sim --bug list)" >&2; exit 2 ;;
  *[!A-Za-z0-9-]*) echo "add-regression: a bug name is letters, digits and '-'" >&2; exit 2 ;;
esac
start=(--seed "$seed")
if [[ "$seed" =~ ^[0-9]+(/[0-9]+:[0-9]+)+$ ]]; then
  start=(--recipe "$seed")
  name="recipe-$(printf '%s' "$seed" | tr '/:' '_x')"
elif [[ "$seed" =~ ^[0-9]+$ ]]; then
  name="seed-$seed"
else
  echo "add-regression: SEED must be a number or a recipe SEED/STEP:CHILD/... (got '$seed')" >&2
  exit 2
fi
file="$here/tests/regressions/swarm-$name$bug.json"
if [ -e "$file" ]; then
  echo "add-regression: $file exists already" >&2
  exit 2
fi
set +e
"$eventmart" sim --faults swarm "${start[@]}" "$@" --save-scenario "$file" --found="$found" >/dev/null
status=$?
set -e
case $status in
  1) echo "add-regression: seed $seed fails; kept as ${file#$here/}"
     echo "  replay: eventmart sim --scenario ${file#$here/}" ;;
  0) rm -f "$file"
     echo "add-regression: seed $seed passes: nothing to keep (add a seed while it fails)" >&2
     exit 1 ;;
  *) rm -f "$file"; exit "$status" ;;
esac
