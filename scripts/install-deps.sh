#!/usr/bin/env bash
# Installs the Debian 12 packages eventmart needs, and nothing else, in three sets:
#   build   what building and running the `eventmart` binary needs (`make demo`)
#   test    what the test suite needs besides: GoogleTest, rapidcheck, mosquitto, openssl,
#           clang (`make test-clang`), GNU parallel
#   heavy   what the browser and cluster tests need: Chromium, RabbitMQ (and its Erlang)
#   cross   what make cross-replay needs: the arm64 cross toolchain, qemu-user, and the
#           arm64 Cap'n Proto and SQLite (Debian multiarch: adds the arm64 architecture)
# Usage: install-deps.sh [build|test|all|cross]   (default all; test includes build, all
# everything but cross)
# Only packages that `dpkg -s` reports missing are installed, so a second run does not touch
# the network. Runs apt-get as root, or through sudo when not root.
set -euo pipefail

build=(
  build-essential cmake ninja-build pkg-config
  libboost-dev libboost-program-options-dev
  capnproto libcapnp-dev
  libsqlite3-dev nlohmann-json3-dev
  libpaho-mqttpp-dev libpaho-mqtt-dev libssl-dev
  libsystemd-dev libfmt-dev
)
test=(
  libgtest-dev librapidcheck-dev
  mosquitto mosquitto-clients openssl
  clang
  # GNU parallel: the test of a swarm run in shards (--sshlogin : runs them on this machine).
  parallel
)
cross=(
  build-essential cmake pkg-config capnproto nlohmann-json3-dev clang
  crossbuild-essential-arm64 qemu-user libcapnp-dev:arm64 libsqlite3-dev:arm64
)
heavy=(
  chromium
  # The cluster tests (deploy/rabbitmq/cluster.sh runs its own nodes; the package's system
  # service is not used).
  rabbitmq-server
)

case "${1:-all}" in
  build) packages=("${build[@]}") ;;
  test) packages=("${build[@]}" "${test[@]}") ;;
  all) packages=("${build[@]}" "${test[@]}" "${heavy[@]}") ;;
  cross) packages=("${cross[@]}") ;;
  *) echo "usage: install-deps.sh [build|test|all|cross]" >&2; exit 2 ;;
esac

missing=()
native=$(dpkg --print-architecture)
for p in "${packages[@]}"; do
  # A bare name means the native package: once an arm64 instance is installed too (make
  # cross-replay), `dpkg -s NAME` is ambiguous and would report it missing every time.
  if ! { dpkg -s "$p" 2>/dev/null || dpkg -s "$p:$native" 2>/dev/null; } |
    grep -q '^Status: install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing missing packages: ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
if [ "${1:-all}" = cross ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $sudo dpkg --add-architecture arm64
fi
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
