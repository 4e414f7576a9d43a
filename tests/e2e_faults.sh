#!/usr/bin/env bash
# e2e_faults.sh — SIGKILL at random moments of the commands whose kill tests are not elsewhere
# (train: e2e_train.sh, distill sid: e2e_sid.sh, sweep: e2e_sweep.sh), run by ctest as
#   bash tests/e2e_faults.sh <path-to-pixdiff> <source-dir>
# `sample --outdir`: every PNG under a final name is complete and byte-identical to an
# uninterrupted run's (atomic writes), and running the command again completes the set.
# `distill amed`: killed again and again and resumed, it writes a predictor bit-identical to an
# uninterrupted run's, and leaves no temporary file beside its checkpoint.
# `convert`: killed at random moments while converting a 96 MB torch.save file (made by make_pth,
# next to pixdiff), the output name holds either nothing or the whole file; a rerun writes it.
# Prints "N passed, M failed".
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/testutil.sh"
e2e_init e2e_faults.sh "$@"
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 OMP_WAIT_POLICY=passive

"$PD" init --preset tiny --seed 4 --out tiny.safetensors --quiet || bad "init tiny"

# ---------------------------------------------------------------- sample --outdir
S=(sample --model tiny.safetensors --seed 0 --n 48 --batch 4 --steps 6 --quiet)
t0=$(date +%s%N)
"$PD" "${S[@]}" --outdir A >a.out 2>&1 && ok "uninterrupted sample --outdir of 48 images" ||
    bad "sample --outdir" a.out
ms=$((($(date +%s%N) - t0) / 1000000))
kills=0
for i in 1 2 3 4 5 6; do
    "$PD" "${S[@]}" --outdir B >b.out 2>&1 &
    pid=$!
    d=$((ms * (10 + RANDOM % 81) / 100))
    sleep "$((d / 1000)).$(printf %03d $((d % 1000)))"
    kill -9 $pid 2>/dev/null && kills=$((kills + 1))
    wait $pid 2>/dev/null
    # After each kill: whatever has a final name is whole (its bytes are the reference's).
    for f in B/*.png; do
        [ -e "$f" ] || continue
        cmp -s "$f" "A/$(basename "$f")" || { bad "after kill $i: $f differs from the reference"; break; }
    done
done
ok "killed sample --outdir $kills times: every PNG under a final name was complete"
"$PD" "${S[@]}" --outdir B >b.out 2>&1 || bad "sample --outdir after the kills" b.out
n_same=0
for f in A/*.png; do cmp -s "$f" "B/$(basename "$f")" && n_same=$((n_same + 1)); done
[ "$n_same" -eq 48 ] && ok "a run after the kills completes the set: 48 PNGs identical" ||
    bad "after the kills: $n_same of 48 PNGs identical"
# A killed writer can leave "<name>.png.tmp.<pid>" (never a final name); nothing else.
others=$(ls B | grep -v '^[0-9]*\.png$' | grep -v '\.png\.tmp\.[0-9]*$' || true)
[ -z "$others" ] && ok "no other files in the output folder" || bad "unexpected files: $others"

# ---------------------------------------------------------------- distill amed
P=(distill amed --model tiny.safetensors --nfe 3 --images 48 --batch 4 --threads 2 --quiet)
t0=$(date +%s%N)
"$PD" "${P[@]}" --out pa.safetensors >pa.out 2>&1 && ok "uninterrupted distill amed" ||
    bad "distill amed" pa.out
ms=$((($(date +%s%N) - t0) / 1000000))
mkdir -p C
amed_delay() {
    local d=$((ms * (5 + RANDOM % 31) / 100))
    DELAY="$((d / 1000)).$(printf %03d $((d % 1000)))"
}
kill_resume C/pb.safetensors C/pb.safetensors.ckpt 30 amed_delay pb.out "$PD" "${P[@]}" \
    --out C/pb.safetensors
if [ -f C/pb.safetensors ] && cmp -s pa.safetensors C/pb.safetensors; then
    ok "distill amed killed $kills times with SIGKILL and resumed: predictor bit-identical"
else bad "distill amed kill -9 and resume: predictors differ (after $kills kills)" pb.out; fi
expect_no_tmp C

# ---------------------------------------------------------------- convert
MP=$(dirname "$PD")/make_pth
if [ -x "$MP" ] && "$MP" --inception big.pth 2>mp.out; then
    t0=$(date +%s%N)
    "$PD" convert big.pth ref.safetensors >cv.out 2>&1 && ok "uninterrupted convert of a 96 MB .pth" ||
        bad "convert" cv.out
    ms=$((($(date +%s%N) - t0) / 1000000))
    mkdir -p D
    kills=0 whole=0 torn=0
    for i in $(seq 1 12); do
        rm -f D/inc.safetensors
        "$PD" convert big.pth D/inc.safetensors >cv.out 2>&1 &
        pid=$!
        d=$((ms * (5 + RANDOM % 101) / 100))
        sleep "$((d / 1000)).$(printf %03d $((d % 1000)))"
        kill -9 $pid 2>/dev/null && kills=$((kills + 1))
        wait $pid 2>/dev/null
        if [ -e D/inc.safetensors ]; then
            cmp -s D/inc.safetensors ref.safetensors && whole=$((whole + 1)) || torn=$((torn + 1))
        fi
        others=$(ls D | grep -v '^inc\.safetensors$' | grep -v '^inc\.safetensors\.tmp\.[0-9]*$' || true)
        [ -z "$others" ] || bad "after kill $i: unexpected files: $others"
        rm -f D/inc.safetensors.tmp.*   # a killed writer's temporary (96 MB each): not kept
    done
    [ "$torn" -eq 0 ] && ok "convert killed $kills times: the output name never held a partial file ($whole complete)" ||
        bad "convert killed $kills times: $torn partial files under the final name"
    "$PD" convert big.pth D/inc.safetensors >cv.out 2>&1 && cmp -s D/inc.safetensors ref.safetensors &&
        ok "convert after the kills writes the whole file" || bad "convert after the kills" cv.out
    [ "$(ls D)" = inc.safetensors ] && ok "after the kills, nothing but killed writers' temporaries and the output" ||
        bad "files left: $(ls D)"
else bad "make_pth (next to pixdiff) could not write the .pth" mp.out; fi

e2e_finish
