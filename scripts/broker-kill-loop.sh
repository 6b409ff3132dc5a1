#!/usr/bin/env bash
# Kills the broker with -9 during load runs, again and again, and checks nothing was lost:
# every departure paid exactly once, and Inventory Intel consumed every departure.
#
#   scripts/broker-kill-loop.sh [RUNS] [CUSTOMERS]        (defaults: 100 runs, 2000 customers)
#
# Each run: a fresh mosquitto (persistence on, saving after every change, as deploy/ advises
# for a store that must survive a broker crash), `eventmart serve` of Inventory Intel and
# Fastlane Finale, `eventmart load` at 400 departures/s, and during it the broker killed with
# -9 and started again on the same port and persistence file (twice per run). Everything runs
# on 127.0.0.1 under a temporary folder; EVENTMART_BIN overrides the binary.
set -euo pipefail
runs="${1:-100}"
customers="${2:-2000}"
here="$(cd "$(dirname "$0")/.." && pwd)"
bin="${EVENTMART_BIN:-$here/build/apps/eventmart}"
work="$(mktemp -d /tmp/eventmart-kill-loop-XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_broker() {  # start_broker DIR PORT
  mosquitto -c "$1/mosquitto.conf" >>"$1/mosquitto.log" 2>&1 &
  broker_pid=$!
  pids+=("$broker_pid")
  for _ in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
    sleep 0.02
  done
  echo "mosquitto did not start" >&2
  return 1
}

lost_total=0
doubled_total=0
failed_runs=0
for run in $(seq "$runs"); do
  dir="$work/run-$run"
  mkdir -p "$dir/data"
  port="$(free_port)"
  cat >"$dir/mosquitto.conf" <<EOF
listener $port 127.0.0.1
allow_anonymous true
persistence true
persistence_location $dir/
autosave_on_changes true
autosave_interval 1
max_queued_messages 1000000
max_inflight_messages 100
set_tcp_nodelay true
user $(id -un)
EOF
  start_broker "$dir" "$port"
  "$bin" serve --service inventory-intel --service fastlane-finale --no-stdin \
    --broker "tcp://127.0.0.1:$port" --data-dir "$dir/data" --log-level warning \
    >"$dir/serve.log" 2>&1 &
  serve_pid=$!
  pids+=("$serve_pid")
  sleep 1
  "$bin" load --customers "$customers" --rate 400 --timeout 60 --json \
    --broker "tcp://127.0.0.1:$port" >"$dir/load.json" 2>"$dir/load.log" &
  load_pid=$!
  for kill_at in 1.5 2.5; do
    sleep 1
    kill -9 "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
    sleep 0.3
    start_broker "$dir" "$port"
  done
  status=0
  wait "$load_pid" || status=$?
  sleep 1  # Inventory Intel consumes departures on its own: let it drain
  kill -TERM "$serve_pid" 2>/dev/null || true
  wait "$serve_pid" 2>/dev/null || true
  kill -TERM "$broker_pid" 2>/dev/null || true
  wait "$broker_pid" 2>/dev/null || true
  read -r missing doubled malformed unconsumed < <(python3 - "$dir" "$customers" <<'PY'
import json, sqlite3, sys
d, customers = sys.argv[1], int(sys.argv[2])
r = json.load(open(d + "/load.json"))
malformed = sum(1 for l in open(d + "/mosquitto.log", errors="replace") if "malformed" in l.lower())
db = sqlite3.connect(d + "/data/inventory-intel.sqlite")
consumed = db.execute("SELECT count(*) FROM inbox WHERE event_id LIKE '%-departure'").fetchone()[0]
print(r.get("missing_payments", -1), r.get("duplicate_payments", -1), malformed,
      customers - consumed)
PY
)
  lost_total=$((lost_total + missing))
  doubled_total=$((doubled_total + doubled))
  if [ "$status" -ne 0 ] || [ "$missing" -ne 0 ] || [ "$doubled" -ne 0 ] || [ "$unconsumed" -ne 0 ]; then
    failed_runs=$((failed_runs + 1))
    echo "run $run: FAILED (load exit $status, $missing unpaid, $doubled doubled, $unconsumed not in Inventory Intel's inbox, $malformed malformed-packet lines); logs kept in $dir.kept"
    cp -r "$dir" "$dir.kept"
    mkdir -p /tmp/eventmart-kill-loop-failures && cp -r "$dir" "/tmp/eventmart-kill-loop-failures/run-$run-$(date +%s)"
  else
    echo "run $run: ok ($customers paid once and consumed by Inventory Intel, $malformed malformed-packet lines)"
  fi
  rm -rf "$dir"
done
echo "broker kill loop: $runs runs, $failed_runs failed, $lost_total departures lost, $doubled_total doubled"
[ "$failed_runs" -eq 0 ]
