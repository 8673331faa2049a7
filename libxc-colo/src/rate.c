/*
 * rate.c - the writer's token bucket (see rate.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <time.h>

#include "private.h"
#include "rate.h"

/* A burst of 50 ms at the rate, at least 256 KiB: one batch of pages. */
#define BURST_NS 50000000ull
#define BURST_MIN (256u << 10)

void rate_limit_init(struct rate_limit *rl, uint64_t bytes_per_sec)
{
    *rl = (struct rate_limit){.bytes_per_sec = bytes_per_sec};
    if (!bytes_per_sec)
        return;
    rl->burst = (uint64_t)((double)bytes_per_sec * BURST_NS / 1e9);
    if (rl->burst < BURST_MIN)
        rl->burst = BURST_MIN;
    rl->tokens = (int64_t)rl->burst;
    rl->last_ns = lib_now_ns();
}

static void refill(struct rate_limit *rl, uint64_t now)
{
    double add = (double)(now - rl->last_ns) * (double)rl->bytes_per_sec / 1e9;

    rl->last_ns = now;
    if (rl->tokens + add > (double)rl->burst)
        rl->tokens = (int64_t)rl->burst;
    else
        rl->tokens += (int64_t)add;
}

void rate_limit_take(struct rate_limit *rl, uint64_t n)
{
    if (!rl->bytes_per_sec)
        return;
    refill(rl, lib_now_ns());
    /* Wait while in debt: the previous writes went faster than the rate. */
    while (rl->tokens < 0) {
        double s = (double)-rl->tokens / (double)rl->bytes_per_sec;
        struct timespec ts = {.tv_sec = (time_t)s,
                              .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
        uint64_t t0 = lib_now_ns();

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
        rl->slept_ns += lib_now_ns() - t0;
        refill(rl, lib_now_ns());
    }
    rl->tokens -= (int64_t)n;
}
