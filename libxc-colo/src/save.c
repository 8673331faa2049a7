/*
 * save.c - the precopy save loop: iteration 0 sends every page, later
 * passes send what the guest dirtied meanwhile, the final pass runs with
 * the guest paused. Then DIGEST (--verify) and END.
 *
 * Each pass goes through one path (save_send_pass): the dirty bitmap is cut
 * into batches, each batch resolved through the map cache, each page
 * classified as hole, zero, XBZRLE delta or normal, and the batch written
 * as at most one record of each kind (zero and XBZRLE pages one per lane:
 * with --threads N, N lanes classify a slice at once, lane k on the pfns
 * of cache shard k, see "Lanes" below and save_workers.h; the pages with
 * data of all lanes go as one record, so one compression decision).
 *
 * Invariant 1 (DESIGN.md), the cache mirrors the receiver: in a pass that
 * may use deltas, a page is copied out of the guest exactly once, into the
 * page cache's stage buffer, and that copy is what gets encoded, sent and
 * cached. A guest write during encoding then changes neither the delta nor
 * the cached copy: the page is dirty again and goes in a later pass. Every
 * send updates or drops the entry: a delta or normal send commits the copy,
 * a zero page or a hole drops it. Passes without deltas (iteration 0) send
 * straight from the guest mapping (zero copy) and never touch the cache.
 *
 * Convergence (Xen's defaults): stop iterating when at most target_dirty
 * pages are dirty, when the final pass is estimated to fit max_downtime,
 * or after max_iters live passes; then pause and send the rest.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compress.h"
#include "digest.h"
#include "hot_predict.h"
#include "page_cache.h"
#include "save.h"
#include "save_pagetable.h"
#include "xl_format.h"

#define CTX "save"

/* Batches between progress reports within one pass. */
#define PROGRESS_EVERY_BATCHES 64u
/* Bytes a normal page costs on the wire beyond its data: its pfn entry. */
#define PAGE_ENTRY_BYTES 8u

void xcc_save_params_init(struct xcc_save_params *p)
{
    memset(p, 0, sizeof(*p));
    p->size = sizeof(*p);
    p->verify = 1;
    p->max_iters = XCC_SAVE_DEFAULT_MAX_ITERS;
    p->target_dirty = XCC_SAVE_DEFAULT_TARGET_DIRTY;
    p->batch_pages = SAVE_DEFAULT_BATCH;
    p->progress = 1;
}

static unsigned log2_u32(uint32_t v)
{
    unsigned s = 0;

    while ((1u << s) < v)
        s++;
    return s;
}

static void *xalloc(xcc_saver *s, size_t n, const char *what)
{
    void *p = calloc(1, n ? n : 1);

    if (!p)
        XCC_PERR(s->log, CTX, "cannot allocate %zu bytes for %s", n, what);
    return p;
}

/*
 * --xen-compat: only what a stock Xen reader takes. A Xen domain's stream
 * is also framed as `xl save` frames it, and `xl restore` creates the
 * domain from the config in the xl header, so the config is required. A
 * sim guest's stream stays a bare libxc stream (no libxl config exists).
 */
static int save_compat_setup(xcc_saver *s, const struct xcc_domain_info *info)
{
    const char *json = s->p.domain_config_json;

    if (s->p.xbzrle) {
        XCC_ERR(s->log, CTX, "--xen-compat with XBZRLE: a stream for stock "
                "Xen has no XBZRLE_PAGES record (Xen's reader would refuse "
                "it)");
        errno = EINVAL;
        return -1;
    }
    s->p.verify = 0; /* no DIGEST either: it is on by default, not asked */
    if (info->stream_type == XCC_DHDR_TYPE_SIM)
        return 0;
    if (!json || !*json) {
        XCC_ERR(s->log, CTX, "--xen-compat of Xen domain '%s' needs its libxl "
                "configuration as JSON (xcc_save_params.domain_config_json, "
                "`xc-colo save --xl-config-json FILE`): `xl restore` creates "
                "the domain from the config in the xl header", s->d->name);
        errno = EINVAL;
        return -1;
    }
    if (strlen(json) > XL_OPTDATA_MAX - 5) {
        XCC_ERR(s->log, CTX, "the libxl config of '%s' has %zu bytes, more "
                "than the xl header takes (%u)", s->d->name, strlen(json),
                XL_OPTDATA_MAX - 5);
        errno = EINVAL;
        return -1;
    }
    s->xl_config = strdup(json);
    if (!s->xl_config)
        return -1;
    s->xl_wrap = true;
    return 0;
}

static unsigned threads_wanted(uint32_t threads);
static int lanes_new(xcc_saver *s);
static void lanes_free(xcc_saver *s);

