#!/usr/bin/env bash
# Builds every fuzz target and runs each for a few seconds from the committed seeds; fails if
# any target crashes (a panic, a failed invariant, a hang past 10 s or over 2 GiB of memory).
#
#   fuzz/smoke.sh [SECONDS]        # seconds per target: the argument, else $FUZZ_SECONDS, else 20
#
# Needs only rustup's stable toolchain: cargo-fuzz is installed if missing, and the targets
# run without a sanitizer (the code under test forbids `unsafe`; set FUZZ_SANITIZER=address
# to build with AddressSanitizer, which stable rustc allows only with RUSTC_BOOTSTRAP=1).
# Each run grows a scratch corpus in fuzz/corpus/<target>/ (ignored by git); a crash leaves
# its input in fuzz/artifacts/<target>/ and the script prints how to reproduce it.
set -euo pipefail

seconds="${1:-${FUZZ_SECONDS:-20}}"
cd "$(dirname "$0")"
. ./prepare.sh

cargo fuzz build --sanitizer "$sanitizer"

passed=0
failed=0
failures=()
for target in $(cargo fuzz list); do
    mkdir -p "corpus/$target" "artifacts/$target"
    echo "fuzz: $target for ${seconds}s"
    if cargo fuzz run --sanitizer "$sanitizer" "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"artifacts/$target/smoke.log" 2>&1; then
        grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec)' \
            "artifacts/$target/smoke.log" | sed "s/^/fuzz: $target: /" || true
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failures+=("$target")
        echo "fuzz: $target FAILED; the end of its log:"
        tail -n 60 "artifacts/$target/smoke.log"
        for input in "artifacts/$target"/crash-* "artifacts/$target"/oom-* \
            "artifacts/$target"/timeout-*; do
            [ -e "$input" ] || continue
            echo "fuzz: reproduce with: (cd fuzz && cargo fuzz run --sanitizer $sanitizer $target $input)"
        done
    fi
done

if [ "$failed" -gt 0 ]; then
    echo "fuzz: failed: ${failures[*]}"
fi
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
