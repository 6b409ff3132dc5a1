#!/usr/bin/env bash
# A search spread over machines: a swarm run as 4 shards by GNU parallel (--sshlogin ':' runs
# them on this machine, as it would over ssh) merges to the summary of the unsharded run; an
# exploration in 2 shards merges to its whole budget; a missing, repeated, overlapping or
# truncated shard (one killed mid-run) is refused by `eventmart merge` with exit 2 and no
# summary; bad --shard values are bad usage.
set -u
bin="$1"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
failures=0
pass() { echo "ok   $1"; }
fail() { echo "FAIL $1"; failures=$((failures + 1)); }
expect() {  # expect NAME STATUS COMMAND... (stdout to $dir/out, stderr to $dir/err)
  local name="$1" expected="$2"
  shift 2
  "$@" >"$dir/out" 2>"$dir/err"
  local status=$?
  if [ "$status" -eq "$expected" ]; then pass "$name"; else
    fail "$name: exit $status, expected $expected"
    sed 's/^/  stderr: /' "$dir/err" | head -5
  fi
}
says() {  # says NAME FILE TEXT
  if grep -q -- "$3" "$2"; then pass "$1"; else fail "$1: '$3' not in $(basename "$2")"; sed 's/^/  /' "$2" | head -5; fi
}
# The summary without what differs from machine to machine (time, threads, the shard count).
steady() {
  sed -E 's/"(jobs|wall_seconds|seeds_per_second|merged_shards|cpu_seconds)":[0-9.]+,//g' "$1"
}

# A swarm with a shallow bug, so that failures (and their replay commands) are merged too.
run=(sim --faults swarm --customers 150 --bug float-money --seeds 1..30)

expect "the unsharded swarm runs (and fails: a bug)" 1 "$bin" "${run[@]}" --jobs 2 --json
cp "$dir/out" "$dir/whole.json"
says "the unsharded swarm found failing seeds" "$dir/whole.json" '"failing_seeds":\[{'

# GNU parallel as deploy/shards/parallel.sh runs it over ssh: each shard's JSON Lines come back
# on its stdout, kept by --results (a redirection in the command would run on the remote host).
parallel --sshlogin : -j 2 --results "$dir/shard-{}.jsonl" \
  "$bin ${run[*]} --jobs 1 --shard {}/4 --jsonl -" ::: 1 2 3 4 >/dev/null
for k in 1 2 3 4; do
  if [ -s "$dir/shard-$k.jsonl" ]; then pass "shard $k wrote its results"; else fail "shard $k wrote nothing"; fi
done
head -1 "$dir/shard-2.jsonl" >"$dir/header"
says "a shard file starts with its header" "$dir/header" '"kind":"header","format":"eventmart-results/1"'
says "the header names the shard" "$dir/header" '"shard":2,"shards":4'
lines=$(grep -c '"kind":"seed"' "$dir/shard-2.jsonl")
if [ "$lines" -eq 8 ]; then pass "shard 2/4 of seeds 1..30 ran its 8 seeds (2, 6, ..., 30)"; else fail "shard 2/4 ran $lines seeds, expected 8"; fi

expect "merge of the 4 shards exits 1 as the whole run did" 1 "$bin" merge --json "$dir"/shard-{1,2,3,4}.jsonl
cp "$dir/out" "$dir/merged.json"
if [ "$(steady "$dir/merged.json")" = "$(steady "$dir/whole.json")" ]; then
  pass "the merged summary is the unsharded one (totals, failures, replay commands, marks)"
else
  fail "the merged summary differs from the unsharded one"
  diff <(steady "$dir/whole.json" | tr ',' '\n') <(steady "$dir/merged.json" | tr ',' '\n') | head -10
fi
says "the merged summary says it was merged" "$dir/merged.json" '"merged_shards":4'
expect "the readable merge" 1 "$bin" merge "$dir"/shard-{4,2,3,1}.jsonl
says "the readable merge names the range and the shards" "$dir/out" 'seeds (1..30, merged from 4 shards)'
says "the readable merge prints replay commands" "$dir/out" 'eventmart sim --seed'

