/*
 * heartbeat.h - the layout shared by the domU workload (domu_workload.c),
 * which writes it, and xen_ops_test.c, which reads it from dom0.
 */
#ifndef XENVM_HEARTBEAT_H
#define XENVM_HEARTBEAT_H

#include <stdint.h>

#define HB_MAGIC "XCC-HEARTBEAT-1"     /* 16 bytes with its NUL */
#define HB_GAP_NS 20000000ull          /* gaps over 20 ms are recorded */
#define HB_RING 250

/* Marks at byte MARK_OFFSET of the workload's hot and idle pages. */
#define MARK_OFFSET 16
#define HOT_MAGIC "XCC-HOT\n"          /* 8 bytes, no NUL */
#define IDLE_MAGIC "XCC-IDL\n"

struct heartbeat {
    char magic[16];
    uint64_t seq;              /* ticks so far */
    uint64_t now_ns;           /* CLOCK_BOOTTIME at the last tick */
    uint64_t start_ns;
    uint64_t gap_threshold_ns;
    uint64_t ngaps;            /* gaps recorded so far */
    uint64_t max_gap_ns;
    struct {
        uint64_t end_ns;       /* CLOCK_BOOTTIME when the gap ended */
        uint64_t gap_ns;
    } gaps[HB_RING];
    /* The workload's self-check (domu_workload.c): passes so far, the
     * faults found (a page whose contents the workload did not write), and
     * the ledger's length. A restored guest must keep counting checks with
     * no new failures. */
    uint64_t checks;
    uint64_t check_failures;
    uint64_t ledger;
};

_Static_assert(sizeof(struct heartbeat) <= 4096, "one page");

#endif
