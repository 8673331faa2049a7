/*
 * xen_translate.c - an xc-colo stream (or a stock xl image) into the stock
 * libxl v2 stream that libxl_domain_create_restore reads: the receiving
 * half of a restore into a new Xen domain (issue 15, DESIGN.md "Xen: from a
 * memory image to a running domain").
 *
 * The restorer (restore.c) reads and checks every record exactly as
 * `restore` and `inspect` do, and applies the pages to the decode copy: a
 * memfd of the guest's size, the "domain" of the copy backend below. Its
 * pages hook then forwards each page record's entries as PAGE_DATA batches
 * of at most XEN_TRANSLATE_BATCH pfns, read back from the copy: ZERO_PAGES,
 * XBZRLE_PAGES and COMPRESSED_PAGES leave here as whole pages, with their
 * page types. Xen's own records (the PV state) are forwarded unchanged
 * after the restorer's checks; xc-colo's own (GUEST_INFO, XL_CONFIG,
 * DIGEST, STATS) are used or dropped, never forwarded: the output writer's
 * filter refuses them. DIGEST is checked against the copy.
 *
 * A stream without GUEST_INFO (a stock `xl save` image, or --xen-compat)
 * carries PAGE_DATA only: it goes through without a copy.
 *
 * The copy costs dom0 memory, as shmem. A stream that announces its XBZRLE
 * cache (GUEST_INFO flag CACHE_BASES, stream format 3) makes it sparse:
 * once a page record is forwarded, the copy of every pfn in it that has no
 * base (stream.h: "Cache bases") is punched out of the memfd, and so is a
 * pfn CACHE_BASES drops; what stays is what the sender's cache holds, at
 * most its size, plus one record in flight. ZERO_PAGES leave from a zero
 * page, so holes are never faulted in. A sparse copy cannot check a DIGEST
 * (it lacks the memory the digest describes): the record is validated, not
 * compared, and the stats say so ("digest-not-checked"). Without the flag
 * the copy keeps every page the stream sent, and DIGEST is checked against
 * it. Sizes are in the stats: "decode-copy-bytes" at the end and
 * "decode-copy-peak-bytes", beside "guest-bytes".
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "compress.h"
#include "restore.h"
#include "stats.h"
#include "stream.h"
#include "test_hooks.h"
#include "xl_format.h"

#define CTX "xen-translate"

/* libxenguest's MAX_BATCH_SIZE: it refuses a larger PAGE_DATA. */
#define XEN_TRANSLATE_BATCH 1024u

/* ---- The copy backend: the decode copy as a domain ------------------------ */

struct copy_dom {
    int fd;          /* memfd, nr_pfns pages */
    uint8_t *base;   /* all of it, shared, writable */
    uint8_t *types;  /* last type the stream gave each pfn */
    uint64_t nr_pfns;
    uint32_t psz;
    uint32_t stream_type;
};

static struct copy_dom *copy_priv(xcc_domain *d)
{
    return d->priv;
}

static int copy_info(xcc_domain *d, struct xcc_domain_info *info)
{
    struct copy_dom *c = copy_priv(d);

    memset(info, 0, sizeof(*info));
    info->nr_pfns = c->nr_pfns;
    info->page_size = c->psz;
    info->stream_type = c->stream_type;
    return 0;
}

static int copy_pfn_types(xcc_domain *d, const uint64_t *pfns, uint8_t *types,
                          size_t n)
{
    struct copy_dom *c = copy_priv(d);

    for (size_t i = 0; i < n; i++) {
        if (pfns[i] >= c->nr_pfns) {
            errno = EINVAL;
            return -1;
        }
        types[i] = c->types[pfns[i]];
    }
    return 0;
}

/* A run of consecutive pfns is a slice of the whole mapping; anything else
 * gets a region of its own (domain_map_fd_pages). */
static void *copy_map(xcc_domain *d, bool writable, const uint64_t *pfns,
                      int *err, size_t n)
{
    struct copy_dom *c = copy_priv(d);
    bool one_run = true;

    if (n == 0) {
        errno = EINVAL;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        err[i] = pfns[i] < c->nr_pfns ? 0 : -EINVAL;
        if (err[i] || pfns[i] != pfns[0] + i)
            one_run = false;
    }
    if (one_run)
        return c->base + pfns[0] * c->psz;
    return domain_map_fd_pages(c->fd, c->psz, PROT_READ | PROT_WRITE, pfns,
                               err, n);
}

