#!/usr/bin/env bash
# The folders' layering (docs/architecture.md, "Layers: product and harness"): what each folder's code may
# include of the project. The product (core, transports, services, runtime) never includes the
# harness (sim, properties, runs, report, chaos, testkit, tests); the commands (apps) may, since
# the binary ships sim and chaos; only tests and benchmarks include testkit.
# Usage: layering_test.sh SOURCE_DIR
set -u
cd "$1" || exit 2
failures=0

# folder: the folders of the project it may include (itself always), from the table in
# docs/architecture.md ("| folder | may include |"): the documented rule is the enforced one.
rules=()
while IFS= read -r row; do
  folder=$(echo "$row" | cut -d'|' -f2 | xargs)
  allowed=$(echo "$row" | cut -d'|' -f3 | xargs)
  rules+=("$folder:$allowed")
done < <(awk '/^\| folder \| may include \|$/ {t=1; next} t && /^\|---/ {next} t && /^\|/ {print; next} t {exit}' docs/architecture.md)
if [ ${#rules[@]} -lt 10 ]; then
  echo "FAIL docs/architecture.md has no table of what each folder may include"
  exit 1
fi
for folder in core transports/memory transports/mqtt services runtime sim properties runs chaos report apps testkit; do
  printf '%s\n' "${rules[@]}" | grep -q "^$folder:" || { echo "FAIL no rule for $folder"; exit 1; }
done

# The folder an include names: "transports/mqtt/x.h" -> transports/mqtt, "sim/bugs/x.h" -> sim.
folder_of() {
  case "$1" in
    transports/*) echo "$1" | cut -d/ -f1-2 ;;
    *) echo "$1" | cut -d/ -f1 ;;
  esac
}

for rule in "${rules[@]}"; do
  folder=${rule%%:*}
  allowed=" ${rule#*:} $folder "
  while IFS=: read -r file line text; do
    included=$(echo "$text" | sed -n 's/^#include "\([^"]*\)".*/\1/p')
    [ -n "$included" ] || continue
    [ -e "$included" ] || continue  # a generated header (events.capnp.h) or a system one
    target=$(folder_of "$included")
    case "$allowed" in
      *" $target "*) ;;
      *) echo "FAIL $file:$line includes $included: $folder may not include $target"
         failures=$((failures + 1)) ;;
    esac
  done < <(grep -rn --include='*.cpp' --include='*.h' '^#include "' "$folder")
done

# Nothing in the product or the harness lives in a namespace named "testing" (GoogleTest's).
if grep -rn --include='*.cpp' --include='*.h' -E 'namespace ([a-z]+::)*testing\b' \
     core transports services runtime sim properties runs report chaos apps testkit; then
  echo "FAIL a namespace named testing (it shadows GoogleTest's)"
  failures=$((failures + 1))
fi

# What the code assumes is checked (core/assert.h): a "REQUIRES:" in a comment says, on its
# line or the next, that it is checked.
while IFS=: read -r file line _; do
  if ! sed -n "${line},$((line + 1))p" "$file" | grep -q "checked"; then
    echo "FAIL $file:$line: a REQUIRES: that no EVENTMART_REQUIRE checks (or say what checks it)"
    failures=$((failures + 1))
  fi
done < <(grep -rn --include='*.cpp' --include='*.h' 'REQUIRES:' \
           core transports services runtime sim properties runs report chaos apps |
         grep -v '^core/assert.h:')

echo "layering: $failures violations"
[ "$failures" -eq 0 ]
