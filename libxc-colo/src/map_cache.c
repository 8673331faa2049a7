/*
 * map_cache.c - persistent mappings of a domain's pages, in aligned chunks.
 *
 * Stock Xen maps every batch of pages with one foreign-map call and unmaps
 * it again, every iteration. Here each aligned chunk of chunk_pfns pfns is
 * mapped once (one backend map call, one VMA) and kept, so later iterations
 * find their pages already mapped. A pfn-indexed pointer array, as in the
 * seed patch, would cost 8 bytes per pfn; the chunk table costs
 * sizeof(struct chunk) = 40 bytes per chunk, i.e. 40 bytes per 4 MiB of
 * guest memory with the default 1024-pfn chunks of 4 KiB pages (the error
 * bitmap is only allocated for chunks where a page failed to map).
 *
 * Budget: Linux counts each mapping as a VMA against vm.max_map_count, so
 * at most max_mappings chunks (and max_bytes bytes) are resident; the least
 * recently used chunks are unmapped to make room. The LRU is a doubly
 * linked list threaded through the chunk table by index: O(1) per touch and
 * per eviction. A chunk used by the batch being resolved is never evicted
 * (its pages were handed out), which is why a lookup may resolve only a
 * prefix of a batch that touches more chunks than the budget holds.
 *
 * Per-batch mode (--no-map-cache) maps the whole batch with one call and
 * unmaps it at release, exactly as stock Xen, so the two can be compared.
 *
 * A chunk kept mapped can go stale: the guest balloons a pfn out and in
 * again, a PV guest moves a pfn to another frame, a page table is freed.
 * The backend reports such pfn ranges (domain_mapping_changed); every
 * lookup first drops the chunks they touch (xcc_map_cache_invalidate), and
 * resolves its batch again if a change came in while it mapped.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain/domain.h"

#define CTX "map_cache"

/* 1024 pfns of 4 KiB: 4 MiB per VMA, 256 VMAs per GiB of guest. */
#define DEFAULT_CHUNK_PFNS 1024u
/* Largest chunk accepted: 4 GiB of 4 KiB pages in one mapping is plenty. */
#define MAX_CHUNK_PFNS (1u << 20)
/* Where Linux publishes the per-process VMA limit. */
#define MAX_MAP_COUNT_PATH "/proc/sys/vm/max_map_count"
/* Linux's default vm.max_map_count, used when /proc cannot be read. */
#define MAX_MAP_COUNT_FALLBACK 65530u
/* Take a quarter of the VMA allowance: the heap, libraries, the stream's
 * buffers and, in a migration, the other side's mappings need the rest. */
#define MAX_MAP_COUNT_SHARE 4u
/* End of the LRU list; chunk indices are 32-bit, so this one is reserved. */
#define LRU_NONE UINT32_MAX
/* Times one lookup resolves its batch again because the backend reported a
 * mapping change meanwhile; after that it hands out what it has (the next
 * lookup drops it), so a guest that keeps ballooning cannot stall a save. */
#define MAX_CHANGE_RETRIES 4u

/* Chunk flags, valid for the lookup whose stamp the chunk carries. */
#define CHUNK_RETRY 1u      /* a failed page was touched: map it again */
#define CHUNK_MAPPED_NOW 2u /* mapped by this lookup: its pfns are misses */

/* Pages of a chunk that failed to map; allocated only when one did. */
struct chunk_fail {
    int code;         /* err[] of the latest failed page (negative errno) */
    uint32_t nfailed; /* bits set below */
    uint64_t bits[];  /* chunk_pfns bits: 1 = page failed to map */
};

struct chunk {
    uint8_t *base;           /* NULL: not mapped */
    struct chunk_fail *fail; /* NULL: every page mapped (or not mapped) */
    uint64_t stamp;          /* last lookup that used it (LRU tie-breaker and
                                the pin of the batch being resolved) */
    uint32_t prev, next;     /* LRU list, most recent first */
    uint32_t flags;          /* CHUNK_* for the lookup `stamp` */
};

