#!/usr/bin/env bash
# run.sh — runs every libFuzzer harness of a PD_FUZZ build for SECONDS each (docs/testing.md
# "Fuzzing"), starting from the seed corpus in tests/fuzz/corpus/<name>/ (read only) and
# writing what it finds to WORK/<name>/ (new corpus entries) and WORK/crashes/. Prints one line
# per harness with its executions and their rate as each finishes; exits 1 if any harness found a
# crash, a leak, a timeout or an out-of-memory input (libFuzzer's limits below are the resource
# rule of docs/testing.md). FUZZ_JOBS harnesses run side by side (default 1; `make fuzz-smoke`
# runs 2, one per core of the CI runner).
#   tests/fuzz/run.sh BUILD_DIR SECONDS [WORK] [HARNESS...]     (default: all harnesses)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:?usage: run.sh BUILD_DIR SECONDS [WORK] [HARNESS...]}" && pwd)
SECS=${2:?seconds per harness}
WORK=${3:-$BUILD/fuzz-work}
JOBS=${FUZZ_JOBS:-1}
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

# fuzz_one NAME: one harness for SECS; prints its line and leaves "RC RUNS" in WORK/NAME.result.
fuzz_one() {
    local name=$1 exe="$BUILD/$1" seeds="$ROOT/tests/fuzz/corpus/${1#fuzz_}" log="$WORK/$1.log"
    local result="$WORK/$name.result"
    if [ ! -x "$exe" ]; then
        echo "fuzz $name: not built ($exe)"
        echo "1 0" >"$result"
        return
    fi
    mkdir -p "$WORK/$name"
    # Limits: 2 GB RSS, 512 MB in one allocation, 10 s per input (an input that needs more is a
    # finding: its size would not justify it).
    "$exe" "$WORK/$name" "$seeds" -max_total_time="$SECS" -rss_limit_mb=2048 \
        -malloc_limit_mb=512 -timeout=10 -max_len=131072 -print_final_stats=1 \
        -artifact_prefix="$WORK/crashes/$name-" >"$log" 2>&1
    local rc=$?
    local runs secs
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    runs=${runs:-0}
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    secs=${secs:-$SECS}
    if [ $rc -eq 0 ]; then
        echo "fuzz $name: ok, $runs executions in $secs s ($((runs / (secs > 0 ? secs : 1))) per second)"
    else
        { echo "fuzz $name: FAILED (exit $rc) after $runs executions; see $log"
          grep -E "^==[0-9]+==ERROR|SUMMARY|runtime error|Test unit written" "$log" | head -5; } |
            sed 's/^/  /; 1s/^  //'
    fi
    echo "$rc $runs" >"$result"
}

for name in "${names[@]}"; do
    rm -f "$WORK/$name.result"
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
    fuzz_one "$name" &
done
wait
failed=0
total=0
for name in "${names[@]}"; do
    read -r rc runs <"$WORK/$name.result" || { rc=1; runs=0; }
    total=$((total + runs))
    [ "$rc" = 0 ] || failed=1
done
echo "fuzz: $total executions over ${#names[@]} harnesses, $([ $failed = 0 ] && echo 'no findings' || echo 'FINDINGS')"
exit $failed