xcc_saver *xcc_saver_new(xcc_domain *d, int fd,
                         const struct xcc_save_params *p,
                         xentoollog_logger *log)
{
    struct xcc_save_params defaults;
    struct xcc_domain_info info;
    xcc_saver *s;

    if (!log)
        log = lib_default_logger();
    if (!p) {
        xcc_save_params_init(&defaults);
        p = &defaults;
    }
    if (!LIB_PARAMS_SIZE_OK(log, CTX, xcc_save_params, p))
        return NULL;
    if (!d || fd < 0) {
        XCC_ERR(log, CTX, "no domain or no file descriptor to save to");
        errno = EINVAL;
        return NULL;
    }
    if (d->ops->info(d, &info) < 0) {
        XCC_PERR(log, CTX, "cannot read the domain's size");
        return NULL;
    }
    if (!info.nr_pfns || info.page_size < 4096 ||
        info.page_size > XCC_MAX_PAGE_SIZE ||
        (info.page_size & (info.page_size - 1))) {
        XCC_ERR(log, CTX, "domain '%s': unusable size (%" PRIu64
                " pfns of %" PRIu32 " bytes)", d->name, info.nr_pfns,
                info.page_size);
        errno = EINVAL;
        return NULL;
    }
    if (p->threads > XCC_SAVE_MAX_THREADS) {
        XCC_ERR(log, CTX, "%" PRIu32 " encoding threads: at most %u",
                p->threads, XCC_SAVE_MAX_THREADS);
        errno = EINVAL;
        return NULL;
    }
    if (p->batch_pages > SAVE_MAX_BATCH) {
        XCC_ERR(log, CTX, "batch of %" PRIu32 " pages: at most %u",
                p->batch_pages, SAVE_MAX_BATCH);
        errno = EINVAL;
        return NULL;
    }

    s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->d = d;
    s->fd = fd;
    s->log = log;
    s->p = *p;
    if (!s->p.max_iters)
        s->p.max_iters = XCC_SAVE_DEFAULT_MAX_ITERS;
    if (!s->p.target_dirty)
        s->p.target_dirty = XCC_SAVE_DEFAULT_TARGET_DIRTY;
    if (!s->p.min_remaining)
        s->p.min_remaining = s->p.target_dirty;
    if (p->xen_compat && p->compress_level) {
        XCC_ERR(log, CTX, "compression with xen_compat: a stock Xen reader "
                "has no COMPRESSED_PAGES record");
        errno = EINVAL;
        goto fail;
    }
    if (p->compress_level < 0 || p->compress_level > COMPRESS_LEVEL_MAX) {
        XCC_ERR(log, CTX, "zstd level %d: expected %d..%d (0: off)",
                p->compress_level, COMPRESS_LEVEL_MIN, COMPRESS_LEVEL_MAX);
        errno = EINVAL;
        goto fail;
    }
    if (s->p.xen_compat && save_compat_setup(s, &info) < 0)
        goto fail;
    s->nr_pfns = info.nr_pfns;
    s->page_size = info.page_size;
    s->page_shift = log2_u32(info.page_size);
    s->batch = s->p.batch_pages ? s->p.batch_pages : SAVE_DEFAULT_BATCH;
    s->nthreads = threads_wanted(s->p.threads);
    s->nlanes = s->nthreads == 1 ? 1
                                 : s->nthreads * SAVE_LANES_PER_THREAD;
    if (s->nlanes > SAVE_MAX_LANES)
        s->nlanes = SAVE_MAX_LANES;

    s->st.live = s->p.live;
    s->st.use_xbzrle = s->p.xbzrle;
    s->st.xen_compat = s->p.xen_compat;
    s->st.verify = s->p.verify;
    s->st.map_cache = !s->p.no_map_cache;
    s->st.page_size = s->page_size;
    s->st.nr_pfns = s->nr_pfns;
    s->st.status = "setup";
    s->st.stop_reason = "";

    s->dirty_words = XCC_DIV_ROUND_UP(s->nr_pfns, 64);
    s->dirty = xalloc(s, s->dirty_words * sizeof(uint64_t), "the dirty bitmap");
    s->bpfns = xalloc(s, s->batch * sizeof(uint64_t), "a batch");
    s->btypes = xalloc(s, s->batch, "a batch");
    s->bpages = xalloc(s, s->batch * sizeof(uint8_t *), "a batch");
    s->berr = xalloc(s, s->batch * sizeof(int), "a batch");
    s->out_pfns = xalloc(s, s->batch * sizeof(uint64_t), "a batch");
    s->out_types = xalloc(s, s->batch, "a batch");
    s->out_pages = xalloc(s, s->batch * sizeof(uint8_t *), "a batch");
    s->zero_pfns = xalloc(s, s->batch * sizeof(uint64_t), "a batch");
    s->zero_types = xalloc(s, s->batch, "a batch");
    s->zero_page = xalloc(s, s->page_size, "a zero page");
    s->w = stream_writer_new(fd, log);
    if (s->w) {
        stream_writer_set_rate(s->w, s->p.max_bandwidth);
        /* Xen's records pass, ours are dropped: xl_format.c's one rule. */
        if (s->p.xen_compat)
            stream_writer_set_filter(s->w, xl_compat_filter);
    }
    if (s->p.compress_level &&
        !(s->zc = compress_enc_new(s->p.compress_level, s->batch,
                                   s->page_size, &s->st.zc))) {
        XCC_PERR(log, CTX, "cannot set up zstd compression");
        goto fail;
    }
    if (!s->dirty || !s->bpfns || !s->btypes || !s->bpages || !s->berr ||
        !s->out_pfns || !s->out_types || !s->out_pages || !s->zero_pfns ||
        !s->zero_types || !s->zero_page || !s->w)
        goto fail;

    if (s->p.xbzrle) {
        uint64_t guest = s->nr_pfns * s->page_size;
        uint64_t budget = s->p.cache_size ? s->p.cache_size
                                          : XCC_SAVE_DEFAULT_CACHE_SIZE;
        /* A cache larger than the guest would only waste memory. */
        if (budget > guest)
            budget = guest;
        if (budget < s->page_size) {
            XCC_ERR(log, CTX, "XBZRLE cache of %" PRIu64
                    " bytes: smaller than one page", budget);
            errno = EINVAL;
            goto fail;
        }
        s->pc = page_cache_new_sharded(
            (size_t)budget, s->page_size,
            page_cache_max_shards((size_t)budget, s->page_size, s->nlanes));
        if (!s->pc) {
            XCC_PERR(log, CTX, "cannot create an XBZRLE cache of %" PRIu64
                     " bytes", budget);
            goto fail;
        }
        s->st.cache_size = budget;
        /* The receiver keeps only the pages the cache may use as a base
         * (CACHE_BASES): the cache journals the pfns that come and go. */
        page_cache_journal_start(s->pc);
        s->announced = xalloc(s, s->dirty_words * sizeof(uint64_t),
                              "the cache-bases bitmap");
        if (!s->announced)
            goto fail;
        s->xb_pfns = xalloc(s, s->batch * sizeof(uint64_t), "a batch");
        s->xb_types = xalloc(s, s->batch, "a batch");
        s->xb_lens = xalloc(s, s->batch * sizeof(uint32_t), "a batch");
        s->xb_data = xalloc(s, s->batch * (size_t)s->page_size, "deltas");
        s->copies = xalloc(s, s->batch * (size_t)s->page_size, "page copies");
        if (!s->xb_pfns || !s->xb_types || !s->xb_lens || !s->xb_data ||
            !s->copies)
            goto fail;
        if (s->p.live && !s->p.no_hot_predict && d->ops->logdirty_peek &&
            !(s->hp = hot_predict_new(s->nr_pfns, s->page_size, &s->st.hot)))
            goto fail;
        /* A cache that holds the whole guest takes every first-pass page:
         * nothing then needs to be guessed (hot_predict.h). */
        if (s->hp && budget >= guest)
            hot_predict_every_page(s->hp);
    }
    if (lanes_new(s) < 0)
        goto fail;

    if (s->p.verify) {
        s->nchunks = digest_nchunks(s->nr_pfns, s->page_size);
        s->chunk_dig = xalloc(s, (size_t)s->nchunks * 16, "chunk digests");
        s->chunk_stale = xalloc(s, XCC_DIV_ROUND_UP(s->nchunks, 64) *
                                       sizeof(uint64_t), "a chunk bitmap");
        if (!s->chunk_dig || !s->chunk_stale)
            goto fail;
        /* Nothing hashed yet: every chunk is stale. */
        for (uint64_t c = 0; c < s->nchunks; c++)
            s->chunk_stale[c / 64] |= 1ull << (c % 64);
    }

    struct xcc_map_cache_params mp = {
        .size = sizeof(struct xcc_map_cache_params),
        .writable = 0,
        .per_batch = s->p.no_map_cache ? 1 : 0,
    };
    s->mc = xcc_map_cache_new(d, &mp);
    if (!s->mc) {
        XCC_PERR(log, CTX, "cannot create the map cache");
        goto fail;
    }
    return s;

fail: {
    int saved = errno ? errno : ENOMEM;
    xcc_saver_free(s);
    errno = saved;
    return NULL;
}
}

void xcc_saver_free(xcc_saver *s)
{
    if (!s)
        return;
    xcc_map_cache_free(s->mc);
    lanes_free(s);
    xcc_page_cache_free(s->pc);
    hot_predict_free(s->hp);
    compress_enc_free(s->zc);
    stream_writer_free(s->w);
    free(s->dirty);
    free(s->bpfns);
    free(s->btypes);
    free(s->bpages);
    free(s->bounce);
    free(s->berr);
    free(s->out_pfns);
    free(s->out_types);
    free(s->out_pages);
    free(s->zero_pfns);
    free(s->zero_types);
    free(s->xb_pfns);
    free(s->xb_types);
    free(s->xb_lens);
    free(s->xb_data);
    free(s->copies);
    free(s->announced);
    free(s->bases_drop);
    free(s->bases_keep);
    free(s->chunk_dig);
    free(s->chunk_stale);
    free((void *)s->zero_page);
    free(s->json);
    free(s->xl_config);
    stats_save_free(&s->st);
    free(s);
}

static int emit_state_record(void *opaque, uint32_t type,
                             const struct iovec *iov, int iovcnt)
{
    xcc_saver *s = opaque;

    return stream_write_record(s->w, type, iov, iovcnt);
}

