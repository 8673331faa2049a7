/*
 * restore.c - reads a stream and rebuilds the guest's memory.
 *
 * The loop reads one record at a time (stream_read_record validates the
 * framing), has the body parsed and checked whole (stream_parse_*: counts,
 * lengths, pfns against the target's size, XBZRLE run grammar) and only
 * then applies it: PAGE_DATA is copied, ZERO_PAGES zero-filled and
 * XBZRLE_PAGES decoded onto the page the target holds, which is the page
 * the sender's cache mirrored. Target pages are reached through a writable
 * map cache. Nothing from the stream is used before it is checked
 * (DESIGN.md, invariant 3).
 *
 * Reading (restore_next) and applying (restore_apply) are separate steps,
 * so checkpoint mode can hold the parsed records of an epoch back and apply
 * them at its CHECKPOINT (invariant 2).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "compress.h"
#include "restore.h"
#include "digest.h"

#define CTX "restore"

/* Records between progress reports. */
#define PROGRESS_EVERY_RECORDS 256u

void xcc_restore_params_init(struct xcc_restore_params *p)
{
    memset(p, 0, sizeof(*p));
    p->size = sizeof(*p);
    p->verify = 1;
    p->progress = 1;
}

xcc_restorer *xcc_restorer_new(int fd, const struct xcc_restore_params *p,
                               xentoollog_logger *log)
{
    xcc_restorer *r;

    if (!log)
        log = lib_default_logger();
    if (fd < 0) {
        errno = EINVAL;
        return NULL;
    }
    if (p && !LIB_PARAMS_SIZE_OK(log, CTX, xcc_restore_params, p))
        return NULL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->fd = fd;
    r->log = log;
    if (p)
        r->p = *p;
    else
        xcc_restore_params_init(&r->p);
    xl_reader_init(&r->xl, fd, log);
    r->rd = stream_reader_new(fd, log);
    if (!r->rd) {
        free(r);
        errno = ENOMEM;
        return NULL;
    }
    r->st.status = "setup";
    return r;
}

void xcc_restorer_free(xcc_restorer *r)
{
    if (!r)
        return;
    xcc_map_cache_free(r->mc);
    stream_reader_free(r->rd);
    xl_reader_release(&r->xl);
    xrec_state_free(&r->xs);
    free(r->populated);
    free(r->pfns);
    free(r->pages);
    free(r->err);
    free(r->json);
    free(r);
}

const char *xcc_restorer_error(const xcc_restorer *r)
{
    if (r->errmsg[0])
        return r->errmsg;
    return stream_reader_error(r->rd);
}

int restore_next(xcc_restorer *r, struct stream_record *rec)
{
    if (r->have_pending) {
        *rec = r->pending;
        r->have_pending = false;
        return 0;
    }
    if (stream_read_record(r->rd, rec) < 0)
        return -1;
    r->st.records++;
    return 0;
}

/* The xl reader logged its error: keep it for xcc_restorer_error(). */
static int xl_failed(xcc_restorer *r)
{
    int e = errno;

    snprintf(r->errmsg, sizeof(r->errmsg), "%s", r->xl.err);
    errno = e;
    return -1;
}

/*
 * The stream's headers; an xl image (stock `xl save`, or --xen-compat of a
 * Xen domain) is recognised by its first bytes and its framing read and
 * checked first. Its config is not used: the target exists already (a sim
 * guest, or a domain made by `xl create -p`); restoring a running Xen
 * domain from it is the Xen receiver's job (DESIGN.md).
 */
static int restore_read_headers(xcc_restorer *r)
{
    uint8_t prefix[XL_MAGIC_LEN];
    size_t n;

    if (xl_read_prologue(&r->xl, prefix, &n, NULL, NULL) < 0)
        return xl_failed(r);
    stream_reader_set_offset(r->rd, r->xl.offset);
    return stream_read_headers_prefixed(r->rd, prefix, n, &r->h);
}

int restore_read_tail(xcc_restorer *r)
{
    if (!r->xl.present)
        return stream_read_expect_eof(r->rd);
    if (xl_read_epilogue(&r->xl, stream_reader_offset(r->rd), NULL, NULL) < 0)
        return xl_failed(r);
    return 0;
}

static void restore_note_page(void *opaque, uint64_t pfn, unsigned type)
{
    xrec_note_page(opaque, pfn, type);
}

