/*
 * test_compress.c - COMPRESSED_PAGES (compress.c): the writer's choices
 * (compressed when it pays, PAGE_DATA when not, back on when it pays
 * again), exact round trips, and hostile records (truncated, oversized,
 * trailing bytes, bombs that expand past the pages, bad entries), each
 * refused with one error naming the record and its offset.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <zstd.h>

#include "capture_log.h"
#include "compress.h"
#include "stream.h"

#define PAGE 4096u
#define NPFNS 4096u

static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void seed(void)
{
    const char *e = getenv("TEST_SEED");

    rng_state = e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL) | 1;
    fprintf(stderr, "test_compress: seed %#llx (TEST_SEED to repeat)\n",
            (unsigned long long)rng_state);
}

/* A Linux-like page: text-ish runs and small integers, compressible. */
static void fill_text(uint8_t *p, unsigned salt)
{
    for (unsigned i = 0; i < PAGE; i++)
        p[i] = (uint8_t)("struct page *pfn_to_page(unsigned long)"[
                   (i + salt) % 39] ^ ((i / 512) & salt & 3));
}

static void fill_random(uint8_t *p)
{
    for (unsigned i = 0; i < PAGE; i += 8) {
        uint64_t v = rnd();
        memcpy(p + i, &v, 8);
    }
}

/* Near-random pages: the first zero_bytes of each zero, the rest random;
 * ptrs and pfns set to match. */
static void fill_part_zero(uint8_t (*pages)[PAGE], const uint8_t **ptrs,
                           uint64_t *pfns, unsigned n, size_t zero_bytes)
{
    for (unsigned i = 0; i < n; i++) {
        fill_random(pages[i]);
        memset(pages[i], 0, zero_bytes);
        ptrs[i] = pages[i];
        pfns[i] = i;
    }
}

/* A writer on a fresh memfd, headers written. */
static struct stream_writer *open_writer(int *fd)
{
    struct stream_writer *w;

    *fd = memfd_create("compress-test", 0);
    cr_assert(*fd >= 0);
    w = stream_writer_new(*fd, LOG);
    cr_assert(w);
    cr_assert(stream_write_headers(w, XCC_DHDR_TYPE_SIM, 12, 0, 0) == 0);
    return w;
}

static struct stream_reader *open_reader(int fd)
{
    struct stream_headers h;
    struct stream_reader *r;

    cr_assert(lseek(fd, 0, SEEK_SET) == 0);
    r = stream_reader_new(fd, LOG);
    cr_assert(r);
    cr_assert(stream_read_headers(r, &h) == 0);
    return r;
}

TestSuite(compress, .timeout = 60);

