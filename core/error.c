/* error.c — the library's error channel and global settings (threads, version).
 * Library functions fill a pd_error and return -1; only cli/ prints and exits. */
#include "pixdiff.h"
#include <cblas.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>

int pd_fail(pd_error *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

const char *pd_version(void) { return PD_VERSION; }

/* OpenBLAS threads and OpenMP threads are set together, explicitly (in Debian's OpenMP build of
 * OpenBLAS, which CMake links, they are one pool). The layers call OpenBLAS only single-threaded,
 * one fixed-shape tile per call inside our own OpenMP loops (unet/gemm.h), so BLAS threading
 * never nests inside ours and results do not depend on n (DESIGN.md convention 8). */
void pd_set_threads(int n) {
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
}

int pd_get_threads(void) { return omp_get_max_threads(); }

const char *pd_blas_core(void) { return openblas_get_corename(); }
