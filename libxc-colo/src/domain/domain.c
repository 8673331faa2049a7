/*
 * domain.c - opening domains by name, and the operations every backend
 * shares (the digest is in digest.c).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <sys/mman.h>

#include "domain.h"

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
    free(d->digest_excluded);
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

void domain_mapping_changed(xcc_domain *d, uint64_t first, uint64_t count,
                            enum domain_change_kind kind)
{
    if (count == 0)
        return;
    d->changes[d->changes_seq % DOMAIN_CHANGES_KEPT] =
        (struct domain_change){.first = first, .count = count, .kind = kind};
    d->changes_seq++;
    XCC_DBG(d->log, "domain", "%s: mapping of pfns %#" PRIx64 "+%" PRIu64
            " changed (%s)", d->name, first, count,
            kind == DOMAIN_CHANGE_FRAME ? "frame" : "writability");
}

unsigned domain_mapping_changes(const xcc_domain *d, uint64_t *seen,
                                domain_change_fn *fn, void *opaque)
{
    unsigned calls = 0;

    if (*seen >= d->changes_seq)
        return 0;
    if (d->changes_seq - *seen > DOMAIN_CHANGES_KEPT) {
        fn(opaque, 0, UINT64_MAX, DOMAIN_CHANGE_FRAME);
        calls = 1;
    } else {
        for (uint64_t s = *seen; s < d->changes_seq; s++) {
            const struct domain_change *c =
                &d->changes[s % DOMAIN_CHANGES_KEPT];
            fn(opaque, c->first, c->count, c->kind);
            calls++;
        }
    }
    *seen = d->changes_seq;
    return calls;
}

void *domain_map_fd_pages(int fd, size_t psz, int prot, const uint64_t *pfns,
                          const int *err, size_t n)
{
    bool one_run = true;
    uint8_t *base;

    for (size_t i = 0; i < n && one_run; i++)
        if (err[i] || pfns[i] != pfns[0] + i)
            one_run = false;
    if (one_run) {
        base = mmap(NULL, n * psz, prot, MAP_SHARED, fd, (off_t)(pfns[0] * psz));
        return base == MAP_FAILED ? NULL : base;
    }
    /* reserve the region, then map each run of consecutive pfns into it;
     * failed slots stay PROT_NONE */
    base = mmap(NULL, n * psz, PROT_NONE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;

        if (err[i]) {
            i++;
            continue;
        }
        while (j < n && !err[j] && pfns[j] == pfns[i] + (j - i))
            j++;
        if (mmap(base + i * psz, (j - i) * psz, prot, MAP_SHARED | MAP_FIXED,
                 fd, (off_t)(pfns[i] * psz)) == MAP_FAILED) {
            int e = errno;
            munmap(base, n * psz);
            errno = e;
            return NULL;
        }
        i = j;
    }
    return base;
}
