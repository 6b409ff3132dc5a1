#!/usr/bin/env bash
# Time to bug, longer than `make bench` affords: every bug variant, shallow and deep, the
# CPU-seconds to the first failing timeline with the swarm and with the explorer from the same
# roots, the median over ROOTS roots (deep variants: DEEP_ROOTS roots of up to DEEP_MAX seeds
# or root timelines each, days of 1000 customers). About an hour and a half with the defaults (a
# seed two roots share runs once).
#
#   scripts/time-to-bug.sh [BUILD_DIR]      ROOTS=5 DEEP_ROOTS=5 DEEP_MAX=8000 ONLY=NAME
set -euo pipefail
build_dir=${1:-build}
args=(--roots "${ROOTS:-5}" --deep-roots "${DEEP_ROOTS:-5}" --deep-max-seeds "${DEEP_MAX:-8000}")
if [[ -n "${ONLY:-}" ]]; then args+=(--only "$ONLY"); fi
exec "$build_dir/bench/eventmart-ttb-bench" "${args[@]}"