int save_send_state(xcc_saver *s, enum domain_state_phase phase)
{
    int n;

    if (!s->d->ops->state_records)
        return 0;
    n = s->d->ops->state_records(s->d, phase, emit_state_record, s);
    if (n < 0)
        XCC_PERR(s->log, CTX, "cannot send the domain state of '%s'",
                 s->d->name);
    return n;
}

/* XL_CONFIG: the libxl configuration the caller fetched, as it is. */
static int write_domain_config(xcc_saver *s)
{
    struct iovec iov = {
        .iov_base = (void *)s->p.domain_config_json,
        .iov_len = strlen(s->p.domain_config_json),
    };

    return stream_write_record(s->w, STREAM_REC_XL_CONFIG, &iov, 1);
}

int save_write_headers(xcc_saver *s)
{
    struct xcc_domain_info *info = &s->d->info;
    uint32_t type = info->stream_type;
    int n;

    /* Xen has no sim domain type: a Xen-only stream calls the guest HVM. */
    if (s->p.xen_compat && type == XCC_DHDR_TYPE_SIM)
        type = XCC_DHDR_TYPE_X86_HVM;
    if (s->xl_wrap && xl_write_prologue(s->w, s->xl_config) < 0)
        return -1;
    if (stream_write_headers(s->w, type, s->page_shift, info->xen_major,
                             info->xen_minor) < 0)
        return -1;
    if (!s->p.xen_compat) {
        uint32_t flags = STREAM_GUEST_INFO_TYPED_PFNS;
        /* Format 3: the receiver learns which pages XBZRLE may use. */
        if (s->announced)
            flags |= STREAM_GUEST_INFO_CACHE_BASES;
        if (stream_write_guest_info(s->w, s->nr_pfns, s->page_size,
                                    flags) < 0)
            return -1;
        /* Early, so that a reader knows the vCPU count before any vCPU. */
        if (s->p.domain_config_json && write_domain_config(s) < 0)
            return -1;
    }
    n = save_send_state(s, DOMAIN_STATE_STATIC);
    if (n < 0)
        return -1;
    if ((s->p.xen_compat || n > 0) && stream_write_static_data_end(s->w) < 0)
        return -1;
    return save_send_state(s, DOMAIN_STATE_START) < 0 ? -1 : 0;
}

static void digest_mark_dirty(xcc_saver *s);

int64_t save_harvest(xcc_saver *s, bool final)
{
    /* The backend only sets bits: pages still pending stay pending. */
    uint64_t t0 = lib_now_ns();
    int64_t n = s->d->ops->logdirty_clean(s->d, s->dirty, final);

    s->last_harvest_ns = lib_now_ns() - t0;
    if (n < 0) {
        XCC_PERR(s->log, CTX, "reading the dirty log of '%s'", s->d->name);
        return -1;
    }
    if (save_check(s) < 0)
        return -1;
    s->st.dirty_sync_count++;
    /* Bits beyond nr_pfns would name pfns the guest does not have. */
    if (s->nr_pfns % 64)
        s->dirty[s->dirty_words - 1] &= (1ull << (s->nr_pfns % 64)) - 1;
    n = 0;
    for (size_t i = 0; i < s->dirty_words; i++)
        n += __builtin_popcountll(s->dirty[i]);
    digest_mark_dirty(s);
    return n;
}

/* ---- One batch ------------------------------------------------------------ */

static void map_cache_delta(const struct xcc_map_cache_stats *a,
                            const struct xcc_map_cache_stats *b,
                            struct stats_map_cache *out)
{
    out->map_calls = b->map_calls - a->map_calls;
    out->unmap_calls = b->unmap_calls - a->unmap_calls;
    out->chunks_mapped = b->chunks_mapped - a->chunks_mapped;
    out->pages_mapped = b->pages_mapped - a->pages_mapped;
    out->hits = b->hits - a->hits;
    out->misses = b->misses - a->misses;
    out->evictions = b->evictions - a->evictions;
}

/*
 * Moves the PAGE_DATA entries of lanes 1.. down to follow lane 0's (which
 * start the batch arrays), so that the slice's pages go out as one record
 * whatever the lane count: one compression decision per slice, as with one
 * thread. The entries hold pointers: no page is copied. Returns how many.
 */
static size_t gather_out(xcc_saver *s)
{
    size_t n = s->lanes[0].n_out;

    for (unsigned k = 1; k < s->nlanes; k++) {
        const struct save_lane *l = &s->lanes[k];

        /* Lane k's range starts at or after n: a move goes down. */
        if (l->n_out && l->out_pfns != s->out_pfns + n) {
            memmove(s->out_pfns + n, l->out_pfns,
                    l->n_out * sizeof(*s->out_pfns));
            memmove(s->out_types + n, l->out_types, l->n_out);
            memmove(s->out_pages + n, l->out_pages,
                    l->n_out * sizeof(*s->out_pages));
        }
        n += l->n_out;
    }
    return n;
}

/*
 * CACHE_BASES for the pfns the cache's journal named since the last call
 * (entries that came or went while a slice was classified, holes dropped,
 * COLO's drops between passes), before the page records of the slice: a
 * pfn goes out as dropped or kept only where the cache now differs from
 * what the receiver was told (s->announced). So an entry evicted and taken
 * back within one slice, whose page the slice then sends, needs no word,
 * and a journal that names a pfn twice costs nothing. Each shard's journal
 * is read here, on the saver's thread, after the lanes are done: only the
 * lane of shard k ever writes journal k. 0 or -1/errno.
 */
static int announce_bases(xcc_saver *s)
{
    size_t nd = 0, nk = 0;

    if (!s->announced)
        return 0;
    for (unsigned k = 0; k < page_cache_nshards(s->pc); k++) {
        xcc_page_cache *shard = page_cache_shard(s->pc, k);
        const uint64_t *pfns;
        size_t n;

        if (page_cache_journal(shard, &pfns, &n) < 0) {
            XCC_PERR(s->log, CTX, "the XBZRLE cache lost track of its "
                     "entries: the receiver cannot be told its bases");
            return -1;
        }
        if (nd + nk + n > s->bases_cap) {
            size_t cap = nd + nk + n;
            uint64_t *d = realloc(s->bases_drop, cap * sizeof(*d));
            if (d)
                s->bases_drop = d;
            uint64_t *kp = realloc(s->bases_keep, cap * sizeof(*kp));
            if (kp)
                s->bases_keep = kp;
            if (!d || !kp) {
                XCC_PERR(s->log, CTX, "cannot list %zu cache bases", cap);
                return -1;
            }
            s->bases_cap = cap;
        }
        for (size_t i = 0; i < n; i++) {
            const uint64_t pfn = pfns[i], bit = 1ull << (pfn % 64);
            const bool now = page_cache_contains(shard, pfn);

            if (now == !!(s->announced[pfn / 64] & bit))
                continue;
            s->announced[pfn / 64] ^= bit;
            if (now)
                s->bases_keep[nk++] = pfn;
            else
                s->bases_drop[nd++] = pfn;
        }
        page_cache_journal_clear(shard);
    }
    if (!nd && !nk)
        return 0;
    if (stream_write_cache_bases(s->w, s->bases_drop, nd, s->bases_keep,
                                 nk) < 0)
        return -1;
    s->st.bases_records++;
    s->st.bases_dropped += nd;
    s->st.bases_kept += nk;
    return 0;
}

/*
 * Writes the records of one classified slice from the saver's thread (the
 * one writer, and the one user of the compressor): the cache bases that
 * changed, then each lane's zero and XBZRLE pages, then the pages with
 * data of all lanes as one PAGE_DATA or COMPRESSED_PAGES record.
 */
