/*
 * test_xen_feed.c - the checker and forwarder of the libxl v2 stream that
 * `xc-colo restore FILE xen:` feeds to libxl (tests/xen_feed.c), against a
 * hand-built stream: forwarded byte for byte, every truncation refused with
 * its offset, hostile records refused, nothing of xc-colo's emitted.
 */
#include <criterion/criterion.h>
#include <endian.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include "xen_feed.c"

#define PAGE 4096u

struct buf {
    uint8_t b[3 * PAGE * 2];
    size_t n;
};

static void put(struct buf *s, const void *p, size_t n)
{
    cr_assert(s->n + n <= sizeof(s->b));
    memcpy(s->b + s->n, p, n);
    s->n += n;
}
static void put_be32(struct buf *s, uint32_t v) { v = htobe32(v); put(s, &v, 4); }
static void put_le32(struct buf *s, uint32_t v) { v = htole32(v); put(s, &v, 4); }

static void put_rec(struct buf *s, uint32_t type, const void *body, uint32_t len)
{
    static const uint8_t z[8];
    put_le32(s, type);
    put_le32(s, len);
    if (len)
        put(s, body, len);
    put(s, z, ((len + 7) & ~7u) - len);
}

/* Offsets of parts of the stream, for the corruption tests. */
static size_t off_page_data, off_libxc_end;

/*
 * The libxl header, LIBXC_CONTEXT, the libxc headers, X86_PV_INFO,
 * PAGE_DATA (pfn 5 NOTAB, pfn 6 XTAB without data, pfn 7 pinned L1), an
 * odd-length optional record, the libxc END and the libxl END.
 */
static void build(struct buf *s, uint32_t page_count_override)
{
    static uint8_t pages[2 * PAGE], info[8] = {8, 0, 3};
    uint8_t pd[8 + 3 * 8 + 2 * PAGE];
    uint64_t pfns[3] = {5, 6 | (0xfull << 60), 7 | (0x9ull << 60)};
    uint32_t count = page_count_override ? page_count_override : 3;

    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < sizeof(pages); i++)
        pages[i] = (uint8_t)(i * 7 + 1);
    put(s, "LibxlFmt", 8);
    put_be32(s, 2);
    put_be32(s, 0);
    put_rec(s, XEN_LIBXL_LIBXC_CONTEXT, NULL, 0);
    put(s, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
    put(s, "XENF", 4);
    put_be32(s, 3);
    put(s, "\0\0\0\0\0\0\0\0", 8); /* options, reserved */
    put_le32(s, 1);                 /* X86_PV */
    uint16_t shift = htole16(12);
    put(s, &shift, 2);
    put(s, "\0\0", 2);
    put_le32(s, 4);
    put_le32(s, 17);
    put_rec(s, 2, info, sizeof(info));
    memcpy(pd, &(uint32_t){htole32(count)}, 4);
    memset(pd + 4, 0, 4);
    for (int i = 0; i < 3; i++)
        memcpy(pd + 8 + 8 * i, &(uint64_t){htole64(pfns[i])}, 8);
    memcpy(pd + 32, pages, sizeof(pages));
    off_page_data = s->n;
    put_rec(s, XEN_LIBXC_PAGE_DATA, pd, sizeof(pd));
    put_rec(s, 0x80000001u, "abc", 3); /* optional: forwarded */
    off_libxc_end = s->n;
    put_rec(s, XEN_LIBXC_END, NULL, 0);
    put_rec(s, XEN_LIBXL_END, NULL, 0);
}

static int memfd_with(const void *p, size_t n)
{
    int fd = memfd_create("xen-feed-test", 0);
    cr_assert(fd >= 0);
    cr_assert(write(fd, p, n) == (ssize_t)n);
    lseek(fd, 0, SEEK_SET);
    return fd;
}

static uint64_t last_in_off;

/* Forwards s[0..n); out gets the forwarded bytes. Returns the feed's rc. */
static int run(const uint8_t *s, size_t n, struct buf *out, char *err,
               size_t errlen)
{
    int in = memfd_with(s, n), ofd = memfd_create("xen-feed-out", 0);
    struct xen_feed f;
    int rc;

    xen_feed_init(&f, in, 48, ofd);
    rc = xen_feed_forward_libxl(&f);
    snprintf(err, errlen, "%s", f.err);
    if (out) {
        off_t len = lseek(ofd, 0, SEEK_END);
        cr_assert(len >= 0 && (size_t)len <= sizeof(out->b));
        cr_assert(pread(ofd, out->b, (size_t)len, 0) == len);
        out->n = (size_t)len;
    }
    cr_assert(f.out_bytes == (out ? out->n : f.out_bytes));
    if (rc == 0) {
        cr_assert_eq(f.pages, 3);
        cr_assert_eq(f.libxl_records, 2);
        cr_assert_eq(f.libxc_records, 4);
        last_in_off = f.in_off;
    }
    xen_feed_release(&f);
    close(in);
    close(ofd);
    return rc;
}