int xcc_restorer_begin(xcc_restorer *r, struct xcc_restore_stream_info *info)
{
    struct stream_record rec;

    if (!r->begun) {
        r->st.t_start = lib_now_ns();
        if (restore_read_headers(r) < 0)
            return -1;
        xrec_state_init(&r->xs, r->h.dhdr_type, 0);
        stream_reader_set_type_hook(r->rd, restore_note_page, &r->xs);
        r->info.domain_type = r->h.dhdr_type;
        r->info.page_size = r->h.page_size;
        r->info.version = r->h.version;
        if (restore_next(r, &rec) < 0)
            return -1;
        if (rec.type == STREAM_REC_GUEST_INFO) {
            struct stream_guest_info gi;
            if (stream_parse_guest_info(r->rd, &rec, &gi) < 0)
                return -1;
            r->info.nr_pfns = gi.nr_pfns;
            r->xs.nr_pfns = gi.nr_pfns;
            r->guest_info_seen = true;
            r->gi_rec = rec;
            r->gi_rec.body = NULL;
        } else {
            /* Its body stays valid: nothing is read before it is used. */
            r->pending = rec;
            r->have_pending = true;
        }
        r->begun = true;
    }
    if (info)
        *info = r->info;
    return 0;
}

void restore_order_start(xcc_restorer *r, enum stream_order_mode mode)
{
    stream_order_init(&r->order, mode);
    /* begin() consumed it: its place counts. */
    if (r->guest_info_seen)
        (void)stream_order_check(r->rd, &r->order, &r->gi_rec);
}

int restore_order(xcc_restorer *r, const struct stream_record *rec)
{
    return stream_order_check(r->rd, &r->order, rec);
}

int restore_check_pfn_types(xcc_restorer *r, const struct stream_record *rec,
                            const uint64_t *pfns, const uint8_t *types,
                            uint32_t count)
{
    if (r->target_type != XCC_DHDR_TYPE_SIM)
        return 0;
    for (uint32_t i = 0; i < count; i++)
        if (!stream_pfn_type_sim_ok(types[i]))
            return restore_fail(r, XCC_EBADSTREAM,
                    "%s record at offset %" PRIu64 ": pfn %#" PRIx64
                    " (entry %" PRIu32 ") has type 0x%x (%s), which the sim "
                    "target '%s' cannot hold", stream_record_name(rec->type),
                    rec->offset, pfns[i], i, types[i],
                    stream_pfn_type_name(types[i]), r->d->name);
    return 0;
}

int restore_check_types(xcc_restorer *r, const struct stream_record *rec,
                        const struct stream_page_data *pd)
{
    return restore_check_pfn_types(r, rec, pd->pfns, pd->types, pd->count);
}

/*
 * Reading a hole of a tmpfs file through a shared mapping allocates it, so
 * "read, then clear if not zero" would fill /dev/shm with zero pages.
 * MADV_REMOVE punches the page out of the sim guest's RAM file instead
 * (fallocate PUNCH_HOLE): it then reads as zeros and costs nothing, and
 * nothing is faulted in. A mapping that refuses it (Xen's foreign mappings)
 * falls back, once and for all, to reading.
 */
void restore_zero_page(xcc_restorer *r, uint8_t *page)
{
    if (!r->no_punch) {
        if (madvise(page, r->page_size, MADV_REMOVE) == 0)
            return;
        XCC_DBG(r->log, CTX, "the target's mapping cannot punch holes (%s): "
                "zero pages are read and cleared", strerror(errno));
        r->no_punch = true;
    }
    if (!lib_page_is_zero(page, r->page_size))
        memset(page, 0, r->page_size);
}

static int grow_scratch(xcc_restorer *r, size_t n)
{
    if (n <= r->scratch_cap)
        return 0;
    uint64_t *pfns = realloc(r->pfns, n * sizeof(*pfns));
    if (pfns)
        r->pfns = pfns;
    uint8_t **pages = realloc(r->pages, n * sizeof(*pages));
    if (pages)
        r->pages = pages;
    int *err = realloc(r->err, n * sizeof(*err));
    if (err)
        r->err = err;
    if (!pfns || !pages || !err)
        return restore_fail(r, ENOMEM, "cannot allocate room for %zu pages", n);
    r->scratch_cap = n;
    return 0;
}

