#!/usr/bin/env bash
# Replay on any machine, proven (make cross-replay): the seeds pinned in
# tests/pinned/trace_hashes.txt must give the same trace hashes in simulator-only builds
# (EVENTMART_SIM_ONLY: no MQTT, no Boost, no reports, which arm64 would otherwise need too)
#   - on arm64: Debian's cross toolchain and arm64 libraries, run under qemu-user
#   - with GCC at -O0, with Clang at -O0 and at -O3
# as in the regular build (GCC -O3, where make test checks them). Folders: build-replay/.
# Exit 0 when every build replays every pin.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${REPLAY_DIR:-$root/build-replay}
jobs=${JOBS:-$(nproc)}
pins=$root/tests/pinned/trace_hashes.txt
bash "$root/scripts/install-deps.sh" cross || exit 2

failed=0
# build NAME CMAKE_ARGS... : configures and builds eventmart-replay in $out/NAME.
build() {
  local name=$1
  shift
  mkdir -p "$out/$name"
  if ! { cmake -S "$root" -B "$out/$name" -DEVENTMART_SIM_ONLY=ON "$@" &&
    cmake --build "$out/$name" -j "$jobs" --target eventmart-replay; } >"$out/$name.log" 2>&1; then
    echo "cross-replay: $name did not build, see $out/$name.log"
    failed=1
    return 1
  fi
}
# replay NAME [EMULATOR...]: runs the pins in that build.
replay() {
  local name=$1
  shift
  printf '%-12s ' "$name"
  if ! "$@" "$out/$name/runs/eventmart-replay" "$pins"; then failed=1; fi
}

build arm64-gcc-O3 -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_TOOLCHAIN_FILE="$root/cmake/aarch64-linux-gnu.cmake" &&
  replay arm64-gcc-O3 qemu-aarch64 -L /usr/aarch64-linux-gnu
build gcc-O0 -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-O0 && replay gcc-O0
build clang-O0 -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-O0 \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ && replay clang-O0
build clang-O3 -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=clang \
  -DCMAKE_CXX_COMPILER=clang++ && replay clang-O3
if [ "$failed" -ne 0 ]; then
  echo "cross-replay: FAILED: a build could not be made or a pinned seed replayed differently"
  exit 1
fi
echo "cross-replay: every build replays every pinned seed"
