/*
 * domain.h - the domain backend interface.
 *
 * The save and restore loops reach a guest only through this ops table.
 * Backends (sim.c, xen.c) know nothing of streams, save or restore.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef XCC_DOMAIN_H
#define XCC_DOMAIN_H

#include "../private.h"

/* enum xcc_pfn_type, xcc_pfn_type_has_data(), XCC_DHDR_TYPE_*. */
#include "../pfn_type.h"

struct xcc_domain_info {
    uint64_t nr_pfns;      /* valid pfns are 0 .. nr_pfns-1 */
    uint32_t page_size;    /* bytes; 4096 on x86 */
    uint32_t stream_type;  /* XCC_DHDR_TYPE_* for the domain header */
    uint32_t xen_major;    /* hypervisor version, 0 for sim */
    uint32_t xen_minor;
};

struct xcc_domain_ops {
    const char *kind; /* "sim" or "xen" */

    /* Fills *info. Cheap; may be called again after populate. */
    int (*info)(xcc_domain *d, struct xcc_domain_info *info);

    /* types[i] = XCC_PFN_* of pfns[i]. Returns 0 or -1/errno. */
    int (*pfn_types)(xcc_domain *d, const uint64_t *pfns, uint8_t *types,
                     size_t n);

    /* Log-dirty mode on/off. Enabling marks nothing dirty. */
    int (*logdirty_enable)(xcc_domain *d);
    int (*logdirty_disable)(xcc_domain *d);

    /*
     * Sets bit p of bitmap (nr_pfns bits, 64 per word, zeroed by the caller)
     * for every pfn p written since the previous clean, and re-arms the
     * tracking in the same atomic step, like SHADOW_OP_CLEAN. `final` is set
     * on the last pass, with the guest paused. Returns the number of dirty
     * pfns reported (over-reporting is allowed, missing a page is not), or
     * -1 with errno.
     */
    int64_t (*logdirty_clean)(xcc_domain *d, uint64_t *bitmap, bool final);

    /*
     * Maps the n pages pfns[0..n) into one contiguous region, read-only or
     * writable, like xenforeignmemory_map: err[i] is 0 or a negative errno
     * for a page that could not be mapped (its slot is inaccessible). Returns
     * NULL with errno when the whole call failed (ENOMEM: out of mappings).
     */
    void *(*map)(xcc_domain *d, bool writable, const uint64_t *pfns, int *err,
                 size_t n);
    int (*unmap)(xcc_domain *d, void *addr, size_t n);

    int (*pause)(xcc_domain *d);
    int (*unpause)(xcc_domain *d);

    /*
     * Optional (NULL): a backend that finds dirty pages by comparing page
     * contents (Xen's digest fallback) answers true while it does so. The
     * saver then sends pages from a copy and passes page_sent the exact
     * bytes the receiver will hold, so that the next clean compares the
     * guest against what was sent rather than against an earlier scan: a
     * transient state caught by a copy is then always sent again.
     */
    bool (*dirty_by_content)(xcc_domain *d);
    void (*page_sent)(xcc_domain *d, uint64_t pfn, const void *page);

    /* Optional (NULL): quiesce / resume the guest around the final pass. */
    int (*suspend)(xcc_domain *d);
    int (*resume)(xcc_domain *d);

    /* Restore side: make pfns exist (allocate their memory). */
    int (*populate)(xcc_domain *d, const uint64_t *pfns, size_t n);

    /* Releases priv. The domain itself (guest) is left as it is. */
    void (*close)(xcc_domain *d);
};

struct xcc_domain {
    const struct xcc_domain_ops *ops;
    void *priv;
    xentoollog_logger *log;
    char *name; /* as given to xcc_domain_open */
    struct xcc_domain_info info;
};

/* Backend constructors, chosen by xcc_domain_open from the name's prefix. */
int sim_domain_open(xcc_domain *d, const char *simname, unsigned flags);
int xen_domain_open(xcc_domain *d, const char *idstr, unsigned flags);

#endif /* XCC_DOMAIN_H */
