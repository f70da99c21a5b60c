#!/usr/bin/env bash
# The cluster tests: for each load balancer (nginx, then HAProxy), deploy/local-cluster.sh up
# (redis-server, CLUSTER_NODES test server nodes, the load balancer on CLUSTER_PORT), then,
# all through the load balancer:
#
#   1. the SockJS protocol suite (.ci/protocol-suite.sh): latest 68/68 and quirks 1/1;
#   2. sockjs-client in Node and headless Chromium, every transport (e2e/run.sh with
#      SOCKJS_BASE_URL), broadcast between clients on any nodes included: every scenario
#      through the first load balancer; through the others every Node scenario and, in
#      Chromium, CLUSTER_TEST_BROWSER_SCENARIOS (echo,close,broadcast,cookie) unless
#      CLUSTER_TEST_FULL=1;
#   3. deploy/cluster-checks.mjs: sessions each on one node and spread over several;
#      broadcast between clients on nodes proven different; redis-server restarted (broadcast
#      resumes, no node restarted); a node killed (only its sessions close, they reconnect
#      onto a live node, the other sessions lose and repeat nothing);
#
# then local-cluster.sh down. Prints each part's result, then the sum of every part's
# counts as `N passed, N failed` (a part that gives no count counts as one failure); exits 1
# on any failure. Everything started is stopped by its PID, on failure and interrupt too.
#
# Env: CLUSTER_TEST_LBS ("nginx haproxy"), CLUSTER_PORT (8090), CLUSTER_NODES (3),
#      CLUSTER_TEST_PARTS ("suite e2e checks"), CLUSTER_TEST_E2E_SCENARIOS (an E2E_SCENARIOS
#      list for every load balancer and side), CLUSTER_TEST_CHECKS (all of cluster-checks.mjs), CLUSTER_TEST_LOGS
#      (logs; default a new temp dir, kept), CLUSTER_SERVER_BIN (see local-cluster.sh; else
#      the release build in the target dir, built if missing).
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo" || exit 1
lbs=${CLUSTER_TEST_LBS:-nginx haproxy}
parts=${CLUSTER_TEST_PARTS:-suite e2e checks}
export CLUSTER_PORT=${CLUSTER_PORT:-8090}
export CLUSTER_NODES=${CLUSTER_NODES:-3}
logs=${CLUSTER_TEST_LOGS:-$(mktemp -d "${TMPDIR:-/tmp}/cluster-test.XXXXXX")}
mkdir -p "$logs"
target_dir=${CARGO_TARGET_DIR:-$repo/target}
state_base="$target_dir/cluster-test"

passed=0
failed=0
current_state=""

stop_cluster() {
  [ -n "$current_state" ] || return 0
  CLUSTER_STATE=$current_state bash deploy/local-cluster.sh down >>"$logs/cluster.log" 2>&1 || true
  current_state=""
}
trap stop_cluster EXIT
trap 'exit 130' INT TERM

# Adds the counts of the `N passed, N failed` lines of LOG matching PATTERN (an extended
# regex before the counts); none at all counts as one failure.
tally() { # label log pattern
  local label=$1 log=$2 pattern=$3 line p f found=0
  while IFS= read -r line; do
    [[ "$line" =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]] || continue
    p=${BASH_REMATCH[1]}
    f=${BASH_REMATCH[2]}
    passed=$((passed + p))
    failed=$((failed + f))
    found=1
    echo "$label: $line"
  done < <(grep -E "${pattern}[0-9]+ passed, [0-9]+ failed" "$log" || true)
  if [ "$found" = 0 ]; then
    failed=$((failed + 1))
    echo "$label: no result (log $log); its last lines:"
    tail -n 30 "$log"
  fi
}

