/*
 * stream_inspect.c - xcc_stream_inspect(): read a whole stream, validate
 * every record with the stream parsers and report each one to a callback.
 * The library prints nothing; `xc-colo inspect` does the printing.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress.h"
#include "stream.h"
#include "xen_pt.h"
#include "xen_records.h"

#define CTX "inspect"

static int record_kind(uint32_t type)
{
    switch (type) {
    case STREAM_REC_PAGE_DATA:
    case STREAM_REC_COMPRESSED_PAGES: /* whole pages, compressed */
        return XCC_INSPECT_KPAGE_DATA;
    case STREAM_REC_ZERO_PAGES:
        return XCC_INSPECT_KZERO_PAGES;
    case STREAM_REC_XBZRLE_PAGES:
        return XCC_INSPECT_KXBZRLE_PAGES;
    case STREAM_REC_DIGEST:
        return XCC_INSPECT_KDIGEST;
    case STREAM_REC_STATS:
        return XCC_INSPECT_KSTATS;
    case STREAM_REC_CHECKPOINT:
    case STREAM_REC_CHECKPOINT_DIRTY_PFN_LIST:
        return XCC_INSPECT_KCHECKPOINT;
    case STREAM_REC_END:
    case STREAM_REC_GUEST_INFO:
        return XCC_INSPECT_KOTHER;
    default:
        return type < STREAM_REC_XCC_BLOCK ? XCC_INSPECT_KXEN_OTHER
                                           : XCC_INSPECT_KOTHER;
    }
}

/*
 * The page-table check of x86 PV streams: a page table the stream carries
 * whole must be normalised (xen_pt.h): pfns below the guest's size, Xen's
 * slots zero, no superpage. The guest is taken as 64-bit (4 levels).
 */
struct pt_check {
    const struct xcc_inspect_totals *t;
    uint64_t checked;
};

static int check_pagetable(void *opaque, uint64_t pfn, unsigned type,
                           const uint8_t *page, char *msg, size_t msglen)
{
    struct pt_check *pc = opaque;
    const struct xen_pt_geom g = {.levels = 4};
    uint64_t nr = pc->t->nr_pfns ? pc->t->nr_pfns : STREAM_PFN_LIMIT;
    uint64_t table[XEN_PT_ENTRIES];
    struct xen_pt_fault f;

    (void)pfn;
    memcpy(table, page, sizeof(table)); /* little-endian, as x86 */
    if (xen_pt_check_normalised(table, xcc_pfn_type_level(type), &g, nr,
                                &f) < 0) {
        snprintf(msg, msglen, "page table entry %u (0x%016" PRIx64
                 ", frame 0x%" PRIx64 ") %s", f.slot, f.pte, f.frame,
                 xen_pt_fault_name(errno));
        return -1;
    }
    pc->checked++;
    return 0;
}

static void inspect_note_page(void *opaque, uint64_t pfn, unsigned type)
{
    xrec_note_page(opaque, pfn, type);
}

/* True for the records inspect checks from a streamed body. */
static bool streamed(uint32_t type)
{
    return type == STREAM_REC_PAGE_DATA || type == STREAM_REC_ZERO_PAGES ||
           type == STREAM_REC_CHECKPOINT_DIRTY_PFN_LIST;
}

/* Validates one record's body and fills the per-record counters; the
 * streamed kinds read their body here, the others have it read. */
