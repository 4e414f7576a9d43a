#!/usr/bin/env bash
# e2e_conventions.sh — the CLI conventions of issue 19, one check per convention:
#   - exit status, table-driven across commands: 2 bad usage or input (flag, value, file
#     contents), 1 failed work, 130 interrupted; every error is one line on stderr and writes
#     nothing (expect_error, tests/testutil.sh), including --outdir next to an unwritable --out;
#   - seeds as EDM's generate.py: --seeds 0-3,10 (image i uses its listed seed, the same image as
#     --seed S), --outdir files named by seed, a drawn seed printed and recorded, --n/--seeds
#     exclusive;
#   - classifier-free guidance: --guidance 1 equals the conditional model bit for bit (AMED with a
#     predictor too: its feature tap crosses the wrapper), W = 0 the
#     unconditional model, the weight is recorded; refused for unconditional models and for models
#     that record no label dropout... (only when they record 0);
#   - --out x.npy writes an array; --json output of info and sample is valid JSON (json_check, a
#     strict checker built next to pixdiff) with the expected values;
#   - shipped configs work from any directory;
#   - progress lines fit 80 columns and say what their rate counts (sample, train, distill amed,
#     sweep).
# usage: e2e_conventions.sh PIXDIFF SOURCE_DIR
set -u
. "$(dirname "$0")/testutil.sh"
e2e_init "$(basename "$0")" "$@"
JC=$(dirname "$PD")/json_check
export OMP_NUM_THREADS=2

