/*
 * sim_workload.c - what a simulated guest runs, seen from outside the
 * guest process: the workload spec, the holes list, and the ledger's
 * layout and its check (used by `sim verify` and by the guest resuming
 * on restored RAM). It calls nothing else of the sim code but sim_paths.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "sim_workload.h"

/* Default part of a page a `random` write changes. */
#define RANDOM_DEFAULT_FRACTION 0.05
/* Default rate of `sweep` (pages/s): 1 GiB of 4 KiB pages in ~1 s. */
#define SWEEP_DEFAULT_RATE 262144ull

/* ------------------------------------------------------------------------ */
/* Ledger (layout in sim_workload.h).                                                                  */
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

#define LEDGER_SUM_SEED 0x58434C45444745ull

bool sim_ledger_geom_init(uint64_t nr_pfns, uint32_t psz, struct sim_ledger_geom *g)
{
    if (nr_pfns < SIM_LEDGER_FIRST_PFN + SIM_LEDGER_PAGES ||
        psz < SIM_LEDGER_RECORD_BYTES)
        return false;
    g->psz = psz;
    g->per_page = psz / SIM_LEDGER_RECORD_BYTES;
    g->nrec = SIM_LEDGER_PAGES * g->per_page;
    return true;
}

uint64_t sim_ledger_slot_sum(const struct sim_ledger_slot *s)
{
    return XXH3_64bits_withSeed(s, offsetof(struct sim_ledger_slot, sum),
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
    struct sim_ledger_geom g;
    uint64_t n, nmagic = 0, nbad = 0, head = 0, head_lap = 0;
    uint64_t *lap = NULL, *sum = NULL;
    uint8_t *fault = NULL, *good = NULL;
    int ret = -1;

    if (report_len)
        report[0] = '\0';
    if (!sim_ledger_geom_init(nr_pfns, page_size, &g)) {
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
        const struct sim_ledger_record *rec = sim_ledger_rec((uint8_t *)ram, &g, r);
        uint64_t c = atomic_load_explicit((_Atomic uint64_t *)&rec->commit,
                                          memory_order_relaxed);
        const struct sim_ledger_slot *s;

        for (int i = 0; i < 2; i++)
            nmagic += rec->slot[i].magic_index >> 32 == SIM_LEDGER_MAGIC;
        if (c > 1) {
            fault[r] = FAULT_COMMIT;
            continue;
        }
        s = &rec->slot[c];
        if (s->magic_index != ((uint64_t)SIM_LEDGER_MAGIC << 32 | r) ||
            s->sum != sim_ledger_slot_sum(s) || s->seq == 0 ||
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
        const struct sim_ledger_record *rec = sim_ledger_rec((uint8_t *)ram, &g, r);

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

/* ---- holes ---- */

uint64_t *sim_holes_parse(const char *spec, uint64_t nr_pfns,
                          xentoollog_logger *log)
{
    uint64_t *bm = calloc((nr_pfns + 63) / 64 ? (nr_pfns + 63) / 64 : 1, 8);
    const char *p = spec;

    if (!bm)
        return NULL;
    while (p && *p) {
        const char *item = p;
        size_t itemlen = strcspn(p, ",");
        char *end;
        uint64_t first, last;

        errno = 0;
        if (!isdigit((unsigned char)*p))
            goto bad;
        first = strtoull(p, &end, 0);
        last = first;
        if (errno)
            goto bad;
        if (*end == '-') {
            if (!isdigit((unsigned char)end[1]))
                goto bad;
            last = strtoull(end + 1, &end, 0);
            if (errno)
                goto bad;
        }
        if (*end != ',' && *end != '\0')
            goto bad;
        if (last < first || last >= nr_pfns) {
            XCC_ERR(log, "sim",
                    "holes: '%.*s' is outside pfns 0-%" PRIu64 " (or reversed)",
                    (int)itemlen, item, nr_pfns - 1);
            free(bm);
            errno = EINVAL;
            return NULL;
        }
        for (uint64_t i = first; i <= last; i++)
            bm[i / 64] |= 1ull << (i % 64);
        p = *end ? end + 1 : end;
        continue;
    bad:
        XCC_ERR(log, "sim",
                "holes: bad item '%.*s' in '%s': expected PFN or FIRST-LAST, "
                "comma-separated",
                (int)itemlen, item, spec);
        free(bm);
        errno = EINVAL;
        return NULL;
    }
    return bm;
}

