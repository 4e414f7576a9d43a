#!/usr/bin/env bash
# e2e_sid.sh — end-to-end tests of `pixdiff distill sid` and of sampling its generator, run by
# ctest as
#   bash tests/e2e_sid.sh <path-to-pixdiff> <source-dir>
# On a tiny random class-conditional teacher (pixdiff init): a run killed with SIGKILL again and
# again at random moments and resumed each time must export a generator bit-identical to an
# uninterrupted run's; export from the checkpoint alone gives the same file; `pixdiff sample`
# on the generator reports NFE 1 and writes "Sampler: generator" metadata, and refuses sampler
# options, upsample guidance and guidance (denoise refuses it, bench times it); Ctrl-C leaves a resumable checkpoint; a second run refuses to overwrite a checkpoint
# without --resume; a missing teacher and an unknown YAML key fail with one clear line; a warm
# start from a generator (--init-generator) runs its fake-score warm-up and distils on; on a
# terminal the progress line fits 80 columns with img/s and both losses; --threads 1 exports the
# generator that two threads (two share workers) export. Prints "N passed, M failed".
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/testutil.sh"
e2e_init e2e_sid.sh "$@"
# Passive waiting: on a loaded machine spinning OpenMP threads burn most of the CPU time of the
# tiny nets' many short parallel regions.
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 OMP_WAIT_POLICY=passive

printf 'preset: tiny\nlabel_dim: 3\ndropout: 0.1\n' >teacher.yaml
"$PD" init --config teacher.yaml --seed 3 --out teacher.safetensors --quiet || bad "init teacher"
cat >sid.yaml <<'EOF'
optimizer:
  lr_psi: 1.0e-3
  lr_theta: 1.0e-3
ema:
  halflife_images: 64
training:
  batch: 8
  checkpoint_images: 16
  seed: 9
  threads: 2
EOF
N=96
S=(distill sid --config sid.yaml --teacher teacher.safetensors --duration $N)

# 1. Uninterrupted reference run (its wall time, in ms, scales the kill times below).
t0=$(date +%s%N)
if "$PD" "${S[@]}" --out A >a.out 2>&1 && [ -f A/generator.safetensors ]; then
    ok "uninterrupted run of $N images"
else bad "uninterrupted run" a.out; fi
ms=$((($(date +%s%N) - t0) / 1000000))
# Its progress line on a terminal (cli/progress.c): images, img/s and both losses in 80 columns.
if command -v script >/dev/null; then
    expect_tty_progress "distill sid" "img/s" '^sid: .* psi .* theta ' "$PD" distill sid --config sid.yaml \
        --teacher teacher.safetensors --duration 16 --out TTY
fi

# The same run on one thread: the config's two threads compute the shares on two workers at once
# (distill/sid.h "Workers"), one thread one share at a time; the generator is the same file.
if "$PD" "${S[@]}" --threads 1 --out T1 >t1.out 2>&1 && grep -q "8 shares, 1 at once" t1.out &&
    grep -q "8 shares, 2 at once" a.out && cmp -s A/generator.safetensors T1/generator.safetensors; then
    ok "--threads 1 (one share worker) exports the generator of 2 threads (two workers)"
else bad "--threads 1 and 2 give different generators" t1.out; fi

# 2. The same run, SIGKILLed at random moments (15-45% of the full run's time after each start:
#    during iterations, checkpoint writes and start-up) and resumed until it finishes.
sid_delay() {
    local d=$((ms * (15 + RANDOM % 31) / 100))
    DELAY="$((d / 1000)).$(printf %03d $((d % 1000)))"
}
kill_resume B/generator.safetensors B/checkpoint.safetensors 30 sid_delay b.out \
    "$PD" "${S[@]}" --out B
if [ -f B/generator.safetensors ] && cmp -s A/generator.safetensors B/generator.safetensors; then
    ok "killed $kills times with SIGKILL and resumed: generator bit-identical"
else bad "kill -9 and resume: generators differ (after $kills kills)" b.out; fi
expect_no_tmp B

# 3. Export from the checkpoint alone; sampling the generator.
if "$PD" distill sid --export E.safetensors --checkpoint A/checkpoint.safetensors --quiet \
    >e.out 2>&1 && cmp -s E.safetensors A/generator.safetensors; then
    ok "export from the checkpoint equals the run's export"
else bad "export from the checkpoint" e.out; fi
if "$PD" info A/generator.safetensors >info.out 2>&1 && grep -Eq "kind +generator" info.out &&
    grep -Eq "sigma_init +2.5" info.out; then ok "info: kind generator, sigma_init 2.5"
else bad "info of the generator" info.out; fi
if "$PD" sample --model A/generator.safetensors --n 6 --class 2 --seed 4 --out g.png >s.out 2>&1 &&
    grep -q "NFE 1," s.out && "$PD" inspect g.png >i.out 2>&1 &&
    grep -q "Steps: 1, Sampler: generator, Sigma init: 2.5, Class: 2" i.out &&
    grep -q '"nfe": 1' i.out; then ok "sample with the generator: NFE 1, PNG metadata"
