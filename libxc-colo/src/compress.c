/*
 * compress.c - the COMPRESSED_PAGES record: zstd batches of whole pages
 * (compress.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <zstd.h>

#include "compress.h"

#define CTX "save"

/*
 * A batch pays when its frame saves at least 1/PAY_DIVISOR of its bytes:
 * an eighth, ZFS's rule for storing a block compressed. Memory that saves
 * less is near random, where zstd runs slowest: at a sixteenth, a sim
 * guest's RAM (1.11x) kept compression on, and a live migration's first
 * pass took 4.5 times as long, so the guest dirtied more and the wire
 * carried 2.3 times the bytes of the same migration without zstd.
 */
#define PAY_DIVISOR 8u
/* In a live pass: a quarter (compress_set_live). */
#define PAY_DIVISOR_LIVE 4u
/* Pages tried from each batch while compression is off. */
#define SAMPLE_PAGES 4u
/*
 * After a full try that did not pay although its sample did, the batches
 * that follow are sent without a sample: 1, then 2, 4 ... up to this many
 * after each further such try in a row. Near-random memory can have pages
 * that compress among many that do not; each full try of a batch costs as
 * much as compressing it, so a live pass paid it again and again.
 */
#define BACKOFF_MAX 64u
/* Raw bytes per record at most: well inside the record length cap. */
#define CHUNK_BYTES (32u << 20)
/* The decoder's window is bounded by the decompressed size; never more. */
#define WINDOW_LOG_CAP 27

static void st_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void st_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t ld_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t ld_le64(const uint8_t *p)
{
    return (uint64_t)ld_le32(p) | (uint64_t)ld_le32(p + 4) << 32;
}

/* ---- Writer ------------------------------------------------------------- */

struct compress_enc {
    ZSTD_CCtx *cctx;
    int level;
    size_t batch;
    uint32_t psz;
    size_t chunk_pages;      /* pages per record at most */
    uint64_t *d_pfns;        /* the entries with data */
    uint8_t *d_types;
    const uint8_t **d_pages;
    uint64_t *n_pfns;        /* the entries without */
    uint8_t *n_types;
    uint8_t *ents;           /* encoded pfn entries of one record */
    uint8_t *out;            /* one frame */
    size_t out_cap;
    uint8_t *sample;
    bool off;                /* no full try until a sample pays */
    bool live;               /* compress_set_live */
    unsigned backoff;        /* batches skipped after the last failed try */
    unsigned wait;           /* batches still to skip before a sample */
    struct compress_stats *st;
};

struct compress_enc *compress_enc_new(int level, size_t batch,
                                      uint32_t page_size,
                                      struct compress_stats *st)
{
    struct compress_enc *z = calloc(1, sizeof(*z));

    if (!z)
        return NULL;
    z->level = level;
    z->batch = batch ? batch : 1;
    z->psz = page_size;
    z->chunk_pages = CHUNK_BYTES / page_size;
    if (z->chunk_pages > z->batch)
        z->chunk_pages = z->batch;
    z->st = st;
    st->level = level;
    /* Off until a sample pays: random memory never costs a full try. */
    z->off = true;
    z->cctx = ZSTD_createCCtx();
    z->d_pfns = calloc(z->batch, sizeof(uint64_t));
    z->d_types = calloc(z->batch, 1);
    z->d_pages = calloc(z->batch, sizeof(*z->d_pages));
    z->n_pfns = calloc(z->batch, sizeof(uint64_t));
    z->n_types = calloc(z->batch, 1);
    z->ents = calloc(z->chunk_pages, 8);
    z->out_cap = ZSTD_compressBound(z->chunk_pages * (size_t)page_size);
    z->out = malloc(z->out_cap);
    z->sample = malloc((size_t)SAMPLE_PAGES * page_size);
    if (!z->cctx || !z->d_pfns || !z->d_types || !z->d_pages || !z->n_pfns ||
        !z->n_types || !z->ents || !z->out || !z->sample ||
        ZSTD_isError(ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_compressionLevel,
                                            level))) {
        compress_enc_free(z);
        errno = ENOMEM;
        return NULL;
    }
    return z;
}

void compress_enc_free(struct compress_enc *z)
{
    if (!z)
        return;
    ZSTD_freeCCtx(z->cctx);
    free(z->d_pfns);
    free(z->d_types);
    free(z->d_pages);
    free(z->n_pfns);
    free(z->n_types);
    free(z->ents);
    free(z->out);
    free(z->sample);
    free(z);
}

