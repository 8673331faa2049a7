/*
 * sim.h - internals of the simulated guest (sim:NAME), shared by
 * sim.c (the domain backend), sim_admin.c (start/stop/list/verify, the
 * meta file) and sim_guest.c (the workload engine inside the guest process).
 *
 * A guest lives in SIM_ROOT/NAME/:
 *   ram        its memory, a tmpfs file of mem_bytes (holes stay zero)
 *   meta.json  pid, pid_start, mem_bytes, page_size, holes, workload, seed,
 *              ram_addr, tracking, incomplete
 *   dirty      struct sim_dirty_hdr plus a bitmap of nr_pfns bits: the
 *              "bitmap" dirty-tracking mode, and progress counters
 *   guest.log  stdout/stderr of the guest process
 *
 * RAM layout (pfns, fixed so that a restored copy of RAM, which has no
 * metadata, still says where each workload lives):
 *   [0, 4096)        hotpages (16 MiB with 4 KiB pages)
 *   [4096, 4160)     sparse64
 *   [4352, 5376)     ledger (4 MiB), needs RAM of at least 5376 pages
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef XCC_SIM_H
#define XCC_SIM_H

#include <limits.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "domain.h"

#define SIM_ROOT "/dev/shm/xc-colo"
#define SIM_NAME_MAX XCC_SIM_NAME_MAX
#define SIM_WORKLOAD_MAX 256
/* Long enough for a few hundred ranges; meta.json stays small. */
#define SIM_HOLES_MAX 4096
#define SIM_TRACKING_MAX 16

/* Workload areas, in pfns (see the layout above). */
#define SIM_HOT_FIRST_PFN 0ull
#define SIM_HOT_PAGES 4096ull /* the seed program's 4096 x 4 KiB buffer */
#define SIM_SPARSE_FIRST_PFN 4096ull
#define SIM_SPARSE_PAGES 64ull       /* the XBRLE seed generator's 64 pages */
#define SIM_LEDGER_FIRST_PFN 4352ull /* 17 MiB: after both, 1 MiB aligned */
#define SIM_LEDGER_PAGES 1024ull

/* ---- userfaultfd and PAGEMAP_SCAN (Linux 6.7), absent from bookworm's
 * kernel headers, so defined here with the kernel's values. ---- */
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13) /* Linux 6.4 */
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15) /* Linux 6.7 */
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

struct sim_page_region {
    uint64_t start;
    uint64_t end;
    uint64_t categories;
};

struct sim_pm_scan_arg {
    uint64_t size;
    uint64_t flags;
    uint64_t start;
    uint64_t end;
    uint64_t walk_end;
    uint64_t vec;
    uint64_t vec_len;
    uint64_t max_pages;
    uint64_t category_inverted;
    uint64_t category_mask;
    uint64_t category_anyof_mask;
    uint64_t return_mask;
};

#define SIM_PAGEMAP_SCAN _IOWR('f', 16, struct sim_pm_scan_arg)
#define SIM_PAGE_IS_WRITTEN (1ull << 1)
#define SIM_PM_SCAN_WP_MATCHING (1ull << 0)
#define SIM_PM_SCAN_CHECK_WPASYNC (1ull << 1)

/* ---- the dirty file ---- */
#define SIM_DIRTY_MAGIC 0x5843534d44495254ull /* "XCSMDIRT" */

/*
 * Bitmap mode protocol (the guest is single-threaded and may be stopped by
 * SIGSTOP at any instruction). Writing page p, the guest does:
 *     inflight = p + 1; fence; write the page; bit p |= 1; inflight = 0
 * A clean exchanges every bitmap word with 0, then reads inflight and
 * reports that page too. Whatever the interleaving, a changed page is
 * reported by this clean or the next one, and a guest stopped in the middle
 * has its page named by inflight.
 */
struct sim_dirty_hdr {
    uint64_t magic;
    uint64_t nr_pfns;
    _Atomic uint64_t inflight; /* pfn + 1 being written, 0 for none */
    _Atomic uint64_t ticks;    /* workload passes so far (progress) */
    _Atomic uint64_t sweeps;   /* full passes of the sweep workload */
    uint64_t reserved[3];
    /* followed by the bitmap: _Atomic uint64_t words[(nr_pfns + 63) / 64] */
};

static inline _Atomic uint64_t *sim_dirty_words(struct sim_dirty_hdr *h)
{
    return (_Atomic uint64_t *)(h + 1);
}

static inline size_t sim_dirty_file_size(uint64_t nr_pfns)
{
    return sizeof(struct sim_dirty_hdr) + (nr_pfns + 63) / 64 * 8;
}

/* ---- meta.json ---- */
struct sim_meta {
    char name[SIM_NAME_MAX + 1];
    int64_t pid;        /* 0: no process */
    uint64_t pid_start; /* /proc/PID/stat starttime, against pid reuse */
    uint64_t mem_bytes;
    uint32_t page_size;
    char holes[SIM_HOLES_MAX];
    char workload[SIM_WORKLOAD_MAX];
    uint64_t seed;
    uint64_t ram_addr;
    char tracking[SIM_TRACKING_MAX]; /* pagemap, bitmap, auto, none */
    int incomplete;
};

/* Checks a guest name ([A-Za-z0-9_.-]+, at most 64, not "." or ".."). */
int sim_check_name(const char *name, xentoollog_logger *log);
/* SIM_ROOT/name[/file] into buf. */
void sim_path(char *buf, size_t len, const char *name, const char *file);

int sim_meta_read(const char *name, struct sim_meta *m, xentoollog_logger *log);
/* Writes meta.json atomically (temporary file + rename). */
int sim_meta_write(const char *name, const struct sim_meta *m,
                   xentoollog_logger *log);
/* flock on the guest directory around read-modify-write of the meta. */
int sim_meta_lock(const char *name);
void sim_meta_unlock(int fd);

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

/*
 * State of process pid if its starttime is `start` (0: any): 'R', 'S', 'D',
 * 'T' (stopped), 'Z', ..., or 0 when it is gone or is another process.
 */
char sim_proc_state(pid_t pid, uint64_t start);
/* starttime of pid (field 22 of /proc/PID/stat), 0 if gone. */
uint64_t sim_proc_starttime(pid_t pid);
/* True for a process that is there and not a zombie. */
static inline bool sim_proc_alive(char state)
{
    return state && state != 'Z' && state != 'X' && state != 'x';
}

/* SIGSTOP / SIGCONT and wait (up to a few seconds) for the state change. */
int sim_proc_stop(pid_t pid, uint64_t start, xentoollog_logger *log);
int sim_proc_cont(pid_t pid, uint64_t start, xentoollog_logger *log);

/* ---- workloads (sim_guest.c) ---- */
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

/* What the guest process is told by its parent. */
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
 * The guest process body, run in the detached child. It reports on ready_fd
 * ("PID n", "WARN text", then "OK" or "ERR errno text") and, once running,
 * never returns.
 */
void sim_guest_main(const struct sim_guest_args *a, int ready_fd)
    __attribute__((noreturn));

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

/* Test hook: the next `count` map calls on d fail whole with errno err. */
void sim_test_fail_maps(xcc_domain *d, unsigned count, int err);

#endif /* XCC_SIM_H */
