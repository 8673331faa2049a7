/*
 * sim.c - the domain backend for simulated guests (sim:NAME).
 *
 * "Foreign mapping" is an mmap of the guest's RAM file. Dirty logging comes
 * from the kernel: the guest registered its RAM mapping for asynchronous
 * userfaultfd write-protection, and a clean is one PAGEMAP_SCAN ioctl on
 * /proc/PID/pagemap that reports the written pages and write-protects them
 * again in the same walk, as Xen's SHADOW_OP_CLEAN does. Where the kernel
 * lacks it the guest sets bits in a shared bitmap instead (sim.h).
 *
 * The guest process may change under an open domain (`sim resume` while a
 * restorer holds it): meta.json is checked again on every clean and pause.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sim.h"
#include "sim_workload.h"
#include "../test_hooks.h"

/* Regions per PAGEMAP_SCAN call; a full vector just means another call. */
#define SCAN_VEC_LEN 4096

enum tracking { TRACK_NONE, TRACK_PAGEMAP, TRACK_BITMAP };

struct sim_dom {
    char name[SIM_NAME_MAX + 1];
    int dir_fd; /* the guest's directory, checked (sim_dir_open) */
    int ram_fd;
    uint64_t mem_bytes, nr_pfns;
    uint32_t psz;
    uint64_t *holes; /* bitmap of nr_pfns bits */

    struct sim_dirty_hdr *dirty; /* the shared dirty file */
    size_t dirty_len;

    /* the guest process as last read from meta.json */
    struct timespec meta_mtime;
    ino_t meta_ino;
    pid_t pid;
    uint64_t pid_start;
    uint64_t ram_addr;
    enum tracking tracking;
    int pagemap_fd; /* /proc/pid/pagemap, opened lazily */

    /* the process whose writes the last clean accounted for (0: none) */
    pid_t tracked_pid;
    uint64_t tracked_start;
    bool report_all; /* next clean reports every page (lost track) */

    struct sim_page_region *vec;

    unsigned fail_maps; /* test hook */
    int fail_err;
};

static struct sim_dom *priv(xcc_domain *d)
{
    return d->priv;
}

static enum tracking tracking_of(const char *s)
{
    if (!strcmp(s, "pagemap"))
        return TRACK_PAGEMAP;
    if (!strcmp(s, "bitmap"))
        return TRACK_BITMAP;
    return TRACK_NONE;
}

/* Re-reads pid, ram_addr and tracking when meta.json has changed. */
static void refresh_process(xcc_domain *d)
{
    struct sim_dom *s = priv(d);
    struct stat st;
    struct sim_meta m;

    if (fstatat(s->dir_fd, "meta.json", &st, AT_SYMLINK_NOFOLLOW) < 0)
        return;
    if (st.st_ino == s->meta_ino && st.st_mtim.tv_sec == s->meta_mtime.tv_sec &&
        st.st_mtim.tv_nsec == s->meta_mtime.tv_nsec)
        return;
    if (sim_meta_readat(s->dir_fd, s->name, &m, d->log) < 0)
        return;
    s->meta_ino = st.st_ino;
    s->meta_mtime = st.st_mtim;
    if ((pid_t)m.pid != s->pid || m.pid_start != s->pid_start) {
        if (s->pagemap_fd >= 0)
            close(s->pagemap_fd);
        s->pagemap_fd = -1;
    }
    s->pid = (pid_t)m.pid;
    s->pid_start = m.pid_start;
    s->ram_addr = m.ram_addr;
    s->tracking = m.pid > 0 ? tracking_of(m.tracking) : TRACK_NONE;
}

/* True when the process named by the meta is there (alive, same start). */
static bool process_live(struct sim_dom *s)
{
    return s->pid > 0 && sim_proc_alive(sim_proc_state(s->pid, s->pid_start));
}

