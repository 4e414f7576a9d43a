#!/usr/bin/env bash
# e2e_nets.sh — every pixdiff feature on the NCSN++ and ADM networks, through the CLI, on the
# test-sized presets tiny-ncsnpp and tiny-adm (random weights), run by ctest as
#   bash tests/e2e_nets.sh <path-to-pixdiff> <source-dir>
# For each: init, info (arch, parameters, GFLOP), denoise, sample with every sampler, batch and
# thread invariance, Skip-Tuning, upsample guidance at 2x, bench, distill amed (the bottleneck
# feature tap) and sampling with its predictor, train from the preset, distill sid for a few
# images and eval (these three if Fashion-MNIST is installed), and an iDDPM-preconditioned ADM. Smoke tests: the
# numbers are checked against EDM elsewhere (test_edm_nets, test_nets_grad).
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/testutil.sh"
e2e_init e2e_nets.sh "$@"
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2
unset PIXDIFF_MODEL


samplers="euler heun ddim dpmpp-2m dpmpp-3m ipndm dpm2 unipc"
for net in ncsnpp adm; do
    M=tiny-$net.safetensors
    run "$net: init --preset tiny-$net" "$PD" init --preset tiny-$net --out $M --seed 1 --quiet
    "$PD" info $M >info_$net.txt 2>&1 || bad "$net: info" info_$net.txt
    has "$net: info names the arch" info_$net.txt "^arch +$( [ $net = adm ] && echo adm || echo songunet)"
    has "$net: info GFLOP" info_$net.txt '^GFLOP +[0-9.]+'
    xin=$T/x_$net.npy
    run "$net: sample --format npy as denoise input" "$PD" sample --seed 0 --model $M --n 2 --steps 2 --output-npy $xin --quiet
    run "$net: denoise" "$PD" denoise --model $M --input $xin --sigma 1.5 --output d_$net.npy
    for s in $samplers; do
        run "$net: sample --sampler $s" "$PD" sample --seed 0 --model $M --sampler $s --steps 3 --n 2 --out s_${net}_$s.png --quiet
    done
    run "$net: batch 3, 2 threads" "$PD" sample --seed 0 --model $M --steps 3 --n 3 --batch 3 --threads 2 --output-npy b3_$net.npy --quiet
    run "$net: batch 1, 1 thread" "$PD" sample --seed 0 --model $M --steps 3 --n 3 --batch 1 --threads 1 --output-npy b1_$net.npy --quiet
    same "$net: same images whatever the batch and thread count" b3_$net.npy b1_$net.npy
    run "$net: no Skip-Tuning" "$PD" sample --seed 0 --model $M --steps 3 --n 2 --output-npy s0_$net.npy --quiet
    run "$net: Skip-Tuning" "$PD" sample --seed 0 --model $M --steps 3 --n 2 --skip-tuning 0.8 --output-npy st_$net.npy --quiet
    if cmp -s st_$net.npy s0_$net.npy; then bad "$net: Skip-Tuning changes nothing"; else ok "$net: Skip-Tuning changes the samples"; fi
    run "$net: upsample guidance at 2x" "$PD" sample --seed 0 --model $M --steps 3 --n 2 --size 32 --upsample-guidance 0.5 --out ug_$net.png --quiet
    "$PD" bench --model $M --batches 1 --repeat 1 --threads 1 >bench_$net.txt 2>&1 || true
    has "$net: bench" bench_$net.txt '^ +1 +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+$'
    run "$net: distill amed (feature tap)" "$PD" distill amed --model $M --nfe 3 --images 4 --batch 2 --out pred_$net.safetensors --quiet
    run "$net: sample with the AMED predictor" "$PD" sample --seed 0 --model $M --sampler amed --predictor pred_$net.safetensors --n 2 --out amed_$net.png --quiet
    cat >sid_$net.yaml <<'YAML'
optimizer:
  lr_psi: 1.0e-3
  lr_theta: 1.0e-3
ema:
  halflife_images: 8
training:
  batch: 2
  checkpoint_images: 4
  seed: 9
  threads: 2
YAML
    if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
        run "$net: distill sid (backward through the teacher's net)" "$PD" distill sid --config sid_$net.yaml --teacher $M --duration 4 --out sid_$net --quiet
        cat >train_$net.yaml <<YAML
model:
  preset: tiny-$net
  img_resolution: 32
  label_dim: 10
  attn_resolutions: [16]
data:
  kind: fashion-mnist
optimizer:
  lr: 0.002
  warmup_images: 8
ema:
  halflife_images: 8
training:
  batch: 4
  duration_images: 8
  checkpoint_images: 8
  seed: 1
  threads: 2
output:
  dir: train_$net
YAML
        run "$net: train (EDM loss, backward)" "$PD" train --config train_$net.yaml --quiet
        run "$net: eval (samples at 32 px vs Fashion-MNIST)" "$PD" eval --model $M --steps 2 --n 8 --size 32 --kid-subsets 2
    fi
done
printf 'preset: tiny-adm\nprecond: iddpm\nout_channels: 2\nsigma_min: 0.0064\nsigma_max: 80\n' >iddpm.yaml
run "adm iddpm: init" "$PD" init --config iddpm.yaml --out iddpm.safetensors --quiet
run "adm iddpm: sample" "$PD" sample --seed 0 --model iddpm.safetensors --steps 3 --n 2 --out iddpm.png --quiet
expect_error "adm iddpm needs 2x output channels" "out_channels" \
    "$PD" init --config <(printf 'preset: tiny-adm\nprecond: iddpm\n') --out bad.safetensors
e2e_finish
