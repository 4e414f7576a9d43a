#!/usr/bin/env bash
# e2e_eval.sh — end-to-end tests of `pixdiff eval` and `pixdiff snr`, run by ctest as
#   bash tests/e2e_eval.sh <path-to-pixdiff> <source-dir>
# In a private temporary directory: a tiny random class-conditional model and a tiny random
# classifier are written with `init`, and a small fake Fashion-MNIST (64 random images, gzip IDX)
# stands in for the data so the reference statistics take a moment. eval must print every metric,
# cache the reference (and say so, and load it the next time, and notice a new classifier), give
# the same metrics whatever --batch and --threads, read a PNG folder written by `sample` with its
# class labels, evaluate a data split, pool 64-px samples, and report the trajectory error. snr
# must write its CSV and two PNGs. Bad flags give one line on stderr, a non-zero exit and no
# files. On a terminal the sampling progress line fits 80 columns and says steps/s. Prints
# "N passed, M failed" and exits non-zero on any failure.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/testutil.sh"
e2e_init e2e_eval.sh "$@"
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 XDG_CACHE_HOME="$T/xdg"
unset PIXDIFF_MODEL PIXDIFF_CLASSIFIER

# ---------------------------------------------------------------- fixtures
fake_split "$T/fm" t10k 64
fake_split "$T/fm" train 48
cat >clf.yaml <<'EOF'
arch: classifier
kind: classifier
img_resolution: 32
in_channels: 1
label_dim: 10
out_channels: 10
model_channels: 4
channel_mult: [1, 2]
num_blocks: 1
channel_mult_emb: 2
attn_resolutions: []
EOF
printf 'preset: tiny\nimg_resolution: 32\nlabel_dim: 10\nattn_resolutions: [16]\n' >cond.yaml
run_to "init a tiny classifier" init.txt "$PD" init --config clf.yaml --out clf.safetensors
run_to "init a tiny conditional 32-px model" init2.txt "$PD" init --config cond.yaml --out cond.safetensors
run_to "init a tiny unconditional 16-px model" init3.txt "$PD" init --preset tiny --out tiny.safetensors
E=(--classifier "$T/clf.safetensors" --data-dir "$T/fm" --kid-subsets 10)

# ---------------------------------------------------------------- eval: sampling
run_to "eval a model" ev1.txt "$PD" eval --model cond.safetensors "${E[@]}" --sampler euler --steps 3 --n 24 --batch 8
# The same run on a terminal: the progress line (cli/progress.c) fits 80 columns, says steps/s.
if command -v script >/dev/null; then
    expect_tty_progress eval "steps/s" '^eval: batch' "$PD" eval --model cond.safetensors "${E[*]}" --sampler euler \
        --steps 3 --n 24 --batch 8
fi
for pat in '^  n +24$' '^  FD +[0-9.]+$' '^  KID +-?[0-9.]+ \+/- [0-9.]+ \(SE; 10 subsets of 24\)$' \
    '^  class accuracy +[0-9.]+ \(24 labelled' '^  spectral error +[0-9.]+ ' '^  wall time +[0-9.]+ s' \
    'labels cycle 0\.\.9'; do
    has "eval prints /$pat/" ev1.txt "$pat"
done
has "first eval computes the reference statistics" ev1.txt.err 'reference statistics: computing them .*not there yet'
has "... and caches them under \$XDG_CACHE_HOME/pixdiff" ev1.txt.err "cached in $T/xdg/pixdiff/fashion-mnist-t10k-[0-9a-f]{16}\.safetensors"
run_to "eval --json, --batch 3 --threads 1" j1.txt "$PD" eval --model cond.safetensors "${E[@]}" --sampler euler --steps 3 --n 24 --batch 3 --threads 1 --json
run_to "eval --json, --batch 24 --threads 2" j2.txt "$PD" eval --model cond.safetensors "${E[@]}" --sampler euler --steps 3 --n 24 --batch 24 --threads 2 --json
has "second eval loads the cache" j1.txt.err 'reference statistics: .*fashion-mnist-t10k-.*\(64 images, 8 features'
hasnt "... without recomputing" j1.txt.err 'computing'
for k in fd kid kid_se accuracy precision recall pr_n spectral_error; do
    a=$(json_field j1.txt $k)
    b=$(json_field j2.txt $k)
    if [ -n "$a" ] && [ "$a" = "$b" ]; then ok "json $k = $a whatever --batch and --threads"
    else bad "json $k: '$a' vs '$b'" j2.txt; fi
