/* bf16_emulate_check — checks bench/bf16_emulate.c from the outside: run it with the shim in
 * LD_PRELOAD (ctest does) and every cblas_sgemm here must behave as bf16 operands with float
 * sums. (1) Rounding: 1 + 2^-10 times 1 gives 1 (without the shim 1.0009765625); the two ties
 * 0x3f818000 and 0x3f828000 go to the even neighbours 0x3f820000 and 0x3f820000. (2) Every order
 * and transpose combination, with padded leading dimensions, against a double product of the
 * bf16-rounded operands: relative error under 1e-5 of max|C| (float sums of 53 terms), while
 * the float product of the unrounded operands is off by far more (operands' 2^-9 rounding).
 * Exit 0 when all hold, 1 otherwise (and 1 when the shim is not loaded).
 */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float bits(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static double round_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    return bits(u);
}

static float one_product(float a, float b) {
    float c = -1;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1);
    return c;
}

static int fails;
static void check(int ok, const char *what) {
    printf("%-70s %s\n", what, ok ? "ok" : "FAIL");
    fails += !ok;
}

/* A [M,K] and B [K,N] as op() of stored arrays in the given order, padded by 3. */
static void combination(int row, int ta, int tb) {
    int M = 37, N = 29, K = 53, pad = 3;
    int a_outer = row == !ta ? M : K, a_inner = row == !ta ? K : M;
    int b_outer = row == !tb ? K : N, b_inner = row == !tb ? N : K;
    int lda = a_inner + pad, ldb = b_inner + pad, ldc = (row ? N : M) + pad;
    float *A = malloc(sizeof(float) * a_outer * lda), *B = malloc(sizeof(float) * b_outer * ldb),
          *C = malloc(sizeof(float) * (row ? M : N) * ldc);
    srand(7 + 4 * row + 2 * ta + tb);
    for (int i = 0; i < a_outer * lda; i++) A[i] = (float)((double)rand() / RAND_MAX * 2 - 1);
    for (int i = 0; i < b_outer * ldb; i++) B[i] = (float)((double)rand() / RAND_MAX * 2 - 1);
    cblas_sgemm(row ? CblasRowMajor : CblasColMajor, ta ? CblasTrans : CblasNoTrans,
                tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
    double err = 0, err_fp = 0, scale = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0, s_fp = 0;
            for (int k = 0; k < K; k++) {
                /* op(A)[i][k] and op(B)[k][j] wherever the order and transposes put them */
                int ai = ta ? k : i, ak = ta ? i : k, bk = tb ? j : k, bj = tb ? k : j;
                float a = row ? A[ai * lda + ak] : A[ak * lda + ai];
                float b = row ? B[bk * ldb + bj] : B[bj * ldb + bk];
                s += round_bf16(a) * round_bf16(b);
                s_fp += (double)a * b;
            }
            float c = row ? C[i * ldc + j] : C[j * ldc + i];
            err = fmax(err, fabs(c - s));
            err_fp = fmax(err_fp, fabs(c - s_fp));
            scale = fmax(scale, fabs(s));
        }
    char what[128];
    snprintf(what, sizeof what, "%s, %s, %s: rel. error %.1e against bf16 operands, %.1e against float",
             row ? "row-major" : "col-major", ta ? "A^T" : "A", tb ? "B^T" : "B", err / scale,
             err_fp / scale);
    check(err <= 1e-5 * scale && err_fp > 1e-4 * scale, what);
    free(A);
    free(B);
    free(C);
}

int main(void) {
    check(one_product(bits(0x3f802000u), 1.0f) == 1.0f, "1 + 2^-10 rounds to 1 (the shim is loaded)");
    check(one_product(bits(0x3f818000u), 1.0f) == bits(0x3f820000u), "tie 0x3f818000 -> 0x3f820000");
    check(one_product(bits(0x3f828000u), 1.0f) == bits(0x3f820000u), "tie 0x3f828000 -> 0x3f820000");
    for (int row = 0; row < 2; row++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) combination(row, ta, tb);
    printf("%s\n", fails ? "FAILED" : "all ok");
    return fails ? 1 : 0;
}
