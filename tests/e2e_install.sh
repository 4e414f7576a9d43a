#!/usr/bin/env bash
# e2e_install.sh — pixdiff as a library (issue 19): install the build tree to a temporary prefix,
# MOVE the prefix, then
#   - build examples/generate.c with `pkg-config --cflags --libs pixdiff` alone and run it: it finds
#     the default model through the moved library (no $PIXDIFF_* set), and its samples.npy equals
#     what the moved `pixdiff sample` writes for the same seeds, classes, sampler and steps;
#   - build a CMake project with find_package(pixdiff) against the moved prefix and run it;
#   - the moved binary finds its default model and shipped configs from another directory, and a
#     $PIXDIFF_MODEL naming a missing file is an error (exit 2), not a fall-back;
#   - the shared library has a soname and exports only pd_* names; pixdiff.pc --static lists the
#     Debian libraries.
# usage: e2e_install.sh PIXDIFF SOURCE_DIR   (the build directory is PIXDIFF's directory)
set -u
. "$(dirname "$0")/testutil.sh"
e2e_init "$(basename "$0")" "$@"
BUILD=$(dirname "$PD")
unset PIXDIFF_MODEL PIXDIFF_DATA PIXDIFF_CLASSIFIER
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

if cmake --install "$BUILD" --prefix "$T/inst" >install.log 2>&1; then ok "cmake --install to a temporary prefix"
else bad "cmake --install" install.log; e2e_finish; exit 1; fi
mv "$T/inst" "$T/moved"
P=$T/moved
pc=$(find "$P" -name pixdiff.pc | head -n 1)
so=$(find "$P" -name 'libpixdiff.so.*.*' | head -n 1)
libdir=$(dirname "$so")
for f in bin/pixdiff include/pixdiff.h share/pixdiff/models/fashion32.safetensors \
         share/pixdiff/configs/sweeps/quick.yaml; do
    if [ -e "$P/$f" ]; then ok "installed $f"; else bad "installed $f"; fi
done
if [ -n "$pc" ] && [ -e "$libdir/libpixdiff.a" ] && [ -e "$libdir/libpixdiff.so" ] &&
   [ -n "$(find "$P" -name pixdiffConfig.cmake)" ]; then ok "installed libpixdiff.{so,a}, pixdiff.pc, pixdiffConfig.cmake"
else bad "library files missing: $(find "$P" -path '*lib*' | tr '\n' ' ')"; fi

# ---- the shared library: soname, exported names
soname=$(readelf -d "$so" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
if [[ "$soname" =~ ^libpixdiff\.so\.[0-9]+$ ]]; then ok "soname $soname"; else bad "soname '$soname'"; fi
other=$(nm -D --defined-only "$so" | awk '$2 ~ /[TDB]/ {print $3}' | grep -v '^pd_' | head -n 3 | tr '\n' ' ')
if [ -z "$other" ]; then ok "libpixdiff.so exports only pd_* names"; else bad "exports non-pd_ names: $other"; fi
export PKG_CONFIG_PATH=$(dirname "$pc")
if pkg-config --static --libs pixdiff 2>pc.err | grep -q -- '-lyaml' ; then ok "pkg-config --static lists the Debian libraries"
else bad "pkg-config --static" pc.err; fi

# ---- examples/generate.c with pkg-config alone, against the moved prefix
mkdir ex
if cc -std=c11 -O2 -Wall -Werror "$SRC/examples/generate.c" $(pkg-config --cflags --libs pixdiff) \
      -o ex/generate >cc.log 2>&1; then ok "examples/generate.c builds with pkg-config --cflags --libs pixdiff"
else bad "examples/generate.c does not build" cc.log; fi
if (cd ex && LD_LIBRARY_PATH=$libdir ./generate euler 3 4 . >run.log 2>&1); then ok "the example runs (default model found from the moved prefix)"
else bad "the example fails" ex/run.log; fi
if is_png ex/000000.png && is_png ex/000003.png && is_png ex/grid.png; then ok "the example wrote PNGs"
else bad "the example's PNGs: $(ls ex | tr '\n' ' ')"; fi
mkdir elsewhere
(cd elsewhere && "$P/bin/pixdiff" sample --seeds 0-3 --class cycle --sampler euler --steps 3 \
    --out "$T/cli.npy" --quiet) >cli.log 2>&1 || bad "moved pixdiff sample" cli.log
same "example samples.npy = pixdiff sample --seeds 0-3 --class cycle (moved binary)" ex/samples.npy cli.npy

# ---- find_package(pixdiff)
mkdir -p cm/src
cp "$SRC/examples/generate.c" cm/src/
cat >cm/src/CMakeLists.txt <<'CM'
cmake_minimum_required(VERSION 3.18)
project(use_pixdiff C)
find_package(pixdiff REQUIRED)
add_executable(generate generate.c)
target_link_libraries(generate PRIVATE pixdiff::pixdiff)
CM
if cmake -S cm/src -B cm/build -DCMAKE_PREFIX_PATH="$P" >cm.log 2>&1 && cmake --build cm/build >>cm.log 2>&1 &&
   (cd cm/build && LD_LIBRARY_PATH=$libdir ./generate heun 2 1 . >>"$T/cm.log" 2>&1) && is_png cm/build/000000.png; then
    ok "find_package(pixdiff): pixdiff::pixdiff builds and runs the example"
else bad "find_package(pixdiff)" cm.log; fi

# ---- relocation of the binary: default model, shipped configs, $PIXDIFF_MODEL
(cd elsewhere && "$P/bin/pixdiff" info) >info.txt 2>&1
has "moved pixdiff info finds the default model in the moved share/" info.txt "$P/share/pixdiff/models/fashion32"
(cd elsewhere && "$P/bin/pixdiff" sweep --dry-run "$P/share/pixdiff/configs/sweeps/fashion32-nfe.yaml") >dry.txt 2>&1
rc=$?
if [ $rc -eq 0 ]; then ok "a shipped sweep config dry-runs from another directory"; else bad "shipped sweep dry run (exit $rc)" dry.txt; fi
(cd elsewhere && PIXDIFF_MODEL=/nonexistent/m.safetensors "$P/bin/pixdiff" sample --n 1 --out x.png) >pm.txt 2>&1
rc=$?
if [ $rc -eq 2 ] && grep -q 'PIXDIFF_MODEL' pm.txt && [ ! -e elsewhere/x.png ]; then ok "\$PIXDIFF_MODEL naming a missing file: exit 2"
else bad "\$PIXDIFF_MODEL missing file (exit $rc)" pm.txt; fi
mkdir data2 && cp -r "$P/share/pixdiff/models" data2/ && mv "$P/share/pixdiff" "$P/share/gone"
(cd elsewhere && PIXDIFF_DATA=$T/data2 "$P/bin/pixdiff" info) >pd.txt 2>&1
has "\$PIXDIFF_DATA names the data directory" pd.txt "$T/data2/models/fashion32"
e2e_finish
