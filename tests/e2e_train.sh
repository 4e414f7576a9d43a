#!/usr/bin/env bash
# e2e_train.sh — end-to-end tests of `pixdiff train`, run by ctest as
#   bash tests/e2e_train.sh <path-to-pixdiff> <source-dir>
# With configs/train/tiny.yaml on Fashion-MNIST (skipped when the dataset package is missing):
# a run killed with SIGKILL again and again at random moments and resumed each time must end
# with a model bit-identical to an uninterrupted run's; Ctrl-C must leave a resumable checkpoint;
# a second run must refuse to overwrite a checkpoint without --resume; --resume without a
# checkpoint, a missing config and an unknown YAML key must fail with one clear line; export from
# a checkpoint must give a model `pixdiff info` reads. Prints "N passed, M failed".
set -uo pipefail

PD=${1:?usage: e2e_train.sh PIXDIFF SOURCE_DIR}
SRC=${2:?usage: e2e_train.sh PIXDIFF SOURCE_DIR}
PD=$(cd "$(dirname "$PD")" && pwd)/$(basename "$PD")
CFG=$SRC/configs/train/tiny.yaml
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    echo "skipped: Fashion-MNIST is not installed (Debian package dataset-fashion-mnist)"
    exit 0
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/pixdiff-e2e-train.XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T"
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() {
    fail=$((fail + 1))
    echo "FAIL $1"
    if [ -n "${2:-}" ] && [ -f "$2" ]; then sed 's/^/     | /' "$2" | tail -n 8; fi
}
# expect_error NAME PATTERN CMD...: must fail with a stderr line matching PATTERN.
expect_error() {
    local name=$1 pat=$2
    shift 2
    if "$@" >"$T/err.out" 2>&1; then bad "$name (succeeded)" "$T/err.out"
    elif grep -Eq "$pat" "$T/err.out"; then ok "$name"
    else bad "$name (message)" "$T/err.out"; fi
}

N=480
# 1. Uninterrupted reference run.
if "$PD" train --config "$CFG" --out A --duration $N --quiet >a.out 2>&1 && [ -f A/model.safetensors ]
then ok "uninterrupted run of $N images"; else bad "uninterrupted run" a.out; fi

# 2. The same run, SIGKILLed at random moments (during steps, checkpoint writes, start-up) and
#    resumed until it finishes.
kills=0
"$PD" train --config "$CFG" --out B --duration $N --quiet >/dev/null 2>&1 &
pid=$!
sleep 1.0
kill -9 $pid 2>/dev/null && kills=$((kills + 1))
wait $pid 2>/dev/null
for i in $(seq 1 40); do
    [ -f B/model.safetensors ] && break
    # A kill before the first checkpoint leaves nothing to resume: start afresh then.
    R=; [ -f B/checkpoint.safetensors ] && R=--resume
    "$PD" train --config "$CFG" --out B --duration $N $R --quiet >b.out 2>&1 &
    pid=$!
    sleep "0.$((RANDOM % 6 + 4))"
    kill -9 $pid 2>/dev/null && kills=$((kills + 1))
    wait $pid 2>/dev/null
done
if [ ! -f B/model.safetensors ]; then
    R=; [ -f B/checkpoint.safetensors ] && R=--resume
    "$PD" train --config "$CFG" --out B --duration $N $R --quiet >b.out 2>&1
fi
if [ -f B/model.safetensors ] && cmp -s A/model.safetensors B/model.safetensors; then
    ok "killed $kills times with SIGKILL and resumed: model bit-identical to the uninterrupted run"
else bad "kill -9 and resume: models differ (after $kills kills)" b.out; fi
if ls B | grep -q '\.tmp\.'; then bad "stale temporary files left in the run directory"
else ok "no temporary files left behind"; fi

# 3. Ctrl-C: a checkpoint is written and the run continues from it.
"$PD" train --config "$CFG" --out C --duration 100000 >c.out 2>&1 &
pid=$!
sleep 1.5
kill -INT $pid
wait $pid
rc=$?
if [ $rc -ne 0 ] && grep -q "interrupted at" c.out && [ -f C/checkpoint.safetensors ]; then
    ok "SIGINT saves a checkpoint and exits non-zero"
else bad "SIGINT (exit $rc)" c.out; fi
expect_error "refuses to overwrite a checkpoint without --resume" "already exists.*--resume" \
    "$PD" train --config "$CFG" --out C --duration 100000
if "$PD" train --config "$CFG" --out C --duration 400 --resume --quiet >c2.out 2>&1 &&
    [ -f C/model.safetensors ]; then ok "resume after SIGINT"; else bad "resume after SIGINT" c2.out; fi

# 4. Export from a checkpoint, and errors.
if "$PD" train --export E.safetensors --checkpoint C/checkpoint.safetensors --quiet >e.out 2>&1 &&
    "$PD" info E.safetensors >info.out 2>&1 && grep -q "sneaker" info.out
then ok "export from a checkpoint gives a model info reads (with class names)"
else bad "export from a checkpoint" e.out; fi
expect_error "--resume without a checkpoint" "no checkpoint at" \
    "$PD" train --config "$CFG" --out D --resume
expect_error "missing config file" "nope.yaml" "$PD" train --config nope.yaml --out D
printf 'training:\n  batch: 8\n  bacht: 2\n' >bad.yaml
expect_error "unknown YAML key names file, line and key" "bad.yaml:3.*unknown key 'bacht'" \
    "$PD" train --config bad.yaml --out D
head -c 1000 C/checkpoint.safetensors >bad.safetensors
expect_error "truncated checkpoint" "bad.safetensors" \
    "$PD" train --export X.safetensors --checkpoint bad.safetensors

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
