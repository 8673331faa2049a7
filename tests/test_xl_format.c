/*
 * test_xl_format.c - the xl save-file header and libxl v2 framing
 * (xl_format.c): byte-exact encoding against the layout of Xen 4.17's
 * tools/xl/xl.h and libxl_sr_stream_format.h, every decoder fault, the
 * --xen-compat record rule, and whole images: built by hand, cut at every
 * length, and written by the saver from a real sim guest relabelled as a
 * Xen HVM domain (the only part of a Xen domain the framing looks at),
 * then inspected and restored.
 */
#include <criterion/criterion.h>
#include <endian.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "domain/domain.h"
#include "save.h"
#include "stream.h"
#include "xl_format.h"

#define PAGE 4096u
#define MiB (1024ull * 1024)

static const char CONFIG[] =
    "{\"c_info\":{\"type\":\"pv\",\"name\":\"domu\"},"
    "\"b_info\":{\"max_vcpus\":2,\"max_memkb\":262144,"
    "\"target_memkb\":262144}}";

/* One logger that prints nothing (the errors are checked, not shown). */
static xentoollog_logger *quiet_log;

static xentoollog_logger *quiet(void)
{
    if (!quiet_log)
        quiet_log = (xentoollog_logger *)xtl_createlogger_stdiostream(
            stderr, XTL_NUM_LEVELS, 0);
    return quiet_log;
}

static void __attribute__((destructor)) quiet_free(void)
{
    if (quiet_log)
        xtl_logger_destroy(quiet_log);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[3] | (uint32_t)p[2] << 8 | (uint32_t)p[1] << 16 |
           (uint32_t)p[0] << 24;
}

/* ---- Encoding, byte for byte -------------------------------------------- */

Test(xl_format, prologue_bytes_match_xl_save)
{
    size_t jl = strlen(CONFIG), n = xl_prologue_size(jl);
    uint8_t *b = malloc(n);
    const uint8_t magic[32] = {'X', 'e', 'n', ' ', 's', 'a', 'v', 'e', 'd',
                               ' ', 'd', 'o', 'm', 'a', 'i', 'n', ',', ' ',
                               'x', 'l', ' ', 'f', 'o', 'r', 'm', 'a', 't',
                               '\n', ' ', 0, ' ', '\r'};

    cr_assert_eq(n, 48 + 4 + jl + 1 + 16 + 8);
    cr_assert_eq(xl_encode_prologue(b, n, CONFIG), n);
    cr_expect_arr_eq(b, magic, 32);
    cr_expect_arr_eq(b + 32, ((uint8_t[]){4, 3, 2, 1}), 4, "byte order");
    cr_expect_eq(le32(b + 36), 3, "JSON | STREAMv2");
    cr_expect_eq(le32(b + 40), 0, "optional flags");
    cr_expect_eq(le32(b + 44), 4 + jl + 1, "optional data length");
    cr_expect_eq(le32(b + 48), jl + 1, "config length with its NUL");
    cr_expect_arr_eq(b + 52, CONFIG, jl + 1);
    const uint8_t *l = b + 52 + jl + 1;
    cr_expect_arr_eq(l, "LibxlFmt", 8);
    cr_expect_eq(be32(l + 8), 2, "libxl version, big-endian");
    cr_expect_eq(be32(l + 12), 0, "options");
    cr_expect_eq(le32(l + 16), 1, "LIBXC_CONTEXT");
    cr_expect_eq(le32(l + 20), 0, "empty");
    free(b);
}

Test(xl_format, prologue_without_config)
{
    uint8_t b[128];
    size_t n = xl_encode_prologue(b, sizeof(b), NULL);

    cr_assert_eq(n, 48 + 4 + 16 + 8);
    cr_expect_eq(le32(b + 36), 2, "STREAMv2 only, no JSON flag");
    cr_expect_eq(le32(b + 44), 4, "xl writes the length even for none");
    cr_expect_eq(le32(b + 48), 0);
    errno = 0;
    cr_expect_eq(xl_encode_prologue(b, n - 1, NULL), 0);
    cr_expect_eq(errno, ENOSPC);
}

