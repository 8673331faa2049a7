/*
 * domain.c - opening domains by name, and the operations every backend
 * shares (digest).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "domain.h"

/* Pages per map call while digesting: one digest chunk of 4 KiB pages. */
#define DIGEST_BATCH_MAX 4096u

xcc_domain *xcc_domain_open(const char *name, xentoollog_logger *log,
                            unsigned flags)
{
    xcc_domain *d;
    int rc;

    if (!log)
        log = lib_default_logger();
    if (!name || !*name) {
        XCC_ERR(log, "domain", "empty domain name");
        errno = XCC_EBADDOMAIN;
        return NULL;
    }
    d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->log = log;
    d->name = strdup(name);
    if (!d->name) {
        free(d);
        return NULL;
    }

    if (!strncmp(name, "sim:", 4)) {
        rc = sim_domain_open(d, name + 4, flags);
    } else if (!strncmp(name, "xen:", 4)) {
        rc = xen_domain_open(d, name + 4, flags);
    } else if (isdigit((unsigned char)name[0])) {
        rc = xen_domain_open(d, name, flags);
    } else {
        XCC_ERR(log, "domain",
                "unknown domain '%s': expected sim:NAME, xen:ID or a domid",
                name);
        errno = XCC_EBADDOMAIN;
        rc = -1;
    }
    if (rc == 0 && d->ops->info(d, &d->info) < 0) {
        int saved = errno;
        d->ops->close(d);
        errno = saved;
        rc = -1;
    }
    if (rc < 0) {
        int saved = errno;
        free(d->name);
        free(d);
        errno = saved;
        return NULL;
    }
    return d;
}

void xcc_domain_close(xcc_domain *d)
{
    if (!d)
        return;
    d->ops->close(d);
    free(d->name);
    free(d);
}

int xcc_domain_get_info(xcc_domain *d, uint64_t *nr_pfns, uint32_t *page_size)
{
    if (d->ops->info(d, &d->info) < 0)
        return -1;
    if (nr_pfns)
        *nr_pfns = d->info.nr_pfns;
    if (page_size)
        *page_size = d->info.page_size;
    return 0;
}

int xcc_domain_pause(xcc_domain *d)
{
    return d->ops->pause(d);
}

int xcc_domain_unpause(xcc_domain *d)
{
    return d->ops->unpause(d);
}

static void digest_store(uint8_t out[16], XXH128_hash_t h)
{
    XXH128_canonical_t c;

    XXH128_canonicalFromHash(&c, h);
    memcpy(out, c.digest, 16);
}

int64_t xcc_domain_digest(xcc_domain *d, unsigned flags, uint8_t digest[16],
                          uint8_t *chunk_digests, size_t max_chunks)
{
    const uint64_t nr = d->info.nr_pfns;
    const size_t psz = d->info.page_size;
    const size_t per_chunk = XCC_DIGEST_CHUNK / psz ? XCC_DIGEST_CHUNK / psz : 1;
    size_t batch = per_chunk < DIGEST_BATCH_MAX ? per_chunk : DIGEST_BATCH_MAX;
    XXH3_state_t *all = XXH3_createState(), *chunk = XXH3_createState();
    uint64_t *pfns = calloc(batch, sizeof(*pfns));
    uint8_t *types = calloc(batch, 1);
    int *err = calloc(batch, sizeof(*err));
    uint8_t *zero = calloc(1, psz);
    int64_t nchunks = 0, ret = -1;

    if (!all || !chunk || !pfns || !types || !err || !zero)
        goto out;
    XXH3_128bits_reset(all);
    XXH3_128bits_reset(chunk);

    for (uint64_t base = 0; base < nr; base += batch) {
        size_t n = nr - base < batch ? (size_t)(nr - base) : batch;
        uint8_t *map;

        for (size_t i = 0; i < n; i++)
            pfns[i] = base + i;
        if (d->ops->pfn_types(d, pfns, types, n) < 0)
            goto out;
        map = d->ops->map(d, false, pfns, err, n);
        if (!map) {
            XCC_PERR(d->log, "digest", "cannot map pfns %#" PRIx64 "+%zu",
                     base, n);
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            const uint8_t *page = map + i * psz;
            bool pt = types[i] >= XCC_PFN_L1TAB && types[i] <= XCC_PFN_L4TAB;

            if (err[i] || !xcc_pfn_type_has_data(types[i]) ||
                (pt && (flags & XCC_DIGEST_EXCLUDE_PAGETABLES)))
                page = zero;
            XXH3_128bits_update(all, page, psz);
            XXH3_128bits_update(chunk, page, psz);
            if ((base + i + 1) % per_chunk == 0 || base + i + 1 == nr) {
                if (chunk_digests && (size_t)nchunks < max_chunks)
                    digest_store(chunk_digests + 16 * nchunks,
                                 XXH3_128bits_digest(chunk));
                nchunks++;
                XXH3_128bits_reset(chunk);
            }
        }
        d->ops->unmap(d, map, n);
    }
    digest_store(digest, XXH3_128bits_digest(all));
    ret = nchunks;
out:
    XXH3_freeState(all);
    XXH3_freeState(chunk);
    free(pfns);
    free(types);
    free(err);
    free(zero);
    return ret;
}
