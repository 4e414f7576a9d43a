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

. "$(dirname "${BASH_SOURCE[0]}")/testutil.sh"
need_fashion_mnist train
e2e_init e2e_train.sh "$@"
CFG=$SRC/configs/train/tiny.yaml
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2

N=480
# 1. Uninterrupted reference run.
if "$PD" train --config "$CFG" --out A --duration $N --quiet >a.out 2>&1 && [ -f A/model.safetensors ]
then ok "uninterrupted run of $N images"; else bad "uninterrupted run" a.out; fi

# 2. The same run, SIGKILLed at random moments (during steps, checkpoint writes, start-up) and
#    resumed until it finishes: the first kill after 1 s, then after 0.4-0.9 s.
train_delay() { if [ "$1" -eq 1 ]; then DELAY=1.0; else DELAY="0.$((RANDOM % 6 + 4))"; fi; }
kill_resume B/model.safetensors B/checkpoint.safetensors 41 train_delay b.out \
    "$PD" train --config "$CFG" --out B --duration $N --quiet
if [ -f B/model.safetensors ] && cmp -s A/model.safetensors B/model.safetensors; then
    ok "killed $kills times with SIGKILL and resumed: model bit-identical to the uninterrupted run"
else bad "kill -9 and resume: models differ (after $kills kills)" b.out; fi
expect_no_tmp B

# 3. Ctrl-C: a checkpoint is written and the run continues from it.
expect_sigint C/checkpoint.safetensors c.out "$PD" train --config "$CFG" --out C --duration 100000
expect_error "refuses to overwrite a checkpoint without --resume" "already exists.*--resume" \
    "$PD" train --config "$CFG" --out C --duration 100000
if "$PD" train --config "$CFG" --out C --duration 400 --resume --quiet >c2.out 2>&1 &&
    [ -f C/model.safetensors ]; then ok "resume after SIGINT"; else bad "resume after SIGINT" c2.out; fi

# 4. Export from a checkpoint, and errors.
if "$PD" train --export E.safetensors --checkpoint C/checkpoint.safetensors --quiet >e.out 2>&1 &&
    "$PD" info E.safetensors >info.out 2>&1 && grep -q "sneaker" info.out
then ok "export from a checkpoint gives a model info reads (with class names)"
else bad "export from a checkpoint" e.out; fi
expect_error "a checkpoint given as the model says what it is and how to export" \
    "checkpoint.safetensors: not a model: it is a training checkpoint \\(export" \
    "$PD" sample --model C/checkpoint.safetensors --n 1 --out x.png
expect_error "--resume without a checkpoint" "no checkpoint at" \
    "$PD" train --config "$CFG" --out D --resume
expect_error "missing config file" "nope.yaml" "$PD" train --config nope.yaml --out D
printf 'training:\n  batch: 8\n  bacht: 2\n' >bad.yaml
expect_error "unknown YAML key names file, line and key" "bad.yaml:3.*unknown key 'bacht'" \
    "$PD" train --config bad.yaml --out D
head -c 1000 C/checkpoint.safetensors >bad.safetensors
expect_error "truncated checkpoint" "bad.safetensors" \
    "$PD" train --export X.safetensors --checkpoint bad.safetensors

e2e_finish
