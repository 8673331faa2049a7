/*
 * xen_p2m.c - frame types and the pfn -> mfn table of PV domains.
 *
 * A PV guest's pages are mapped by machine frame, so the backend needs the
 * guest's p2m. A booted Linux publishes it through shared_info as a
 * three-level tree: the frame-list-list page holds the mfns of frame-list
 * pages, which hold the mfns of the p2m pages, which hold one mfn per pfn.
 *
 * Two cases have no usable tree: a domain created paused (its kernel has not
 * run, so shared_info holds no tree yet), and a domain whose memory a
 * memory-only restore has overwritten (its p2m pages now hold the source's
 * frame numbers, which the domain does not own). For those the table is
 * rebuilt from Xen's machine-to-phys table (M2P), which the hypervisor keeps
 * for every PV frame and no guest write can change: each frame whose M2P
 * entry is a plausible pfn is kept if Xen says the domain owns it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "xen_priv.h"

#define PAGE_BYTES 4096u

/* The M2P is handed out in 2 MiB extents (XENMEM_machphys_mfn_list). */
#define M2P_EXTENT_BYTES (2u << 20)
#define M2P_PAGES_PER_EXTENT (M2P_EXTENT_BYTES / PAGE_BYTES)

/*
 * Linux tags p2m entries it does not own outright (identity-mapped I/O,
 * foreign frames) in the top bits; no real frame number reaches bit 52.
 */
#define MFN_LIMIT (1ull << 52)

/*
 * If more than 1/UNOWNED_DIVISOR of the published p2m's frames belong to
 * someone else, the tree is not this domain's own (a memory-only restore
 * wrote another domain's p2m into it) and the M2P scan is used instead.
 */
#define UNOWNED_DIVISOR 8u

/* Upper bound for the pfns the M2P scan accepts: 256 GiB of 4 KiB pages. */
#define M2P_SCAN_PFN_CAP (1ull << 26)

static uint8_t type_from_xen(xen_pfn_t v)
{
    unsigned t = (unsigned)((v & XEN_DOMCTL_PFINFO_LTAB_MASK) >>
                            XEN_DOMCTL_PFINFO_LTAB_SHIFT);

    switch (t) {
    case XCC_PFN_BROKEN:
    case XCC_PFN_XALLOC:
    case XCC_PFN_XTAB:
        return (uint8_t)t;
    default:
        break;
    }
    /* Pinned tables (LPINTAB, 0x9..0xC) keep their pin bit: a receiver
     * must pin them again. */
    if (t == XCC_PFN_NORMAL || xcc_pfn_type_is_pagetable(t))
        return (uint8_t)t;
    return XCC_PFN_BROKEN; /* a type this Xen should never report */
}

int xen_frame_types(struct xen_dom *x, const uint64_t *frames, uint8_t *types,
                    size_t n)
{
    xen_pfn_t buf[XEN_PFN_TYPE_BATCH];
    size_t idx[XEN_PFN_TYPE_BATCH];

    for (size_t base = 0; base < n; base += XEN_PFN_TYPE_BATCH) {
        size_t len = n - base < XEN_PFN_TYPE_BATCH ? n - base
                                                   : XEN_PFN_TYPE_BATCH;
        unsigned nq = 0;

        for (size_t i = 0; i < len; i++) {
            uint64_t f = frames[base + i];

            if (f == XEN_P2M_INVALID || f >= MFN_LIMIT) {
                types[base + i] = XCC_PFN_XTAB;
                continue;
            }
            idx[nq] = base + i;
            buf[nq++] = (xen_pfn_t)f;
        }
        if (nq == 0)
            continue;
        if (xc_get_pfn_type_batch(x->xch, x->domid, nq, buf) < 0) {
            XCC_PERR(x->log, "xen", "dom%u: cannot read the types of %u frames",
                     x->domid, nq);
            return -1;
        }
        for (unsigned i = 0; i < nq; i++)
            types[idx[i]] = type_from_xen(buf[i]);
    }
    return 0;
}