static int flush_slice(xcc_saver *s)
{
    size_t n_out;

    /* First: the receiver must know what to keep when the pages arrive. */
    if (announce_bases(s) < 0)
        return -1;
    for (unsigned k = 0; k < s->nlanes; k++) {
        struct save_lane *l = &s->lanes[k];

        if (l->n_zero &&
            stream_write_zero_pages_typed(s->w, l->zero_pfns, l->zero_types,
                                          l->n_zero) < 0)
            return -1;
        if (l->n_xb &&
            stream_write_xbzrle_pages_typed(s->w, l->xb_pfns, l->xb_types,
                                            l->xb_lens, l->n_xb,
                                            l->xb_data) < 0)
            return -1;
    }
    n_out = gather_out(s);
    if (n_out &&
        (s->zc ? compress_write_pages(s->zc, s->w, s->out_pfns, s->out_types,
                                      n_out, s->out_pages, s->page_size)
               : stream_write_page_data(s->w, s->out_pfns, s->out_types, n_out,
                                        s->out_pages, s->page_size)) < 0)
        return -1;
    for (unsigned k = 0; k < s->nlanes; k++) {
        struct save_lane *l = &s->lanes[k];

        l->n_zero = l->n_xb = l->n_out = 0;
        l->xb_used = 0;
        l->n_copies = 0;
    }
    return 0;
}

static void add_page_data(struct save_lane *l, uint64_t pfn, uint8_t type,
                          const uint8_t *page)
{
    l->out_pfns[l->n_out] = pfn;
    l->out_types[l->n_out] = type;
    l->out_pages[l->n_out] = page;
    l->n_out++;
}

static void add_zero(struct save_lane *l, uint64_t pfn, uint8_t type)
{
    l->zero_types[l->n_zero] = type;
    l->zero_pfns[l->n_zero++] = pfn;
    l->n.zero++;
}

/* pfn goes out as exactly page's bytes: tell a content-tracking backend. */
static void note_sent(xcc_saver *s, uint64_t pfn, const uint8_t *page)
{
    if (s->by_content)
        s->d->ops->page_sent(s->d, pfn, page);
}

/*
 * A page in a delta pass: copy it once into the cache's stage buffer (of
 * the lane's shard) and send, encode and cache that copy only. Page tables
 * come here on the saver's thread only (classify_page).
 */
static int classify_xbzrle(xcc_saver *s, struct save_lane *l, uint64_t pfn,
                           uint8_t type, const uint8_t *guest)
{
    struct stats_iteration *it = &l->n;
    const size_t psz = s->page_size;
    uint8_t *buf = xcc_page_cache_stage(l->pc);
    const uint8_t *old, *kept;
    int len, rc;

    memcpy(buf, guest, psz);
    /* Whatever follows, the receiver ends up holding exactly buf (a
     * content-tracking backend compares the guest's own bytes). */
    note_sent(s, pfn, buf);
    /* A page table: the normalised copy is what is sent and cached. */
    rc = save_pagetable_normalise(s, pfn, type, buf);
    if (rc)
        return rc < 0 ? -1 : 0; /* 1: deferred, the cache stays as sent */
    if (lib_page_is_zero(buf, psz)) {
        /* The receiver will hold zeros; the cache may not hold old bytes. */
        xcc_page_cache_drop(l->pc, pfn);
        add_zero(l, pfn, type);
        return 0;
    }
    old = xcc_page_cache_lookup(l->pc, pfn);
    if (old) {
        it->cache_hit++;
        len = xcc_xbzrle_encode(old, buf, psz, l->xb_data + l->xb_used, psz);
        if (len == 0) {
            /* Dirtied but rewritten with the same bytes: the receiver and
             * the cache already hold them. */
            it->unchanged++;
            return 0;
        }
        if (len > 0) {
            l->xb_types[l->n_xb] = type;
            l->xb_pfns[l->n_xb] = pfn;
            l->xb_lens[l->n_xb] = (uint32_t)len;
            l->n_xb++;
            l->xb_used += (size_t)len;
            it->xbzrle++;
            it->xbzrle_bytes += (uint64_t)len;
            /* The copy just encoded becomes the entry (replacing in place
             * is always kept; a refusal leaves no entry, also true). */
            xcc_page_cache_commit(l->pc, pfn);
            return 0;
        }
        it->overflow++;
    } else {
        it->cache_miss++;
    }
    /* Sent whole: the copy goes out and becomes the entry. Committed
     * entries touched in this generation are never evicted, so the pointer
     * stays good until the slice is written. */
    kept = xcc_page_cache_commit(l->pc, pfn);
    if (!kept) {
        /* Declined: the stage buffer will be reused by the next page. */
        uint8_t *copy = l->copies + l->n_copies++ * psz;
        memcpy(copy, buf, psz);
        kept = copy;
    }
    add_page_data(l, pfn, type, kept);
    it->normal++;
    return 0;
}

/*
 * While a pass sends no deltas (iteration 0), touches n more pages of the
 * buffers the delta passes will write: the saver's own delta and copy
 * buffers, then the cache's. A first write to a fresh page faults, which
 * costs tens of microseconds where dom0 is itself a guest; done here, in a
 * pass that copies every page anyway, it no longer lands on each cache
 * miss of iteration 1.
 */
static void prefault_step(xcc_saver *s, size_t n)
{
    const size_t own = 2 * s->batch;

    while (n && s->prefaulted < own) {
        size_t i = s->prefaulted++;
        volatile uint8_t *p = (i < s->batch ? s->xb_data : s->copies) +
                              (i % s->batch) * s->page_size;
        *p = *p;
        n--;
    }
    if (n)
        page_cache_prefault(s->pc, n);
}

/*
 * Page i of the batch (s->bpfns, resolved), in lane l. Page tables to
 * normalise are the saver thread's alone (their normalisation may defer
 * them, which sets their bit in s->dirty and counts in s->cur, and asks
 * the backend's M2P): with pt_later a lane run by the pool leaves them for
 * classify_slice to do once the pool is done. Returns 0, or -1/errno
 * (only for a page table).
 */
static int classify_page(xcc_saver *s, struct save_lane *l, size_t i,
                         bool pt_later)
{
    const uint64_t pfn = s->bpfns[i];
    const uint8_t type = s->btypes[i];
    const uint8_t *page = s->bpages[i];
    const bool pt = save_pagetable_wanted(s, type);

    if (pt && pt_later)
        return 0;
    if (s->use_xbzrle_now)
        return classify_xbzrle(s, l, pfn, type, page);
    if (s->predict_now && type == XCC_PFN_NORMAL && !s->by_content &&
        hot_predict_is_hot(s->hp, pfn)) {
        /* Dirtied before we got here: likely hot, sent from the copy the
         * cache (the lane's shard: only this lane touches pfn's entry)
         * keeps. */
        page = hot_predict_send(s->hp, l->pc, pfn, page);
    }
    if (s->by_content || pt) {
        /*
         * Send a copy, not the live mapping, so that the bytes reported to
         * the backend are the bytes on the wire (a page table's copy is
         * normalised for the wire).
         */
        uint8_t *copy = s->bounce + (i - s->slice_first) * s->page_size;
        int rc;

        memcpy(copy, page, s->page_size);
        page = copy;
        note_sent(s, pfn, copy);
        rc = save_pagetable_normalise(s, pfn, type, copy);
        if (rc)
            return rc < 0 ? -1 : 0; /* 1: deferred to the next pass */
    }
    if (!s->p.xen_compat && lib_page_is_zero(page, s->page_size)) {
        add_zero(l, pfn, type);
        return 0;
    }
    /* Zero copy: the iovec points into the guest mapping. */
    add_page_data(l, pfn, type, page);
    l->n.normal++;
    return 0;
}

