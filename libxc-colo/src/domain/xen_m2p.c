/*
 * xen_m2p.c - mfn -> pfn through Xen's machine-to-phys table, and the
 * normalise op that turns a PV page table's mfns into pfns (xen_pt.c).
 *
 * The M2P is Xen's own table (one entry per machine frame, the pfn its
 * owner last gave it); no guest write changes it, but an entry of a frame
 * the domain gave back still names the old pfn, so every answer is checked
 * against the p2m: pfn maps back to mfn, or the frame is not (or no longer)
 * the domain's. libxenguest's xc_map_m2p maps the same table with the same
 * two calls used here (XENMEM_machphys_mfn_list, then a read-only mapping
 * of its 2 MiB extents from DOMID_XEN); it is done here so that the library
 * does not link libxenguest for it.
 *
 * Xen's own pages shared with a PV guest (shared_info, the grant-table
 * frames) are in no pfn of the guest: Xen writes their M2P entry invalid
 * (and its type query calls them XTAB, as "special" pages). A Linux guest
 * maps them and unmaps them itself when it suspends, so libxenguest, which
 * saves only suspended guests, treats such an entry as an error. A guest
 * that was only paused still maps them: in a paused pass of a guest that
 * is not suspended, an entry naming a frame whose M2P entry is no pfn of
 * the guest is dropped (written as 0, counted and logged per table); the
 * guest maps those pages again when it resumes. (A paused guest cannot map
 * a frame it gave back: its mapping holds a reference.) A frame whose M2P
 * entry names a pfn of the guest that the p2m maps elsewhere stays an
 * error there.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../xen_pt.h"
#include "xen_priv.h"

#define M2P_EXTENT_BYTES (2u << 20)
#define M2P_PAGES_PER_EXTENT (M2P_EXTENT_BYTES / 4096u)

/* Maps the M2P once. Caller holds p2m_lock. */
static int m2p_map(struct xen_dom *x)
{
    unsigned long max_mfn = 0, extents;
    xen_pfn_t *extent = NULL, *frames = NULL;
    size_t pages;
    int *err = NULL;
    void *p = NULL;
    int ret = -1, e;

    if (x->m2p)
        return 0;
    if (xc_maximum_ram_page(x->xch, &max_mfn) < 0) {
        XCC_PERR(x->log, "xen", "cannot read the highest machine frame");
        return -1;
    }
    extents = XCC_DIV_ROUND_UP((max_mfn + 1) * sizeof(xen_pfn_t),
                               M2P_EXTENT_BYTES);
    pages = (size_t)extents * M2P_PAGES_PER_EXTENT;
    extent = calloc(extents ? extents : 1, sizeof(*extent));
    frames = calloc(pages ? pages : 1, sizeof(*frames));
    err = calloc(pages ? pages : 1, sizeof(*err));
    if (!extent || !frames || !err)
        goto out;
    if (xc_machphys_mfn_list(x->xch, extents, extent) < 0) {
        XCC_PERR(x->log, "xen", "cannot list the M2P's %lu extents", extents);
        goto out;
    }
    for (size_t i = 0; i < pages; i++)
        frames[i] = extent[i / M2P_PAGES_PER_EXTENT] + i % M2P_PAGES_PER_EXTENT;
    p = xenforeignmemory_map(x->fmem, DOMID_XEN, PROT_READ, pages, frames,
                             err);
    if (!p) {
        XCC_PERR(x->log, "xen", "cannot map the M2P (%zu pages)", pages);
        goto out;
    }
    for (size_t i = 0; i < pages; i++) {
        if (err[i]) {
            e = -err[i];
            XCC_ERR(x->log, "xen", "cannot map page %zu of the M2P: %s", i,
                    strerror(e));
            xenforeignmemory_unmap(x->fmem, p, pages);
            errno = e;
            goto out;
        }
    }
    x->m2p = p;
    x->m2p_entries = (uint64_t)max_mfn + 1;
    x->m2p_pages = pages;
    ret = 0;
out:
    e = errno;
    free(extent);
    free(frames);
    free(err);
    errno = e;
    return ret;
}

void xen_m2p_unmap(struct xen_dom *x)
{
    if (x->m2p && x->m2p_pages)
        xenforeignmemory_unmap(x->fmem, (void *)x->m2p, x->m2p_pages);
    x->m2p = NULL;
    x->m2p_pages = 0;
    x->m2p_entries = 0;
}

/* The check, with p2m_lock held and the M2P mapped. */
static int lookup_locked(void *opaque, uint64_t mfn, uint64_t *pfn)
{
    const struct xen_dom *x = opaque;
    uint64_t p;

    if (mfn >= x->m2p_entries)
        return -1;
    p = x->m2p[mfn];
    if (p >= x->nr_pfns || x->p2m[p] != mfn)
        return -1;
    *pfn = p;
    return 0;
}