static int copy_unmap(xcc_domain *d, void *addr, size_t n)
{
    struct copy_dom *c = copy_priv(d);
    uint8_t *p = addr;

    if (p >= c->base && p < c->base + c->nr_pfns * c->psz)
        return 0; /* a slice of the whole mapping */
    return munmap(addr, n * c->psz);
}

static int copy_populate(xcc_domain *d, const uint64_t *pfns, size_t n)
{
    return 0; /* the memfd holds every pfn, as zeros until written */
}

static void copy_close(xcc_domain *d)
{
    struct copy_dom *c = copy_priv(d);

    if (!c)
        return;
    if (c->base)
        munmap(c->base, c->nr_pfns * c->psz);
    if (c->fd >= 0)
        close(c->fd);
    if (c->types)
        munmap(c->types, c->nr_pfns);
    free(c);
    d->priv = NULL;
}

static const struct xcc_domain_ops copy_ops = {
    .kind = "decode-copy",
    .info = copy_info,
    .pfn_types = copy_pfn_types,
    .map = copy_map,
    .unmap = copy_unmap,
    .populate = copy_populate,
    .close = copy_close,
};

static int copy_open(xcc_domain *d, uint64_t nr_pfns, uint32_t psz,
                     uint32_t stream_type, xentoollog_logger *log)
{
    struct copy_dom *c = calloc(1, sizeof(*c));
    size_t bytes = (size_t)(nr_pfns * psz);

    memset(d, 0, sizeof(*d));
    d->ops = &copy_ops;
    d->log = log;
    d->name = (char *)"the decode copy";
    d->lock_fd = -1;
    if (!c)
        return -1;
    d->priv = c;
    c->fd = -1;
    c->nr_pfns = nr_pfns;
    c->psz = psz;
    c->stream_type = stream_type;
    /* One type byte a pfn, as sparse as the copy: GUEST_INFO's size comes
     * from the stream, so memory is committed only as pages arrive, never
     * for the size a (hostile) stream claims. */
    c->types = mmap(NULL, nr_pfns, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (c->types == MAP_FAILED) {
        c->types = NULL;
        return -1;
    }
    c->fd = memfd_create("xc-colo-decode-copy", MFD_CLOEXEC);
    if (c->fd < 0 || ftruncate(c->fd, (off_t)bytes) < 0)
        return -1;
    c->base = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_NORESERVE, c->fd, 0);
    if (c->base == MAP_FAILED) {
        c->base = NULL;
        return -1;
    }
    d->info.nr_pfns = nr_pfns;
    d->info.page_size = psz;
    d->info.stream_type = stream_type;
    return 0;
}

/* ---- The translator ------------------------------------------------------- */

struct xcc_xen_translator {
    xcc_restorer *r;
    xentoollog_logger *log;
    struct xcc_restore_stream_info info;
    bool begun, ran;
    bool allow_sim;            /* tests: a sim stream stands in for PV */
    bool decode;               /* GUEST_INFO seen: a copy is kept */
    bool sparse;               /* ... of the XBZRLE bases only */
    xcc_domain copy;
    bool copy_open;
    struct stream_writer *w;   /* the libxl v2 stream */
    /* Checkpoint mode (Remus): after checkpoint 1, an epoch's records are
     * translated into ew and reach w only with its CHECKPOINT, so libxl
     * never sees half an epoch. cur is where records go now. */
    bool checkpointed;
    struct stream_writer *ew, *cur;
    struct stream_writer *back; /* acknowledgements; NULL: none */
    uint64_t committed;
    bool failover;

    struct stream_record pending; /* read by begin(), not yet handled */
    bool have_pending;

    char *config;              /* XL_CONFIG's JSON, or the xl header's */
    int config_is_json;

    const uint8_t **pages;     /* XEN_TRANSLATE_BATCH page pointers */
    uint8_t *zero_page;        /* what ZERO_PAGES leave as */
    struct stats_translate st;
    char errmsg[512];
    char *json;
};

/* Keeps the message for xcc_xen_translator_error() and logs it. */
#define tr_fail(t, e, ...)                                                     \
    lib_fail((t)->log, CTX, (t)->errmsg, sizeof((t)->errmsg), (e), __VA_ARGS__)

