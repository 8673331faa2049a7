/*
 * restore.h - the restore loop's internals, shared with checkpoint mode.
 *
 * restore_next() reads the next validated record; restore_apply() applies
 * one record to the target. Checkpoint mode keeps the records of an epoch
 * (their bodies copied, since a body lives only until the next read) and
 * applies them with restore_apply() when the epoch's CHECKPOINT arrives.
 *
 * Internal API: names start restore_.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef XCC_RESTORE_H
#define XCC_RESTORE_H

#include "domain/domain.h"
#include "stats.h"
#include "stream.h"
#include "xl_format.h"
#include "xen_records.h"

/*
 * Called after a page record (PAGE_DATA, COMPRESSED_PAGES, ZERO_PAGES,
 * XBZRLE_PAGES) was applied to the target, with its entries (the
 * reader's arrays, valid during the call): for PAGE_DATA and
 * COMPRESSED_PAGES also the record's own pages (NULL for an entry without
 * data), else pages is NULL. The Xen translator (xen_translate.c)
 * forwards the pages from there. 0, or -1 with errno after restore_fail().
 */
typedef int restore_pages_fn(void *opaque, const struct stream_record *rec,
                             const uint64_t *pfns, const uint8_t *types,
                             const uint8_t *const *pages, uint32_t count);

/* Whether a page record's page of pfn must be written to the target
 * (restore.c asks before PAGE_DATA and COMPRESSED_PAGES are applied; the
 * pages hook still gets every page). */
typedef bool restore_keep_fn(void *opaque, uint64_t pfn);

struct xcc_restorer {
    int fd;
    xentoollog_logger *log;
    struct xcc_restore_params p;
    struct stream_reader *rd;
    struct stream_headers h;
    struct xcc_restore_stream_info info;
    bool begun, guest_info_seen;
    bool have_pending;           /* first record read by begin() */
    struct stream_record pending;
    struct stream_record gi_rec; /* GUEST_INFO's header (body not kept) */
    struct stream_order order;   /* record-order rules, as inspect's */
    struct xl_reader xl;         /* an xl image's framing (xl.present) */
    struct xrec_state xs;        /* Xen domain-state checks, as inspect's */

    xcc_domain *d;               /* set by run() */
    xcc_map_cache *mc;           /* writable */
    uint64_t nr_pfns;            /* the target's */
    uint64_t limit_pfns;         /* pfns must be below this */
    uint32_t page_size;
    uint32_t target_type;        /* XCC_DHDR_TYPE_* of the target */
    bool no_punch;               /* the target's mapping refused MADV_REMOVE */
    uint64_t *populated;         /* nr_pfns bits */
    uint64_t pages_applied;

    uint64_t *pfns;              /* scratch, scratch_cap long */
    uint8_t **pages;
    int *err;
    size_t scratch_cap;

    restore_pages_fn *pages_hook; /* NULL: none */
    restore_keep_fn *keep_page;   /* NULL: every page is written */
    void *hook_opaque;

    struct stats_restore st;
    char errmsg[512];
    char *json;
};

/* After the libxc stream's END: nothing may follow, except, in an xl
 * image, libxl's records up to its END. 0 or -1/errno, logged. */
int restore_read_tail(xcc_restorer *r);

/* Binds the target d: its size checked against the stream's, the
 * populated bitmap and a writable map cache made. 0 or -1/errno, logged.
 * (Shared with restore_checkpoint.c.) */
int restore_attach(xcc_restorer *r, xcc_domain *d);

/* Keeps the message in r->errmsg (xcc_restorer_error()) and logs it, as
 * the stream reader does for its own; sets errno = err and returns -1. */
#define restore_fail(r, e, ...)                                                \
    lib_fail((r)->log, "restore", (r)->errmsg, sizeof((r)->errmsg), (e),       \
             __VA_ARGS__)

/* Makes the pfns not yet populated exist in the target, once each,
 * gathering them in scratch (room for n; it may be pfns itself). 0, or -1
 * after restore_fail(). */
int restore_populate(xcc_restorer *r, const uint64_t *pfns, size_t n,
                     uint64_t *scratch);

/* The next record (validated framing). 0 or -1/errno, logged. */
int restore_next(xcc_restorer *r, struct stream_record *rec);

/* Starts the record-order rules (stream_order_check) in mode, counting the
 * GUEST_INFO begin() consumed; restore_order() then checks each record
 * restore_next() returns. 0 or -1/errno, logged. */
void restore_order_start(xcc_restorer *r, enum stream_order_mode mode);
int restore_order(xcc_restorer *r, const struct stream_record *rec);

/* Refuses the types of a page record (PAGE_DATA, ZERO_PAGES,
 * XBZRLE_PAGES) the target cannot hold (a sim target: anything but NORMAL
 * and XTAB). A Xen target takes them all: a memory-only restore leaves
 * the target's own page tables as they are (xen.c). 0, or -1 after
 * restore_fail(). */
int restore_check_pfn_types(xcc_restorer *r, const struct stream_record *rec,
                            const uint64_t *pfns, const uint8_t *types,
                            uint32_t count);
int restore_check_types(xcc_restorer *r, const struct stream_record *rec,
                        const struct stream_page_data *pd);

/* Makes a mapped target page zero without faulting it in where the
 * mapping allows (a hole punched in the sim guest's RAM file). */
void restore_zero_page(xcc_restorer *r, uint8_t *page);

/* Parses (checks) and applies one record onto r->d. END is not handled
 * here. 0, or -1 with errno after one logged message naming the record and
 * its offset. */
int restore_apply(xcc_restorer *r, const struct stream_record *rec);

#endif /* XCC_RESTORE_H */
