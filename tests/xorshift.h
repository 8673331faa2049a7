/*
 * xorshift.h - the tests' random numbers: xorshift64*, reproducible from
 * the seed a test puts in rng_state (never 0).
 */
#ifndef XCC_TESTS_XORSHIFT_H
#define XCC_TESTS_XORSHIFT_H

#include <stdint.h>

static uint64_t rng_state;

static inline uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

#endif /* XCC_TESTS_XORSHIFT_H */