Test(compress, compressible_batch_round_trips_exactly)
{
    struct compress_stats st = {0};
    struct compress_enc *z = compress_enc_new(1, 64, PAGE, &st);
    static uint8_t pages[64][PAGE];
    const uint8_t *ptrs[64];
    uint64_t pfns[64];
    uint8_t types[64];
    struct stream_record rec;
    struct stream_page_data pd;
    int fd;
    struct stream_writer *w = open_writer(&fd);

    seed();
    cr_assert(z);
    for (unsigned i = 0; i < 64; i++) {
        fill_text(pages[i], (unsigned)rnd() % 97);
        ptrs[i] = pages[i];
        pfns[i] = (i * 61 + 7) % NPFNS;
        types[i] = XCC_PFN_NORMAL;
    }
    /* Two holes: they go as PAGE_DATA without data. */
    types[5] = XCC_PFN_XTAB;
    types[40] = XCC_PFN_XTAB;
    cr_assert(compress_write_pages(z, w, pfns, types, 64, ptrs, PAGE) == 0);
    cr_assert_eq(st.compressed, 1);
    cr_assert_eq(st.pages, 62);
    cr_assert(st.frame_bytes * 3 < st.raw_bytes, "ratio %llu/%llu",
              (unsigned long long)st.raw_bytes,
              (unsigned long long)st.frame_bytes);

    struct stream_reader *r = open_reader(fd);
    cr_assert(stream_read_record(r, &rec) == 0);
    cr_assert_eq(rec.type, STREAM_REC_PAGE_DATA);
    cr_assert(compress_parse_pages(r, &rec, NPFNS, PAGE, &pd) == 0);
    cr_assert_eq(pd.count, 2);
    cr_assert(stream_read_record(r, &rec) == 0);
    cr_assert_eq(rec.type, STREAM_REC_COMPRESSED_PAGES);
    cr_assert(compress_parse_pages(r, &rec, NPFNS, PAGE, &pd) == 0);
    cr_assert_eq(pd.count, 62);
    for (unsigned i = 0, j = 0; i < 64; i++) {
        if (types[i] != XCC_PFN_NORMAL)
            continue;
        cr_assert_eq(pd.pfns[j], pfns[i]);
        cr_assert_eq(pd.types[j], XCC_PFN_NORMAL);
        cr_assert(memcmp(pd.pages[j], pages[i], PAGE) == 0, "page %u", i);
        j++;
    }
    stream_reader_free(r);
    stream_writer_free(w);
    compress_enc_free(z);
    close(fd);
}

Test(compress, switches_off_on_random_data_and_back_on)
{
    struct compress_stats st = {0};
    struct compress_enc *z = compress_enc_new(3, 32, PAGE, &st);
    static uint8_t pages[32][PAGE];
    const uint8_t *ptrs[32];
    uint64_t pfns[32];
    struct stream_record rec;
    struct stream_page_data pd;
    int fd;
    struct stream_writer *w = open_writer(&fd);

    seed();
    for (unsigned i = 0; i < 32; i++) {
        fill_random(pages[i]);
        ptrs[i] = pages[i];
        pfns[i] = i;
    }
    /* Random: only sampled, never tried in full. */
    for (int b = 0; b < 4; b++)
        cr_assert(compress_write_pages(z, w, pfns, NULL, 32, ptrs, PAGE) == 0);
    cr_assert_eq(st.not_paying, 0);
    cr_assert_eq(st.skipped, 4);
    cr_assert_eq(st.probes, 4);
    cr_assert_eq(st.compressed, 0);
    /* The sample (pages 0, 8, 16, 24) pays, the whole batch does not:
     * sent as PAGE_DATA, compression off again. */
    for (unsigned i = 0; i < 32; i += 8) {
        /* Half a page of text: the sample saves ~50%, the batch < 1/16. */
        fill_text(pages[i], i);
        for (unsigned j = PAGE / 2; j < PAGE; j += 8) {
            uint64_t v = rnd();
            memcpy(pages[i] + j, &v, 8);
        }
    }
    cr_assert(compress_write_pages(z, w, pfns, NULL, 32, ptrs, PAGE) == 0);
    cr_assert_eq(st.not_paying, 1);
    cr_assert_eq(st.compressed, 0);
    /* Compressible again. The failed try backs off: the next batch goes
     * without a sample; then the sample pays, compression is back on. */
    for (unsigned i = 0; i < 32; i++)
        fill_text(pages[i], i);
    uint64_t probes = st.probes;
    cr_assert(compress_write_pages(z, w, pfns, NULL, 32, ptrs, PAGE) == 0);
    cr_assert_eq(st.compressed, 0);
    cr_assert_eq(st.probes, probes);
    cr_assert(compress_write_pages(z, w, pfns, NULL, 32, ptrs, PAGE) == 0);
    cr_assert_eq(st.compressed, 1);

    struct stream_reader *r = open_reader(fd);
    for (int b = 0; b < 7; b++) {
        cr_assert(stream_read_record(r, &rec) == 0);
        cr_assert_eq(rec.type, b < 6 ? STREAM_REC_PAGE_DATA
                                     : STREAM_REC_COMPRESSED_PAGES);
        cr_assert(compress_parse_pages(r, &rec, NPFNS, PAGE, &pd) == 0);
        cr_assert_eq(pd.count, 32);
    }
    for (unsigned i = 0; i < 32; i++)
        cr_assert(memcmp(pd.pages[i], pages[i], PAGE) == 0);
    stream_reader_free(r);
    stream_writer_free(w);
    compress_enc_free(z);
    close(fd);
}