/* ---- Lanes (--threads) ---------------------------------------------------- */

/* A slice this small is classified lane after lane on the saver's thread:
 * waking the pool would cost about what the pages do. */
#define LANES_MIN_PAGES 128u

/* Threads for p.threads: 0 is the online CPUs, at most the default cap. */
static unsigned threads_wanted(uint32_t threads)
{
    long cpus;

    if (threads)
        return threads;
    cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1)
        return 1;
    return cpus > XCC_SAVE_DEFAULT_MAX_THREADS ? XCC_SAVE_DEFAULT_MAX_THREADS
                                               : (unsigned)cpus;
}

static int lanes_new(xcc_saver *s)
{
    s->lanes = aligned_alloc(64, s->nlanes * sizeof(*s->lanes));
    if (!s->lanes) {
        XCC_PERR(s->log, CTX, "cannot allocate %u encoding lanes", s->nlanes);
        return -1;
    }
    memset(s->lanes, 0, s->nlanes * sizeof(*s->lanes));
    for (unsigned k = 0; k < s->nlanes; k++)
        s->lanes[k].pc = k < page_cache_nshards(s->pc)
                             ? page_cache_shard(s->pc, k) : NULL;
    /* Lane 0 alone spans the whole arrays (holes go there first). */
    s->lanes[0].zero_pfns = s->zero_pfns;
    s->lanes[0].zero_types = s->zero_types;
    s->lanes[0].out_pfns = s->out_pfns;
    s->lanes[0].out_types = s->out_types;
    s->lanes[0].out_pages = s->out_pages;
    s->st.threads = s->nthreads;
    if (s->nlanes == 1)
        return 0;
    s->order = xalloc(s, s->batch * sizeof(*s->order), "a batch");
    s->lane_of = xalloc(s, s->batch, "a batch");
    if (!s->order || !s->lane_of)
        return -1;
    s->pool = save_workers_new(s->nthreads, s->log);
    return s->pool ? 0 : -1;
}

static void lanes_free(xcc_saver *s)
{
    save_workers_free(s->pool);
    free(s->lanes);
    free(s->order);
    free(s->lane_of);
}

/* Runs lane k over its pages of the slice (a save_work_fn: on whichever
 * thread claims it). Page tables to normalise are left for lane_run_here:
 * so nothing here can fail. */
static void lane_run(void *arg, unsigned k)
{
    xcc_saver *s = arg;
    struct save_lane *l = &s->lanes[k];

    for (size_t j = 0; j < l->npages; j++)
        (void)classify_page(s, l, s->slice_first + l->order[j], true);
}

/* Runs lane k over its pages of the slice on the saver's thread; only_pt:
 * only the page tables lane_run left. 0 or -1/errno. */
static int lane_run_here(xcc_saver *s, unsigned k, bool only_pt)
{
    struct save_lane *l = &s->lanes[k];

    for (size_t j = 0; j < l->npages; j++) {
        const size_t i = s->slice_first + (l->order ? l->order[j] : j);

        if (only_pt && !save_pagetable_wanted(s, s->btypes[i]))
            continue;
        if (classify_page(s, l, i, false) < 0)
            return -1;
    }
    return 0;
}

/*
 * Gives each lane its pages of the slice s->bpfns[first .. first + k): the
 * pages of its cache shard (any even share without a cache), and output
 * ranges sized for them. Lane 0 keeps what it already holds (the batch's
 * holes); the others start after it.
 */
static void lanes_split(xcc_saver *s, size_t first, size_t k)
{
    const size_t held = s->lanes[0].n_out, psz = s->page_size;
    size_t start[SAVE_MAX_LANES + 1];

    for (size_t j = 0; j < k; j++)
        s->lane_of[j] = (uint8_t)(s->pc ? page_cache_shard_of(
                                              s->pc, s->bpfns[first + j])
                                        : j * s->nlanes / k);
    save_workers_partition(s->lane_of, k, s->nlanes, s->order, start);
    for (unsigned w = 0; w < s->nlanes; w++) {
        struct save_lane *l = &s->lanes[w];
        const size_t at = start[w], out_at = w ? held + at : 0;

        l->order = s->order + at;
        l->npages = start[w + 1] - at;
        l->zero_pfns = s->zero_pfns + at;
        l->zero_types = s->zero_types + at;
        l->out_pfns = s->out_pfns + out_at;
        l->out_types = s->out_types + out_at;
        l->out_pages = s->out_pages + out_at;
        if (s->xb_pfns) {
            l->xb_pfns = s->xb_pfns + at;
            l->xb_types = s->xb_types + at;
            l->xb_lens = s->xb_lens + at;
            l->xb_data = s->xb_data + at * psz;
            l->copies = s->copies + at * psz;
        }
    }
}

/*
 * Classifies the resolved slice s->bpfns[first .. first + k) into the
 * lanes: on the saver's thread alone, or on every worker at once (then the
 * page tables to normalise after them, on the saver's thread, each in its
 * lane). Returns 0 or -1/errno.
 */
static int classify_slice(xcc_saver *s, size_t first, size_t k)
{
    const uint64_t t0 = lib_now_ns();
    uint64_t dt;
    int rc = 0;

    s->slice_first = first;
    if (!s->pool) {
        s->lanes[0].npages = k;
        if (s->xb_pfns) {
            s->lanes[0].xb_pfns = s->xb_pfns;
            s->lanes[0].xb_types = s->xb_types;
            s->lanes[0].xb_lens = s->xb_lens;
            s->lanes[0].xb_data = s->xb_data;
            s->lanes[0].copies = s->copies;
        }
        rc = lane_run_here(s, 0, false);
    } else {
        lanes_split(s, first, k);
        if (k >= LANES_MIN_PAGES) {
            save_workers_run(s->pool, lane_run, s, s->nlanes);
            for (unsigned w = 0; w < s->nlanes && rc == 0 &&
                                 s->d->ops->normalise; w++)
                rc = lane_run_here(s, w, true);
        } else {
            for (unsigned w = 0; w < s->nlanes && rc == 0; w++)
                rc = lane_run_here(s, w, false);
            s->lanes_alone_ns += lib_now_ns() - t0;
        }
    }
    dt = lib_now_ns() - t0;
    for (unsigned w = 0; w < s->nlanes; w++) {
        stats_iteration_add_pages(s->cur, &s->lanes[w].n);
        memset(&s->lanes[w].n, 0, sizeof(s->lanes[w].n));
    }
    for (unsigned w = 0; w < s->nthreads; w++)
        s->st.thread_busy_ns[w] =
            s->pool ? save_workers_busy_ns(s->pool, w) +
                          (w ? 0 : s->lanes_alone_ns)
                    : s->st.thread_busy_ns[w] + dt;
    s->cur->encode_ns += dt;
    s->st.encode_ns += dt;
    s->st.encode_pages += k;
    return rc;
}

/*
 * Resolves, classifies and writes pfns[0..n) (s->bpfns: compacted in
 * place). Pages without data (holes, XALLOC, BROKEN) are announced first
 * and never looked up: the map cache would retry a failed page's chunk on
 * every lookup that touches it.
 */
