/*
 * rate.h - a token bucket that holds a writer to a byte rate
 * (--max-bandwidth: QEMU's max-bandwidth; Xen's own tools have none).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef XCC_RATE_H
#define XCC_RATE_H

#include <stdint.h>

struct rate_limit {
    uint64_t bytes_per_sec; /* 0: unlimited */
    uint64_t burst;         /* most bytes sent back to back */
    int64_t tokens;         /* may go negative: a debt slept off */
    uint64_t last_ns;
    uint64_t slept_ns;      /* total time spent waiting, for stats */
};

/* Sets the rate (0: unlimited). The bucket starts full. */
void rate_limit_init(struct rate_limit *rl, uint64_t bytes_per_sec);

/*
 * Accounts n bytes about to be written, first sleeping as long as the rate
 * requires. A write larger than the burst is let through and its excess
 * slept off before the next one, so the average rate holds.
 */
void rate_limit_take(struct rate_limit *rl, uint64_t n);

#endif /* XCC_RATE_H */
