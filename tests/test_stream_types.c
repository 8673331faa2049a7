/*
 * test_stream_types.c - page types in the stream (format 2): typed
 * ZERO_PAGES and XBZRLE_PAGES entries written, parsed and counted by
 * inspect; format-1 streams still read; every wrong type refused with the
 * record and what was wrong; inspect's check of PV page tables.
 */
#include <criterion/criterion.h>
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "stream.h"
#include "xen_pt.h"

#define PAGE 4096u
#define NR 64u

static const uint8_t delta[] = {0x00, 0x04, 'A', 'B', 'C', 'D'};

static int memfd(void)
{
    int fd = memfd_create("types", 0);

    cr_assert(fd >= 0);
    return fd;
}

/* A writer into a fresh memfd with headers and GUEST_INFO (flags). */
static struct stream_writer *start(int fd, uint32_t dtype, uint32_t flags)
{
    struct stream_writer *w = stream_writer_new(fd, lib_default_logger());

    cr_assert(w);
    cr_assert_eq(stream_write_headers(w, dtype, 12, 4, 17), 0);
    cr_assert_eq(stream_write_guest_info(w, NR, PAGE, flags), 0);
    return w;
}

/* Little-endian u64 entries of one ZERO_PAGES record, raw. */
static void raw_zero(struct stream_writer *w, const uint64_t *e, size_t n)
{
    uint8_t body[8 + 8 * 8] = {0};
    struct iovec iov = {.iov_base = body, .iov_len = 8 + 8 * n};

    cr_assert(n <= 8);
    body[0] = (uint8_t)n;
    for (size_t i = 0; i < n; i++) {
        uint64_t v = htole64(e[i]);
        memcpy(body + 8 + 8 * i, &v, 8);
    }
    cr_assert_eq(stream_write_record(w, STREAM_REC_ZERO_PAGES, &iov, 1), 0);
}

struct seen {
    uint64_t by_type[3][16];
    uint64_t checked;
};

static int on_rec(void *opaque, const struct xcc_inspect_headers *h,
                  const struct xcc_inspect_record *r)
{
    struct seen *s = opaque;
    int k = r == NULL                ? -1
            : r->pages_data || r->pages_nodata ? 0
            : r->pages_zero                    ? 1
            : r->pages_xbzrle                  ? 2
                                               : -1;

    (void)h;
    if (!r)
        return 0;
    s->checked += r->pagetables_checked;
    for (unsigned i = 0; k >= 0 && i < 16; i++)
        s->by_type[k][i] += r->by_type[i];
    return 0;
}

/* Inspects fd from its start: rc, totals, what the callback saw. */
static int inspect(int fd, struct xcc_inspect_totals *t, struct seen *s)
{
    memset(s, 0, sizeof(*s));
    cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
    return xcc_stream_inspect(fd, lib_default_logger(), 0, on_rec, s, t);
}

static void expect_refused(int fd, const char *needle, const char *record)
{
    struct xcc_inspect_totals t;
    struct seen s;

    cr_assert_eq(inspect(fd, &t, &s), -1, "accepted: %s", needle);
    cr_expect_eq(errno, XCC_EBADSTREAM);
    cr_expect(strstr(t.error, needle), "'%s' not in: %s", needle, t.error);
    cr_expect(strstr(t.error, record), "'%s' not in: %s", record, t.error);
    cr_expect(strstr(t.error, "at offset "), "no offset: %s", t.error);
    close(fd);
}