static int sim_info(xcc_domain *d, struct xcc_domain_info *info)
{
    struct sim_dom *s = priv(d);

    memset(info, 0, sizeof(*info));
    info->nr_pfns = s->nr_pfns;
    info->page_size = s->psz;
    info->stream_type = XCC_DHDR_TYPE_SIM;
    return 0;
}

static int sim_pfn_types(xcc_domain *d, const uint64_t *pfns, uint8_t *types,
                         size_t n)
{
    struct sim_dom *s = priv(d);

    for (size_t i = 0; i < n; i++)
        types[i] = pfns[i] >= s->nr_pfns || sim_bit(s->holes, pfns[i])
                       ? XCC_PFN_XTAB
                       : XCC_PFN_NORMAL;
    return 0;
}

static void bitmap_set_range(uint64_t *bm, uint64_t first, uint64_t count)
{
    while (count && first % 64) {
        bm[first / 64] |= 1ull << (first % 64);
        first++;
        count--;
    }
    for (; count >= 64; first += 64, count -= 64)
        bm[first / 64] = ~0ull;
    for (; count; first++, count--)
        bm[first / 64] |= 1ull << (first % 64);
}

/* Every pfn but the holes: what to report when writes may have been lost. */
static int64_t report_everything(struct sim_dom *s, uint64_t *bitmap)
{
    int64_t n = 0;

    for (uint64_t p = 0; p < s->nr_pfns; p++) {
        if (!sim_bit(s->holes, p)) {
            bitmap[p / 64] |= 1ull << (p % 64);
            n++;
        }
    }
    return n;
}

static int64_t clean_bitmap(struct sim_dom *s, uint64_t *bitmap)
{
    _Atomic uint64_t *w = sim_dirty_words(s->dirty);
    uint64_t inflight, nwords = (s->nr_pfns + 63) / 64;
    int64_t n = 0;

    for (uint64_t i = 0; i < nwords; i++) {
        uint64_t v;

        if (!atomic_load_explicit(&w[i], memory_order_relaxed))
            continue;
        v = atomic_exchange(&w[i], 0);
        if (bitmap)
            bitmap[i] |= v;
        n += __builtin_popcountll(v);
    }
    /* a write under way (or interrupted by SIGSTOP) when we swept */
    atomic_thread_fence(memory_order_seq_cst);
    inflight = atomic_load(&s->dirty->inflight);
    if (inflight && inflight <= s->nr_pfns) {
        uint64_t p = inflight - 1;

        if (bitmap && !(bitmap[p / 64] >> (p % 64) & 1)) {
            bitmap[p / 64] |= 1ull << (p % 64);
            n++;
        }
    }
    return n;
}

static int open_pagemap(xcc_domain *d)
{
    struct sim_dom *s = priv(d);
    char path[64];

    if (s->pagemap_fd >= 0)
        return 0;
    snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)s->pid);
    s->pagemap_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (s->pagemap_fd < 0)
        return -1;
    /* the pid might have been reused between reading meta and opening */
    if (sim_proc_state(s->pid, s->pid_start) == 0) {
        close(s->pagemap_fd);
        s->pagemap_fd = -1;
        errno = ESRCH;
        return -1;
    }
    return 0;
}

/* Pages [first, first + count) written since the last write-protect; with
 * rearm, write-protected again in the same walk (a clean), else a peek. */