int restore_populate(xcc_restorer *r, const uint64_t *pfns, size_t n,
                     uint64_t *scratch)
{
    size_t k = 0;

    if (!r->d->ops->populate)
        return 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t pfn = pfns[i];
        uint64_t bit = 1ull << (pfn % 64);
        if (!(r->populated[pfn / 64] & bit)) {
            r->populated[pfn / 64] |= bit;
            scratch[k++] = pfn;
        }
    }
    if (k && r->d->ops->populate(r->d, scratch, k) < 0)
        return restore_fail(r, errno, "cannot populate %zu pfns of '%s' from "
                            "pfn %#" PRIx64 ": %s", k, r->d->name, scratch[0],
                            xcc_strerror(errno));
    r->st.populated += k;
    return 0;
}

/* Makes the pfns exist in the target (once each), in r's scratch. */
static int populate(xcc_restorer *r, const uint64_t *pfns, size_t n)
{
    if (r->d->ops->populate && grow_scratch(r, n) < 0)
        return -1;
    return restore_populate(r, pfns, n, r->pfns);
}

/*
 * Maps pfns[0..n) writable, in slices, calling apply(i, page) for each.
 * The map cache resolves a prefix at a time; pointers are good until the
 * next lookup.
 */
typedef int apply_fn(xcc_restorer *r, const struct stream_record *rec,
                     size_t i, uint8_t *page, const void *arg);

static int map_and_apply(xcc_restorer *r, const struct stream_record *rec,
                         const uint64_t *pfns, size_t n, apply_fn *fn,
                         const void *arg)
{
    size_t done = 0;

    if (grow_scratch(r, n) < 0)
        return -1;
    while (done < n) {
        int64_t k = xcc_map_cache_lookup(r->mc, pfns + done, n - done,
                                         r->pages, r->err);
        if (k <= 0)
            return restore_fail(r, errno ? errno : EIO,
                        "%s record at offset %" PRIu64 ": cannot map pfn %#"
                        PRIx64 " of '%s': %s", stream_record_name(rec->type),
                        rec->offset, pfns[done], r->d->name,
                        xcc_strerror(errno));
        for (size_t j = 0; j < (size_t)k; j++) {
            if (r->err[j] || !r->pages[j])
                return restore_fail(r, r->err[j] ? -r->err[j] : EIO,
                            "%s record at offset %" PRIu64 ": pfn %#" PRIx64
                            " of '%s' cannot be mapped: %s",
                            stream_record_name(rec->type), rec->offset,
                            pfns[done + j], r->d->name,
                            xcc_strerror(r->err[j] ? -r->err[j] : EIO));
            if (fn(r, rec, done + j, r->pages[j], arg) < 0)
                return -1;
        }
        done += (size_t)k;
    }
    xcc_map_cache_release(r->mc);
    return 0;
}

static int apply_copy(xcc_restorer *r, const struct stream_record *rec,
                      size_t i, uint8_t *page, const void *arg)
{
    const uint8_t *const *src = arg;

    memcpy(page, src[i], r->page_size);
    return 0;
}

static int apply_zero(xcc_restorer *r, const struct stream_record *rec,
                      size_t i, uint8_t *page, const void *arg)
{
    restore_zero_page(r, page);
    return 0;
}

static int apply_delta(xcc_restorer *r, const struct stream_record *rec,
                       size_t i, uint8_t *page, const void *arg)
{
    const struct stream_xbzrle_pages *x = arg;

    if (xcc_xbzrle_decode(x->deltas[i], x->lens[i], page, r->page_size) < 0)
        return restore_fail(r, XCC_EBADSTREAM,
                    "XBZRLE_PAGES record at offset %" PRIu64 ": the delta of "
                    "pfn %#" PRIx64 " (entry %zu, %" PRIu32 " bytes) does not "
                    "decode", rec->offset, x->pfns[i], i, x->lens[i]);
    return 0;
}

