/*
 * test_cache_bases.c - stream format 3: the CACHE_BASES record and the
 * GUEST_INFO flag that announces it. The record written and read back, and
 * counted by inspect; every malformed field refused with the record, its
 * offset and what was wrong; the base rule (an XBZRLE_PAGES entry needs a
 * pfn that CACHE_BASES keeps and whose page arrived since) followed through
 * every way a pfn gains or loses its base, by inspect and by a restore into
 * a sim guest alike; a stream without the flag read as before.
 */
#include <criterion/criterion.h>
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sim_open.h"
#include "stream.h"

#define PAGE 4096u
#define NR 64u
#define FLAGS_V3 (STREAM_GUEST_INFO_TYPED_PFNS | STREAM_GUEST_INFO_CACHE_BASES)

static const uint8_t delta[] = {0x00, 0x04, 'A', 'B', 'C', 'D'};
static char target[64];
static xentoollog_logger *quiet;

static void init(void)
{
    snprintf(target, sizeof(target), "cbtest-%d", (int)getpid());
    quiet = (xentoollog_logger *)xtl_createlogger_stdiostream(
        stderr, XTL_CRITICAL, 0);
}

static void fini(void)
{
    xcc_sim_stop(target, quiet);
    xtl_logger_destroy(quiet);
}

TestSuite(cache_bases, .init = init, .fini = fini, .timeout = 120);

static int memfd(void)
{
    int fd = memfd_create("bases", 0);

    cr_assert(fd >= 0);
    return fd;
}

/* A writer into a fresh memfd: sim headers, GUEST_INFO of NR pfns. */
static struct stream_writer *start(int fd, uint32_t flags)
{
    struct stream_writer *w = stream_writer_new(fd, lib_default_logger());

    cr_assert(w);
    cr_assert_eq(stream_write_headers(w, XCC_DHDR_TYPE_SIM, 12, 0, 0), 0);
    cr_assert_eq(stream_write_guest_info(w, NR, PAGE, flags), 0);
    return w;
}

static int inspect_fd(int fd, struct xcc_inspect_totals *t,
                      xcc_inspect_fn *cb, void *opaque)
{
    cr_assert_eq(lseek(fd, 0, SEEK_SET), 0);
    return xcc_stream_inspect(fd, lib_default_logger(), 0, cb, opaque, t);
}

static void expect_refused(int fd, const char *needle, const char *record)
{
    struct xcc_inspect_totals t;

    cr_assert_eq(inspect_fd(fd, &t, NULL, NULL), -1, "accepted: %s", needle);
    cr_expect_eq(errno, XCC_EBADSTREAM);
    cr_expect(strstr(t.error, needle), "'%s' not in: %s", needle, t.error);
    cr_expect(strstr(t.error, record), "'%s' not in: %s", record, t.error);
    cr_expect(strstr(t.error, "at offset "), "no offset: %s", t.error);
}

/* A CACHE_BASES body written raw: the fixed part, then words. */
static void raw_bases(struct stream_writer *w, uint32_t nd, uint32_t nk,
                      uint64_t reserved, const uint64_t *words, size_t n)
{
    uint8_t body[16 + 8 * 8];
    struct iovec iov = {.iov_base = body, .iov_len = 16 + 8 * n};
    uint32_t v32;
    uint64_t v64;

    cr_assert(n <= 8);
    v32 = htole32(nd);
    memcpy(body, &v32, 4);
    v32 = htole32(nk);
    memcpy(body + 4, &v32, 4);
    v64 = htole64(reserved);
    memcpy(body + 8, &v64, 8);
    for (size_t i = 0; i < n; i++) {
        v64 = htole64(words[i]);
        memcpy(body + 16 + 8 * i, &v64, 8);
    }
    cr_assert_eq(stream_write_record(w, STREAM_REC_CACHE_BASES, &iov, 1), 0);
}

struct counted {
    uint64_t records, dropped, kept;
    uint32_t flags;
};

static int count(void *opaque, const struct xcc_inspect_headers *h,
                 const struct xcc_inspect_record *r)
{
    struct counted *c = opaque;

    (void)h;
    if (r && r->type == STREAM_REC_GUEST_INFO)
        c->flags = r->guest_flags;
    if (r && r->type == STREAM_REC_CACHE_BASES) {
        c->records++;
        c->dropped += r->bases_dropped;
        c->kept += r->bases_kept;
    }
    return 0;
}

