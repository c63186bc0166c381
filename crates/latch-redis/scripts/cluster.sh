#!/usr/bin/env bash
# A 3-node Redis Cluster on 127.0.0.1:7001-7003 for latch-redis's cluster tests.
#
#   cluster.sh start   start the nodes (if not running), form the cluster (if not
#                      formed), wait for cluster_state:ok, and print the value for
#                      LATCH_REDIS_CLUSTER_URLS on stdout (progress goes to stderr):
#                        export LATCH_REDIS_CLUSTER_URLS=$(bash cluster.sh start)
#   cluster.sh stop    shut the nodes down and remove their files.
#
# Idempotent: a running, formed cluster is left alone. Nothing is persisted;
# node files live under $LATCH_REDIS_CLUSTER_DIR (default /tmp/latch-redis-cluster).
set -euo pipefail

PORTS=(7001 7002 7003)
HOST=127.0.0.1
BASE="${LATCH_REDIS_CLUSTER_DIR:-/tmp/latch-redis-cluster}"

say() { echo "cluster.sh: $*" >&2; }
cli() { redis-cli -h "$HOST" -p "$1" "${@:2}"; }
up() { [ "$(cli "$1" ping 2>/dev/null)" = "PONG" ]; }
state_ok() { cli "$1" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; }

urls() {
  local out=() port
  for port in "${PORTS[@]}"; do out+=("redis://$HOST:$port/"); done
  (IFS=,; echo "${out[*]}")
}

wait_until() { # wait_until SECONDS WHAT COMMAND...
  local i
  for ((i = 0; i < $1 * 4; i++)); do
    if "${@:3}"; then return 0; fi
    sleep 0.25
  done
  say "$2 did not happen within $1 s"
  return 1
}

start_node() {
  local port=$1 dir="$BASE/$1"
  if up "$port"; then
    if ! cli "$port" info cluster | grep -q '^cluster_enabled:1'; then
      say "port $port is taken by a Redis that is not cluster-enabled; stop it first"
      exit 1
    fi
    return 0
  fi
  mkdir -p "$dir"
  redis-server --port "$port" --bind "$HOST" --daemonize yes \
    --cluster-enabled yes --cluster-config-file "$dir/nodes.conf" \
    --cluster-node-timeout 5000 --dir "$dir" --save "" --appendonly no \
    --logfile "$dir/redis.log" --pidfile "$dir/redis.pid"
  wait_until 15 "node $port answering" up "$port"
}

all_ok() {
  local port
  for port in "${PORTS[@]}"; do state_ok "$port" || return 1; done
}

start() {
  command -v redis-server >/dev/null || { say "redis-server is not installed"; exit 1; }
  local port
  for port in "${PORTS[@]}"; do start_node "$port"; done
  if ! all_ok || ! formed_of_ours; then
    # Nodes left behind by an earlier run (a half-formed cluster, a node
    # that restarted alone, test keys in db 0) cannot join a new cluster:
    # `--cluster create` refuses any node that is not empty. They only ever
    # hold throw-away test data, so wipe and reset them first.
    for port in "${PORTS[@]}"; do reset_node "$port"; done
    local nodes=()
    for port in "${PORTS[@]}"; do nodes+=("$HOST:$port"); done
    say "forming the cluster"
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >&2 || {
      say "could not form the cluster; try: $0 stop && $0 start"
      exit 1
    }
  fi
  wait_until 30 "cluster_state:ok on every node" all_ok
  say "cluster is up"
  urls
}

# A formed cluster counts as ours only if it is exactly our three masters.
formed_of_ours() {
  local known
  known=$(cli "${PORTS[0]}" cluster nodes 2>/dev/null | grep -c master || true)
  [ "$known" = "${#PORTS[@]}" ]
}

reset_node() {
  say "resetting node $1"
  cli "$1" flushall >/dev/null
  cli "$1" cluster reset hard >/dev/null
}

stop() {
  local port
  for port in "${PORTS[@]}"; do
    if up "$port"; then cli "$port" shutdown nosave >/dev/null 2>&1 || true; fi
  done
  for port in "${PORTS[@]}"; do
    wait_until 10 "node $port stopping" bash -c "! redis-cli -h $HOST -p $port ping >/dev/null 2>&1"
  done
  rm -rf "$BASE"
  say "cluster stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
