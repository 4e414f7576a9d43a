#!/usr/bin/env bash
# e2e_fid.sh — end-to-end tests of `pixdiff eval --features inception`, run by ctest as
#   bash tests/e2e_fid.sh <path-to-pixdiff> <source-dir>
# The FID Inception weights are the synthetic hashed ones (bench_inception --write-weights, next
# to the binary; metrics/inception_synth.c): the real ones cannot be shipped, and the values do
# not matter here. With a tiny random model: statistics saved from a PNG folder (--save-ref) read
# back as the reference of the same samples drawn in memory give FID 0 exactly (the samples are
# quantised as PNGs are), as does the folder against the .npy of its float samples (with KID,
# which needs reference features); $PIXDIFF_INCEPTION stands in for --inception; a sweep with
# features: inception records FID and KID and the reference in its cell key; bad flags and a
# reference .npz of the wrong shape give one line on stderr, a non-zero exit and no files.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/testutil.sh"
e2e_init e2e_fid.sh "$@"
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2
unset PIXDIFF_INCEPTION


BI="$(dirname "$PD")/bench_inception"
run_to "synthetic Inception weights" w.txt "$BI" --write-weights w.safetensors
run_to "init a tiny model" init.txt "$PD" init --preset tiny --out tiny.safetensors
run_to "sample 4 PNGs and their floats" s.txt "$PD" sample --seed 0 --model tiny.safetensors --n 4 --steps 2 \
    --outdir A --output-npy A.npy --quiet
I=(--features inception --inception w.safetensors)

run_to "eval --save-ref from a PNG folder" save.txt "$PD" eval "${I[@]}" --images A --save-ref A.npz
[ -s A.npz ] && ok "the .npz is written" || bad "no A.npz"
has "save-ref reports the file" save.txt "statistics +A.npz"

run_to "eval samples in memory against the folder's statistics" mem.json "$PD" eval "${I[@]}" \
    --ref A.npz --model tiny.safetensors --n 4 --steps 2 --json
[ "$(json_field mem.json fid)" = "0" ] && ok "FID 0: in-memory samples == their PNGs" ||
    bad "FID in memory vs PNG statistics: $(json_field mem.json fid)" mem.json
[ "$(json_field mem.json kid)" = "null" ] && ok "no KID against statistics only" || bad "KID from an .npz"
has "n <= 2048 warns" mem.json.err "warning: 4 images is not more than the 2048 features"

run_to "eval the folder against the .npy of its floats" npy.json "$PD" eval "${I[@]}" --ref A.npy \
    --images A --json
[ "$(json_field npy.json fid)" = "0" ] && ok "FID 0: PNG folder == .npy floats" ||
    bad "FID folder vs .npy: $(json_field npy.json fid)" npy.json
[ "$(json_field npy.json kid)" != "null" ] && ok "KID against reference images" || bad "no KID" npy.json
[ "$(json_field npy.json ref_n)" = "4" ] && ok "ref_n 4" || bad "ref_n" npy.json

run_to "PIXDIFF_INCEPTION stands in for --inception" env.txt env PIXDIFF_INCEPTION=w.safetensors \
    "$PD" eval --features inception --images A --ref A.npz
has "text output has FID" env.txt "^  FID +0\.0000"

# A sweep with features: inception: fd and kid are FID and KID against the .npy reference.
cat >sweep.yaml <<YAML
model: tiny.safetensors
samplers: [euler]
nfe: [2]
n: 4
metrics: [fd, kid]
features: inception
inception: w.safetensors
fid_ref: A.npy
output: sw
YAML
run_to "sweep with features: inception" sweep.txt "$PD" sweep sweep.yaml --quiet
has "the sweep's cell records the Inception reference" sw/results.jsonl "inception=w.safetensors,prep=pytorch-fid,ref=A.npy"
has "the sweep's fd is a number" sw/results.jsonl '"fd": [0-9]'
has "the sweep's kid is a number" sw/results.jsonl '"kid": -?[0-9]'

cp "$SRC/tests/fixtures/npz_bad_shape.npz" bad.npz
expect_rc=2
expect_error "inception without a reference" "--ref: .*needs a reference" "$PD" eval "${I[@]}" --images A
expect_error "inception weights missing" "--inception: .*nofile" "$PD" eval --features inception \
    --inception nofile.safetensors --images A --ref A.npz
expect_error "no weights at all" "--inception: give the FID Inception weights" "$PD" eval \
    --features inception --images A --ref A.npz
expect_error "a reference of the wrong shape" "--ref: .*mu is \[3\] but sigma is \[4, 4\]" \
    "$PD" eval "${I[@]}" --images A --ref bad.npz
expect_error "an unknown --prep" "--prep: 'tf'" "$PD" eval "${I[@]}" --prep tf --images A --ref A.npz
expect_error "--classifier with inception" "--classifier: only read with --features classifier" \
    "$PD" eval "${I[@]}" --classifier x --images A --ref A.npz
expect_error "--ref without inception" "--ref: only read with --features inception" \
    "$PD" eval --images A --ref A.npz
expect_rc=
e2e_finish