static int inspect_body(xentoollog_logger *log, struct stream_reader *r,
                        const struct stream_record *rec,
                        const struct xcc_inspect_headers *h,
                        struct xcc_inspect_totals *t, bool *page_records_seen,
                        struct xcc_inspect_record *ir, struct xrec_state *xs,
                        char **fields)
{
    uint64_t nr = t->nr_pfns ? t->nr_pfns : STREAM_PFN_LIMIT;

    if (xrec_checked(rec->type)) {
        /* Xen's domain state and XL_CONFIG: validated and decoded. */
        char err[400];

        if (xrec_check(xs, rec->type, rec->body, rec->length, err,
                       sizeof(err), fields))
            return stream_rec_fail(r, rec, XCC_EBADSTREAM, "%s", err);
        ir->fields_json = *fields;
        return 0;
    }

    switch (rec->type) {
    case STREAM_REC_PAGE_DATA: {
        /* Streamed: the body is read in pieces, never held whole. */
        struct stream_page_counts pc;
        if (stream_check_page_data(r, rec, nr, &pc))
            return -1;
        for (unsigned i = 0; i < 16; i++)
            ir->by_type[i] = pc.by_type[i];
        ir->pages_data = pc.with_data;
        ir->pages_nodata = pc.count - pc.with_data;
        *page_records_seen = true;
        break;
    }
    case STREAM_REC_COMPRESSED_PAGES: {
        /* Decompressed (bounded) and checked as PAGE_DATA is. */
        struct stream_page_data pd;
        if (compress_parse_pages(r, rec, nr, h->page_size, &pd))
            return -1;
        ir->pages_data = pd.count;
        for (uint32_t i = 0; i < pd.count; i++)
            ir->by_type[pd.types[i] & 0xf]++;
        *page_records_seen = true;
        break;
    }
    case STREAM_REC_ZERO_PAGES: {
        uint32_t n, by_type[16] = {0};
        if (stream_check_pfn_list(r, rec, nr, &n, by_type))
            return -1;
        for (unsigned i = 0; i < 16; i++)
            ir->by_type[i] = by_type[i];
        ir->pages_zero = n;
        *page_records_seen = true;
        break;
    }
    case STREAM_REC_XBZRLE_PAGES: {
        struct stream_xbzrle_pages xp;
        if (stream_parse_xbzrle_pages(r, rec, nr, h->page_size, &xp))
            return -1;
        ir->pages_xbzrle = xp.count;
        for (uint32_t i = 0; i < xp.count; i++) {
            ir->xbzrle_bytes += xp.lens[i];
            ir->by_type[xp.types[i]]++;
        }
        *page_records_seen = true;
        break;
    }
    case STREAM_REC_CHECKPOINT_DIRTY_PFN_LIST: {
        uint32_t n;
        if (stream_check_pfn_list(r, rec, nr, &n, NULL))
            return -1;
        ir->pfns = n;
        break;
    }
    case STREAM_REC_GUEST_INFO: {
        struct stream_guest_info gi;
        /* Its place (first) was checked by stream_order_check. */
        if (stream_parse_guest_info(r, rec, &gi))
            return -1;
        ir->nr_pfns = gi.nr_pfns;
        ir->guest_flags = gi.flags;
        t->nr_pfns = gi.nr_pfns;
        xs->nr_pfns = gi.nr_pfns;
        break;
    }
    case STREAM_REC_DIGEST: {
        struct stream_digest dg;
        if (stream_parse_digest(r, rec, nr, &dg))
            return -1;
        ir->digest_chunks = dg.count;
        ir->digest_chunk_bytes = dg.chunk_bytes;
        ir->digest = dg.whole;
        break;
    }
    case STREAM_REC_CACHE_BASES: {
        /* Also followed: later XBZRLE_PAGES entries need a base. */
        struct stream_cache_bases cb;
        if (stream_parse_cache_bases(r, rec, nr, &cb))
            return -1;
        ir->bases_dropped = cb.n_dropped;
        ir->bases_kept = cb.n_kept;
        break;
    }
    case STREAM_REC_STATS:
        ir->text = (const char *)rec->body;
        ir->text_len = rec->length;
        break;
    default:
        /* Xen's own records and optional ones: named and skipped (an
         * unknown mandatory type was refused by stream_order_check). */
        break;
    }
    return 0;
}

int xcc_stream_inspect(int fd, xentoollog_logger *log, unsigned flags,
                       xcc_inspect_fn *cb, void *opaque,
                       struct xcc_inspect_totals *totals)
{
    struct xcc_inspect_totals local;
    struct xcc_inspect_totals *t = totals ? totals : &local;

    memset(t, 0, sizeof(*t));
    if (flags) {
        snprintf(t->error, sizeof(t->error), "unknown flags 0x%x", flags);
        XCC_ERR(log, CTX, "%s", t->error);
        errno = EINVAL;
        return -1;
    }
    return stream_inspect_at(fd, log, NULL, 0, 0, false, cb, opaque, t);
}

int stream_inspect_at(int fd, xentoollog_logger *log, const uint8_t *prefix,
                      size_t prefix_len, uint64_t offset, bool wrapped,
                      xcc_inspect_fn *cb, void *opaque,
                      struct xcc_inspect_totals *t)
{
    struct xcc_inspect_headers *h = &t->headers;
    struct stream_reader *r;
    struct stream_headers sh;
    bool page_records_seen = false;
    struct stream_order order;
    struct pt_check ptc = {.t = t};
    struct xrec_state xs;
    int rc = -1, saved;

