/*
 * sim_guest.c - the workload engine that runs inside a simulated guest's
 * process, and the ledger that proves a RAM image consistent.
 *
 * The guest is single-threaded: every workload in the spec gets one pass
 * per tick, then the process sleeps TICK_NS, so a busy guest takes a
 * fraction of a core and SIGSTOP leaves nothing running. Measured here
 * (Linux 6.18, 2 vCPUs): ledger+hotpages+sparse64 makes ~700 passes/s
 * (4096 hot pages, 32 ledger records, 64 sparse pages each) at ~12% of a
 * core; the seed programs loop flat out instead, which would starve the
 * saver on a 2-core machine.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "sim_guest.h"

/* One pass of each workload per tick: bounds the CPU a guest takes. */
#define TICK_NS 1000000ull
/* An idle-only guest wakes rarely. */
#define IDLE_TICK_NS 100000000ull
/* Time credited to rate-based workloads per tick at most, so a guest that
 * was paused for a while does not catch up in one burst. */
#define MAX_CATCHUP_NS 10000000ull
/* Bytes per run a `random` write changes. */
#define RANDOM_RUN_BYTES 16
/* Ledger records rewritten per tick: the whole ledger in ~1 s. */
#define LEDGER_PER_TICK 32
/* 1 page in ZERO_PAGE_ODDS stays zero after the fill. */
#define ZERO_PAGE_ODDS 16

/* ------------------------------------------------------------------------ */
/* PRNG: splitmix64 (seeding) and wyrand-style stepping; fast and fine for */
/* filling memory, not for anything secret.                                */
/* ------------------------------------------------------------------------ */

static inline uint64_t mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static inline uint64_t rng_next(uint64_t *s)
{
    *s += 0xA0761D6478BD642Full;
    __uint128_t t = (__uint128_t)*s * (*s ^ 0xE7037ED1A0B428DBull);
    return (uint64_t)(t >> 64) ^ (uint64_t)t;
}

/* ------------------------------------------------------------------------ */
/* The guest process.                                                       */
/* ------------------------------------------------------------------------ */

struct guest {
    const struct sim_guest_args *a;
    int dir_fd; /* the guest's directory */
    uint8_t *ram;
    uint64_t nr_pfns;
    uint32_t psz;
    struct sim_dirty_hdr *dirty; /* shared with savers */
    bool bitmap_mode;
    uint64_t rng;
    /* per workload state */
    uint64_t random_budget_ns[SIM_WL_MAX_PARTS];
    uint64_t sweep_pos, sweep_round, sweep_budget_ns[SIM_WL_MAX_PARTS];
    uint64_t count_pass; /* count:N passes so far */
    uint64_t hot_pass;
    struct sim_ledger_geom lg;
    uint64_t ledger_seq; /* newest sequence number in RAM */
};

static int ready_fd = -1;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
    char buf[1200];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof(buf) - 2)
        n = (int)sizeof(buf) - 2;
    buf[n++] = '\n';
    if (write(ready_fd, buf, (size_t)n) < 0) {
        /* the parent is gone; guest.log still has it */
    }
    fwrite(buf, 1, (size_t)n, stderr);
}

