#!/bin/sh
# run-suites.sh -- run test binaries one after another and summarise.
#
# usage: tests/run-suites.sh BIN...
# Each binary runs with TOLK_TOP (the repository root, where the harness
# finds tools/tolk-stack and makes tests/tmp/), BUILD (passed through,
# default "build") and CK_FORK=yes. Sanitizer defaults are exported here so
# that every process the tests start, down to the ones supervisord runs,
# inherits them; values already in the environment win.
# Prints one PASS/FAIL line with the duration per binary, then a summary;
# exits 1 if any binary failed.
set -u

if [ $# -eq 0 ]; then
    echo "usage: $0 BIN..." >&2
    exit 2
fi

TOLK_TOP=$(cd "$(dirname "$0")/.." && pwd)
export TOLK_TOP
export BUILD="${BUILD:-build}"
export CK_FORK=yes
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# milliseconds since the epoch (GNU date)
now_ms() {
    date +%s%3N
}

passed=0
failed=0
failed_names=""
total_start=$(now_ms)
for bin in "$@"; do
    start=$(now_ms)
    if [ -x "$bin" ]; then
        "$bin"
        rc=$?
    else
        echo "run-suites: $bin: not an executable" >&2
        rc=127
    fi
    end=$(now_ms)
    secs=$(awk -v ms="$((end - start))" 'BEGIN { printf "%.2f", ms / 1000 }')
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        printf 'PASS  %-50s %8ss\n' "$bin" "$secs"
    else
        failed=$((failed + 1))
        failed_names="$failed_names $bin"
        printf 'FAIL  %-50s %8ss  (exit %d)\n' "$bin" "$secs" "$rc"
    fi
done
total_end=$(now_ms)
secs=$(awk -v ms="$((total_end - total_start))" 'BEGIN { printf "%.2f", ms / 1000 }')
echo "----"
echo "suites: $((passed + failed)), passed: $passed, failed: $failed, time: ${secs}s ($BUILD)"
if [ "$failed" -gt 0 ]; then
    echo "failed:$failed_names"
    exit 1
fi
exit 0