done
has "json: n" j1.txt '"n": 24'
has "json: labels cycle" j1.txt '"labels": "cycle"'
run_to "eval --class 3" cls.txt "$PD" eval --model cond.safetensors "${E[@]}" --steps 2 --n 8 --class 3
has "eval --class names the class" cls.txt 'class 3'
hasnt "eval: no warning at n = the feature dimension (8)" cls.txt.err 'fewer than the'
run_to "eval --unconditional" unc.txt "$PD" eval --model cond.safetensors "${E[@]}" --steps 2 --n 8 --unconditional
has "eval --unconditional: no accuracy" unc.txt 'class accuracy +n/a'
run_to "eval --ref-steps 6 (trajectory error)" tr.txt "$PD" eval --model cond.safetensors "${E[@]}" --sampler euler --steps 2 --n 4 --ref-steps 6
has "trajectory error printed" tr.txt '^  trajectory error +RMSE [0-9.]+, PSNR [0-9.]+ dB \(vs heun, 6 steps\)$'
has "eval warns when n is below the feature dimension" tr.txt.err 'warning: 4 images is fewer than the 8 feature dimensions'
run_to "eval 64-px samples (--size 64, pooled to 32)" s64.txt "$PD" eval --model cond.safetensors "${E[@]}" --steps 2 --n 4 --size 64
has "eval --size 64 reports 64x64" s64.txt '64x64'
run_to "eval with upsample guidance at 64 px" ug.txt "$PD" eval --model cond.safetensors "${E[@]}" --steps 2 --n 4 --size 64 --upsample-guidance 0.5
has "eval names the denoiser transform" ug.txt 'ug=w:0\.5,eta:0\.6'
run_to "eval an unconditional 16-px model at --size 32" t32.txt "$PD" eval --model tiny.safetensors "${E[@]}" --steps 2 --n 4 --size 32

# ---------------------------------------------------------------- eval: PNG folders and data splits
run_to "sample --outdir with --class 7" smp.txt "$PD" sample --model cond.safetensors --class 7 --steps 2 --n 6 --outdir pngs --quiet
run_to "eval --images" img.txt "$PD" eval --images pngs "${E[@]}"
has "eval --images: 6 images" img.txt '^  n +6$'
has "eval --images: labels from the PNG metadata" img.txt 'class accuracy +[0-9.]+ \(6 labelled'
run_to "eval --data train --n 40" dtr.txt "$PD" eval --data train --n 40 "${E[@]}"
has "eval --data train: 40 images, labelled" dtr.txt 'class accuracy +[0-9.]+ \(40 labelled'
run_to "eval --data test: the reference against itself" dte.txt "$PD" eval --data test --n 64 "${E[@]}" --json
fd=$(json_field dte.txt fd)
acc=$(json_field dte.txt accuracy)
racc=$(json_field dte.txt ref_accuracy)
if awk -v f="$fd" 'BEGIN { exit !(f < 1e-6) }' && [ "$acc" = "$racc" ]; then
    ok "the test split against itself: FD $fd, accuracy $acc = the reference's"
else bad "the test split against itself: FD $fd, accuracy $acc vs $racc" dte.txt; fi

# ---------------------------------------------------------------- eval: a stale cache
# The default cache name carries the classifier's hash; a named cache file must notice the change.
run_to "eval --ref-cache FILE" rc.txt "$PD" eval --data test --n 16 "${E[@]}" --ref-cache "$T/my-ref.safetensors"
if [ -s "$T/my-ref.safetensors" ]; then ok "--ref-cache FILE written"; else bad "--ref-cache FILE not written" rc.txt.err; fi
run_to "init another classifier at the same path" init4.txt "$PD" init --config clf.yaml --seed 5 --out clf.safetensors
run_to "eval after the classifier changed" st.txt "$PD" eval --data test --n 16 "${E[@]}" --ref-cache "$T/my-ref.safetensors"
has "the cache is stale: the classifier changed" st.txt.err 'classifier \(sha256\) changed'
has "... and is rewritten" st.txt.err "cached in $T/my-ref.safetensors"

