#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for a given time each, one after another, and
# prints per target: executions, coverage (libFuzzer's `cov:`, edges), crashes, peak RSS
# (`rss:`) and CPU seconds. Exits non-zero when any target crashed; crash inputs are kept.
#
#   fuzz/long-run.sh [SECONDS] [TARGET...]     # SECONDS per target, default 1800
#
# Each target grows a scratch corpus in fuzz/corpus/long-<target>/ (ignored by git), made
# fresh for the run and seeded from fuzz/seeds/<target>/, which libFuzzer only reads (it
# writes new inputs to the first directory it is given, the scratch one). A crash leaves its
# input in fuzz/artifacts/<target>/ and the target's log in fuzz/artifacts/long-<target>.log.
# Runs at `nice -n ${FUZZ_NICE:-10}`; FUZZ_SANITIZER as for smoke.sh (default none).
set -euo pipefail

seconds="${1:-1800}"
shift || true
niceness="${FUZZ_NICE:-10}"
cd "$(dirname "$0")"
. ./prepare.sh

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi
cargo fuzz build --sanitizer "$sanitizer"

# Crash inputs in a target's artifacts directory.
found() {
    find "$1" -maxdepth 1 \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' \) | sort
}

failed=()
rows=()
for target in "${targets[@]}"; do
    corpus="corpus/long-$target"
    artifacts="artifacts/$target"
    rm -rf "$corpus"
    mkdir -p "$corpus" "$artifacts"
    # Beside the artifacts directory, not in it: cargo fuzz shows the newest file there
    # after a crash, taking it for the input.
    log="artifacts/long-$target.log"
    times="artifacts/long-$target.time"
    before=$(found "$artifacts")
    echo "fuzz: $target for ${seconds}s"
    status=0
    /usr/bin/time -f '%U %S' -o "$times" nice -n "$niceness" \
        cargo fuzz run --sanitizer "$sanitizer" "$target" "$corpus" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1 || status=$?
    after=$(found "$artifacts")
    new=$(comm -13 <(echo "$before") <(echo "$after") | sed '/^$/d')
    crashes=$(printf '%s' "$new" | grep -c . || true)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1 || true)
    peak=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1 || true)
    # The last status line libFuzzer printed: "#N ... cov: C ft: F corp: ... rss: R" (none
    # when it failed on the seeds).
    cov=$( (grep -oE 'cov: [0-9]+' "$log" || true) | tail -n 1 | cut -d' ' -f2)
    rss=$( (grep -oE 'rss: [0-9]+Mb' "$log" || true) | tail -n 1 | cut -d' ' -f2)
    cpu=$(awk '{ printf "%.0f", $1 + $2 }' "$times" 2>/dev/null || echo "?")
    if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then
        # Ended badly without leaving an input (a build error, a signal): a failure too.
        crashes="?"
    fi
    row="$target: executions ${execs:-?}, coverage ${cov:-?} edges, crashes $crashes, peak RSS ${peak:-${rss:-?}} MB, CPU ${cpu} s"
    rows+=("$row")
    echo "fuzz: $row"
    if [ "$status" -ne 0 ] || [ "$crashes" != 0 ]; then
        failed+=("$target")
        echo "fuzz: $target FAILED (exit $status); the end of its log:"
        tail -n 40 "$log"
        for input in $new; do
            echo "fuzz: kept $input; reproduce with:" \
                "(cd fuzz && cargo fuzz run --sanitizer $sanitizer $target $input)"
        done
    fi
done

echo "fuzz: summary, ${seconds}s per target:"
printf 'fuzz:   %s\n' "${rows[@]}"
echo "fuzz: $((${#targets[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
[ "${#failed[@]}" -eq 0 ]
