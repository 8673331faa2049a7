/*
 * test_stream.c - the stream writer, reader, parsers and inspect: round
 * trips of every record, a stock Xen stream built by hand from the spec,
 * and hostile input (truncation, flipped bytes, each malformed field).
 */
#include <criterion/criterion.h>
#include <endian.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "capture_log.h"
#include "stream.h"
#include "xbzrle_impl.h"

#define PAGE 4096u

/* ---- Byte buffers and fds ---- */

static int memfd_with(const void *buf, size_t len)
{
    int fd = memfd_create("stream-test", 0);
    size_t off = 0;

    cr_assert(fd >= 0);
    while (off < len) {
        ssize_t n = write(fd, (const uint8_t *)buf + off, len - off);
        cr_assert(n > 0);
        off += (size_t)n;
    }
    cr_assert(lseek(fd, 0, SEEK_SET) == 0);
    return fd;
}

static uint8_t *slurp(int fd, size_t *len)
{
    struct stat st;
    uint8_t *buf;

    cr_assert(fstat(fd, &st) == 0);
    buf = malloc((size_t)st.st_size + 1);
    cr_assert(pread(fd, buf, (size_t)st.st_size, 0) == st.st_size);
    *len = (size_t)st.st_size;
    return buf;
}

/* Little-endian builders for hand-made streams. */
struct bb {
    uint8_t *p;
    size_t len, cap;
};

