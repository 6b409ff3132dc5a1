#!/usr/bin/env bash
# A swarm spread over machines with GNU parallel (Debian's `parallel`) over ssh, then merged.
#
#   deploy/shards/parallel.sh HOSTS_FILE [SEEDS] [SHARDS]
#
# HOSTS_FILE lists one ssh login per line (user@host, or ':' for this machine); each host
# needs `eventmart` on its PATH (the .deb of `make package`). Shard K of N runs seeds
# first+K-1, first+K-1+N, ... of the range, so the N shards together run every seed once.
# Each shard's results come back on its stdout as JSON Lines (--jsonl -) into
# results/shard-K.jsonl here; `eventmart merge` then prints the summary one machine would
# have printed, and refuses a shard that is missing, repeated or cut short (exit 2).
set -euo pipefail
hosts=${1:?usage: parallel.sh HOSTS_FILE [SEEDS] [SHARDS]}
seeds=${2:-1..100000}
shards=${3:-$(grep -cv '^[[:space:]]*$' "$hosts")}
mkdir -p results
rm -f results/shard-*.jsonl
# One job per shard, as many at once as there are hosts (-j1 per host: each run uses every
# core of its host). A host that fails a job is retried once elsewhere (--retries 2); a
# shard whose seeds fail exits 1, which is a result, not a reason to retry (--halt never).
parallel --sshloginfile "$hosts" -j1 --retries 2 --halt never --tag \
  "eventmart sim --faults swarm --seeds $seeds --shard {}/$shards --jsonl -" \
  '>' "results/shard-{}.jsonl" ::: $(seq 1 "$shards") || true
eventmart merge results/shard-*.jsonl