Test(xen_feed, forwards_a_stock_stream_unchanged)
{
    static struct buf s, out;
    char err[320];

    build(&s, 0);
    cr_assert_eq(run(s.b, s.n, &out, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(out.n, s.n);
    cr_assert(!memcmp(out.b, s.b, s.n));
    cr_assert_eq(last_in_off, 48 + s.n, "the offset counts the xl header");
}

Test(xen_feed, reads_nothing_past_the_libxl_end)
{
    static struct buf s, out;
    static uint8_t more[sizeof(s.b) + 8];
    char err[320];

    build(&s, 0);
    memcpy(more, s.b, s.n);
    memcpy(more + s.n, "TRAILING", 8);
    cr_assert_eq(run(more, s.n + 8, &out, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(out.n, s.n);
    cr_assert_eq(last_in_off, 48 + s.n, "read up to the END only");
}

Test(xen_feed, every_truncation_is_refused_with_its_offset)
{
    static struct buf s, out;
    char err[320];

    build(&s, 0);
    for (size_t n = 0; n < s.n; n++) {
        cr_assert_eq(run(s.b, n, &out, err, sizeof(err)), -1, "prefix %zu", n);
        cr_assert(strstr(err, "truncated stream") && strstr(err, "offset"),
                  "prefix %zu: %s", n, err);
        cr_assert(out.n <= n, "prefix %zu: wrote %zu bytes", n, out.n);
    }
}

/* Runs a corrupted copy and checks the message names `want`. */
static void refused(const struct buf *s, const char *want)
{
    char err[320];

    cr_assert_eq(run(s->b, s->n, NULL, err, sizeof(err)), -1, "want %s", want);
    cr_assert(strstr(err, want), "want '%s' in '%s'", want, err);
}

Test(xen_feed, hostile_records_are_refused)
{
    static struct buf s;
    uint32_t v;

    build(&s, 1025);
    refused(&s, "count is not 1..1024");
    build(&s, 2);
    refused(&s, "length disagrees");

    build(&s, 0); /* an xc-colo record where the PAGE_DATA was */
    v = htole32(0x58430001u);
    memcpy(s.b + off_page_data, &v, 4);
    refused(&s, "xc-colo's own");

    build(&s, 0);
    v = htole32(0xeu); /* CHECKPOINT */
    memcpy(s.b + off_page_data, &v, 4);
    refused(&s, "checkpoint record in a plain stream");

    build(&s, 0);
    v = htole32(XEN_FEED_RECORD_MAX + 1);
    memcpy(s.b + off_page_data + 4, &v, 4);
    refused(&s, "over the");

    build(&s, 0); /* the optional record's padding */
    s.b[off_libxc_end - 1] = 1;
    refused(&s, "non-zero padding");

    build(&s, 0); /* a reserved bit in the first pfn word */
    s.b[off_page_data + 8 + 8 + 6] = 0x10;
    refused(&s, "reserved bits");

    build(&s, 0); /* a page type libxenguest refuses */
    s.b[off_page_data + 8 + 8 + 7] = 0x50;
    refused(&s, "invalid page type");

    build(&s, 0);
    memcpy(s.b, "LibxlFmX", 8);
    refused(&s, "LibxlFmt");

    build(&s, 0);
    s.b[16 + 8 + 15] = 9; /* libxc version 9 */
    refused(&s, "version 9");

    build(&s, 0); /* the libxl END straight after the header */
    memset(s.b + 16, 0, 8);
    refused(&s, "before any LIBXC_CONTEXT");
}

Test(xen_feed, emitting_refuses_xccolo_records)
{
    struct xen_feed f;
    int ofd = memfd_create("xen-feed-out", 0);

    xen_feed_init(&f, -1, 0, ofd);
    cr_assert_eq(xen_feed_emit_record(&f, 0x58430003u, "x", 1), -1);
    cr_assert(strstr(f.err, "must not reach libxl"), "%s", f.err);
    cr_assert_eq(f.out_bytes, 0);
    cr_assert_eq(xen_feed_emit_record(&f, 0x80000002u, "abc", 3), 0);
    cr_assert_eq(f.out_bytes, 16, "header, body and padding to 8");
    close(ofd);
}

Test(xen_feed, a_reader_that_goes_away_is_named)
{
    static struct buf s;
    int p[2], in;
    struct xen_feed f;

    signal(SIGPIPE, SIG_IGN);
    build(&s, 0);
    cr_assert(pipe(p) == 0);
    close(p[0]);
    in = memfd_with(s.b, s.n);
    xen_feed_init(&f, in, 48, p[1]);
    cr_assert_eq(xen_feed_forward_libxl(&f), -1);
    cr_assert(f.reader_gone);
    cr_assert(strstr(f.err, "libxl stopped reading"), "%s", f.err);
    xen_feed_release(&f);
    close(in);
    close(p[1]);
}
