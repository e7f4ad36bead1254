#!/bin/sh
# Runs every unit test binary BIN_DIR/test_*, prints its output, and exits
# non-zero if any failed (or if there is none). The last line is
# "N passed, N failed", counting test binaries.
set -u

if [ $# -ne 1 ]; then
    echo "usage: $0 BIN_DIR" >&2
    exit 2
fi
bin_dir=$1
if [ ! -d "$bin_dir" ]; then
    echo "run-unit: $bin_dir is not a directory" >&2
    exit 2
fi

# A hung test (a socket never closed, a deadlock) must not hang the whole run.
limit=120
runner=""
if command -v timeout >/dev/null 2>&1; then
    runner="timeout $limit"
fi

passed=0
failed=0
failed_names=""
for t in "$bin_dir"/test_*; do
    if [ ! -f "$t" ] || [ ! -x "$t" ]; then
        continue
    fi
    name=$(basename "$t")
    echo "=== $name"
    # shellcheck disable=SC2086
    $runner "$t" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failed_names="$failed_names $name"
        if [ "$rc" -eq 124 ] && [ -n "$runner" ]; then
            echo "=== $name: FAILED (killed after ${limit}s)"
        else
            echo "=== $name: FAILED (exit status $rc)"
        fi
    fi
done

if [ $((passed + failed)) -eq 0 ]; then
    echo "run-unit: no test binaries in $bin_dir" >&2
fi
if [ "$failed" -gt 0 ]; then
    echo "failed:$failed_names"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
