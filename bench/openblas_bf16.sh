#!/bin/bash
# openblas_bf16.sh — builds the OpenBLAS that docs/benchmarks.md "bf16" measured --precision bf16
# with: Debian 12's OpenBLAS 0.3.21 has no cblas_sbgemm (built without BUILD_BFLOAT16), so
# pixdiff's bf16 products need another one at run time. pixdiff never links or needs this build:
# it looks cblas_sbgemm up in whichever OpenBLAS the process loaded, so the same binary runs bf16
# once this library comes first on LD_LIBRARY_PATH.
#
#   bash bench/openblas_bf16.sh OPENBLAS_SOURCE [TARGET]     (e.g. a clone of OpenMathLib/OpenBLAS)
#   LD_LIBRARY_PATH=OPENBLAS_SOURCE build/pixdiff bench --preset ref64 --precision bf16
#   LD_LIBRARY_PATH=OPENBLAS_SOURCE build/test_bf16           (its layer checks through this sbgemm)
#
# TARGET: OpenBLAS's name for the CPU (default COOPERLAKE: AVX512-BF16; SAPPHIRERAPIDS too). The
# build is OpenMP-threaded like Debian's libopenblas0-openmp (pixdiff calls it from its own threads,
# one thread per call) and has no LAPACK (no Fortran needed): commands that compute an FID call
# LAPACK's dsyevd, so run `pixdiff eval` / `fid` without LD_LIBRARY_PATH. About 3 minutes on 2 cores.
set -eu
SRC=${1:?usage: openblas_bf16.sh OPENBLAS_SOURCE [TARGET]}
TARGET=${2:-COOPERLAKE}
make -C "$SRC" TARGET="$TARGET" DYNAMIC_ARCH=0 BUILD_BFLOAT16=1 USE_OPENMP=1 NUM_THREADS=8 \
    NO_LAPACK=1 NO_LAPACKE=1 NO_STATIC=1 -j"$(nproc)" libs netlib shared
if nm -D "$SRC/libopenblas.so.0" | grep -q ' T cblas_sbgemm$'; then
    echo "ok: $SRC/libopenblas.so.0 exports cblas_sbgemm"
else
    echo "openblas_bf16.sh: $SRC/libopenblas.so.0 has no cblas_sbgemm" >&2
    exit 1
fi