/* The figure promised in the header comment: keep it under 64 bytes. */
_Static_assert(sizeof(struct chunk) < 64, "chunk bookkeeping must stay under "
                                          "64 bytes per 4 MiB chunk");

struct xcc_map_cache {
    xcc_domain *d;
    xentoollog_logger *log;
    bool writable, per_batch;
    uint32_t page_size;
    uint32_t chunk_pfns, chunk_shift;
    uint64_t nr_pfns;
    uint64_t max_mappings; /* resident chunks allowed */
    uint64_t max_bytes;    /* resident bytes allowed; UINT64_MAX: none */
    uint64_t capacity;     /* chunks one batch may use: min of the two */

    struct chunk *chunks;
    uint32_t nr_chunks;
    uint32_t lru_head, lru_tail;
    uint64_t gen; /* lookup counter: the stamp of the current batch */

    uint32_t *touched; /* chunks used by the current lookup */
    uint32_t touched_cap;
    uint64_t *scratch_pfns; /* chunk_pfns entries: the pfns of one chunk */
    int *scratch_err;

    /* Per-batch mode: the live batch mapping. */
    uint8_t *batch_addr;
    size_t batch_n;

    uint64_t fail_allocs; /* struct chunk_fail allocated now */
    uint64_t changes_seen; /* domain mapping changes already applied */
    struct xcc_map_cache_stats st;
};

static size_t fail_size(const xcc_map_cache *mc)
{
    return sizeof(struct chunk_fail) +
           XCC_DIV_ROUND_UP(mc->chunk_pfns, 64) * sizeof(uint64_t);
}

/* Pages in chunk ci: chunk_pfns, fewer for the last one. */
static uint32_t chunk_len(const xcc_map_cache *mc, uint32_t ci)
{
    uint64_t first = (uint64_t)ci << mc->chunk_shift;
    uint64_t left = mc->nr_pfns - first;

    return left < mc->chunk_pfns ? (uint32_t)left : mc->chunk_pfns;
}

static uint64_t read_max_map_count(xentoollog_logger *log)
{
    FILE *f = fopen(MAX_MAP_COUNT_PATH, "r");
    unsigned long long v = 0;

    if (!f || fscanf(f, "%llu", &v) != 1 || v == 0) {
        XCC_WARN(log, CTX, "cannot read %s; assuming %u", MAX_MAP_COUNT_PATH,
                 MAX_MAP_COUNT_FALLBACK);
        v = MAX_MAP_COUNT_FALLBACK;
    }
    if (f)
        fclose(f);
    return v;
}

static inline bool chunk_page_failed(const struct chunk *c, uint64_t off)
{
    return c->fail->bits[off / 64] >> (off % 64) & 1;
}

/* ---- LRU list ---------------------------------------------------------- */

static void lru_unlink(xcc_map_cache *mc, uint32_t ci)
{
    struct chunk *c = &mc->chunks[ci];

    if (c->prev != LRU_NONE)
        mc->chunks[c->prev].next = c->next;
    else
        mc->lru_head = c->next;
    if (c->next != LRU_NONE)
        mc->chunks[c->next].prev = c->prev;
    else
        mc->lru_tail = c->prev;
    c->prev = c->next = LRU_NONE;
}

static void lru_push_head(xcc_map_cache *mc, uint32_t ci)
{
    struct chunk *c = &mc->chunks[ci];

    c->prev = LRU_NONE;
    c->next = mc->lru_head;
    if (mc->lru_head != LRU_NONE)
        mc->chunks[mc->lru_head].prev = ci;
    else
        mc->lru_tail = ci;
    mc->lru_head = ci;
}

/* ---- mapping and unmapping --------------------------------------------- */

