/* precision.c — the process-wide precision setting (unet/precision.h, pd_set_precision). */
#include "unet/precision.h"
#include "pixdiff.h"
#include "unet/gemm.h"
#include <cblas.h>
#include <string.h>

const char *const conv_precision_names[PRECISION_COUNT] = {"fp32", "bf16"};

static int precision_now = PRECISION_FP32;

conv_precision conv_get_precision(void) {
    return (conv_precision)__atomic_load_n(&precision_now, __ATOMIC_RELAXED);
}

void conv_set_precision(conv_precision p) {
    __atomic_store_n(&precision_now, (int)p, __ATOMIC_RELAXED);
}

static _Thread_local int in_scope;

int conv_bf16_scope(int on) {
    int outer = in_scope;
    in_scope = on;
    return outer;
}

int conv_bf16_applies(int k, int C, int H, int W, int OC) {
    (void)k, (void)C, (void)H, (void)W, (void)OC;
    return in_scope && conv_get_precision() == PRECISION_BF16 && gemm_bf16_available();
}

int pd_set_precision(const char *name, pd_error *err) {
    for (int p = 0; p < PRECISION_COUNT; p++)
        if (name && !strcmp(name, conv_precision_names[p])) {
            if (p == PRECISION_BF16 && !gemm_bf16_available())
                return pd_fail(err, "bf16 needs OpenBLAS's cblas_sbgemm, which the loaded OpenBLAS "
                               "(%s) lacks: it was built without BUILD_BFLOAT16, as Debian 12's is",
                               openblas_get_config());
            conv_set_precision((conv_precision)p);
            return 0;
        }
    return pd_fail(err, "unknown precision '%s' (choose from: fp32, bf16)", name ? name : "");
}

const char *pd_precision(void) { return conv_precision_names[conv_get_precision()]; }