static int handle_page_data(xcc_restorer *r, const struct stream_record *rec)
{
    struct stream_page_data pd;
    const uint8_t **src;
    size_t n = 0;

    if (compress_parse_pages(r->rd, rec, r->limit_pfns, r->page_size, &pd) < 0 ||
        restore_check_types(r, rec, &pd) < 0)
        return -1;
    if (grow_scratch(r, pd.count) < 0)
        return -1;
    /* Pfns with data first, compacted in place of the parsed arrays'
     * copies (pd's arrays belong to the reader). */
    src = malloc((pd.count ? pd.count : 1) * sizeof(*src));
    uint64_t *data_pfns = malloc((pd.count ? pd.count : 1) * sizeof(uint64_t));
    uint64_t *alloc_pfns = malloc((pd.count ? pd.count : 1) * sizeof(uint64_t));
    size_t nalloc = 0, forwarded = 0;
    int rc = -1;

    if (!src || !data_pfns || !alloc_pfns) {
        restore_fail(r, ENOMEM, "cannot allocate room for %" PRIu32 " pages", pd.count);
        goto out;
    }
    for (size_t i = 0; i < pd.count; i++) {
        unsigned t = pd.types[i];
        if (pd.pages[i]) {
            alloc_pfns[nalloc++] = pd.pfns[i];
            if (r->keep_page && !r->keep_page(r->hook_opaque, pd.pfns[i])) {
                forwarded++; /* by the pages hook only: not kept here */
                continue;
            }
            data_pfns[n] = pd.pfns[i];
            src[n] = pd.pages[i];
            n++;
        } else if (t == XCC_PFN_XALLOC) {
            alloc_pfns[nalloc++] = pd.pfns[i];
        } else {
            r->st.nodata++;
        }
    }
    if (populate(r, alloc_pfns, nalloc) < 0)
        goto out;
    if (map_and_apply(r, rec, data_pfns, n, apply_copy, src) < 0)
        goto out;
    if (r->pages_hook &&
        r->pages_hook(r->hook_opaque, rec, pd.pfns, pd.types,
                      (const uint8_t *const *)pd.pages, pd.count) < 0)
        goto out;
    r->st.normal += n + forwarded;
    r->pages_applied += n + forwarded;
    rc = 0;
out:
    free(src);
    free(data_pfns);
    free(alloc_pfns);
    return rc;
}

static int handle_zero_pages(xcc_restorer *r, const struct stream_record *rec)
{
    struct stream_pfn_list zl;

    if (stream_parse_zero_pages(r->rd, rec, r->limit_pfns, &zl) < 0 ||
        restore_check_pfn_types(r, rec, zl.pfns, zl.types, zl.count) < 0)
        return -1;
    if (populate(r, zl.pfns, zl.count) < 0)
        return -1;
    /* populate() used the scratch pfns; zl.pfns belong to the reader. */
    if (map_and_apply(r, rec, zl.pfns, zl.count, apply_zero, NULL) < 0)
        return -1;
    if (r->pages_hook &&
        r->pages_hook(r->hook_opaque, rec, zl.pfns, zl.types, NULL,
                      zl.count) < 0)
        return -1;
    r->st.zero += zl.count;
    r->pages_applied += zl.count;
    return 0;
}

static int handle_xbzrle_pages(xcc_restorer *r, const struct stream_record *rec)
{
    struct stream_xbzrle_pages x;

    if (stream_parse_xbzrle_pages(r->rd, rec, r->limit_pfns, r->page_size,
                                  &x) < 0 ||
        restore_check_pfn_types(r, rec, x.pfns, x.types, x.count) < 0)
        return -1;
    if (populate(r, x.pfns, x.count) < 0)
        return -1;
    if (map_and_apply(r, rec, x.pfns, x.count, apply_delta, &x) < 0)
        return -1;
    if (r->pages_hook &&
        r->pages_hook(r->hook_opaque, rec, x.pfns, x.types, NULL,
                      x.count) < 0)
        return -1;
    r->st.xbzrle += x.count;
    for (size_t i = 0; i < x.count; i++)
        r->st.xbzrle_bytes += x.lens[i];
    r->pages_applied += x.count;
    return 0;
}