static void chunk_unmap(xcc_map_cache *mc, uint32_t ci)
{
    struct chunk *c = &mc->chunks[ci];
    uint32_t len = chunk_len(mc, ci);

    if (mc->d->ops->unmap(mc->d, c->base, len) < 0)
        XCC_PERR(mc->log, CTX, "unmapping pfns %#" PRIx64 "+%" PRIu32,
                 (uint64_t)ci << mc->chunk_shift, len);
    mc->st.unmap_calls++;
    c->base = NULL;
    if (c->fail) {
        free(c->fail);
        c->fail = NULL;
        mc->fail_allocs--;
    }
    lru_unlink(mc, ci);
    mc->st.resident_chunks--;
    mc->st.resident_bytes -= (uint64_t)len * mc->page_size;
}

/* Unmaps the least recently used chunk unless the current batch uses it.
 * Returns false when there is nothing left to evict. */
static bool evict_one(xcc_map_cache *mc)
{
    uint32_t ci = mc->lru_tail;

    if (ci == LRU_NONE || mc->chunks[ci].stamp == mc->gen)
        return false;
    chunk_unmap(mc, ci);
    mc->st.evictions++;
    return true;
}

/*
 * One backend map call. On ENOMEM (out of mappings, or of memory for page
 * tables) it unmaps at least half the resident chunks (all those the batch
 * does not use, if fewer) and tries once more.
 */
static void *backend_map(xcc_map_cache *mc, const uint64_t *pfns, int *err,
                         size_t n)
{
    void *addr;
    uint64_t evicted = 0, target;

    mc->st.map_calls++;
    addr = mc->d->ops->map(mc->d, mc->writable, pfns, err, n);
    if (addr)
        return addr;
    mc->st.map_errors++;
    if (errno != ENOMEM) {
        XCC_PERR(mc->log, CTX, "cannot map %zu pages from pfn %#" PRIx64, n,
                 pfns[0]);
        return NULL;
    }

    target = (mc->st.resident_chunks + 1) / 2;
    while (evicted < target && evict_one(mc))
        evicted++;
    XCC_WARN(mc->log, CTX,
             "out of mappings mapping %zu pages from pfn %#" PRIx64
             ": unmapped %" PRIu64 " chunks, retrying once",
             n, pfns[0], evicted);
    mc->st.enomem_retries++;
    mc->st.map_calls++;
    addr = mc->d->ops->map(mc->d, mc->writable, pfns, err, n);
    if (addr)
        return addr;
    mc->st.map_errors++;
    XCC_PERR(mc->log, CTX,
             "cannot map %zu pages from pfn %#" PRIx64 " even after "
             "unmapping %" PRIu64 " chunks (%" PRIu64 " still mapped)",
             n, pfns[0], evicted, mc->st.resident_chunks);
    return NULL;
}

