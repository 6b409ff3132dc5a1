#!/usr/bin/env bash
# Mutation testing: applies each single-line mutant of scripts/mutants.list to a scratch copy
# of the working tree, rebuilds it incrementally, and runs the suite against it in stages,
# cheapest first, stopping at the first that fails:
#   1. unit and property tests   (ctest -L 'unit|properties')
#   2. a swarm                   (eventmart sim --faults swarm, MUTANT_SEEDS seeds)
#   3. broker and CLI tests      (ctest -L 'broker|cli', a real mosquitto)
# A mutant is caught when a stage fails. It prints one line per mutant and a summary, and
# exits 1 if a mutant expected caught survived or one marked equivalent or unreached was
# caught (or a mutant no longer applies or compiles).
#
#   scripts/mutants.sh [LIST] [NAME...]     (NAME: run only these mutants)
#   MUTANT_DIR (default build-mutants), MUTANT_SEEDS (default 100), JOBS (default nproc)
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
list=${1:-$root/scripts/mutants.list}
shift $(($# > 0 ? 1 : 0))
only=("$@")
work=${MUTANT_DIR:-$root/build-mutants}
seeds=${MUTANT_SEEDS:-100}
jobs=${JOBS:-$(nproc)}
src=$work/src
build=$work/build
log=$work/logs
mkdir -p "$src" "$build" "$log"

# The scratch copy: tracked files as they are in the working tree, timestamps kept, so an
# unchanged file is not rebuilt on the next run.
(cd "$root" && git ls-files -z | xargs -0 cp -p --parents -t "$src") || {
  echo "mutants: cannot copy the working tree to $src" >&2
  exit 2
}
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release >"$log/configure.log" 2>&1 || {
    echo "mutants: configure failed, see $log/configure.log" >&2
    exit 2
  }
fi
echo "mutants: building the unmutated copy in $build"
cmake --build "$build" -j "$jobs" >"$log/build.log" 2>&1 || {
  echo "mutants: the unmutated tree does not build, see $log/build.log" >&2
  exit 2
}

# Replaces the one occurrence of $2 in file $1 by $3 (literal text). Exit 3: not exactly once.
apply() {
  FROM=$2 TO=$3 perl -0pi -e '
    my $n = () = /\Q$ENV{FROM}\E/g;
    if ($n != 1) { print STDERR "found $n times\n"; exit 3 }
    s/\Q$ENV{FROM}\E/$ENV{TO}/;' "$1"
}

# Runs the stages against the mutated build; prints the stage that caught it, or nothing.
run_stages() {
  local name=$1
  if ! RC_PARAMS="seed=20261126" ctest --test-dir "$build" -L 'unit|properties' \
    --stop-on-failure -j "$jobs" >"$log/$name.tests.log" 2>&1; then
    echo "unit/property tests"
    return
  fi
  if ! timeout 600 "$build/apps/eventmart" sim --faults swarm --customers 1000 \
    --seeds "$seeds" >"$log/$name.swarm.log" 2>&1; then
    echo "swarm of $seeds seeds"
    return
  fi
  if ! ctest --test-dir "$build" -L 'broker|cli' --stop-on-failure -j "$jobs" \
    >"$log/$name.broker.log" 2>&1; then
    echo "broker tests"
    return
  fi
}

wanted() {
  [ ${#only[@]} -eq 0 ] && return 0
  local n
  for n in "${only[@]}"; do [ "$n" = "$1" ] && return 0; done
  return 1
}

total=0 caught=0 equivalent=0 unreached=0 wrong=0
results=()
run_one() {
  local name=$1 file=$2 from=$3 to=$4 expect=$5
  wanted "$name" || return 0
  total=$((total + 1))
  local path=$src/$file started verdict stage
  started=$(date +%s)
  cp -p "$path" "$work/original"
  if ! apply "$path" "$from" "$to" 2>"$log/$name.apply.log"; then
    verdict="STALE (the text is not in $file exactly once: $(cat "$log/$name.apply.log"))"
    wrong=$((wrong + 1))
  elif ! cmake --build "$build" -j "$jobs" >"$log/$name.build.log" 2>&1; then
    verdict="DOES NOT COMPILE (see $log/$name.build.log)"
    wrong=$((wrong + 1))
  else
    stage=$(run_stages "$name")
    if [ -n "$stage" ]; then
      caught=$((caught + 1))
      if [ "$expect" = caught ]; then verdict="caught by $stage"; else
        verdict="CAUGHT BUT MARKED ${expect^^} (by $stage)"
        wrong=$((wrong + 1))
      fi
    elif [ "$expect" = equivalent ]; then
      verdict="survived (equivalent)"
      equivalent=$((equivalent + 1))
    elif [ "$expect" = unreached ]; then
      verdict="survived (unreached: see its why)"
      unreached=$((unreached + 1))
    else
      verdict="SURVIVED: a missing check"
      wrong=$((wrong + 1))
    fi
  fi
  cp -p "$work/original" "$path"
  touch "$path" # the mutated object must be rebuilt from the original
  local line
  line=$(printf '%-46s %-9s %4ss  %s' "$name" "$expect" "$(($(date +%s) - started))" "$verdict")
  echo "$line"
  results+=("$line")
}

name="" file="" from="" to="" expect=""
flush() {
  if [ -n "$name" ]; then
    if [ -z "$file" ] || [ -z "$from" ] || [ -z "$expect" ]; then
      echo "mutants: '$name' lacks file, from or expect" >&2
      wrong=$((wrong + 1))
    elif [[ ! "$expect" =~ ^(caught|equivalent|unreached)$ ]]; then
      echo "mutants: '$name' expects '$expect' (caught, equivalent or unreached)" >&2
      wrong=$((wrong + 1))
    else
      run_one "$name" "$file" "$from" "$to" "$expect"
    fi
  fi
  name="" file="" from="" to="" expect=""
}

printf '%-46s %-9s %5s  %s\n' mutant expect time verdict
while IFS= read -r raw || [ -n "$raw" ]; do
  case "$raw" in
    "#"* | "") continue ;;
  esac
  key=${raw%%:*}
  value=${raw#*:}
  value=${value#"${value%%[![:space:]]*}"} # leading spaces
  case "$key" in
    mutant) flush; name=$value ;;
    file) file=$value ;;
    from) from=$value ;;
    to) to=$value ;;
    expect) expect=$value ;;
    why) ;;
    *) echo "mutants: unknown key '$key' in $list" >&2; wrong=$((wrong + 1)) ;;
  esac
done <"$list"
flush

# Leave the scratch build unmutated for the next run.
cmake --build "$build" -j "$jobs" >"$log/build.log" 2>&1

echo
echo "mutants: $total run, $caught caught, $equivalent equivalent, $unreached unreached," \
  "$wrong wrong" \
  "(logs in $log)"
[ "$wrong" -eq 0 ]