Test(cache_bases, written_read_back_and_counted)
{
    int fd = memfd();
    struct stream_writer *w = start(fd, FLAGS_V3);
    const uint64_t dropped[] = {9}, kept[] = {3, 4, 63};
    struct stream_reader *r;
    struct stream_headers h;
    struct stream_record rec;
    struct stream_guest_info gi;
    struct stream_cache_bases cb;
    struct xcc_inspect_totals t;
    struct counted c = {0};

    cr_assert_eq(stream_write_cache_bases(w, dropped, 1, kept, 3), 0);
    /* Empty lists write nothing. */
    cr_assert_eq(stream_write_cache_bases(w, NULL, 0, NULL, 0), 0);
    cr_assert_eq(stream_write_end(w), 0);
    stream_writer_free(w);

    r = stream_reader_new(fd, lib_default_logger());
    lseek(fd, 0, SEEK_SET);
    cr_assert_eq(stream_read_headers(r, &h), 0);
    cr_assert_eq(stream_read_record(r, &rec), 0);
    cr_assert_eq(stream_parse_guest_info(r, &rec, &gi), 0);
    cr_assert_eq(gi.flags, FLAGS_V3);
    cr_assert(stream_reader_bases_on(r));
    cr_assert_eq(stream_read_record(r, &rec), 0);
    cr_assert_eq(rec.type, STREAM_REC_CACHE_BASES);
    cr_assert_str_eq(stream_record_name(rec.type), "CACHE_BASES");
    cr_assert_eq(rec.length, 16 + 4 * 8);
    cr_assert_eq(le32toh(*(const uint32_t *)rec.body), 1);
    cr_assert_eq(le32toh(*(const uint32_t *)(rec.body + 4)), 3);
    cr_assert_eq(stream_parse_cache_bases(r, &rec, NR, &cb), 0);
    cr_assert_eq(cb.n_dropped, 1);
    cr_assert_eq(cb.n_kept, 3);
    cr_assert_eq(cb.dropped[0], 9);
    cr_assert_eq(cb.kept[2], 63);
    /* Kept, but no page of them yet: no base. */
    cr_assert(!stream_reader_has_base(r, 3));
    cr_assert_eq(stream_reader_bases(r), 0);
    cr_assert_eq(stream_read_record(r, &rec), 0);
    cr_assert_eq(rec.type, STREAM_REC_END);
    stream_reader_free(r);

    cr_assert_eq(inspect_fd(fd, &t, count, &c), 0, "%s", t.error);
    cr_assert_eq(c.flags, FLAGS_V3);
    cr_assert_eq(c.records, 1);
    cr_assert_eq(c.dropped, 1);
    cr_assert_eq(c.kept, 3);
    close(fd);
}

/*
 * The base rule, step by step. Each case is a script over pfn 3 (and 5):
 *   K keep, D drop, B drop and keep in one record, P a page of data,
 *   H a PAGE_DATA entry without data (a hole), Z a zero page,
 *   X an XBZRLE delta;
 * and what inspect and restore say: NULL accepted, else a needle.
 */
struct step {
    char op;
    uint64_t pfn;
};

static const char *const NO_ANNOUNCE =
    "pfn 0x3 has no XBZRLE base on the receiver: no CACHE_BASES record "
    "announced it as kept";
static const char *const NO_PAGE_SINCE =
    "pfn 0x3 has no XBZRLE base on the receiver: CACHE_BASES keeps it, but "
    "no page of it arrived since";

static const struct {
    const char *name;
    uint32_t flags;
    struct step steps[10];
    const char *refused;
} cases[] = {
    {"kept, page, delta, delta", FLAGS_V3,
     {{'K', 3}, {'P', 3}, {'X', 3}, {'X', 3}}, NULL},
    {"never kept", FLAGS_V3, {{'P', 3}, {'X', 3}}, NO_ANNOUNCE},
    {"another pfn kept", FLAGS_V3,
     {{'K', 5}, {'P', 3}, {'P', 5}, {'X', 5}, {'X', 3}}, NO_ANNOUNCE},
    {"kept after its page", FLAGS_V3,
     {{'P', 3}, {'K', 3}, {'X', 3}}, NO_PAGE_SINCE},
    {"kept, never sent", FLAGS_V3, {{'K', 3}, {'X', 3}}, NO_PAGE_SINCE},
    {"dropped", FLAGS_V3, {{'K', 3}, {'P', 3}, {'D', 3}, {'X', 3}},
     NO_ANNOUNCE},
    /* Evicted and taken back in one batch: the batch sends the page. */
    {"dropped and kept, then a page", FLAGS_V3,
     {{'K', 3}, {'P', 3}, {'B', 3}, {'P', 3}, {'X', 3}}, NULL},
    {"dropped and kept, no page", FLAGS_V3,
     {{'K', 3}, {'P', 3}, {'B', 3}, {'X', 3}}, NO_PAGE_SINCE},
    {"a hole", FLAGS_V3, {{'K', 3}, {'P', 3}, {'H', 3}, {'X', 3}},
     NO_PAGE_SINCE},
    {"a zero page is a base", FLAGS_V3, {{'K', 3}, {'Z', 3}, {'X', 3}}, NULL},
    {"a delta keeps the base", FLAGS_V3,
     {{'K', 3}, {'Z', 3}, {'X', 3}, {'K', 5}, {'P', 5}, {'X', 3}}, NULL},
    {"a page while not kept", FLAGS_V3,
     {{'K', 3}, {'P', 3}, {'D', 3}, {'P', 3}, {'X', 3}}, NO_ANNOUNCE},
    /* Format 2 (no flag): no announcements, every delta goes. */
    {"format 2", STREAM_GUEST_INFO_TYPED_PFNS, {{'P', 3}, {'X', 3}}, NULL},
};

