#!/usr/bin/env bash
# e2e_cli.sh — end-to-end tests of the `pixdiff` binary, run by ctest as
#   bash tests/e2e_cli.sh <path-to-pixdiff> <source-dir>
# Everything happens in a private temporary directory: a tiny random-weight model is written
# with `init`, then every command is exercised — each sampler to a grid and to --outdir,
# bit-identical outputs across --batch and --threads, PNG metadata read back with `inspect`,
# `denoise`, `info`, analytic models — and bad input must give one line on stderr, a non-zero
# exit and no files. Prints "N passed, M failed" and exits non-zero on any failure.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/testutil.sh"
e2e_init e2e_cli.sh "$@"
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2
unset PIXDIFF_MODEL

# run NAME CMD...: the command must succeed.

# ---------------------------------------------------------------- help and version
"$PD" --help >help.txt 2>&1 && ok "--help exits 0" || bad "--help exits 0" help.txt
"$PD" sample --help >sample_help.txt 2>&1 && ok "sample --help exits 0" || bad "sample --help" sample_help.txt
# The sampler names as the library's table gives them: from the --sampler line of sample --help.
samplers=$(grep -oE -- '--sampler [a-z0-9+|_-]+' sample_help.txt | head -n 1 | cut -d' ' -f2 | tr '|' ' ')
schedules=$(grep -oE -- '--schedule [a-z0-9+|_-]+' sample_help.txt | head -n 1 | cut -d' ' -f2 | tr '|' ' ')
if [ -n "$samplers" ] && [ -n "$schedules" ]; then ok "samplers: $samplers; schedules: $schedules"
else bad "could not read the sampler/schedule lists from sample --help" sample_help.txt; fi
for s in $samplers $schedules; do
    has "--help lists $s" help.txt "^  $s "
    has "sample --help lists $s" sample_help.txt "^  $s "
done
if grep -q "(no description)" help.txt; then bad "--help: a name without description (cli/names.c)" help.txt
else ok "--help describes every name"; fi
commands=$(sed -n '/^commands:/,/^$/p' help.txt | awk 'NF && $1 != "commands:" {print $1}')
[ -n "$commands" ] && ok "commands: $(echo $commands)" || bad "no commands in --help" help.txt
for c in $commands; do
    if "$PD" "$c" --help >"help_$c.txt" 2>&1 && grep -q -- "--help" "help_$c.txt" &&
        grep -q "^usage: pixdiff $c" "help_$c.txt"; then ok "$c --help"
    else bad "$c --help" "help_$c.txt"; fi
done
"$PD" --version >version.txt || true
has "--version" version.txt '^pixdiff [0-9]+\.[0-9]+\.[0-9]+$'

# ---------------------------------------------------------------- init, info
run "init --preset tiny" "$PD" init --preset tiny --out tiny.safetensors --seed 1
"$PD" info tiny.safetensors >info.txt 2>&1 && ok "info runs" || bad "info runs" info.txt
has "info: sha256 matches sha256sum" info.txt "$(sha256sum tiny.safetensors | cut -c1-64)"
has "info: parameters" info.txt '^parameters +[0-9,]+'
has "info: GFLOP" info.txt '^GFLOP +[0-9.]+'
has "info: channel_mult [1, 2]" info.txt '^channel_mult +\[1, 2\]'
"$PD" info --tensors tiny.safetensors >tensors.txt 2>&1 || true
has "info --tensors" tensors.txt '^model\.enc\.16x16_conv\.weight'
run "init is deterministic" "$PD" init --preset tiny --out tiny2.safetensors --seed 1 --quiet
same "init: same seed, same file" tiny.safetensors tiny2.safetensors

# A 10-class model from a preset overlaid by a YAML config.
cat >cond.yaml <<'EOF'
label_dim: 10
class_names: [t-shirt, trouser, pullover, dress, coat, sandal, shirt, sneaker, bag, ankle-boot]
EOF
run "init --preset tiny --config cond.yaml" "$PD" init --preset tiny --config cond.yaml --out cond.safetensors
"$PD" info cond.safetensors >info_cond.txt 2>&1 || true
has "info: class names" info_cond.txt '^label_dim +10 \(t-shirt, trouser'

