/*
 * xen_softdirty.c - dirty tracking by page digests, for PV guests on a Xen
 * that has no log-dirty mode for them.
 *
 * Xen tracks a PV guest's writes with shadow paging. A hypervisor built
 * without it (Debian's Xen 4.17: CONFIG_SHADOW_PAGING is off) answers
 * ENABLE_LOGDIRTY with EOPNOTSUPP, and stock Xen cannot live-migrate PV
 * guests there at all. This fallback keeps a 64-bit XXH64 digest of every
 * page, taken through one persistent read-only mapping of the guest, and a
 * clean reports the pages whose digest changed since the previous clean.
 *
 * Sampling cannot see a write that is undone before the next scan, so the
 * digest a clean compares against is not the previous scan's but the
 * digest of the bytes actually sent: the saver sends from a copy and hands
 * that copy to xen_softdirty_sent(). A copy that caught a transient state
 * (a lock held, a counter mid-update) then differs from the guest at the
 * next scan, whatever the guest did in between, and is sent again. A page
 * never sent keeps its scan digest. On top of that, every page a live clean
 * reported is reported again by the next final clean, whose copy, taken
 * while the guest is paused, is exact.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <xxhash.h>

#include "xen_priv.h"

#define PAGE_BYTES 4096u
/* Pages per mapping call: one VMA each, few enough calls for any guest. */
#define SOFT_MAP_CHUNK 16384u

static void soft_unmap(struct xen_dom *x)
{
    for (size_t c = 0; c < x->soft_nchunks; c++)
        if (x->soft_chunk[c]) {
            size_t n = x->soft_nr - c * SOFT_MAP_CHUNK;
            xenforeignmemory_unmap(x->fmem, x->soft_chunk[c],
                                   n < SOFT_MAP_CHUNK ? n : SOFT_MAP_CHUNK);
        }
    free(x->soft_chunk);
    free(x->soft_err);
    x->soft_chunk = NULL;
    x->soft_err = NULL;
    x->soft_nchunks = 0;
}

/* Maps the whole guest read-only; unmappable pages have soft_err set. */
static int soft_map(struct xen_dom *x)
{
    const uint64_t nr = x->nr_pfns;
    uint64_t *frames = malloc(SOFT_MAP_CHUNK * sizeof(*frames));

    x->soft_nr = nr;
    x->soft_nchunks = XCC_DIV_ROUND_UP(nr, SOFT_MAP_CHUNK);
    x->soft_chunk = calloc(x->soft_nchunks ? x->soft_nchunks : 1,
                           sizeof(*x->soft_chunk));
    x->soft_err = calloc(nr ? nr : 1, sizeof(*x->soft_err));
    if (!frames || !x->soft_chunk || !x->soft_err) {
        free(frames);
        soft_unmap(x);
        errno = ENOMEM;
        return -1;
    }
    for (size_t c = 0; c < x->soft_nchunks; c++) {
        uint64_t base = c * SOFT_MAP_CHUNK;
        size_t n = nr - base < SOFT_MAP_CHUNK ? nr - base : SOFT_MAP_CHUNK;

        pthread_mutex_lock(&x->p2m_lock);
        for (size_t i = 0; i < n; i++)
            frames[i] = xen_p2m_lookup(x, base + i);
        pthread_mutex_unlock(&x->p2m_lock);
        x->soft_chunk[c] = xenforeignmemory_map(
            x->fmem, x->domid, PROT_READ, n, (const xen_pfn_t *)frames,
            x->soft_err + base);
        if (!x->soft_chunk[c]) {
            XCC_PERR(x->log, "xen", "dom%u: cannot map pfns %#" PRIx64
                     "+%zu for dirty tracking", x->domid, base, n);
            free(frames);
            soft_unmap(x);
            return -1;
        }
        for (size_t i = 0; i < n; i++)
            if (frames[i] == XEN_P2M_INVALID)
                x->soft_err[base + i] = -ENOENT;
    }
    free(frames);
    x->soft_map_generation = x->p2m_refreshes;
    return 0;
}

static uint64_t page_digest(const struct xen_dom *x, uint64_t pfn)
{
    const uint8_t *chunk = x->soft_chunk[pfn / SOFT_MAP_CHUNK];

    if (x->soft_err[pfn])
        return 0;
    /*
     * XXH64, not XXH3: it is scalar, and under an emulated CPU (the QEMU
     * harness) SIMD code is several times slower than scalar code.
     */
    return XXH64(chunk + (pfn % SOFT_MAP_CHUNK) * PAGE_BYTES, PAGE_BYTES, 0);
}

int xen_softdirty_enable(struct xen_dom *x)
{
    const uint64_t words = XCC_DIV_ROUND_UP(x->nr_pfns, 64);

    xen_softdirty_disable(x);
    x->soft_digest = malloc((x->nr_pfns ? x->nr_pfns : 1) * sizeof(uint64_t));
    x->soft_live = calloc(words ? words : 1, sizeof(uint64_t));
    if (!x->soft_digest || !x->soft_live) {
        xen_softdirty_disable(x);
        errno = ENOMEM;
        return -1;
    }
    if (soft_map(x) < 0) {
        xen_softdirty_disable(x);
        return -1;
    }
    for (uint64_t p = 0; p < x->nr_pfns; p++)
        x->soft_digest[p] = page_digest(x, p);
    x->soft_on = true;
    return 0;
}

int64_t xen_softdirty_clean(struct xen_dom *x, uint64_t *bitmap, bool final)
{
    int64_t count = 0;

    if (x->soft_nr != x->nr_pfns) {
        /* populate grew the guest: start over at the new size. */
        if (xen_softdirty_enable(x) < 0)
            return -1;
        for (uint64_t p = 0; p < x->nr_pfns; p++)
            x->soft_digest[p] = ~x->soft_digest[p];
    } else if (x->soft_map_generation != x->p2m_refreshes) {
        /* The guest moved frames: map it afresh, then report everything. */
        soft_unmap(x);
        if (soft_map(x) < 0)
            return -1;
        for (uint64_t p = 0; p < x->nr_pfns; p++)
            x->soft_digest[p] = ~page_digest(x, p);
    }
    for (uint64_t p = 0; p < x->nr_pfns; p++) {
        const uint64_t bit = 1ull << (p % 64);
        /* soft_digest[p]: the bytes last sent, or the last scan's. */
        uint64_t h = page_digest(x, p);
        bool dirty = h != x->soft_digest[p];

        x->soft_digest[p] = h;
        if (final) {
            dirty |= (x->soft_live[p / 64] & bit) != 0;
        } else if (dirty) {
            x->soft_live[p / 64] |= bit;
        }
        if (dirty) {
            bitmap[p / 64] |= bit;
            count++;
        }
    }
    if (final)
        memset(x->soft_live, 0, XCC_DIV_ROUND_UP(x->nr_pfns, 64) * 8);
    return count;
}

void xen_softdirty_sent(struct xen_dom *x, uint64_t pfn, const void *page)
{
    /* An unmappable page keeps digest 0 and is reported by the scan. */
    if (!x->soft_on || pfn >= x->soft_nr || x->soft_err[pfn])
        return;
    x->soft_digest[pfn] = XXH64(page, PAGE_BYTES, 0);
}

void xen_softdirty_disable(struct xen_dom *x)
{
    soft_unmap(x);
    free(x->soft_digest);
    free(x->soft_live);
    x->soft_digest = NULL;
    x->soft_live = NULL;
    x->soft_on = false;
}