static int handle_digest(xcc_restorer *r, const struct stream_record *rec)
{
    struct stream_digest dg;
    uint8_t whole[16], *mine = NULL;
    const uint64_t stream_pfns = r->guest_info_seen ? r->info.nr_pfns
                                                    : r->nr_pfns;
    const uint64_t nchunks = digest_nchunks(r->nr_pfns, r->page_size);
    const uint64_t per = XCC_DIGEST_CHUNK / r->page_size;
    int rc = -1;

    if (stream_parse_digest(r->rd, rec, stream_pfns, &dg) < 0)
        return -1;
    if (!r->p.verify)
        return 0;
    if (dg.chunk_bytes != XCC_DIGEST_CHUNK)
        return restore_fail(r, XCC_EBADSTREAM, "DIGEST record at offset %" PRIu64
                    ": chunks of %" PRIu32 " bytes, this restorer checks %u",
                    rec->offset, dg.chunk_bytes, XCC_DIGEST_CHUNK);
    if (dg.count > nchunks)
        return restore_fail(r, XCC_EBADSTREAM, "DIGEST record at offset %" PRIu64
                    ": %" PRIu32 " chunks, more than the target's %" PRIu64,
                    rec->offset, dg.count, nchunks);
    mine = malloc(16 * ((size_t)nchunks + 1));
    if (!mine)
        return restore_fail(r, ENOMEM, "cannot allocate %" PRIu64 " digests", nchunks);
    if (digest_chunks(r->d, r->mc, dg.flags, NULL, mine) < 0) {
        restore_fail(r, errno, "DIGEST record at offset %" PRIu64 ": cannot digest "
             "'%s': %s", rec->offset, r->d->name, xcc_strerror(errno));
        goto out;
    }
    for (uint32_t i = 0; i < dg.count; i++) {
        if (memcmp(mine + 16 * (size_t)i, dg.chunks + 16 * (size_t)i, 16)) {
            uint64_t last = (uint64_t)(i + 1) * per - 1;
            if (last >= r->nr_pfns)
                last = r->nr_pfns - 1;
            restore_fail(r, XCC_EDIGEST,
                 "DIGEST record at offset %" PRIu64 ": chunk %" PRIu32
                 " (pfns %#" PRIx64 "..%#" PRIx64 ") of '%s' differs from the "
                 "sender's", rec->offset, i, (uint64_t)i * per, last,
                 r->d->name);
            goto out;
        }
    }
    /* The whole digest covers the guest: comparable when the target is
     * exactly the stream's size. */
    digest_whole(mine, dg.count, whole);
    if (memcmp(whole, dg.whole, 16)) {
        restore_fail(r, XCC_EDIGEST, "DIGEST record at offset %" PRIu64 ": the "
             "whole-memory digest differs from the sender's although every "
             "chunk matches", rec->offset);
        goto out;
    }
    r->st.digest_chunks += dg.count;
    XCC_INFO(r->log, CTX, "DIGEST: %" PRIu32 " chunks match", dg.count);
    rc = 0;
out:
    free(mine);
    return rc;
}

int restore_apply(xcc_restorer *r, const struct stream_record *rec)
{
    switch (rec->type) {
    case STREAM_REC_PAGE_DATA:
    case STREAM_REC_COMPRESSED_PAGES:
        return handle_page_data(r, rec);
    case STREAM_REC_ZERO_PAGES:
        return handle_zero_pages(r, rec);
    case STREAM_REC_XBZRLE_PAGES:
        return handle_xbzrle_pages(r, rec);
    case STREAM_REC_DIGEST:
        return handle_digest(r, rec);
    case STREAM_REC_CACHE_BASES: {
        /* The target holds every page anyway: checked (the reader then
         * checks each XBZRLE_PAGES entry against it), nothing to apply. */
        struct stream_cache_bases cb;
        return stream_parse_cache_bases(r->rd, rec, r->limit_pfns, &cb);
    }
    case STREAM_REC_GUEST_INFO:
    case STREAM_REC_CHECKPOINT:
    case STREAM_REC_CHECKPOINT_DIRTY_PFN_LIST:
        /* Placed by the loops after restore_order(): never applied here. */
        return restore_fail(r, EINVAL, "internal: %s record at offset %"
                    PRIu64 " handed to restore_apply",
                    stream_record_name(rec->type), rec->offset);
    default:
        /* STATS, STATIC_DATA_END, VERIFY and Xen's CPU/device state:
         * xc-colo restores memory only. restore_order() refused unknown
         * mandatory types already. The PV state and XL_CONFIG are checked
         * as inspect checks them (a bad one fails the restore), then
         * skipped. */
        if (xrec_checked(rec->type)) {
            char err[400];

            if (xrec_check(&r->xs, rec->type, rec->body, rec->length, err,
                           sizeof(err), NULL))
                return stream_rec_fail(r->rd, rec, XCC_EBADSTREAM, "%s",
                                       err);
        }
        XCC_DBG(r->log, CTX, "skipping %s record at offset %" PRIu64,
                stream_record_name(rec->type), rec->offset);
        return 0;
    }
}