# ---------------------------------------------------------------- sample: every sampler
M=(--model tiny.safetensors)
for s in $samplers; do
    run "sample --sampler $s to a grid" "$PD" sample "${M[@]}" --sampler "$s" --steps 3 --n 4 --seed 0 --out "grid_$s.png" --quiet
    if is_png "grid_$s.png"; then ok "grid_$s.png is a PNG"; else bad "grid_$s.png is a PNG"; fi
    run "sample --sampler $s to --outdir" "$PD" sample "${M[@]}" --sampler "$s" --steps 3 --n 3 --seed 0 --outdir "dir_$s/sub" --quiet
    if is_png "dir_$s/sub/000000.png" && is_png "dir_$s/sub/000002.png" && [ ! -e "dir_$s/sub/000003.png" ]; then
        ok "--outdir dir_$s/sub has 000000..000002.png (named by seed)"
    else bad "--outdir dir_$s/sub: $(ls "dir_$s/sub" 2>&1 | tr '\n' ' ')"; fi
done

# ---------------------------------------------------------------- metadata
"$PD" inspect grid_heun.png >meta.txt 2>&1 && ok "inspect runs" || bad "inspect runs" meta.txt
has "inspect: parameters line" meta.txt '^parameters: Steps: 3, Sampler: heun, Schedule: karras'
has "inspect: seed" meta.txt 'Seed: 0[,]'
has "inspect: NFE" meta.txt 'NFE: 5[,]'
has "inspect: model hash" meta.txt "Model hash: $(sha256sum tiny.safetensors | cut -c1-10)"
has "inspect: JSON full sha256" meta.txt "\"sha256\": \"$(sha256sum tiny.safetensors | cut -c1-64)\""
has "inspect: JSON sampler" meta.txt '"sampler": "heun"'
has "inspect: version" meta.txt "Version: pixdiff $(cut -d' ' -f2 version.txt)"
"$PD" inspect --key pixdiff dir_heun/sub/000001.png >meta1.txt 2>&1 || true
has "inspect --key: image 1 has seed 1" meta1.txt '"seed": 1, "seeds": "0-2", .*"image_index": 1'

# ---------------------------------------------------------------- reproducibility
# heun with churn and ddim with eta draw per-step noise: the hardest case for batch invariance.
for mode in "--sampler heun --churn 10" "--sampler ddim --eta 1" "--sampler euler"; do
    tag=$(echo "$mode" | tr -d ' -')
    common=("${M[@]}" $mode --steps 4 --n 5 --seed 7 --quiet)
    run "$mode --batch 1 --threads 1" "$PD" sample "${common[@]}" --batch 1 --threads 1 --output-npy "b1_$tag.npy"
    run "$mode --batch 4 --threads 1" "$PD" sample "${common[@]}" --batch 4 --threads 1 --output-npy "b4_$tag.npy"
    run "$mode --batch 4 --threads 2" "$PD" sample "${common[@]}" --batch 4 --threads 2 --output-npy "t2_$tag.npy"
    same "$mode: --batch 1 vs --batch 4 bit-identical" "b1_$tag.npy" "b4_$tag.npy"
    same "$mode: --threads 1 vs 2 bit-identical" "b4_$tag.npy" "t2_$tag.npy"
    # Image 2 of seed 7 equals image 0 of a request with seed 9 (its neighbours do not matter).
    run "$mode --n 1 --seed 9" "$PD" sample "${common[@]}" --n 1 --seed 9 --output-npy "one_$tag.npy"
    img=$((16 * 16 * 4))
    if [ -s "b4_$tag.npy" ] && [ -s "one_$tag.npy" ] &&
        cmp -s <(tail -c $((3 * img)) "b4_$tag.npy" | head -c "$img") <(tail -c "$img" "one_$tag.npy"); then
        ok "$mode: image i of seed s = image 0 of seed s + i"
    else bad "$mode: image 2 of seed 7 differs from image 0 of seed 9"; fi
done
if [ ! -s b4_samplerheunchurn10.npy ] || cmp -s b4_samplerheunchurn10.npy b4_samplereuler.npy; then bad "heun and euler give the same samples"
else ok "different samplers give different samples"; fi

# --noise: an explicit z replaces drawn noise; --n defaults to its N.
run "--noise" "$PD" sample "${M[@]}" --sampler euler --steps 4 --noise b1_samplereuler.npy --output-npy nz1.npy --quiet
run "--noise --batch 2" "$PD" sample "${M[@]}" --sampler euler --steps 4 --noise b1_samplereuler.npy --output-npy nz2.npy --quiet --batch 2
same "--noise: same z, same samples" nz1.npy nz2.npy
if [ -s nz1.npy ] && [ "$(stat -c %s nz1.npy)" = "$(stat -c %s b1_samplereuler.npy)" ]; then ok "--noise: N taken from the file"
else bad "--noise: output size $(stat -c %s nz1.npy) != input size"; fi

