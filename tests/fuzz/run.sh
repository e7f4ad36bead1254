#!/bin/sh
# Runs every libFuzzer target BIN_DIR/fuzz_* for $FUZZ_SECONDS seconds (default 5: the short pass of
# make test; make fuzz gives 60) on its seed corpus, after replaying every crash regression input of
# tests/fuzz/regressions/<target>/. New inputs go to build/fuzz/corpus-<target>, crashes to
# build/fuzz/crashes/<target>/, never into the committed seeds. One line per target, then the total line
# "N passed, N failed". $FUZZ_ONLY (names without fuzz_, space-separated) runs only those targets.
set -u
cd "$(dirname "$0")/../.."

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
    echo "usage: $0 BIN_DIR (the FUZZ=1 build's bin directory)" >&2
    exit 2
fi
bin_dir=$1
seconds=${FUZZ_SECONDS:-5}
work=build/fuzz
# A property failure aborts; leaks and UB are crashes too.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:halt_on_error=1"

passed=0
failed=0
for t in "$bin_dir"/fuzz_*; do
    [ -f "$t" ] && [ -x "$t" ] || continue
    name=$(basename "$t")
    short=${name#fuzz_}
    if [ -n "${FUZZ_ONLY:-}" ]; then
        case " $FUZZ_ONLY " in *" $short "*) ;; *) continue ;; esac
    fi
    corpus=$work/corpus-$short
    crashes=$work/crashes/$short
    log=$work/log-$short.txt
    mkdir -p "$corpus" "$crashes"
    dict=""
    [ -f "tests/fuzz/$short.dict" ] && dict="-dict=tests/fuzz/$short.dict"

    # Every input that once crashed this target must now pass.
    regress_fail=0
    nregress=0
    if [ -d "tests/fuzz/regressions/$short" ]; then
        for r in "tests/fuzz/regressions/$short"/*; do
            [ -f "$r" ] || continue
            nregress=$((nregress + 1))
            if ! "$t" -runs=1 "$r" >"$log.regress" 2>&1; then
                regress_fail=$((regress_fail + 1))
                echo "!! $name: regression input $r fails again:"
                tail -n 20 "$log.regress"
            fi
        done
        rm -f "$log.regress"
    fi

    before=$(ls "$crashes" | wc -l)
    # shellcheck disable=SC2086
    "$t" "$corpus" "tests/fuzz/corpus/$short" $dict -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$crashes/" >"$log" 2>&1
    rc=$?
    after=$(ls "$crashes" | wc -l)
    new=$((after - before))
    stats=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1)
    cov=$(echo "$stats" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$stats" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    if [ "$rc" -eq 0 ] && [ "$new" -eq 0 ] && [ "$regress_fail" -eq 0 ]; then
        verdict=PASS
        passed=$((passed + 1))
    else
        verdict=FAIL
        failed=$((failed + 1))
    fi
    printf '%s %-16s %4ss  runs %-10s exec/s %-7s cov %-5s ft %-6s new crashes %s  regressions %s/%s\n' \
        "$verdict" "$name" "$seconds" "${runs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$new" \
        $((nregress - regress_fail)) "$nregress"
    if [ "$verdict" = FAIL ] && [ "$rc" -ne 0 ]; then
        echo "!! $name exited with status $rc; the end of $log:"
        tail -n 30 "$log"
        ls "$crashes"
    fi
done

if [ $((passed + failed)) -eq 0 ]; then
    echo "fuzz: no fuzz_* targets in $bin_dir" >&2
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