xcc_xen_translator *xcc_xen_translator_new(int fd,
                                           const struct xcc_restore_params *p,
                                           xentoollog_logger *log)
{
    xcc_xen_translator *t;
    struct xcc_restore_params rp;

    if (!log)
        log = lib_default_logger();
    if (p && !LIB_PARAMS_SIZE_OK(log, CTX, xcc_restore_params, p))
        return NULL;
    if (p)
        rp = *p;
    else
        xcc_restore_params_init(&rp);
    rp.no_map_cache = 0; /* the copy is mapped once */
    t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->log = log;
    t->r = xcc_restorer_new(fd, &rp, log);
    t->pages = calloc(XEN_TRANSLATE_BATCH, sizeof(*t->pages));
    t->zero_page = calloc(1, XCC_MAX_PAGE_SIZE);
    if (!t->r || !t->pages || !t->zero_page) {
        xcc_restorer_free(t->r);
        free(t->pages);
        free(t->zero_page);
        free(t);
        errno = ENOMEM;
        return NULL;
    }
    return t;
}

void xcc_xen_translator_free(xcc_xen_translator *t)
{
    if (!t)
        return;
    xcc_restorer_free(t->r); /* before the copy its map cache maps */
    if (t->copy_open)
        copy_close(&t->copy);
    stream_writer_free(t->w);
    stream_writer_free(t->ew);
    stream_writer_free(t->back);
    free(t->config);
    free(t->pages);
    free(t->zero_page);
    free(t->json);
    free(t);
}

const char *xcc_xen_translator_error(const xcc_xen_translator *t)
{
    if (t->errmsg[0])
        return t->errmsg;
    return xcc_restorer_error(t->r);
}

int xcc_xen_translator_begin(xcc_xen_translator *t, const char **config,
                             int *config_is_json)
{
    xcc_restorer *r = t->r;
    struct stream_record rec;

    if (!t->begun) {
        t->st.t_start = lib_now_ns();
        if (xcc_restorer_begin(r, &t->info) < 0)
            return -1;
        if (t->info.domain_type != XCC_DHDR_TYPE_X86_PV &&
            !(t->info.domain_type == XCC_DHDR_TYPE_SIM && t->allow_sim))
            return tr_fail(t, XCC_EBADSTREAM, "the stream's domain header "
                           "says type %#" PRIx32 " (%s): a new Xen domain is "
                           "made from an x86 PV stream only",
                           t->info.domain_type,
                           t->info.domain_type == XCC_DHDR_TYPE_X86_HVM
                               ? "x86 HVM" : "not a Xen guest");
        t->decode = t->info.nr_pfns > 0;
        restore_order_start(r, t->checkpointed ? STREAM_ORDER_CHECKPOINTED
                                               : STREAM_ORDER_PLAIN);
        if (r->xl.present && r->xl.hdr.config) {
            t->config = strdup(r->xl.hdr.config);
            t->config_is_json =
                !!(r->xl.hdr.mandatory_flags & XL_FLAG_JSON);
            if (!t->config)
                return tr_fail(t, ENOMEM, "out of memory");
        }
        /* XL_CONFIG follows GUEST_INFO: the caller needs it before it
         * creates the domain. */
        if (restore_next(r, &rec) < 0 || restore_order(r, &rec) < 0)
            return -1;
        if (rec.type == STREAM_REC_XL_CONFIG) {
            if (restore_apply(r, &rec) < 0) /* checked as inspect does */
                return -1;
            free(t->config);
            t->config = strndup((const char *)rec.body, rec.length);
            t->config_is_json = 1;
            if (!t->config)
                return tr_fail(t, ENOMEM, "out of memory");
        } else {
            t->pending = rec; /* its body stays valid until the next read */
            t->have_pending = true;
        }
        t->begun = true;
    }
    if (config)
        *config = t->config;
    if (config_is_json)
        *config_is_json = t->config_is_json;
    return 0;
}

/* PAGE_DATA records of at most XEN_TRANSLATE_BATCH entries: the pages
 * from src (a record's own pages), or from the copy (decoded: src NULL),
 * or all zero (zero: ZERO_PAGES, whose copies are holes that a read would
 * fault in). */