    stream_order_init(&order, STREAM_ORDER_ANY);
    r = stream_reader_new(fd, log);
    if (!r) {
        snprintf(t->error, sizeof(t->error), "out of memory");
        return -1;
    }
    xrec_state_init(&xs, 0, 0);
    stream_reader_set_offset(r, offset);
    if (stream_read_headers_prefixed(r, prefix, prefix_len, &sh))
        goto out;
    xrec_state_init(&xs, sh.dhdr_type, 0);
    stream_reader_set_type_hook(r, inspect_note_page, &xs);
    h->version = sh.version;
    h->options = sh.options;
    h->domain_type = sh.dhdr_type;
    h->domain_name = sh.dhdr_type == XCC_DHDR_TYPE_X86_PV    ? "x86 PV"
                     : sh.dhdr_type == XCC_DHDR_TYPE_X86_HVM ? "x86 HVM"
                                                             : "sim";
    h->page_shift = sh.page_shift;
    h->page_size = sh.page_size;
    h->xen_major = sh.xen_major;
    h->xen_minor = sh.xen_minor;
    if (sh.dhdr_type == XCC_DHDR_TYPE_X86_PV)
        stream_reader_set_page_check(r, check_pagetable, &ptc);
    t->bytes = stream_reader_offset(r);
    if (cb && cb(opaque, h, NULL)) {
        errno = ECANCELED;
        goto out;
    }
    for (;;) {
        struct stream_record rec;
        struct xcc_inspect_record ir;
        uint64_t checked0 = ptc.checked;
        char *fields = NULL;
        int kind;

        if (stream_read_record_head(r, &rec))
            goto out;
        memset(&ir, 0, sizeof(ir));
        ir.offset = rec.offset;
        ir.type = rec.type;
        ir.length = rec.length;
        ir.name = stream_record_name(rec.type);
        ir.optional = !!(rec.type & STREAM_REC_OPTIONAL);
        ir.known = stream_record_known(rec.type);
        /* The same record-order rules as restore's. */
        if (stream_order_check(r, &order, &rec) ||
            (!streamed(rec.type) && stream_read_record_body(r, &rec)) ||
            inspect_body(log, r, &rec, h, t, &page_records_seen, &ir, &xs,
                         &fields)) {
            free(fields);
            goto out;
        }
        ir.pagetables_checked = ptc.checked - checked0;
        kind = record_kind(rec.type);
        t->bytes = stream_reader_offset(r);
        t->records++;
        t->record_count[kind]++;
        t->record_bytes[kind] += stream_reader_offset(r) - rec.offset;
        t->pages_data += ir.pages_data;
        t->pages_nodata += ir.pages_nodata;
        t->pages_zero += ir.pages_zero;
        t->pages_xbzrle += ir.pages_xbzrle;
        t->xbzrle_bytes += ir.xbzrle_bytes;
        t->dirty_pfns += ir.pfns;
        t->checkpoints += rec.type == STREAM_REC_CHECKPOINT;
        if (rec.type == STREAM_REC_END)
            t->end_seen = 1;
        if (cb && cb(opaque, h, &ir)) {
            free(fields);
            errno = ECANCELED;
            goto out;
        }
        free(fields);
        if (rec.type == STREAM_REC_END)
            break;
        if (wrapped && rec.type == STREAM_REC_CHECKPOINT) {
            /* libxl interleaves its own records after each checkpoint. */
            snprintf(t->error, sizeof(t->error), "CHECKPOINT record (type "
                     "0x%08x) at offset %" PRIu64 ": a checkpointed (Remus/"
                     "COLO) stream inside an xl image, which xc-colo does not "
                     "read", STREAM_REC_CHECKPOINT, rec.offset);
            XCC_ERR(log, CTX, "%s", t->error);
            errno = XCC_EBADSTREAM;
            goto out;
        }
    }
    /* In an xl image libxl's records follow: the caller reads them. */
    if (!wrapped && stream_read_expect_eof(r))
        goto out;
    rc = 0;
out:
    saved = errno;
    if (rc && !t->error[0])
        snprintf(t->error, sizeof(t->error), "%s", stream_reader_error(r));
    if (rc && !t->error[0])
        snprintf(t->error, sizeof(t->error), "%s", xcc_strerror(saved));
    stream_reader_free(r);
    xrec_state_free(&xs);
    errno = saved;
    return rc;
}
