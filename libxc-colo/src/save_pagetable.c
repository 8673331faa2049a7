/*
 * save_pagetable.c - normalising PV page tables in the save path (see
 * save_pagetable.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "save_pagetable.h"

#define CTX "save"

bool save_pagetable_wanted(const xcc_saver *s, unsigned type)
{
    return s->d->ops->normalise && xcc_pfn_type_is_pagetable(type);
}

int save_pagetable_normalise(xcc_saver *s, uint64_t pfn, unsigned type,
                             uint8_t *page)
{
    struct stats_iteration *it = s->cur;
    const bool final = it->paused;

    if (!save_pagetable_wanted(s, type))
        return 0;
    if (s->d->ops->normalise(s->d, pfn, type, page, final) == 0) {
        it->pagetables++;
        return 0;
    }
    if (errno == EAGAIN && !final) {
        /*
         * Its entries name frames that are moving (a live guest edits its
         * tables under us): the next pass sends it. The receiver and the
         * XBZRLE cache keep what was sent before, which still agree.
         */
        s->dirty[pfn / 64] |= 1ull << (pfn % 64);
        it->pt_deferred++;
        return 1;
    }
    XCC_PERR(s->log, CTX, "page table pfn %#" PRIx64 " (type 0x%x) of '%s' "
             "cannot be sent%s", pfn, type, s->d->name,
             final ? " in the paused pass" : "");
    return -1;
}
