/*
 * xen_m2p.c - mfn -> pfn for PV domains.
 *
 * A minimal stand-in (pvstate branch) for the M2P-based lookup of the
 * pagetypes branch, with the same signature: it answers from the
 * backend's own p2m copy, which is what that lookup checks Xen's M2P
 * against. It is slow (a scan per call), which is fine for the few frames
 * the vCPU records name; on merge the pagetypes version replaces it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "xen_priv.h"

int xen_mfn_to_pfn(struct xen_dom *x, uint64_t mfn, uint64_t *pfn)
{
    int rc = -1;

    pthread_mutex_lock(&x->p2m_lock);
    for (uint64_t p = 0; p < x->nr_pfns; p++) {
        if (x->p2m[p] == mfn && mfn != XEN_P2M_INVALID) {
            *pfn = p;
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&x->p2m_lock);
    if (rc < 0)
        errno = ERANGE;
    return rc;
}
