/* rng.c — Philox4x32-10 and the normal transform (Box-Muller on pairs of uniforms).
 *
 * Element j of (seed, stream) comes from block j/4 with counter (j/4 lo, j/4 hi, stream lo,
 * stream hi) and key (seed lo, seed hi); the block's 4 words give 4 uniforms, and uniforms
 * (2m, 2m+1) give normals (2m, 2m+1). Nothing depends on n, on threads or on other images.
 */
#include "core/rng.h"
#include "pixdiff.h"
#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void rng_philox4x32(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/* The rounds of rng_philox4x32 on RNG_LANES counters side by side (structure of arrays), so that
 * the 32x32 -> 64-bit products vectorise (vpmuludq): 6 ns a block against 17 for the scalar
 * function (one thread, AVX-512 clone). Static, with an exported wrapper below: clang 14 emits
 * no dispatcher for a target_clones function with external linkage that its own file does not
 * call (the fuzz build failed to link). */
__attribute__((target_clones("avx512f", "default")))
static void philox_lanes(uint32_t out[4 * RNG_LANES], uint64_t blk0, uint64_t seed,
                         uint64_t stream) {
    uint32_t c0[RNG_LANES], c1[RNG_LANES], c2[RNG_LANES], c3[RNG_LANES];
    for (int l = 0; l < RNG_LANES; l++) {
        uint64_t b = blk0 + (uint64_t)l;
        c0[l] = (uint32_t)b;
        c1[l] = (uint32_t)(b >> 32);
        c2[l] = (uint32_t)stream;
        c3[l] = (uint32_t)(stream >> 32);
    }
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int round = 0; round < 10; round++) {
        for (int l = 0; l < RNG_LANES; l++) {
            uint64_t p0 = (uint64_t)PHILOX_M0 * c0[l], p1 = (uint64_t)PHILOX_M1 * c2[l];
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[l] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3[l] ^ k1;
            c1[l] = (uint32_t)p1;
            c3[l] = (uint32_t)p0;
            c0[l] = n0;
            c2[l] = n2;
        }
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    for (int l = 0; l < RNG_LANES; l++) {
        out[4 * l] = c0[l];
        out[4 * l + 1] = c1[l];
        out[4 * l + 2] = c2[l];
        out[4 * l + 3] = c3[l];
    }
}

void rng_philox4x32_lanes(uint32_t out[4 * RNG_LANES], uint64_t blk0, uint64_t seed,
                          uint64_t stream) {
    philox_lanes(out, blk0, seed, stream);
}

static void block(uint32_t out[4], uint64_t blk, uint64_t seed, uint64_t stream) {
    uint32_t ctr[4] = {(uint32_t)blk, (uint32_t)(blk >> 32), (uint32_t)stream, (uint32_t)(stream >> 32)};
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    rng_philox4x32(out, ctr, key);
}

/* (0,1): never 0, so log() in Box-Muller is finite. */
static inline double to_unit(uint32_t v) { return ((double)v + 0.5) * (1.0 / 4294967296.0); }

void rng_randu(float *out, size_t n, uint64_t seed, uint64_t stream) {
    size_t nblk = (n + 3) / 4;
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t b = 0; b < nblk; b++) {
        uint32_t r[4];
        block(r, b, seed, stream);
        for (int k = 0; k < 4 && 4 * b + k < n; k++) out[4 * b + k] = (float)to_unit(r[k]);
    }
}

static void normals4(double z[4], uint64_t b, uint64_t seed, uint64_t stream) {
    uint32_t r[4];
    block(r, b, seed, stream);
    for (int k = 0; k < 4; k += 2) {
        double rad = sqrt(-2.0 * log(to_unit(r[k])));
        double ang = 6.283185307179586 * to_unit(r[k + 1]);
        z[k] = rad * cos(ang);
        z[k + 1] = rad * sin(ang);
    }
}

void rng_randn_double(double *out, size_t n, uint64_t seed, uint64_t stream) {
    size_t nblk = (n + 3) / 4;
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t b = 0; b < nblk; b++) {
        double z[4];
        normals4(z, b, seed, stream);
        for (int k = 0; k < 4 && 4 * b + k < n; k++) out[4 * b + k] = z[k];
    }
}

void pd_randn(float *out, size_t n, uint64_t seed, uint64_t stream) {
    size_t nblk = (n + 3) / 4;
    #pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t b = 0; b < nblk; b++) {
        double z[4];
        normals4(z, b, seed, stream);
        for (int k = 0; k < 4 && 4 * b + k < n; k++) out[4 * b + k] = (float)z[k];
    }
}
