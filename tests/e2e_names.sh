#!/usr/bin/env bash
# e2e_names.sh — names tell the API from the internals (README "Names"): `pd_` / `PD_` belong to
# include/pixdiff.h, the public API, and nothing else; internal code takes its room's prefix
# (core_, rng_, gemm_, noise_, sampler_, ...). Three checks:
#   - sources: every `pd_...` word in the C files of the tree (library rooms, cli, tests, bench,
#     examples), string literals aside, is a name of pixdiff.h, or a prefix of some (a comment's
#     `pd_eval_*`); every `#define PD_...` is an include guard (PD_..._H) or a name of pixdiff.h;
#   - objects: every global `pd_` symbol that libpixdiff.a defines is a name of pixdiff.h;
#   - exports: every symbol libpixdiff.so exports is a name of pixdiff.h (cmake/pixdiff.map
#     exports `pd_*`, so the first two rules are what keep internals out of the ABI).
# usage: e2e_names.sh PIXDIFF SOURCE_DIR   (the build directory is PIXDIFF's directory)
set -u
. "$(dirname "$0")/testutil.sh"
e2e_init "$(basename "$0")" "$@"
BUILD=$(dirname "$PD")

grep -ohE '\b(pd|PD)_[A-Za-z0-9_]+\b' "$SRC/include/pixdiff.h" | sort -u >public.txt
if [ "$(wc -l <public.txt)" -gt 100 ]; then ok "pixdiff.h: $(wc -l <public.txt) public names"
else bad "pixdiff.h: only $(wc -l <public.txt) names found"; fi

# A word is public if pixdiff.h has it, or if it ends in '_' and some public name starts with it.
not_public() { # reads words, prints those that are not public
    awk 'NR == FNR { pub[$0] = 1; next }
         { if ($0 in pub) next
           if ($0 ~ /_$/) for (p in pub) if (index(p, $0) == 1) next
           print }' public.txt -
}

# ---- sources
: >sources.txt
for d in core nn unet classifier schedules samplers metrics distill sweep convert cli tests bench examples; do
    [ -d "$SRC/$d" ] && find "$SRC/$d" -name '*.[ch]' >>sources.txt
done
if [ "$(wc -l <sources.txt)" -gt 100 ]; then ok "$(wc -l <sources.txt) C sources to check"
else bad "only $(wc -l <sources.txt) C sources found under $SRC"; fi
: >src_words.txt
# char literals first (a '"' would open a string), then string literals (temporary file names such
# as "/tmp/pd_test_%d" are not identifiers); one awk over all files, printing "file: word"
xargs -a sources.txt awk -v src="$SRC/" '
    { line = $0
      gsub(/'"'"'([^'"'"'\\]|\\.)'"'"'/, "", line)
      gsub(/"([^"\\]|\\.)*"/, "", line)
      while (match(line, /(^|[^A-Za-z0-9_])pd_[A-Za-z0-9_]+/)) {
          w = substr(line, RSTART, RLENGTH); sub(/^[^p]/, "", w)
          f = FILENAME; if (index(f, src) == 1) f = substr(f, length(src) + 1)
          print f ": " w
          line = substr(line, RSTART + RLENGTH)
      } }' | sort -u >src_words.txt
cut -d' ' -f2 src_words.txt | sort -u | not_public >src_bad.txt
if [ ! -s src_bad.txt ]; then ok "sources: every pd_ word is a name of pixdiff.h"
else
    grep -wFf src_bad.txt src_words.txt | head -n 20 >src_bad_where.txt
    bad "sources use pd_ names pixdiff.h does not declare: $(head -n 8 src_bad.txt | tr '\n' ' ')" src_bad_where.txt
fi
while read -r f; do
    grep -oE '^[[:space:]]*#[[:space:]]*define[[:space:]]+PD_[A-Za-z0-9_]+' "$f" |
        awk -v f="${f#"$SRC"/}" '{print f": "$NF}'
done <sources.txt | sed -E 's/#define//' | awk '$2 !~ /_H$/' | sort -u >defines.txt
cut -d' ' -f2 defines.txt | sort -u | not_public >def_bad.txt
if [ ! -s def_bad.txt ]; then ok "sources: every #define PD_ is an include guard or a name of pixdiff.h"
else
    grep -wFf def_bad.txt defines.txt | head -n 20 >def_bad_where.txt
    bad "sources #define PD_ names pixdiff.h does not declare: $(head -n 8 def_bad.txt | tr '\n' ' ')" def_bad_where.txt
fi

# ---- objects: what the static library defines
if [ -f "$BUILD/libpixdiff.a" ]; then
    # global (upper case), unique (u) and indirect (i: target_clones) symbols
    nm --defined-only "$BUILD/libpixdiff.a" 2>/dev/null | awk 'NF == 3 && $2 ~ /^[A-Zui]$/ {print $3}' |
        sort -u >a_syms.txt
    grep -E '^pd_' a_syms.txt | comm -23 - public.txt >a_bad.txt
    if [ "$(grep -c '^pd_' a_syms.txt)" -lt 100 ]; then bad "libpixdiff.a: only $(grep -c '^pd_' a_syms.txt) pd_ symbols"
    elif [ ! -s a_bad.txt ]; then ok "libpixdiff.a: its $(grep -c '^pd_' a_syms.txt) global pd_ symbols are all in pixdiff.h"
    else bad "libpixdiff.a defines pd_ symbols pixdiff.h does not declare: $(head -n 8 a_bad.txt | tr '\n' ' ')"; fi
else bad "no $BUILD/libpixdiff.a"; fi

# ---- exports of the shared library
so=$(ls "$BUILD"/libpixdiff.so.*.* 2>/dev/null | head -n 1)
if [ -n "$so" ]; then
    nm -D --defined-only "$so" | awk 'NF == 3 && $2 ~ /^[A-Zui]$/ {print $3}' | sed 's/@.*//' | sort -u >so_syms.txt
    grep -vxE 'PIXDIFF_[0-9]+' so_syms.txt | comm -23 - public.txt >so_bad.txt
    if [ ! -s so_bad.txt ] && [ -s so_syms.txt ]; then ok "libpixdiff.so exports $(wc -l <so_syms.txt) names, all of pixdiff.h"
    else bad "libpixdiff.so exports names pixdiff.h does not declare: $(head -n 8 so_bad.txt | tr '\n' ' ')"; fi
else bad "no $BUILD/libpixdiff.so.*"; fi
e2e_finish