static int emit_pages(xcc_xen_translator *t, const uint64_t *pfns,
                      const uint8_t *types, uint32_t count,
                      const uint8_t *const *src, bool zero)
{
    struct copy_dom *c = t->decode ? copy_priv(&t->copy) : NULL;

    for (uint32_t done = 0; done < count;) {
        uint32_t n = count - done;

        if (n > XEN_TRANSLATE_BATCH)
            n = XEN_TRANSLATE_BATCH;
        for (uint32_t i = 0; i < n; i++) {
            uint64_t pfn = pfns[done + i];
            unsigned type = types ? types[done + i] : XCC_PFN_NORMAL;

            if (c) {
                c->types[pfn] = (uint8_t)type;
                t->pages[i] = zero  ? t->zero_page
                              : src ? src[done + i]
                                    : c->base + pfn * c->psz;
            } else {
                t->pages[i] = src[done + i];
            }
            if (stream_pfn_type_has_data(type))
                t->st.pages_out++;
        }
        if (stream_write_page_data(t->cur, pfns + done,
                                   types ? types + done : NULL, n,
                                   t->pages, t->info.page_size) < 0)
            return tr_fail(t, errno, "cannot write PAGE_DATA to libxl: %s",
                           strerror(errno));
        t->st.page_records_out++;
        done += n;
    }
    return 0;
}

/* The decode copy's memory now (shmem blocks of the memfd); its peak. */
static uint64_t copy_bytes(xcc_xen_translator *t)
{
    struct stat sb;
    uint64_t n;

    if (!t->copy_open || !copy_priv(&t->copy) ||
        fstat(copy_priv(&t->copy)->fd, &sb) < 0)
        return 0;
    n = (uint64_t)sb.st_blocks * 512;
    if (n > t->st.copy_peak_bytes)
        t->st.copy_peak_bytes = n;
    return n;
}

/*
 * Sparse copy: gives back the copies of the pfns[0..n) that have no base
 * (stream.h, "Cache bases": those a CACHE_BASES drops), one hole punched
 * per run of consecutive pfns. A hole reads as zeros and costs nothing
 * until written again.
 */
static int drop_copies(xcc_xen_translator *t, const struct stream_record *rec,
                       const uint64_t *pfns, uint32_t n)
{
    const struct stream_reader *rd = t->r->rd;
    struct copy_dom *c = copy_priv(&t->copy);

    for (uint32_t i = 0; i < n;) {
        uint32_t run = 1;

        if (stream_reader_has_base(rd, pfns[i])) {
            i++;
            continue;
        }
        while (i + run < n && pfns[i + run] == pfns[i] + run &&
               !stream_reader_has_base(rd, pfns[i + run]))
            run++;
        if (fallocate(c->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                      (off_t)(pfns[i] * c->psz), (off_t)run * c->psz) < 0)
            return tr_fail(t, errno, "%s record at offset %" PRIu64 ": cannot "
                           "give back the decode copy of pfns %#" PRIx64
                           "..%#" PRIx64 ": %s", stream_record_name(rec->type),
                           rec->offset, pfns[i], pfns[i] + run - 1,
                           strerror(errno));
        i += run;
    }
    return 0;
}

/* Sparse copy: a record's page is kept only as a base (the others are
 * forwarded from the record itself and never touch the copy). */
static bool keep_page(void *opaque, uint64_t pfn)
{
    const xcc_xen_translator *t = opaque;

    return stream_reader_has_base(t->r->rd, pfn);
}

static int pages_hook(void *opaque, const struct stream_record *rec,
                      const uint64_t *pfns, const uint8_t *types,
                      const uint8_t *const *pages, uint32_t count)
{
    xcc_xen_translator *t = opaque;

    switch (rec->type) {
    case STREAM_REC_ZERO_PAGES: t->st.zero_in += count; break;
    case STREAM_REC_XBZRLE_PAGES: t->st.xbzrle_in += count; break;
    case STREAM_REC_COMPRESSED_PAGES: t->st.compressed_in += count; break;
    default: t->st.page_data_in += count; break;
    }
    if (emit_pages(t, pfns, types, count, pages,
                   rec->type == STREAM_REC_ZERO_PAGES) < 0)
        return -1;
    /* Nothing of the record is left to give back: a PAGE_DATA or
     * COMPRESSED_PAGES record wrote only its bases (keep_page), a ZERO_PAGES
     * record left holes (restore_zero_page punches them) and every XBZRLE
     * page has a base. The peak of the copy is now. */
    if (t->sparse)
        (void)copy_bytes(t);
    return 0;
}

