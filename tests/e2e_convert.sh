#!/usr/bin/env bash
# e2e_convert.sh — `pixdiff convert` from the command line, run by ctest as
#   bash tests/e2e_convert.sh <path-to-pixdiff> <source-dir>
# Converts the EDM-format snapshot fixtures (tests/fixtures/convert, made by make_pickles.py with
# NVlabs/edm's code), then uses the result with info, denoise and sample, and marks a SiD-style
# file as a generator. Hostile and broken inputs — a pickle calling os.system, a claimed size of
# 2^64 bytes, 100000 nested tuples, truncated snapshots and torch files, a file that is not a
# pickle — must each exit 2 with one line on stderr and write nothing.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/testutil.sh"
e2e_init e2e_convert.sh "$@"
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2
unset PIXDIFF_MODEL
F=$SRC/tests/fixtures/convert

gzip -dc "$F/ddpmpp-edm.pkl.gz" >ddpmpp.pkl
gzip -dc "$F/sid-generator.pkl.gz" >sid.pkl

if "$PD" convert ddpmpp.pkl ddpmpp.safetensors >conv.out 2>conv.err; then
    ok "convert an EDM snapshot"
    has "it says what it found" conv.out "EDMPrecond \+ SongUNet \(DDPM\+\+\), 8x8, 3 channels, conditional; 147 tensors"
else bad "convert an EDM snapshot" conv.err; fi
[ -s conv.err ] && bad "no progress lines for a small file" conv.err || ok "no progress lines for a small file"
"$PD" info ddpmpp.safetensors >info.txt 2>&1 && ok "info reads the converted file" || bad "info" info.txt
has "info: label_dim 3" info.txt "^label_dim +3"
has "info: augment_dim 9" info.txt "^augment_dim +9"
if "$PD" denoise --model ddpmpp.safetensors --input "$F/x.npy" --sigma 1 --class 1 --output d.npy >d.log 2>&1 &&
    [ -s d.npy ]; then ok "denoise with the converted model"; else bad "denoise" d.log; fi
if "$PD" sample --model ddpmpp.safetensors --steps 3 --n 2 --seed 1 --class 2 --out s.png >s.log 2>&1 &&
    is_png s.png; then ok "sample with the converted model"; else bad "sample" s.log; fi

if "$PD" convert --generator sid.pkl gen.safetensors >gen.out 2>&1; then ok "convert --generator"
else bad "convert --generator" gen.out; fi
"$PD" info gen.safetensors >gen_info.txt 2>&1 || true
has "info: kind generator" gen_info.txt "^kind +generator"
has "info: sigma_init 2.5" gen_info.txt "^sigma_init +2.5"
if "$PD" sample --model gen.safetensors --n 2 --out g.png >g.log 2>&1 && is_png g.png; then
    ok "sample with the converted generator"; else bad "sample with the generator" g.log; fi

# ---------------------------------------------------------------- bad input: exit 2, nothing written
printf '\x80\x02cos\nsystem\nX\x0a\x00\x00\x00echo pwned\x85R.' >system.pkl
printf '\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\xffabc.' >huge.pkl
{ printf '\x80\x02)'; head -c 100000 /dev/zero | tr '\0' '\205'; printf '.'; } >bomb.pkl
head -c 60000 ddpmpp.pkl >cut.pkl
head -c 2900 "$F/inception-legacy.pth" >cut-legacy.pth
head -c 4000 "$F/inception-zip.pth" >cut-zip.pth
echo "not a pickle" >text.pkl
expect_rc=2
expect_error "a pickle calling os.system" "global 'os.system' is not allowed" "$PD" convert system.pkl o.safetensors
expect_error "a claimed size of 2^64 bytes" "system.pkl|huge.pkl: pickle byte 2: truncated" "$PD" convert huge.pkl o.safetensors
expect_error "100000 nested tuples" "nested deeper than" "$PD" convert bomb.pkl o.safetensors
expect_error "a truncated snapshot" "cut.pkl: " "$PD" convert cut.pkl o.safetensors
expect_error "a truncated legacy torch file" "cut-legacy.pth: " "$PD" convert cut-legacy.pth o.safetensors
expect_error "a truncated torch zip" "cut-zip.pth: " "$PD" convert cut-zip.pth o.safetensors
expect_error "a text file" "neither a pickle" "$PD" convert text.pkl o.safetensors
expect_error "a missing input" "missing.pkl" "$PD" convert missing.pkl o.safetensors
expect_error "--key of no entry" "no 'G' entry" "$PD" convert --key G ddpmpp.pkl o.safetensors
expect_error "--sigma-init without --generator" "--sigma-init" "$PD" convert --sigma-init 3 sid.pkl o.safetensors
expect_error "an output folder that does not exist" "nodir" "$PD" convert ddpmpp.pkl nodir/o.safetensors
expect_error "a safetensors state dict without --config" "needs --config" "$PD" convert ddpmpp.safetensors o.safetensors
e2e_finish