# --nfe picks the steps: heun with 7 evaluations is 4 steps (2N - 1).
run "--nfe 7" "$PD" sample "${M[@]}" --sampler heun --nfe 7 --n 1 --out nfe.png --quiet
"$PD" inspect nfe.png >nfe.txt 2>&1 || true
has "--nfe 7 with heun: 4 steps, NFE 7" nfe.txt 'Steps: 4, .*NFE: 7,'

# --class by name on the conditional model.
run "--class dress" "$PD" sample --model cond.safetensors --class dress --steps 2 --n 2 --out cls.png --quiet
"$PD" inspect cls.png >cls.txt 2>&1 || true
has "--class dress recorded" cls.txt 'Class: 3 \(dress\)'

# --class cycle: image i asks for class i mod 10; the grid says so, each --outdir file has its class,
# and image 13 is the image --class 3 --seed 13 gives (labels do not depend on the batch).
run "--class cycle" "$PD" sample --model cond.safetensors --class cycle --steps 2 --n 14 --seed 0 --batch 4 --cols 10 \
    --out cyc.png --outdir cyc --output-npy cyc.npy --quiet
"$PD" inspect cyc.png >cyc.txt 2>&1 || true
has "--class cycle recorded in the grid" cyc.txt 'Class: cycle \(image i: i mod 10\)'
"$PD" inspect cyc/000013.png >cyc13.txt 2>&1 || true
has "--class cycle: image 13 records class 3" cyc13.txt 'Class: 3 \(dress\)'
run "--class 3 --seed 13" "$PD" sample --model cond.safetensors --class 3 --seed 13 --steps 2 --n 1 --output-npy c13.npy --quiet
img=$((($(stat -c %s cyc.npy) - $(stat -c %s c13.npy)) / 13))   # bytes per image: 14 images vs 1
if [ -s cyc.npy ] && cmp -s <(tail -c "$img" cyc.npy) <(tail -c "$img" c13.npy); then ok "--class cycle image 13 = --class 3 --seed 13"
else bad "--class cycle image 13 differs from --class 3 --seed 13"; fi

# ---------------------------------------------------------------- denoise, analytic
run "denoise runs" "$PD" denoise "${M[@]}" --input b1_samplereuler.npy --sigma 1.5 --output den.npy
if [ -f den.npy ] && [ "$(stat -c %s den.npy)" = "$(stat -c %s b1_samplereuler.npy)" ]; then ok "denoise: output shape"
else bad "denoise: output missing or wrong size"; fi
run "denoise --batch 2" "$PD" denoise "${M[@]}" --input b1_samplereuler.npy --sigma 1.5 --output den2.npy --batch 2
same "denoise: batch-independent" den.npy den2.npy
run "sample analytic:gaussian" "$PD" sample --model analytic:gaussian:res=8:ch=1 --n 4 --steps 4 --out ana.png --output-npy ana.npy --quiet
if is_png ana.png; then ok "analytic: PNG written"; else bad "analytic: no PNG"; fi
run "info analytic:gaussian" "$PD" info analytic:gaussian:res=8:ch=1

# --size: sampling at twice the trained resolution (fully convolutional), with the SNR shift;
# also the --flag=value form.
run "--size 32 --shift scale" "$PD" sample "${M[@]}" --size=32 --shift=scale --steps=2 --n=2 --out big.png --quiet
"$PD" inspect big.png >big.txt 2>&1 || true
has "--size 32: metadata" big.txt 'Shift: scale, Shift base: 16, .*Size: 32x32'

# bench on the tiny model: one line per batch size with ms, GFLOP/s, memory and CPU ms, and the
# convolution algorithm table.
"$PD" bench "${M[@]}" --batches 2,1 --repeat 1 --threads 1 >bench.txt 2>&1 || true
has "bench: batch 1 row" bench.txt '^ +1 +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+$'
has "bench: batch 2 row" bench.txt '^ +2 +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+$'
has "bench: convolution algorithm rows" bench.txt '^ +3x3 +[0-9]+ +[0-9]+ +[0-9]+x[0-9]+ +[0-9]+ (direct|winograd) '
expect_rc=2 expect_error "bench: unknown --conv" '\-\-conv: unknown convolution algorithm' \
    "$PD" bench "${M[@]}" --batches 1 --repeat 1 --conv nope

