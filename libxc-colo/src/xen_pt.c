/*
 * xen_pt.c - normalising x86 PV page-table pages (see xen_pt.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>

#include "xen_pt.h"

unsigned xen_pt_levels_for_width(unsigned guest_width)
{
    return guest_width == 8 ? 4 : guest_width == 4 ? 3 : 0;
}

static uint64_t pte_frame(uint64_t pte)
{
    return (pte & XEN_PTE_FRAME_MASK) >> XEN_PTE_FRAME_SHIFT;
}

/*
 * Xen's slots of a table as found: [*first, *last], or first > last when
 * it has none. -1 (EINVAL) for a level the guest cannot have.
 */
static int xen_slots(const uint64_t *page, unsigned level,
                     const struct xen_pt_geom *g, unsigned *first,
                     unsigned *last)
{
    *first = 1;
    *last = 0;
    if (level < 1 || level > 4 || (g->levels != 3 && g->levels != 4) ||
        level > g->levels) {
        errno = EINVAL;
        return -1;
    }
    if (g->levels == 4) {
        if (level == 4) {
            *first = XEN_PT_L4_XEN_FIRST;
            *last = XEN_PT_L4_XEN_LAST;
        }
        return 0;
    }
    if (level == 3) {
        *first = XEN_PT_PAE_L3_GUEST_SLOTS;
        *last = XEN_PT_ENTRIES - 1;
    } else if (level == 2 && page &&
               (page[XEN_PT_PAE_L2_XEN_FIRST] & XEN_PTE_PRESENT) &&
               pte_frame(page[XEN_PT_PAE_L2_XEN_FIRST]) == g->compat_m2p_mfn0) {
        *first = XEN_PT_PAE_L2_XEN_FIRST;
        *last = XEN_PT_PAE_L2_XEN_LAST;
    }
    return 0;
}

static int fault(struct xen_pt_fault *f, int err, unsigned slot, uint64_t pte,
                 uint64_t frame)
{
    if (f) {
        f->slot = slot;
        f->pte = pte;
        f->frame = frame;
    }
    errno = err;
    return -1;
}

int xen_pt_normalise(uint64_t *page, unsigned level,
                     const struct xen_pt_geom *g, xen_pt_lookup_fn *lookup,
                     void *opaque, struct xen_pt_fault *f)
{
    unsigned first, last;

    if (f)
        f->dropped = 0;
    if (xen_slots(page, level, g, &first, &last) < 0)
        return fault(f, EINVAL, 0, 0, 0);
    for (unsigned i = 0; i < XEN_PT_ENTRIES; i++) {
        uint64_t pte = page[i], mfn, pfn = 0;
        int rc;

        if (i >= first && i <= last) {
            page[i] = 0;
            continue;
        }
        if (!(pte & XEN_PTE_PRESENT))
            continue; /* not a mapping: whatever the guest keeps there */
        mfn = pte_frame(pte);
        if (level > 1 && (pte & XEN_PTE_PSE))
            return fault(f, E2BIG, i, pte, mfn);
        rc = lookup(opaque, mfn, &pfn);
        if (rc == 1) {
            page[i] = 0;
            if (f)
                f->dropped++;
            continue;
        }
        if (rc < 0 || pfn > XEN_PTE_FRAME_MASK >> XEN_PTE_FRAME_SHIFT)
            return fault(f, EAGAIN, i, pte, mfn);
        page[i] = (pte & ~XEN_PTE_FRAME_MASK) | pfn << XEN_PTE_FRAME_SHIFT;
    }
    return 0;
}

int xen_pt_check_normalised(const uint64_t *page, unsigned level,
                            const struct xen_pt_geom *g, uint64_t nr_pfns,
                            struct xen_pt_fault *f)
{
    unsigned first, last;

    /* The L2 marker names an mfn, gone after normalisation: no page. */
    if (xen_slots(NULL, level, g, &first, &last) < 0)
        return fault(f, EINVAL, 0, 0, 0);
    for (unsigned i = 0; i < XEN_PT_ENTRIES; i++) {
        uint64_t pte = page[i];

        if (i >= first && i <= last) {
            if (pte)
                return fault(f, EEXIST, i, pte, pte_frame(pte));
            continue;
        }
        if (!(pte & XEN_PTE_PRESENT))
            continue;
        if (level > 1 && (pte & XEN_PTE_PSE))
            return fault(f, E2BIG, i, pte, pte_frame(pte));
        if (pte_frame(pte) >= nr_pfns)
            return fault(f, ERANGE, i, pte, pte_frame(pte));
    }
    return 0;
}

const char *xen_pt_fault_name(int err)
{
    switch (err) {
    case EAGAIN:
        return "maps an mfn that is not the guest's";
    case E2BIG:
        return "is a superpage (PSE), which a PV guest cannot migrate";
    case EINVAL:
        return "has a level the guest cannot have";
    case ERANGE:
        return "maps a frame beyond the guest's pfns";
    case EEXIST:
        return "is one of Xen's slots and is not zero";
    default:
        return "is wrong";
    }
}