Test(stream_types, typed_zero_and_xbzrle_roundtrip_and_counts)
{
    int fd = memfd();
    struct stream_writer *w = start(fd, XCC_DHDR_TYPE_X86_PV,
                                    STREAM_GUEST_INFO_TYPED_PFNS);
    const uint64_t zp[] = {3, 4, 5};
    const uint8_t zt[] = {XCC_PFN_L1TAB, XCC_PFN_PINNED | XCC_PFN_L1TAB,
                          XCC_PFN_NORMAL};
    const uint64_t xp[] = {6, 7};
    const uint8_t xt[] = {XCC_PFN_PINNED | XCC_PFN_L4TAB, XCC_PFN_NORMAL};
    const uint32_t xl[] = {sizeof(delta), sizeof(delta)};
    uint8_t xd[2 * sizeof(delta)];
    struct xcc_inspect_totals t;
    struct stream_headers h;
    struct stream_record rec;
    struct stream_guest_info gi;
    struct stream_pfn_list zl;
    struct stream_xbzrle_pages xb;
    struct stream_reader *r;
    struct seen s;

    memcpy(xd, delta, sizeof(delta));
    memcpy(xd + sizeof(delta), delta, sizeof(delta));
    cr_assert_eq(stream_write_zero_pages_typed(w, zp, zt, 3), 0);
    cr_assert_eq(stream_write_xbzrle_pages_typed(w, xp, xt, xl, 2, xd), 0);
    cr_assert_eq(stream_write_end(w), 0);
    stream_writer_free(w);

    /* The encoding: PAGE_DATA's, type in bits 60..63. */
    {
        uint64_t e;
        cr_assert_eq(pread(fd, &e, 8, 40 + 24 + 8 + 8 + 8), 8); /* entry 1 */
        cr_expect_eq(le64toh(e), 0x9ull << 60 | 4);
    }

    cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
    r = stream_reader_new(fd, lib_default_logger());
    cr_assert_eq(stream_read_headers(r, &h), 0);
    cr_assert_eq(stream_read_record(r, &rec), 0);
    cr_assert_eq(stream_parse_guest_info(r, &rec, &gi), 0);
    cr_expect_eq(gi.flags, STREAM_GUEST_INFO_TYPED_PFNS);
    cr_assert_eq(stream_read_record(r, &rec), 0);
    cr_assert_eq(stream_parse_zero_pages(r, &rec, NR, &zl), 0);
    cr_assert_eq(zl.count, 3);
    for (unsigned i = 0; i < 3; i++) {
        cr_expect_eq(zl.pfns[i], zp[i]);
        cr_expect_eq(zl.types[i], zt[i]);
    }
    cr_assert_eq(stream_read_record(r, &rec), 0);
    cr_assert_eq(stream_parse_xbzrle_pages(r, &rec, NR, PAGE, &xb), 0);
    cr_assert_eq(xb.count, 2);
    cr_expect_eq(xb.pfns[0], 6);
    cr_expect_eq(xb.types[0], 0xC);
    cr_expect_eq(xb.types[1], XCC_PFN_NORMAL);
    stream_reader_free(r);

    cr_assert_eq(inspect(fd, &t, &s), 0, "%s", t.error);
    cr_expect_eq(t.pages_zero, 3);
    cr_expect_eq(s.by_type[1][0x1], 1);
    cr_expect_eq(s.by_type[1][0x9], 1);
    cr_expect_eq(s.by_type[1][0x0], 1);
    cr_expect_eq(s.by_type[2][0xC], 1);
    cr_expect_eq(s.by_type[2][0x0], 1);
    close(fd);
}

Test(stream_types, format1_streams_read_as_normal_pages)
{
    int fd = memfd();
    struct stream_writer *w = start(fd, XCC_DHDR_TYPE_SIM, 0);
    const uint64_t plain[] = {1, 2};
    struct xcc_inspect_totals t;
    struct seen s;

    raw_zero(w, plain, 2);
    cr_assert_eq(stream_write_end(w), 0);
    stream_writer_free(w);
    cr_assert_eq(inspect(fd, &t, &s), 0, "%s", t.error);
    cr_expect_eq(s.by_type[1][0], 2);
    close(fd);

    /* Type bits in a format-1 stream: refused, naming the format. */
    fd = memfd();
    w = start(fd, XCC_DHDR_TYPE_X86_PV, 0);
    {
        const uint64_t typed[] = {1ull << 60 | 1};
        raw_zero(w, typed, 1);
    }
    cr_assert_eq(stream_write_end(w), 0);
    stream_writer_free(w);
    expect_refused(fd, "the stream is format 1",
                   "ZERO_PAGES record (type 0x58430002)");
}

Test(stream_types, wrong_types_are_refused)
{
    static const struct {
        uint32_t dtype;
        uint64_t entry;
        const char *needle;
    } cases[] = {
        {XCC_DHDR_TYPE_X86_PV, 0xFull << 60 | 1, "carries no data"},
        {XCC_DHDR_TYPE_X86_PV, 0xDull << 60 | 1, "carries no data"},
        {XCC_DHDR_TYPE_X86_PV, 0xEull << 60 | 1, "carries no data"},
        {XCC_DHDR_TYPE_X86_PV, 0x5ull << 60 | 1, "carries no data"},
        {XCC_DHDR_TYPE_X86_PV, 1ull << 53 | 1, "reserved bits 52..59"},
        {XCC_DHDR_TYPE_X86_PV, NR, "beyond the guest"},
        {XCC_DHDR_TYPE_SIM, 0x1ull << 60 | 1, "which a sim guest cannot have"},
        {XCC_DHDR_TYPE_SIM, 0xCull << 60 | 1, "which a sim guest cannot have"},
    };

    for (size_t i = 0; i < XCC_ARRAY_SIZE(cases); i++) {
        int fd = memfd();
        struct stream_writer *w =
            start(fd, cases[i].dtype, STREAM_GUEST_INFO_TYPED_PFNS);

        raw_zero(w, &cases[i].entry, 1);
        cr_assert_eq(stream_write_end(w), 0);
        stream_writer_free(w);
        expect_refused(fd, cases[i].needle, "ZERO_PAGES");
    }
}