# --precision bf16 (docs/benchmarks.md "bf16"): with Debian 12's OpenBLAS, which has no
# cblas_sbgemm, a one-line refusal that says why; with one that has it (LD_LIBRARY_PATH to an
# OpenBLAS built with BUILD_BFLOAT16), a run whose PNG records it and whose bench rows say so.
expect_rc=2 expect_error "sample: unknown --precision" "sample: --precision: unknown precision 'fp8'" \
    "$PD" sample "${M[@]}" --steps 2 --n 1 --out p.png --precision fp8
expect_rc=2 expect_error "PIXDIFF_PRECISION unknown" "pixdiff: PIXDIFF_PRECISION: unknown precision" \
    env PIXDIFF_PRECISION=half "$PD" sample "${M[@]}" --steps 2 --n 1 --out p.png
if "$PD" bench "${M[@]}" --batches 1 --repeat 1 --precision bf16 >bench16.txt 2>bench16.err; then
    has "bench --precision bf16: direct layers in bf16" bench16.txt ' direct-bf16 '
    run "sample --precision bf16" "$PD" sample "${M[@]}" --steps 2 --n 2 --out p16.png --quiet --precision bf16
    "$PD" inspect p16.png >p16.txt 2>&1 || true
    has "--precision bf16: metadata" p16.txt 'Precision: bf16'
else
    expect_rc=2 expect_error "sample --precision bf16 without cblas_sbgemm" \
        "sample: --precision: bf16 needs OpenBLAS's cblas_sbgemm, which the loaded OpenBLAS .* lacks" \
        "$PD" sample "${M[@]}" --steps 2 --n 1 --out p.png --precision bf16
fi

# ---------------------------------------------------------------- bad input: one line, non-zero, nothing written
expect_error "--steps -3" "pixdiff sample: --steps: expected a positive integer, got '-3'" \
    "$PD" sample --model "$T/tiny.safetensors" --steps -3 --out x.png
expect_error "--steps=abc" "--steps: expected a positive integer, got 'abc'" \
    "$PD" sample --model "$T/tiny.safetensors" --steps=abc --out x.png
expect_error "unknown --sampler" "--sampler: unknown value 'nosuch'" \
    "$PD" sample --model "$T/tiny.safetensors" --sampler nosuch --out x.png
expect_error "unknown flag" "unknown option '--bogus'" \
    "$PD" sample --model "$T/tiny.safetensors" --bogus 1 --out x.png
expect_error "flag without value" "--seed: missing value" \
    "$PD" sample --model "$T/tiny.safetensors" --out x.png --seed
expect_error "--steps with --nfe" "--nfe: " \
    "$PD" sample --model "$T/tiny.safetensors" --steps 3 --nfe 5 --out x.png
expect_error "--eta with heun" "--eta: " \
    "$PD" sample --model "$T/tiny.safetensors" --sampler heun --eta 1 --out x.png
expect_error "missing model file" "missing\.safetensors" \
    "$PD" sample --model "$T/missing.safetensors" --out x.png --outdir d --output-npy x.npy
head -c $(($(stat -c %s tiny.safetensors) / 2)) tiny.safetensors >corrupt.safetensors
expect_error "corrupt (truncated) model file" "corrupt\.safetensors" \
    "$PD" sample --model "$T/corrupt.safetensors" --out x.png --outdir d
printf 'not a model' >junk.safetensors
expect_error "junk model file" "junk\.safetensors" "$PD" info "$T/junk.safetensors"
expect_error "--noise with the wrong shape" "--noise .*ana\.npy.*shape" \
    "$PD" sample --model "$T/tiny.safetensors" --noise "$T/ana.npy" --out x.png --outdir d --output-npy x.npy
expect_error "--class 99 on a 10-class model" "--class: '99' is not a class" \
    "$PD" sample --model "$T/cond.safetensors" --class 99 --out x.png --outdir d
expect_error "--class on an unconditional model" "--class: " \
    "$PD" sample --model "$T/tiny.safetensors" --class 1 --out x.png
expect_error "--out into a missing directory" "--out: " \
    "$PD" sample --model "$T/tiny.safetensors" --out nodir/x.png
printf 'model_channels: 16\nchanel_mult: [1, 2]\n' >"$T/typo.yaml"
expect_error "unknown YAML key in init --config" "chanel_mult" \
    "$PD" init --preset tiny --config "$T/typo.yaml" --out m.safetensors