/* This thread's CPU time: what compressing costs, whatever the load. */
static uint64_t cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool pays(const struct compress_enc *z, size_t frame, size_t raw)
{
    return frame + COMPRESS_HEAD_SIZE <=
           raw - raw / (z->live ? PAY_DIVISOR_LIVE : PAY_DIVISOR);
}

void compress_set_live(struct compress_enc *z, bool live)
{
    z->live = live;
}

/* While off: whether a few pages spread over the batch compress. */
static bool sample_pays(struct compress_enc *z, const uint8_t *const *pages,
                        size_t n)
{
    size_t k = n < SAMPLE_PAGES ? n : SAMPLE_PAGES, len;

    for (size_t i = 0; i < k; i++)
        memcpy(z->sample + i * z->psz, pages[i * n / k], z->psz);
    len = ZSTD_compressCCtx(z->cctx, z->out, z->out_cap, z->sample,
                            k * z->psz, z->level);
    z->st->probes++;
    return !ZSTD_isError(len) && pays(z, len, k * z->psz);
}

/* Compresses pages[0..n) into z->out as one frame. Its size, or 0 on a
 * zstd error (then the pages go uncompressed). */
static size_t compress_frame(struct compress_enc *z,
                             const uint8_t *const *pages, size_t n)
{
    ZSTD_outBuffer ob = {z->out, z->out_cap, 0};

    ZSTD_CCtx_reset(z->cctx, ZSTD_reset_session_only);
    if (ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(
            z->cctx, (unsigned long long)n * z->psz)))
        return 0;
    for (size_t i = 0; i < n; i++) {
        ZSTD_inBuffer ib = {pages[i], z->psz, 0};
        ZSTD_EndDirective mode = i + 1 == n ? ZSTD_e_end : ZSTD_e_continue;
        size_t left;

        do {
            left = ZSTD_compressStream2(z->cctx, &ob, &ib, mode);
            if (ZSTD_isError(left))
                return 0;
        } while (mode == ZSTD_e_end ? left != 0 : ib.pos < ib.size);
    }
    return ob.pos;
}

/* One record's worth of data pages: COMPRESSED_PAGES or PAGE_DATA. */
static int write_chunk(struct compress_enc *z, struct stream_writer *w,
                       const uint64_t *pfns, const uint8_t *types,
                       const uint8_t *const *pages, size_t n)
{
    const size_t raw = n * (size_t)z->psz;
    size_t frame = 0;
    uint64_t t0 = cpu_ns();
    bool try_it;

    if (z->off && z->wait) {
        z->wait--;
        try_it = false;
    } else {
        try_it = !z->off || sample_pays(z, pages, n);
    }
    z->st->batches++;
    if (try_it)
        frame = compress_frame(z, pages, n);
    z->st->ns += cpu_ns() - t0;
    if (!try_it) {
        z->st->skipped++;
    } else if (!frame || !pays(z, frame, raw)) {
        z->st->not_paying++;
        /* A sample that paid led here: back off before the next one. */
        if (z->off)
            z->backoff = z->backoff ? 2 * z->backoff : 1;
        if (z->backoff > BACKOFF_MAX)
            z->backoff = BACKOFF_MAX;
        z->wait = z->backoff;
        z->off = true;
    } else {
        uint8_t head[COMPRESS_HEAD_SIZE];
        struct iovec iov[3] = {
            {head, sizeof(head)},
            {z->ents, 8 * n},
            {z->out, frame},
        };

        z->off = false;
        z->backoff = z->wait = 0;
        st_le32(head, (uint32_t)n);
        st_le32(head + 4, (uint32_t)frame);
        for (size_t i = 0; i < n; i++)
            st_le64(z->ents + 8 * i,
                    pfns[i] | (uint64_t)types[i] << STREAM_PFN_TYPE_SHIFT);
        z->st->compressed++;
        z->st->pages += n;
        z->st->raw_bytes += raw;
        z->st->frame_bytes += frame;
        return stream_write_record(w, STREAM_REC_COMPRESSED_PAGES, iov, 3);
    }
    return stream_write_page_data(w, pfns, types, n, pages, z->psz);
}

