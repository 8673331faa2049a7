/*
 * sim_workload.h - the workloads of a simulated guest: the RAM layout of
 * each, the spec parser, the holes list, and the ledger (its records and
 * its check). Shared by sim_admin.c (checks a spec before starting a
 * guest, verifies a ledger) and sim_guest.c (runs them); both depend on
 * it, it depends on neither.
 *
 * RAM layout (pfns, fixed so that a restored copy of RAM, which has no
 * metadata, still says where each workload lives):
 *   [0, 4096)        hotpages (16 MiB with 4 KiB pages)
 *   [4096, 4160)     sparse64
 *   [4352, 5376)     ledger (4 MiB), needs RAM of at least 5376 pages
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef XCC_SIM_WORKLOAD_H
#define XCC_SIM_WORKLOAD_H

#include <stdatomic.h>

#include "sim_paths.h"

/* Workload areas, in pfns (see the layout above). */
#define SIM_HOT_FIRST_PFN 0ull
#define SIM_HOT_PAGES 4096ull /* the seed program's 4096 x 4 KiB buffer */
#define SIM_SPARSE_FIRST_PFN 4096ull
#define SIM_SPARSE_PAGES 64ull       /* the XBRLE seed generator's 64 pages */
#define SIM_LEDGER_FIRST_PFN 4352ull /* 17 MiB: after both, 1 MiB aligned */
#define SIM_LEDGER_PAGES 1024ull

/*
 * Parses a holes list ("100-199,4096") into a bitmap of nr_pfns bits
 * (malloc'ed; NULL spec or "" gives an all-clear bitmap). NULL with errno
 * EINVAL (logged, naming the bad item) or ENOMEM.
 */
uint64_t *sim_holes_parse(const char *spec, uint64_t nr_pfns,
                          xentoollog_logger *log);

static inline bool sim_bit(const uint64_t *bm, uint64_t i)
{
    return (bm[i / 64] >> (i % 64)) & 1;
}

/* ---- workloads ---- */
enum sim_wl_kind {
    SIM_WL_IDLE,
    SIM_WL_HOTPAGES,
    SIM_WL_SPARSE64,
    SIM_WL_RANDOM,
    SIM_WL_LEDGER,
    SIM_WL_SWEEP,
    SIM_WL_COUNT,
};

#define SIM_WL_MAX_PARTS 8

struct sim_wl_part {
    enum sim_wl_kind kind;
    uint64_t rate;   /* random, sweep: pages per second; count: pages */
    double fraction; /* random: part of each page changed */
};

struct sim_workload {
    unsigned nparts;
    struct sim_wl_part part[SIM_WL_MAX_PARTS];
    bool has_ledger;
};

/*
 * Parses SPEC ("ledger+hotpages", "random:1000:0.1", ...) and checks it
 * fits a RAM of nr_pfns pages with the given holes (may be NULL). Returns 0
 * or -1 with errno EINVAL (logged, naming the bad part).
 */
int sim_workload_parse(const char *spec, uint64_t nr_pfns,
                       const uint64_t *holes, struct sim_workload *wl,
                       xentoollog_logger *log);

/* ---- the ledger (its design: sim_workload.c) ---- */

#define SIM_LEDGER_MAGIC 0x4C454447u /* "LEDG" */

struct sim_ledger_slot {
    uint64_t magic_index; /* SIM_LEDGER_MAGIC << 32 | record index */
    uint64_t seq;
    uint64_t payload[2];
    uint64_t prev_sum; /* sum of record r-1 when this was written */
    uint64_t sum;      /* XXH3 over the fields above */
};

struct sim_ledger_record {
    _Atomic uint64_t commit; /* 0 or 1: the live slot */
    uint64_t reserved;
    struct sim_ledger_slot slot[2];
    uint64_t pad[2];
};

#define SIM_LEDGER_RECORD_BYTES 128
_Static_assert(sizeof(struct sim_ledger_record) == SIM_LEDGER_RECORD_BYTES,
               "ledger record size");

struct sim_ledger_geom {
    uint64_t nrec, per_page;
    uint32_t psz;
};


static inline uint64_t sim_ledger_pfn(uint64_t r)
{
    return SIM_LEDGER_FIRST_PFN + r % SIM_LEDGER_PAGES;
}

static inline struct sim_ledger_record *
sim_ledger_rec(uint8_t *ram, const struct sim_ledger_geom *g, uint64_t r)
{
    return (struct sim_ledger_record *)(ram + sim_ledger_pfn(r) * g->psz +
                                    (r / SIM_LEDGER_PAGES) *
                                        SIM_LEDGER_RECORD_BYTES);
}

/* Geometry of the ledger in a RAM of nr_pfns pages; false if too small. */
bool sim_ledger_geom_init(uint64_t nr_pfns, uint32_t psz,
                          struct sim_ledger_geom *g);
/* XXH3 of a slot's fields before `sum`. */
uint64_t sim_ledger_slot_sum(const struct sim_ledger_slot *s);

/* Result of sim_ledger_check. */
enum { SIM_LEDGER_OK = 0, SIM_LEDGER_BROKEN = 1, SIM_LEDGER_ABSENT = 2 };

/*
 * Checks the ledger in ram (nr_pfns pages of page_size). Writes a report
 * ("OK ..." or the broken records grouped by page) into report. When ok,
 * *head_seq receives the newest record's sequence number (may be NULL).
 * Returns SIM_LEDGER_OK, _BROKEN, _ABSENT, or -1 (RAM too small: EINVAL).
 */
int sim_ledger_check(const uint8_t *ram, uint64_t nr_pfns, uint32_t page_size,
                     char *report, size_t report_len, uint64_t *head_seq);

#endif /* XCC_SIM_WORKLOAD_H */
