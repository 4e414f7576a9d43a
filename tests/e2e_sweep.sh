#!/usr/bin/env bash
# e2e_sweep.sh — end-to-end tests of `pixdiff sweep`, run by ctest as
#   bash tests/e2e_sweep.sh <path-to-pixdiff> <source-dir>
# On a tiny random U-Net (`pixdiff init --preset tiny`) with the trajectory metric: --dry-run lists
# the cells and writes nothing; a run writes results.jsonl/csv/md, the plots, the sample grids and
# the cached reference; a re-run samples nothing; a run killed with SIGKILL in the middle of a cell
# and run again ends with every cell exactly once and no torn line; bad sweep files fail with one
# line naming file:line: key and write nothing. The shipped configs are checked too: quick.yaml
# runs, every fashion32-*.yaml validates with --dry-run. Prints the fraction of sampling time spent
# outside the denoiser per cell. Prints "N passed, M failed".
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/testutil.sh"
e2e_init e2e_sweep.sh "$@"
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2
unset PIXDIFF_MODEL

lines() { if [ -f "$1" ]; then wc -l <"$1" | tr -d ' '; else echo 0; fi; }
# Every line of a results.jsonl is a whole object ({"key": ... }) and no key appears twice.
check_jsonl() {
    local f=$1 want=$2 name=$3
    local n torn dups
    n=$(lines "$f")
    torn=$(grep -cv '^{"key": ".*}$' "$f")
    dups=$(sed 's/^{"key": "\([^"]*\)".*/\1/' "$f" | sort | uniq -d | wc -l)
    if [ "$n" -eq "$want" ] && [ "$torn" -eq 0 ] && [ "$dups" -eq 0 ] && [ "$(tail -c 1 "$f" | od -An -c | tr -d ' ')" = '\n' ]; then
        ok "$name: $n lines, none torn, no key twice"
    else
        bad "$name: $n lines (want $want), $torn torn, $dups duplicate keys" "$f"
    fi
}
# A bad sweep file exits 2 (testutil.sh's expect_error: one stderr line, nothing written).
expect_rc=2

"$PD" init --preset tiny --out tiny.safetensors --seed 1 --quiet && ok "init --preset tiny" || bad "init"

cat >tiny.yaml <<'EOF'
# a tiny sweep on a random U-Net
model: tiny.safetensors
samplers:
  - euler
  - heun
  - name: dpmpp-2m
    options: {afs: true}
nfe: [3, 6]
n: 8
batch: 4
seed: 3
metrics: [trajectory]
save_grid: true
threads: 1        # OpenMP barriers crawl on a busy 2-core machine; results do not depend on it
output: out
EOF

# ---------------------------------------------------------------- dry run
"$PD" sweep tiny.yaml --dry-run >dry.txt 2>dry.err && ok "--dry-run exits 0" || bad "--dry-run" dry.err
if [ "$(grep -c '^cell [0-9]*/6 ' dry.txt)" -eq 6 ] && [ ! -e out ]; then ok "--dry-run lists 6 cells, writes nothing"
else bad "--dry-run listing" dry.txt; fi
grep -q 'heun nfe<=6 (3 steps, NFE 5)' dry.txt && ok "dry run: heun budget 6 -> 3 steps, NFE 5" || bad "heun budget" dry.txt
grep -q 'dpmpp-2m afs nfe<=3 (4 steps, NFE 3)' dry.txt && ok "dry run: AFS saves one evaluation" || bad "afs budget" dry.txt

# ---------------------------------------------------------------- the sweep
if "$PD" sweep tiny.yaml >run.out 2>run.err; then ok "sweep runs"; else bad "sweep runs" run.err; fi
check_jsonl out/results.jsonl 6 "results.jsonl"
[ "$(lines out/results.csv)" -eq 7 ] && ok "results.csv: header + 6 rows" || bad "results.csv" out/results.csv
grep -q '^| sampler | 3 | 6 |$' out/results.md && grep -q '^| heun |' out/results.md &&
    ok "results.md: headline table" || bad "results.md" out/results.md
for p in out/plot_traj_rmse.png out/plot_traj_psnr.png; do
    is_png "$p" && ok "$p is a PNG" || bad "$p"