/* CACHE_BASES: checked and followed by the reader; the copies of the pfns
 * it drops go (a pfn dropped and kept again too: its base is its next
 * page). */
static int cache_bases(xcc_xen_translator *t, const struct stream_record *rec)
{
    struct stream_cache_bases cb;

    if (stream_parse_cache_bases(t->r->rd, rec, t->r->limit_pfns, &cb) < 0)
        return -1;
    return t->sparse ? drop_copies(t, rec, cb.dropped, cb.n_dropped) : 0;
}

/* DIGEST of a sparse copy: validated, not compared (the copy lacks the
 * memory it describes); counted and said once. */
static int unchecked_digest(xcc_xen_translator *t,
                            const struct stream_record *rec)
{
    struct stream_digest dg;

    if (stream_parse_digest(t->r->rd, rec, t->info.nr_pfns, &dg) < 0)
        return -1;
    if (!t->st.digests_unchecked++)
        XCC_INFO(t->log, CTX, "DIGEST at offset %" PRIu64 " not compared: "
                 "the decode copy keeps only the pages the sender's XBZRLE "
                 "cache holds (CACHE_BASES)", rec->offset);
    return 0;
}

/* Without a copy (no GUEST_INFO): PAGE_DATA and COMPRESSED_PAGES only. */
static int pass_pages(xcc_xen_translator *t, const struct stream_record *rec)
{
    struct stream_page_data pd;

    if (rec->type != STREAM_REC_PAGE_DATA &&
        rec->type != STREAM_REC_COMPRESSED_PAGES)
        return tr_fail(t, XCC_EBADSTREAM, "%s record at offset %" PRIu64
                       " in a stream without GUEST_INFO: its pages need a "
                       "decode copy of a known size",
                       stream_record_name(rec->type), rec->offset);
    if (compress_parse_pages(t->r->rd, rec, STREAM_PFN_LIMIT,
                             t->info.page_size, &pd) < 0)
        return -1;
    if (rec->type == STREAM_REC_COMPRESSED_PAGES)
        t->st.compressed_in += pd.count;
    else
        t->st.page_data_in += pd.count;
    return emit_pages(t, pd.pfns, pd.types, pd.count, pd.pages, false);
}

/* The libxl header and LIBXC_CONTEXT, then the libxc headers. */
static int emit_prologue(xcc_xen_translator *t)
{
    uint8_t h[LIBXL_HEADER_SIZE + LIBXL_RHDR_SIZE];
    uint64_t ident = htobe64(LIBXL_IDENT);
    uint32_t version = htobe32(LIBXL_VERSION), options = 0;
    const struct stream_headers *sh = &t->r->h;

    memcpy(h, &ident, 8);
    memcpy(h + 8, &version, 4);
    memcpy(h + 12, &options, 4);
    xl_encode_libxl_rhdr(h + LIBXL_HEADER_SIZE, LIBXL_REC_LIBXC_CONTEXT, 0);
    if (stream_write_raw(t->w, h, sizeof(h), "the libxl stream header") < 0 ||
        stream_write_headers(t->w, sh->dhdr_type, sh->page_shift,
                             sh->xen_major, sh->xen_minor) < 0)
        return tr_fail(t, errno, "cannot write the stream headers to libxl: "
                       "%s", strerror(errno));
    return 0;
}

static int forward(xcc_xen_translator *t, const struct stream_record *rec)
{
    struct iovec iov = {(void *)rec->body, rec->length};

    if (stream_write_record(t->cur, rec->type, &iov, rec->length ? 1 : 0) < 0)
        return tr_fail(t, errno, "cannot forward %s (offset %" PRIu64 ") to "
                       "libxl: %s", stream_record_name(rec->type),
                       rec->offset, strerror(errno));
    t->st.records_out++;
    return 0;
}

/* Checkpoint mode: an acknowledgement to the sender, as restore
 * --checkpointed sends it (headers first, a CHECKPOINT per checkpoint,
 * END at the end). A broken back channel ends the acknowledgements only. */
static void ack(xcc_xen_translator *t, bool end)
{
    if (!t->back)
        return;
    if ((end ? stream_write_end(t->back) : stream_write_checkpoint(t->back)) < 0) {
        XCC_WARN(t->log, CTX, "the back channel to the sender broke (%s); no "
                 "more acknowledgements", xcc_strerror(errno));
        stream_writer_free(t->back);
        t->back = NULL;
    }
}

