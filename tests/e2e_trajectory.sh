#!/usr/bin/env bash
# e2e_trajectory.sh — `pixdiff eval --ref-steps K` and a sweep's trajectory metric
# (reference_steps: K) define the trajectory error the same way (docs/algorithms.md §S0.7): on the
# same model, sampler, grid, noise and labels they must print the same RMSE and PSNR. Run by
# ctest as
#   bash tests/e2e_trajectory.sh <path-to-pixdiff> <source-dir>
# Cases: an analytic Gaussian (exact denoiser) with Euler on a Karras grid into sigma = 0, Heun
# stopping at sigma_min (compared with the reference's end state, not with its final denoising),
# Euler on the DDIM table grid (its first sigma is not sigma_max, so the reference must start
# where the sampler does), an SNR-shifted grid, and a one-step run; then a tiny random
# class-conditional U-Net with cycled labels (the reference's last denoiser call sees the
# labels). Eval needs a classifier and a test split: a tiny random one and a fake 64-image
# Fashion-MNIST, as in e2e_eval.sh. Prints "N passed, M failed".
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/testutil.sh"
e2e_init e2e_trajectory.sh "$@"
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 XDG_CACHE_HOME="$T/xdg"
unset PIXDIFF_MODEL PIXDIFF_CLASSIFIER

fake_split "$T/fm" t10k 64
printf 'arch: classifier\nkind: classifier\nimg_resolution: 32\nin_channels: 1\nlabel_dim: 10\nout_channels: 10\nmodel_channels: 4\nchannel_mult: [1, 2]\nnum_blocks: 1\nchannel_mult_emb: 2\nattn_resolutions: []\n' >clf.yaml
printf 'preset: tiny\nimg_resolution: 32\nin_channels: 1\nout_channels: 1\nlabel_dim: 10\nattn_resolutions: [16]\n' >cond.yaml
"$PD" init --config clf.yaml --out clf.safetensors >init.log 2>&1 || bad "init the classifier" init.log
"$PD" init --config cond.yaml --out cond.safetensors >init2.log 2>&1 || bad "init the model" init2.log
E=(--classifier "$T/clf.safetensors" --data-dir "$T/fm" --kid-subsets 2 --json --quiet)
GAUSS=analytic:gaussian:res=32:ch=1:std=0.5
K=500

# check NAME MODEL N SAMPLER_YAML NFE SWEEP_EXTRA -- EVAL_FLAGS...: the sweep's one cell and eval
# give the same trajectory RMSE and PSNR (to 1e-12 relative: eval sums squares batch by batch).
check() {
    local name=$1 model=$2 n=$3 sampler=$4 nfe=$5 extra=$6
    shift 7
    local dir="sw-$name"
    printf 'name: %s\nmodel: %s\nsamplers:\n  - %s\nnfe: [%s]\nn: %s\nseed: 3\nbatch: %s\nmetrics: [trajectory]\nreference_steps: %s\noutput: %s\n%b' \
        "$name" "$model" "$sampler" "$nfe" "$n" "$n" "$K" "$dir" "$extra" >"$name.yaml"
    if ! "$PD" sweep "$name.yaml" >"$name.sweep.log" 2>&1; then bad "$name: sweep" "$name.sweep.log"; return; fi
    if ! "$PD" eval --model "$model" --n "$n" --batch "$n" --seed 3 --ref-steps "$K" "${E[@]}" "$@" \
        >"$name.eval.json" 2>"$name.eval.log"; then bad "$name: eval" "$name.eval.log"; return; fi
    local sr sp er ep steps
    sr=$(json_field "$dir/results.jsonl" traj_rmse)
    sp=$(json_field "$dir/results.jsonl" traj_psnr)
    er=$(json_field "$name.eval.json" trajectory_rmse)
    ep=$(json_field "$name.eval.json" trajectory_psnr)
    steps=$(json_field "$dir/results.jsonl" steps)
    if awk -v a="$sr" -v b="$er" -v c="$sp" -v d="$ep" 'BEGIN {
            r = (a - b) / b; q = (c - d) / d; if (r < 0) r = -r; if (q < 0) q = -q
            exit !(a > 0 && r <= 1e-12 && q <= 1e-12) }'; then
        ok "$name ($steps steps): sweep and eval agree, RMSE $sr, PSNR $sp dB"
    else
        bad "$name ($steps steps): sweep RMSE $sr PSNR $sp, eval RMSE $er PSNR $ep" "$name.eval.log"
    fi
}

check euler-karras "$GAUSS" 8 euler 3 '' -- --sampler euler --steps 3 --schedule karras
check heun-sigma-min "$GAUSS" 8 '{name: heun, end: sigma-min}' 4 '' -- --sampler heun --steps 2 --end sigma-min
check euler-ddim "$GAUSS" 8 '{name: euler, schedule: ddim-uniform}' 4 '' -- --sampler euler --steps 4 --schedule ddim-uniform
check euler-shift "$GAUSS" 8 euler 3 'variants:\n  - name: shifted\n    shift: {kind: scale, base: 16}\n' \
    -- --sampler euler --steps 3 --schedule karras --shift scale --shift-base 16
check euler-1-step "$GAUSS" 8 euler 1 '' -- --sampler euler --steps 1 --schedule karras
check cond-dpmpp "$T/cond.safetensors" 4 '{name: dpmpp-2m, schedule: logsnr}' 3 'labels: cycle\n' \
    -- --sampler dpmpp-2m --steps 3 --schedule logsnr

e2e_finish