# What merge refuses: exit 2, the reason, and no summary on stdout.
refused() {  # refused NAME TEXT FILES...
  local name="$1" text="$2"
  shift 2
  expect "$name: exit 2" 2 "$bin" merge "$@"
  says "$name: the reason" "$dir/err" "$text"
  if [ -s "$dir/out" ]; then fail "$name: a summary was printed anyway"; else pass "$name: no summary printed"; fi
}
refused "a missing shard" "shard(s) 3 of 4 missing" "$dir"/shard-{1,2,4}.jsonl
refused "a shard given twice" "shard 2/4 twice" "$dir"/shard-{1,2,2,3,4}.jsonl
head -c -40 "$dir/shard-3.jsonl" >"$dir/cut.jsonl"
refused "a file cut mid-line" "truncated" "$dir"/shard-{1,2}.jsonl "$dir/cut.jsonl" "$dir/shard-4.jsonl"
grep -v '"kind":"summary"' "$dir/shard-3.jsonl" >"$dir/nosummary.jsonl"
refused "a file without its summary line" "truncated: no summary line" "$dir"/shard-{1,2}.jsonl "$dir/nosummary.jsonl" "$dir/shard-4.jsonl"
grep -v '"seed":7,' "$dir/shard-3.jsonl" >"$dir/lost.jsonl"
refused "a file that lost a seed line" "holds 7 seeds; its summary says 7 and it has 6" "$dir"/shard-{1,2}.jsonl "$dir/lost.jsonl" "$dir/shard-4.jsonl"
"$bin" "${run[@]}" --jobs 1 --shard 1/3 --jsonl "$dir/third.jsonl" >/dev/null
refused "shards of different splits" "different splits" "$dir"/shard-{1,2,3,4}.jsonl "$dir/third.jsonl"
"$bin" sim --faults swarm --customers 150 --seeds 1..30 --jobs 1 --shard 3/4 --jsonl "$dir/other.jsonl" >/dev/null
refused "shards of different runs" "different runs" "$dir"/shard-{1,2,4}.jsonl "$dir/other.jsonl"
echo '{"hello":1}' >"$dir/junk.jsonl"
refused "a file that is not results" "not a results file" "$dir/junk.jsonl"
expect "a file that cannot be read" 3 "$bin" merge "$dir/no-such-file.jsonl"

# A shard killed mid-run leaves whole lines and no summary: refused, never counted in part.
"$bin" sim --faults swarm --customers 2000 --seeds 1..100000 --jobs 1 --shard 1/2 \
  --jsonl "$dir/killed.jsonl" >/dev/null 2>&1 &
victim=$!
# At least its header (written before any seed), two seed lines if they come within 30 s.
for _ in $(seq 1 300); do
  n=$(grep -c '"kind":"seed"' "$dir/killed.jsonl" 2>/dev/null)
  [ "${n:-0}" -ge 2 ] && break
  sleep 0.1
done
for _ in $(seq 1 100); do
  [ -s "$dir/killed.jsonl" ] && break
  sleep 0.1
done
if [ "$victim" -gt 0 ]; then kill -9 "$victim"; fi
wait "$victim" 2>/dev/null
cp "$dir/killed.jsonl" "$dir/killed-2.jsonl"
sed -i 's/"shard":1,/"shard":2,/' "$dir/killed-2.jsonl"
refused "a shard killed mid-run" "truncated: no summary line" "$dir/killed.jsonl" "$dir/killed-2.jsonl"

# Bad --shard values: bad usage, nothing run.
expect "--shard 0/4 is bad usage" 2 "$bin" "${run[@]}" --shard 0/4
says "--shard 0/4 says why" "$dir/err" 'shard (K) must be 1..4'
expect "--shard 5/4 is bad usage" 2 "$bin" "${run[@]}" --shard 5/4
expect "--shard x/y is bad usage" 2 "$bin" "${run[@]}" --shard x/y
expect "--shard 4 is bad usage" 2 "$bin" "${run[@]}" --shard 4
expect "--shard without --seeds is bad usage" 2 "$bin" sim --shard 1/2
expect "a shard past the range is bad usage" 2 "$bin" sim --seeds 1..3 --shard 4/4
expect "--jsonl without --seeds is bad usage" 2 "$bin" sim --jsonl "$dir/x.jsonl"

# An exploration in 2 shards: each explores its roots with half the budget; merged, the
# whole budget, the failures of both with their recipes.
explore=(explore --customers 150 --bug float-money --budget 24 --depth 1 --jobs 1)
for k in 1 2; do
  "$bin" "${explore[@]}" --shard "$k/2" --jsonl "$dir/explore-$k.jsonl" >"$dir/explore-$k.txt" 2>&1
done
says "explore shard 1 names itself" "$dir/explore-1.txt" 'shard 1/2'
expect "the exploration merges" 1 "$bin" merge --json "$dir"/explore-{1,2}.jsonl
says "the merged exploration ran the whole budget" "$dir/out" '"timelines":24,'
says "the merged exploration says it was merged" "$dir/out" '"merged_shards":2'
says "the merged exploration lists failing timelines with their replay" "$dir/out" '"replay":"eventmart sim --recipe'
refused "an exploration with a shard missing" "shard(s) 2 of 2 missing" "$dir/explore-1.jsonl"
refused "sim and explore shards mixed" "different runs" "$dir/explore-1.jsonl" "$dir/shard-2.jsonl"

echo "$failures failure(s)"
[ "$failures" -eq 0 ]
