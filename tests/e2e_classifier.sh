#!/usr/bin/env bash
# e2e_classifier.sh — end-to-end tests of the feature classifier through the CLI, run by ctest as
#   bash tests/e2e_classifier.sh <path-to-pixdiff> <source-dir>
# `pixdiff train` with a (tiny) classifier config on Fashion-MNIST must train with cross-entropy,
# log the t10k test accuracy at its checkpoints and export a classifier model that `pixdiff info`
# describes (kind, feature width, class names); a classifier must be refused as a denoiser with one
# clear line; the shipped models/fashion-classifier.safetensors (when present) must be a classifier
# with 128 features, under 16 MB. Skipped without Fashion-MNIST. Prints "N passed, M failed".
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/testutil.sh"
need_fashion_mnist t10k
e2e_init e2e_classifier.sh "$@"
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2


# A classifier a few hundred times cheaper than the shipped one (same pipeline).
cat >clf.yaml <<'YAML'
model:
  arch: classifier
  kind: classifier
  img_resolution: 32
  in_channels: 1
  label_dim: 10
  out_channels: 10
  model_channels: 8
  channel_mult: [1, 2, 2]
  num_blocks: 1
  channel_mult_emb: 4
  attn_resolutions: []
  augment_dim: 0
  dropout: 0.1
data:
  kind: fashion-mnist
  flip: true
optimizer:
  lr: 0.02
  warmup_images: 128
ema:
  halflife_images: 500
training:
  batch: 64
  duration_images: 1024
  checkpoint_images: 0   # one checkpoint (and one test evaluation), at the end
  seed: 1
  threads: 2
output:
  dir: run
YAML

if "$PD" train --config clf.yaml >train.out 2>&1 && [ -f run/model.safetensors ]; then
    ok "pixdiff train with a classifier config"
else bad "pixdiff train with a classifier config" train.out; fi
n=$(grep -c "test accuracy .* on the 10000 t10k images" train.out)
acc=$(grep "test accuracy" train.out | tail -n 1 | sed 's/.*test accuracy \([0-9.]*\)%.*/\1/')
if [ "$n" = 1 ] && awk -v a="$acc" 'BEGIN { exit !(a > 20 && a <= 100) }'; then
    ok "test accuracy logged at the checkpoint: $acc% after 1024 images (chance: 10%)"
else bad "test accuracy lines ($n, last '$acc')" train.out; fi
if "$PD" info run/model.safetensors >info.out 2>&1 && grep -q "^kind  *classifier" info.out &&
    grep -q "^features  *32 " info.out && grep -q "ankle-boot" info.out; then
    ok "info shows a classifier with 32 features and the class names"
else bad "info of the exported classifier" info.out; fi
if "$PD" sample --model run/model.safetensors --n 1 --out s.png >sample.out 2>&1; then
    bad "sample with a classifier model (succeeded)" sample.out
elif [ "$(wc -l <sample.out)" -le 2 ] && grep -q "not a denoiser" sample.out; then
    ok "sample refuses a classifier with one clear line"
else bad "sample with a classifier model (message)" sample.out; fi

M=$SRC/models/fashion-classifier.safetensors
if [ -f "$M" ]; then
    size=$(stat -c %s "$M")
    if "$PD" info "$M" >m.out 2>&1 && grep -q "^kind  *classifier" m.out &&
        grep -q "^features  *128 " m.out && [ "$size" -lt 16000000 ]; then
        ok "shipped fashion-classifier: a classifier with 128 features, $size bytes"
    else bad "shipped fashion-classifier ($size bytes)" m.out; fi
fi

e2e_finish
