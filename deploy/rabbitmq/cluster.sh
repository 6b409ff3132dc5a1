#!/usr/bin/env bash
# A 3-node RabbitMQ 3.10 cluster on one machine, speaking MQTT 3.1.1 for eventmart: the nodes
# eventmart-1..3@localhost, each with its own ports and data folder under DIR, the
# rabbitmq_mqtt plugin enabled, durable MQTT sessions in quorum queues (replicated on all three
# nodes), and a user per eventmart service.
#
#   deploy/rabbitmq/cluster.sh start DIR [PORT]   start (or restart) the nodes, cluster them,
#                                                 wait until all three serve MQTT
#   deploy/rabbitmq/cluster.sh stop DIR           stop every node cleanly
#   deploy/rabbitmq/cluster.sh status DIR         the cluster's status
#   deploy/rabbitmq/cluster.sh node DIR N start|stop|kill   one node (kill: SIGKILL)
#
# PORT (default 1884): node N's MQTT listener is on PORT+N-1 (127.0.0.1 only), its AMQP
# listener on PORT+100+N-1 and its Erlang distribution on PORT+200+N-1. The brokers for
# eventmart: tcp://127.0.0.1:PORT,tcp://127.0.0.1:PORT+1,tcp://127.0.0.1:PORT+2 (with
# --mqtt-version 3.1.1). Users: each service's name, and load, scanner, display, operator,
# logistics; their passwords are in DIR/passwords (made on the first start).
set -euo pipefail

rabbit_bin=${RABBITMQ_BIN:-/usr/lib/rabbitmq/bin}
cmd=${1:?usage: cluster.sh start|stop|status|node DIR ...}
dir=${2:?usage: cluster.sh $cmd DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
port_file=$dir/port
if [ "$cmd" = start ] && [ -n "${3:-}" ]; then echo "$3" >"$port_file"; fi
[ -f "$port_file" ] || echo 1884 >"$port_file"
base=$(cat "$port_file")
export HOME=$dir # the Erlang cookie shared by the nodes and rabbitmqctl: $dir/.erlang.cookie

node_name() { echo "eventmart-$1@localhost"; }

node_env() { # N: the environment of node N
  local n=$1 d=$dir/node-$1
  echo RABBITMQ_NODENAME="$(node_name "$n")" RABBITMQ_USE_LONGNAME=false \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$((base + 100 + n - 1)) \
    RABBITMQ_DIST_PORT=$((base + 200 + n - 1)) RABBITMQ_MNESIA_BASE="$d/mnesia" \
    RABBITMQ_LOG_BASE="$d/log" RABBITMQ_PID_FILE="$d/pid" \
    RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf" RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins" \
    RABBITMQ_ADVANCED_CONFIG_FILE="$d/advanced.config" RABBITMQ_PLUGINS_EXPAND_DIR="$d/plugins"
}

ctl() { # N ARGS...: rabbitmqctl against node N
  local n=$1
  shift
  "$rabbit_bin/rabbitmqctl" -n "$(node_name "$n")" -q "$@" </dev/null
}

write_node_config() {
  local n=$1 d=$dir/node-$1
  mkdir -p "$d/log" "$d/mnesia"
  echo "[rabbitmq_mqtt]." >"$d/enabled_plugins"
  echo "[]." >"$d/advanced.config"
  cat >"$d/rabbitmq.conf" <<CONF
listeners.tcp.1 = 127.0.0.1:$((base + 100 + n - 1))
mqtt.listeners.tcp.1 = 127.0.0.1:$((base + n - 1))
mqtt.allow_anonymous = false
mqtt.vhost = /
mqtt.exchange = amq.topic
# Durable MQTT sessions (clean session off: every eventmart service) keep their messages in
# quorum queues, replicated on every node: a node's loss loses none of them.
mqtt.durable_queue_type = quorum
# A session whose node went away may be taken up on another node at once.
mqtt.prefetch = 256
cluster_partition_handling = pause_minority
log.file.level = warning
log.console = false
CONF
}

start_node() {
  local n=$1
  write_node_config "$n"
  if ctl "$n" status >/dev/null 2>&1; then return 0; fi
  # shellcheck disable=SC2046
  env $(node_env "$n") "$rabbit_bin/rabbitmq-server" >"$dir/node-$n/log/console.log" 2>&1 &
}

wait_node() { # N: until the node runs the app and its MQTT port accepts connections
  local n=$1 i
  for i in $(seq 1 120); do
    if ctl "$n" await_startup >/dev/null 2>&1 &&
      (exec 3<>"/dev/tcp/127.0.0.1/$((base + n - 1))") 2>/dev/null; then
      return 0
    fi
    sleep 0.5
  done
  echo "cluster.sh: node $n did not start; see $dir/node-$n/log" >&2
  return 1
}

make_users() {
  local pw_file=$dir/passwords user pw
  if [ ! -f "$pw_file" ]; then
    umask 077
    for user in gateway-guardian hello-helper gate-exit-guardian inventory-intel \
      fastlane-finale logistics-desk load scanner display operator logistics; do
      echo "$user $(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" >>"$pw_file"
    done
  fi
  while read -r user pw; do
    ctl 1 add_user "$user" "$pw" >/dev/null 2>&1 || ctl 1 change_password "$user" "$pw" >/dev/null
    ctl 1 set_permissions -p / "$user" ".*" ".*" ".*" >/dev/null
  done <"$pw_file"
  ctl 1 delete_user guest >/dev/null 2>&1 || true # guest/guest: not on a store's broker
}

case "$cmd" in
  start)
    if [ ! -f "$dir/.erlang.cookie" ]; then
      (umask 077 && head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/.erlang.cookie")
      chmod 400 "$dir/.erlang.cookie"
    fi
    for n in 1 2 3; do start_node "$n"; done
    for n in 1 2 3; do wait_node "$n"; done
    for n in 2 3; do
      if ! ctl 1 cluster_status 2>/dev/null | grep -q "$(node_name "$n")"; then
        ctl "$n" stop_app >/dev/null
        ctl "$n" join_cluster "$(node_name 1)" >/dev/null
        ctl "$n" start_app >/dev/null
        wait_node "$n"
      fi
    done
    make_users
    echo "cluster.sh: 3 nodes up; MQTT on 127.0.0.1:$base, $((base + 1)), $((base + 2))"
    ;;
  stop)
    for n in 3 2 1; do ctl "$n" stop >/dev/null 2>&1 || true; done
    ;;
  status)
    ctl 1 cluster_status
    ;;
  node)
    n=${3:?node number}
    case "${4:?start|stop|kill}" in
      start) start_node "$n" && wait_node "$n" ;;
      stop) ctl "$n" stop >/dev/null 2>&1 || true ;;
      kill) [ -f "$dir/node-$n/pid" ] && kill -9 "$(cat "$dir/node-$n/pid")" || true ;;
    esac
    ;;
  *)
    echo "usage: cluster.sh start|stop|status|node DIR ..." >&2
    exit 2
    ;;
esac
