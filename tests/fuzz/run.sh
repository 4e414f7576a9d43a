#!/usr/bin/env bash
# run.sh — runs every libFuzzer harness of a PD_FUZZ build for SECONDS each (docs/testing.md
# "Fuzzing"), starting from the seed corpus in tests/fuzz/corpus/<name>/ (read only) and
# writing what it finds to WORK/<name>/ (new corpus entries) and WORK/crashes/. Prints one line
# per harness with its executions; exits 1 if any harness found a crash, a leak, a timeout or an
# out-of-memory input (libFuzzer's limits below are the resource rule of docs/testing.md).
#   tests/fuzz/run.sh BUILD_DIR SECONDS [WORK] [HARNESS...]     (default: all harnesses)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:?usage: run.sh BUILD_DIR SECONDS [WORK] [HARNESS...]}" && pwd)
SECS=${2:?seconds per harness}
WORK=${3:-$BUILD/fuzz-work}
shift $(( $# < 3 ? $# : 3 ))
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for f in "$ROOT"/tests/fuzz/fuzz_*.c; do names+=("$(basename "$f" .c)"); done
fi
mkdir -p "$WORK/crashes"
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export PD_FUZZ_DIR=${PD_FUZZ_DIR:-$( [ -w /dev/shm ] && echo /dev/shm || echo "$WORK")}
failed=0
total=0
for name in "${names[@]}"; do
    exe="$BUILD/$name"
    seeds="$ROOT/tests/fuzz/corpus/${name#fuzz_}"
    [ -x "$exe" ] || { echo "$name: not built ($exe)"; failed=1; continue; }
    mkdir -p "$WORK/$name"
    log="$WORK/$name.log"
    # Limits: 2 GB RSS, 512 MB in one allocation, 10 s per input (an input that needs more is a
    # finding: its size would not justify it).
    "$exe" "$WORK/$name" "$seeds" -max_total_time="$SECS" -rss_limit_mb=2048 \
        -malloc_limit_mb=512 -timeout=10 -max_len=131072 -print_final_stats=1 \
        -artifact_prefix="$WORK/crashes/$name-" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    total=$((total + ${runs:-0}))
    if [ $rc -eq 0 ]; then
        echo "fuzz $name: ok, ${runs:-0} executions in ${SECS} s"
    else
        echo "fuzz $name: FAILED (exit $rc) after ${runs:-0} executions; see $log"
        grep -E "^==[0-9]+==ERROR|SUMMARY|runtime error|Test unit written" "$log" | head -5
        failed=1
    fi
done
echo "fuzz: $total executions over ${#names[@]} harnesses, $([ $failed = 0 ] && echo 'no findings' || echo 'FINDINGS')"
exit $failed