int compress_write_pages(struct compress_enc *z, struct stream_writer *w,
                         const uint64_t *pfns, const uint8_t *types, size_t n,
                         const uint8_t *const *pages, size_t page_size)
{
    size_t nd = 0, nn = 0;

    if (n > z->batch || page_size != z->psz) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t t = types ? types[i] : XCC_PFN_NORMAL;

        if (stream_pfn_type_has_data(t)) {
            z->d_pfns[nd] = pfns[i];
            z->d_types[nd] = t;
            z->d_pages[nd++] = pages[i];
        } else {
            z->n_pfns[nn] = pfns[i];
            z->n_types[nn++] = t;
        }
    }
    if (nn && stream_write_page_data(w, z->n_pfns, z->n_types, nn, NULL,
                                     page_size) < 0)
        return -1;
    for (size_t i = 0; i < nd; i += z->chunk_pages) {
        size_t k = nd - i < z->chunk_pages ? nd - i : z->chunk_pages;

        if (write_chunk(z, w, z->d_pfns + i, z->d_types + i, z->d_pages + i,
                        k) < 0)
            return -1;
    }
    return 0;
}

/* ---- Reader ------------------------------------------------------------- */

struct compress_dec {
    ZSTD_DCtx *dctx;
    uint8_t *buf; /* a PAGE_DATA body: header, entries, pages (+1 byte) */
    size_t cap;
};

void compress_dec_free(void *dec)
{
    struct compress_dec *z = dec;

    if (!z)
        return;
    ZSTD_freeDCtx(z->dctx);
    free(z->buf);
    free(z);
}

static struct compress_dec *dec_of(struct stream_reader *r)
{
    void **slot = stream_reader_zdec(r);
    struct compress_dec *z = *slot;

    if (z)
        return z;
    z = calloc(1, sizeof(*z));
    if (!z)
        return NULL;
    z->dctx = ZSTD_createDCtx();
    if (!z->dctx) {
        free(z);
        return NULL;
    }
    *slot = z;
    return z;
}

/* Decompresses frame into dst: exactly want bytes, never more. */
static int inflate_bounded(struct stream_reader *r,
                           const struct stream_record *rec,
                           struct compress_dec *z, const uint8_t *frame,
                           size_t flen, uint8_t *dst, size_t want)
{
    ZSTD_inBuffer in = {frame, flen, 0};
    ZSTD_outBuffer out = {dst, want + 1, 0};
    int wlog = 10;
    size_t ret;

    while (wlog < WINDOW_LOG_CAP && ((size_t)1 << wlog) < want)
        wlog++;
    ZSTD_DCtx_reset(z->dctx, ZSTD_reset_session_and_parameters);
    if (ZSTD_isError(ZSTD_DCtx_setParameter(z->dctx, ZSTD_d_windowLogMax,
                                            wlog)))
        return stream_rec_fail(r, rec, ENOMEM, "cannot set up the zstd "
                               "decoder");
    for (;;) {
        size_t in0 = in.pos, out0 = out.pos;

        ret = ZSTD_decompressStream(z->dctx, &out, &in);
        if (ZSTD_isError(ret))
            return stream_rec_fail(r, rec, XCC_EBADSTREAM,
                                   "the zstd frame does not decode after %zu "
                                   "of its %zu bytes: %s", in.pos, flen,
                                   ZSTD_getErrorName(ret));
        if (out.pos > want)
            return stream_rec_fail(r, rec, XCC_EBADSTREAM,
                                   "the zstd frame expands past count x page "
                                   "size = %zu bytes", want);
        if (ret == 0)
            break;
        if (in.pos == in0 && out.pos == out0)
            return stream_rec_fail(r, rec, XCC_EBADSTREAM,
                                   "the zstd frame is truncated: %zu bytes "
                                   "decoded of count x page size = %zu",
                                   out.pos, want);
    }
    if (in.pos != flen)
        return stream_rec_fail(r, rec, XCC_EBADSTREAM,
                               "%zu bytes follow the zstd frame in its %zu "
                               "bytes", flen - in.pos, flen);
    if (out.pos != want)
        return stream_rec_fail(r, rec, XCC_EBADSTREAM,
                               "the zstd frame decodes to %zu bytes, not "
                               "count x page size = %zu", out.pos, want);
    return 0;
}

