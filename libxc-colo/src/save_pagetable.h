/*
 * save_pagetable.h - the saver's side of PV page tables: every page-table
 * page goes through the backend's normalise op (mfns -> pfns, Xen's slots
 * zeroed; xen_pt.h) before it reaches the XBZRLE cache or the wire, so the
 * cache holds the bytes sent. A table that cannot be normalised while the
 * guest runs is deferred: its pfn stays pending for the next pass. In a
 * paused pass (the final one, or a checkpoint) it is an error naming the
 * pfn.
 *
 * Internal API (save.c only).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef XCC_SAVE_PAGETABLE_H
#define XCC_SAVE_PAGETABLE_H

#include "save.h"

/* True when a page of this type must be normalised (a page table, and the
 * backend has the op). */
bool save_pagetable_wanted(const xcc_saver *s, unsigned type);

/*
 * Normalises page (a private copy of pfn, page_size bytes) in place when
 * its type asks for it. Returns 0 when page is ready to send, 1 when the
 * table was deferred (pfn is pending again; nothing may be sent or cached
 * for it in this pass), -1 with errno on error (logged, naming the pfn).
 */
int save_pagetable_normalise(xcc_saver *s, uint64_t pfn, unsigned type,
                             uint8_t *page);

#endif /* XCC_SAVE_PAGETABLE_H */