else bad "sample with the generator" s.out; fi
if "$PD" sample --model A/generator.safetensors --n 2 --seed 4 --batch 1 --output-npy a.npy \
    --quiet && "$PD" sample --model A/generator.safetensors --n 2 --seed 4 --batch 2 \
    --output-npy b.npy --quiet && cmp -s a.npy b.npy; then ok "generator samples do not depend on --batch"
else bad "generator samples and --batch"; fi
expect_error "sampler options refused for a generator" "one-step generator" \
    "$PD" sample --model A/generator.safetensors --steps 4 --out x.png
# Upsample guidance needs a trajectory; a generator has none (it used to be integrated with Heun
# behind the wrapper while the metadata said "Sampler: generator").
expect_error "upsample guidance refused for a generator" "upsample-guidance.*one-step generator" \
    "$PD" sample --model A/generator.safetensors --size 32 --upsample-guidance 1 --out x.png
expect_error "eval refuses upsample guidance for a generator" "upsample-guidance.*one-step generator" \
    "$PD" eval --model A/generator.safetensors --size 32 --upsample-guidance 1 --n 4
if "$PD" sample --model A/generator.safetensors --skip-tuning 0.8 --n 2 --seed 1 --out st.png \
    >st.out 2>&1 && grep -q "NFE 1," st.out; then ok "Skip-Tuning works with a generator (NFE 1)"
else bad "Skip-Tuning with a generator" st.out; fi
expect_error "guidance refused for a generator" "guidance.*one-step generator" \
    "$PD" sample --model A/generator.safetensors --class 1 --guidance 2 --force-guidance --out x.png
# A generator is not a denoiser (pd_denoiser_from_model refuses it): denoise says so; bench times
# its one evaluation.
"$PD" sample --model teacher.safetensors --n 1 --seed 1 --steps 2 --output-npy in.npy --quiet ||
    bad "denoise input"
expect_error "denoise refuses a generator" "model.*one-step generator.*not a denoiser" \
    "$PD" denoise --model A/generator.safetensors --input in.npy --sigma 1 --output d.npy
if "$PD" bench --model A/generator.safetensors --batches 1 --repeat 1 --threads 1 >gb.out 2>&1 &&
    grep -Eq '^ +1 +[0-9.]+ +[0-9.]+' gb.out; then ok "bench times a generator"
else bad "bench with a generator" gb.out; fi

# 4. Warm start from A's generator: the fake-score warm-up logs, then the run goes on and exports;
#    --init-generator is refused with --resume and with a denoiser, --init-images without it.
if "$PD" distill sid --config sid.yaml --teacher teacher.safetensors --out W --duration 16 \
    --init-generator A/generator.safetensors --psi-warmup 16 --init-images 48 >w.out 2>&1 &&
    grep -q "warm start: G and G_ema from A/generator.safetensors (distilled on 48 images" w.out &&
    grep -q "warm-up: f_psi alone at 16 of 16 images" w.out && [ -f W/generator.safetensors ] &&
    ! cmp -s W/generator.safetensors A/generator.safetensors; then
    ok "warm start: fake-score warm-up, then distillation from the given generator"
else bad "warm start with --init-generator" w.out; fi
expect_error "--init-generator with --resume refused" "init-generator.*new run" \
    "$PD" distill sid --resume --out W --init-generator A/generator.safetensors
expect_error "--init-images without --init-generator refused" "init-images.*only with --init-generator" \
    "$PD" distill sid --config sid.yaml --teacher teacher.safetensors --out W3 --init-images 100
expect_error "a fractional --init-images refused" "init-images.*whole number" \
    "$PD" distill sid --config sid.yaml --teacher teacher.safetensors --out W3 \
    --init-generator A/generator.safetensors --init-images 1.5
expect_error "a denoiser as --init-generator refused" "not a one-step generator" \
    "$PD" distill sid --config sid.yaml --teacher teacher.safetensors --out W2 \
    --init-generator teacher.safetensors

# 5. Ctrl-C, refusal to overwrite, errors.
expect_sigint C/checkpoint.safetensors c.out \
    "$PD" distill sid --config sid.yaml --teacher teacher.safetensors --duration 1000000 --out C
expect_error "refuses to overwrite a checkpoint without --resume" "already exists.*--resume" \
    "$PD" distill sid --config sid.yaml --teacher teacher.safetensors --out C
if "$PD" distill sid --resume --out C --duration 64 --quiet >c2.out 2>&1 &&
    [ -f C/generator.safetensors ]; then ok "resume with the checkpoint's own config and teacher"
else bad "resume after SIGINT" c2.out; fi
expect_error "a config without a teacher" "no teacher" "$PD" distill sid --config sid.yaml --out D
printf 'sid:\n  alpha: 1.2\n  alhpa: 1\n' >bad.yaml
expect_error "unknown YAML key names file, line and key" "bad.yaml:3.*unknown key 'alhpa'" \
    "$PD" distill sid --config bad.yaml --teacher teacher.safetensors --out D
expect_error "unknown distillation method" "unknown method 'sdi'" "$PD" distill sdi

e2e_finish
