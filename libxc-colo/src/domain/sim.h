/*
 * sim.h - internals of the simulated guest (sim:NAME) that the backend
 * (sim.c), the life cycle (sim_admin.c) and the guest process (sim_guest.c)
 * share: the dirty file, the kernel's dirty-tracking interface, and how the
 * guest process is started. The modules and what each may call:
 *
 *   sim_paths.c     names, the checked root and guest directories,
 *                   meta.json, process control          (calls no sim code)
 *   sim_workload.c  workload spec, holes, ledger layout and check
 *                                                       (sim_paths)
 *   sim.c           the domain backend                  (sim_paths, sim_workload)
 *   sim_admin.c     start/stop/list/verify; starts the guest helper with
 *                   posix_spawn                         (sim_paths, sim_workload)
 *   sim_guest.c     the guest process body, run only by the helper
 *                   libexec/xcc-sim-guest                (sim_paths, sim_workload)
 *
 * A guest lives in ROOT/NAME/ (sim_root(): SIM_ROOT for root):
 *   ram        its memory, a tmpfs file of mem_bytes (holes stay zero)
 *   meta.json  pid, pid_start, mem_bytes, page_size, holes, workload, seed,
 *              ram_addr, tracking, incomplete
 *   dirty      struct sim_dirty_hdr plus a bitmap of nr_pfns bits: the
 *              "bitmap" dirty-tracking mode, and progress counters
 *   guest.log  stdout/stderr of the guest process
 *
 * The RAM layout of the workloads is in sim_workload.h.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef XCC_SIM_H
#define XCC_SIM_H

#include <limits.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "sim_paths.h"

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

/* The guest process's executable, installed in LIBEXECDIR/xc-colo/. */
#define SIM_GUEST_HELPER "xcc-sim-guest"
/* The fds the guest process starts with, besides stdio (/dev/null in,
 * guest.log out). */
#define SIM_GUEST_READY_FD 3 /* pipe to the starter */
#define SIM_GUEST_DIR_FD 4   /* the guest's directory, checked */

/*
 * The open domain's guest directory, checked when the domain was opened
 * (sim_dir_open): a lock file or any other file of the guest belongs at
 * openat(fd, FILE, ... | O_NOFOLLOW) (sim_file_open). Owned by d: do not
 * close it.
 */
int sim_domain_dir_fd(xcc_domain *d);

#endif /* XCC_SIM_H */