/* CHECKPOINT: the epoch (held in ew after checkpoint 1) goes to libxl
 * whole, then libxc's CHECKPOINT and libxl's CHECKPOINT_END. */
static int commit(xcc_xen_translator *t)
{
    size_t len = 0;
    const uint8_t *b = t->committed ? stream_writer_mem(t->ew, &len) : NULL;

    if ((len && stream_write_raw(t->w, b, len, "an epoch") < 0) ||
        stream_write_checkpoint(t->w) < 0 ||
        stream_write_record(t->w, LIBXL_REC_CHECKPOINT_END, NULL, 0) < 0)
        return tr_fail(t, errno, "cannot write checkpoint %" PRIu64 " to "
                       "libxl: %s", t->committed + 1, strerror(errno));
    if (t->committed)
        stream_writer_mem_reset(t->ew, 1u << 20);
    t->committed++;
    t->st.checkpoints = t->committed;
    t->cur = t->ew;
    ack(t, false);
    XCC_DBG(t->log, CTX, "checkpoint %" PRIu64 " to libxl", t->committed);
    return 0;
}

static int translate(xcc_xen_translator *t, int out_fd, int back_fd,
                     uint64_t *kept)
{
    xcc_restorer *r = t->r;
    struct stream_record rec;
    struct stream_pfn_list pl;
    int rc = -1;

    if (t->ran)
        return tr_fail(t, EINVAL, "a translator runs once");
    t->ran = true;
    if (xcc_xen_translator_begin(t, NULL, NULL) < 0)
        goto out;
    t->w = stream_writer_new(out_fd, t->log);
    t->ew = t->checkpointed ? stream_writer_new_mem(1u << 20, t->log) : NULL;
    if (!t->w || (t->checkpointed && !t->ew)) {
        tr_fail(t, ENOMEM, "out of memory");
        goto out;
    }
    /* Nothing of xc-colo's reaches libxl. */
    stream_writer_set_filter(t->w, xl_compat_filter);
    if (t->ew)
        stream_writer_set_filter(t->ew, xl_compat_filter);
    t->cur = t->w;
    if (t->checkpointed && back_fd >= 0) {
        const struct stream_headers *h = &r->h;
        t->back = stream_writer_new(back_fd, t->log);
        if (!t->back || stream_write_headers(t->back, h->dhdr_type,
                                             h->page_shift, h->xen_major,
                                             h->xen_minor) < 0) {
            stream_writer_free(t->back);
            t->back = NULL;
        }
    }
    if (t->decode) {
        if (t->info.nr_pfns > SIZE_MAX / t->info.page_size ||
            copy_open(&t->copy, t->info.nr_pfns, t->info.page_size,
                      t->info.domain_type, t->log) < 0) {
            tr_fail(t, errno ? errno : ENOMEM, "cannot make a decode copy "
                    "of %" PRIu64 " pages: %s", t->info.nr_pfns,
                    strerror(errno ? errno : ENOMEM));
            t->copy_open = true;
            goto out;
        }
        t->copy_open = true;
        t->sparse = stream_reader_bases_on(r->rd);
        if (restore_attach(r, &t->copy) < 0)
            goto out;
        r->pages_hook = pages_hook;
        r->keep_page = t->sparse ? keep_page : NULL;
        r->hook_opaque = t;
    }
    if (emit_prologue(t) < 0)
        goto out;
    for (;;) {
        if (t->have_pending) {
            rec = t->pending;
            t->have_pending = false;
        } else if (restore_next(r, &rec) < 0 || restore_order(r, &rec) < 0) {
            goto broken;
        }
        t->st.records_in++;
        switch (rec.type) {
        case STREAM_REC_END:
            if (restore_read_tail(r) < 0)
                goto broken;
            /* COLO's closing epoch (after the last CHECKPOINT) is not
             * given to libxl: the domain is the last checkpoint. */
            if (t->ew)
                stream_writer_mem_reset(t->ew, 0);
            if (stream_write_end(t->w) < 0 || /* libxc's END */
                stream_write_end(t->w) < 0) { /* libxl's END */
                tr_fail(t, errno, "cannot write END to libxl: %s",
                        strerror(errno));
                goto out;
            }
            ack(t, true);
            rc = 0;
            goto out;
        case STREAM_REC_CHECKPOINT:
            if (commit(t) < 0)
                goto out;
            break;
        case STREAM_REC_CHECKPOINT_DIRTY_PFN_LIST:
            /* COLO's "epoch begins" marker: nothing for libxl. */
            if (stream_parse_dirty_pfn_list(r->rd, &rec, STREAM_PFN_LIMIT,
                                            &pl) < 0)
                goto broken;
            break;
        case STREAM_REC_PAGE_DATA:
        case STREAM_REC_COMPRESSED_PAGES:
        case STREAM_REC_ZERO_PAGES:
        case STREAM_REC_XBZRLE_PAGES:
            if (t->decode ? restore_apply(r, &rec) : pass_pages(t, &rec))
                goto broken;
            break;
        case STREAM_REC_DIGEST:
            if (t->sparse && r->p.verify) {
                if (unchecked_digest(t, &rec) < 0)
                    goto broken;
                break;
            }
            if (t->decode && restore_apply(r, &rec) < 0)
                goto broken; /* checked against the copy */
            if (t->decode && r->p.verify)
                t->st.digests_checked++;
            break;
        case STREAM_REC_CACHE_BASES:
            if (cache_bases(t, &rec) < 0)
                goto broken;
            break;
        case STREAM_REC_VERIFY:
        case STREAM_REC_STATS:
        case STREAM_REC_XL_CONFIG:
            if (restore_apply(r, &rec) < 0) /* checks, then skips */
                goto broken;
            break;
        default:
            if ((rec.type & STREAM_REC_OPTIONAL) && !stream_record_known(rec.type))
                break; /* an optional record Xen would skip */
            /* Xen's state: checked as inspect checks it, then forwarded. */
            if (restore_apply(r, &rec) < 0)
                goto broken;
            if (forward(t, &rec) < 0)
                goto out;
        }
    }
broken:
    /* A stream that broke or went bad after a checkpoint: libxl has every
     * whole epoch and nothing of this one; the caller ends libxl's stream
     * there, and libxenguest completes the domain from the last
     * checkpoint (Remus failover). */
    if (t->checkpointed && t->committed) {
        XCC_ERR(t->log, CTX, "failover: the stream broke during epoch %"
                PRIu64 " (%s); libxl keeps checkpoint %" PRIu64,
                t->committed + 1, xcc_xen_translator_error(t), t->committed);
        t->failover = true;
    }
out:
    if (kept)
        *kept = t->committed;
    t->st.t_end = lib_now_ns();
    t->st.bytes_in = stream_reader_offset(r->rd);
    t->st.bytes_out = t->w ? stream_writer_bytes(t->w) : 0;
    t->st.copy_bytes = copy_bytes(t);
    t->st.copy_mode = !t->decode ? "none" : t->sparse ? "sparse" : "whole";
    t->st.copy_bases = t->sparse ? stream_reader_bases(r->rd) : 0;
    t->st.nr_pfns = t->info.nr_pfns;
    t->st.page_size = t->info.page_size;
    t->st.status = rc == 0 ? "completed" : t->failover ? "failover" : "failed";
    if (t->failover)
        errno = XCC_EFAILOVER;
    else if (rc < 0 && !errno)
        errno = EIO;
    return rc;
}

int xcc_xen_translator_run(xcc_xen_translator *t, int out_fd)
{
    return translate(t, out_fd, -1, NULL);
}

int xcc_xen_translator_set_checkpointed(xcc_xen_translator *t)
{
    if (t->begun)
        return tr_fail(t, EINVAL, "checkpoint mode is chosen before "
                       "xcc_xen_translator_begin()");
    t->checkpointed = true;
    return 0;
}

int xcc_xen_translator_run_checkpointed(xcc_xen_translator *t, int out_fd,
                                        int back_fd, uint64_t *kept)
{
    if (!t->checkpointed)
        return tr_fail(t, EINVAL, "call xcc_xen_translator_set_checkpointed() "
                       "first");
    return translate(t, out_fd, back_fd, kept);
}

const char *xcc_xen_translator_stats_json(xcc_xen_translator *t)
{
    free(t->json);
    t->json = stats_translate_json(&t->st);
    return t->json;
}

void xen_translate_allow_sim(xcc_xen_translator *t)
{
    t->allow_sim = true;
}