done
[ "$(ls out/grids/*.png 2>/dev/null | wc -l)" -eq 6 ] && ok "6 sample grids" || bad "grids: $(ls out/grids 2>&1)"
ls out/reference/*.key >/dev/null 2>&1 && ok "reference cached" || bad "no cached reference"
grep -q 'at most .* outside the denoiser' run.err && ok "summary reports the time outside the denoiser" || bad "summary" run.err
echo "     time outside the denoiser, per cell (tiny U-Net, 8 images, batch 4):"
grep -o '^cell [0-9]*/[0-9]* [^:]*: .* \([0-9.]*% outside the denoiser\)' run.err | sed 's/: traj.*|/:/; s/^/       /'

# ---------------------------------------------------------------- re-run: nothing to do
cp out/results.jsonl before.jsonl
"$PD" sweep tiny.yaml >rerun.out 2>rerun.err || bad "re-run" rerun.err
grep -q '6 cells: 0 run now, 6 already done' rerun.err && cmp -s before.jsonl out/results.jsonl &&
    ok "re-run skips every cell, results.jsonl unchanged" || bad "re-run" rerun.err

# ---------------------------------------------------------------- kill -9 mid-cell, then resume
# More budgets: 6 new cells (the references are cached, so the new cells start at once).
sed -i 's/^nfe: \[3, 6\]/nfe: [3, 6, 12, 24]/' tiny.yaml
"$PD" sweep tiny.yaml --quiet >kill.out 2>kill.err &
pid=$!
killed=0
for _ in $(seq 1 600); do
    if [ "$(lines out/results.jsonl)" -ge 7 ]; then
        kill -9 "$pid" 2>/dev/null && killed=1
        break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
done
wait "$pid" 2>/dev/null
n_killed=$(lines out/results.jsonl)
if [ "$killed" -eq 1 ] && [ "$n_killed" -lt 12 ]; then ok "killed with SIGKILL after $n_killed lines"
else bad "kill -9 did not land mid-sweep (killed $killed, $n_killed lines)" kill.err; fi
"$PD" sweep tiny.yaml >resume.out 2>resume.err && ok "resume after kill -9" || bad "resume" resume.err
check_jsonl out/results.jsonl 12 "after kill -9 and resume"
grep -q "12 cells: $((12 - n_killed)) run now, $n_killed already done" resume.err &&
    ok "resume ran only the $((12 - n_killed)) missing cells" || bad "resume counts" resume.err
ls out/*.tmp.* >/dev/null 2>&1 && bad "temporary files left in out/" || ok "no temporary files left"

# ---------------------------------------------------------------- --out and --threads
# The budget-3 cells again in a second folder seeded with the cached references (so only the
# cells run), on 2 threads: the same numbers (an image does not depend on the thread count).
mkdir -p out2 && cp -r out/reference out2/
sed 's/^nfe: .*/nfe: [3]/' tiny.yaml >tiny3.yaml
"$PD" sweep tiny3.yaml --out out2 --threads 2 >out2.out 2>out2.err && check_jsonl out2/results.jsonl 3 "--out out2 --threads 2" ||
    bad "--out" out2.err
grep -q 'computing' out2.err && bad "out2 recomputed a cached reference" out2.err || ok "cached references reused"
key_rmse() { sed 's/^{"key": "\([^"]*\)".*"traj_rmse": \([^,]*\),.*/\1 \2/' "$1" | sort; }
if [ -s out2/results.jsonl ] && [ -z "$(comm -13 <(key_rmse out/results.jsonl) <(key_rmse out2/results.jsonl))" ]; then
    ok "1 and 2 threads give the same trajectory errors"
else bad "thread count changed the results"; fi