/* ---- hostile records ---- */

static void le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A zstd frame of n pages filled with byte v (n may be large). */
static size_t frame_of(uint8_t *out, size_t room, size_t n, uint8_t v)
{
    size_t len = n * PAGE, r;
    uint8_t *src = malloc(len);

    cr_assert(src);
    memset(src, v, len);
    r = ZSTD_compress(out, room, src, len, 3);
    cr_assert(!ZSTD_isError(r));
    free(src);
    return r;
}

/* The same with a 1 KiB window: small enough for any decoder bound. */
static size_t frame_small_window(uint8_t *out, size_t room, size_t n,
                                 uint8_t v)
{
    size_t len = n * PAGE, r;
    uint8_t *src = malloc(len);
    ZSTD_CCtx *c = ZSTD_createCCtx();

    cr_assert(src && c);
    memset(src, v, len);
    cr_assert(!ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, 10)));
    r = ZSTD_compress2(c, out, room, src, len);
    cr_assert(!ZSTD_isError(r));
    ZSTD_freeCCtx(c);
    free(src);
    return r;
}

/*
 * Writes one COMPRESSED_PAGES record whose header says count and flen,
 * with entries ents[0..nents) and body bytes frame[0..len), and checks that
 * the parse fails with XCC_EBADSTREAM and an error containing `want`.
 */
static void expect_refused(uint32_t count, uint32_t flen, const uint64_t *ents,
                           size_t nents, const uint8_t *frame, size_t len,
                           const char *want)
{
    uint8_t head[8];
    uint8_t *eb = calloc(nents ? nents : 1, 8);
    struct iovec iov[3] = {{head, 8}, {eb, 8 * nents}, {(void *)frame, len}};
    struct stream_record rec;
    struct stream_page_data pd;
    int fd;
    struct stream_writer *w = open_writer(&fd);

    le32(head, count);
    le32(head + 4, flen);
    for (size_t i = 0; i < nents; i++)
        le64(eb + 8 * i, ents[i]);
    cr_assert(stream_write_record(w, STREAM_REC_COMPRESSED_PAGES, iov, 3) == 0);
    struct stream_reader *r = open_reader(fd);
    cr_assert(stream_read_record(r, &rec) == 0);
    cap.errors = 0;
    cr_assert(compress_parse_pages(r, &rec, NPFNS, PAGE, &pd) < 0, "%s", want);
    cr_assert_eq(errno, XCC_EBADSTREAM, "%s: errno %d", want, errno);
    cr_assert_eq(cap.errors, 1, "%s: %d errors", want, cap.errors);
    cr_assert(strstr(cap.last, "COMPRESSED_PAGES") &&
              strstr(cap.last, "offset 40"), "%s", cap.last);
    cr_assert(strstr(cap.last, want), "wanted '%s' in: %s", want, cap.last);
    stream_reader_free(r);
    stream_writer_free(w);
    free(eb);
    close(fd);
}

/*
 * Near-random memory does not pay: pages that zstd shrinks by about a
 * tenth (a tenth of each page zeros, the rest random) save less than an
 * eighth, so neither the samples nor a batch turn compression on, and the
 * pages go as PAGE_DATA. At a sixteenth they did, and zstd's slow passes
 * over such data cost a live migration more bytes than they saved.
 */
