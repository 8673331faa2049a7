/*
 * pfn_type.h - pfn types and stream domain-header types: the few facts the
 * domain backends and the stream share, kept apart so that stream.c needs
 * nothing else of domains.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef XCC_PFN_TYPE_H
#define XCC_PFN_TYPE_H

#include <stdbool.h>

/*
 * pfn types, numbered as Xen's XEN_DOMCTL_PFINFO_* >> 28, which is also the
 * 4-bit type field (bits 60..63) of a PAGE_DATA pfn entry.
 */
enum xcc_pfn_type {
    XCC_PFN_NORMAL = 0x0, /* NOTAB: ordinary RAM */
    XCC_PFN_L1TAB = 0x1,  /* PV page-table pages, L1 .. L4 */
    XCC_PFN_L2TAB = 0x2,
    XCC_PFN_L3TAB = 0x3,
    XCC_PFN_L4TAB = 0x4,
    XCC_PFN_PINNED = 0x8, /* LPINTAB flag: 0x9 .. 0xC = pinned L1 .. L4 */
    XCC_PFN_BROKEN = 0xD, /* not accessible (ballooned out, broken) */
    XCC_PFN_XALLOC = 0xE, /* allocate only, no data */
    XCC_PFN_XTAB = 0xF,   /* hole: no page behind the pfn */
};

/*
 * Page-table level of a type: 1..4 for L1TAB..L4TAB, pinned or not, else 0.
 * Pinning (the guest asked Xen to keep the table validated) is not memory
 * content, but a receiver must pin the table again, so it travels.
 */
static inline unsigned xcc_pfn_type_level(unsigned type)
{
    unsigned t = type & ~(unsigned)XCC_PFN_PINNED;

    if (type > 0xF || t < XCC_PFN_L1TAB || t > XCC_PFN_L4TAB)
        return 0;
    return t;
}

/* True for a PV page-table type, pinned or not (0x1..0x4, 0x9..0xC). */
static inline bool xcc_pfn_type_is_pagetable(unsigned type)
{
    return xcc_pfn_type_level(type) != 0;
}

/* True when a page of this type carries data in a stream. */
static inline bool xcc_pfn_type_has_data(unsigned type)
{
    return type == XCC_PFN_NORMAL || xcc_pfn_type_is_pagetable(type);
}

/* Stream domain-header types (the stream's own block is 0x58430000+). */
#define XCC_DHDR_TYPE_X86_PV 0x0001u
#define XCC_DHDR_TYPE_X86_HVM 0x0002u
#define XCC_DHDR_TYPE_SIM 0x58430000u

#endif /* XCC_PFN_TYPE_H */
