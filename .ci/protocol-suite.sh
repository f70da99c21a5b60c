#!/usr/bin/env bash
# Runs the official SockJS protocol suite (`latest`, then `quirks`) against every host: by
# default the release test server on each runtime (tokio, async-std, smol), and the core's
# `event_loop` example where sockjs-core/examples/event_loop.rs exists.
#
#   .ci/protocol-suite.sh [NAME=COMMAND ...]     # each argument adds a host to the list
#
# A host is NAME=COMMAND: a shell command that serves the suite's endpoints on 127.0.0.1:{port}
# ({port} is replaced by a free port) and prints `listening on ADDR` on stdout or stderr once it
# accepts connections. SUITE_HOSTS (one entry a line) replaces the default list; an entry that
# is a bare NAME picks that default host, e.g. SUITE_HOSTS=tokio for the tokio server only.
#
# Every host gets its own port and its own suite work dir, so the hosts run in parallel; the
# first run (the first host's `quirks`) goes alone, so that the suite's virtualenv is created
# once, before anything shares it. Prints one line per run, `NAME VERSION: N passed, N failed`,
# and fails unless every run passed all of the expected tests (68 latest, 1 quirks; override
# with SUITE_EXPECT_LATEST, SUITE_EXPECT_QUIRKS, and SUITE_EXPECT_LATEST_FAILED for known
# failures).
#
# Env: SOCKJS_PROTOCOL_DIR (the suite, default <repo>/../shared/sockjs-protocol; missing: skip),
#      SHARED_DIR (default <repo>/../shared, for tools/run-protocol-suite.sh),
#      SOCKJS_SUITE_WORK (the suite's cache: virtualenvs; default $HOME/.cache/sockjs-protocol-suite),
#      SUITE_LOG_DIR (the logs; default a new temp dir, kept), SUITE_START_TIMEOUT (seconds a
#      host may take to print `listening on`, default 300), SUITE_BUILD=0 (use the built
#      binaries as they are).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
suite_dir=${SOCKJS_PROTOCOL_DIR:-$repo/../shared/sockjs-protocol}
shared_dir=${SHARED_DIR:-$repo/../shared}
runner="$shared_dir/tools/run-protocol-suite.sh"
expect_latest=${SUITE_EXPECT_LATEST:-68}
expect_quirks=${SUITE_EXPECT_QUIRKS:-1}
# Known failures of `latest` (default none).
expect_latest_failed=${SUITE_EXPECT_LATEST_FAILED:-0}
start_timeout=${SUITE_START_TIMEOUT:-300}

if [ ! -d "$suite_dir" ]; then
  echo "protocol suite: $suite_dir does not exist; skipped (set SOCKJS_PROTOCOL_DIR)"
  exit 0
fi
suite_dir=$(cd "$suite_dir" && pwd)
[ -f "$runner" ] || { echo "protocol suite: runner $runner is missing (set SHARED_DIR)"; exit 1; }

target_dir=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
server_bin="$target_dir/release/sockjs-testserver"

# ---- the host list
default_names=(tokio async-std smol)
default_command() {
  case "$1" in
    tokio | async-std | smol) echo "exec '$server_bin' --host 127.0.0.1 --port {port} --runtime $1" ;;
    axum) echo "exec '$server_bin' --host 127.0.0.1 --port {port} --via axum" ;;
    event_loop) echo "exec cargo run --release -q -p sockjs-core --example event_loop -- 127.0.0.1:{port}" ;;
    *) return 1 ;;
  esac
}
[ -f sockjs-core/examples/event_loop.rs ] && default_names+=(event_loop)
# `axum` (the tokio server --via axum) is a default host too, picked by SUITE_HOSTS=axum.

entries=()
if [ -n "${SUITE_HOSTS:-}" ]; then
  while IFS= read -r line; do
    [ -n "${line// /}" ] && entries+=("$line")
  done <<<"$SUITE_HOSTS"
else
  entries=("${default_names[@]}")
fi
entries+=("$@")

names=()
commands=()
for entry in "${entries[@]}"; do
  if [[ "$entry" == *=* ]]; then
    name=${entry%%=*}
    command=${entry#*=}
  else
    name=$entry
    command=$(default_command "$name") || { echo "protocol suite: no default host '$name' (use NAME=COMMAND)"; exit 2; }
  fi
  [[ "$name" =~ ^[A-Za-z0-9_.-]+$ ]] || { echo "protocol suite: bad host name '$name'"; exit 2; }
  for n in "${names[@]}"; do
    [ "$n" != "$name" ] || { echo "protocol suite: host '$name' given twice"; exit 2; }
  done
  names+=("$name")
  commands+=("$command")
done
[ "${#names[@]}" -gt 0 ] || { echo "protocol suite: no hosts"; exit 2; }

# ---- build what the default hosts run, once
if [ "${SUITE_BUILD:-1}" != 0 ]; then
  for name in "${names[@]}"; do
    case "$name" in tokio | async-std | smol | axum) need_server=1 ;; event_loop) need_example=1 ;; esac
  done
  if [ -n "${need_server:-}" ]; then
    echo "protocol suite: cargo build --release -p sockjs-testserver"
    cargo build --release -q -p sockjs-testserver
  fi
  if [ -n "${need_example:-}" ]; then
    echo "protocol suite: cargo build --release -p sockjs-core --example event_loop"
    cargo build --release -q -p sockjs-core --example event_loop
  fi
