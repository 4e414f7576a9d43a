#!/bin/bash
# side_by_side.sh — issue 17's benchmark: pixdiff against PyTorch on the same networks and
# weights, one process after another on an otherwise idle machine (docs/benchmarks.md, "Speed").
#
#   bash bench/side_by_side.sh EDM_CHECKOUT [OUT_DIR] [THREADS]
#
# EDM_CHECKOUT: an NVlabs/edm checkout (its training/ folder is imported by the PyTorch side only;
# git --git-dir=EDM.git archive HEAD | tar -x -C DIR makes one). OUT_DIR (default
# runs/side-by-side) receives the model files it makes with `pixdiff init` and the training run.
# Needs build/pixdiff and build/bench_nets (make), Debian's python3-torch, and the Fashion-MNIST
# data set for the training step. Runs pixdiff with OpenBLAS's Haswell kernels forced
# (OPENBLAS_CORETYPE=Haswell: "haswell" rows, what the development machines' environment used to
# set) and with OpenBLAS's own kernel choice ("native": OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
# unset for that command only); PyTorch runs in the environment as it is (the header line says
# what that is). Takes about 20 minutes on 2 cores. This VM's speed moves by 15-30 % between runs,
# and between a fast and a slow state within minutes: compare ratios within one run.
set -u
EDM=${1:?usage: side_by_side.sh EDM_CHECKOUT [OUT_DIR] [THREADS]}
OUT=${2:-runs/side-by-side}
T=${3:-2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
P=$ROOT/build/pixdiff
BN=$ROOT/build/bench_nets
NAT="env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE"
HAS="env OPENBLAS_CORETYPE=Haswell"
# pixdiff's layers run on its own worker threads (docs/threads.md), and it sets
# OMP_WAIT_POLICY=passive for its remaining OpenMP loops; PyTorch's threads spin by default, which
# is faster alone and slower beside another process. Every PyTorch figure is taken under both
# policies: compare with the faster (docs/benchmarks.md).
export OMP_WAIT_POLICY=passive   # pixdiff's own default, for bench_nets too
# After a process that held gigabytes exits (PyTorch on ADM: 4.8 GiB), this VM runs the next
# program up to 1.7x slower for about ten seconds (fashion32 at batch 64: 6.3 then 5.0 then 4.0
# ms, the old and new builds alike): every measurement starts after a pause.
settle() { sleep 20; }
torch_both() {
    for policy in default passive; do
        settle
        echo "-- PyTorch, OpenMP wait policy $policy"
        if [ $policy = default ]; then env -u OMP_WAIT_POLICY "$@" 2>&1 | grep -v -i warn
        else OMP_WAIT_POLICY=passive "$@" 2>&1 | grep -v -i warn; fi
    done
}
mkdir -p "$OUT" || exit 1
[ -f "$OUT/cifar10.safetensors" ] || $P init --preset edm-cifar10-ddpmpp --out "$OUT/cifar10.safetensors" || exit 1
[ -f "$OUT/adm.safetensors" ] || $P init --preset edm-imagenet64-adm --out "$OUT/adm.safetensors" || exit 1
# the training config: the default model's, cut to 1,920 images (30 steps; the img/s figure is
# the trainer's rate over its last 16 steps)
sed 's/^  duration_images: .*/  duration_images: 1920/' "$ROOT/configs/train/fashion32.yaml" > "$OUT/train.yaml"

echo "== $(date -u), $(git -C "$ROOT" rev-parse --short HEAD), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-unset}, threads $T"
uptime
for mode in haswell native; do
    pre=$HAS; [ $mode = native ] && pre=$NAT
    for r in 1 2; do
        rm -rf "$OUT/train"
        echo "== pixdiff train, fashion32, batch 64, $mode, run $r (peak memory, then img/s)"
        /usr/bin/time -f "peak %M KB" $pre $P train --config "$OUT/train.yaml" --out "$OUT/train" \
            --threads $T 2>&1 | tail -1
        tail -1 "$OUT/train/training-log.csv" | cut -d, -f5
    done
done
echo "== fashion32: our PyTorch network and EDM's, forward and EDM's own training step (batch 64)"
torch_both /usr/bin/python3 "$ROOT/bench/torch_edm_nets.py" "$ROOT/models/fashion32.safetensors" \
    --threads $T --batches 1,8,64 --repeat 5 --edm "$EDM" --train-batch 64
echo "== our PyTorch peer's training step, fashion32, batch 64"
torch_both /usr/bin/python3 "$ROOT/bench/torch_songunet.py" --preset fashion32 --threads $T \
    --batches 1 --repeat 5 --train-batch 64
for pre in cifar10 ref64 fashion32; do
    bs=1,8,64; [ $pre = cifar10 ] && bs=1,8
    echo "== $pre: pixdiff haswell, pixdiff native, our PyTorch peer"
    settle
    $HAS $P bench --preset $pre --batches $bs --repeat 5 --threads $T | grep -E "^ +[0-9]+ "
    $NAT $P bench --preset $pre --batches $bs --repeat 5 --threads $T | grep -E "^ +[0-9]+ "
    torch_both /usr/bin/python3 "$ROOT/bench/torch_songunet.py" --preset $pre --threads $T \
        --batches $bs --repeat 5 --train-batch 0
done
echo "== EDM CIFAR-10 DDPM++: our PyTorch network and EDM's, same weights"
torch_both /usr/bin/python3 "$ROOT/bench/torch_edm_nets.py" "$OUT/cifar10.safetensors" \
    --threads $T --batches 1,8 --repeat 5 --edm "$EDM"
echo "== ADM ImageNet-64: pixdiff haswell, pixdiff native"
settle
$HAS $BN "$OUT/adm.safetensors" $T 3 1,8
$NAT $BN "$OUT/adm.safetensors" $T 3 1,8
echo "== ADM ImageNet-64: our PyTorch network and EDM's"
torch_both /usr/bin/python3 "$ROOT/bench/torch_edm_nets.py" "$OUT/adm.safetensors" --threads $T \
    --batches 1,8 --repeat 3 --edm "$EDM"
echo "== done $(date -u)"
uptime