static void bb_put(struct bb *b, const void *src, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        cr_assert(b->p);
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void bb_u8(struct bb *b, uint8_t v)
{
    bb_put(b, &v, 1);
}
static void bb_u16(struct bb *b, uint16_t v)
{
    v = htole16(v);
    bb_put(b, &v, 2);
}
static void bb_u32(struct bb *b, uint32_t v)
{
    v = htole32(v);
    bb_put(b, &v, 4);
}
static void bb_u64(struct bb *b, uint64_t v)
{
    v = htole64(v);
    bb_put(b, &v, 8);
}
static void bb_zero(struct bb *b, size_t n)
{
    while (n--)
        bb_u8(b, 0);
}

/* Image header (big-endian) and domain header, straight from the spec. */
static void bb_headers(struct bb *b, uint32_t dtype, uint16_t shift,
                       uint32_t major, uint32_t minor)
{
    uint64_t marker = htobe64(0xFFFFFFFFFFFFFFFFull);
    uint32_t id = htobe32(0x58454E46u), version = htobe32(3);

    bb_put(b, &marker, 8);
    bb_put(b, &id, 4);
    bb_put(b, &version, 4);
    bb_zero(b, 8); /* options 0 = little-endian, reserved */
    bb_u32(b, dtype);
    bb_u16(b, shift);
    bb_u16(b, 0);
    bb_u32(b, major);
    bb_u32(b, minor);
}

/* A record from a body: header, body, zero padding to 8. */
static void bb_record(struct bb *b, uint32_t type, const void *body,
                      uint32_t len)
{
    bb_u32(b, type);
    bb_u32(b, len);
    if (len)
        bb_put(b, body, len);
    bb_zero(b, (8 - len % 8) % 8);
}

/* Runs xcc_stream_inspect over buf; returns rc, errno in *err. */
static int inspect_buf(const uint8_t *buf, size_t len,
                       struct xcc_inspect_totals *t, int *err)
{
    int fd = memfd_with(buf, len), rc;

    cap_reset();
    rc = xcc_stream_inspect(fd, LOG, 0, NULL, NULL, t);
    *err = errno;
    close(fd);
    return rc;
}

/* Two hand-made XBZRLE deltas for a 4096-byte page (QEMU's grammar). */
static const uint8_t delta_a[] = {0x00, 0x04, 'A', 'B', 'C', 'D'};
static const uint8_t delta_b[] = {0x64, 0x01, 'x', 0xC8, 0x01, 0x02, 'y', 'z'};

/*
 * A small xc-colo stream exercising every project record: GUEST_INFO,
 * PAGE_DATA, ZERO_PAGES, XBZRLE_PAGES, CHECKPOINT,
 * CHECKPOINT_DIRTY_PFN_LIST, STATS, DIGEST, CHECKPOINT, END, in an order
 * stream_order_check accepts. An x86 PV domain header: a sim stream may
 * not carry the page-table and BROKEN types it holds. Written into fd.
 */
#define NR_PFNS 64u
static uint8_t page_a[PAGE], page_b[PAGE];
static const char stats_json[] = "{\"iteration\":1,\"pages\":3}";

static void write_sample(int fd)
{
    struct stream_writer *w = stream_writer_new(fd, LOG);
    uint64_t pfns[] = {1, 2, 3, 7};
    uint8_t types[] = {XCC_PFN_NORMAL, XCC_PFN_XTAB, XCC_PFN_L1TAB,
                       XCC_PFN_BROKEN};
    const uint8_t *pages[] = {page_a, NULL, page_b, NULL};
    uint64_t zpfns[] = {10, 11, 12};
    uint64_t xpfns[] = {20, 21};
    uint32_t xlens[] = {sizeof(delta_a), sizeof(delta_b)};
    uint8_t xdata[sizeof(delta_a) + sizeof(delta_b)];
    uint64_t dpfns[] = {5, 6, 63};
    uint8_t whole[16], chunks[16];

    memset(page_a, 0xA5, sizeof(page_a));
    for (unsigned i = 0; i < PAGE; i++)
        page_b[i] = (uint8_t)i;
    memcpy(xdata, delta_a, sizeof(delta_a));
    memcpy(xdata + sizeof(delta_a), delta_b, sizeof(delta_b));
    memset(whole, 0x11, 16);
    memset(chunks, 0x22, 16);
    cr_assert(w);
    cr_assert_eq(stream_write_headers(w, XCC_DHDR_TYPE_X86_PV, 12, 0, 0), 0);
    cr_assert_eq(stream_write_guest_info(w, NR_PFNS, PAGE, 0), 0);
    cr_assert_eq(stream_write_page_data(w, pfns, types, 4, pages, PAGE), 0);
    cr_assert_eq(stream_write_zero_pages(w, zpfns, 3), 0);
    cr_assert_eq(stream_write_xbzrle_pages(w, xpfns, xlens, 2, xdata), 0);
    cr_assert_eq(stream_write_checkpoint(w), 0);
    cr_assert_eq(stream_write_dirty_pfn_list(w, dpfns, 3), 0);
    cr_assert_eq(stream_write_stats(w, stats_json, strlen(stats_json)), 0);
    cr_assert_eq(
        stream_write_digest(w, XCC_DIGEST_CHUNK_BYTES, 0, whole, chunks, 1), 0);
    cr_assert_eq(stream_write_static_data_end(w), 0);
    cr_assert_eq(stream_write_checkpoint(w), 0);
    cr_assert_eq(stream_write_end(w), 0);
    stream_writer_free(w);
}

static uint8_t *sample_bytes(size_t *len)
{
    int fd = memfd_create("sample", 0);
    uint8_t *buf;

    write_sample(fd);
    buf = slurp(fd, len);
    close(fd);
    return buf;
}

/* Stream offsets of every record of buf (which must be valid). */
static size_t record_offsets(const uint8_t *buf, size_t len, size_t *offs,
                             size_t max)
{
    size_t n = 0, off = STREAM_HEADERS_SIZE;

    while (off + 8 <= len && n < max) {
        uint32_t blen;
        memcpy(&blen, buf + off + 4, 4);
        offs[n++] = off;
        off += 8 + ((le32toh(blen) + 7) & ~7u);
    }
    return n;
}

/* ---- Round trips ---- */

struct pipe_writer {
    int fd;
    void (*fn)(int fd);
};

static void *pipe_writer_thread(void *arg)
{
    struct pipe_writer *pw = arg;
    pw->fn(pw->fd);
    close(pw->fd);
    return NULL;
}

/* Every test ends within this unless it sets its own .timeout. */
TestSuite(stream, .timeout = 120);

Test(stream, roundtrip_every_record_through_a_pipe)
{
    int p[2];
    pthread_t th;
    struct pipe_writer pw;
    struct stream_reader *r;
    struct stream_headers h;
    struct stream_record rec;

    cr_assert(pipe(p) == 0);
    pw.fd = p[1];
    pw.fn = write_sample;
    cr_assert(pthread_create(&th, NULL, pipe_writer_thread, &pw) == 0);
    r = stream_reader_new(p[0], LOG);
    cr_assert_eq(stream_read_headers(r, &h), 0);
    cr_assert_eq(h.version, 3);
    cr_assert_eq(h.dhdr_type, XCC_DHDR_TYPE_X86_PV);
    cr_assert_eq(h.page_size, PAGE);

    /* GUEST_INFO */
    struct stream_guest_info gi;
    cr_assert_eq(stream_read_record(r, &rec), 0);
    cr_assert_eq(rec.type, STREAM_REC_GUEST_INFO);
    cr_assert_eq(rec.offset, STREAM_HEADERS_SIZE);
    cr_assert_eq(stream_parse_guest_info(r, &rec, &gi), 0);
    cr_assert_eq(gi.nr_pfns, NR_PFNS);
    cr_assert_eq(gi.page_size, PAGE);

    /* PAGE_DATA */
    struct stream_page_data pd;
    cr_assert_eq(stream_read_record(r, &rec), 0);
    cr_assert_eq(rec.type, STREAM_REC_PAGE_DATA);
    cr_assert_eq(rec.length, 8 + 4 * 8 + 2 * PAGE);
    cr_assert_eq(stream_parse_page_data(r, &rec, NR_PFNS, PAGE, &pd), 0);
    cr_assert_eq(pd.count, 4);
    cr_assert_eq(pd.pfns[0], 1);
    cr_assert_eq(pd.pfns[3], 7);
    cr_assert_eq(pd.types[1], XCC_PFN_XTAB);
    cr_assert_eq(pd.types[2], XCC_PFN_L1TAB);
    cr_assert_null(pd.pages[1]);
    cr_assert_null(pd.pages[3]);
    cr_assert(memcmp(pd.pages[0], page_a, PAGE) == 0);
    cr_assert(memcmp(pd.pages[2], page_b, PAGE) == 0);

    /* ZERO_PAGES */
    struct stream_pfn_list zl;
    cr_assert_eq(stream_read_record(r, &rec), 0);
    cr_assert_eq(stream_parse_zero_pages(r, &rec, NR_PFNS, &zl), 0);
    cr_assert_eq(zl.count, 3);
    cr_assert_eq(zl.pfns[2], 12);

    /* XBZRLE_PAGES */
    struct stream_xbzrle_pages xp;
    cr_assert_eq(stream_read_record(r, &rec), 0);
    cr_assert_eq(stream_parse_xbzrle_pages(r, &rec, NR_PFNS, PAGE, &xp), 0);
    cr_assert_eq(xp.count, 2);
    cr_assert_eq(xp.pfns[1], 21);
    cr_assert_eq(xp.lens[0], sizeof(delta_a));
    cr_assert(memcmp(xp.deltas[0], delta_a, sizeof(delta_a)) == 0);
    cr_assert(memcmp(xp.deltas[1], delta_b, sizeof(delta_b)) == 0);

    /* CHECKPOINT, CHECKPOINT_DIRTY_PFN_LIST */
    struct stream_pfn_list dl;
    cr_assert_eq(stream_read_record(r, &rec), 0);
    cr_assert_eq(rec.type, STREAM_REC_CHECKPOINT);
    cr_assert_eq(stream_read_record(r, &rec), 0);
    cr_assert_eq(rec.type, STREAM_REC_CHECKPOINT_DIRTY_PFN_LIST);
    cr_assert_eq(rec.length, 24);
    cr_assert_eq(stream_parse_dirty_pfn_list(r, &rec, NR_PFNS, &dl), 0);
    cr_assert_eq(dl.count, 3);
    cr_assert_eq(dl.pfns[2], 63);

    /* STATS (optional) */
    cr_assert_eq(stream_read_record(r, &rec), 0);
    cr_assert_eq(rec.type, STREAM_REC_STATS);
    cr_assert(rec.type & STREAM_REC_OPTIONAL);
    cr_assert_eq(rec.length, strlen(stats_json));
    cr_assert(memcmp(rec.body, stats_json, rec.length) == 0);

    /* DIGEST */
    struct stream_digest dg;
    cr_assert_eq(stream_read_record(r, &rec), 0);
    cr_assert_eq(stream_parse_digest(r, &rec, NR_PFNS, &dg), 0);
    cr_assert_eq(dg.count, 1);
    cr_assert_eq(dg.chunk_bytes, XCC_DIGEST_CHUNK_BYTES);
    cr_assert_eq(dg.whole[0], 0x11);
    cr_assert_eq(dg.chunks[15], 0x22);

    cr_assert_eq(stream_read_record(r, &rec), 0);
    cr_assert_eq(rec.type, STREAM_REC_STATIC_DATA_END);
    cr_assert_eq(stream_read_record(r, &rec), 0);
    cr_assert_eq(rec.type, STREAM_REC_CHECKPOINT);
    cr_assert_eq(stream_read_record(r, &rec), 0);
    cr_assert_eq(rec.type, STREAM_REC_END);
    cr_assert_eq(stream_read_expect_eof(r), 0);
    /* Reading past END is a caller error, not a stream error. */
    cr_assert_eq(stream_read_record(r, &rec), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(cap.errors, 0, "unexpected error: %s", cap.last);
    pthread_join(th, NULL);
    stream_reader_free(r);
    close(p[0]);
}

Test(stream, writer_counts_bytes_and_pads)
{
    int fd = memfd_create("bytes", 0);
    struct stream_writer *w = stream_writer_new(fd, LOG);
    struct iovec iov[2] = {{(void *)"abc", 3}, {(void *)"de", 2}};
    size_t len;
    uint8_t *buf;

    cr_assert_eq(stream_write_headers(w, XCC_DHDR_TYPE_X86_HVM, 12, 4, 17), 0);
    cr_assert_eq(stream_writer_bytes(w), 40);
    cr_assert_eq(stream_write_record(w, 0x80001234u, iov, 2), 0);
    cr_assert_eq(stream_writer_bytes(w), 40 + 8 + 8);
    cr_assert_eq(stream_write_end(w), 0);
    buf = slurp(fd, &len);
    cr_assert_eq(len, stream_writer_bytes(w));
    /* The image header is big-endian, as the spec says. */
    cr_assert_eq(buf[0], 0xFF);
    cr_assert_eq(buf[8], 0x58);
    cr_assert_eq(buf[11], 0x46);
    cr_assert_eq(buf[15], 3);
    /* Domain header little-endian: HVM, shift 12, Xen 4.17. */
    cr_assert_eq(buf[24], 2);
    cr_assert_eq(buf[28], 12);
    cr_assert_eq(buf[32], 4);
    cr_assert_eq(buf[36], 17);
    cr_assert(memcmp(buf + 48, "abcde\0\0\0", 8) == 0);
    free(buf);
    stream_writer_free(w);
    close(fd);
}

Test(stream, record_with_more_iovecs_than_iov_max)
{
    enum { N = 3000 };
    int fd = memfd_create("iovmax", 0);
    struct stream_writer *w = stream_writer_new(fd, LOG);
    struct stream_reader *r;
    struct stream_headers h;
    struct stream_record rec;
    struct iovec *iov = calloc(N, sizeof(*iov));
    uint8_t bytes[N];

    for (int i = 0; i < N; i++) {
        bytes[i] = (uint8_t)(i * 7);
        iov[i].iov_base = &bytes[i];
        iov[i].iov_len = 1;
    }
    cr_assert_eq(stream_write_headers(w, XCC_DHDR_TYPE_SIM, 12, 0, 0), 0);
    cr_assert_eq(stream_write_record(w, 0x80000077u, iov, N), 0);
    cr_assert_eq(stream_write_end(w), 0);
    lseek(fd, 0, SEEK_SET);
    r = stream_reader_new(fd, LOG);
    cr_assert_eq(stream_read_headers(r, &h), 0);
    cr_assert_eq(stream_read_record(r, &rec), 0);
    cr_assert_eq(rec.length, N);
    cr_assert(memcmp(rec.body, bytes, N) == 0);
    free(iov);
    stream_reader_free(r);
    stream_writer_free(w);
    close(fd);
}

/* Large batches: split at the 128 MiB cap, zero-copy from one page. */
static uint8_t big_page[65536];
#define BIG_N 2100u /* 2100 x 64 KiB pages > 128 MiB */

static void write_big(int fd)
{
    struct stream_writer *w = stream_writer_new(fd, LOG);
    uint64_t *pfns = malloc(BIG_N * sizeof(*pfns));
    const uint8_t **pages = malloc(BIG_N * sizeof(*pages));

    memset(big_page, 0x5A, sizeof(big_page));
    for (unsigned i = 0; i < BIG_N; i++) {
        pfns[i] = i;
        pages[i] = big_page;
    }
    cr_assert_eq(stream_write_headers(w, XCC_DHDR_TYPE_SIM, 16, 0, 0), 0);
    cr_assert_eq(stream_write_page_data(w, pfns, NULL, BIG_N, pages, 65536), 0);
    cr_assert_eq(stream_write_end(w), 0);
    free(pfns);
    free(pages);
    stream_writer_free(w);
}

Test(stream, page_data_split_at_length_cap)
{
    int p[2];
    pthread_t th;
    struct pipe_writer pw;
    struct stream_reader *r;
    struct stream_headers h;
    struct stream_record rec;
    unsigned records = 0, pages = 0;

    cr_assert(pipe(p) == 0);
    pw.fd = p[1];
    pw.fn = write_big;
    pthread_create(&th, NULL, pipe_writer_thread, &pw);
    r = stream_reader_new(p[0], LOG);
    cr_assert_eq(stream_read_headers(r, &h), 0);
    for (;;) {
        struct stream_page_data pd;
        cr_assert_eq(stream_read_record(r, &rec), 0, "%s", cap.last);
        if (rec.type == STREAM_REC_END)
            break;
        cr_assert(rec.length <= STREAM_REC_LENGTH_MAX);
        cr_assert_eq(stream_parse_page_data(r, &rec, BIG_N, 65536, &pd), 0);
        for (unsigned i = 0; i < pd.count; i++) {
            cr_assert_eq(pd.pfns[i], pages + i);
            cr_assert_eq(pd.pages[i][65535], 0x5A);
        }
        pages += pd.count;
        records++;
    }
    cr_assert_eq(records, 2);
    cr_assert_eq(pages, BIG_N);
    pthread_join(th, NULL);
    stream_reader_free(r);
    close(p[0]);
}

/* Signals interrupt writev/read on a pipe; nothing may be lost. */
static void on_alarm(int sig)
{
}

static void *slow_reader(void *arg)
{
    int fd = *(int *)arg;
    struct stream_reader *r = stream_reader_new(fd, LOG);
    struct stream_headers h;
    struct stream_record rec;
    uintptr_t pages = 0;

    if (stream_read_headers(r, &h))
        return (void *)UINTPTR_MAX;
    for (;;) {
        struct stream_page_data pd;
        if (stream_read_record(r, &rec))
            return (void *)UINTPTR_MAX;
        if (rec.type == STREAM_REC_END)
            break;
        if (stream_parse_page_data(r, &rec, BIG_N, 65536, &pd))
            return (void *)UINTPTR_MAX;
        for (unsigned i = 0; i < pd.count; i++)
            if (pd.pages[i][i % 65536] != 0x5A)
                return (void *)UINTPTR_MAX;
        pages += pd.count;
    }
    stream_reader_free(r);
    return (void *)pages;
}

Test(stream, survives_eintr_and_nonblocking_fds)
{
    struct sigaction sa = {.sa_handler = on_alarm}; /* no SA_RESTART */
    struct itimerval it = {{0, 500}, {0, 500}};
    int p[2];
    pthread_t th;
    void *res;

    sigaction(SIGALRM, &sa, NULL);
    cr_assert(pipe(p) == 0);
    /* Non-blocking writer end: the writer must poll on EAGAIN. */
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    pthread_create(&th, NULL, slow_reader, &p[0]);
    setitimer(ITIMER_REAL, &it, NULL);
    write_big(p[1]);
    close(p[1]);
    pthread_join(th, &res);
    memset(&it, 0, sizeof(it));
    setitimer(ITIMER_REAL, &it, NULL);
    cr_assert_eq((uintptr_t)res, BIG_N);
    close(p[0]);
}

Test(stream, writer_rejects_bad_arguments)
{
    int fd = memfd_create("bad", 0);
    struct stream_writer *w = stream_writer_new(fd, LOG);
    uint64_t big = 1ull << 52, ok = 1;
    uint8_t bad_type = 5;
    const uint8_t *pages[] = {page_a};
    uint32_t zero_len = 0;

    cr_assert_eq(stream_write_headers(w, XCC_DHDR_TYPE_SIM, 11, 0, 0), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(stream_write_page_data(w, &big, NULL, 1, pages, PAGE), -1);
    cr_assert_eq(stream_write_page_data(w, &ok, &bad_type, 1, pages, PAGE), -1);
    cr_assert_eq(stream_write_zero_pages(w, &big, 1), -1);
    cr_assert_eq(stream_write_xbzrle_pages(w, &ok, &zero_len, 1, page_a), -1);
    cr_assert_eq(errno, EINVAL);
    /* Nothing reached the fd. */
    cr_assert_eq(stream_writer_bytes(w), 0);
    cr_assert_eq(lseek(fd, 0, SEEK_END), 0);
    stream_writer_free(w);
    close(fd);
}

Test(stream, write_error_is_reported)
{
    int p[2];
    struct stream_writer *w;

    signal(SIGPIPE, SIG_IGN);
    cr_assert(pipe(p) == 0);
    close(p[0]);
    w = stream_writer_new(p[1], LOG);
    cap_reset();
    cr_assert_eq(stream_write_headers(w, XCC_DHDR_TYPE_SIM, 12, 0, 0), -1);
    cr_assert_eq(errno, EPIPE);
    cr_assert_eq(cap.errors, 1);
    stream_writer_free(w);
    close(p[1]);
}

/* ---- Inspect ---- */

struct seen {
    int headers;
    int n;
    char names[32][32];
    uint64_t offsets[32];
};

static int collect(void *opaque, const struct xcc_inspect_headers *h,
                   const struct xcc_inspect_record *rec)
{
    struct seen *s = opaque;

    if (!rec) {
        s->headers++;
        return 0;
    }
    if (s->n < 32) {
        snprintf(s->names[s->n], sizeof(s->names[0]), "%s", rec->name);
        s->offsets[s->n] = rec->offset;
        s->n++;
    }
    return 0;
}

Test(stream, inspect_counts_the_sample)
{
    size_t len;
    uint8_t *buf = sample_bytes(&len);
    int fd = memfd_with(buf, len);
    struct xcc_inspect_totals t;
    struct seen s = {0};

    cap_reset();
    cr_assert_eq(xcc_stream_inspect(fd, LOG, 0, collect, &s, &t), 0, "%s",
                 cap.last);
    cr_assert_eq(s.headers, 1);
    cr_assert_eq(s.n, 11);
    cr_assert_str_eq(s.names[0], "GUEST_INFO");
    cr_assert_str_eq(s.names[3], "XBZRLE_PAGES");
    cr_assert_str_eq(s.names[10], "END");
    cr_assert_eq(s.offsets[0], 40);
    cr_assert_eq(t.records, 11);
    cr_assert_eq(t.bytes, len);
    cr_assert_eq(t.nr_pfns, NR_PFNS);
    cr_assert_eq(t.pages_data, 2);
    cr_assert_eq(t.pages_nodata, 2);
    cr_assert_eq(t.pages_zero, 3);
    cr_assert_eq(t.pages_xbzrle, 2);
    cr_assert_eq(t.xbzrle_bytes, sizeof(delta_a) + sizeof(delta_b));
    cr_assert_eq(t.dirty_pfns, 3);
    cr_assert_eq(t.checkpoints, 2);
    cr_assert_eq(t.record_count[XCC_INSPECT_KPAGE_DATA], 1);
    cr_assert(t.end_seen);
    cr_assert_str_eq(t.headers.domain_name, "x86 PV");
    cr_assert_eq(cap.errors, 0);
    free(buf);
    close(fd);
}

/*
 * A stock Xen 4.17 PV stream built by hand from the spec (no writer):
 * X86_PV_INFO, X86_PV_P2M_FRAMES, TSC_INFO, SHARED_INFO, VCPU records,
 * PAGE_DATA with normal, pinned L4 and XTAB entries, STATIC_DATA_END,
 * CPUID/MSR policies, END.
 */
static void build_xen_pv(struct bb *b)
{
    struct bb body = {0};
    uint8_t pv_info[8] = {8, 4, 0, 0, 0, 0, 0, 0}; /* width 8, 4 levels */
    uint8_t shinfo[PAGE] = {1};

    bb_headers(b, 1, 12, 4, 17);
    bb_record(b, STREAM_REC_X86_PV_INFO, pv_info, sizeof(pv_info));
    bb_u32(&body, 0);     /* p2m start pfn */
    bb_u32(&body, 511);   /* p2m end pfn: one frame of 512 entries */
    bb_u64(&body, 0x123); /* one p2m frame */
    bb_record(b, STREAM_REC_X86_PV_P2M_FRAMES, body.p, (uint32_t)body.len);
    body.len = 0;
    bb_u32(&body, 2);        /* mode */
    bb_u32(&body, 2400000);  /* khz */
    bb_u64(&body, 12345678); /* nsec */
    bb_u32(&body, 1);        /* incarnation */
    bb_u32(&body, 0);
    bb_record(b, STREAM_REC_X86_TSC_INFO, body.p, (uint32_t)body.len);
    bb_record(b, STREAM_REC_SHARED_INFO, shinfo, sizeof(shinfo));
    /* PAGE_DATA: pfn 5 normal, pfn 6 pinned L4 table, pfn 9 XTAB. */
    body.len = 0;
    bb_u32(&body, 3);
    bb_u32(&body, 0);
    bb_u64(&body, 5);
    bb_u64(&body, 6 | 0xCull << 60);
    bb_u64(&body, 9 | 0xFull << 60);
    bb_put(&body, page_a, PAGE);
    bb_put(&body, page_b, PAGE);
    bb_record(b, STREAM_REC_PAGE_DATA, body.p, (uint32_t)body.len);
    /* VCPU_BASIC: vcpu id, reserved, no context (libxenguest tolerates
     * an empty one); EXTENDED: an odd-sized blob (at most 128 bytes). */
    body.len = 0;
    bb_u32(&body, 0);
    bb_u32(&body, 0);
    bb_record(b, STREAM_REC_X86_PV_VCPU_BASIC, body.p, (uint32_t)body.len);
    bb_put(&body, "context-blob", 13);
    bb_record(b, STREAM_REC_X86_PV_VCPU_EXTENDED, body.p, (uint32_t)body.len);
    bb_record(b, STREAM_REC_STATIC_DATA_END, NULL, 0);
    /* One 24-byte CPUID leaf, one 16-byte MSR entry. */
    bb_record(b, STREAM_REC_X86_CPUID_POLICY, "cpuid-leaf..............", 24);
    bb_record(b, STREAM_REC_X86_MSR_POLICY, "msr-entry.......", 16);
    bb_record(b, STREAM_REC_END, NULL, 0);
    free(body.p);
}

Test(stream, inspect_reads_stock_xen_pv_stream)
{
    struct bb b = {0};
    struct xcc_inspect_totals t;
    struct seen s = {0};
    int fd;

    build_xen_pv(&b);
    fd = memfd_with(b.p, b.len);
    cap_reset();
    cr_assert_eq(xcc_stream_inspect(fd, LOG, 0, collect, &s, &t), 0, "%s",
                 cap.last);
    cr_assert_str_eq(t.headers.domain_name, "x86 PV");
    cr_assert_eq(t.headers.xen_major, 4);
    cr_assert_eq(t.headers.xen_minor, 17);
    cr_assert_eq(s.n, 11);
    cr_assert_str_eq(s.names[0], "X86_PV_INFO");
    cr_assert_str_eq(s.names[1], "X86_PV_P2M_FRAMES");
    cr_assert_str_eq(s.names[2], "X86_TSC_INFO");
    cr_assert_str_eq(s.names[3], "SHARED_INFO");
    cr_assert_str_eq(s.names[4], "PAGE_DATA");
    cr_assert_str_eq(s.names[5], "X86_PV_VCPU_BASIC");
    cr_assert_str_eq(s.names[7], "STATIC_DATA_END");
    cr_assert_str_eq(s.names[8], "X86_CPUID_POLICY");
    cr_assert_eq(t.pages_data, 2);
    cr_assert_eq(t.pages_nodata, 1);
    cr_assert_eq(t.record_count[XCC_INSPECT_KXEN_OTHER], 9);
    cr_assert_eq(t.bytes, b.len);
    free(b.p);
    close(fd);
}

Test(stream, inspect_reads_stock_xen_hvm_stream)
{
    struct bb b = {0}, body = {0};
    struct xcc_inspect_totals t;
    int err;

    bb_headers(&b, 2, 12, 4, 17);
    bb_u32(&body, 1); /* TSC mode always_emulate */
    bb_u32(&body, 2400000);
    bb_u64(&body, 12345678);
    bb_u32(&body, 1);
    bb_u32(&body, 0);
    bb_record(&b, STREAM_REC_X86_TSC_INFO, body.p, (uint32_t)body.len);
    body.len = 0;
    bb_u32(&body, 2);
    bb_u32(&body, 0);
    bb_u64(&body, 0); /* index, value */
    bb_u64(&body, 1);
    bb_u64(&body, 2);
    bb_u64(&body, 3);
    bb_record(&b, STREAM_REC_HVM_PARAMS, body.p, (uint32_t)body.len);
    bb_record(&b, STREAM_REC_HVM_CONTEXT, page_b, 1000);
    bb_record(&b, 0x80000042u, "future optional", 15); /* skipped */
    body.len = 0;
    bb_u32(&body, 1);
    bb_u32(&body, 0);
    bb_u64(&body, 0x100000);
    bb_put(&body, page_a, PAGE);
    bb_record(&b, STREAM_REC_PAGE_DATA, body.p, (uint32_t)body.len);
    bb_record(&b, STREAM_REC_END, NULL, 0);
    cr_assert_eq(inspect_buf(b.p, b.len, &t, &err), 0, "%s", cap.last);
    cr_assert_str_eq(t.headers.domain_name, "x86 HVM");
    cr_assert_eq(t.pages_data, 1);
    cr_assert_eq(t.record_count[XCC_INSPECT_KOTHER], 2); /* optional, END */
    free(b.p);
    free(body.p);
}

/* ---- Hostile input ---- */

Test(stream, truncation_at_every_record_boundary_and_random_offsets)
{
    size_t len, offs[64], n;
    uint8_t *buf = sample_bytes(&len);
    struct xcc_inspect_totals t;
    int err;

    n = record_offsets(buf, len, offs, 64);
    cr_assert_eq(n, 11);
    /* The headers' boundaries too: 0, mid-image-header, 24. */
    size_t cuts[64 + 200 + 3] = {0, 12, 24};
    size_t ncuts = 3;
    for (size_t i = 0; i < n; i++)
        cuts[ncuts++] = offs[i];
    srand(1234);
    for (int i = 0; i < 200; i++)
        cuts[ncuts++] = (size_t)rand() % len;
    for (size_t i = 0; i < ncuts; i++) {
        int rc = inspect_buf(buf, cuts[i], &t, &err);
        cr_assert_eq(rc, -1, "truncation at %zu accepted", cuts[i]);
        cr_assert_eq(err, XCC_ETRUNCATED, "truncation at %zu: errno %d (%s)",
                     cuts[i], err, cap.last);
        cr_assert_eq(cap.errors, 1, "truncation at %zu: %d errors logged",
                     cuts[i], cap.errors);
        cr_assert_str_eq(t.error, cap.last);
    }
    /* The whole stream is fine. */
    cr_assert_eq(inspect_buf(buf, len, &t, &err), 0);
    free(buf);
}

Test(stream, flipped_bytes_never_crash)
{
    size_t len;
    uint8_t *buf = sample_bytes(&len), *copy = malloc(len);
    struct xcc_inspect_totals t;
    int err, detected = 0;

    srand(42);
    for (int i = 0; i < 200; i++) {
        size_t off = (size_t)rand() % len;
        uint8_t x = (uint8_t)(1 + rand() % 255);
        memcpy(copy, buf, len);
        copy[off] ^= x;
        int rc = inspect_buf(copy, len, &t, &err);
        if (rc == 0)
            continue; /* a flip inside page data is not detectable here */
        detected++;
        cr_assert(err == XCC_EBADSTREAM || err == XCC_ETRUNCATED,
                  "flip at %zu: errno %d", off, err);
        cr_assert_eq(cap.errors, 1, "flip at %zu: %d errors", off, cap.errors);
        cr_assert(strstr(t.error, "offset"), "no offset in: %s", t.error);
    }
    cr_assert(detected > 0);
    /* Flips in the framing (marker, id, version, record headers) are
     * always caught; byte 3 of each record type is 0 or 0x58/0xD8. */
    size_t offs[64], n = record_offsets(buf, len, offs, 64);
    size_t structural[64 + 4] = {0, 8, 15, 28};
    size_t ns = 4;
    for (size_t i = 0; i < n; i++)
        structural[ns++] = offs[i] + 7; /* top byte of the body length */
    for (size_t i = 0; i < ns; i++) {
        memcpy(copy, buf, len);
        copy[structural[i]] ^= 0x40;
        cr_assert_eq(inspect_buf(copy, len, &t, &err), -1,
                     "flip at %zu accepted", structural[i]);
    }
    free(copy);
    free(buf);
}

/* Patches the sample at record number idx (0-based), body byte off. */
static uint8_t *sample_patched(size_t *len, int idx, long off,
                               const void *bytes, size_t n)
{
    uint8_t *buf = sample_bytes(len);
    size_t offs[64];

    record_offsets(buf, *len, offs, 64);
    memcpy(buf + offs[idx] + 8 + off, bytes, n);
    return buf;
}

/* len is read after buf is built: argument order is unspecified in C. */
static void expect_bad(uint8_t *buf, const size_t *len, const char *needle,
                       const char *record)
{
    struct xcc_inspect_totals t;
    int err;

    cr_assert_eq(inspect_buf(buf, *len, &t, &err), -1, "accepted (%s)", needle);
    cr_assert_eq(err, XCC_EBADSTREAM, "errno %d for %s: %s", err, needle,
                 t.error);
    cr_assert_eq(cap.errors, 1);
    cr_assert(strstr(t.error, needle), "'%s' not in: %s", needle, t.error);
    if (record) {
        cr_assert(strstr(t.error, record), "'%s' not in: %s", record, t.error);
        cr_assert(strstr(t.error, "at offset "), "no offset: %s", t.error);
    }
    free(buf);
}

/* Record indexes in the sample. */
enum { R_GI, R_PD, R_ZP, R_XB, R_CP, R_DL, R_ST, R_DG, R_SDE, R_CP2, R_END };

Test(stream, hostile_fields_are_named)
{
    size_t len;
    uint32_t u32;
    uint64_t u64;
    uint8_t u8;

    /* PAGE_DATA: pfn beyond GUEST_INFO's nr_pfns. */
    u64 = htole64(NR_PFNS);
    expect_bad(sample_patched(&len, R_PD, 8, &u64, 8), &len, "beyond the guest",
               "PAGE_DATA record (type 0x00000001) at offset 64");
    /* PAGE_DATA: reserved bits, invalid type. */
    u64 = htole64(1ull << 55 | 1);
    expect_bad(sample_patched(&len, R_PD, 8, &u64, 8), &len, "reserved bits",
               "PAGE_DATA");
    u64 = htole64(5ull << 60 | 1);
    expect_bad(sample_patched(&len, R_PD, 8, &u64, 8), &len, "invalid type",
               "PAGE_DATA");
    /* PAGE_DATA: XTAB turned NORMAL: the body is one page short. */
    u64 = htole64(2);
    expect_bad(sample_patched(&len, R_PD, 16, &u64, 8), &len, "need",
               "PAGE_DATA");
    /* PAGE_DATA: duplicate pfn. */
    u64 = htole64(1);
    expect_bad(sample_patched(&len, R_PD, 24, &u64, 8), &len, "twice",
               "PAGE_DATA");
    /* PAGE_DATA: count overflow (count * 8 far past the body). */
    u32 = htole32(0xFFFFFFFFu);
    expect_bad(sample_patched(&len, R_PD, 0, &u32, 4), &len, "count 4294967295",
               "PAGE_DATA");
    u32 = 0;
    expect_bad(sample_patched(&len, R_PD, 0, &u32, 4), &len, "count is 0",
               "PAGE_DATA");
    u32 = htole32(1);
    expect_bad(sample_patched(&len, R_PD, 4, &u32, 4), &len, "reserved field",
               "PAGE_DATA");
    /* ZERO_PAGES: count inconsistent with length; pfn too big. */
    u32 = htole32(2);
    expect_bad(sample_patched(&len, R_ZP, 0, &u32, 4), &len, "need",
               "ZERO_PAGES record (type 0x58430002)");
    u64 = htole64(NR_PFNS);
    expect_bad(sample_patched(&len, R_ZP, 8, &u64, 8), &len, "beyond the guest",
               "ZERO_PAGES");
    /* The sample is format 1 (GUEST_INFO flags 0): no type bits. */
    u64 = htole64(1ull << 60 | 10);
    expect_bad(sample_patched(&len, R_ZP, 8, &u64, 8), &len,
               "the stream is format 1", "ZERO_PAGES");
    /* XBZRLE: length 0, length > page, sum mismatch, bad grammar. */
    u32 = 0;
    expect_bad(sample_patched(&len, R_XB, 24, &u32, 4), &len, "outside 1..4096",
               "XBZRLE_PAGES record (type 0x58430003)");
    u32 = htole32(5000);
    expect_bad(sample_patched(&len, R_XB, 24, &u32, 4), &len, "outside 1..4096",
               "XBZRLE_PAGES");
    u32 = htole32(5);
    expect_bad(sample_patched(&len, R_XB, 24, &u32, 4), &len, "sum to",
               "XBZRLE_PAGES");
    u8 = 0; /* delta_a's data run of 4 becomes an empty run */
    expect_bad(sample_patched(&len, R_XB, 32 + 1, &u8, 1), &len,
               "empty data run", "XBZRLE_PAGES");
    u8 = 0x80; /* delta_b's zero-run length becomes a 3-byte ULEB128 */
    expect_bad(sample_patched(&len, R_XB, 32 + 6 + 4, &u8, 1), &len, "length",
               "XBZRLE_PAGES");
    /* A zero run of 0x7F | 0x7F << 7 passes the page. */
    uint8_t runs[2] = {0xFF, 0x7F};
    expect_bad(sample_patched(&len, R_XB, 32 + 6, runs, 2), &len,
               "passes the end", "XBZRLE_PAGES");
    /* DIRTY_PFN_LIST: pfn beyond the guest. */
    u64 = htole64(NR_PFNS + 1);
    expect_bad(sample_patched(&len, R_DL, 0, &u64, 8), &len, "beyond the guest",
               "CHECKPOINT_DIRTY_PFN_LIST");
    /* DIGEST: wrong chunk count for the guest, bad chunk size. */
    u32 = htole32(2);
    expect_bad(sample_patched(&len, R_DG, 4, &u32, 4), &len, "need",
               "DIGEST record (type 0x58430004)");
    /* Chunk sizes other than 2 MiB: the format allows none (restore
     * checks only 2 MiB chunks, and inspect must not pass what it fails). */
    u32 = htole32(32 * PAGE);
    expect_bad(sample_patched(&len, R_DG, 0, &u32, 4), &len,
               "chunk size 131072 is not 2097152", "DIGEST");
    u32 = htole32(3000);
    expect_bad(sample_patched(&len, R_DG, 0, &u32, 4), &len, "is not 2097152",
               "DIGEST");
    u32 = htole32(4u << 20);
    expect_bad(sample_patched(&len, R_DG, 0, &u32, 4), &len, "is not 2097152",
               "DIGEST");
    /* GUEST_INFO: page size, size 0, flags. */
    u32 = htole32(8192);
    expect_bad(sample_patched(&len, R_GI, 8, &u32, 4), &len, "page size",
               "GUEST_INFO record (type 0x58430001) at offset 40");
    u64 = 0;
    expect_bad(sample_patched(&len, R_GI, 0, &u64, 8), &len, "out of range",
               "GUEST_INFO");
    u32 = htole32(4);
    expect_bad(sample_patched(&len, R_GI, 12, &u32, 4), &len, "unknown flags",
               "GUEST_INFO");
    /* Framing: END with a body, padding not zero, length over the cap. */
    u32 = htole32(8);
    expect_bad(sample_patched(&len, R_END, -4, &u32, 4), &len, "expected 0",
               "END");
    u8 = 1; /* the first padding byte after the STATS text */
    cr_assert(strlen(stats_json) % 8, "STATS text needs padding");
    expect_bad(sample_patched(&len, R_ST, (long)strlen(stats_json), &u8, 1),
               &len, "padding", "STATS record (type 0xd8430005)");
    u32 = htole32(STREAM_REC_LENGTH_MAX + 1);
    expect_bad(sample_patched(&len, R_ST, -4, &u32, 4), &len, "limit", "STATS");
    /* Unknown mandatory types: inside the block, and in Xen's range. */
    u32 = htole32(0x58430077u);
    expect_bad(sample_patched(&len, R_CP, -8, &u32, 4), &len,
               "unknown mandatory", "UNKNOWN record (type 0x58430077)");
    u32 = htole32(0x00000042u);
    expect_bad(sample_patched(&len, R_CP, -8, &u32, 4), &len,
               "unknown mandatory", "UNKNOWN");
    /* A second GUEST_INFO. */
    uint8_t gi_body[16];
    uint64_t nr = htole64(NR_PFNS);
    uint32_t ps = htole32(PAGE), fl = 0;
    memcpy(gi_body, &nr, 8);
    memcpy(gi_body + 8, &ps, 4);
    memcpy(gi_body + 12, &fl, 4);
    {
        struct bb b = {0};
        bb_headers(&b, XCC_DHDR_TYPE_SIM, 12, 0, 0);
        bb_record(&b, STREAM_REC_GUEST_INFO, gi_body, 16);
        bb_record(&b, STREAM_REC_GUEST_INFO, gi_body, 16);
        bb_record(&b, STREAM_REC_END, NULL, 0);
        expect_bad(b.p, &b.len, "only allowed as the first record",
                   "GUEST_INFO record (type 0x58430001) at offset 64");
    }
}

/* ---- One grammar: what inspect passes, restore takes ---- */

/* A sim stream: headers, GUEST_INFO of NR_PFNS pages unless gi is false. */
static void bb_sim_start(struct bb *b, bool gi)
{
    uint8_t body[16] = {0};
    uint64_t nr = htole64(NR_PFNS);
    uint32_t ps = htole32(PAGE);

    bb_headers(b, XCC_DHDR_TYPE_SIM, 12, 0, 0);
    memcpy(body, &nr, 8);
    memcpy(body + 8, &ps, 4);
    if (gi)
        bb_record(b, STREAM_REC_GUEST_INFO, body, 16);
}

/* An XBZRLE_PAGES record of one delta for pfn. */
static void bb_xbzrle(struct bb *b, uint64_t pfn, const uint8_t *d,
                      uint32_t len)
{
    struct bb body = {0};

    bb_u32(&body, 1);
    bb_u32(&body, 0);
    bb_u64(&body, pfn);
    bb_u32(&body, len);
    bb_u32(&body, 0); /* padding of the length array */
    bb_put(&body, d, len);
    bb_record(b, STREAM_REC_XBZRLE_PAGES, body.p, body.len);
    free(body.p);
}

/* A PAGE_DATA record of one entry (pfn, type), with a page if it has data. */
static void bb_page(struct bb *b, uint64_t pfn, unsigned type)
{
    static const uint8_t page[PAGE] = {7};
    struct bb body = {0};

    bb_u32(&body, 1);
    bb_u32(&body, 0);
    bb_u64(&body, pfn | (uint64_t)type << STREAM_PFN_TYPE_SHIFT);
    if (stream_pfn_type_has_data(type))
        bb_put(&body, page, PAGE);
    bb_record(b, STREAM_REC_PAGE_DATA, body.p, body.len);
    free(body.p);
}

Test(stream, overlong_xbzrle_length_is_refused_as_the_decoder_does)
{
    /* 80 00 is 0 written in two bytes: QEMU never writes it and the
     * decoder refuses it; inspect once passed it. */
    static const uint8_t bad[] = {0x80, 0x00, 0x01, 0x07};
    static const uint8_t bad_nz[] = {0x05, 0x81, 0x00, 0x07};
    uint8_t page[PAGE] = {0};
    size_t where;
    struct bb b = {0};

    cr_assert_eq(xcc_xbzrle_decode(bad, sizeof(bad), page, PAGE), -1);
    cr_assert_not_null(xbzrle_validate(bad, sizeof(bad), PAGE, &where));
    cr_assert_eq(where, 0);
    cr_assert_not_null(xbzrle_validate(bad_nz, sizeof(bad_nz), PAGE, &where));
    cr_assert_eq(where, 1);
    cr_assert_null(xbzrle_validate(delta_b, sizeof(delta_b), PAGE, &where));

    bb_sim_start(&b, true);
    bb_xbzrle(&b, 3, bad, sizeof(bad));
    bb_record(&b, STREAM_REC_END, NULL, 0);
    expect_bad(b.p, &b.len, "entry 0 (pfn 0x3): delta byte 0",
               "XBZRLE_PAGES record (type 0x58430003) at offset 64");
    b = (struct bb){0};
    bb_sim_start(&b, true);
    bb_xbzrle(&b, 4, bad_nz, sizeof(bad_nz));
    bb_record(&b, STREAM_REC_END, NULL, 0);
    expect_bad(b.p, &b.len, "delta byte 1", "XBZRLE_PAGES");
}

Test(stream, guest_info_only_first)
{
    uint8_t gi[16] = {0};
    uint64_t nr = htole64(NR_PFNS);
    uint32_t ps = htole32(PAGE);
    static const char json[] = "{}";
    uint8_t hvm[8] = {0};
    struct bb b = {0};

    memcpy(gi, &nr, 8);
    memcpy(gi + 8, &ps, 4);
    /* After STATS, before any page. */
    bb_headers(&b, XCC_DHDR_TYPE_SIM, 12, 0, 0);
    bb_record(&b, STREAM_REC_STATS, json, 2);
    bb_record(&b, STREAM_REC_GUEST_INFO, gi, 16);
    bb_record(&b, STREAM_REC_END, NULL, 0);
    expect_bad(b.p, &b.len, "only allowed as the first record, but 1 record "
               "came before it", "GUEST_INFO record (type 0x58430001) at "
               "offset 56");
    /* After HVM_CONTEXT. */
    b = (struct bb){0};
    bb_headers(&b, XCC_DHDR_TYPE_X86_HVM, 12, 4, 17);
    bb_record(&b, STREAM_REC_HVM_CONTEXT, hvm, 8);
    bb_record(&b, STREAM_REC_GUEST_INFO, gi, 16);
    bb_record(&b, STREAM_REC_END, NULL, 0);
    expect_bad(b.p, &b.len, "only allowed as the first record",
               "GUEST_INFO record (type 0x58430001) at offset 56");
}

Test(stream, checkpoint_stream_order)
{
    struct bb b = {0};
    struct xcc_inspect_totals t;
    int err;

    /* END after an epoch without its CHECKPOINT. */
    bb_sim_start(&b, true);
    bb_page(&b, 1, XCC_PFN_NORMAL);
    bb_record(&b, STREAM_REC_CHECKPOINT, NULL, 0);
    bb_page(&b, 2, XCC_PFN_NORMAL);
    bb_record(&b, STREAM_REC_END, NULL, 0);
    expect_bad(b.p, &b.len, "the epoch after checkpoint 1 (1 records) ends "
               "without its CHECKPOINT", "END record (type 0x00000000)");
    /* A list before the first CHECKPOINT. */
    b = (struct bb){0};
    bb_sim_start(&b, true);
    bb_record(&b, STREAM_REC_CHECKPOINT_DIRTY_PFN_LIST, NULL, 0);
    bb_record(&b, STREAM_REC_CHECKPOINT, NULL, 0);
    bb_record(&b, STREAM_REC_END, NULL, 0);
    expect_bad(b.p, &b.len, "before the first CHECKPOINT",
               "CHECKPOINT_DIRTY_PFN_LIST record (type 0x0000000f) at "
               "offset 64");
    /* COLO's closing epoch (it opens with the marker) may end at END. */
    b = (struct bb){0};
    bb_sim_start(&b, true);
    bb_record(&b, STREAM_REC_CHECKPOINT, NULL, 0);
    bb_record(&b, STREAM_REC_CHECKPOINT_DIRTY_PFN_LIST, NULL, 0);
    bb_page(&b, 2, XCC_PFN_NORMAL);
    bb_record(&b, STREAM_REC_END, NULL, 0);
    cap_reset();
    cr_assert_eq(inspect_buf(b.p, b.len, &t, &err), 0, "%s", t.error);
    free(b.p);
}

Test(stream, order_modes_of_restore)
{
    struct stream_order o;
    struct stream_reader *r = stream_reader_new(-1, LOG);
    struct stream_record cp = {.type = STREAM_REC_CHECKPOINT, .offset = 40},
                         end = {.type = STREAM_REC_END, .offset = 48},
                         pd = {.type = STREAM_REC_PAGE_DATA, .offset = 40};

    /* A plain restore refuses a checkpoint stream. */
    stream_order_init(&o, STREAM_ORDER_PLAIN);
    cap_reset();
    cr_assert_eq(stream_order_check(r, &o, &cp), -1);
    cr_assert_eq(errno, ENOTSUP);
    cr_assert(strstr(stream_reader_error(r), "--checkpointed"));
    /* A checkpointed restore refuses a stream without a CHECKPOINT... */
    stream_order_init(&o, STREAM_ORDER_CHECKPOINTED);
    cr_assert_eq(stream_order_check(r, &o, &pd), 0);
    cr_assert_eq(stream_order_check(r, &o, &end), -1);
    cr_assert_eq(errno, XCC_EBADSTREAM);
    cr_assert(strstr(stream_reader_error(r), "without any CHECKPOINT"), "%s",
              stream_reader_error(r));
    /* ... which inspect takes as a plain stream. */
    stream_order_init(&o, STREAM_ORDER_ANY);
    cr_assert_eq(stream_order_check(r, &o, &pd), 0);
    cr_assert_eq(stream_order_check(r, &o, &end), 0);
    stream_reader_free(r);
}

Test(stream, sim_stream_page_types)
{
    static const unsigned refused[] = {
        XCC_PFN_L1TAB, XCC_PFN_L4TAB, STREAM_PFN_TYPE_PINNED | XCC_PFN_L2TAB,
        XCC_PFN_BROKEN, XCC_PFN_XALLOC};
    struct xcc_inspect_totals t;
    struct bb b;
    int err;

    for (size_t i = 0; i < XCC_ARRAY_SIZE(refused); i++) {
        b = (struct bb){0};
        bb_sim_start(&b, true);
        bb_page(&b, 5, refused[i]);
        bb_record(&b, STREAM_REC_END, NULL, 0);
        expect_bad(b.p, &b.len, "which a sim guest cannot have",
                   "PAGE_DATA record (type 0x00000001) at offset 64");
    }
    /* A hole (XTAB) is what a sim guest sends for its holes. */
    b = (struct bb){0};
    bb_sim_start(&b, true);
    bb_page(&b, 5, XCC_PFN_XTAB);
    bb_page(&b, 6, XCC_PFN_NORMAL);
    bb_record(&b, STREAM_REC_END, NULL, 0);
    cap_reset();
    cr_assert_eq(inspect_buf(b.p, b.len, &t, &err), 0, "%s", t.error);
    free(b.p);
}

Test(stream, hostile_headers)
{
    struct bb b;
    uint8_t *buf;
    size_t len;

    /* Each header field in turn. */
    struct {
        size_t off;
        uint8_t val;
        const char *needle;
    } cases[] = {
        {0, 0x00, "marker"},    {8, 0x59, "id"},        {15, 4, "version"},
        {17, 1, "big-endian"},  {24, 9, "domain type"}, {28, 11, "page shift"},
        {28, 17, "page shift"},
    };
    for (size_t i = 0; i < XCC_ARRAY_SIZE(cases); i++) {
        buf = sample_bytes(&len);
        buf[cases[i].off] = cases[i].val;
        expect_bad(buf, &len, cases[i].needle, NULL);
    }
    /* Data after END. */
    b = (struct bb){0};
    bb_headers(&b, XCC_DHDR_TYPE_SIM, 12, 0, 0);
    bb_record(&b, STREAM_REC_END, NULL, 0);
    bb_u64(&b, 0);
    expect_bad(b.p, &b.len, "after the END", NULL);
    /* Not a stream at all. */
    buf = malloc(100);
    memset(buf, 'x', 100);
    len = 100;
    expect_bad(buf, &len, "marker", NULL);
}

Test(stream, parser_checks_target_page_size_and_limits)
{
    size_t len;
    uint8_t *buf = sample_bytes(&len);
    int fd = memfd_with(buf, len);
    struct stream_reader *r = stream_reader_new(fd, LOG);
    struct stream_headers h;
    struct stream_record rec;
    struct stream_page_data pd;
    struct stream_pfn_list zl;

    cr_assert_eq(stream_read_headers(r, &h), 0);
    cr_assert_eq(stream_read_record(r, &rec), 0); /* GUEST_INFO */
    /* The wrong parser for a record is a caller error. */
    cr_assert_eq(stream_parse_zero_pages(r, &rec, NR_PFNS, &zl), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(stream_read_record(r, &rec), 0); /* PAGE_DATA */
    cap_reset();
    cr_assert_eq(stream_parse_page_data(r, &rec, NR_PFNS, 8192, &pd), -1);
    cr_assert_eq(errno, XCC_EBADSTREAM);
    cr_assert(strstr(stream_reader_error(r), "page size"));
    /* A smaller target: pfn 7 no longer fits in 4 pages. */
    cr_assert_eq(stream_parse_page_data(r, &rec, 4, PAGE, &pd), -1);
    cr_assert(strstr(stream_reader_error(r), "pfn 0x7 is beyond"), "%s",
              stream_reader_error(r));
    cr_assert_eq(stream_parse_page_data(r, &rec, 8, PAGE, &pd), 0);
    stream_reader_free(r);
    close(fd);
    free(buf);
}

Test(stream, record_names)
{
    cr_assert_str_eq(stream_record_name(STREAM_REC_END), "END");
    cr_assert_str_eq(stream_record_name(STREAM_REC_HVM_PARAMS), "HVM_PARAMS");
    cr_assert_str_eq(stream_record_name(STREAM_REC_X86_MSR_POLICY),
                     "X86_MSR_POLICY");
    cr_assert_str_eq(stream_record_name(STREAM_REC_STATS), "STATS");
    cr_assert_str_eq(stream_record_name(0x13), "UNKNOWN");
    cr_assert(stream_pfn_type_has_data(0xC));
    cr_assert(!stream_pfn_type_has_data(XCC_PFN_XTAB));
    cr_assert(!stream_pfn_type_valid(0x5));
}

/* n one-page PAGE_DATA records of distinct content, then CHECKPOINT. */
static void write_pages(struct stream_writer *w, unsigned n)
{
    static uint8_t page[PAGE];
    const uint8_t *pages[] = {page};
    uint8_t types[] = {XCC_PFN_NORMAL};

    for (unsigned i = 0; i < n; i++) {
        uint64_t pfn = i;
        memset(page, (int)(i * 7 + 1), sizeof(page));
        cr_assert_eq(stream_write_page_data(w, &pfn, types, 1, pages, PAGE),
                     0);
    }
    cr_assert_eq(stream_write_checkpoint(w), 0);
}

Test(stream, memory_writer_matches_the_fd_writer_and_grows)
{
    /* The checkpoint epoch buffer: what it holds must be exactly what a
     * writer on an fd would have written, across growth and resets. */
    const unsigned n = 64; /* 64 pages from a one-page reserve: grows */
    int fd = memfd_create("ref", 0);
    struct stream_writer *ref = stream_writer_new(fd, LOG);
    struct stream_writer *m = stream_writer_new_mem(PAGE, LOG);
    size_t ref_len, len, hdr;
    uint8_t *want;
    const uint8_t *got;

    cr_assert(ref && m);
    cr_assert_eq(stream_write_headers(ref, XCC_DHDR_TYPE_SIM, 12, 0, 0), 0);
    hdr = (size_t)stream_writer_bytes(ref);
    write_pages(ref, n);
    want = slurp(fd, &ref_len);
    cr_assert_eq(stream_write_headers(m, XCC_DHDR_TYPE_SIM, 12, 0, 0), 0);
    for (int round = 0; round < 2; round++) {
        /* Round 0 holds the headers too; round 1, after a reset, not. */
        const size_t skip = round ? hdr : 0;
        uint64_t before = stream_writer_bytes(m);

        write_pages(m, n);
        got = stream_writer_mem(m, &len);
        cr_assert_eq(len, ref_len - skip, "round %d: %zu bytes, want %zu",
                     round, len, ref_len - skip);
        cr_assert_eq(stream_writer_bytes(m) - before, ref_len - hdr);
        cr_assert(memcmp(got, want + skip, len) == 0, "round %d differs",
                  round);
        /* Emptied and trimmed below what it grew to; the count goes on. */
        stream_writer_mem_reset(m, PAGE);
        got = stream_writer_mem(m, &len);
        cr_assert_eq(len, 0);
        cr_assert_eq(stream_writer_bytes(m),
                     hdr + (uint64_t)(round + 1) * (ref_len - hdr));
    }
    /* Reset to nothing unmaps the buffer; it comes back on demand. */
    stream_writer_mem_reset(m, 0);
    cr_assert_eq(stream_write_end(m), 0);
    got = stream_writer_mem(m, &len);
    cr_assert_eq(len, 8);
    free(want);
    stream_writer_free(ref);
    stream_writer_free(m);
    close(fd);
}
