#!/usr/bin/env bash
# A swarm spread over machines with GNU parallel (Debian's `parallel`) over ssh, then merged.
#
#   deploy/shards/parallel.sh HOSTS_FILE [SEEDS] [SHARDS]
#
# HOSTS_FILE lists one ssh login per line (user@host, or ':' for this machine); each host
# needs `eventmart` on its PATH (the .deb of `make package`). Shard K of N runs seeds
# first+K-1, first+K-1+N, ... of the range, so the N shards together run every seed once.
# Each shard writes its results as JSON Lines on its stdout (--jsonl -), which GNU parallel
# brings back over ssh into results/shard-K.jsonl here (--results: a redirection in the
# command would run on the remote host). `eventmart merge` then prints the summary one machine
# would have printed, and refuses a shard that is missing, repeated or cut short (exit 2).
set -euo pipefail
hosts=${1:?usage: parallel.sh HOSTS_FILE [SEEDS] [SHARDS]}
seeds=${2:-1..100000}
shards=${3:-$(grep -cv '^[[:space:]]*$' "$hosts")}
mkdir -p results
rm -f results/shard-*
# One job per shard, as many at once as there are hosts (-j1 per host: each run uses every
# core of its host). No --retries: a shard exits 1 when its seeds fail, which is a result; a
# shard that dies (its host lost) leaves a file merge refuses; results/joblog names its
# command, to run again.
parallel --sshloginfile "$hosts" -j1 --joblog results/joblog --results 'results/shard-{}.jsonl' \
  "eventmart sim --faults swarm --seeds $seeds --shard {}/$shards --jsonl -" \
  ::: $(seq 1 "$shards") >/dev/null || true
eventmart merge results/shard-*.jsonl