/* Maps chunk ci (not resident), making room first. Returns 0 or -1. */
static int chunk_map(xcc_map_cache *mc, uint32_t ci)
{
    struct chunk *c = &mc->chunks[ci];
    uint32_t len = chunk_len(mc, ci);
    uint64_t bytes = (uint64_t)len * mc->page_size;
    uint64_t first = (uint64_t)ci << mc->chunk_shift;
    uint32_t nfailed = 0;
    uint8_t *addr;

    while (mc->st.resident_chunks >= mc->max_mappings ||
           mc->st.resident_bytes + bytes > mc->max_bytes) {
        if (!evict_one(mc)) {
            /* Cannot happen: a batch uses at most `capacity` chunks. */
            XCC_ERR(mc->log, CTX, "mapping budget exhausted by one batch");
            errno = ENOSPC;
            return -1;
        }
    }

    for (uint32_t j = 0; j < len; j++)
        mc->scratch_pfns[j] = first + j;
    addr = backend_map(mc, mc->scratch_pfns, mc->scratch_err, len);
    if (!addr)
        return -1;

    for (uint32_t j = 0; j < len; j++)
        nfailed += mc->scratch_err[j] != 0;
    if (nfailed) {
        if (!c->fail) {
            c->fail = malloc(fail_size(mc));
            if (!c->fail) {
                int saved = errno;
                mc->d->ops->unmap(mc->d, addr, len);
                mc->st.unmap_calls++;
                XCC_ERR(mc->log, CTX, "out of memory for an error bitmap");
                errno = saved;
                return -1;
            }
            mc->fail_allocs++;
        }
        memset(c->fail->bits, 0, fail_size(mc) - sizeof(*c->fail));
        c->fail->nfailed = nfailed;
        for (uint32_t j = 0; j < len; j++) {
            if (mc->scratch_err[j]) {
                c->fail->bits[j / 64] |= 1ull << (j % 64);
                c->fail->code =
                    mc->scratch_err[j] < 0 ? mc->scratch_err[j] : -EFAULT;
            }
        }
        mc->st.page_errors += nfailed;
    } else if (c->fail) {
        free(c->fail);
        c->fail = NULL;
        mc->fail_allocs--;
    }

    c->base = addr;
    c->flags |= CHUNK_MAPPED_NOW;
    lru_push_head(mc, ci);
    mc->st.chunks_mapped++;
    mc->st.pages_mapped += len;
    mc->st.resident_chunks++;
    mc->st.resident_bytes += bytes;
    if (mc->st.resident_chunks > mc->st.max_resident)
        mc->st.max_resident = mc->st.resident_chunks;
    return 0;
}

/* ---- the chunk table --------------------------------------------------- */

/* Sizes the table for nr_pfns (only ever grows). Returns 0 or -1. */
static int table_resize(xcc_map_cache *mc, uint64_t nr_pfns)
{
    uint64_t want = XCC_DIV_ROUND_UP(nr_pfns, mc->chunk_pfns);
    struct chunk *t;

    if (want >= LRU_NONE) {
        XCC_ERR(mc->log, CTX,
                "%" PRIu64 " pfns need more than 2^32-1 chunks of %" PRIu32
                " pfns",
                nr_pfns, mc->chunk_pfns);
        errno = EOVERFLOW;
        return -1;
    }
    /* The old last chunk may have been mapped short: map it again. */
    if (mc->nr_chunks && mc->chunks[mc->nr_chunks - 1].base &&
        chunk_len(mc, mc->nr_chunks - 1) < mc->chunk_pfns)
        chunk_unmap(mc, mc->nr_chunks - 1);
    if (want > mc->nr_chunks) {
        t = realloc(mc->chunks, want * sizeof(*t));
        if (!t)
            return -1;
        for (uint64_t i = mc->nr_chunks; i < want; i++)
            t[i] = (struct chunk){.prev = LRU_NONE, .next = LRU_NONE};
        mc->chunks = t;
        mc->nr_chunks = (uint32_t)want;
    }
    mc->nr_pfns = nr_pfns;
    return 0;
}

/* Asks the backend again for the number of pfns (it grows on restore). */
static void refresh_nr_pfns(xcc_map_cache *mc)
{
    struct xcc_domain_info info;

    if (mc->d->ops->info(mc->d, &info) < 0 || info.nr_pfns <= mc->nr_pfns)
        return;
    if (info.page_size != mc->page_size) {
        XCC_WARN(mc->log, CTX,
                 "page size changed from %" PRIu32 " to %" PRIu32
                 "; ignoring the new size",
                 mc->page_size, info.page_size);
        return;
    }
    if (table_resize(mc, info.nr_pfns) < 0)
        XCC_WARN(mc->log, CTX,
                 "cannot grow the chunk table to %" PRIu64 " pfns",
                 info.nr_pfns);
}

/* ---- mapping changes the backend reported ----------------------------- */

static void drop_changed(void *opaque, uint64_t first, uint64_t count,
                         enum domain_change_kind kind)
{
    xcc_map_cache *mc = opaque;

