#!/usr/bin/env bash
# `make package` as an operator meets it: the .deb installs with dpkg, its units verify, the
# binary runs, the system user and the conffile are in place; `dpkg -r` removes all but the
# conffile, `dpkg -P` that too. Root only (CI runs as root); it purges what it installed.
# Usage: package_test.sh BUILD_DIR
set -u
build="$1"
failures=0
ok() { echo "ok   $1"; }
fail() { echo "FAIL $1"; failures=$((failures + 1)); }
expect() { if eval "$2"; then ok "$1"; else fail "$1"; fi; }

if [ "$(id -u)" -ne 0 ]; then echo "package_test: needs root (dpkg -i)"; exit 1; fi
if dpkg -s eventmart >/dev/null 2>&1; then
  echo "package_test: an eventmart package is installed on this machine already; not touching it"
  exit 1
fi
out=$(mktemp -d)
cleanup() {
  dpkg -s eventmart >/dev/null 2>&1 && dpkg -P eventmart >/dev/null 2>&1
  rm -rf "$out"
}
trap cleanup EXIT

cpack --config "$build/CPackConfig.cmake" -B "$out" >"$out/cpack.log" 2>&1 || { cat "$out/cpack.log"; exit 1; }
deb=$(ls "$out"/eventmart_*.deb)
expect "the package is built" '[ -f "$deb" ]'
dpkg -i "$deb" >"$out/install.log" 2>&1
expect "dpkg -i installs it" '[ $? -eq 0 ] && dpkg -s eventmart | grep -q "^Status: install ok installed"' || cat "$out/install.log"
version=$(sed -n 's/^project(eventmart VERSION \([0-9.]*\).*/\1/p' "$(dirname "$0")/../CMakeLists.txt")
expect "eventmart --version runs and names the release" '[ "$(/usr/bin/eventmart --version)" = "eventmart $version" ]'
expect "eventmart sim runs from the package" '/usr/bin/eventmart sim --customers 50 --hours 1 --json | grep -q "\"trace_hash\""'

units="$out/units"
mkdir -p "$units"
ln -s /usr/lib/systemd/system/eventmart@.service "$units/eventmart@fastlane-finale.service"
expect "the service unit verifies" 'systemd-analyze verify "$units/eventmart@fastlane-finale.service" >"$out/verify.log" 2>&1'
cat "$out/verify.log"
expect "the display unit verifies" 'systemd-analyze verify /usr/lib/systemd/system/eventmart-display.service'
for unit in /usr/lib/systemd/system/eventmart@.service /usr/lib/systemd/system/eventmart-display.service; do
  doc=$(sed -n 's|^Documentation=file://||p' "$unit")
  expect "$(basename "$unit")'s Documentation= ($doc) is installed" '[ -n "$doc" ] && [ -f "$doc" ]'
  expect "$(basename "$unit") is Type=notify with a watchdog" 'grep -q "^Type=notify" "$unit" && grep -q "^WatchdogSec=" "$unit"'
done
expect "the eventmart system user exists" 'getent passwd eventmart >/dev/null'
expect "the shared settings are the eventmart group's only" '[ "$(stat -c "%a %G" /etc/eventmart/eventmart.env)" = "640 eventmart" ]'
expect "the deploy configs are installed" '[ -f /usr/share/eventmart/deploy/mosquitto.conf ] && [ -x /usr/share/eventmart/deploy/rabbitmq/cluster.sh ]'

echo "# a local change to the conffile" >>/etc/eventmart/eventmart.env
dpkg -r eventmart >"$out/remove.log" 2>&1
expect "dpkg -r removes it" '[ $? -eq 0 ]'
expect "the binary and units are gone" '[ ! -e /usr/bin/eventmart ] && [ ! -e /usr/lib/systemd/system/eventmart@.service ]'
expect "the docs and configs are gone" '[ ! -e /usr/share/doc/eventmart ] && [ ! -e /usr/share/eventmart ]'
expect "the edited conffile stays after remove" 'grep -q "a local change" /etc/eventmart/eventmart.env'
dpkg -P eventmart >"$out/purge.log" 2>&1
expect "dpkg -P purges it" '[ $? -eq 0 ] && ! dpkg -s eventmart >/dev/null 2>&1'
expect "nothing of it is left in /etc" '[ ! -e /etc/eventmart/eventmart.env ]'

echo "package: $failures failed"
[ "$failures" -eq 0 ]
