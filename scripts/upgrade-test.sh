#!/usr/bin/env bash
# `make upgrade-test`: upgrades a running store one service at a time, from the previous release
# to this build, under load and faults, on a real mosquitto (tests/upgrade_test.cpp). The
# previous release is built once from its commit in build-previous/ (its own folder; rebuilt when
# PREVIOUS_RELEASE names another commit).
#   PREVIOUS_RELEASE=<commit>   default: 0.1.0, the last release before schema versions
set -euo pipefail
cd "$(dirname "$0")/.."
previous=${PREVIOUS_RELEASE:-c055550}
build=${BUILD_DIR:-build}
folder=build-previous
jobs=$(nproc)
started=$(date +%s)
commit=$(git rev-parse --verify "$previous^{commit}")
if [ ! -x "$folder/apps/eventmart" ] || [ "$(cat "$folder/.commit" 2>/dev/null)" != "$commit" ]; then
  echo "upgrade-test: building the previous release ($commit) in $folder/"
  rm -rf "$folder"
  mkdir -p "$folder/src"
  git archive "$commit" | tar -x -C "$folder/src"
  cmake -S "$folder/src" -B "$folder" -DCMAKE_BUILD_TYPE=Release -DEVENTMART_BUILD_TESTS=OFF >/dev/null
  cmake --build "$folder" -j "$jobs" --target eventmart >/dev/null
  echo "$commit" >"$folder/.commit"
fi
built=$(date +%s)
cmake --build "$build" -j "$jobs" --target upgrade_test eventmart >/dev/null
echo "upgrade-test: $("$folder/apps/eventmart" --version 2>/dev/null || echo "eventmart 0.1.0 ($previous)") -> $("$build/apps/eventmart" --version)"
EVENTMART_PREVIOUS_BINARY="$PWD/$folder/apps/eventmart" "$build/tests/upgrade_test"
echo "upgrade-test: passed; the previous release built in $((built - started)) s, the run took $(($(date +%s) - built)) s"