"$PD" init --preset tiny --out tiny.safetensors --seed 1 --quiet >/dev/null 2>&1
printf 'label_dim: 10\n' >cond.yaml
"$PD" init --preset tiny --config cond.yaml --out cond.safetensors --seed 1 --quiet >/dev/null 2>&1
printf 'label_dim: 10\nlabel_dropout: 0\n' >nodrop.yaml
"$PD" init --preset tiny --config nodrop.yaml --out nodrop.safetensors --seed 1 --quiet >/dev/null 2>&1
[ -s tiny.safetensors ] && [ -s cond.safetensors ] && [ -s nodrop.safetensors ] && ok "tiny models" || bad "init tiny models"
M=(--model "$T/tiny.safetensors")
C=(--model "$T/cond.safetensors")
mkdir fixtures
# an all-NaN float32 [1,1,16,16] .npy (NaN = 00 00 c0 7f little-endian)
nan_npy() {
    local hdr="{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 16, 16), }"
    while [ $(( (10 + ${#hdr} + 1) % 64 )) -ne 0 ]; do hdr="$hdr "; done
    { printf '\x93NUMPY\x01\x00'; printf "\\x$(printf %02x $(( (${#hdr} + 1) % 256 )))\\x$(printf %02x $(( (${#hdr} + 1) / 256 )))"
      printf '%s\n' "$hdr"; for _ in $(seq 256); do printf '\x00\x00\xc0\x7f'; done; } >"$1"
}
nan_npy fixtures/nan.npy
printf 'images,loss\n1,\n2,x\n' >fixtures/nonum.csv
printf 'not a png' >fixtures/bad.png
printf 'model: m.safetensors\nbogus: 1\n' >fixtures/bad-sweep.yaml
cat >fixtures/missing-model.yaml <<'Y'
model: nonexistent/model.safetensors
samplers: [euler]
nfe: [4]
n: 4
metrics: [trajectory]
Y
mkdir empty-data
mkdir -p fixtures/d && cp "$SRC/configs/train/tiny.yaml" fixtures/d/tiny.yaml

# ---------------------------------------------------------------- exit status, table-driven
# rc | name | stderr pattern | command (run from $T; nothing may be written)
table() {
    while IFS='|' read -r rc name pat cmd; do
        [ -z "$rc" ] && continue
        expect_rc=$rc
        eval "expect_error \"\$name\" \"\$pat\" $cmd"
    done
    expect_rc=
}
table <<EOF_TABLE
2|no command|usage|"\$PD"
2|unknown command|unknown command|"\$PD" nosuch
2|sample: bad flag value|--steps: expected|"\$PD" sample ${M[*]} --steps -3 --out x.png
2|sample: missing model file|cannot open model|"\$PD" sample --model nosuch.safetensors --out x.png
2|sample: \$PIXDIFF_MODEL names no file|PIXDIFF_MODEL|env PIXDIFF_MODEL=nosuch.safetensors "\$PD" sample --out x.png
2|sample: --n with --seeds|--seeds: give --n or --seeds|"\$PD" sample ${M[*]} --n 3 --seeds 0-2 --out x.png
2|sample: backward seed range|--seeds: range 5-1|"\$PD" sample ${M[*]} --seeds 5-1 --out x.png
2|sample: bad seed list|--seeds: expected seeds|"\$PD" sample ${M[*]} --seeds 1,,2 --out x.png
2|sample: --out of an unknown format|--out: x.jpg: name a .png|"\$PD" sample ${M[*]} --out x.jpg
2|sample: all-NaN --noise|--noise .*NaN|"\$PD" sample ${M[*]} --noise fixtures/nan.npy --out x.png
2|sample: --size below the trained size|--size: 8 is not a whole multiple|"\$PD" sample ${M[*]} --size 8 --out x.png
2|sample: --size not a multiple|--size: 24 is not a whole multiple|"\$PD" sample ${M[*]} --size 24 --out x.png
2|sample: --guidance, unconditional model|--guidance: .*unconditional|"\$PD" sample ${M[*]} --guidance 2 --out x.png
2|sample: --guidance without --class|--guidance: guides towards a class|"\$PD" sample ${C[*]} --guidance 2 --out x.png
2|sample: --guidance, model trained without label dropout|--guidance: .*without label dropout|"\$PD" sample --model nodrop.safetensors --class 1 --guidance 2 --out x.png
2|sample: --outdir with a repeated seed|seed 3 is listed twice|"\$PD" sample ${M[*]} --seeds 3,3 --outdir d
2|denoise: missing input|--input:|"\$PD" denoise ${M[*]} --input nosuch.npy --sigma 1 --output y.npy
2|info: missing model file|cannot open model|"\$PD" info nosuch.safetensors
2|info: --json with --tensors|--json|"\$PD" info --json --tensors tiny.safetensors
2|inspect: not a PNG|bad.png|"\$PD" inspect fixtures/bad.png
2|init: unknown preset|--preset|"\$PD" init --preset nosuch --out m.safetensors
2|train: --duration 0|--duration: expected a whole number|"\$PD" train --config fixtures/d/tiny.yaml --duration 0 --out run
2|eval: --n 1|--n: the metrics need at least 2|"\$PD" eval ${M[*]} --n 1
2|eval: --size not a multiple|--size|"\$PD" eval ${M[*]} --size 24 --n 4
2|snr: --size 48|--size|"\$PD" snr --size 48
2|distill amed: --nfe 1|--nfe|"\$PD" distill amed ${M[*]} --nfe 1
2|sweep: unknown key|bogus|"\$PD" sweep fixtures/bad-sweep.yaml
2|plot: a column without numbers|no number|"\$PD" plot fixtures/nonum.csv --y loss --out p.png
2|plot: /dev/zero is bounded|plot: /dev/zero|timeout 60 "\$PD" plot /dev/zero --y loss --out p.png
1|sample: unwritable --out with --outdir|/proc/x.png|"\$PD" sample ${M[*]} --steps 2 --n 2 --seed 0 --outdir d --out /proc/x.png
1|sample: unwritable --out .npy|/proc/x.npy|"\$PD" sample ${M[*]} --steps 2 --n 2 --seed 0 --out /proc/x.npy
1|init: unwritable --out|/proc/m.safetensors|"\$PD" init --preset tiny --out /proc/m.safetensors
1|sweep --dry-run: missing model|dry run: model nonexistent/model.safetensors is missing|"\$PD" sweep --dry-run fixtures/missing-model.yaml
1|eval: no classifier found|pixdiff train --config .*fashion-classifier.yaml|env PIXDIFF_DATA=\$T/empty-data "\$PD" eval ${M[*]} --n 4
EOF_TABLE

# 130: Ctrl-C during the work, for a sampling command and a training command; nothing written by
# sample (its outputs are committed only at the end).
interrupt() { # NAME WAIT_PATTERN LOG CMD...: SIGINT once LOG matches, expect 130
    local name=$1 pat=$2 log=$3 pid rc
    shift 3
    "$@" >"$log" 2>&1 &
    pid=$!
    # Wait until the work is under way: its first log line, or (sample, which prints none into a
    # log before its minute-by-minute progress) 2 s, long past start-up.
    if [ "$pat" = - ]; then sleep 2
    else for _ in $(seq 600); do grep -Eq "$pat" "$log" && break; sleep 0.1; done; fi
    sleep 0.3
    kill -INT $pid
    wait $pid
    rc=$?
    if [ $rc -eq 130 ]; then ok "$name: Ctrl-C exits 130"; else bad "$name: Ctrl-C exit $rc" "$log"; fi
}
interrupt "sample" - int_sample.log "$PD" sample "${M[@]}" --n 100000 --steps 50 --seed 7 --outdir int_d --out int.png
sleep 0.2
if [ ! -e int_d ] && [ ! -e int.png ]; then ok "an interrupted sample writes nothing"
else bad "an interrupted sample left $(ls -d int_d int.png 2>/dev/null | tr '\n' ' ')"; fi
interrupt "train" "new run|resumed" int_train.log "$PD" train --config fixtures/d/tiny.yaml --duration 1000000 --out int_run
printf 'model: %s\nsamplers: [heun]\nnfe: [35]\nn: 100000\nmetrics: [trajectory]\n' "$T/tiny.safetensors" >fixtures/long.yaml
interrupt "sweep" "cell 1" int_sweep.log "$PD" sweep fixtures/long.yaml --out int_sweep --threads 2

# ---------------------------------------------------------------- seeds
"$PD" sample "${M[@]}" --steps 2 --seeds 0-3,10 --outdir sd --quiet >seeds.log 2>&1 || bad "sample --seeds" seeds.log
if [ "$(ls sd | tr '\n' ' ')" = "000000.png 000001.png 000002.png 000003.png 000010.png " ]; then
    ok "--seeds 0-3,10 --outdir: files named by seed"
else bad "--seeds --outdir wrote: $(ls sd | tr '\n' ' ')"; fi
"$PD" sample "${M[@]}" --steps 2 --seeds 0-3,10 --out s_list.npy --quiet >/dev/null 2>&1
"$PD" sample "${M[@]}" --steps 2 --seed 10 --n 1 --out s_10.npy --quiet >/dev/null 2>&1
img=$(( ($(stat -c %s s_list.npy) - $(stat -c %s s_10.npy)) / 4 ))
if [ -s s_10.npy ] && cmp -s <(tail -c "$img" s_list.npy) <(tail -c "$img" s_10.npy); then
    ok "--out x.npy writes an array; image 4 of --seeds 0-3,10 = --seed 10 --n 1"
else bad "--seeds: the image of seed 10 differs"; fi
"$PD" inspect --key pixdiff sd/000010.png >s10.txt 2>&1
has "the file of seed 10 records seed 10 and the list" s10.txt '"seed": 10, "seeds": "0-3,10"'
"$PD" sample "${M[@]}" --steps 2 --n 2 --out drawn.png >drawn.log 2>&1
s=$(sed -n 's/.*seed \([0-9]*\) (drawn.*/\1/p' drawn.log)
"$PD" inspect --key pixdiff drawn.png >drawn.txt 2>&1
if [ -n "$s" ] && grep -q "\"seed\": $s, .*\"seed_drawn\": true" drawn.txt; then ok "a drawn seed ($s) is printed and recorded"
else bad "drawn seed" drawn.log; fi
"$PD" sample "${M[@]}" --steps 2 --n 2 --seed "${s:-0}" --out again.npy --quiet 2>/dev/null
"$PD" sample "${M[@]}" --steps 2 --n 2 --seed "${s:-0}" --out again2.npy --batch 1 --quiet 2>/dev/null
same "the printed seed repeats the run (any --batch)" again.npy again2.npy

# ---------------------------------------------------------------- classifier-free guidance
"$PD" sample "${C[@]}" --steps 3 --seed 5 --n 3 --class 2 --out cond.npy --quiet 2>/dev/null
"$PD" sample "${C[@]}" --steps 3 --seed 5 --n 3 --class 2 --guidance 1 --out g1.npy --quiet 2>/dev/null
same "--guidance 1 = the conditional model, bit for bit" cond.npy g1.npy
"$PD" sample "${C[@]}" --steps 3 --seed 5 --n 3 --out uncond.npy --quiet 2>/dev/null
"$PD" sample "${C[@]}" --steps 3 --seed 5 --n 3 --class 2 --guidance 0 --out g0.npy --quiet 2>/dev/null
if [ -s g0.npy ] && [ -s uncond.npy ] && ! cmp -s g0.npy cond.npy; then ok "--guidance 0 differs from the conditional model"
else bad "--guidance 0"; fi
"$PD" sample "${C[@]}" --steps 3 --seed 5 --n 2 --class 2 --guidance 3 --out g3.png 2>g3.log
"$PD" inspect g3.png >g3.txt 2>&1
has "--guidance recorded (parameters)" g3.txt 'CFG scale: 3'
has "--guidance recorded (JSON)" g3.txt '"guidance": 3'
has "a model that records no label dropout: a note" g3.log 'does not record its label dropout'
# AMED's feature tap comes back through the evaluation call, so it crosses the guidance wrapper
# (the conditional branch's): AMED with a predictor under --guidance 1 = without guidance. (It used
# to read zeros behind the wrapper.) The shipped predictor reads the tiny model's 8x8 level too.
A=(--sampler amed --predictor "$SRC/models/fashion32-amed-nfe5.safetensors" --seed 5 --n 2 --class 2)
"$PD" sample "${C[@]}" "${A[@]}" --out amed_c.npy --quiet 2>/dev/null
"$PD" sample "${C[@]}" "${A[@]}" --guidance 1 --out amed_g1.npy --quiet 2>/dev/null
same "AMED with a predictor: --guidance 1 = the conditional model, bit for bit" amed_c.npy amed_g1.npy
"$PD" sample "${C[@]}" "${A[@]}" --guidance 2 --out amed_g2.npy --quiet 2>/dev/null
if [ -s amed_g2.npy ] && ! cmp -s amed_g2.npy amed_c.npy; then ok "AMED with a predictor and --guidance 2 runs"
else bad "AMED with a predictor and --guidance 2"; fi
if "$PD" sample --model nodrop.safetensors --class 1 --guidance 2 --force-guidance --steps 2 --n 1 \
    --out forced.png --quiet 2>forced.log && is_png forced.png; then ok "--force-guidance overrides a recorded label dropout of 0"
else bad "--force-guidance" forced.log; fi

# ---------------------------------------------------------------- --json
"$PD" info --json tiny.safetensors >info.json 2>info.err
if "$JC" <info.json >/dev/null 2>jc.err; then ok "info --json is valid JSON"; else bad "info --json" jc.err; fi
[ "$("$JC" config.img_resolution <info.json)" = 16 ] && ok "info --json: config.img_resolution 16" || bad "info --json value" info.json
"$PD" info --json >info_def.json 2>&1
[ "$("$JC" config.label_dim <info_def.json)" = 10 ] && ok "info --json without FILE: the default model" || bad "info --json default" info_def.json
"$PD" sample "${M[@]}" --steps 2 --seeds 3-4 --out j.png --json >sample.json 2>/dev/null
if "$JC" <sample.json >/dev/null 2>jc2.err; then ok "sample --json is valid JSON"; else bad "sample --json" jc2.err; fi
[ "$("$JC" settings.seeds <sample.json)" = "3-4" ] && [ "$("$JC" outputs.grid <sample.json)" = j.png ] &&
    ok "sample --json: seeds and outputs" || bad "sample --json values" sample.json
if printf '{"a": [1, 2,]}' | "$JC" 2>/dev/null; then bad "json_check accepts a trailing comma"; else ok "json_check rejects invalid JSON"; fi

# ---------------------------------------------------------------- shipped configs from anywhere
# From a directory that is neither the source tree nor the build tree: the config named as in the
# README is found in the data directory, and the model and classifier inside it resolve too.
mkdir -p far/away
(cd far/away && "$PD" sweep --dry-run configs/sweeps/fashion32-nfe.yaml) >far.txt 2>&1
rc=$?
if [ $rc -eq 0 ] && ! grep -q "would stop" far.txt; then ok "a shipped sweep dry-runs from any directory"
else bad "shipped sweep from another directory (exit $rc)" far.txt; fi

# ---------------------------------------------------------------- 80 columns
# Every long command's progress line (cli/progress.c, one printer for all) is drawn only on a
# terminal: script(1) gives the command one. Each must fit 80 columns and say what its rate counts.
if command -v script >/dev/null; then
    expect_tty_progress sample "steps/s" '^sample: batch' "$PD" sample "${M[*]}" --steps 40 --n 64 --batch 8 --seed 1 --out tty.png
    expect_tty_progress train "img/s" '^train: ' "$PD" train --config fixtures/d/tiny.yaml --duration 64 --out tty_run
    expect_tty_progress "distill amed" "img/s" '^amed: ' "$PD" distill amed --model tiny.safetensors --nfe 5 --images 16 \
        --batch 8 --out tty_pred.safetensors
    printf 'model: analytic:gaussian:res=8:ch=1:std=0.5\nsamplers: [heun, dpmpp-2m]\nnfe: [5, 9]\nn: 64\nbatch: 16\nmetrics: [trajectory]\n' >fixtures/tty.yaml
    expect_tty_progress sweep "evals/s" '^sweep cell' "$PD" sweep fixtures/tty.yaml --out tty_sweep
else ok "script(1) not installed: progress width not checked"; fi
e2e_finish
