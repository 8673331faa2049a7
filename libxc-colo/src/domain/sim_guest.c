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

#include "sim.h"

/* One pass of each workload per tick: bounds the CPU a guest takes. */
#define TICK_NS 1000000ull
/* An idle-only guest wakes rarely. */
#define IDLE_TICK_NS 100000000ull
/* Time credited to rate-based workloads per tick at most, so a guest that
 * was paused for a while does not catch up in one burst. */
#define MAX_CATCHUP_NS 10000000ull
/* Default part of a page a `random` write changes. */
#define RANDOM_DEFAULT_FRACTION 0.05
/* Bytes per run a `random` write changes. */
#define RANDOM_RUN_BYTES 16
/* Default rate of `sweep` (pages/s): 1 GiB of 4 KiB pages in ~1 s. */
#define SWEEP_DEFAULT_RATE 262144ull
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
/* Ledger.                                                                  */
/*                                                                          */
/* N = LEDGER_PAGES * records-per-page records, record r at page            */
/* (r % LEDGER_PAGES), slot r / LEDGER_PAGES, so neighbours r-1, r, r+1 sit */
/* on different pages. Updates go round the ring: the update with sequence  */
/* number s (1, 2, ...) rewrites record (s - 1) % N, storing s, payload     */
/* derived from s, the checksum of record r-1 as it is now (it holds s-1),  */
/* and its own checksum. Each record has two slots and a commit word; the   */
/* writer fills the idle slot, then flips the commit word with one aligned  */
/* 8-byte store. A process stopped at any instruction therefore leaves      */
/* every record's committed slot whole, and the ring reads                  */
/*     seq(r) = S - ((h - r) mod N)   for head h (the newest record, seq S) */
/*     prev_sum(r) = sum(r - 1)       for every r but the oldest, h + 1      */
/* A page from an older image carries older sequence numbers and breaks     */
/* the first rule; a damaged page breaks the checksums.                     */
/* ------------------------------------------------------------------------ */

#define LEDGER_MAGIC 0x4C454447u /* "LEDG" */
#define LEDGER_SUM_SEED 0x58434C45444745ull

struct ledger_slot {
    uint64_t magic_index; /* LEDGER_MAGIC << 32 | record index */
    uint64_t seq;
    uint64_t payload[2];
    uint64_t prev_sum; /* sum of record r-1 when this was written */
    uint64_t sum;      /* XXH3 over the fields above */
};

struct ledger_record {
    _Atomic uint64_t commit; /* 0 or 1: the live slot */
    uint64_t reserved;
    struct ledger_slot slot[2];
    uint64_t pad[2];
};

#define LEDGER_RECORD_BYTES 128
_Static_assert(sizeof(struct ledger_record) == LEDGER_RECORD_BYTES,
               "ledger record size");

struct ledger_geom {
    uint64_t nrec, per_page;
    uint32_t psz;
};

static bool ledger_geom(uint64_t nr_pfns, uint32_t psz, struct ledger_geom *g)
{
    if (nr_pfns < SIM_LEDGER_FIRST_PFN + SIM_LEDGER_PAGES ||
        psz < LEDGER_RECORD_BYTES)
        return false;
    g->psz = psz;
    g->per_page = psz / LEDGER_RECORD_BYTES;
    g->nrec = SIM_LEDGER_PAGES * g->per_page;
    return true;
}

static inline uint64_t ledger_pfn(uint64_t r)
{
    return SIM_LEDGER_FIRST_PFN + r % SIM_LEDGER_PAGES;
}

static inline struct ledger_record *
ledger_rec(uint8_t *ram, const struct ledger_geom *g, uint64_t r)
{
    return (struct ledger_record *)(ram + ledger_pfn(r) * g->psz +
                                    (r / SIM_LEDGER_PAGES) *
                                        LEDGER_RECORD_BYTES);
}

static uint64_t ledger_slot_sum(const struct ledger_slot *s)
{
    return XXH3_64bits_withSeed(s, offsetof(struct ledger_slot, sum),
                                LEDGER_SUM_SEED);
}

/* ------------------------------------------------------------------------ */
/* Verification.                                                            */
/* ------------------------------------------------------------------------ */

