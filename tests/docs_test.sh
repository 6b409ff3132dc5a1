#!/usr/bin/env bash
# Docs that cannot drift: the README's sample report is what `eventmart sim` prints (wall time
# aside), every path the docs name exists, and the counts they give are the code's.
# Usage: docs_test.sh SOURCE_DIR EVENTMART
set -u
cd "$1" || exit 2
bin="$2"
failures=0
fail() { echo "FAIL $1"; failures=$((failures + 1)); }

# 1. The sample report in the README, against a run of the same command now.
wall='s/in [0-9.]+ s of wall time \([0-9]+x\)/in S s of wall time (Nx)/'
sample=$(awk '/^The readable report of `build\/apps\/eventmart sim`/ {found=1} found && /^```$/ {n++; next} found && n==1 {print} n==2 {exit}' README.md | sed -E "$wall")
actual=$("$bin" sim | sed -E "$wall")
if [ -z "$sample" ]; then
  fail "README.md has no sample report of eventmart sim"
elif [ "$sample" != "$actual" ]; then
  fail "README.md's sample report differs from what eventmart sim prints now:"
  diff <(echo "$sample") <(echo "$actual") | sed 's/^/  /'
else
  echo "ok   README.md's sample report is what eventmart sim prints"
fi

# 2. Every repository path named in backquotes in the README and docs/ exists.
folders='apps|bench|chaos|core|data|deploy|docs|properties|report|runs|runtime|scripts|services|sim|testkit|tests|transports'
while IFS=: read -r file path; do
  case "$path" in *'*'*|*'{'*|*'...'*|*'NAME'*|*'<'*) continue ;; esac  # patterns, not files
  [ -e "$path" ] || fail "$file names $path, which does not exist"
done < <(grep -oE "\`($folders)/[A-Za-z0-9_./@-]+\`" README.md docs/*.md | tr -d '`' | sort -u)
echo "ok   paths named in the docs checked"

# 3. The counts the docs give.
mutants=$(grep -c '^mutant:' scripts/mutants.list)
grep -q "The list has $mutants mutants" docs/testing.md ||
  fail "docs/testing.md does not say 'The list has $mutants mutants' (scripts/mutants.list)"
invariants=$("$bin" sim --json | grep -o '"invariants":{.*' | grep -o '"[a-z_]*":{"held"' | wc -l)
readme_invariants=$(awk '/^\| name \| what must hold \|/ {t=1; next} t && /^\|---/ {next} t && /^\|/ {n++; next} t {exit} END {print n}' README.md)
[ "$invariants" = "$readme_invariants" ] ||
  fail "the README's table of invariants has $readme_invariants rows; sim checks $invariants"

echo "docs: $failures failed"
[ "$failures" -eq 0 ]