static int64_t scan_pagemap(xcc_domain *d, uint64_t *bitmap, uint64_t first,
                            uint64_t count, bool rearm)
{
    struct sim_dom *s = priv(d);
    uint64_t end = s->ram_addr + (first + count) * s->psz;
    struct sim_pm_scan_arg arg = {
        .size = sizeof(arg),
        .flags = (rearm ? SIM_PM_SCAN_WP_MATCHING : 0) |
                 SIM_PM_SCAN_CHECK_WPASYNC,
        .start = s->ram_addr + first * s->psz,
        .end = end,
        .vec = (uintptr_t)s->vec,
        .vec_len = SCAN_VEC_LEN,
        .category_mask = SIM_PAGE_IS_WRITTEN,
        .return_mask = SIM_PAGE_IS_WRITTEN,
    };
    int64_t n = 0;

    if (open_pagemap(d) < 0)
        return -1;
    while (arg.start < end) {
        long got = ioctl(s->pagemap_fd, SIM_PAGEMAP_SCAN, &arg);

        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        for (long i = 0; i < got; i++) {
            uint64_t a = s->vec[i].start, b = s->vec[i].end;

            if (a < s->ram_addr || b > end || b < a)
                continue;
            a = (a - s->ram_addr) / s->psz;
            b = (b - s->ram_addr + s->psz - 1) / s->psz;
            if (bitmap)
                bitmap_set_range(bitmap, a, b - a);
            n += (int64_t)(b - a);
        }
        /* a full vector stops the walk early at walk_end */
        if (arg.walk_end <= arg.start || arg.walk_end >= end)
            break;
        arg.start = arg.walk_end;
    }
    return n;
}

/*
 * One clean of whatever tracking the current process uses. When the
 * pagemap-tracked process of the last clean has gone or changed, its last
 * writes are unknown, so every page is reported once (over-reporting is
 * allowed, missing a write is not). The bitmap outlives processes.
 */
static int64_t do_clean(xcc_domain *d, uint64_t *bitmap)
{
    struct sim_dom *s = priv(d);
    bool live, all;
    int64_t n = 0;

    refresh_process(d);
    live = process_live(s);
    if (s->tracked_pid &&
        (!live || s->tracked_pid != s->pid ||
         s->tracked_start != s->pid_start || s->tracking != TRACK_PAGEMAP))
        s->report_all = true;
    all = s->report_all;
    s->report_all = false;
    s->tracked_pid = 0;

    if (s->tracking == TRACK_BITMAP) {
        n = clean_bitmap(s, all ? NULL : bitmap);
    } else if (live && s->tracking == TRACK_PAGEMAP) {
        n = scan_pagemap(d, all ? NULL : bitmap, 0, s->nr_pfns, true);
        if (n < 0) {
            if (process_live(s)) {
                XCC_PERR(d->log, "sim", "PAGEMAP_SCAN of guest '%s' (pid %d)",
                         s->name, (int)s->pid);
                s->report_all = all;
                return -1;
            }
            all = true; /* it died under us: its last writes are unknown */
        } else {
            s->tracked_pid = s->pid;
            s->tracked_start = s->pid_start;
        }
    }
    /* else no process: nothing writes */
    if (all)
        return bitmap ? report_everything(s, bitmap) : 0;
    return n;
}

/*
 * The peek: the written bits of [first, first + count), left as they are.
 * Only while the process the last clean tracked still runs; otherwise
 * nothing is known and nothing is reported (a peek only feeds a guess).
 */
static int64_t sim_logdirty_peek(xcc_domain *d, uint64_t *bitmap,
                                 uint64_t first, uint64_t count)
{
    struct sim_dom *s = priv(d);

    if (first >= s->nr_pfns || !count)
        return 0;
    if (count > s->nr_pfns - first)
        count = s->nr_pfns - first;
    if (s->tracking == TRACK_BITMAP) {
        _Atomic uint64_t *w = sim_dirty_words(s->dirty);
        int64_t n = 0;

        for (uint64_t i = first / 64; i <= (first + count - 1) / 64; i++) {
            uint64_t v = atomic_load_explicit(&w[i], memory_order_relaxed);
            bitmap[i] |= v;
            n += __builtin_popcountll(v);
        }
        return n;
    }
    if (s->tracking != TRACK_PAGEMAP || !s->tracked_pid ||
        s->tracked_pid != s->pid || s->tracked_start != s->pid_start ||
        s->report_all)
        return 0;
    return scan_pagemap(d, bitmap, first, count, false);
}

static int sim_logdirty_enable(xcc_domain *d)
{
    struct sim_dom *s = priv(d);

    s->tracked_pid = 0;
    s->report_all = false;
    return do_clean(d, NULL) < 0 ? -1 : 0;
}