static int send_batch(xcc_saver *s, uint64_t *pfns, size_t n)
{
    struct stats_iteration *it = s->cur;
    const bool deltas = s->use_xbzrle_now && s->pc;
    size_t done = 0, with_data = 0;

    s->by_content = s->d->ops->dirty_by_content && s->d->ops->page_sent &&
                    s->d->ops->dirty_by_content(s->d);
    if ((s->by_content || s->d->ops->normalise) && !s->bounce) {
        s->bounce = xalloc(s, s->batch * s->page_size, "page copies");
        if (!s->bounce)
            return -1;
    }
    if (s->predict_now &&
        hot_predict_defer(s->hp, pfns, n, s->st.t_setup_done))
        return 0; /* reached too soon to tell: sent at the pass's end */
    if (s->predict_now)
        hot_predict_peek(s->hp, s->d, pfns[0], pfns[n - 1]);
    else if (s->hp)
        hot_predict_later(s->hp, pfns, n);
    if (s->d->ops->pfn_types(s->d, pfns, s->btypes, n) < 0) {
        XCC_PERR(s->log, CTX, "reading pfn types %#" PRIx64 "..", pfns[0]);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (xcc_pfn_type_has_data(s->btypes[i])) {
            pfns[with_data] = pfns[i];
            s->btypes[with_data++] = s->btypes[i];
            continue;
        }
        /* A hole: announced so the receiver knows, no data. */
        if (s->pc && deltas)
            xcc_page_cache_drop(s->pc, pfns[i]);
        add_page_data(&s->lanes[0], pfns[i], s->btypes[i], NULL);
        it->nodata++;
    }
    n = with_data;
    if (n == 0 && flush_slice(s) < 0)
        return -1;
    while (done < n) {
        int64_t k = xcc_map_cache_lookup(s->mc, pfns + done, n - done,
                                         s->bpages + done, s->berr + done);
        if (k <= 0) {
            XCC_PERR(s->log, CTX, "mapping pfns %#" PRIx64 "..",
                     pfns[done]);
            if (!errno)
                errno = EIO;
            return -1;
        }
        for (size_t i = done; i < done + (size_t)k; i++) {
            if (!s->bpages[i] || s->berr[i]) {
                errno = s->berr[i] ? -s->berr[i] : EIO;
                XCC_PERR(s->log, CTX, "pfn %#" PRIx64 " of '%s' cannot be "
                         "mapped", pfns[i], s->d->name);
                return -1;
            }
        }
        if (classify_slice(s, done, (size_t)k) < 0 || flush_slice(s) < 0)
            return -1;
        done += (size_t)k;
    }
    xcc_map_cache_release(s->mc);
    if (s->pc && !deltas)
        prefault_step(s, n);
    return 0;
}

/* The first pass's batches that hot_predict_defer put off, now that the
 * dirty log has watched the whole pass. */
static int send_deferred(xcc_saver *s)
{
    size_t n;
    const uint64_t *d = hot_predict_deferred(s->hp, &n);
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i += s->batch) {
        size_t k = n - i < s->batch ? n - i : s->batch;

        memcpy(s->bpfns, d + i, k * sizeof(uint64_t));
        rc = s->cancelled ? save_check(s) : send_batch(s, s->bpfns, k);
    }
    return rc;
}

int save_send_pass(xcc_saver *s, bool paused, bool xbzrle_allowed)
{
    struct xcc_map_cache_stats mc0, mc1;
    struct stats_iteration *it = stats_save_new_iteration(&s->st);
    const uint64_t t0 = lib_now_ns(), bytes0 = stream_writer_bytes(s->w);
    uint64_t total = 0, sent = 0;
    unsigned batches = 0;
    char what[64];
    size_t n = 0;
    int rc = 0;

    if (!it) {
        XCC_PERR(s->log, CTX, "cannot record an iteration");
        return -1;
    }
    it->paused = paused;
    s->cur = it;
    s->use_xbzrle_now = xbzrle_allowed && s->pc;
    if (s->zc)
        compress_set_live(s->zc, !paused);
    s->predict_now = s->hp && !paused && it->index == 0;
    if (s->use_xbzrle_now)
        xcc_page_cache_next_generation(s->pc);
    xcc_map_cache_get_stats(s->mc, &mc0);

    for (size_t i = 0; i < s->dirty_words; i++)
        total += __builtin_popcountll(s->dirty[i]);
    it->dirty_pages = total;
    snprintf(what, sizeof(what), "iteration %" PRIu32 "%s", it->index,
             paused ? " (paused)" : "");
    if (s->p.progress)
        xtl_progress(s->log, CTX, what, 0, total);

    for (size_t wi = 0; wi < s->dirty_words && rc == 0; wi++) {
        uint64_t word = s->dirty[wi];

        s->dirty[wi] = 0;
        while (word) {
            unsigned bit = (unsigned)__builtin_ctzll(word);
            word &= word - 1;
            s->bpfns[n++] = (uint64_t)wi * 64 + bit;
            if (n == s->batch) {
                rc = s->cancelled ? save_check(s) : send_batch(s, s->bpfns, n);
                sent += n;
                n = 0;
                if (rc)
                    break;
                if (s->p.progress && ++batches % PROGRESS_EVERY_BATCHES == 0 &&
                    sent < total)
                    xtl_progress(s->log, CTX, what, sent, total);
            }
        }
    }
    if (rc == 0 && n)
        rc = s->cancelled ? save_check(s) : send_batch(s, s->bpfns, n);
    if (rc == 0 && s->predict_now)
        rc = send_deferred(s);
    /* Whatever changed in the cache without a slice to go with it. */
    if (rc == 0)
        rc = announce_bases(s);
    if (rc) {
        /* Leave nothing half-listed for a later pass to trust. */
        memset(s->dirty, 0, s->dirty_words * sizeof(uint64_t));
        for (unsigned k = 0; k < s->nlanes; k++)
            s->lanes[k].n_zero = s->lanes[k].n_xb = s->lanes[k].n_out = 0;
    }

    xcc_map_cache_get_stats(s->mc, &mc1);
    map_cache_delta(&mc0, &mc1, &it->mc);
    it->pages = it->normal + it->zero + it->xbzrle + it->nodata;
    it->bytes = stream_writer_bytes(s->w) - bytes0;
    it->ns = lib_now_ns() - t0;

    s->st.normal += it->normal;
    s->st.zero += it->zero;
    s->st.xbzrle += it->xbzrle;
    s->st.nodata += it->nodata;
    s->st.unchanged += it->unchanged;
    s->st.xbzrle_bytes += it->xbzrle_bytes;
    s->st.cache_miss += it->cache_miss;
    s->st.cache_hit += it->cache_hit;
    s->st.overflow += it->overflow;
    s->st.pagetables += it->pagetables;
    s->st.pt_deferred += it->pt_deferred;
    if (rc == 0 && s->p.progress)
        xtl_progress(s->log, CTX, what, total, total);
    XCC_INFO(s->log, CTX,
             "%s: %" PRIu64 " dirty, %" PRIu64 " normal, %" PRIu64
             " zero, %" PRIu64 " xbzrle (%" PRIu64 " bytes), %" PRIu64
             " bytes in %.1f ms", what, it->dirty_pages, it->normal, it->zero,
             it->xbzrle, it->xbzrle_bytes, it->bytes,
             (double)it->ns / 1e6);
    return rc;
}

/* ---- Digest --------------------------------------------------------------- */