static void write_step(struct stream_writer *w, struct step s)
{
    static uint8_t page[PAGE];
    const uint8_t *pages[] = {page};
    uint8_t hole = XCC_PFN_XTAB;
    const uint32_t len = sizeof(delta);

    memset(page, 0x33, sizeof(page));
    switch (s.op) {
    case 'K':
        cr_assert_eq(stream_write_cache_bases(w, NULL, 0, &s.pfn, 1), 0);
        break;
    case 'D':
        cr_assert_eq(stream_write_cache_bases(w, &s.pfn, 1, NULL, 0), 0);
        break;
    case 'B':
        cr_assert_eq(stream_write_cache_bases(w, &s.pfn, 1, &s.pfn, 1), 0);
        break;
    case 'P':
        cr_assert_eq(stream_write_page_data(w, &s.pfn, NULL, 1, pages, PAGE),
                     0);
        break;
    case 'H':
        cr_assert_eq(stream_write_page_data(w, &s.pfn, &hole, 1, pages, PAGE),
                     0);
        break;
    case 'Z':
        cr_assert_eq(stream_write_zero_pages(w, &s.pfn, 1), 0);
        break;
    case 'X':
        cr_assert_eq(stream_write_xbzrle_pages(w, &s.pfn, &len, 1, delta), 0);
        break;
    default:
        cr_assert_fail("op %c", s.op);
    }
}

/* A restore of fd into a fresh sim guest of NR pages: 0 or -1, and the
 * message. */
static int restore_fd(int fd, char *msg, size_t len)
{
    struct xcc_restore_params p;
    xcc_restorer *r;
    xcc_domain *d;
    int rc;

    xcc_sim_stop(target, quiet);
    cr_assert_eq(xcc_sim_create(target, NR * PAGE, NULL), 0);
    d = open_sim(target);
    xcc_restore_params_init(&p);
    p.progress = 0;
    lseek(fd, 0, SEEK_SET);
    r = xcc_restorer_new(fd, &p, lib_default_logger());
    rc = xcc_restorer_run(r, d);
    snprintf(msg, len, "%s", xcc_restorer_error(r));
    xcc_restorer_free(r);
    xcc_domain_close(d);
    return rc;
}

Test(cache_bases, an_xbzrle_entry_needs_a_base)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int fd = memfd();
        struct stream_writer *w = start(fd, cases[i].flags);
        struct xcc_inspect_totals t;
        char msg[512];
        int rc;

        for (size_t k = 0; cases[i].steps[k].op; k++)
            write_step(w, cases[i].steps[k]);
        cr_assert_eq(stream_write_end(w), 0);
        stream_writer_free(w);
        rc = inspect_fd(fd, &t, NULL, NULL);
        if (!cases[i].refused) {
            cr_assert_eq(rc, 0, "%s: inspect: %s", cases[i].name, t.error);
            cr_assert_eq(restore_fd(fd, msg, sizeof(msg)), 0,
                         "%s: restore: %s", cases[i].name, msg);
        } else {
            cr_assert_eq(rc, -1, "%s: accepted", cases[i].name);
            cr_assert(strstr(t.error, cases[i].refused), "%s: %s",
                      cases[i].name, t.error);
            cr_assert(strstr(t.error, "XBZRLE_PAGES record (type 0x58430003) "
                             "at offset "), "%s: %s", cases[i].name, t.error);
            cr_assert_eq(restore_fd(fd, msg, sizeof(msg)), -1, "%s: restored",
                         cases[i].name);
            cr_assert_str_eq(msg, t.error, "%s: restore and inspect differ",
                             cases[i].name);
        }
        close(fd);
    }
}