Test(compress, a_tenth_saved_does_not_pay)
{
    struct compress_stats st = {0};
    struct compress_enc *z = compress_enc_new(1, 32, PAGE, &st);
    static uint8_t pages[32][PAGE];
    const uint8_t *ptrs[32];
    uint64_t pfns[32];
    size_t len;
    int fd;
    struct stream_writer *w = open_writer(&fd);

    seed();
    fill_part_zero(pages, ptrs, pfns, 32, PAGE / 10);
    /* The data really is about a tenth compressible. */
    {
        size_t bound = ZSTD_compressBound(sizeof(pages));
        uint8_t *out = malloc(bound);

        cr_assert(out);
        len = ZSTD_compress(out, bound, pages, sizeof(pages), 1);
        cr_assert(!ZSTD_isError(len));
        cr_assert(len < sizeof(pages) - sizeof(pages) / 16,
                  "%zu of %zu: saves a sixteenth or more", len, sizeof(pages));
        cr_assert(len > sizeof(pages) - sizeof(pages) / 8,
                  "%zu of %zu: saves less than an eighth", len, sizeof(pages));
        free(out);
    }
    for (int b = 0; b < 4; b++)
        cr_assert(compress_write_pages(z, w, pfns, NULL, 32, ptrs, PAGE) == 0);
    cr_assert_eq(st.compressed, 0);
    cr_assert_eq(st.probes, 4);
    cr_assert_eq(st.skipped, 4);
    stream_writer_free(w);
    compress_enc_free(z);
    close(fd);
}

/*
 * A live pass asks for a quarter saved, a paused one for an eighth: pages
 * a fifth zeros and the rest random compress in a paused pass and go as
 * PAGE_DATA in a live one (sampled only).
 */
Test(compress, a_live_pass_asks_for_a_quarter)
{
    struct compress_stats st = {0};
    struct compress_enc *z = compress_enc_new(1, 32, PAGE, &st);
    static uint8_t pages[32][PAGE];
    const uint8_t *ptrs[32];
    uint64_t pfns[32];
    int fd;
    struct stream_writer *w = open_writer(&fd);

    seed();
    fill_part_zero(pages, ptrs, pfns, 32, PAGE / 5);
    compress_set_live(z, true);
    for (int b = 0; b < 3; b++)
        cr_assert(compress_write_pages(z, w, pfns, NULL, 32, ptrs, PAGE) == 0);
    cr_assert_eq(st.compressed, 0);
    cr_assert_eq(st.not_paying, 0, "the samples alone turned it down");
    compress_set_live(z, false);
    cr_assert(compress_write_pages(z, w, pfns, NULL, 32, ptrs, PAGE) == 0);
    cr_assert_eq(st.compressed, 1);
    cr_assert(st.frame_bytes < st.raw_bytes - st.raw_bytes / 8);
    cr_assert(st.frame_bytes > st.raw_bytes - st.raw_bytes / 4);
    stream_writer_free(w);
    compress_enc_free(z);
    close(fd);
}