int compress_parse_pages(struct stream_reader *r,
                         const struct stream_record *rec, uint64_t nr_pfns,
                         uint32_t page_size, struct stream_page_data *out)
{
    struct compress_dec *z;
    uint32_t count, flen;
    uint64_t raw, need;

    if (rec->type == STREAM_REC_PAGE_DATA)
        return stream_parse_page_data(r, rec, nr_pfns, page_size, out);
    if (rec->type != STREAM_REC_COMPRESSED_PAGES || !rec->body) {
        errno = EINVAL;
        return -1;
    }
    if (rec->length < COMPRESS_HEAD_SIZE)
        return stream_rec_fail(r, rec, XCC_EBADSTREAM,
                               "body of %" PRIu32 " bytes is shorter than "
                               "its %u-byte header", rec->length,
                               COMPRESS_HEAD_SIZE);
    count = ld_le32(rec->body);
    flen = ld_le32(rec->body + 4);
    if (count == 0)
        return stream_rec_fail(r, rec, XCC_EBADSTREAM, "count is 0");
    need = COMPRESS_HEAD_SIZE + 8 * (uint64_t)count + flen;
    if (rec->length != need)
        return stream_rec_fail(r, rec, XCC_EBADSTREAM,
                               "body holds %" PRIu32 " bytes but %" PRIu32
                               " pfns and a %" PRIu32 "-byte frame need %"
                               PRIu64, rec->length, count, flen, need);
    raw = (uint64_t)count * page_size;
    if (raw > STREAM_REC_LENGTH_MAX)
        return stream_rec_fail(r, rec, XCC_EBADSTREAM,
                               "%" PRIu32 " pages of %" PRIu32 " bytes: more "
                               "than the %u bytes a record may carry",
                               count, page_size, STREAM_REC_LENGTH_MAX);
    for (uint32_t i = 0; i < count; i++) {
        uint64_t e = ld_le64(rec->body + COMPRESS_HEAD_SIZE + 8 * (size_t)i);
        unsigned type = (unsigned)(e >> STREAM_PFN_TYPE_SHIFT);

        if (stream_pfn_type_valid(type) && !stream_pfn_type_has_data(type))
            return stream_rec_fail(r, rec, XCC_EBADSTREAM,
                                   "pfn entry %" PRIu32 " (0x%016" PRIx64
                                   ") has type 0x%x (%s), which carries no "
                                   "data", i, e, type,
                                   stream_pfn_type_name(type));
    }
    z = dec_of(r);
    need = COMPRESS_HEAD_SIZE + 8 * (uint64_t)count + raw + 1;
    if (z && z->cap < need) {
        free(z->buf);
        z->buf = malloc(need);
        z->cap = z->buf ? need : 0;
    }
    if (!z || !z->buf)
        return stream_rec_fail(r, rec, ENOMEM, "cannot allocate %" PRIu64
                               " bytes to decompress into", need);
    /* The same pages as a PAGE_DATA body, checked by PAGE_DATA's rules. */
    st_le32(z->buf, count);
    st_le32(z->buf + 4, 0);
    memcpy(z->buf + 8, rec->body + COMPRESS_HEAD_SIZE, 8 * (size_t)count);
    if (inflate_bounded(r, rec, z,
                        rec->body + COMPRESS_HEAD_SIZE + 8 * (size_t)count,
                        flen, z->buf + 8 + 8 * (size_t)count, (size_t)raw) < 0)
        return -1;
    return stream_parse_page_body(r, rec, z->buf,
                                  (uint32_t)(need - 1), nr_pfns, page_size,
                                  out);
}

/* ---- Figures ------------------------------------------------------------ */

static void put_u64(struct json_object *o, const char *k, uint64_t v)
{
    json_object_object_add(o, k, json_object_new_uint64(v));
}

static void put_dbl(struct json_object *o, const char *k, double v)
{
    char buf[32];

    snprintf(buf, sizeof(buf), "%.3f", v);
    json_object_object_add(o, k, json_object_new_double_s(v, buf));
}

void compress_json(struct json_object *root, const struct compress_stats *st)
{
    struct json_object *o;

    if (!st->level || !(o = json_object_new_object()))
        return;
    json_object_object_add(root, "compression", o);
    json_object_object_add(o, "method", json_object_new_string("zstd"));
    put_u64(o, "level", (uint64_t)st->level);
    put_u64(o, "batches", st->batches);
    put_u64(o, "compressed-batches", st->compressed);
    put_u64(o, "not-paying", st->not_paying);
    put_u64(o, "skipped", st->skipped);
    put_u64(o, "probes", st->probes);
    put_u64(o, "pages", st->pages);
    put_u64(o, "raw-bytes", st->raw_bytes);
    put_u64(o, "frame-bytes", st->frame_bytes);
    put_dbl(o, "ratio", st->frame_bytes ? (double)st->raw_bytes /
                                              (double)st->frame_bytes : 0);
    put_dbl(o, "cpu-ms", (double)st->ns / 1e6);
}