# ---------------------------------------------------------------- validation
printf 'model: tiny.safetensors\nsamplers: [euler]\nnfe: [3]\nn: 4\nmetrics: [trajectory]\noutput: bad-out\ncolour: red\n' >bad.yaml
expect_error "unknown key" '^pixdiff sweep: bad\.yaml:7: colour: unknown key' "$PD" sweep bad.yaml
printf 'model: tiny.safetensors\nsamplers:\n  - euler\n  - name: ddim\n    options: {eta: fast}\nnfe: [3]\nn: 4\nmetrics: [trajectory]\noutput: bad-out\n' >bad.yaml
expect_error "wrong type" '^pixdiff sweep: bad\.yaml:5: samplers\[1\]\.options\.eta: expected a number' "$PD" sweep bad.yaml
printf 'model: tiny.safetensors\nsamplers: [euler, eulr]\nnfe: [3]\nn: 4\nmetrics: [trajectory]\noutput: bad-out\n' >bad.yaml
expect_error "unknown sampler" "^pixdiff sweep: bad\.yaml:2: samplers\[1\]\.name: unknown sampler 'eulr'" "$PD" sweep bad.yaml
printf 'model: tiny.safetensors\nsamplers:\n  - {name: heun, end: sigma-min}\nnfe: [1]\nn: 4\nmetrics: [trajectory]\noutput: bad-out\n' >bad.yaml
expect_error "impossible budget" '^pixdiff sweep: bad\.yaml:4: nfe\[0\]: budget 1 fits no step' "$PD" sweep bad.yaml
printf 'model: missing.safetensors\nsamplers: [euler]\nnfe: [3]\nn: 4\nmetrics: [trajectory]\noutput: bad-out\n' >bad.yaml
expect_error "missing model" '^pixdiff sweep: bad\.yaml:1: model: missing\.safetensors: No such file' "$PD" sweep bad.yaml
printf 'model: tiny.safetensors\nsamplers: [euler]\nnfe: [3]\nn: 4\nlabels: cycle\nmetrics: [trajectory]\noutput: bad-out\n' >bad.yaml
expect_error "labels on an unconditional model" '^pixdiff sweep: bad\.yaml:5: labels: cycle needs a class-conditional model' "$PD" sweep bad.yaml
# Variants are checked against the model before any work: upsample guidance needs m x 16 px,
# a Skip-Tuning list needs one factor per skip of the U-Net.
printf 'model: tiny.safetensors\nsamplers: [euler]\nnfe: [3]\nn: 4\nmetrics: [trajectory]\noutput: bad-out\nvariants:\n  - name: ug\n    size: 24\n    upsample_guidance: {w: 0.5}\n' >bad.yaml
expect_error "upsample guidance size" "^pixdiff sweep: bad\.yaml:8: variants\[0\] 'ug': upsample guidance samples at m x the model's 16 px" "$PD" sweep bad.yaml
printf 'model: tiny.safetensors\nsamplers: [euler]\nnfe: [3]\nn: 4\nmetrics: [trajectory]\noutput: bad-out\nvariants:\n  - name: st\n    skip_tuning: {rho: [0.9, 1.0]}\n' >bad.yaml
expect_error "skip-tuning list length" "^pixdiff sweep: bad\.yaml:8: variants\[0\] 'st': skip_tuning: .*rho" "$PD" sweep bad.yaml
cat >var.yaml <<'EOF'
model: tiny.safetensors
samplers: [euler, dpmpp-2m]
nfe: [5]
variants:
  - name: base
  - name: shift
    shift: {kind: scale, base: 8}
  - name: ug32
    size: 32
    upsample_guidance: {w: 0.5, eta: 0.6}
  - name: skip
    skip_tuning: {rho_bottom: 0.9, rho_top: 1.0}
n: 2
metrics: [trajectory]
output: var-out
EOF
"$PD" sweep var.yaml --dry-run >var.txt 2>var.err && [ "$(grep -c '^cell [0-9]/8 ' var.txt)" -eq 8 ] &&
    grep -q 'dpmpp-2m nfe<=5 (5 steps, NFE 5) \[ug32\]' var.txt && [ ! -e var-out ] &&
    ok "variants (shift, upsample guidance, Skip-Tuning) validate: 8 cells" || bad "variants dry run" var.err
"$PD" sweep --dry-run missing.yaml >e.out 2>e.err && bad "missing sweep file accepted" ||
    { grep -q 'missing.yaml' e.err && ok "missing sweep file: $(cat e.err)" || bad "missing sweep file" e.err; }

# ---------------------------------------------------------------- shipped configs
"$PD" sweep "$SRC/configs/sweeps/fashion32-nfe.yaml" --dry-run --out f32 >f32.txt 2>f32.err &&
    [ ! -e f32 ] && grep -q '^cell [0-9]*/[0-9]* unipc nfe<=35' f32.txt && ok "fashion32-nfe.yaml validates" ||
    bad "fashion32-nfe.yaml --dry-run" f32.err
for f in "$SRC"/configs/sweeps/fashion32-*.yaml; do
    b=$(basename "$f" .yaml)
    if "$PD" sweep "$f" --dry-run --out "$b" >"$b.txt" 2>"$b.err" && [ ! -e "$b" ] && grep -q '^cell 1/' "$b.txt"
    then ok "$b.yaml validates"; else bad "$b.yaml --dry-run" "$b.err"; fi
done
"$PD" sweep "$SRC/configs/sweeps/quick.yaml" --out quick --quiet 2>quick.err &&
    [ "$(lines quick/results.jsonl)" -ge 8 ] && is_png quick/plot_traj_rmse.png && ok "quick.yaml runs" ||
    bad "quick.yaml" quick.err

e2e_finish