/* Marks the digest chunks of the pfns in s->dirty stale. */
static void digest_mark_dirty(xcc_saver *s)
{
    const uint64_t per = XCC_DIGEST_CHUNK / s->page_size;

    if (!s->chunk_stale)
        return;
    for (size_t wi = 0; wi < s->dirty_words; wi++) {
        uint64_t word = s->dirty[wi];
        while (word) {
            uint64_t pfn = (uint64_t)wi * 64 + (unsigned)__builtin_ctzll(word);
            uint64_t c = pfn / per;
            s->chunk_stale[c / 64] |= 1ull << (c % 64);
            /* The rest of this chunk's pfns in the word add nothing. */
            uint64_t next = (c + 1) * per;
            if (next >= (uint64_t)(wi + 1) * 64)
                break;
            word &= ~0ull << (next - (uint64_t)wi * 64);
        }
    }
}

/*
 * PV page tables go out normalised (pfns, not the guest's mfns), and a
 * receiver's own tables name its own frames: they hash as zeros.
 */
static uint32_t digest_flags(const xcc_saver *s)
{
    return s->d->info.stream_type == XCC_DHDR_TYPE_X86_PV
               ? XCC_DIGEST_EXCLUDE_PAGETABLES
               : 0;
}

/* Brings the stale chunk digests up to date. */
static int digest_refresh(xcc_saver *s)
{
    uint64_t t0;
    int rc;

    if (!s->chunk_stale)
        return 0;
    for (uint64_t i = 0; i < XCC_DIV_ROUND_UP(s->nchunks, 64); i++)
        s->chunks_hashed += (uint64_t)__builtin_popcountll(s->chunk_stale[i]);
    t0 = lib_now_ns();
    rc = digest_chunks(s->d, s->mc, digest_flags(s), s->chunk_stale,
                      s->chunk_dig);
    s->st.digest_ns += lib_now_ns() - t0;
    if (rc < 0)
        XCC_PERR(s->log, CTX, "computing the memory digest");
    return rc;
}

int save_send_digest(xcc_saver *s)
{
    const uint64_t t0 = lib_now_ns();
    uint8_t whole[16];

    if (digest_refresh(s) < 0)
        return -1;
    digest_whole(s->chunk_dig, s->nchunks, whole);
    s->st.digest_final_ns = lib_now_ns() - t0;
    return stream_write_digest(s->w, XCC_DIGEST_CHUNK, digest_flags(s), whole,
                               s->chunk_dig, (uint32_t)s->nchunks);
}

/* ---- The loop ------------------------------------------------------------- */

/*
 * Estimated ms of a final pass over `dirty` pages: sending them at the last
 * pass's bandwidth and bytes per page (iteration 0's zero pages make its
 * bytes per page too small to trust, so then a page counts whole), plus
 * one harvest, plus rehashing the stale digest chunks at the measured
 * hashing rate. Under --max-bandwidth the pass cannot go faster than the
 * limit, whatever the last pass measured.
 */
static double estimate_final_ms(const xcc_saver *s, uint64_t dirty)
{
    const struct stats_iteration *it = &s->st.iters[s->st.nr_iters - 1];
    double per_page = s->page_size + PAGE_ENTRY_BYTES, bw, ms;

    if (!it->ns || !it->bytes)
        return 1e18;
    bw = (double)it->bytes / ((double)it->ns / 1e9);
    if (s->p.max_bandwidth && bw > (double)s->p.max_bandwidth)
        bw = (double)s->p.max_bandwidth;
    if (it->index > 0 && it->pages)
        per_page = (double)it->bytes / (double)it->pages;
    ms = (double)dirty * per_page / bw * 1e3;
    ms += (double)s->last_harvest_ns / 1e6;
    if (s->chunk_stale && s->chunks_hashed) {
        uint64_t stale = 0;
        for (uint64_t i = 0; i < XCC_DIV_ROUND_UP(s->nchunks, 64); i++)
            stale += (uint64_t)__builtin_popcountll(s->chunk_stale[i]);
        ms += (double)stale * ((double)s->st.digest_ns /
                               (double)s->chunks_hashed) / 1e6;
    }
    return ms;
}

/*
 * With a backend that can suspend the guest (Xen), the guest suspends
 * itself rather than being paused where it stands: its memory is then a
 * state it can resume from, as libxenguest requires.
 */
int save_pause(xcc_saver *s)
{
    const struct xcc_domain_ops *ops = s->d->ops;
    uint64_t t0 = lib_now_ns();

    if (ops->suspend) {
        if (ops->suspend(s->d, s->p.suspend_timeout_ms) < 0) {
            /* The errno may be an XCC_E* code, which strerror lacks. */
            XCC_ERR(s->log, CTX, "cannot suspend '%s': %s", s->d->name,
                    xcc_strerror(errno));
            return -1;
        }
        s->suspended_by_us = true;
        s->st.suspended = true;
        s->st.suspends++;
        s->st.suspend_request_ns = lib_now_ns() - t0;
        if (s->st.suspend_request_ns > s->st.suspend_request_max_ns)
            s->st.suspend_request_max_ns = s->st.suspend_request_ns;
        s->st.t_suspended = t0 + s->st.suspend_request_ns;
    } else if (ops->pause(s->d) < 0) {
        XCC_PERR(s->log, CTX, "cannot pause '%s'", s->d->name);
        return -1;
    }
    s->paused_by_us = true;
    if (!s->st.t_pause)
        s->st.t_pause = lib_now_ns();
    return 0;
}

int save_unpause(xcc_saver *s)
{
    if (s->suspended_by_us) {
        if (s->d->ops->resume(s->d) < 0) {
            XCC_PERR(s->log, CTX, "cannot resume '%s'", s->d->name);
            return -1;
        }
        s->suspended_by_us = false;
    } else if (s->d->ops->unpause(s->d) < 0) {
        XCC_PERR(s->log, CTX, "cannot unpause '%s'", s->d->name);
        return -1;
    }
    s->paused_by_us = false;
    return 0;
}

/* Every pfn of the guest into the pending set (iteration 0). */
static void mark_all_pending(xcc_saver *s)
{
    memset(s->dirty, 0xff, s->dirty_words * sizeof(uint64_t));
    if (s->nr_pfns % 64)
        s->dirty[s->dirty_words - 1] = (1ull << (s->nr_pfns % 64)) - 1;
}

void save_add_pending(xcc_saver *s, const uint64_t *pfns, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        s->dirty[pfns[i] / 64] |= 1ull << (pfns[i] % 64);
        if (s->pc)
            xcc_page_cache_drop(s->pc, pfns[i]);
    }
}

struct stream_writer *save_writer(const xcc_saver *s)
{
    return s->w;
}

struct stream_writer *save_set_writer(xcc_saver *s, struct stream_writer *w)
{
    struct stream_writer *old = s->w;

    s->w = w;
    return old;
}

uint64_t save_chunks_hashed(const xcc_saver *s)
{
    return s->chunks_hashed;
}

const struct stats_iteration *save_last_pass(const xcc_saver *s)
{
    return s->st.nr_iters ? &s->st.iters[s->st.nr_iters - 1] : NULL;
}

int save_check(xcc_saver *s)
{
    if (s->cancelled) {
        XCC_ERR(s->log, CTX, "the save of '%s' was cancelled", s->d->name);
        errno = ECANCELED;
        return -1;
    }
    return domain_lock_check(s->d);
}

bool save_cancelled(const xcc_saver *s)
{
    return s->cancelled;
}

void xcc_saver_cancel(xcc_saver *s)
{
    if (s)
        s->cancelled = 1;
}

