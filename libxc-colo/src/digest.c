/*
 * digest.c - chunk and whole-memory digests (the definition is in digest.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "digest.h"
#include "domain/domain.h"

#define CTX "digest"

static void digest_store(uint8_t out[DIGEST_BYTES], XXH128_hash_t h)
{
    XXH128_canonical_t c;

    XXH128_canonicalFromHash(&c, h);
    memcpy(out, c.digest, DIGEST_BYTES);
}

uint64_t digest_nchunks(uint64_t nr_pfns, uint32_t page_size)
{
    const uint64_t per = XCC_DIGEST_CHUNK / page_size;

    return XCC_DIV_ROUND_UP(nr_pfns, per);
}

int digest_chunks(xcc_domain *d, xcc_map_cache *mc, unsigned flags,
                  uint64_t *stale, uint8_t *chunks)
{
    const uint64_t nr = d->info.nr_pfns;
    const size_t psz = d->info.page_size;
    const size_t per_chunk = XCC_DIGEST_CHUNK / psz;
    const uint64_t nchunks = digest_nchunks(nr, (uint32_t)psz);
    XXH3_state_t *st = XXH3_createState();
    uint64_t *pfns = calloc(per_chunk, sizeof(*pfns));
    uint8_t *types = calloc(per_chunk, 1);
    uint8_t **pages = calloc(per_chunk, sizeof(*pages));
    int *err = calloc(per_chunk, sizeof(*err));
    uint8_t *zero = calloc(1, psz);
    /* The listed pfns, when the flag asks for them (the walk's position). */
    const uint64_t *listed =
        (flags & XCC_DIGEST_EXCLUDE_LISTED) && d->ndigest_excluded
            ? d->digest_excluded : NULL;
    const uint64_t *listed_end =
        listed ? d->digest_excluded + d->ndigest_excluded : NULL;
    int ret = -1;

    if (!st || !pfns || !types || !pages || !err || !zero) {
        XCC_ERR(d->log, CTX, "out of memory for a %zu-page chunk", per_chunk);
        errno = ENOMEM;
        goto out;
    }
    for (uint64_t c = 0; c < nchunks; c++) {
        const uint64_t base = c * per_chunk;
        const size_t n = nr - base < per_chunk ? (size_t)(nr - base) : per_chunk;
        size_t done = 0, with_data = 0;
        uint64_t next;

        if (stale) {
            if (!stale[c / 64]) {
                c |= 63; /* skip a clean word of 64 chunks */
                continue;
            }
            if (!(stale[c / 64] & (1ull << (c % 64))))
                continue;
        }
        for (size_t i = 0; i < n; i++)
            pfns[i] = base + i;
        if (listed) {
            /* The first listed pfn at or after this chunk. */
            size_t lo = 0, hi = d->ndigest_excluded;

            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (d->digest_excluded[mid] < base)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            listed = d->digest_excluded + lo;
        }
        if (d->ops->pfn_types(d, pfns, types, n) < 0) {
            XCC_PERR(d->log, CTX, "pfn types of chunk %" PRIu64, c);
            goto out;
        }
        /* Only pages with data are looked up (a hole's chunk would be
         * mapped again at every lookup); the rest hash as zero pages. */
        for (size_t i = 0; i < n; i++) {
            bool pt = xcc_pfn_type_is_pagetable(types[i]);

            if (listed && listed < listed_end && *listed == base + i) {
                listed++;
                continue;
            }
            if (xcc_pfn_type_has_data(types[i]) &&
                !(pt && (flags & XCC_DIGEST_EXCLUDE_PAGETABLES)))
                pfns[with_data++] = base + i;
        }
        XXH3_128bits_reset(st);
        next = base;
        while (done < with_data) {
            int64_t k = xcc_map_cache_lookup(mc, pfns + done, with_data - done,
                                             pages + done, err + done);
            if (k <= 0) {
                XCC_PERR(d->log, CTX, "cannot map pfns %#" PRIx64 "..",
                         pfns[done]);
                goto out;
            }
            for (size_t j = done; j < done + (size_t)k; j++) {
                for (; next < pfns[j]; next++)
                    XXH3_128bits_update(st, zero, psz);
                XXH3_128bits_update(st, err[j] || !pages[j] ? zero : pages[j],
                                    psz);
                next++;
            }
            done += (size_t)k;
        }
        for (; next < base + n; next++)
            XXH3_128bits_update(st, zero, psz);
        xcc_map_cache_release(mc);
        digest_store(chunks + DIGEST_BYTES * c, XXH3_128bits_digest(st));
        if (stale)
            stale[c / 64] &= ~(1ull << (c % 64));
    }
    ret = 0;
out:
    XXH3_freeState(st);
    free(pfns);
    free(types);
    free(pages);
    free(err);
    free(zero);
    return ret;
}

void digest_whole(const uint8_t *chunks, uint64_t nchunks,
                  uint8_t whole[DIGEST_BYTES])
{
    digest_store(whole, XXH3_128bits(chunks, (size_t)nchunks * DIGEST_BYTES));
}

int64_t xcc_domain_digest(xcc_domain *d, unsigned flags, uint8_t digest[16],
                          uint8_t *chunk_digests, size_t max_chunks)
{
    struct xcc_map_cache_params mp;
    xcc_map_cache *mc;
    uint64_t nchunks;
    uint8_t *all;
    int64_t ret = -1;

    if (!d || !digest || (flags & ~DIGEST_KNOWN_FLAGS)) {
        XCC_ERR(d ? d->log : lib_default_logger(), CTX,
                "%s", !d || !digest ? "no domain or no digest buffer"
                                    : "unknown XCC_DIGEST_* flags");
        errno = EINVAL;
        return -1;
    }
    nchunks = digest_nchunks(d->info.nr_pfns, d->info.page_size);
    all = malloc(nchunks ? nchunks * DIGEST_BYTES : 1);
    if (!all)
        return -1;
    /* One map call per chunk, unmapped after it, as stock Xen maps. */
    xcc_map_cache_params_init(&mp);
    mp.per_batch = 1;
    mc = xcc_map_cache_new(d, &mp);
    if (mc && digest_chunks(d, mc, flags, NULL, all) == 0) {
        digest_whole(all, nchunks, digest);
        if (chunk_digests)
            memcpy(chunk_digests, all,
                   (nchunks < max_chunks ? nchunks : max_chunks) *
                       DIGEST_BYTES);
        ret = (int64_t)nchunks;
    }
    {
        int saved = errno;
        xcc_map_cache_free(mc);
        free(all);
        errno = saved;
    }
    return ret;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

int xcc_domain_digest_exclude(xcc_domain *d, const uint64_t *pfns, size_t n)
{
    uint64_t *v = NULL;
    size_t k = 0;

    if (!d || (n && !pfns)) {
        errno = EINVAL;
        return -1;
    }
    if (n) {
        if (!(v = malloc(n * sizeof(*v))))
            return -1;
        memcpy(v, pfns, n * sizeof(*v));
        qsort(v, n, sizeof(*v), cmp_u64);
        for (size_t i = 0; i < n; i++) {
            if (v[i] >= d->info.nr_pfns) {
                XCC_ERR(d->log, CTX, "pfn %#" PRIx64 " to leave out of the "
                        "digest is beyond the guest (%" PRIu64 " pages)",
                        v[i], d->info.nr_pfns);
                free(v);
                errno = EINVAL;
                return -1;
            }
            if (!k || v[k - 1] != v[i])
                v[k++] = v[i];
        }
    }
    free(d->digest_excluded);
    d->digest_excluded = v;
    d->ndigest_excluded = k;
    return 0;
}