    if (kind == DOMAIN_CHANGE_WRITABLE && !mc->writable)
        return;
    xcc_map_cache_invalidate(mc, first, count);
}

/* Drops the chunks of every range reported since the last call. */
static void apply_changes(xcc_map_cache *mc)
{
    domain_mapping_changes(mc->d, &mc->changes_seen, drop_changed, mc);
}

/* ---- public ------------------------------------------------------------ */

void xcc_map_cache_params_init(struct xcc_map_cache_params *p)
{
    memset(p, 0, sizeof(*p));
    p->size = sizeof(*p);
}

xcc_map_cache *xcc_map_cache_new(xcc_domain *d,
                                 const struct xcc_map_cache_params *p)
{
    static const struct xcc_map_cache_params defaults = {
        .size = sizeof(struct xcc_map_cache_params)};
    xentoollog_logger *log = d ? d->log : lib_default_logger();
    struct xcc_domain_info info;
    xcc_map_cache *mc;
    uint64_t chunk_bytes;

    if (!p)
        p = &defaults;
    if (!d) {
        XCC_ERR(log, CTX, "no domain");
        errno = EINVAL;
        return NULL;
    }
    if (!LIB_PARAMS_SIZE_OK(log, CTX, xcc_map_cache_params, p))
        return NULL;
    if (d->ops->info(d, &info) < 0) {
        XCC_PERR(log, CTX, "cannot read the domain's size");
        return NULL;
    }
    if (info.page_size == 0 || (info.page_size & (info.page_size - 1))) {
        XCC_ERR(log, CTX, "bad page size %" PRIu32 " from the backend",
                info.page_size);
        errno = EINVAL;
        return NULL;
    }
    if (p->chunk_pfns && ((p->chunk_pfns & (p->chunk_pfns - 1)) ||
                          p->chunk_pfns > MAX_CHUNK_PFNS)) {
        XCC_ERR(log, CTX,
                "chunk_pfns %" PRIu32 ": must be a power of two up to %u",
                p->chunk_pfns, MAX_CHUNK_PFNS);
        errno = EINVAL;
        return NULL;
    }
    if (p->max_bytes && p->max_bytes < info.page_size) {
        XCC_ERR(log, CTX,
                "byte budget %" PRIu64 " is smaller than one page (%" PRIu32
                ")",
                p->max_bytes, info.page_size);
        errno = EINVAL;
        return NULL;
    }

    mc = calloc(1, sizeof(*mc));
    if (!mc)
        return NULL;
    mc->d = d;
    mc->log = log;
    mc->writable = p->writable != 0;
    mc->per_batch = p->per_batch != 0;
    mc->st.per_batch = mc->per_batch;
    mc->page_size = info.page_size;
    mc->chunk_pfns = p->chunk_pfns ? p->chunk_pfns : DEFAULT_CHUNK_PFNS;
    mc->max_bytes = p->max_bytes ? p->max_bytes : UINT64_MAX;
    /* A byte budget below one chunk shrinks the chunks to fit in it. */
    while ((uint64_t)mc->chunk_pfns * mc->page_size > mc->max_bytes)
        mc->chunk_pfns /= 2;
    mc->chunk_shift = (uint32_t)__builtin_ctz(mc->chunk_pfns);
    mc->st.chunk_pfns = mc->chunk_pfns;
    chunk_bytes = (uint64_t)mc->chunk_pfns * mc->page_size;

    mc->max_mappings = p->max_mappings
                           ? p->max_mappings
                           : read_max_map_count(log) / MAX_MAP_COUNT_SHARE;
    if (mc->max_mappings == 0)
        mc->max_mappings = 1;
    mc->capacity = mc->max_mappings;
    if (mc->max_bytes / chunk_bytes < mc->capacity)
        mc->capacity = mc->max_bytes / chunk_bytes;
    mc->st.max_mappings = mc->capacity;
    mc->lru_head = mc->lru_tail = LRU_NONE;

    if (!mc->per_batch) {
        mc->scratch_pfns = malloc(mc->chunk_pfns * sizeof(*mc->scratch_pfns));
        mc->scratch_err = malloc(mc->chunk_pfns * sizeof(*mc->scratch_err));
        if (!mc->scratch_pfns || !mc->scratch_err ||
            table_resize(mc, info.nr_pfns) < 0) {
            int saved = errno;
            xcc_map_cache_free(mc);
            errno = saved;
            return NULL;
        }
    }
    mc->nr_pfns = info.nr_pfns;
    /* Mappings made from now on see every earlier change. */
    mc->changes_seen = d->changes_seq;
    return mc;
}