Test(cache_bases, hostile_fields_are_named)
{
    static const struct {
        const char *name;
        uint32_t flags;
        uint32_t nd, nk;
        uint64_t reserved;
        uint64_t words[4];
        size_t n;
        const char *needle;
    } bad[] = {
        {"no flag", STREAM_GUEST_INFO_TYPED_PFNS, 0, 1, 0, {3}, 1,
         "GUEST_INFO lacks the cache-bases flag 0x2"},
        {"reserved", FLAGS_V3, 0, 1, 1, {3}, 1,
         "reserved field is 0x0000000000000001"},
        {"empty", FLAGS_V3, 0, 0, 0, {0}, 0, "both lists are empty"},
        {"short", FLAGS_V3, 1, 1, 0, {3}, 1,
         "body holds 24 bytes but 1 dropped and 1 kept pfns need 32"},
        {"long", FLAGS_V3, 0, 1, 0, {3, 4}, 2,
         "body holds 32 bytes but 0 dropped and 1 kept pfns need 24"},
        {"count overflow", FLAGS_V3, 0xFFFFFFFFu, 0xFFFFFFFFu, 0, {3}, 1,
         "body holds 24 bytes"},
        {"beyond the guest", FLAGS_V3, 1, 1, 0, {3, NR}, 2,
         "kept entry 0: pfn 0x40 is beyond the guest's 64 pages"},
        {"high bits", FLAGS_V3, 1, 0, 0, {3ull | 1ull << 60}, 1,
         "dropped entry 0: pfn 0x1000000000000003 is beyond"},
        {"twice dropped", FLAGS_V3, 2, 0, 0, {7, 7}, 2,
         "dropped entry 1: pfn 0x7 appears twice in the list"},
        {"twice kept", FLAGS_V3, 1, 3, 0, {7, 8, 9, 8}, 4,
         "kept entry 2: pfn 0x8 appears twice in the list"},
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int fd = memfd();
        struct stream_writer *w = start(fd, bad[i].flags);

        raw_bases(w, bad[i].nd, bad[i].nk, bad[i].reserved, bad[i].words,
                  bad[i].n);
        cr_assert_eq(stream_write_end(w), 0);
        stream_writer_free(w);
        expect_refused(fd, bad[i].needle,
                       "CACHE_BASES record (type 0x58430008) at offset 64");
        close(fd);
    }

    /* Not an error: one pfn in both lists (dropped, then kept). */
    int fd = memfd();
    struct stream_writer *w = start(fd, FLAGS_V3);
    struct xcc_inspect_totals t;
    const uint64_t both[] = {7, 7};
    raw_bases(w, 1, 1, 0, both, 2);
    cr_assert_eq(stream_write_end(w), 0);
    stream_writer_free(w);
    cr_assert_eq(inspect_fd(fd, &t, NULL, NULL), 0, "%s", t.error);
    close(fd);
}

Test(cache_bases, the_writer_refuses_pfns_beyond_52_bits)
{
    int fd = memfd();
    struct stream_writer *w = start(fd, FLAGS_V3);
    const uint64_t big = STREAM_PFN_LIMIT;

    cr_assert_eq(stream_write_cache_bases(w, &big, 1, NULL, 0), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_eq(stream_write_cache_bases(w, NULL, 0, &big, 1), -1);
    cr_assert_eq(errno, EINVAL);
    stream_writer_free(w);
    close(fd);
}

/* A hostile GUEST_INFO claiming 2^40 pages (4 PiB) costs the reader
 * nothing until pfns are kept: the base sets grow with the stream, not
 * with the guest. */
Test(cache_bases, a_huge_guest_costs_nothing_up_front)
{
    int fd = memfd();
    struct stream_writer *w = stream_writer_new(fd, lib_default_logger());
    static uint8_t page[PAGE];
    const uint8_t *pages[] = {page};
    const uint64_t nr = 1ull << 40, pfn = nr - 1;
    const uint32_t len = sizeof(delta);
    struct xcc_inspect_totals t;

    cr_assert_eq(stream_write_headers(w, XCC_DHDR_TYPE_SIM, 12, 0, 0), 0);
    cr_assert_eq(stream_write_guest_info(w, nr, PAGE, FLAGS_V3), 0);
    cr_assert_eq(stream_write_cache_bases(w, NULL, 0, &pfn, 1), 0);
    cr_assert_eq(stream_write_page_data(w, &pfn, NULL, 1, pages, PAGE), 0);
    cr_assert_eq(stream_write_xbzrle_pages(w, &pfn, &len, 1, delta), 0);
    cr_assert_eq(stream_write_end(w), 0);
    stream_writer_free(w);
    cr_assert_eq(inspect_fd(fd, &t, NULL, NULL), 0, "%s", t.error);
    close(fd);
}