/* Maps n frames of dom read-only; NULL (logged) unless every page mapped. */
static void *map_frames_ro(struct xen_dom *x, uint32_t dom,
                           const xen_pfn_t *frames, size_t n, const char *what)
{
    int *err = calloc(n, sizeof(*err));
    void *p;

    if (!err)
        return NULL;
    p = xenforeignmemory_map(x->fmem, dom, PROT_READ, n, frames, err);
    if (!p) {
        XCC_PERR(x->log, "xen", "dom%u: cannot map %s (%zu pages)", x->domid,
                 what, n);
        free(err);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (err[i]) {
            int e = -err[i];

            XCC_DBG(x->log, "xen", "dom%u: %s page %zu (frame %#lx): error %d",
                    x->domid, what, i, (unsigned long)frames[i], err[i]);
            xenforeignmemory_unmap(x->fmem, p, n);
            free(err);
            errno = e;
            return NULL;
        }
    }
    free(err);
    return p;
}

/*
 * Reads the frame-list tree. Returns 1 with *out (n entries) filled, 0 when
 * the domain publishes no usable tree (the caller scans the M2P), -1 on
 * error.
 */
static int p2m_from_frame_lists(struct xen_dom *x, uint64_t max_mfn,
                                uint64_t **out, uint64_t *out_n)
{
    const size_t fpp = PAGE_BYTES / sizeof(uint64_t); /* entries per page */
    xc_domaininfo_t di;
    xen_pfn_t si_frame, fll_frame, *fl_frames = NULL, *p2m_frames = NULL;
    shared_info_t *si;
    uint64_t max_pfn, *p2m = NULL;
    size_t n_p2m, n_fl, valid = 0, unowned = 0;
    uint8_t *types = NULL;
    int ret = -1;

    if (x->guest_width != sizeof(uint64_t)) {
        XCC_DBG(x->log, "xen", "dom%u: %u-byte guest, p2m from the M2P",
                x->domid, x->guest_width);
        return 0;
    }
    if (xc_domain_getinfolist(x->xch, x->domid, 1, &di) != 1 ||
        di.domain != x->domid) {
        XCC_ERR(x->log, "xen", "dom%u has gone away", x->domid);
        errno = ENOENT;
        return -1;
    }
    si_frame = (xen_pfn_t)di.shared_info_frame;
    si = map_frames_ro(x, x->domid, &si_frame, 1, "shared_info");
    if (!si)
        return -1;
    max_pfn = si->arch.max_pfn;
    fll_frame = si->arch.pfn_to_mfn_frame_list_list;
    xenforeignmemory_unmap(x->fmem, si, 1);

    /* ~0 means "only the virtual p2m list"; 0 means "not booted yet". */
    if (max_pfn == 0 || fll_frame == 0 || fll_frame == ~(xen_pfn_t)0 ||
        fll_frame > max_mfn) {
        XCC_DBG(x->log, "xen",
                "dom%u publishes no p2m frame list (max_pfn %" PRIu64
                ", list %#lx)",
                x->domid, max_pfn, (unsigned long)fll_frame);
        return 0;
    }
    n_p2m = XCC_DIV_ROUND_UP(max_pfn, fpp);
    n_fl = XCC_DIV_ROUND_UP(n_p2m, fpp);
    if (n_fl > fpp) {
        XCC_ERR(x->log, "xen", "dom%u: p2m of %" PRIu64 " pfns is too large",
                x->domid, max_pfn);
        errno = EINVAL;
        return -1;
    }

    xen_pfn_t *fll = map_frames_ro(x, x->domid, &fll_frame, 1, "p2m list");
    if (!fll)
        return 0;
    fl_frames = calloc(n_fl, sizeof(*fl_frames));
    p2m_frames = calloc(n_p2m, sizeof(*p2m_frames));
    p2m = malloc(max_pfn * sizeof(*p2m));
    types = malloc(max_pfn);
    if (!fl_frames || !p2m_frames || !p2m || !types) {
        xenforeignmemory_unmap(x->fmem, fll, 1);
        goto out;
    }
    memcpy(fl_frames, fll, n_fl * sizeof(*fl_frames));
    xenforeignmemory_unmap(x->fmem, fll, 1);

    xen_pfn_t *fl = map_frames_ro(x, x->domid, fl_frames, n_fl, "p2m frames");
    if (!fl) {
        ret = 0;
        goto out;
    }
    memcpy(p2m_frames, fl, n_p2m * sizeof(*p2m_frames));
    xenforeignmemory_unmap(x->fmem, fl, n_fl);

    uint64_t *pages = map_frames_ro(x, x->domid, p2m_frames, n_p2m, "p2m");
    if (!pages) {
        ret = 0;
        goto out;
    }
    memcpy(p2m, pages, max_pfn * sizeof(*p2m));
    xenforeignmemory_unmap(x->fmem, pages, n_p2m);

    for (uint64_t p = 0; p < max_pfn; p++) {
        if (p2m[p] > max_mfn)
            p2m[p] = XEN_P2M_INVALID;
        else
            valid++;
    }
    /* Keep only frames the domain owns: Xen types others as XTAB. */
    if (xen_frame_types(x, p2m, types, max_pfn) < 0)
        goto out;
    for (uint64_t p = 0; p < max_pfn; p++) {
        if (p2m[p] != XEN_P2M_INVALID && types[p] == XCC_PFN_XTAB) {
            p2m[p] = XEN_P2M_INVALID;
            unowned++;
        }
    }
    if (valid == 0 || unowned > valid / UNOWNED_DIVISOR) {
        XCC_INFO(x->log, "xen",
                 "dom%u: %zu of the %zu frames in its p2m are not its own; "
                 "reading the M2P instead",
                 x->domid, unowned, valid);
        ret = 0;
        goto out;
    }
    *out = p2m;
    *out_n = max_pfn;
    p2m = NULL;
    /* Kept for X86_PV_P2M_FRAMES. */
    free(x->p2m_leaves);
    x->p2m_leaves = (uint64_t *)p2m_frames;
    x->nr_p2m_leaves = n_p2m;
    p2m_frames = NULL;
    ret = 1;
out:
    free(fl_frames);
    free(p2m_frames);
    free(p2m);
    free(types);
    return ret;
}