Test(compress, hostile_records_are_refused)
{
    static uint8_t frame[1 << 20];
    uint64_t ents[4] = {1, 2, 3, 4};
    size_t f4 = frame_of(frame, sizeof(frame), 4, 0x5a), f;

    /* The well-formed record parses (so the failures below are real). */
    {
        uint8_t head[8];
        uint8_t eb[32];
        struct iovec iov[3] = {{head, 8}, {eb, 32}, {frame, f4}};
        struct stream_record rec;
        struct stream_page_data pd;
        int fd;
        struct stream_writer *w = open_writer(&fd);

        le32(head, 4);
        le32(head + 4, (uint32_t)f4);
        for (int i = 0; i < 4; i++)
            le64(eb + 8 * i, ents[i]);
        cr_assert(stream_write_record(w, STREAM_REC_COMPRESSED_PAGES, iov,
                                      3) == 0);
        struct stream_reader *r = open_reader(fd);
        cr_assert(stream_read_record(r, &rec) == 0);
        cr_assert(compress_parse_pages(r, &rec, NPFNS, PAGE, &pd) == 0);
        cr_assert_eq(pd.count, 4);
        cr_assert_eq(pd.pages[3][PAGE - 1], 0x5a);
        stream_reader_free(r);
        stream_writer_free(w);
        close(fd);
    }
    expect_refused(0, 0, NULL, 0, NULL, 0, "count is 0");
    expect_refused(4, (uint32_t)f4 + 1, ents, 4, frame, f4, "need");
    /* Truncated: the frame's last bytes cut off (lengths consistent). */
    expect_refused(4, (uint32_t)f4 - 3, ents, 4, frame, f4 - 3, "truncated");
    /* A bomb: 1024 pages of zeros claimed to be 4 pages. Its window is
     * already more than 4 pages may need: refused before decoding. */
    f = frame_of(frame, sizeof(frame), 1024, 0);
    expect_refused(4, (uint32_t)f, ents, 4, frame, f, "does not decode");
    /* The same with a small window: decoded until it passes 4 pages. */
    f = frame_small_window(frame, sizeof(frame), 1024, 0);
    expect_refused(4, (uint32_t)f, ents, 4, frame, f, "expands past");
    /* Fewer bytes than the count needs. */
    f = frame_of(frame, sizeof(frame), 3, 0x11);
    expect_refused(4, (uint32_t)f, ents, 4, frame, f, "decodes to");
    /* Bytes after the frame. */
    f = frame_of(frame, sizeof(frame), 4, 0x11);
    frame[f] = 0xee;
    expect_refused(4, (uint32_t)f + 1, ents, 4, frame, f + 1, "follow");
    /* Garbage instead of a frame. */
    memset(frame, 0xa5, 64);
    expect_refused(4, 64, ents, 4, frame, 64, "does not decode");
    /* Entries: a hole carries no data; an invalid type; out of range; twice. */
    f4 = frame_of(frame, sizeof(frame), 4, 0x22);
    uint64_t hole[4] = {1, 2, 3, 4 | (uint64_t)XCC_PFN_XTAB << 60};
    expect_refused(4, (uint32_t)f4, hole, 4, frame, f4, "carries no data");
    uint64_t reserved[4] = {1, 2, 3, 4 | 1ull << 55};
    expect_refused(4, (uint32_t)f4, reserved, 4, frame, f4, "reserved bits");
    uint64_t beyond[4] = {1, 2, 3, NPFNS};
    expect_refused(4, (uint32_t)f4, beyond, 4, frame, f4, "beyond");
    uint64_t twice[4] = {1, 2, 3, 2};
    expect_refused(4, (uint32_t)f4, twice, 4, frame, f4, "twice");
    /* More pages than a record may decompress to: refused before any
     * decompression (the entries are not even there). */
    {
        uint8_t head[8];
        struct iovec iov[1] = {{head, 8}};
        struct stream_record rec;
        struct stream_page_data pd;
        int fd;
        struct stream_writer *w = open_writer(&fd);
        uint32_t count = (STREAM_REC_LENGTH_MAX / PAGE) + 1;
        uint8_t *body = calloc(1, 8 + 8 * (size_t)count);

        le32(body, count);
        le32(body + 4, 0);
        iov[0].iov_base = body;
        iov[0].iov_len = 8 + 8 * (size_t)count;
        cr_assert(stream_write_record(w, STREAM_REC_COMPRESSED_PAGES, iov,
                                      1) == 0);
        struct stream_reader *r = open_reader(fd);
        cr_assert(stream_read_record(r, &rec) == 0);
        cr_assert(compress_parse_pages(r, &rec, STREAM_PFN_LIMIT, PAGE,
                                       &pd) < 0);
        cr_assert_eq(errno, XCC_EBADSTREAM);
        cr_assert(strstr(cap.last, "more than"), "%s", cap.last);
        stream_reader_free(r);
        stream_writer_free(w);
        free(body);
        close(fd);
    }
}
