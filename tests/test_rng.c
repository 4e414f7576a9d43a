/* test_rng — Philox4x32-10 known-answer vectors (Random123's kat_vectors) and the properties the
 * samplers rely on: normals have mean 0 / variance 1, and element j does not depend on n. */
#include "core/rng.h"
#include "pixdiff.h"
#include "testutil.h"
#include <math.h>
#include <stdlib.h>

int main(void) {
    struct { uint32_t ctr[4], key[2], want[4]; } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (int t = 0; t < 3; t++) {
        uint32_t out[4];
        rng_philox4x32(out, kat[t].ctr, kat[t].key);
        int ok = 1;
        for (int k = 0; k < 4; k++) ok &= out[k] == kat[t].want[k];
        tu_check(ok, "philox4x32-10 KAT %d: %08x %08x %08x %08x", t, out[0], out[1], out[2], out[3]);
    }
    /* RNG_LANES blocks at once = one at a time, across a carry into the counter's high word. */
    uint64_t starts[] = {0, 7, 0xFFFFFFF9ull, 1ull << 40}, seed = 0x0123456789ABCDEFull,
             stream = 0xFEDCBA9876543210ull;
    int lanes_bad = 0;
    for (int s = 0; s < 4; s++) {
        uint32_t got[4 * RNG_LANES];
        rng_philox4x32_lanes(got, starts[s], seed, stream);
        for (int l = 0; l < RNG_LANES; l++) {
            uint64_t b = starts[s] + (uint64_t)l;
            uint32_t ctr[4] = {(uint32_t)b, (uint32_t)(b >> 32), (uint32_t)stream,
                               (uint32_t)(stream >> 32)},
                     key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)}, want[4];
            rng_philox4x32(want, ctr, key);
            for (int k = 0; k < 4; k++) lanes_bad += got[4 * l + k] != want[k];
        }
    }
    tu_check(lanes_bad == 0, "philox lanes = %d scalar blocks (4 starts, one across 2^32): %d "
             "words differ", RNG_LANES, lanes_bad);
    size_t n = 1 << 20;
    float *z = malloc(n * sizeof *z);
    pd_randn(z, n, 42, 0);
    double m = 0, v = 0;
    for (size_t i = 0; i < n; i++) m += z[i];
    m /= n;
    for (size_t i = 0; i < n; i++) v += (z[i] - m) * (z[i] - m);
    v /= n;
    tu_check(fabs(m) < 5e-3 && fabs(v - 1) < 5e-3, "normal moments: mean %.5f var %.5f", m, v);
    float a[7];
    pd_randn(a, 7, 42, 0);
    int same = 1;
    for (int i = 0; i < 7; i++) same &= a[i] == z[i];
    tu_check(same, "element j independent of n");
    float b[8];
    pd_randn(b, 8, 43, 0);
    tu_check(b[0] != z[0], "different seeds differ");
    pd_randn(b, 8, 42, 1);
    tu_check(b[0] != z[0], "different streams differ");
    free(z);
    return tu_finish();
}