enum rec_fault {
    FAULT_NONE,
    FAULT_COMMIT,   /* commit word neither 0 nor 1 */
    FAULT_SUM,      /* checksum or index wrong: damaged */
    FAULT_STALE,    /* sequence number out of place: an older/newer image */
    FAULT_NEIGHBOUR /* checksum of record r-1 does not match */
};

static const char *const fault_names[] = {
    "ok", "bad commit word", "bad checksum", "stale sequence number",
    "neighbour checksum mismatch"};

struct report {
    char *buf;
    size_t len, used;
};

static void report_add(struct report *rp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void report_add(struct report *rp, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (rp->used + 1 >= rp->len)
        return;
    va_start(ap, fmt);
    n = vsnprintf(rp->buf + rp->used, rp->len - rp->used, fmt, ap);
    va_end(ap);
    if (n > 0)
        rp->used +=
            (size_t)n < rp->len - rp->used ? (size_t)n : rp->len - rp->used - 1;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/*
 * Finds the head of the ring: each good record r holds seq = r + 1 + k*N
 * (its "lap" k). A consistent ring has lap K up to the head and K-1 after
 * it. Choosing K and h to fit the most records makes the verdict blame the
 * few odd pages, not the many good ones.
 */
static void ledger_find_head(const uint64_t *lap, const uint8_t *good,
                             uint64_t n, uint64_t *head, uint64_t *head_lap)
{
    uint64_t *sorted = malloc(n * sizeof(*sorted)), m = 0, mode = 0,
             best_run = 0, best = 0;

    *head = n - 1;
    *head_lap = 0;
    if (!sorted)
        return;
    for (uint64_t r = 0; r < n; r++)
        if (good[r])
            sorted[m++] = lap[r];
    if (!m) {
        free(sorted);
        return;
    }
    qsort(sorted, m, sizeof(*sorted), cmp_u64);
    for (uint64_t i = 0, run = 1; i < m; i++, run++) {
        if (i + 1 == m || sorted[i + 1] != sorted[i]) {
            if (run > best_run) {
                best_run = run;
                mode = sorted[i];
            }
            run = 0;
        }
    }
    free(sorted);
    /* try K = mode (head after the mode's records) and K = mode + 1 */
    for (uint64_t K = mode; K <= mode + 1; K++) {
        uint64_t fit_after = 0, fit_before = 0;

        /* everything after the head fits if its lap is K-1 (for K = 0
         * nothing does: a first lap ends at the last record) */
        for (uint64_t r = 0; r < n; r++)
            fit_after += good[r] && lap[r] == K - 1;
        /* head h: records <= h need lap K, records > h need lap K-1 */
        for (uint64_t h = 0; h < n; h++) {
            fit_before += good[h] && lap[h] == K;
            fit_after -= good[h] && lap[h] == K - 1;
            if (fit_before + fit_after > best ||
                (fit_before + fit_after == best && best == 0)) {
                best = fit_before + fit_after;
                *head = h;
                *head_lap = K;
            }
        }
    }
}

int sim_ledger_check(const uint8_t *ram, uint64_t nr_pfns, uint32_t page_size,
                     char *report, size_t report_len, uint64_t *head_seq)
{
    struct report rp = {report, report_len, 0};
    struct ledger_geom g;
    uint64_t n, nmagic = 0, nbad = 0, head = 0, head_lap = 0;
    uint64_t *lap = NULL, *sum = NULL;
    uint8_t *fault = NULL, *good = NULL;
    int ret = -1;

    if (report_len)
        report[0] = '\0';
    if (!ledger_geom(nr_pfns, page_size, &g)) {
        report_add(&rp,
                   "RAM of %" PRIu64 " pages is too small for the ledger "
                   "(pfns %llu-%llu)",
                   nr_pfns, SIM_LEDGER_FIRST_PFN,
                   SIM_LEDGER_FIRST_PFN + SIM_LEDGER_PAGES - 1);
        errno = EINVAL;
        return -1;
    }
    n = g.nrec;
    lap = calloc(n, sizeof(*lap));
    sum = calloc(n, sizeof(*sum));
    fault = calloc(n, 1);
    good = calloc(n, 1);
    if (!lap || !sum || !fault || !good) {
        report_add(&rp, "out of memory");
        errno = ENOMEM;
        goto out;
    }

    /* 1: each record on its own */
    for (uint64_t r = 0; r < n; r++) {
        const struct ledger_record *rec = ledger_rec((uint8_t *)ram, &g, r);
        uint64_t c = atomic_load_explicit((_Atomic uint64_t *)&rec->commit,
                                          memory_order_relaxed);
        const struct ledger_slot *s;

        for (int i = 0; i < 2; i++)
            nmagic += rec->slot[i].magic_index >> 32 == LEDGER_MAGIC;
        if (c > 1) {
            fault[r] = FAULT_COMMIT;
            continue;
        }
        s = &rec->slot[c];
        if (s->magic_index != ((uint64_t)LEDGER_MAGIC << 32 | r) ||
            s->sum != ledger_slot_sum(s) || s->seq == 0 ||
            (s->seq - 1) % n != r) {
            fault[r] = FAULT_SUM;
            continue;
        }
        good[r] = 1;
        lap[r] = (s->seq - 1) / n;
        sum[r] = s->sum;
    }
    if (!nmagic) {
        report_add(&rp,
                   "no ledger in RAM (pfns %llu-%llu hold no ledger "
                   "record)",
                   SIM_LEDGER_FIRST_PFN,
                   SIM_LEDGER_FIRST_PFN + SIM_LEDGER_PAGES - 1);
        ret = SIM_LEDGER_ABSENT;
        goto out;
    }

    /* 2: the ring's order */
    ledger_find_head(lap, good, n, &head, &head_lap);
    for (uint64_t r = 0; r < n; r++) {
        uint64_t want = r <= head ? head_lap : head_lap - 1;

        if (good[r] && lap[r] != want) {
            good[r] = 0;
            fault[r] = FAULT_STALE;
        }
    }
    /* 3: the links, where both ends are fine on their own */
    for (uint64_t r = 0; r < n; r++) {
        uint64_t p = (r + n - 1) % n;
        const struct ledger_record *rec = ledger_rec((uint8_t *)ram, &g, r);

        if (r == (head + 1) % n || !good[r] || !good[p])
            continue;
        if (rec->slot[rec->commit].prev_sum != sum[p])
            fault[r] = FAULT_NEIGHBOUR;
    }

    for (uint64_t r = 0; r < n; r++)
        nbad += fault[r] != FAULT_NONE;
    if (!nbad) {
        uint64_t s = head_lap * n + head + 1;

        report_add(&rp,
                   "OK: ledger of %" PRIu64 " records in pfns %llu-%llu, "
                   "newest sequence number %" PRIu64,
                   n, SIM_LEDGER_FIRST_PFN,
                   SIM_LEDGER_FIRST_PFN + SIM_LEDGER_PAGES - 1, s);
        if (head_seq)
            *head_seq = s;
        ret = SIM_LEDGER_OK;
        goto out;
    }

    /* group by page: pages are what a restore gets wrong */
    uint64_t npages = 0;
    for (uint64_t p = 0; p < SIM_LEDGER_PAGES; p++) {
        for (uint64_t r = p; r < n; r += SIM_LEDGER_PAGES) {
            if (fault[r]) {
                npages++;
                break;
            }
        }
    }
    report_add(&rp,
               "BROKEN: %" PRIu64 " of %" PRIu64 " ledger records in %" PRIu64
               " page(s)\n",
               nbad, n, npages);
    for (uint64_t p = 0; p < SIM_LEDGER_PAGES; p++) {
        uint64_t cnt = 0, first = 0;

        for (uint64_t r = p; r < n; r += SIM_LEDGER_PAGES) {
            if (fault[r] && !cnt++)
                first = r;
        }
        if (!cnt)
            continue;
        report_add(&rp,
                   "page pfn %llu: %" PRIu64 " record(s) broken, first "
                   "record %" PRIu64 " (%s)\n",
                   SIM_LEDGER_FIRST_PFN + p, cnt, first,
                   fault_names[fault[first]]);
    }
    if (rp.used + 1 >= rp.len && rp.len > 4)
        strcpy(rp.buf + rp.len - 5, "...\n");
    ret = SIM_LEDGER_BROKEN;
out:
    free(lap);
    free(sum);
    free(fault);
    free(good);
    return ret;
}

/* ------------------------------------------------------------------------ */
/* Workload spec.                                                           */
/* ------------------------------------------------------------------------ */

static int parse_part(const char *s, size_t len, struct sim_wl_part *p,
                      xentoollog_logger *log)
{
    char buf[SIM_WORKLOAD_MAX], *arg, *end;

    memcpy(buf, s, len);
    buf[len] = '\0';
    memset(p, 0, sizeof(*p));
    arg = strchr(buf, ':');
    if (arg)
        *arg++ = '\0';
    if (!strcmp(buf, "idle"))
        p->kind = SIM_WL_IDLE;
    else if (!strcmp(buf, "hotpages"))
        p->kind = SIM_WL_HOTPAGES;
    else if (!strcmp(buf, "sparse64"))
        p->kind = SIM_WL_SPARSE64;
    else if (!strcmp(buf, "ledger"))
        p->kind = SIM_WL_LEDGER;
    else if (!strcmp(buf, "random"))
        p->kind = SIM_WL_RANDOM;
    else if (!strcmp(buf, "sweep"))
        p->kind = SIM_WL_SWEEP;
    else if (!strcmp(buf, "count"))
        p->kind = SIM_WL_COUNT;
    else {
        XCC_ERR(log, "sim",
                "unknown workload '%s' (known: hotpages, sparse64, "
                "random:PAGES_PER_S[:FRACTION], sweep[:PAGES_PER_S], "
                "count:PAGES, ledger, idle; combine with '+')",
                buf);
        errno = EINVAL;
        return -1;
    }
    if (p->kind != SIM_WL_RANDOM && p->kind != SIM_WL_SWEEP &&
        p->kind != SIM_WL_COUNT) {
        if (arg) {
            XCC_ERR(log, "sim", "workload '%s' takes no parameter (got '%s')",
                    buf, arg);
            errno = EINVAL;
            return -1;
        }
        return 0;
    }
    if (p->kind == SIM_WL_SWEEP && !arg) {
        p->rate = SWEEP_DEFAULT_RATE;
        return 0;
    }
    if ((!arg || !*arg) && p->kind == SIM_WL_COUNT) {
        XCC_ERR(log, "sim", "workload 'count' needs a page count: count:PAGES");
        errno = EINVAL;
        return -1;
    }
    if (!arg || !*arg) {
        XCC_ERR(log, "sim",
                "workload 'random' needs a rate: "
                "random:PAGES_PER_S[:FRACTION]");
        errno = EINVAL;
        return -1;
    }
    errno = 0;
    p->rate = strtoull(arg, &end, 10);
    if (errno || end == arg || p->rate == 0 || *arg == '-' ||
        (*end && *end != ':') ||
        (*end == ':' && (p->kind == SIM_WL_SWEEP || p->kind == SIM_WL_COUNT))) {
        XCC_ERR(log, "sim",
                "workload '%s': bad rate '%s' (pages per second, > 0)", buf,
                arg);
        errno = EINVAL;
        return -1;
    }
    p->fraction = RANDOM_DEFAULT_FRACTION;
    if (*end == ':') {
        char *fend;
        const char *f = end + 1;

        p->fraction = strtod(f, &fend);
        if (fend == f || *fend || !(p->fraction > 0.0) || p->fraction > 1.0) {
            XCC_ERR(log, "sim",
                    "workload 'random': bad fraction '%s' (0 < FRACTION <= 1)",
                    f);
            errno = EINVAL;
            return -1;
        }
    }
    return 0;
}

int sim_workload_parse(const char *spec, uint64_t nr_pfns,
                       const uint64_t *holes, struct sim_workload *wl,
                       xentoollog_logger *log)
{
    const char *p = spec;

    memset(wl, 0, sizeof(*wl));
    if (!spec || !*spec || strlen(spec) >= SIM_WORKLOAD_MAX) {
        XCC_ERR(log, "sim", "empty or over-long workload spec");
        errno = EINVAL;
        return -1;
    }
    while (*p) {
        size_t len = strcspn(p, "+");
        struct sim_wl_part *part;
        uint64_t need = 0;
        const char *what = NULL;

        if (!len) {
            XCC_ERR(log, "sim", "workload '%s': empty part", spec);
            errno = EINVAL;
            return -1;
        }
        if (wl->nparts == SIM_WL_MAX_PARTS) {
            XCC_ERR(log, "sim", "workload '%s': more than %d parts", spec,
                    SIM_WL_MAX_PARTS);
            errno = EINVAL;
            return -1;
        }
        part = &wl->part[wl->nparts];
        if (parse_part(p, len, part, log) < 0)
            return -1;
        wl->nparts++;
        switch (part->kind) {
        case SIM_WL_HOTPAGES:
            need = SIM_HOT_FIRST_PFN + SIM_HOT_PAGES;
            what = "hotpages";
            break;
        case SIM_WL_SPARSE64:
            need = SIM_SPARSE_FIRST_PFN + SIM_SPARSE_PAGES;
            what = "sparse64";
            break;
        case SIM_WL_LEDGER:
            need = SIM_LEDGER_FIRST_PFN + SIM_LEDGER_PAGES;
            what = "ledger";
            wl->has_ledger = true;
            for (uint64_t i = SIM_LEDGER_FIRST_PFN;
                 holes && i < need && i < nr_pfns; i++) {
                if (sim_bit(holes, i)) {
                    XCC_ERR(log, "sim",
                            "workload 'ledger': hole at pfn %" PRIu64
                            " lies in the ledger's pfns %llu-%" PRIu64,
                            i, SIM_LEDGER_FIRST_PFN, need - 1);
                    errno = EINVAL;
                    return -1;
                }
            }
            break;
        default:
            break;
        }
        if (need > nr_pfns) {
            XCC_ERR(log, "sim",
                    "workload '%s' needs at least %" PRIu64
                    " pages of RAM (pfns up to %" PRIu64
                    "), the guest has %" PRIu64,
                    what, need, need - 1, nr_pfns);
            errno = EINVAL;
            return -1;
        }
        p += len;
        if (*p == '+') {
            p++;
            if (!*p) {
                XCC_ERR(log, "sim", "workload '%s': empty part", spec);
                errno = EINVAL;
                return -1;
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The guest process.                                                       */
/* ------------------------------------------------------------------------ */

struct guest {
    const struct sim_guest_args *a;
    uint8_t *ram;
    uint64_t nr_pfns;
    uint32_t psz;
    struct sim_dirty_hdr *dirty; /* shared with savers */
    bool bitmap_mode;
    uint64_t rng;
    /* per workload state */
    uint64_t random_budget_ns[SIM_WL_MAX_PARTS];
    uint64_t sweep_pos, sweep_round, sweep_budget_ns[SIM_WL_MAX_PARTS];
    uint64_t hot_pass;
    struct ledger_geom lg;
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

static void fill_ram(struct guest *g)
{
    for (uint64_t pfn = 0; pfn < g->nr_pfns; pfn++) {
        uint64_t s = mix64(g->a->seed ^ mix64(pfn));
        uint64_t *w = (uint64_t *)(g->ram + pfn * g->psz);

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
    struct ledger_record *rec = ledger_rec(g->ram, &g->lg, r);
    struct ledger_record *prev =
        ledger_rec(g->ram, &g->lg, (r + g->lg.nrec - 1) % g->lg.nrec);
    uint64_t c = atomic_load_explicit(&rec->commit, memory_order_relaxed);
    uint64_t pc = atomic_load_explicit(&prev->commit, memory_order_relaxed);
    struct ledger_slot *s;
    uint64_t pfn = ledger_pfn(r);

    c = c > 1 ? 0 : c;
    s = &rec->slot[c ^ 1];
    page_begin(g, pfn);
    s->magic_index = (uint64_t)LEDGER_MAGIC << 32 | r;
    s->seq = seq;
    s->payload[0] = mix64(seq ^ g->a->seed);
    s->payload[1] = mix64(s->payload[0]);
    /* genesis: the first record of a fresh ledger has no predecessor */
    s->prev_sum = seq == 1 ? 0 : prev->slot[pc > 1 ? 0 : pc].sum;
    s->sum = ledger_slot_sum(s);
    atomic_store_explicit(&rec->commit, c ^ 1, memory_order_release);
    page_end(g, pfn);
}

static void ledger_setup(struct guest *g)
{
    char report[512];
    uint64_t head_seq = 0;
    int rc;

    if (!ledger_geom(g->nr_pfns, g->psz, &g->lg))
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
        struct ledger_record *rec = ledger_rec(g->ram, &g->lg, r);

        page_begin(g, ledger_pfn(r));
        memset(rec, 0, sizeof(*rec));
        atomic_store(&rec->commit, 1); /* ledger_write fills slot 0 */
        page_end(g, ledger_pfn(r));
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
 * count:N - the same N pages, spread evenly over RAM, each get 8 bytes
 * rewritten every tick: an epoch in which the guest ran at least one tick
 * holds exactly N dirty pages (fewer only for holes and ledger pages), so
 * checkpoints of different modes can be benchmarked on the same work.
 */
static void run_count(struct guest *g, unsigned part)
{
    uint64_t n = g->a->wl.part[part].rate, stride;

    if (n > g->nr_pfns)
        n = g->nr_pfns;
    stride = g->nr_pfns / n;
    for (uint64_t k = 0; k < n; k++) {
        uint64_t pfn = k * stride;
        uint8_t *page = g->ram + pfn * g->psz;

        if (is_hole(g, pfn) || in_ledger(g, pfn))
            continue;
        page_begin(g, pfn);
        for (unsigned i = 0; i < 8; i++)
            page[(k * 64 + i) % g->psz] += (uint8_t)(i + 1);
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

static void *map_file(const char *name, const char *file, size_t len, int *fd)
{
    char path[PATH_MAX];
    void *p;

    sim_path(path, sizeof(path), name, file);
    *fd = open(path, O_RDWR | O_CLOEXEC);
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
    int lock = sim_meta_lock(g->a->name);

    if (lock < 0)
        fail(errno, "cannot lock the guest directory: %s", strerror(errno));
    if (sim_meta_read(g->a->name, &m, NULL) < 0)
        fail(errno, "cannot read meta.json: %s", strerror(errno));
    m.pid = getpid();
    m.pid_start = sim_proc_starttime(getpid());
    m.ram_addr = (uintptr_t)g->ram;
    snprintf(m.tracking, sizeof(m.tracking), "%s", tracking);
    snprintf(m.workload, sizeof(m.workload), "%s", g->a->workload);
    m.seed = g->a->seed;
    if (sim_meta_write(g->a->name, &m, NULL) < 0)
        fail(errno, "cannot write meta.json: %s", strerror(errno));
    sim_meta_unlock(lock);
}

/* Makes the child a clean daemon: stdio to guest.log, no inherited fds,
 * default signals. */
static void detach(const char *name, int fd)
{
    char path[PATH_MAX];
    int log, null;
    sigset_t all;

    if (fd != 3) {
        if (dup2(fd, 3) < 0)
            _exit(1);
        close(fd);
    }
    ready_fd = 3;
    sim_path(path, sizeof(path), name, "guest.log");
    log = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (log < 0 || null < 0)
        fail(errno, "cannot open %s: %s", path, strerror(errno));
    dup2(null, 0);
    dup2(log, 1);
    dup2(log, 2);
    close(log);
    close(null);
    syscall(SYS_close_range, 4u, ~0u, 0u);
    if (chdir("/") < 0) {
        /* keeps the caller's directory busy; harmless */
    }
    setvbuf(stderr, NULL, _IOLBF, 0);
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL);
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
}

void sim_guest_main(const struct sim_guest_args *a, int fd)
{
    struct guest g;
    char comm[16], why[512];
    const char *tracking = a->tracking;
    int ram_fd, dirty_fd;
    uint64_t last, tick = IDLE_TICK_NS;

    ready_fd = fd;
    detach(a->name, fd);
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
    g.psz = a->page_size;
    g.nr_pfns = a->mem_bytes / a->page_size;
    g.rng = mix64(a->seed ^ 0x52414e44u);
    g.ram = map_file(a->name, "ram", a->mem_bytes, &ram_fd);
    g.dirty =
        map_file(a->name, "dirty", sim_dirty_file_size(g.nr_pfns), &dirty_fd);
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