fi

logs=${SUITE_LOG_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/protocol-suite.XXXXXX")}
mkdir -p "$logs"
cache=${SOCKJS_SUITE_WORK:-$HOME/.cache/sockjs-protocol-suite}
mkdir -p "$cache"

# ---- hosts: each in its own process group, stopped by its PID on exit
pids=()
stop_hosts() {
  local pid i
  for pid in "${pids[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  pids=()
}
trap stop_hosts EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

urls=()
for i in "${!names[@]}"; do
  name=${names[$i]}
  port=$(free_port)
  command=${commands[$i]//\{port\}/$port}
  log="$logs/$name.server.log"
  setsid bash -c "$command" >"$log" 2>&1 </dev/null &
  pid=$!
  pids+=("$pid")
  addr=""
  for ((t = 0; t < start_timeout * 10; t++)); do
    line=$(grep -m 1 -o 'listening on [^ ]*' "$log" 2>/dev/null || true)
    if [ -n "$line" ]; then
      addr=${line#listening on }
      break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$addr" ]; then
    echo "protocol suite: host $name did not print 'listening on' (command: $command); its log:"
    tail -n 40 "$log"
    exit 1
  fi
  # The address it reports, if it is a loopback host:port; else the port it was given.
  [[ "$addr" =~ ^127\.0\.0\.1:[0-9]+$ ]] || addr="127.0.0.1:$port"
  urls+=("http://$addr")
  echo "protocol suite: $name listening on $addr (pid $pid)"
done

# ---- the runs: NAME VERSION, each with its own work dir sharing the cached virtualenvs
run_one() { # name url version -> exit status; writes $logs/NAME.VERSION.log
  local name=$1 url=$2 version=$3 work="$logs/work.$1.$3"
  mkdir -p "$work"
  if [ "${4:-}" = first ]; then
    work=$cache
  else
    ln -sfn "$cache/venv-latest" "$work/venv-latest"
    ln -sfn "$cache/tools" "$work/tools"
  fi
  SOCKJS_SUITE_WORK=$work bash "$runner" "$suite_dir" "$url" "$version" >"$logs/$name.$version.log" 2>&1
}

expected() { if [ "$1" = latest ]; then echo "$expect_latest"; else echo "$expect_quirks"; fi; }
expected_failed() { if [ "$1" = latest ]; then echo "$expect_latest_failed"; else echo 0; fi; }

run_ids=()
declare -A run_pid=()
for i in "${!names[@]}"; do
  for version in latest quirks; do run_ids+=("$i:$version"); done
done

# The first host's quirks run alone: it creates the virtualenv if the cache has none.
first="0:quirks"
run_one "${names[0]}" "${urls[0]}" quirks first || true
if ! tail -n 1 "$logs/${names[0]}.quirks.log" | grep -Eq '^[0-9]+ passed, [0-9]+ failed$' ||
  grep -q 'harness error' "$logs/${names[0]}.quirks.log"; then
  echo "protocol suite: the first run failed to start the suite; its log:"
  cat "$logs/${names[0]}.quirks.log"
  exit 1
fi
for id in "${run_ids[@]}"; do
  [ "$id" != "$first" ] || continue
  i=${id%%:*}
  version=${id#*:}
  run_one "${names[$i]}" "${urls[$i]}" "$version" &
  run_pid[$id]=$!
done
for id in "${!run_pid[@]}"; do
  wait "${run_pid[$id]}" || true
done
stop_hosts

# ---- results
failed=0
for id in "${run_ids[@]}"; do
  i=${id%%:*}
  version=${id#*:}
  name=${names[$i]}
  log="$logs/$name.$version.log"
  result=$(tail -n 1 "$log" 2>/dev/null || true)
  want="$(expected "$version") passed, $(expected_failed "$version") failed"
  if [ "$result" = "$want" ]; then
    echo "$name $version: $result"
  else
    echo "$name $version: ${result:-no result} (expected $want)"
    failed=$((failed + 1))
  fi
done
if [ "$failed" -gt 0 ]; then
  for id in "${run_ids[@]}"; do
    i=${id%%:*}
    version=${id#*:}
    log="$logs/${names[$i]}.$version.log"
    [ "$(tail -n 1 "$log" 2>/dev/null)" = "$(expected "$version") passed, $(expected_failed "$version") failed" ] && continue
    echo
    echo "---- ${names[$i]} $version ($log)"
    grep -E '^(FAIL|ERROR): [A-Za-z0-9_]+\.|harness error|^[0-9]+ passed' "$log" || tail -n 40 "$log"
    echo "---- ${names[$i]} server log, last lines"
    tail -n 10 "$logs/${names[$i]}.server.log"
  done
  echo "protocol suite: $failed of ${#run_ids[@]} runs failed; logs in $logs"
  exit 1
fi
echo "protocol suite: all ${#run_ids[@]} runs passed on ${#names[@]} hosts (logs in $logs)"