/* Builds the table from the M2P: every owned frame names its pfn. */
static int p2m_from_m2p(struct xen_dom *x, uint64_t max_mfn, uint64_t **out,
                        uint64_t *out_n)
{
    const uint64_t per_extent = M2P_EXTENT_BYTES / sizeof(xen_pfn_t);
    unsigned long extents = XCC_DIV_ROUND_UP(max_mfn * sizeof(xen_pfn_t),
                                             M2P_EXTENT_BYTES);
    size_t pages = (size_t)extents * M2P_PAGES_PER_EXTENT;
    xen_pfn_t *extent = calloc(extents ? extents : 1, sizeof(*extent));
    xen_pfn_t *frames = calloc(pages ? pages : 1, sizeof(*frames));
    xen_pfn_t cand_mfn[XEN_PFN_TYPE_BATCH], query[XEN_PFN_TYPE_BATCH];
    uint64_t cand_pfn[XEN_PFN_TYPE_BATCH];
    uint64_t bound, nr = 0, found = 0, dups = 0, *p2m = NULL;
    uint64_t *pairs = NULL; /* pfn, mfn */
    size_t npairs = 0, cap = 0;
    const xen_pfn_t *m2p = NULL;
    xc_domaininfo_t di;
    xen_pfn_t gpfn = 0;
    unsigned nc = 0;
    int ret = -1;

    if (!extent || !frames)
        goto out;
    if (xc_domain_getinfolist(x->xch, x->domid, 1, &di) != 1 ||
        di.domain != x->domid) {
        XCC_ERR(x->log, "xen", "dom%u has gone away", x->domid);
        errno = ENOENT;
        goto out;
    }
    if (xc_domain_maximum_gpfn(x->xch, x->domid, &gpfn) < 0)
        gpfn = 0;
    /* Twice the domain's allowance: room for pfns Linux remapped upward. */
    bound = 2 * (di.max_pages > gpfn + 1 ? di.max_pages : gpfn + 1);
    if (bound > M2P_SCAN_PFN_CAP)
        bound = M2P_SCAN_PFN_CAP;

    if (xc_machphys_mfn_list(x->xch, extents, extent) < 0) {
        XCC_PERR(x->log, "xen", "cannot list the M2P's %lu extents", extents);
        goto out;
    }
    for (size_t i = 0; i < pages; i++)
        frames[i] = extent[i / M2P_PAGES_PER_EXTENT] + i % M2P_PAGES_PER_EXTENT;
    m2p = map_frames_ro(x, DOMID_XEN, frames, pages, "M2P");
    if (!m2p)
        goto out;

    uint64_t entries = (uint64_t)extents * per_extent;
    if (entries > max_mfn + 1)
        entries = max_mfn + 1;
    for (uint64_t mfn = 0; mfn <= entries; mfn++) {
        /* Flush a full batch, or the last partial one. */
        if (nc == XEN_PFN_TYPE_BATCH || (mfn == entries && nc)) {
            memcpy(query, cand_mfn, nc * sizeof(*query));
            if (xc_get_pfn_type_batch(x->xch, x->domid, nc, query) < 0) {
                XCC_PERR(x->log, "xen", "dom%u: cannot read frame types",
                         x->domid);
                goto out;
            }
            for (unsigned i = 0; i < nc; i++) {
                if (type_from_xen(query[i]) == XCC_PFN_XTAB)
                    continue;
                if (npairs == cap) {
                    size_t ncap = cap ? 2 * cap : 4096;
                    uint64_t *np = realloc(pairs, ncap * 2 * sizeof(*np));
                    if (!np)
                        goto out;
                    pairs = np;
                    cap = ncap;
                }
                pairs[2 * npairs] = cand_pfn[i];
                pairs[2 * npairs + 1] = cand_mfn[i];
                npairs++;
                if (cand_pfn[i] + 1 > nr)
                    nr = cand_pfn[i] + 1;
            }
            nc = 0;
        }
        if (mfn == entries)
            break;
        if (m2p[mfn] < bound) {
            cand_pfn[nc] = m2p[mfn];
            cand_mfn[nc++] = (xen_pfn_t)mfn;
        }
    }
    if (gpfn + 1 > nr)
        nr = gpfn + 1;
    p2m = malloc((nr ? nr : 1) * sizeof(*p2m));
    if (!p2m)
        goto out;
    for (uint64_t p = 0; p < nr; p++)
        p2m[p] = XEN_P2M_INVALID;
    for (size_t i = 0; i < npairs; i++) {
        uint64_t pfn = pairs[2 * i];

        if (p2m[pfn] != XEN_P2M_INVALID) {
            dups++;
            continue;
        }
        p2m[pfn] = pairs[2 * i + 1];
        found++;
    }
    if (dups)
        XCC_WARN(x->log, "xen", "dom%u: %" PRIu64 " pfns claimed by two frames "
                 "in the M2P; kept the first", x->domid, dups);
    XCC_DBG(x->log, "xen", "dom%u: M2P scan found %" PRIu64 " frames",
            x->domid, found);
    *out = p2m;
    *out_n = nr;
    p2m = NULL;
    ret = 0;
out:
    if (m2p)
        xenforeignmemory_unmap(x->fmem, (void *)m2p, pages);
    free(extent);
    free(frames);
    free(pairs);
    free(p2m);
    return ret;
}