# ---------------------------------------------------------------- snr
run_to "snr on the (fake) test split" snr.txt "$PD" snr --data-dir "$T/fm" --steps 10 --out snr.csv --plot snr.png
has "snr: CSV header" snr.csv '^schedule,step,t,sigma,logsnr,pool,logsnr_pooled,bin,freq,data_power,log10_snr$'
rows=$(($(wc -l <snr.csv) - 1))
# 10 nonzero sigmas x (16 + 8 + 4) bins
if [ "$rows" -eq 280 ]; then ok "snr: 280 rows"; else bad "snr: $rows rows, expected 280" snr.csv; fi
if is_png snr.png && is_png snr-logsnr.png; then ok "snr: two PNG plots"; else bad "snr: plots missing" snr.txt.err; fi
run_to "snr --size 64 --shift scale" snr2.txt "$PD" snr --data-dir "$T/fm" --steps 5 --size 64 --shift scale --out snr2.csv --plot snr2.png --plot-logsnr lsnr2.png
has "snr: the shifted schedule's rows" snr2.csv '^shift-scale-64,'
if is_png lsnr2.png; then ok "snr --plot-logsnr"; else bad "snr --plot-logsnr missing" snr2.txt.err; fi
run_to "snr --images" snr3.txt "$PD" snr --images pngs --pools 1,2 --steps 4 --out snr3.csv --plot snr3.png

# ---------------------------------------------------------------- bad input
expect_error "eval --n 1" "pixdiff eval: --n: " "$PD" eval --model "$T/cond.safetensors" "${E[@]}" --n 1
expect_error "eval --n -3" "--n: expected a positive integer" "$PD" eval --n -3
expect_error "eval --images with --sampler" "--sampler: only read when sampling" \
    "$PD" eval --images "$T/pngs" --sampler heun "${E[@]}"
expect_error "eval --images with --skip-tuning" "--skip-tuning: only read when sampling" \
    "$PD" eval --images "$T/pngs" --skip-tuning 0.9 "${E[@]}"
expect_error "eval --images and --data" "--data: give --images or --data" \
    "$PD" eval --images "$T/pngs" --data train "${E[@]}"
expect_error "eval --images of a missing folder" "--images: .*nodir" "$PD" eval --images "$T/nodir" "${E[@]}"
expect_error "eval --classifier that is a denoiser" "--classifier: .* not a classifier" \
    "$PD" eval --model "$T/cond.safetensors" --classifier "$T/cond.safetensors" --data-dir "$T/fm"
expect_error "eval --class on an unconditional model" "--class: " \
    "$PD" eval --model "$T/tiny.safetensors" --size 32 --class 2 "${E[@]}"
expect_error "eval --class and --unconditional" "--unconditional: " \
    "$PD" eval --model "$T/cond.safetensors" --class 2 --unconditional "${E[@]}"
expect_error "eval a 16-px model" "classifier reads" "$PD" eval --model "$T/tiny.safetensors" "${E[@]}"
expect_error "eval --steps with --nfe" "--nfe: " "$PD" eval --model "$T/cond.safetensors" --steps 3 --nfe 5 "${E[@]}"
if [ ! -e "$SRC/models/fashion-classifier.safetensors" ]; then
    expect_error "eval without a classifier" "no --classifier given" "$PD" eval --data test --data-dir "$T/fm"
fi
expect_error "eval with a missing data directory" "nofm/t10k-images" \
    "$PD" eval --data test --classifier "$T/clf.safetensors" --data-dir "$T/nofm" --ref-cache "$T/x.safetensors"
