#!/usr/bin/env bash
# A swarm spread over a Slurm cluster: an array job whose task id is the shard, then a merge
# that runs once every task has ended.
#
#   sbatch deploy/shards/slurm-array.sh            (submits the array and the merge)
#
# Each task runs shard K of N (K = SLURM_ARRAY_TASK_ID, 1..N) on the cores Slurm gave it and
# writes results/shard-K.jsonl on the shared filesystem; the merge job prints the summary one
# machine would have printed into results/summary.txt, and refuses a shard that is missing
# or cut short (a task killed at its time limit) with the reason (exit 2).
#SBATCH --job-name=eventmart-swarm
#SBATCH --array=1-16
#SBATCH --cpus-per-task=4
#SBATCH --time=04:00:00
#SBATCH --output=results/slurm-%A_%a.out
set -euo pipefail
SEEDS=${SEEDS:-1..1000000}
mkdir -p results
if [ -z "${SLURM_ARRAY_TASK_ID:-}" ]; then
  echo "submit with sbatch: this script is one task of an array job" >&2
  exit 2
fi
if [ "$SLURM_ARRAY_TASK_ID" = "$SLURM_ARRAY_TASK_MIN" ]; then
  # Once, from the first task: the merge, after every task of this array has ended.
  sbatch --dependency="afterany:$SLURM_ARRAY_JOB_ID" --job-name=eventmart-merge \
    --output=results/summary.txt --wrap="eventmart merge results/shard-*.jsonl"
fi
# Exit 1 means seeds failed: a result for the merge, not a failed task.
status=0
eventmart sim --faults swarm --seeds "$SEEDS" --jobs "$SLURM_CPUS_PER_TASK" \
  --shard "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT" \
  --jsonl "results/shard-$SLURM_ARRAY_TASK_ID.jsonl" >/dev/null || status=$?
[ "$status" -le 1 ] || exit "$status"