# The suite's results through load balancer LB (logs in DIR): every test passes but those
# deploy/suite-known-failures.txt lists for LB; those count neither way and are named.
suite_result() { # lb dir
  local lb=$1 dir=$2 known failing unexpected=() fixed=() t total=0 quirks
  known=$(awk -v lb="$lb" '$1 == lb { print $2 }' deploy/suite-known-failures.txt)
  if ! tail -n 1 "$dir/$lb.latest.log" 2>/dev/null | grep -Eq '^[0-9]+ passed, [0-9]+ failed$'; then
    failed=$((failed + 1))
    echo "$lb protocol suite: no result; last lines of $dir/$lb.latest.log:"
    tail -n 20 "$dir/$lb.latest.log" 2>/dev/null
    return
  fi
  failing=$(grep -Eo '^(FAIL|ERROR): [A-Za-z0-9_]+\.test[A-Za-z0-9_]*$' "$dir/$lb.latest.log" | cut -d' ' -f2 | sort -u)
  for t in $failing; do grep -qx "$t" <<<"$known" || unexpected+=("$t"); done
  for t in $known; do grep -qx "$t" <<<"$failing" || fixed+=("$t"); done
  total=$(tail -n 1 "$dir/$lb.latest.log" | awk '{ print $1 + $3 }')
  local n_failing
  n_failing=$(grep -c . <<<"$failing" || true)
  passed=$((passed + total - n_failing))
  failed=$((failed + ${#unexpected[@]}))
  echo "$lb protocol suite latest: $((total - n_failing)) passed, ${#unexpected[@]} failed," \
    "$((n_failing - ${#unexpected[@]})) known failures (deploy/suite-known-failures.txt)"
  [ "${#unexpected[@]}" -eq 0 ] || echo "$lb protocol suite: unexpected failures: ${unexpected[*]}"
  [ "${#fixed[@]}" -eq 0 ] || echo "$lb protocol suite: listed but passed this run: ${fixed[*]}"
  quirks=$(tail -n 1 "$dir/$lb.quirks.log" 2>/dev/null)
  if [[ "$quirks" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    passed=$((passed + BASH_REMATCH[1]))
    failed=$((failed + BASH_REMATCH[2]))
    echo "$lb protocol suite quirks: $quirks"
  else
    failed=$((failed + 1))
    echo "$lb protocol suite quirks: no result"
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

has_part() { [[ " $parts " == *" $1 "* ]]; }

# Builds the release test server once if it is needed and missing.
if [ -z "${CLUSTER_SERVER_BIN:-}" ] && [ ! -x "$target_dir/release/sockjs-testserver" ]; then
  echo "cluster test: cargo build --release -p sockjs-testserver"
  cargo build --release -q -p sockjs-testserver || { echo "0 passed, 1 failed"; exit 1; }
fi
# sockjs-client and playwright-core for e2e and the checks.
stamp=e2e/node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ e2e/package-lock.json -nt "$stamp" ]; then
  (cd e2e && npm ci --no-audit --no-fund) >"$logs/npm.log" 2>&1 || { cat "$logs/npm.log"; echo "0 passed, 1 failed"; exit 1; }
fi

t_all=$SECONDS
for lb in $lbs; do
  t0=$SECONDS
  state="$state_base/$lb"
  rm -rf "$state"
  # The nodes' sockjs_url points at the e2e run's page server (iframe transports).
  page_port=$(free_port)
  echo "== $lb: local-cluster.sh up"
  current_state=$state
  if ! CLUSTER_LB=$lb CLUSTER_STATE=$state CLUSTER_SOCKJS_URL="http://127.0.0.1:$page_port/sockjs.min.js" \
    bash deploy/local-cluster.sh up >"$logs/$lb.up.log" 2>&1; then
    cat "$logs/$lb.up.log"
    failed=$((failed + 1))
    stop_cluster
    continue
  fi
  grep -E 'on 127|up:' "$logs/$lb.up.log"

  if has_part suite; then
    # The suite's host is the load balancer, already running: the host command only says
    # where it listens, and waits to be stopped.
    SUITE_BUILD=0 SUITE_LOG_DIR="$logs/$lb.suite" \
      SUITE_HOSTS="$lb=echo 'listening on 127.0.0.1:$CLUSTER_PORT'; exec sleep 900" \
      timeout -k 10 420 bash .ci/protocol-suite.sh >"$logs/$lb.suite.log" 2>&1
    suite_result "$lb" "$logs/$lb.suite"
  fi

  if has_part e2e; then
    e2e_env=(SOCKJS_BASE_URL="http://127.0.0.1:$CLUSTER_PORT" E2E_PAGE_PORT="$page_port" E2E_LABEL="$lb" E2E_QUIET=1
      E2E_TOTAL_TIMEOUT_MS=400000)
    # The first load balancer gets every scenario on both sides; the others every Node
    # scenario, and in Chromium every transport with the scenarios that exercise routing
    # (the rest test the node, which the first run did through a load balancer already).
    sides=("node browser")
    if [ -n "${CLUSTER_TEST_E2E_SCENARIOS:-}" ]; then
      e2e_env+=(E2E_SCENARIOS="$CLUSTER_TEST_E2E_SCENARIOS")
    elif [ "$lb" != "${lbs%% *}" ] && [ "${CLUSTER_TEST_FULL:-0}" != 1 ]; then
      sides=(node browser)
    fi
    for side in "${sides[@]}"; do
      side_env=(E2E_SIDES="$side")
      if [ "$side" = browser ]; then
        side_env+=(E2E_SCENARIOS="${CLUSTER_TEST_BROWSER_SCENARIOS:-echo,close,broadcast,cookie}")
      fi
      name="$lb.e2e"
      [ "$side" = "node browser" ] || name="$lb.e2e-$side"
      env "${e2e_env[@]}" "${side_env[@]}" timeout -k 10 420 bash e2e/run.sh >"$logs/$name.log" 2>&1
      tally "$lb sockjs-client (${side/ /+})" "$logs/$name.log" "^"
      grep -E 'FAIL' "$logs/$name.log" | grep -v ' 0 failed' | head -n 20
    done
  fi

  if has_part checks; then
    # shellcheck disable=SC2086 # a list of check names
    CLUSTER_STATE=$state timeout -k 10 180 node deploy/cluster-checks.mjs ${CLUSTER_TEST_CHECKS:-} \
      >"$logs/$lb.checks.log" 2>&1
    sed "s/^/$lb /" "$logs/$lb.checks.log" | grep -E "^$lb (pass|FAIL) "
    tally "$lb cluster checks" "$logs/$lb.checks.log" "^"
  fi

  echo "== $lb: local-cluster.sh down"
  stop_cluster
  echo "== $lb: $((SECONDS - t0)) s"
done
echo "cluster test: $((SECONDS - t_all)) s, logs in $logs"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