void xcc_map_cache_free(xcc_map_cache *mc)
{
    if (!mc)
        return;
    xcc_map_cache_release(mc);
    while (mc->lru_head != LRU_NONE)
        chunk_unmap(mc, mc->lru_head);
    free(mc->chunks);
    free(mc->touched);
    free(mc->scratch_pfns);
    free(mc->scratch_err);
    free(mc);
}

/* Per-batch mode: one map call for the whole batch, as stock Xen. */
static int64_t lookup_per_batch(xcc_map_cache *mc, const uint64_t *pfns,
                                size_t n, uint8_t **pages, int *err)
{
    uint8_t *addr;

    xcc_map_cache_release(mc);
    addr = backend_map(mc, pfns, err, n);
    if (!addr)
        return -1;
    mc->batch_addr = addr;
    mc->batch_n = n;
    mc->st.pages_mapped += n;
    mc->st.misses += n;
    mc->st.resident_chunks = 1;
    mc->st.resident_bytes = (uint64_t)n * mc->page_size;
    if (mc->st.max_resident < 1)
        mc->st.max_resident = 1;
    for (size_t i = 0; i < n; i++) {
        if (err[i]) {
            pages[i] = NULL;
            if (err[i] > 0)
                err[i] = -EFAULT;
            mc->st.page_errors++;
        } else {
            pages[i] = addr + i * mc->page_size;
        }
    }
    return (int64_t)n;
}

