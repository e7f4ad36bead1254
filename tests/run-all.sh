#!/bin/sh
# make test: unit tests on the normal and the sanitizer builds, then the
# system tests (real Redis, real sockets) against the sanitizer build, so a
# memory error in a service fails the run, then a short pass of every fuzz
# target with its crash regressions. Ends with the total line.
set -u
cd "$(dirname "$0")/.."

# Leaks and UB abort the process with a distinctive exit code the harness checks.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=86}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=87}

total_pass=0
total_fail=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

run() {
    echo "== $*"
    "$@" 2>&1 | tee "$log"
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    if [ -z "$line" ]; then
        echo "!! $1 printed no summary line: counted as one failure"
        total_fail=$((total_fail + 1))
        return
    fi
    total_pass=$((total_pass + $(echo "$line" | cut -d' ' -f1)))
    total_fail=$((total_fail + $(echo "$line" | cut -d' ' -f3)))
}

run tests/run-unit.sh build/bin
run tests/run-unit.sh build/asan/bin
run /usr/bin/python3 tests/system/run.py --bin build/asan/bin
run tests/fuzz/run.sh build/fuzz/bin

echo
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