Test(stream_types, unknown_guest_info_flags_refused)
{
    int fd = memfd();
    struct stream_writer *w = start(fd, XCC_DHDR_TYPE_SIM, 0x7);

    cr_assert_eq(stream_write_end(w), 0);
    stream_writer_free(w);
    expect_refused(fd, "unknown flags 0x00000004",
                   "GUEST_INFO record (type 0x58430001)");
}

Test(stream_types, writer_refuses_types_without_data)
{
    int fd = memfd();
    struct stream_writer *w = start(fd, XCC_DHDR_TYPE_X86_PV,
                                    STREAM_GUEST_INFO_TYPED_PFNS);
    const uint64_t pfn = 1;
    const uint8_t hole = XCC_PFN_XTAB, broken = XCC_PFN_BROKEN;
    const uint32_t len = sizeof(delta);

    cr_expect_eq(stream_write_zero_pages_typed(w, &pfn, &hole, 1), -1);
    cr_expect_eq(errno, EINVAL);
    cr_expect_eq(stream_write_xbzrle_pages_typed(w, &pfn, &broken, &len, 1,
                                                 delta), -1);
    cr_expect_eq(errno, EINVAL);
    stream_writer_free(w);
    close(fd);
}

/* A PAGE_DATA record of one page-table page. */
static void write_pt(struct stream_writer *w, uint64_t pfn, uint8_t type,
                     const uint64_t *table)
{
    const uint8_t *pages[] = {(const uint8_t *)table};

    cr_assert_eq(stream_write_page_data(w, &pfn, &type, 1, pages, PAGE), 0);
}

Test(stream_types, inspect_checks_pv_page_tables_normalised)
{
    static uint64_t l1[512], l4[512];
    struct xcc_inspect_totals t;
    struct stream_writer *w;
    struct seen s;
    int fd;

    memset(l1, 0, sizeof(l1));
    memset(l4, 0, sizeof(l4));
    l1[0] = (NR - 1) << 12 | 0x67;
    l1[1] = 0xABCDEull << 12; /* not present: any bits */
    l4[0] = 2ull << 12 | 0x67;
    l4[273] = 3ull << 12 | 0x67;
    fd = memfd();
    w = start(fd, XCC_DHDR_TYPE_X86_PV, STREAM_GUEST_INFO_TYPED_PFNS);
    write_pt(w, 1, XCC_PFN_L1TAB, l1);
    write_pt(w, 2, XCC_PFN_PINNED | XCC_PFN_L4TAB, l4);
    cr_assert_eq(stream_write_end(w), 0);
    stream_writer_free(w);
    cr_assert_eq(inspect(fd, &t, &s), 0, "%s", t.error);
    cr_expect_eq(s.checked, 2);
    cr_expect_eq(s.by_type[0][0x1], 1);
    cr_expect_eq(s.by_type[0][0xC], 1);
    close(fd);

    /* An entry naming a frame beyond the guest (an mfn left in). */
    l1[5] = (uint64_t)NR << 12 | 0x1;
    fd = memfd();
    w = start(fd, XCC_DHDR_TYPE_X86_PV, STREAM_GUEST_INFO_TYPED_PFNS);
    write_pt(w, 1, XCC_PFN_L1TAB, l1);
    cr_assert_eq(stream_write_end(w), 0);
    stream_writer_free(w);
    expect_refused(fd, "entry 5 (0x0000000000040001, frame 0x40) maps a "
                   "frame beyond the guest's pfns", "PAGE_DATA");

    /* Xen's L4 slot left in. */
    l4[256] = 9ull << 12 | 0x63;
    fd = memfd();
    w = start(fd, XCC_DHDR_TYPE_X86_PV, STREAM_GUEST_INFO_TYPED_PFNS);
    write_pt(w, 2, XCC_PFN_L4TAB, l4);
    cr_assert_eq(stream_write_end(w), 0);
    stream_writer_free(w);
    expect_refused(fd, "is one of Xen's slots", "PAGE_DATA");

    /* The same L4 in an HVM stream: not a PV page table, not checked. */
    fd = memfd();
    w = start(fd, XCC_DHDR_TYPE_X86_HVM, STREAM_GUEST_INFO_TYPED_PFNS);
    write_pt(w, 2, XCC_PFN_L4TAB, l4);
    cr_assert_eq(stream_write_end(w), 0);
    stream_writer_free(w);
    cr_assert_eq(inspect(fd, &t, &s), 0, "%s", t.error);
    cr_expect_eq(s.checked, 0);
    close(fd);
}
