/*
 * xen_pt.h - normalising x86 PV page-table pages for the stream.
 *
 * A PV guest's page tables hold machine frame numbers (mfns), which mean
 * nothing on another host. Before a page table goes into the stream (and
 * into the saver's XBZRLE cache, which must hold the bytes sent) every
 * present entry's mfn becomes the guest's pfn, its flag bits kept, and the
 * slots Xen fills in itself are zeroed (the receiving Xen fills them
 * again). Superpage entries (PSE in an L2 or L3 entry) are refused: a PV
 * guest cannot have them, and their frame is not one page.
 *
 * Pure code: no Xen headers, no I/O. The mfn -> pfn lookup is a callback,
 * so tests run it on hand-built tables and a hand-built m2p.
 *
 * Xen's layout facts (Xen 4.17, public/arch-x86/xen-x86_{32,64}.h and
 * tools/libs/guest/xg_sr_save_x86_pv.c):
 *   - 64-bit guests (4 levels): only L4 tables hold Xen slots, 256 .. 272
 *     (HYPERVISOR_VIRT_START 0xFFFF800000000000 >> 39 to
 *     HYPERVISOR_VIRT_END 0xFFFF880000000000 >> 39, both included, as
 *     libxenguest zeroes them);
 *   - 32-bit PAE guests (3 levels): an L3 uses slots 0..3 only, 4..511 are
 *     Xen's; an L2 whose slot 428 (0xF5800000 >> 21) maps the first frame
 *     of Xen's compat M2P has Xen slots 428..511; an L4 is an error.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef XCC_XEN_PT_H
#define XCC_XEN_PT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XEN_PT_ENTRIES 512u /* 8-byte entries per 4 KiB table, PAE and 64-bit */
#define XEN_PT_PAGE_BYTES 4096u

#define XEN_PTE_PRESENT 0x001ull
#define XEN_PTE_PSE 0x080ull
/* Bits 12..51: the frame. */
#define XEN_PTE_FRAME_MASK 0x000FFFFFFFFFF000ull
#define XEN_PTE_FRAME_SHIFT 12

/* Xen's slots (see above). */
#define XEN_PT_L4_XEN_FIRST 256u
#define XEN_PT_L4_XEN_LAST 272u
#define XEN_PT_PAE_L3_GUEST_SLOTS 4u
#define XEN_PT_PAE_L2_XEN_FIRST 428u
#define XEN_PT_PAE_L2_XEN_LAST 511u

struct xen_pt_geom {
    unsigned levels;          /* 4: 64-bit guest, 3: 32-bit PAE guest */
    uint64_t compat_m2p_mfn0; /* 3 levels: first mfn of Xen's compat M2P */
};

/*
 * mfn -> pfn: 0 with *pfn set when mfn is a frame of the domain whose p2m
 * maps *pfn back to it; -1 otherwise (not the domain's, or moving); 1 when
 * the entry is to be dropped (written as 0): a frame outside the guest's
 * memory that the guest would have unmapped itself had it been suspended
 * (see xen_m2p.c).
 */
typedef int xen_pt_lookup_fn(void *opaque, uint64_t mfn, uint64_t *pfn);

/* Where a table could not be normalised or checked. */
struct xen_pt_fault {
    unsigned slot; /* entry index 0..511 */
    uint64_t pte;  /* the entry as found */
    uint64_t frame; /* its frame (an mfn, or a pfn for the check) */
    unsigned dropped; /* normalise: entries the lookup dropped (answer 1) */
};

/* Guest levels from the guest width in bytes (8: 4 levels, 4: 3), or 0. */
unsigned xen_pt_levels_for_width(unsigned guest_width);

/*
 * Normalises the page table page[0..511] (level 1..4, pinned or not: pass
 * the level only) in place. Returns 0, or -1 with errno and *f filled:
 *   EAGAIN  a present entry names an mfn the lookup refused (the table is
 *           changing under a live pass, or maps a frame that is not the
 *           guest's): defer it, or fail when the guest is paused;
 *   E2BIG   a superpage entry (PSE at level 2 or 3);
 *   EINVAL  a level the guest cannot have (0, > levels).
 * On failure the page is left partly rewritten: discard it.
 */
int xen_pt_normalise(uint64_t *page, unsigned level,
                     const struct xen_pt_geom *g, xen_pt_lookup_fn *lookup,
                     void *opaque, struct xen_pt_fault *f);

/*
 * Checks that page (as a stream carries it) is a normalised table: Xen's
 * slots zero, no superpage, every present entry's frame below nr_pfns.
 * Returns 0, or -1 with errno (ERANGE: frame out of range; EEXIST: a Xen
 * slot is not zero; E2BIG: superpage; EINVAL: bad level) and *f filled.
 * For a 3-level guest's L2 the Xen slots cannot be told from the stream,
 * so they are checked as guest slots.
 */
int xen_pt_check_normalised(const uint64_t *page, unsigned level,
                            const struct xen_pt_geom *g, uint64_t nr_pfns,
                            struct xen_pt_fault *f);

/* "Xen slot", "superpage", ... for errno values of the two calls above. */
const char *xen_pt_fault_name(int err);

#endif /* XCC_XEN_PT_H */
