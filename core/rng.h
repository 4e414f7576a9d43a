/* rng.h — counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11).
 *
 * A value is a pure function of (key = seed, counter = (stream, index)), so any element of any
 * image's noise can be produced independently: no state, no dependence on batch or threads.
 */
#ifndef PD_RNG_H
#define PD_RNG_H

#include <stdint.h>
#include <stddef.h>

/* One Philox4x32-10 block: 4 x 32 random bits for counter (ctr0..3) under key (k0,k1). */
void rng_philox4x32(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2]);
/* RNG_LANES consecutive blocks at once, vectorised: out[4k + j] = word j of block blk0 + k of
 * (seed, stream), i.e. of rng_philox4x32 with counter (b lo, b hi, stream lo, stream hi) and key
 * (seed lo, seed hi), b = blk0 + k: the same bits, elements 4·blk0 .. 4·(blk0 + RNG_LANES) − 1. */
#define RNG_LANES 16
void rng_philox4x32_lanes(uint32_t out[4 * RNG_LANES], uint64_t blk0, uint64_t seed,
                          uint64_t stream);
/* Uniform floats in (0,1), element j of (seed, stream). */
void rng_randu(float *out, size_t n, uint64_t seed, uint64_t stream);
/* pd_randn (normals) is public, in pixdiff.h. Double-valued normals for samplers' float64 state: */
void rng_randn_double(double *out, size_t n, uint64_t seed, uint64_t stream);

#endif
