#!/usr/bin/env bash
# Installs the Debian 12 packages eventmart needs to build and test, and nothing else.
# Only packages that `dpkg -s` reports missing are installed, so a second run does not
# touch the network. Runs apt-get as root, or through sudo when not root.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libboost-dev libboost-program-options-dev
  capnproto libcapnp-dev
  libsqlite3-dev nlohmann-json3-dev
  libgtest-dev librapidcheck-dev
  libpaho-mqttpp-dev libpaho-mqtt-dev libssl-dev
  libsystemd-dev
  mosquitto mosquitto-clients openssl
  clang
  chromium
  # The cluster tests (deploy/rabbitmq/cluster.sh runs its own nodes; the package's system
  # service is not used).
  rabbitmq-server
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed'; then
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
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