static int sim_logdirty_disable(xcc_domain *d)
{
    return 0;
}

static int64_t sim_logdirty_clean(xcc_domain *d, uint64_t *bitmap, bool final)
{
    return do_clean(d, bitmap);
}

static void *sim_map(xcc_domain *d, bool writable, const uint64_t *pfns,
                     int *err, size_t n)
{
    struct sim_dom *s = priv(d);
    int prot = PROT_READ | (writable ? PROT_WRITE : 0);
    size_t psz = s->psz;

    if (s->fail_maps) {
        s->fail_maps--;
        errno = s->fail_err;
        return NULL;
    }
    if (n == 0) {
        errno = EINVAL;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (pfns[i] >= s->nr_pfns)
            err[i] = -EINVAL;
        else if (sim_bit(s->holes, pfns[i]))
            err[i] = -ENOENT;
        else
            err[i] = 0;
    }
    return domain_map_fd_pages(s->ram_fd, psz, prot, pfns, err, n);
}

static int sim_unmap(xcc_domain *d, void *addr, size_t n)
{
    return munmap(addr, n * priv(d)->psz);
}

static int sim_pause(xcc_domain *d)
{
    struct sim_dom *s = priv(d);

    refresh_process(d);
    if (!process_live(s))
        return 0; /* no process: nothing runs */
    return sim_proc_stop(s->pid, s->pid_start, d->log);
}

static int sim_unpause(xcc_domain *d)
{
    struct sim_dom *s = priv(d);

    refresh_process(d);
    if (!process_live(s))
        return 0;
    return sim_proc_cont(s->pid, s->pid_start, d->log);
}

static int sim_populate(xcc_domain *d, const uint64_t *pfns, size_t n)
{
    struct sim_dom *s = priv(d);

    for (size_t i = 0; i < n; i++) {
        if (pfns[i] >= s->nr_pfns) {
            XCC_ERR(d->log, "sim",
                    "populate: pfn %#" PRIx64 " beyond guest '%s' (%" PRIu64
                    " pages)",
                    pfns[i], s->name, s->nr_pfns);
            errno = EINVAL;
            return -1;
        }
    }
    return 0; /* the RAM file already has its size */
}

static void sim_close(xcc_domain *d)
{
    struct sim_dom *s = priv(d);

    if (!s)
        return;
    if (s->dirty)
        munmap(s->dirty, s->dirty_len);
    if (s->ram_fd >= 0)
        close(s->ram_fd);
    if (s->dir_fd >= 0)
        close(s->dir_fd);
    if (s->pagemap_fd >= 0)
        close(s->pagemap_fd);
    free(s->holes);
    free(s->vec);
    free(s);
    d->priv = NULL;
}

/* The saver lock: a file in the guest's directory, so that `sim stop`
 * removing the directory is seen by the save (lock.c). */
static int sim_lock(xcc_domain *d, pid_t *holder)
{
    char dir[PATH_MAX];
    int dfd, fd, e;

    *holder = 0;
    sim_path(dir, sizeof(dir), priv(d)->name, NULL);
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    fd = domain_lockfile(dfd, "saver.lock", holder);
    e = errno;
    close(dfd);
    errno = e;
    return fd;
}

static const struct xcc_domain_ops sim_ops = {
    .kind = "sim",
    .info = sim_info,
    .pfn_types = sim_pfn_types,
    .logdirty_enable = sim_logdirty_enable,
    .logdirty_disable = sim_logdirty_disable,
    .logdirty_clean = sim_logdirty_clean,
    .map = sim_map,
    .unmap = sim_unmap,
    .pause = sim_pause,
    .unpause = sim_unpause,
    .populate = sim_populate,
    .close = sim_close,
    .lock = sim_lock,
    .logdirty_peek = sim_logdirty_peek,
};