expect_error "snr --pools 3" "--pools: " "$PD" snr --data-dir "$T/fm" --pools 1,3
expect_error "snr --size 48" "--size: " "$PD" snr --data-dir "$T/fm" --size 48
expect_error "snr --t 2" "--t: " "$PD" snr --data-dir "$T/fm" --t 2
expect_error "snr --sampler" "unknown option '--sampler'" "$PD" snr --data-dir "$T/fm" --sampler heun
expect_error "snr --shift-base without --shift" "--shift-base: needs --shift" "$PD" snr --data-dir "$T/fm" --shift-base 32
expect_error "snr --out into a missing directory" "--out: " "$PD" snr --data-dir "$T/fm" --out nodir/x.csv

# ---------------------------------------------------------------- a sweep with a one-step generator
# A generator entry is one more series: one cell of NFE 1 in the plain variant, none in a
# transformed one, none for a missing file; its FD is pixdiff eval's on the same seeds.
{ cat cond.yaml; printf 'kind: generator\nsigma_init: 2.5\n'; } >gen.yaml
run_to "init a tiny one-step generator" init5.txt "$PD" init --config gen.yaml --seed 7 --out gen.safetensors
cat >gsweep.yaml <<EOF
model: cond.safetensors
classifier: clf.safetensors
data_dir: $T/fm
samplers:
  - euler
  - {generator: gen.safetensors, label: one-step}
  - {generator: nosuch.safetensors}
nfe: [3, 5]
variants:
  - name: base
  - name: skip
    skip_tuning: {rho_bottom: 0.9, rho_top: 1.0}
n: 12
batch: 5
seed: 4
metrics: [fd, accuracy]
save_grid: false
threads: 1
output: gsweep
EOF
run_to "sweep dry run with a generator" gdry.txt "$PD" sweep gsweep.yaml --dry-run
has "dry run: 5 cells" gdry.txt "dry run: 5 of 5 cells to run"
has "dry run: the generator's one cell" gdry.txt "cell [0-9]/5 one-step \(one-step generator, NFE 1\) \[base\]"
has "dry run: a missing generator file has no cell" gdry.txt "no generator file nosuch\.safetensors: no cell"
run_to "sweep with a generator" gsw.txt "$PD" sweep gsweep.yaml
if [ "$(wc -l <gsweep/results.jsonl)" -eq 5 ] &&
    grep '"label": "one-step"' gsweep/results.jsonl | grep -q '"sampler": "generator".*"nfe": 1,'; then
    ok "sweep: 5 cells, the generator's at NFE 1"
else bad "sweep with a generator" gsweep/results.jsonl; fi
has "results.md: the generator at every budget" gsweep/results.md \
    '^\| one-step / base \| [0-9.e+-]+ \(1\) \| [0-9.e+-]+ \(1\) \|'
has "results.md: no generator cell in the skip variant" gsweep/results.md '^\| one-step / skip \| n/a \| n/a \|'
run_to "eval the generator" geval.txt "$PD" eval --model gen.safetensors --n 12 --batch 5 --seed 4 \
    --classifier "$T/clf.safetensors" --data-dir "$T/fm" --json --threads 1
fd_eval=$(json_field geval.txt fd)
fd_sweep=$(grep '"label": "one-step"' gsweep/results.jsonl | grep -oE '"fd": [^,]+' | cut -d' ' -f2)
if [ -n "$fd_eval" ] && [ "$fd_eval" = "$fd_sweep" ]; then
    ok "the generator's FD in the sweep equals pixdiff eval's ($fd_sweep)"
else bad "generator FD: sweep $fd_sweep, eval $fd_eval" geval.txt; fi
sed 's/generator: gen\.safetensors/generator: cond.safetensors/' gsweep.yaml >gbad.yaml
expect_error "a denoiser named as a generator" \
    "gbad\.yaml:6: samplers\[1\]\.generator: cond\.safetensors is a denoiser, not a one-step generator" \
    "$PD" sweep gbad.yaml --dry-run
sed 's/metrics: \[fd, accuracy\]/metrics: [fd, trajectory]/' gsweep.yaml >gbad.yaml
expect_error "generator with the trajectory metric" \
    "gbad\.yaml:6: samplers\[1\]\.generator: the trajectory metric" "$PD" sweep gbad.yaml --dry-run

e2e_finish