expect_error "init with an unknown preset" "--preset: unknown value 'huge'" \
    "$PD" init --preset huge --out m.safetensors
expect_error "malformed analytic spec" "--model: " \
    "$PD" sample --model analytic:nosuch --out x.png
expect_error "denoise without --sigma" "--sigma: " \
    "$PD" denoise --model "$T/tiny.safetensors" --input "$T/den.npy" --output d.npy
expect_error "inspect a non-PNG" "tiny\.safetensors" "$PD" inspect "$T/tiny.safetensors"
expect_error "unknown command" "unknown command 'nosuch'" "$PD" nosuch
if [ ! -e "$SRC/models/fashion32.safetensors" ]; then
    expect_error "no default model" "no --model given and no default model" \
        env PIXDIFF_MODEL="$T/none.safetensors" "$PD" sample --out x.png
else
    run "the default model samples" "$PD" sample --n 2 --steps 2 --out default.png --quiet
fi

# ---------------------------------------------------------------- default model via $PIXDIFF_MODEL
run "\$PIXDIFF_MODEL" env PIXDIFF_MODEL="$T/tiny.safetensors" "$PD" sample --n 2 --steps 2 --out envmodel.png --quiet
"$PD" inspect envmodel.png >env.txt 2>&1 || true
has "\$PIXDIFF_MODEL is the default model" env.txt 'Model: tiny,'

# ---------------------------------------------------------------- plot: CSV columns to a PNG
printf 'images,step,loss,note\n64,1,0.9,"a, quoted"\n128,2,0.5,\n192,3,0.4,x\n' >log.csv
printf 'images,step,loss\n64,1,0.8\n128,2,0.6\n' >log2.csv
run "plot one column" "$PD" plot log.csv --y loss --logy --out loss.png
run "plot two files" "$PD" plot log.csv log2.csv --y loss,step --labels a,b,c,d --out two.png
if [ -s loss.png ] && [ -s two.png ] && [ "$(head -c 4 loss.png | tail -c 3)" = PNG ]; then ok "plots are PNG files"; else bad "plots are PNG files"; fi
cp log.csv "$T/plotsrc.csv"
expect_error "plot: unknown column" "no column 'nosuch' \(--y\)" "$PD" plot "$T/plotsrc.csv" --y nosuch --out p.png
expect_error "plot: wrong label count" "--labels: expected 1 names" "$PD" plot "$T/plotsrc.csv" --y loss --labels a,b --out p.png
printf 'images,loss\n1,2\n3\n' >"$T/short.csv"
expect_error "plot: a short row" "short\.csv:3: 1 fields, the header has 2" "$PD" plot "$T/short.csv" --y loss --out p.png

# ---------------------------------------------------------------- distill amed, end to end
# A few trajectories on the tiny model: a predictor file that info describes and sample uses.
run "distill amed (tiny, 8 trajectories)" "$PD" distill amed --model tiny.safetensors --nfe 3 \
    --images 8 --batch 4 --out pred.safetensors --quiet
"$PD" info pred.safetensors >pinfo.txt 2>&1 && has "info: an AMED predictor, what it was trained for" pinfo.txt \
    '^kind +AMED predictor, solver' || bad "info on a predictor" pinfo.txt
has "info: NFE 3 with AFS" pinfo.txt '^nfe +3 \(2 steps, AFS\)'
run "sample with the predictor" "$PD" sample --model tiny.safetensors --sampler amed --predictor pred.safetensors \
    --n 2 --out amed.png --quiet
expect_error "distill amed --nfe 1" "--nfe: AMED spends 2 evaluations per step" \
    "$PD" distill amed --model tiny.safetensors --nfe 1 --out p2.safetensors
expect_error "a model given as the predictor says what it is" "tiny.safetensors: not an AMED predictor: it is a model" \
    "$PD" sample --model tiny.safetensors --sampler amed --predictor tiny.safetensors --n 1 --out x.png
expect_error "a predictor given as the model says what it is" "pred.safetensors: not a model: it is an AMED predictor" \
    "$PD" sample --model pred.safetensors --n 1 --out x.png
expect_error "a predictor for the wrong sampler" "use --sampler amed" \
    "$PD" sample --model tiny.safetensors --sampler amed-plugin --predictor pred.safetensors --n 1 --out x.png

e2e_finish