int xen_p2m_build(struct xen_dom *x)
{
    unsigned long max_mfn = 0;
    uint64_t *p2m = NULL, n = 0;
    int rc;

    if (xc_maximum_ram_page(x->xch, &max_mfn) < 0) {
        XCC_PERR(x->log, "xen", "cannot read the highest machine frame");
        return -1;
    }
    rc = p2m_from_frame_lists(x, max_mfn, &p2m, &n);
    if (rc < 0)
        return -1;
    if (rc == 1) {
        x->p2m_source = "frame-list";
    } else {
        free(x->p2m_leaves);
        x->p2m_leaves = NULL;
        x->nr_p2m_leaves = 0;
        if (p2m_from_m2p(x, max_mfn, &p2m, &n) < 0)
            return -1;
        x->p2m_source = "m2p";
    }
    if (x->p2m) {
        /* A re-read: whatever moved is mapped wrongly by any consumer. */
        const uint64_t common = n < x->nr_pfns ? n : x->nr_pfns;

        for (uint64_t p = 0; p < common;) {
            uint64_t q = p;

            while (q < common && x->p2m[q] != p2m[q])
                q++;
            if (q > p)
                xen_report_change(x, p, q - p, DOMAIN_CHANGE_FRAME);
            p = q + 1;
        }
        if (x->nr_pfns > n)
            xen_report_change(x, n, x->nr_pfns - n, DOMAIN_CHANGE_FRAME);
    }
    free(x->p2m);
    x->p2m = p2m;
    x->nr_pfns = n;
    XCC_DBG(x->log, "xen", "dom%u: p2m of %" PRIu64 " pfns from the %s",
            x->domid, n, x->p2m_source);
    return 0;
}