/* ---- Decoders ------------------------------------------------------------ */

static void good_header(uint8_t h[48])
{
    uint8_t b[128];

    cr_assert(xl_encode_prologue(b, sizeof(b), NULL));
    memcpy(h, b, 48);
}

Test(xl_format, header_faults_are_named)
{
    uint8_t h[48];
    struct xl_header xh;
    char err[256];

    good_header(h);
    cr_assert_eq(xl_parse_header(h, &xh, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(xh.mandatory_flags, 2);

    good_header(h);
    h[4] = 'X';
    cr_expect_eq(xl_parse_header(h, &xh, err, sizeof(err)), -1);
    cr_expect_eq(errno, XCC_EBADSTREAM);
    cr_expect(strstr(err, "offset 0") && strstr(err, "magic"), "%s", err);

    good_header(h);
    memcpy(h + 32, (uint8_t[]){1, 2, 3, 4}, 4);
    cr_expect_eq(xl_parse_header(h, &xh, err, sizeof(err)), -1);
    cr_expect(strstr(err, "offset 32") && strstr(err, "big-endian"), "%s",
              err);

    good_header(h);
    h[36] |= 4;
    cr_expect_eq(xl_parse_header(h, &xh, err, sizeof(err)), -1);
    cr_expect(strstr(err, "offset 36") && strstr(err, "0x00000004"), "%s",
              err);

    good_header(h);
    h[36] = 1; /* JSON, no STREAMv2: a legacy image */
    cr_expect_eq(xl_parse_header(h, &xh, err, sizeof(err)), -1);
    cr_expect(strstr(err, "legacy"), "%s", err);

    good_header(h);
    h[47] = 0x7f; /* optional data of ~2 GiB */
    cr_expect_eq(xl_parse_header(h, &xh, err, sizeof(err)), -1);
    cr_expect(strstr(err, "offset 44"), "%s", err);
}

Test(xl_format, optional_data_faults_are_named)
{
    struct xl_header h = {.mandatory_flags = 3};
    char err[256];
    uint8_t d[64] = {0};

    cr_expect_eq(xl_parse_optdata(d, 0, &h, err, sizeof(err)), 0);
    cr_expect_null(h.config);

    cr_expect_eq(xl_parse_optdata(d, 3, &h, err, sizeof(err)), -1);
    cr_expect(strstr(err, "offset 48") && strstr(err, "too short"), "%s",
              err);

    memcpy(d, (uint8_t[]){10, 0, 0, 0}, 4);
    memcpy(d + 4, "{\"a\":1}", 8);
    cr_expect_eq(xl_parse_optdata(d, 11, &h, err, sizeof(err)), -1,
                 "10 bytes of config in 7");
    cr_expect(strstr(err, "does not fit"), "%s", err);

    memcpy(d, (uint8_t[]){7, 0, 0, 0}, 4);
    cr_expect_eq(xl_parse_optdata(d, 11, &h, err, sizeof(err)), -1);
    cr_expect(strstr(err, "offset 52") && strstr(err, "does not end in a NUL"),
              "%s", err);

    memcpy(d, (uint8_t[]){8, 0, 0, 0}, 4);
    d[6] = 0;
    cr_expect_eq(xl_parse_optdata(d, 12, &h, err, sizeof(err)), -1);
    cr_expect(strstr(err, "NUL before its end"), "%s", err);

    /* A good config with a tail xl skips; a text config without NUL. */
    memcpy(d + 4, "{\"a\":1}", 8);
    cr_expect_eq(xl_parse_optdata(d, 20, &h, err, sizeof(err)), 0, "%s", err);
    cr_expect_str_eq(h.config, "{\"a\":1}");
    cr_expect_eq(h.config_len, 8);
    xl_header_release(&h);
    h.mandatory_flags = 2;
    memcpy(d, (uint8_t[]){3, 0, 0, 0}, 4);
    memcpy(d + 4, "a=1", 3);
    cr_expect_eq(xl_parse_optdata(d, 7, &h, err, sizeof(err)), 0, "%s", err);
    cr_expect_str_eq(h.config, "a=1");
    xl_header_release(&h);
}

Test(xl_format, libxl_header_faults_are_named)
{
    uint8_t b[128], *l;
    uint32_t opts;
    char err[256];

    cr_assert(xl_encode_prologue(b, sizeof(b), NULL));
    l = b + 52;
    cr_expect_eq(xl_parse_libxl_header(l, 52, &opts, err, sizeof(err)), 0);
    l[0] = 'l';
    cr_expect_eq(xl_parse_libxl_header(l, 52, &opts, err, sizeof(err)), -1);
    cr_expect(strstr(err, "offset 52") && strstr(err, "LibxlFmt"), "%s", err);
    l[0] = 'L';
    l[11] = 1;
    cr_expect_eq(xl_parse_libxl_header(l, 52, &opts, err, sizeof(err)), -1);
    cr_expect(strstr(err, "offset 60") && strstr(err, "version 1"), "%s",
              err);
    l[11] = 2;
    l[15] = 1;
    cr_expect_eq(xl_parse_libxl_header(l, 52, &opts, err, sizeof(err)), -1);
    cr_expect(strstr(err, "offset 64") && strstr(err, "big-endian"), "%s",
              err);
    l[15] = 2; /* converted from legacy: accepted, reported */
    cr_expect_eq(xl_parse_libxl_header(l, 52, &opts, err, sizeof(err)), 0);
    cr_expect_eq(opts, 2);
}

/* ---- The --xen-compat rule ----------------------------------------------- */

Test(xl_format, compat_filter_keeps_xen_drops_ours)
{
    const char *why = "";

    for (uint32_t t = 0; t <= 0x12; t++)
        cr_expect_eq(xl_compat_filter(t, &why), STREAM_FILTER_KEEP, "%#x", t);
    cr_expect_eq(xl_compat_filter(STREAM_REC_GUEST_INFO, &why),
                 STREAM_FILTER_DROP);
    cr_expect_eq(xl_compat_filter(STREAM_REC_DIGEST, &why), STREAM_FILTER_DROP);
    cr_expect_eq(xl_compat_filter(STREAM_REC_STATS, &why), STREAM_FILTER_DROP,
                 "0xD8430005: the optional bit does not hide ours");
    cr_expect_eq(xl_compat_filter(0x58430006u, &why), STREAM_FILTER_DROP,
                 "XL_CONFIG: the config goes in the xl header instead");
    cr_expect_eq(xl_compat_filter(STREAM_REC_ZERO_PAGES, &why),
                 STREAM_FILTER_REFUSE);
    cr_expect_eq(xl_compat_filter(STREAM_REC_XBZRLE_PAGES, &why),
                 STREAM_FILTER_REFUSE);
    cr_expect(strstr(why, "PAGE_DATA"), "%s", why);
}

Test(xl_format, filtered_writer_drops_and_refuses)
{
    int fd = memfd_create("xl", 0);
    struct stream_writer *w = stream_writer_new(fd, quiet());
    uint64_t pfn = 3;

    stream_writer_set_filter(w, xl_compat_filter);
    cr_assert_eq(stream_write_headers(w, XCC_DHDR_TYPE_X86_PV, 12, 4, 17), 0);
    cr_assert_eq(stream_write_guest_info(w, 16, PAGE, 0), 0);
    cr_expect_eq(stream_writer_bytes(w), 40, "GUEST_INFO dropped");
    errno = 0;
    cr_expect_eq(stream_write_zero_pages(w, &pfn, 1), -1);
    cr_expect_eq(errno, EINVAL);
    cr_expect_eq(stream_write_static_data_end(w), 0);
    cr_expect_eq(stream_writer_bytes(w), 48);
    cr_expect_eq(lseek(fd, 0, SEEK_END), 48, "nothing else reached the fd");
    stream_writer_free(w);
    close(fd);
}

/* ---- Whole images -------------------------------------------------------- */

/* Appends the libxc stream of a 16-page PV guest (4 pages with data). */
static void write_libxc(struct stream_writer *w)
{
    uint64_t pfns[4] = {0, 1, 7, 15};
    uint8_t types[4] = {0, 0, 0, 0}, *pg = calloc(4, PAGE);
    const uint8_t *pages[4];

    for (int i = 0; i < 4; i++) {
        memset(pg + i * PAGE, 0x11 * (i + 1), PAGE);
        pages[i] = pg + i * PAGE;
    }
    cr_assert_eq(stream_write_headers(w, XCC_DHDR_TYPE_X86_HVM, 12, 4, 17), 0);
    cr_assert_eq(stream_write_static_data_end(w), 0);
    cr_assert_eq(stream_write_page_data(w, pfns, types, 4, pages, PAGE), 0);
    cr_assert_eq(stream_write_end(w), 0);
    free(pg);
}

/* A whole image in a memfd: prologue, libxc stream, `extra` libxl records
 * (bytes) and libxl END. Returns the fd at offset 0; *len the size. */
static int build_image(const char *json, const uint8_t *extra,
                       size_t extra_len, size_t *len)
{
    int fd = memfd_create("xl", 0);
    struct stream_writer *w = stream_writer_new(fd, quiet());

    cr_assert_eq(xl_write_prologue(w, json), 0);
    write_libxc(w);
    if (extra_len)
        cr_assert_eq(stream_write_raw(w, extra, extra_len, "extra"), 0);
    cr_assert_eq(xl_write_epilogue(w), 0);
    *len = stream_writer_bytes(w);
    stream_writer_free(w);
    lseek(fd, 0, SEEK_SET);
    return fd;
}

struct seen {
    char order[64][40];
    int n;
    char name[32];
    uint32_t config_len;
    uint32_t emu_id;
};

static int seen_xl(void *opaque, const struct xcc_inspect_xl *xl,
                   const struct xcc_inspect_libxl_record *r)
{
    struct seen *s = opaque;

    if (s->n < 64)
        snprintf(s->order[s->n++], 40, "libxl %s", r ? r->name : "HEADER");
    if (!r) {
        s->config_len = xl->config_len;
        const char *p = xl->config ? strstr(xl->config, "\"name\":\"") : NULL;
        if (p)
            sscanf(p + 8, "%31[^\"]", s->name);
    } else if (r->emulator) {
        s->emu_id = r->emulator_id;
    }
    return 0;
}

static int seen_rec(void *opaque, const struct xcc_inspect_headers *h,
                    const struct xcc_inspect_record *r)
{
    struct seen *s = opaque;

    if (s->n < 64)
        snprintf(s->order[s->n++], 40, "%s", r ? r->name : "HEADERS");
    return 0;
}

Test(xl_format, image_records_in_file_order)
{
    size_t len;
    int fd = build_image(CONFIG, NULL, 0, &len);
    struct xcc_inspect_totals t;
    struct seen s = {0};
    const char *want[] = {"libxl HEADER", "libxl LIBXC_CONTEXT", "HEADERS",
                          "STATIC_DATA_END", "PAGE_DATA", "END",
                          "libxl END"};

    cr_assert_eq(xcc_image_inspect(fd, quiet(), 0, seen_xl, seen_rec, &s, &t),
                 0, "%s", t.error);
    cr_assert_eq(s.n, 7);
    for (int i = 0; i < 7; i++)
        cr_expect_str_eq(s.order[i], want[i]);
    cr_expect_str_eq(s.name, "domu");
    cr_expect_eq(s.config_len, strlen(CONFIG) + 1);
    cr_expect_eq(t.bytes, len, "the whole file");
    cr_expect_eq(t.pages_data, 4);
    close(fd);
}

Test(xl_format, bare_libxc_stream_still_reads)
{
    int fd = memfd_create("xl", 0);
    struct stream_writer *w = stream_writer_new(fd, quiet());
    struct xcc_inspect_totals t;
    struct seen s = {0};

    write_libxc(w);
    stream_writer_free(w);
    lseek(fd, 0, SEEK_SET);
    cr_assert_eq(xcc_image_inspect(fd, quiet(), 0, seen_xl, seen_rec, &s, &t),
                 0, "%s", t.error);
    cr_expect_eq(s.n, 4, "no libxl callbacks");
    cr_expect_str_eq(s.order[0], "HEADERS");
    close(fd);
}

Test(xl_format, emulator_records_skipped_and_reported)
{
    /* EMULATOR_CONTEXT of 13 bytes: sub-header (qemu upstream, index 0)
     * and 5 bytes of blob, 3 of padding. */
    uint8_t rec[24] = {3, 0, 0, 0, 13, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0,
                       'q', 'e', 'm', 'u', '!', 0, 0, 0};
    size_t len;
    int fd = build_image(CONFIG, rec, sizeof(rec), &len);
    struct xcc_inspect_totals t;
    struct seen s = {0};

    cr_assert_eq(xcc_image_inspect(fd, quiet(), 0, seen_xl, seen_rec, &s, &t),
                 0, "%s", t.error);
    cr_expect_str_eq(s.order[s.n - 2], "libxl EMULATOR_CONTEXT");
    cr_expect_eq(s.emu_id, 2);
    close(fd);

    rec[22] = 1; /* a padding byte */
    fd = build_image(CONFIG, rec, sizeof(rec), &len);
    cr_expect_eq(xcc_image_inspect(fd, quiet(), 0, NULL, NULL, NULL, &t), -1);
    cr_expect_eq(errno, XCC_EBADSTREAM);
    cr_expect(strstr(t.error, "EMULATOR_CONTEXT") &&
                  strstr(t.error, "padding byte 1"),
              "%s", t.error);
    close(fd);
}

Test(xl_format, bad_libxl_records_are_named)
{
    struct {
        uint8_t rec[8];
        const char *want;
    } cases[] = {
        {{4, 0, 0, 0, 0, 0, 0, 0}, "checkpointed"},
        {{1, 0, 0, 0, 0, 0, 0, 0}, "a second libxc stream"},
        {{9, 0, 0, 0, 0, 0, 0, 0}, "unknown mandatory"},
        {{2, 0, 0, 0, 4, 0, 0, 0}, "too short"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len;
        int fd = build_image(CONFIG, cases[i].rec, 8, &len);
        struct xcc_inspect_totals t;

        cr_expect_eq(xcc_image_inspect(fd, quiet(), 0, NULL, NULL, NULL, &t),
                     -1);
        cr_expect_eq(errno, XCC_EBADSTREAM);
        cr_expect(strstr(t.error, cases[i].want), "case %zu: %s", i, t.error);
        cr_expect(strstr(t.error, "offset "), "%s", t.error);
        close(fd);
    }
}

Test(xl_format, trailing_byte_after_libxl_end)
{
    size_t len;
    int fd = build_image(CONFIG, NULL, 0, &len);
    struct xcc_inspect_totals t;

    lseek(fd, 0, SEEK_END);
    cr_assert_eq(write(fd, "x", 1), 1);
    lseek(fd, 0, SEEK_SET);
    cr_expect_eq(xcc_image_inspect(fd, quiet(), 0, NULL, NULL, NULL, &t), -1);
    cr_expect(strstr(t.error, "after libxl's END"), "%s", t.error);
    close(fd);
}

/* Every cut of a valid image fails as truncated, naming an offset no
 * further than the cut; nothing crashes. */
Test(xl_format, every_truncation_is_named)
{
    size_t len;
    int fd = build_image(CONFIG, NULL, 0, &len);
    uint8_t *img = malloc(len);

    cr_assert_eq(pread(fd, img, len, 0), (ssize_t)len);
    close(fd);
    for (size_t cut = 1; cut < len; cut++) {
        int c = memfd_create("cut", 0);
        struct xcc_inspect_totals t;
        unsigned long long off = 0;
        const char *p;

        cr_assert_eq(write(c, img, cut), (ssize_t)cut);
        lseek(c, 0, SEEK_SET);
        cr_assert_eq(xcc_image_inspect(c, quiet(), 0, NULL, NULL, NULL, &t),
                     -1, "cut at %zu accepted", cut);
        cr_assert_eq(errno, XCC_ETRUNCATED, "cut %zu: %s", cut, t.error);
        p = strstr(t.error, "offset ");
        cr_assert(p, "cut %zu: no offset in '%s'", cut, t.error);
        sscanf(p + 7, "%llu", &off);
        cr_assert_leq(off, cut, "cut %zu: %s", cut, t.error);
        if (cut < 48)
            cr_assert(strstr(t.error, "xl header at offset 0"), "cut %zu: %s",
                      cut, t.error);
        close(c);
    }
    free(img);
}

/* ---- The saver and the restorer ------------------------------------------ */

static char guest[2][64];

static void names_init(void)
{
    for (int i = 0; i < 2; i++)
        snprintf(guest[i], sizeof(guest[i]), "xltest-%d-%d", (int)getpid(), i);
    signal(SIGPIPE, SIG_IGN);
}

static void names_fini(void)
{
    for (int i = 0; i < 2; i++)
        xcc_sim_stop(guest[i], quiet());
}

/* A sim guest that says it is a Xen 4.17 HVM domain: the saver's choice
 * of framing reads only the domain type. Its ops are the sim's. */
static struct xcc_domain_ops relabelled_ops;
static int (*sim_info)(xcc_domain *, struct xcc_domain_info *);

static int relabelled_info(xcc_domain *d, struct xcc_domain_info *info)
{
    int rc = sim_info(d, info);

    info->stream_type = XCC_DHDR_TYPE_X86_HVM;
    info->xen_major = 4;
    info->xen_minor = 17;
    return rc;
}

static xcc_domain *open_as_xen(const char *name)
{
    char dn[96];
    xcc_domain *d;

    snprintf(dn, sizeof(dn), "sim:%s", name);
    d = xcc_domain_open(dn, quiet(), 0);
    cr_assert(d, "%s: %s", dn, xcc_strerror(errno));
    relabelled_ops = *d->ops;
    sim_info = d->ops->info;
    relabelled_ops.info = relabelled_info;
    d->ops = &relabelled_ops;
    cr_assert_eq(relabelled_info(d, &d->info), 0);
    return d;
}

Test(xl_format, saver_refuses_missing_config_and_xbzrle,
     .init = names_init, .fini = names_fini)
{
    struct xcc_save_params p;
    int fd = memfd_create("xl", 0);

    cr_assert_eq(xcc_sim_start(guest[0], 8 * MiB, "idle", 1, NULL, NULL,
                               quiet()), 0);
    xcc_domain *d = open_as_xen(guest[0]);
    xcc_save_params_init(&p);
    p.xen_compat = 1;
    p.progress = 0;
    errno = 0;
    cr_expect_null(xcc_saver_new(d, fd, &p, quiet()), "no config");
    cr_expect_eq(errno, EINVAL);
    p.domain_config_json = CONFIG;
    p.xbzrle = 1;
    errno = 0;
    cr_expect_null(xcc_saver_new(d, fd, &p, quiet()), "XBZRLE");
    cr_expect_eq(errno, EINVAL);
    struct xcc_checkpoint_params cp;
    xcc_checkpoint_params_init(&cp);
    p.xbzrle = 0;
    cr_expect_null(xcc_checkpointer_new(d, fd, &p, &cp, quiet()),
                   "no Remus framing");
    cr_expect_eq(lseek(fd, 0, SEEK_END), 0, "nothing written");
    xcc_domain_close(d);
    close(fd);
}

Test(xl_format, saver_writes_an_xl_image_restore_reads,
     .init = names_init, .fini = names_fini)
{
    const uint64_t mem = 16 * MiB;
    struct xcc_save_params p;
    struct xcc_inspect_totals t;
    struct seen s = {0};
    int fd = memfd_create("xl", 0);
    uint8_t a[16], b[16];

    cr_assert_eq(xcc_sim_start(guest[0], mem, "random:2000", 7, NULL, NULL,
                               quiet()), 0);
    xcc_domain *d = open_as_xen(guest[0]);
    xcc_save_params_init(&p);
    p.live = 1;
    p.xen_compat = 1;
    p.progress = 0;
    p.domain_config_json = CONFIG;
    xcc_saver *sv = xcc_saver_new(d, fd, &p, quiet());
    cr_assert(sv, "%s", xcc_strerror(errno));
    cr_assert_eq(xcc_saver_run(sv), 0);
    xcc_saver_free(sv);
    /* Paused after the save: its memory is the image's. */
    cr_assert_geq(xcc_domain_digest(d, 0, a, NULL, 0), 1);

    lseek(fd, 0, SEEK_SET);
    cr_assert_eq(xcc_image_inspect(fd, quiet(), 0, seen_xl, seen_rec, &s, &t),
                 0, "%s", t.error);
    cr_expect_str_eq(s.order[0], "libxl HEADER");
    cr_expect_str_eq(s.order[1], "libxl LIBXC_CONTEXT");
    cr_expect_str_eq(s.order[2], "HEADERS");
    cr_expect_str_eq(s.order[s.n - 2], "END");
    cr_expect_str_eq(s.order[s.n - 1], "libxl END");
    for (int i = 3; i < s.n - 2; i++)
        cr_expect(!strcmp(s.order[i], "PAGE_DATA") ||
                      !strcmp(s.order[i], "STATIC_DATA_END"),
                  "record %d is %s: only Xen's records", i, s.order[i]);
    cr_expect_str_eq(s.name, "domu");
    cr_expect_eq(t.headers.domain_type, XCC_DHDR_TYPE_X86_HVM);
    cr_expect_eq(t.headers.xen_major, 4);
    cr_expect_eq(t.bytes, (uint64_t)lseek(fd, 0, SEEK_END));

    /* The memory path: an xl image into a sim target. */
    cr_assert_eq(xcc_sim_create(guest[1], mem, quiet()), 0);
    char dn[96];
    snprintf(dn, sizeof(dn), "sim:%s", guest[1]);
    xcc_domain *tgt = xcc_domain_open(dn, quiet(), 0);
    struct xcc_restore_params rp;
    xcc_restore_params_init(&rp);
    rp.progress = 0;
    lseek(fd, 0, SEEK_SET);
    xcc_restorer *r = xcc_restorer_new(fd, &rp, quiet());
    cr_assert_eq(xcc_restorer_run(r, tgt), 0, "%s", xcc_restorer_error(r));
    cr_assert_geq(xcc_domain_digest(tgt, 0, b, NULL, 0), 1);
    cr_expect_arr_eq(a, b, 16, "restored memory equals the source's");
    xcc_restorer_free(r);

    /* A restore refuses a cut image, naming libxl's END. */
    uint64_t full = (uint64_t)lseek(fd, 0, SEEK_END);
    cr_assert_eq(ftruncate(fd, (off_t)full - 8), 0);
    lseek(fd, 0, SEEK_SET);
    xcc_sim_stop(guest[1], quiet());
    cr_assert_eq(xcc_sim_create(guest[1], mem, quiet()), 0);
    xcc_domain_close(tgt);
    tgt = xcc_domain_open(dn, quiet(), 0);
    r = xcc_restorer_new(fd, &rp, quiet());
    cr_expect_eq(xcc_restorer_run(r, tgt), -1);
    cr_expect_eq(errno, XCC_ETRUNCATED);
    cr_expect(strstr(xcc_restorer_error(r), "without libxl's END"), "%s",
              xcc_restorer_error(r));
    xcc_restorer_free(r);
    xcc_domain_close(tgt);
    xcc_domain_close(d);
    close(fd);
}
