#!/usr/bin/env bash
# A SockJS cluster on this machine: redis-server, CLUSTER_NODES test server nodes and a load
# balancer in front of them, all on 127.0.0.1.
#
#   deploy/local-cluster.sh up           # start everything (installs what is missing)
#   deploy/local-cluster.sh down         # stop everything, each process by its recorded PID
#   deploy/local-cluster.sh status       # which recorded processes are alive
#   deploy/local-cluster.sh kill-node I  # SIGKILL node I (1-based), as a crash would
#   deploy/local-cluster.sh start-node I # start node I again
#   deploy/local-cluster.sh restart-redis  # stop redis-server and start it again, same port
#
# Node i (1..CLUSTER_NODES) listens on CLUSTER_PORT + i, the load balancer on CLUSTER_PORT.
# Env: CLUSTER_NODES (3), CLUSTER_PORT (8090), CLUSTER_LB (nginx | haproxy; default nginx),
#      CLUSTER_REDIS_PORT (6379), CLUSTER_STATE (state dir: configs, PID files, logs; default
#      <target dir>/cluster), CLUSTER_SERVER_BIN (the sockjs-testserver binary; default
#      <target dir>/release/sockjs-testserver, built with `cargo build --release` when
#      missing), CLUSTER_SOCKJS_URL (the nodes' --sockjs-url), CLUSTER_REDIS (1: start nodes
#      with --redis; default 1 when the test server has that flag), CLUSTER_NODE_ARGS (more
#      flags for every node), CLUSTER_NO_INSTALL=1 (never run apt-get).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
nodes=${CLUSTER_NODES:-3}
port=${CLUSTER_PORT:-8090}
lb=${CLUSTER_LB:-nginx}
redis_port=${CLUSTER_REDIS_PORT:-6379}
[[ "$nodes" =~ ^[1-9][0-9]?$ ]] || { echo "CLUSTER_NODES must be 1..99"; exit 2; }
if ! [[ "$port" =~ ^[0-9]+$ ]] || [ "$port" -lt 1024 ] || [ $((port + nodes)) -gt 65535 ]; then
  echo "bad CLUSTER_PORT: $port"
  exit 2
fi
case "$lb" in nginx | haproxy) ;; *) echo "CLUSTER_LB must be nginx or haproxy"; exit 2 ;; esac

target_dir() {
  if [ -n "${CARGO_TARGET_DIR:-}" ]; then
    echo "$CARGO_TARGET_DIR"
  else
    echo "$repo/target"
  fi
}
state=${CLUSTER_STATE:-$(target_dir)/cluster}
server_bin=${CLUSTER_SERVER_BIN:-$(target_dir)/release/sockjs-testserver}

log() { echo "local-cluster: $*"; }

# ---- installing
install_missing() { # command package...
  local cmd=$1
  shift
  command -v "$cmd" >/dev/null && return 0
  [ "${CLUSTER_NO_INSTALL:-0}" != 1 ] || { log "$cmd is missing (CLUSTER_NO_INSTALL=1)"; return 1; }
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { log "$cmd is missing and there is no sudo to install $*"; return 1; }
    sudo="sudo"
  fi
  log "installing $* (apt-get)"
  if [ ! -f "$state/.apt-updated" ]; then
    $sudo apt-get -o DPkg::Lock::Timeout=300 update -qq && touch "$state/.apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    --no-install-recommends "$@" >/dev/null
  command -v "$cmd" >/dev/null || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null
}

# nginx and redis live in /usr/sbin on Debian, not always on a user's PATH.
export PATH="$PATH:/usr/sbin:/sbin"