struct lookup_ctx {
    struct xen_dom *x;
    bool drop_shared; /* paused, not suspended: drop Xen's shared frames */
};

static int lookup_cb(void *opaque, uint64_t mfn, uint64_t *pfn)
{
    struct lookup_ctx *c = opaque;

    if (lookup_locked(c->x, mfn, pfn) == 0)
        return 0;
    if (!c->drop_shared || (mfn < c->x->m2p_entries &&
                            c->x->m2p[mfn] < c->x->nr_pfns))
        return -1;
    return 1; /* in no pfn of the guest: Xen's page, mapped by a paused guest */
}

/* True when the domain is shut down for a suspend (not merely paused). */
static bool suspended(struct xen_dom *x)
{
    xc_domaininfo_t di;

    if (!x->xch) /* a unit test's hand-built domain */
        return false;
    if (xc_domain_getinfolist(x->xch, x->domid, 1, &di) != 1 ||
        di.domain != x->domid || !(di.flags & XEN_DOMINF_shutdown))
        return false;
    return ((di.flags >> XEN_DOMINF_shutdownshift) &
            XEN_DOMINF_shutdownmask) == SHUTDOWN_suspend;
}

int xen_mfn_to_pfn(struct xen_dom *x, uint64_t mfn, uint64_t *pfn)
{
    int rc;

    pthread_mutex_lock(&x->p2m_lock);
    rc = m2p_map(x);
    if (rc == 0 && lookup_locked(x, mfn, pfn) < 0) {
        errno = ERANGE;
        rc = -1;
    }
    pthread_mutex_unlock(&x->p2m_lock);
    return rc;
}

int xen_normalise_page(struct xen_dom *x, uint64_t pfn, unsigned type,
                       void *page, bool final)
{
    const unsigned level = xcc_pfn_type_level(type);
    struct xen_pt_geom g = {.levels = xen_pt_levels_for_width(x->guest_width)};
    struct xen_pt_fault f = {0};
    int rc, e;

    if (!x->pv || !level) {
        XCC_ERR(x->log, "xen", "dom%u: pfn %#" PRIx64 " of type 0x%x is not "
                "a PV page table", x->domid, pfn, type);
        errno = EINVAL;
        return -1;
    }
    if (g.levels != 4) {
        /* Xen's compat M2P frame, which marks the Xen slots of a 32-bit
         * guest's L2, is not read: refuse rather than send Xen's slots. */
        XCC_ERR(x->log, "xen", "dom%u: %u-byte PV guest: page-table "
                "normalisation supports 64-bit guests only", x->domid,
                x->guest_width);
        errno = ENOTSUP;
        return -1;
    }
    struct lookup_ctx c = {.x = x, .drop_shared = final && !suspended(x)};

    pthread_mutex_lock(&x->p2m_lock);
    rc = m2p_map(x);
    if (rc == 0)
        rc = xen_pt_normalise(page, level, &g, lookup_cb, &c, &f);
    e = errno;
    pthread_mutex_unlock(&x->p2m_lock);
    if (rc == 0) {
        if (f.dropped)
            XCC_INFO(x->log, "xen", "dom%u: page table pfn %#" PRIx64
                     " (L%u): %u entries mapping Xen's pages shared with the "
                     "guest (shared_info, grant table) dropped: the guest is "
                     "paused, not suspended", x->domid, pfn, level,
                     f.dropped);
        return 0;
    }
    if (e == EAGAIN && !final) {
        XCC_DBG(x->log, "xen", "dom%u: pfn %#" PRIx64 " (L%u): entry %u "
                "(%#" PRIx64 ") maps mfn %#" PRIx64 ", not the guest's now: "
                "deferred", x->domid, pfn, level, f.slot, f.pte, f.frame);
        errno = EAGAIN;
        return -1;
    }
    if (e == EAGAIN || e == E2BIG || e == EINVAL) {
        uint64_t m2p_pfn = f.frame < x->m2p_entries ? x->m2p[f.frame]
                                                     : ~0ull;

        XCC_ERR(x->log, "xen", "dom%u: page table pfn %#" PRIx64 " (L%u%s) "
                "cannot be normalised: entry %u (%#018" PRIx64 ", mfn %#"
                PRIx64 ", M2P says pfn %#" PRIx64 ") %s", x->domid, pfn,
                level, type & XCC_PFN_PINNED ? ", pinned" : "", f.slot, f.pte,
                f.frame, m2p_pfn, xen_pt_fault_name(e));
        errno = e == EAGAIN ? ERANGE : e;
        return -1;
    }
    errno = e;
    return -1;
}