static void fail(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

static void fail(int err, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    say("ERR %d %s", err, msg);
    _exit(1);
}

static inline bool is_hole(const struct guest *g, uint64_t pfn)
{
    return sim_bit(g->a->holes, pfn);
}

/* Bitmap-mode bracket around every write to a page (see sim.h). */
static inline void page_begin(struct guest *g, uint64_t pfn)
{
    if (!g->bitmap_mode)
        return;
    atomic_store_explicit(&g->dirty->inflight, pfn + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
}

static inline void page_end(struct guest *g, uint64_t pfn)
{
    if (!g->bitmap_mode)
        return;
    atomic_fetch_or(&sim_dirty_words(g->dirty)[pfn / 64], 1ull << (pfn % 64));
    atomic_store(&g->dirty->inflight, 0);
}

/*
 * Tells the parent that start-up advances ("PROGRESS n", on the ready pipe
 * only): it waits as long as progress comes, not a fixed time, so a large
 * guest started on a loaded machine is not given up on.
 */
static void say_progress(uint64_t done)
{
    char buf[48];
    int n = snprintf(buf, sizeof(buf), "PROGRESS %" PRIu64 "\n", done);

    if (write(ready_fd, buf, (size_t)n) < 0) {
        /* the parent is gone; it will not wait for OK either */
    }
}

/* Pages filled between two PROGRESS reports (64 MiB of 4 KiB pages). */
#define FILL_PROGRESS_PAGES 16384u

static void fill_ram(struct guest *g)
{
    for (uint64_t pfn = 0; pfn < g->nr_pfns; pfn++) {
        uint64_t s = mix64(g->a->seed ^ mix64(pfn));
        uint64_t *w = (uint64_t *)(g->ram + pfn * g->psz);

        if (pfn % FILL_PROGRESS_PAGES == FILL_PROGRESS_PAGES - 1)
            say_progress(pfn + 1);

        if (is_hole(g, pfn) || s % ZERO_PAGE_ODDS == 0)
            continue;
        /* mostly random words, a quarter of them small integers: memory
         * that is neither trivial nor all noise */
        for (size_t i = 0; i < g->psz / 8; i++) {
            uint64_t r = rng_next(&s);
            w[i] = (r >> 62) == 0 ? (r & 0xffff) : r;
        }
    }
}

/* Writes record r with sequence number seq (the ring's next update). */
static void ledger_write(struct guest *g, uint64_t r, uint64_t seq)
{
    struct sim_ledger_record *rec = sim_ledger_rec(g->ram, &g->lg, r);
    struct sim_ledger_record *prev =
        sim_ledger_rec(g->ram, &g->lg, (r + g->lg.nrec - 1) % g->lg.nrec);
    uint64_t c = atomic_load_explicit(&rec->commit, memory_order_relaxed);
    uint64_t pc = atomic_load_explicit(&prev->commit, memory_order_relaxed);
    struct sim_ledger_slot *s;
    uint64_t pfn = sim_ledger_pfn(r);

    c = c > 1 ? 0 : c;
    s = &rec->slot[c ^ 1];
    page_begin(g, pfn);
    s->magic_index = (uint64_t)SIM_LEDGER_MAGIC << 32 | r;
    s->seq = seq;
    s->payload[0] = mix64(seq ^ g->a->seed);
    s->payload[1] = mix64(s->payload[0]);
    /* genesis: the first record of a fresh ledger has no predecessor */
    s->prev_sum = seq == 1 ? 0 : prev->slot[pc > 1 ? 0 : pc].sum;
    s->sum = sim_ledger_slot_sum(s);
    atomic_store_explicit(&rec->commit, c ^ 1, memory_order_release);
    page_end(g, pfn);
}

static void ledger_setup(struct guest *g)
{
    char report[512];
    uint64_t head_seq = 0;
    int rc;

    if (!sim_ledger_geom_init(g->nr_pfns, g->psz, &g->lg))
        fail(EINVAL, "RAM too small for the ledger");
    rc = sim_ledger_check(g->ram, g->nr_pfns, g->psz, report, sizeof(report),
                          &head_seq);
    if (rc == SIM_LEDGER_OK) {
        g->ledger_seq = head_seq;
        fprintf(stderr, "ledger: continuing: %s\n", report);
        return;
    }
    if (rc == SIM_LEDGER_BROKEN)
        fail(EBADMSG, "the ledger in RAM is broken, not resuming: %s", report);
    /* absent: start a fresh ledger, records 0..N-1 with seq 1..N */
    for (uint64_t r = 0; r < g->lg.nrec; r++) {
        struct sim_ledger_record *rec = sim_ledger_rec(g->ram, &g->lg, r);

        page_begin(g, sim_ledger_pfn(r));
        memset(rec, 0, sizeof(*rec));
        atomic_store(&rec->commit, 1); /* ledger_write fills slot 0 */
        page_end(g, sim_ledger_pfn(r));
        ledger_write(g, r, r + 1);
    }
    g->ledger_seq = g->lg.nrec;
}

static void run_hotpages(struct guest *g)
{
    /* the seed program: buf[i * 4096 / 4]++ for i < 4096 * 4, i.e. four
     * bytes a quarter page apart in each of 4096 pages */
    for (uint64_t pfn = SIM_HOT_FIRST_PFN;
         pfn < SIM_HOT_FIRST_PFN + SIM_HOT_PAGES; pfn++) {
        uint8_t *page = g->ram + pfn * g->psz;

        if (is_hole(g, pfn))
            continue;
        page_begin(g, pfn);
        for (int q = 0; q < 4; q++)
            page[q * (g->psz / 4)]++;
        page_end(g, pfn);
    }
    g->hot_pass++;
}

static void run_sparse64(struct guest *g)
{
    /* the XBRLE seed generator: buf[i * 4096 + 1234 + i] += i */
    for (uint64_t i = 0; i < SIM_SPARSE_PAGES; i++) {
        uint64_t pfn = SIM_SPARSE_FIRST_PFN + i;

        if (is_hole(g, pfn))
            continue;
        page_begin(g, pfn);
        g->ram[pfn * g->psz + (1234 + i) % g->psz] += (uint8_t)i;
        page_end(g, pfn);
    }
}

static bool in_ledger(const struct guest *g, uint64_t pfn)
{
    return g->a->wl.has_ledger && pfn >= SIM_LEDGER_FIRST_PFN &&
           pfn < SIM_LEDGER_FIRST_PFN + SIM_LEDGER_PAGES;
}

static void run_random(struct guest *g, unsigned part, uint64_t dt)
{
    const struct sim_wl_part *p = &g->a->wl.part[part];
    uint64_t ns_per_page =
        1000000000ull / p->rate ? 1000000000ull / p->rate : 1;
    size_t bytes = (size_t)(p->fraction * g->psz);

    g->random_budget_ns[part] += dt;
    if (bytes < 1)
        bytes = 1;
    while (g->random_budget_ns[part] >= ns_per_page) {
        uint64_t pfn = rng_next(&g->rng) % g->nr_pfns;
        uint8_t *page = g->ram + pfn * g->psz;

        g->random_budget_ns[part] -= ns_per_page;
        if (is_hole(g, pfn) || in_ledger(g, pfn))
            continue;
        page_begin(g, pfn);
        for (size_t done = 0; done < bytes; done += RANDOM_RUN_BYTES) {
            size_t run = bytes - done < RANDOM_RUN_BYTES ? bytes - done
                                                         : RANDOM_RUN_BYTES;
            size_t off = rng_next(&g->rng) % (g->psz - run + 1);

            for (size_t i = 0; i < run; i++)
                page[off + i] ^= (uint8_t)(rng_next(&g->rng) | 1);
        }
        page_end(g, pfn);
    }
}

/*
 * count:N - the same N pages, spread evenly over RAM, each get one 8-byte
 * word rewritten every tick: an epoch in which the guest ran at least one
 * tick holds exactly N dirty pages (fewer only for holes and ledger pages),
 * so checkpoints of different modes can be benchmarked on the same work.
 * The word is the pass number, which never repeats: a page never returns
 * to a content it had before (an 8-bit counter did after 256 ticks, and
 * such a page then cost XBZRLE nothing), so every epoch's pages differ
 * from the copy sent last time.
 */
static void run_count(struct guest *g, unsigned part)
{
    uint64_t n = g->a->wl.part[part].rate, stride;

    if (n > g->nr_pfns)
        n = g->nr_pfns;
    stride = g->nr_pfns / n;
    g->count_pass++;
    for (uint64_t k = 0; k < n; k++) {
        uint64_t pfn = k * stride;
        uint8_t *page = g->ram + pfn * g->psz;
        size_t off = (size_t)(k * 64) % (g->psz - 7) & ~(size_t)7;

        if (is_hole(g, pfn) || in_ledger(g, pfn))
            continue;
        page_begin(g, pfn);
        memcpy(page + off, &g->count_pass, sizeof(g->count_pass));
        page_end(g, pfn);
    }
}

static void run_sweep(struct guest *g, unsigned part, uint64_t dt)
{
    const struct sim_wl_part *p = &g->a->wl.part[part];
    uint64_t ns_per_page =
        1000000000ull / p->rate ? 1000000000ull / p->rate : 1;

    g->sweep_budget_ns[part] += dt;
    while (g->sweep_budget_ns[part] >= ns_per_page) {
        uint64_t pfn = g->sweep_pos;

        g->sweep_budget_ns[part] -= ns_per_page;
        if (++g->sweep_pos == g->nr_pfns) {
            g->sweep_pos = 0;
            g->sweep_round++;
            atomic_fetch_add(&g->dirty->sweeps, 1);
        }
        if (is_hole(g, pfn) || in_ledger(g, pfn))
            continue;
        page_begin(g, pfn);
        ((uint64_t *)(g->ram + pfn * g->psz))[g->sweep_round % (g->psz / 8)]++;
        page_end(g, pfn);
    }
}

static void run_ledger(struct guest *g)
{
    for (int i = 0; i < LEDGER_PER_TICK; i++) {
        uint64_t seq = g->ledger_seq + 1;

        ledger_write(g, (seq - 1) % g->lg.nrec, seq);
        g->ledger_seq = seq;
    }
}

/* Registers RAM for async write-protect tracking; 0 or -1 with *why. */
static int uffd_arm(struct guest *g, char *why, size_t whylen)
{
    struct uffdio_api api = {.api = UFFD_API,
                             .features = UFFD_FEATURE_WP_ASYNC |
                                         UFFD_FEATURE_WP_UNPOPULATED};
    struct uffdio_register reg = {
        .range = {(uintptr_t)g->ram, g->nr_pfns * g->psz},
        .mode = UFFDIO_REGISTER_MODE_WP};
    struct uffdio_writeprotect wp = {
        .range = {(uintptr_t)g->ram, g->nr_pfns * g->psz},
        .mode = UFFDIO_WRITEPROTECT_MODE_WP};
    struct sim_page_region vec[1];
    struct sim_pm_scan_arg scan = {.size = sizeof(scan),
                                   .start = (uintptr_t)g->ram,
                                   .end =
                                       (uintptr_t)g->ram + g->nr_pfns * g->psz,
                                   .vec = (uintptr_t)vec,
                                   .vec_len = 1,
                                   .category_mask = SIM_PAGE_IS_WRITTEN,
                                   .return_mask = SIM_PAGE_IS_WRITTEN};
    int fd, pm;

    /* user-mode-only faults suffice (the guest's own writes), and are what
     * vm.unprivileged_userfaultfd=0 still allows */
    fd = (int)syscall(SYS_userfaultfd,
                      O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
    if (fd < 0)
        fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        snprintf(why, whylen, "userfaultfd: %s", strerror(errno));
        return -1;
    }
    if (ioctl(fd, UFFDIO_API, &api) < 0) {
        snprintf(why, whylen,
                 "userfaultfd lacks async write-protect (Linux 6.7): %s",
                 strerror(errno));
        close(fd);
        return -1;
    }
    if (ioctl(fd, UFFDIO_REGISTER, &reg) < 0 ||
        ioctl(fd, UFFDIO_WRITEPROTECT, &wp) < 0) {
        snprintf(why, whylen, "userfaultfd write-protect of RAM: %s",
                 strerror(errno));
        close(fd);
        return -1;
    }
    pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (pm < 0 || ioctl(pm, SIM_PAGEMAP_SCAN, &scan) < 0) {
        snprintf(why, whylen, "PAGEMAP_SCAN (Linux 6.7): %s", strerror(errno));
        if (pm >= 0)
            close(pm);
        close(fd);
        return -1;
    }
    close(pm);
    /* fd stays open for the life of the process: closing it would
     * unregister the range and stop the tracking */
    return 0;
}

static void *map_file(struct guest *g, const char *file, size_t len, int *fd)
{
    char path[PATH_MAX];
    void *p;

    sim_path(path, sizeof(path), g->a->name, file);
    *fd = sim_file_open(g->dir_fd, g->a->name, file, O_RDWR, 0, NULL);
    if (*fd < 0)
        fail(errno, "cannot open %s: %s", path, strerror(errno));
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
    if (p == MAP_FAILED)
        fail(errno, "cannot map %s: %s", path, strerror(errno));
    return p;
}

static void publish(struct guest *g, const char *tracking)
{
    struct sim_meta m;
    int lock = sim_meta_lockat(g->dir_fd);

    if (lock < 0)
        fail(errno, "cannot lock the guest directory: %s", strerror(errno));
    if (sim_meta_readat(g->dir_fd, g->a->name, &m, NULL) < 0)
        fail(errno, "cannot read meta.json: %s", strerror(errno));
    m.pid = getpid();
    m.pid_start = sim_proc_starttime(getpid());
    m.ram_addr = (uintptr_t)g->ram;
    snprintf(m.tracking, sizeof(m.tracking), "%s", tracking);
    snprintf(m.workload, sizeof(m.workload), "%s", g->a->workload);
    m.seed = g->a->seed;
    if (sim_meta_writeat(g->dir_fd, g->a->name, &m, NULL) < 0)
        fail(errno, "cannot write meta.json: %s", strerror(errno));
    sim_meta_unlock(lock);
}

/* Makes the process a clean daemon: no inherited fds but the ready pipe
 * (SIM_GUEST_READY_FD) and the guest directory (SIM_GUEST_DIR_FD), stdio
 * already on /dev/null and guest.log, default signals. */
static void detach(void)
{
    sigset_t all;

    ready_fd = SIM_GUEST_READY_FD;
    syscall(SYS_close_range, (unsigned)SIM_GUEST_DIR_FD + 1, ~0u, 0u);
    if (chdir("/") < 0) {
        /* keeps the caller's directory busy; harmless */
    }
    setvbuf(stderr, NULL, _IOLBF, 0);
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL);
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
}

void sim_guest_main(const struct sim_guest_args *a)
{
    struct guest g;
    char comm[16], why[512];
    const char *tracking = a->tracking;
    int ram_fd, dirty_fd;
    uint64_t last, tick = IDLE_TICK_NS;

    detach();
    say("PID %d", (int)getpid());
    snprintf(comm, sizeof(comm), "xcc-sim:%s", a->name);
    prctl(PR_SET_NAME, comm);
    fprintf(stderr,
            "guest %s: pid %d, %" PRIu64 " bytes, workload %s, "
            "seed %" PRIu64 "%s\n",
            a->name, (int)getpid(), a->mem_bytes, a->workload, a->seed,
            a->fill ? "" : " (resumed)");

    memset(&g, 0, sizeof(g));
    g.a = a;
    g.dir_fd = SIM_GUEST_DIR_FD;
    g.psz = a->page_size;
    g.nr_pfns = a->mem_bytes / a->page_size;
    g.rng = mix64(a->seed ^ 0x52414e44u);
    g.ram = map_file(&g, "ram", a->mem_bytes, &ram_fd);
    g.dirty = map_file(&g, "dirty", sim_dirty_file_size(g.nr_pfns), &dirty_fd);
    if (g.dirty->magic != SIM_DIRTY_MAGIC || g.dirty->nr_pfns != g.nr_pfns)
        fail(EINVAL, "the dirty file does not match the guest");

    if (a->fill)
        fill_ram(&g);

    /* arm the tracking before the ledger (it may write on resume) */
    if (!strcmp(tracking, "bitmap")) {
        g.bitmap_mode = true;
    } else if (uffd_arm(&g, why, sizeof(why)) == 0) {
        tracking = "pagemap";
    } else if (!strcmp(tracking, "pagemap")) {
        fail(ENOTSUP, "pagemap dirty tracking unavailable: %s", why);
    } else {
        say("WARN guest %s: pagemap dirty tracking unavailable (%s); using "
            "the bitmap",
            a->name, why);
        tracking = "bitmap";
        g.bitmap_mode = true;
    }
    if (a->wl.has_ledger)
        ledger_setup(&g);
    for (unsigned i = 0; i < a->wl.nparts; i++)
        if (a->wl.part[i].kind != SIM_WL_IDLE)
            tick = TICK_NS;

    publish(&g, tracking);
    fprintf(stderr, "guest %s: running, tracking %s, RAM at %p\n", a->name,
            tracking, (void *)g.ram);
    say("OK");
    close(ready_fd);
    ready_fd = 2;

    last = lib_now_ns();
    for (;;) {
        struct timespec ts = {0, (long)tick};
        uint64_t now = lib_now_ns(), dt = now - last;

        last = now;
        if (dt > MAX_CATCHUP_NS)
            dt = MAX_CATCHUP_NS;
        for (unsigned i = 0; i < a->wl.nparts; i++) {
            switch (a->wl.part[i].kind) {
            case SIM_WL_HOTPAGES:
                run_hotpages(&g);
                break;
            case SIM_WL_SPARSE64:
                run_sparse64(&g);
                break;
            case SIM_WL_RANDOM:
                run_random(&g, i, dt);
                break;
            case SIM_WL_SWEEP:
                run_sweep(&g, i, dt);
                break;
            case SIM_WL_LEDGER:
                run_ledger(&g);
                break;
            case SIM_WL_COUNT:
                run_count(&g, i);
                break;
            case SIM_WL_IDLE:
                break;
            }
        }
        atomic_fetch_add(&g.dirty->ticks, 1);
        nanosleep(&ts, NULL);
    }
}