int sim_domain_open(xcc_domain *d, const char *simname, unsigned flags)
{
    struct sim_dom *s;
    struct sim_meta m;
    char path[PATH_MAX];
    struct stat st;
    long psz = sysconf(_SC_PAGESIZE);
    int dir_fd, fd, e;

    dir_fd = sim_dir_open(simname, d->log);
    if (dir_fd < 0)
        return -1;
    if (sim_meta_readat(dir_fd, simname, &m, d->log) < 0)
        goto fail_dir;
    if (m.page_size != (uint32_t)psz || m.mem_bytes % m.page_size) {
        XCC_ERR(d->log, "sim",
                "guest '%s': page size %" PRIu32 " / size %" PRIu64
                " do not fit this machine's %ld-byte pages",
                simname, m.page_size, m.mem_bytes, psz);
        errno = EINVAL;
        goto fail_dir;
    }
    s = calloc(1, sizeof(*s));
    if (!s)
        goto fail_dir;
    d->priv = s;
    d->ops = &sim_ops;
    s->dir_fd = dir_fd;
    s->ram_fd = -1;
    s->pagemap_fd = -1;
    snprintf(s->name, sizeof(s->name), "%s", simname);
    s->mem_bytes = m.mem_bytes;
    s->psz = m.page_size;
    s->nr_pfns = m.mem_bytes / m.page_size;
    s->vec = calloc(SCAN_VEC_LEN, sizeof(*s->vec));
    s->holes = sim_holes_parse(m.holes, s->nr_pfns, d->log);
    if (!s->vec || !s->holes)
        goto fail;

    sim_path(path, sizeof(path), simname, "ram");
    s->ram_fd = sim_file_open(dir_fd, simname, "ram", O_RDWR, 0, d->log);
    if (s->ram_fd < 0)
        goto fail;
    /* a RAM file shorter than the guest would fault its mappings (SIGBUS) */
    if (fstat(s->ram_fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size < s->mem_bytes) {
        XCC_ERR(d->log, "sim",
                "%s is not a regular file of the guest's %" PRIu64 " bytes",
                path, s->mem_bytes);
        errno = EINVAL;
        goto fail;
    }
    sim_path(path, sizeof(path), simname, "dirty");
    fd = sim_file_open(dir_fd, simname, "dirty", O_RDWR, 0, d->log);
    if (fd < 0)
        goto fail;
    if (fstat(fd, &st) < 0 || (uint64_t)st.st_size < sim_dirty_file_size(s->nr_pfns)) {
        XCC_ERR(d->log, "sim", "%s is shorter than its bitmap", path);
        close(fd);
        errno = EINVAL;
        goto fail;
    }
    s->dirty_len = sim_dirty_file_size(s->nr_pfns);
    s->dirty =
        mmap(NULL, s->dirty_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    e = errno;
    close(fd);
    if (s->dirty == MAP_FAILED) {
        s->dirty = NULL;
        errno = e;
        XCC_PERR(d->log, "sim", "cannot map %s", path);
        goto fail;
    }
    if (s->dirty->magic != SIM_DIRTY_MAGIC || s->dirty->nr_pfns != s->nr_pfns) {
        XCC_ERR(d->log, "sim", "%s does not match the guest", path);
        errno = EINVAL;
        goto fail;
    }
    refresh_process(d);
    return 0;
fail:
    e = errno;
    sim_close(d);
    d->ops = NULL;
    errno = e;
    return -1;
fail_dir:
    e = errno;
    close(dir_fd);
    errno = e;
    return -1;
}

int sim_domain_dir_fd(xcc_domain *d)
{
    return priv(d)->dir_fd;
}

void sim_test_fail_maps(xcc_domain *d, unsigned count, int err)
{
    struct sim_dom *s = priv(d);

    s->fail_maps = count;
    s->fail_err = err;
}

int xcc_sim_logdirty_enable(xcc_domain *d)
{
    return d->ops->logdirty_enable(d);
}

int64_t xcc_sim_logdirty_clean(xcc_domain *d, uint64_t *bitmap)
{
    return d->ops->logdirty_clean(d, bitmap, false);
}
