/*
 * sim_guest.h - the body of a simulated guest's process (sim_guest.c),
 * run by the helper executable xcc-sim-guest (libxc-colo/libexec/), which
 * the library starts with posix_spawn. Nothing in the library calls it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef XCC_SIM_GUEST_H
#define XCC_SIM_GUEST_H

#include "sim.h"
#include "sim_workload.h"

/* What the guest process is told by its starter. */
struct sim_guest_args {
    const char *name;
    struct sim_workload wl;
    const char *workload; /* the spec, for meta.json */
    uint64_t seed;
    uint64_t mem_bytes;
    uint32_t page_size;
    const uint64_t *holes; /* bitmap, nr_pfns bits */
    bool fill;             /* fresh start: fill RAM first */
    const char *tracking;  /* auto, pagemap or bitmap */
};

/*
 * The guest process body, run in the detached process. It reports on
 * SIM_GUEST_READY_FD ("PID n", "WARN text", then "OK" or "ERR errno text")
 * and, once running, never returns.
 */
void sim_guest_main(const struct sim_guest_args *a) __attribute__((noreturn));

#endif /* XCC_SIM_GUEST_H */