int64_t xcc_map_cache_lookup(xcc_map_cache *mc, const uint64_t *pfns, size_t n,
                             uint8_t **pages, int *err)
{
    const uint64_t mask = mc->chunk_pfns - 1;
    size_t ntouched, k;
    bool refreshed = false;
    unsigned retries = 0;

    if (n == 0)
        return 0;
    if (!pfns || !pages || !err) {
        XCC_ERR(mc->log, CTX, "lookup: NULL array");
        errno = EINVAL;
        return -1;
    }
    if (mc->per_batch)
        return lookup_per_batch(mc, pfns, n, pages, err);

again:
    apply_changes(mc);
    mc->gen++;
    ntouched = 0;

    /*
     * Pass 1: pin the chunks this batch uses (stamp = gen), at most
     * `capacity` of them, and note resident chunks whose failed pages are
     * wanted again. Resident chunks move to the LRU head now, so that the
     * tail holds only chunks this batch does not use.
     */
    for (k = 0; k < n; k++) {
        uint64_t pfn = pfns[k];
        struct chunk *c;
        uint32_t ci;

        if (pfn >= mc->nr_pfns) {
            if (refreshed)
                continue;
            refreshed = true;
            refresh_nr_pfns(mc);
            if (pfn >= mc->nr_pfns)
                continue;
        }
        ci = (uint32_t)(pfn >> mc->chunk_shift);
        c = &mc->chunks[ci];
        if (c->stamp != mc->gen) {
            if (ntouched == mc->capacity)
                break;
            if (ntouched == mc->touched_cap) {
                uint32_t cap = mc->touched_cap ? mc->touched_cap * 2 : 64;
                uint32_t *t = realloc(mc->touched, cap * sizeof(*t));
                if (!t) {
                    XCC_ERR(mc->log, CTX, "out of memory for a batch");
                    errno = ENOMEM;
                    return -1;
                }
                mc->touched = t;
                mc->touched_cap = cap;
            }
            mc->touched[ntouched++] = ci;
            c->stamp = mc->gen;
            c->flags = 0;
            if (c->base) {
                lru_unlink(mc, ci);
                lru_push_head(mc, ci);
            }
        }
        if (c->fail && chunk_page_failed(c, pfn & mask))
            c->flags |= CHUNK_RETRY;
    }

    /* Pass 2: map what is missing, and map again chunks with pages to
     * retry (a page ballooned back in, a hole filled). */
    for (size_t t = 0; t < ntouched; t++) {
        uint32_t ci = mc->touched[t];
        struct chunk *c = &mc->chunks[ci];

        if (c->base && (c->flags & CHUNK_RETRY)) {
            chunk_unmap(mc, ci);
            mc->st.remaps++;
        }
        if (!c->base && chunk_map(mc, ci) < 0)
            return -1;
    }
    /* A map call made the backend notice a change (a PV p2m re-read): the
     * chunks resolved so far may show the old frames. */
    if (mc->d->changes_seq != mc->changes_seen &&
        retries++ < MAX_CHANGE_RETRIES)
        goto again;

    /* Pass 3: hand out the pointers. */
    for (size_t i = 0; i < k; i++) {
        uint64_t pfn = pfns[i];
        const struct chunk *c;
        uint64_t off;

        if (pfn >= mc->nr_pfns) {
            pages[i] = NULL;
            err[i] = -EINVAL;
            continue;
        }
        c = &mc->chunks[pfn >> mc->chunk_shift];
        off = pfn & mask;
        if (c->flags & CHUNK_MAPPED_NOW)
            mc->st.misses++;
        else
            mc->st.hits++;
        if (c->fail && chunk_page_failed(c, off)) {
            pages[i] = NULL;
            err[i] = c->fail->code;
        } else {
            pages[i] = c->base + off * mc->page_size;
            err[i] = 0;
        }
    }
    return (int64_t)k;
}

void xcc_map_cache_release(xcc_map_cache *mc)
{
    if (!mc || !mc->batch_addr)
        return;
    if (mc->d->ops->unmap(mc->d, mc->batch_addr, mc->batch_n) < 0)
        XCC_PERR(mc->log, CTX, "unmapping a batch of %zu pages", mc->batch_n);
    mc->st.unmap_calls++;
    mc->batch_addr = NULL;
    mc->batch_n = 0;
    mc->st.resident_chunks = 0;
    mc->st.resident_bytes = 0;
}

void xcc_map_cache_invalidate(xcc_map_cache *mc, uint64_t first_pfn,
                              uint64_t count)
{
    uint64_t last, ci;

    if (!mc || mc->per_batch || count == 0 || first_pfn >= mc->nr_pfns)
        return;
    last = count > mc->nr_pfns - first_pfn ? mc->nr_pfns - 1
                                           : first_pfn + count - 1;
    for (ci = first_pfn >> mc->chunk_shift; ci <= last >> mc->chunk_shift;
         ci++) {
        struct chunk *c = &mc->chunks[ci];

        if (c->base) {
            chunk_unmap(mc, (uint32_t)ci);
            mc->st.invalidations++;
        }
        /* Its pointers are gone: it must not count as mapped by a batch. */
        c->stamp = 0;
        c->flags = 0;
    }
}

void xcc_map_cache_get_stats(const xcc_map_cache *mc,
                             struct xcc_map_cache_stats *st)
{
    *st = mc->st;
    st->table_bytes = (uint64_t)mc->nr_chunks * sizeof(struct chunk) +
                      mc->fail_allocs * fail_size(mc);
}