# ---- processes: one PID file each, in the state dir
pidfile() { echo "$state/$1.pid"; }
alive() { # name -> true if its recorded process runs
  local f pid
  f=$(pidfile "$1")
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

# Stops the recorded process NAME: SIGTERM, up to 5 s, then SIGKILL.
stop() {
  local name=$1 f pid i
  f=$(pidfile "$name")
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name (pid $pid) did not stop in 5 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$f"
}

# Starts `"$@"` in the background with its output in $state/NAME.log; records its PID.
start() {
  local name=$1
  shift
  "$@" >>"$state/$name.log" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
}

# Waits up to SECONDS for 127.0.0.1:PORT to accept connections while NAME runs.
wait_port() { # name port seconds
  local name=$1 p=$2 i
  for ((i = 0; i < $3 * 10; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      return 0
    fi
    alive "$name" || { log "$name exited; its log:"; tail -n 20 "$state/$name.log"; return 1; }
    sleep 0.1
  done
  log "$name does not accept connections on 127.0.0.1:$p after $3 s; its log:"
  tail -n 20 "$state/$name.log"
  return 1
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---- redis
start_redis() {
  port_free "$redis_port" || { log "127.0.0.1:$redis_port is taken (CLUSTER_REDIS_PORT)"; return 1; }
  mkdir -p "$state/redis"
  start redis redis-server --bind 127.0.0.1 --port "$redis_port" --protected-mode yes \
    --save "" --appendonly no --dir "$state/redis" --daemonize no
  wait_port redis "$redis_port" 10
  log "redis-server on 127.0.0.1:$redis_port (pid $(cat "$(pidfile redis)"))"
}

# ---- nodes
has_flag() {
  local usage
  usage=$("$server_bin" --help 2>&1 || true)
  [[ "$usage" == *"$1"* ]]
}

start_node() {
  local i=$1 p args=()
  p=$((port + i))
  port_free "$p" || { log "127.0.0.1:$p is taken"; return 1; }
  args=(--host 127.0.0.1 --port "$p")
  [ -z "${CLUSTER_SOCKJS_URL:-}" ] || args+=(--sockjs-url "$CLUSTER_SOCKJS_URL")
  if has_flag --node-id; then args+=(--node-id "node$i"); fi
  if [ "${CLUSTER_REDIS:-auto}" = 1 ] || { [ "${CLUSTER_REDIS:-auto}" = auto ] && has_flag --redis; }; then
    args+=(--redis "redis://127.0.0.1:$redis_port")
  fi
  # shellcheck disable=SC2206 # CLUSTER_NODE_ARGS is a list of flags, split on spaces
  args+=(${CLUSTER_NODE_ARGS:-})
  echo "${args[*]}" >"$state/node$i.args"
  start "node$i" env RUST_LOG="${RUST_LOG:-warn,sockjs=debug}" "$server_bin" "${args[@]}"
  wait_port "node$i" "$p" 15
  log "node$i on 127.0.0.1:$p (pid $(cat "$(pidfile "node$i")")): ${args[*]}"
}

# ---- the load balancer: the config in deploy/, with this cluster's nodes and port
node_lines() { # nginx | haproxy
  local i
  for ((i = 1; i <= nodes; i++)); do
    if [ "$1" = nginx ]; then
      echo "        server 127.0.0.1:$((port + i)) max_fails=1 fail_timeout=10s;"
    else
      echo "    server node$i 127.0.0.1:$((port + i))"
    fi
  done
}

render() { # template out nginx|haproxy
  local lines
  lines=$(node_lines "$3")
  awk -v lines="$lines" -v port="$port" '
    /# nodes: begin/ { print; print lines; skip = 1; next }
    /# nodes: end/ { skip = 0 }
    skip { next }
    { sub(/127\.0\.0\.1:8090;/, "127.0.0.1:" port ";"); sub(/bind 127\.0\.0\.1:8090$/, "bind 127.0.0.1:" port); print }
  ' "$1" >"$2"
}

start_lb() {
  port_free "$port" || { log "127.0.0.1:$port is taken (CLUSTER_PORT)"; return 1; }
  if [ "$lb" = nginx ]; then
    local prefix="$state/nginx"
    mkdir -p "$prefix/logs" "$prefix/temp"
    render "$repo/deploy/nginx/nginx.conf" "$prefix/nginx.conf" nginx
    local g="daemon off; pid $prefix/nginx.pid; error_log $prefix/logs/error.log info;"
    # Run as root, nginx's workers run as nobody, and write large request bodies to temp/:
    # if nobody cannot reach the state dir, they run as root (on 127.0.0.1 only).
    if [ "$(id -u)" -eq 0 ]; then
      mkdir -p "$prefix/temp/body"
      chown -R nobody "$prefix/temp"
      if ! runuser -u nobody -- test -w "$prefix/temp/body" 2>/dev/null; then
        log "user nobody cannot write to $prefix/temp: nginx workers run as root"
        g="$g user root;"
      fi
    fi
    nginx -t -q -p "$prefix/" -c "$prefix/nginx.conf" -g "$g"
    start nginx nginx -p "$prefix/" -c "$prefix/nginx.conf" -g "$g"
  else
    render "$repo/deploy/haproxy/haproxy.cfg" "$state/haproxy.cfg" haproxy
    haproxy -c -q -f "$state/haproxy.cfg"
    # -db: in the foreground, so its PID is ours to record and its log (stdout) is ours.
    start haproxy haproxy -db -f "$state/haproxy.cfg"
  fi
  wait_port "$lb" "$port" 10
  log "$lb on 127.0.0.1:$port (pid $(cat "$(pidfile "$lb")"))"
}

ensure_server_bin() {
  [ -x "$server_bin" ] && return 0
  [ -z "${CLUSTER_SERVER_BIN:-}" ] || { log "CLUSTER_SERVER_BIN $server_bin is not executable"; return 1; }
  log "building the test server: cargo build --release -p sockjs-testserver"
  (cd "$repo" && cargo build --release -q -p sockjs-testserver)
}

up() {
  mkdir -p "$state"
  for name in redis nginx haproxy $(seq -f 'node%g' 1 "$nodes"); do
    alive "$name" && { log "$name already runs (pid $(cat "$(pidfile "$name")")); run down first"; exit 1; }
  done
  local p
  for p in "$redis_port" $(seq "$port" $((port + nodes))); do
    port_free "$p" || { log "127.0.0.1:$p is taken"; exit 1; }
  done
  rm -f "$state"/*.log "$state"/nginx/logs/*.log
  echo "$nodes" >"$state/nodes"
  echo "$port" >"$state/port"
  echo "$redis_port" >"$state/redis_port"
  echo "$lb" >"$state/lb"
  install_missing redis-server redis-server
  if [ "$lb" = nginx ]; then install_missing nginx nginx-light; else install_missing haproxy haproxy; fi
  ensure_server_bin
  # Whatever fails from here on (set -e), or an interrupt, stops what was started.
  trap 'log "up failed; stopping what was started"; down' EXIT
  trap 'exit 130' INT TERM
  start_redis
  for ((i = 1; i <= nodes; i++)); do start_node "$i"; done
  start_lb
  trap - EXIT INT TERM
  log "up: http://127.0.0.1:$port ($lb, $nodes nodes, state in $state)"
}

down() {
  local name f
  [ -d "$state" ] || return 0
  stop nginx
  stop haproxy
  for f in "$state"/node*.pid; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .pid)
    stop "$name"
  done
  stop redis
}

status() {
  local f name rc=0
  for f in "$state"/*.pid; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .pid)
    if alive "$name"; then echo "$name: running (pid $(cat "$f"))"; else echo "$name: dead"; rc=1; fi
  done
  return "$rc"
}

node_index() {
  if ! [[ "${1:-}" =~ ^[0-9]+$ ]] || [ "$1" -lt 1 ] || [ "$1" -gt "$nodes" ]; then
    echo "node index must be 1..$nodes"
    exit 2
  fi
}

# Every command but `up` uses the settings `up` recorded, unless given again.
if [ "${1:-}" != up ]; then
  [ ! -f "$state/nodes" ] || [ -n "${CLUSTER_NODES:-}" ] || nodes=$(cat "$state/nodes")
  [ ! -f "$state/port" ] || [ -n "${CLUSTER_PORT:-}" ] || port=$(cat "$state/port")
  [ ! -f "$state/redis_port" ] || [ -n "${CLUSTER_REDIS_PORT:-}" ] || redis_port=$(cat "$state/redis_port")
  [ ! -f "$state/lb" ] || [ -n "${CLUSTER_LB:-}" ] || lb=$(cat "$state/lb")
fi

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  kill-node)
    node_index "${2:-}"
    pid=$(cat "$(pidfile "node$2")")
    kill -KILL "$pid"
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$(pidfile "node$2")"
    log "killed node$2 (pid $pid)"
    ;;
  start-node)
    node_index "${2:-}"
    alive "node$2" && { log "node$2 already runs"; exit 1; }
    start_node "$2"
    ;;
  restart-redis)
    stop redis
    start_redis
    ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 2
    ;;
esac