static int finish(xcc_saver *s)
{
    /* The vCPUs, TSC and shared info, with the guest stopped. */
    if (save_send_state(s, DOMAIN_STATE_TAIL) < 0)
        return -1;
    if (s->p.verify && save_send_digest(s) < 0)
        return -1;
    /* The last chance to notice a cancel or a destroyed guest before the
     * stream says the image is complete. */
    if (save_check(s) < 0)
        return -1;
    if (!s->p.xen_compat) {
        /* The sender's figures so far, for `inspect` and the receiver. */
        char *json;
        s->st.t_end = lib_now_ns();
        s->st.transferred = stream_writer_bytes(s->w);
        s->st.status = "completed";
        json = stats_save_json(&s->st);
        if (json) {
            int rc = stream_write_stats(s->w, json, strlen(json));
            free(json);
            if (rc < 0)
                return -1;
        }
    }
    if (stream_write_end(s->w) < 0)
        return -1;
    if (s->xl_wrap && xl_write_epilogue(s->w) < 0)
        return -1;
    s->st.t_end = lib_now_ns();
    return 0;
}

int save_precopy(xcc_saver *s, const volatile int *stop)
{
    uint32_t passes;
    int64_t dirty;

    if (s->d->ops->logdirty_enable(s->d) < 0) {
        XCC_PERR(s->log, CTX, "cannot enable dirty logging on '%s'",
                 s->d->name);
        return -1;
    }
    s->logdirty_on = true;
    s->st.t_setup_done = lib_now_ns();

    /* Iteration 0: every page; pages written meanwhile are logged. */
    mark_all_pending(s);
    if (save_send_pass(s, false, false) < 0)
        return -1;
    /* Hash while the guest runs; what it writes meanwhile is logged and
     * its chunks marked stale by the next harvest. */
    if (digest_refresh(s) < 0)
        return -1;

    for (passes = 1;; passes++) {
        dirty = save_harvest(s, false);
        if (dirty < 0)
            return -1;
        if (stop && *stop) {
            s->st.stop_reason = "stopped";
            break;
        }
        if ((uint64_t)dirty <= s->p.target_dirty) {
            s->st.stop_reason = "converged";
            break;
        }
        if (s->p.max_downtime_ms) {
            double est = estimate_final_ms(s, (uint64_t)dirty);
            XCC_INFO(s->log, CTX, "%" PRId64 " dirty pages: final pass "
                     "estimated at %.1f ms", dirty, est);
            if (est <= (double)s->p.max_downtime_ms) {
                s->st.stop_reason = "downtime";
                break;
            }
        }
        if (passes >= s->p.max_iters) {
            s->st.stop_reason = "max-iters";
            if (s->p.abort_if_busy && (uint64_t)dirty > s->p.min_remaining) {
                s->st.remaining = (uint64_t)dirty;
                s->st.status = "cancelled";
                XCC_ERR(s->log, CTX, "'%s' still has %" PRId64 " dirty pages "
                        "after %" PRIu32 " passes (more than %" PRIu64
                        "): giving up (--abort-if-busy)", s->d->name, dirty,
                        passes, s->p.min_remaining);
                errno = XCC_EBUSY;
                return -1;
            }
            break;
        }
        if (save_send_pass(s, false, true) < 0)
            return -1;
        if (digest_refresh(s) < 0)
            return -1;
    }
    return 0;
}

static int run_live(xcc_saver *s)
{
    if (save_precopy(s, NULL) < 0)
        return -1;
    /* Final pass: pages still pending stay set, the final harvest adds
     * what was written since. */
    if (save_pause(s) < 0)
        return -1;
    if (save_harvest(s, true) < 0)
        return -1;
    if (save_send_pass(s, true, true) < 0)
        return -1;
    return finish(s);
}

static int run_paused(xcc_saver *s)
{
    if (save_pause(s) < 0)
        return -1;
    s->st.t_setup_done = lib_now_ns();
    s->st.stop_reason = "not-live";
    mark_all_pending(s);
    if (save_send_pass(s, true, false) < 0)
        return -1;
    return finish(s);
}

int save_start(xcc_saver *s, const char *what)
{
    if (s->ran) {
        XCC_ERR(s->log, CTX, "a %s runs once", what);
        errno = EINVAL;
        return -1;
    }
    s->ran = true;
    s->st.t_start = lib_now_ns();
    s->st.status = "active";
    if (domain_lock(s->d) < 0)
        return -1;
    return save_write_headers(s);
}

int save_end(xcc_saver *s, int rc, uint64_t extra_bytes)
{
    int saved = errno;

    if (s->logdirty_on) {
        s->d->ops->logdirty_disable(s->d);
        s->logdirty_on = false;
    }
    if (s->st.t_end == 0 || rc < 0)
        s->st.t_end = lib_now_ns();
    s->st.transferred = stream_writer_bytes(s->w) + extra_bytes;
    if (rc < 0) {
        if (s->cancelled)
            s->st.status = "cancelled";
        else if (strcmp(s->st.status, "cancelled"))
            s->st.status = "failed";
        /* Leave the guest as it was found: running. */
        if (s->paused_by_us)
            save_unpause(s);
        domain_unlock(s->d);
        errno = saved ? saved : EIO;
        return -1;
    }
    domain_unlock(s->d);
    s->st.status = "completed";
    s->st.remaining = 0;
    return 0;
}

int xcc_saver_run(xcc_saver *s)
{
    int rc;

    if (!s) {
        errno = EINVAL;
        return -1;
    }
    rc = save_start(s, "saver");
    if (rc == 0)
        rc = s->p.live ? run_live(s) : run_paused(s);
    if (save_end(s, rc, 0) < 0)
        return -1;
    XCC_INFO(s->log, CTX, "saved '%s': %" PRIu64 " bytes in %.1f ms, "
             "downtime %.1f ms", s->d->name, s->st.transferred,
             stats_ms(s->st.t_start, s->st.t_end),
             stats_ms(s->st.t_pause, s->st.t_end));
    return 0;
}

char *save_stats_json(xcc_saver *s, const struct stats_checkpoint *ck)
{
    xcc_map_cache_get_stats(s->mc, &s->st.mc);
    if (s->pc)
        xcc_page_cache_get_stats(s->pc, &s->st.pc);
    return ck ? stats_checkpoint_json(&s->st, ck) : stats_save_json(&s->st);
}

const char *xcc_saver_stats_json(xcc_saver *s)
{
    char *json = save_stats_json(s, NULL);

    if (!json)
        return NULL;
    free(s->json);
    s->json = json;
    return s->json;
}

void xcc_saver_get_summary(const xcc_saver *s, struct xcc_save_summary *o)
{
    const struct stats_save *st = &s->st;
    uint64_t lookups = st->cache_hit + st->cache_miss;

    memset(o, 0, sizeof(*o));
    o->total_ms = stats_ms(st->t_start, st->t_end);
    o->downtime_ms = stats_ms(st->t_pause, st->t_end);
    o->setup_ms = stats_ms(st->t_start, st->t_setup_done);
    o->transferred = st->transferred;
    /* Page records of the passes after iteration 0 (DIGEST, STATS and END
     * are not counted: they do not depend on the mode). */
    for (size_t i = 1; i < st->nr_iters; i++)
        o->after_iter0_bytes += st->iters[i].bytes;
    o->iterations = st->nr_iters;
    o->normal_pages = st->normal;
    o->zero_pages = st->zero;
    o->xbzrle_pages = st->xbzrle;
    o->xbzrle_bytes = st->xbzrle_bytes;
    o->cache_miss = st->cache_miss;
    o->overflow = st->overflow;
    o->cache_miss_rate = lookups ? (double)st->cache_miss / (double)lookups : 0;
    o->mbps = o->total_ms > 0
                  ? (double)st->transferred * 8.0 / 1e6 / (o->total_ms / 1e3)
                  : 0;
}