int restore_attach(xcc_restorer *r, xcc_domain *d)
{
    struct xcc_domain_info info;
    struct xcc_map_cache_params mp = {
        .size = sizeof(struct xcc_map_cache_params),
        .writable = 1,
        .per_batch = r->p.no_map_cache ? 1 : 0,
    };

    if (d->ops->info(d, &info) < 0)
        return restore_fail(r, errno, "cannot read the size of '%s': %s", d->name,
                    xcc_strerror(errno));
    if (info.page_size != r->h.page_size)
        return restore_fail(r, EINVAL, "'%s' has %" PRIu32 "-byte pages, the stream %"
                    PRIu32, d->name, info.page_size, r->h.page_size);
    if (r->guest_info_seen && info.nr_pfns < r->info.nr_pfns)
        return restore_fail(r, EINVAL, "'%s' has %" PRIu64 " pages, the stream's guest %"
                    PRIu64, d->name, info.nr_pfns, r->info.nr_pfns);
    r->d = d;
    r->target_type = info.stream_type;
    r->nr_pfns = info.nr_pfns;
    r->page_size = info.page_size;
    /* Pfns beyond the stream's guest are as bad as pfns beyond the target. */
    r->limit_pfns = r->guest_info_seen ? r->info.nr_pfns : info.nr_pfns;
    r->populated = calloc(XCC_DIV_ROUND_UP(info.nr_pfns, 64), sizeof(uint64_t));
    if (!r->populated)
        return restore_fail(r, ENOMEM, "cannot allocate a bitmap of %" PRIu64 " pfns",
                    info.nr_pfns);
    r->mc = xcc_map_cache_new(d, &mp);
    if (!r->mc)
        return restore_fail(r, errno, "cannot create a map cache over '%s': %s",
                    d->name, xcc_strerror(errno));
    r->st.nr_pfns = info.nr_pfns;
    r->st.page_size = info.page_size;
    return 0;
}

int xcc_restorer_run(xcc_restorer *r, xcc_domain *d)
{
    struct stream_record rec;
    uint64_t since_progress = 0;
    int rc = -1;

    if (!r || !d) {
        errno = EINVAL;
        return -1;
    }
    if (r->d) {
        return restore_fail(r, EINVAL, "a restorer runs once");
    }
    r->st.status = "active";
    if (xcc_restorer_begin(r, NULL) < 0 || restore_attach(r, d) < 0)
        goto out;
    restore_order_start(r, STREAM_ORDER_PLAIN);
    for (;;) {
        if (restore_next(r, &rec) < 0 || restore_order(r, &rec) < 0)
            goto out;
        if (rec.type == STREAM_REC_END) {
            if (restore_read_tail(r) < 0)
                goto out;
            break;
        }
        if (restore_apply(r, &rec) < 0)
            goto out;
        if (r->p.progress && ++since_progress == PROGRESS_EVERY_RECORDS) {
            since_progress = 0;
            xtl_progress(r->log, CTX, "pages",
                         r->pages_applied < r->nr_pfns ? r->pages_applied
                                                       : r->nr_pfns,
                         r->nr_pfns);
        }
    }
    if (r->p.progress)
        xtl_progress(r->log, CTX, "pages", r->nr_pfns, r->nr_pfns);
    rc = 0;
out:
    if (rc < 0 && !errno)
        errno = EIO;
    int saved = errno;
    r->st.t_end = lib_now_ns();
    r->st.bytes = r->xl.libxc_done ? r->xl.offset
                                   : stream_reader_offset(r->rd);
    r->st.status = rc == 0 ? "completed" : "failed";
    errno = saved;
    return rc;
}

const char *xcc_restorer_stats_json(xcc_restorer *r)
{
    free(r->json);
    if (r->mc)
        xcc_map_cache_get_stats(r->mc, &r->st.mc);
    r->json = stats_restore_json(&r->st);
    return r->json;
}
