/*
 * test_xen_state_save.c - where the saver puts a backend's domain-state
 * records (the state_records op), without Xen: a fake x86 PV backend over a
 * memfd, whose pfn 10 is an L4 table, emits hand-built records of each
 * phase; the stream is then read back by xcc_image_inspect (which runs the
 * checker: cr3 typed L4, P2M_FRAMES against X86_PV_INFO) and restored into
 * a second fake domain (memory only: the records are checked and skipped).
 *   - save: GUEST_INFO, XL_CONFIG, STATIC, STATIC_DATA_END, START, pages,
 *     TAIL, DIGEST, STATS, END;
 *   - --xen-compat: no GUEST_INFO, XL_CONFIG, DIGEST or STATS (an xl
 *     image: the config goes in its header);
 *   - checkpoints: TAIL again in every epoch, before its CHECKPOINT.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "domain/domain.h"
#include "memfd_ram.h"
#include "stream.h"
#include "xen_records.h"

#define PAGE 4096u
#define NR_PFNS 64u
#define L4_PFN 10u

struct fguest {
    struct memfd_ram ram;
    unsigned tails; /* TAIL phases asked for */
};

static int f_info(xcc_domain *d, struct xcc_domain_info *info)
{
    *info = (struct xcc_domain_info){.nr_pfns = NR_PFNS,
                                     .page_size = PAGE,
                                     .stream_type = XCC_DHDR_TYPE_X86_PV,
                                     .xen_major = 4,
                                     .xen_minor = 17};
    return 0;
}

static int f_types(xcc_domain *d, const uint64_t *pfns, uint8_t *types,
                   size_t n)
{
    for (size_t i = 0; i < n; i++)
        types[i] = pfns[i] == L4_PFN ? XCC_PFN_L4TAB : XCC_PFN_NORMAL;
    return 0;
}

static int f_nop(xcc_domain *d)
{
    return 0;
}

static int64_t f_clean(xcc_domain *d, uint64_t *bitmap, bool final)
{
    return 0; /* the guest writes nothing */
}

static void *f_map(xcc_domain *d, bool writable, const uint64_t *pfns,
                   int *err, size_t n)
{
    return memfd_ram_map(&((struct fguest *)d->priv)->ram, writable, pfns, err,
                         n);
}

static int f_unmap(xcc_domain *d, void *addr, size_t n)
{
    return memfd_ram_unmap(&((struct fguest *)d->priv)->ram, addr, n);
}

static int f_populate(xcc_domain *d, const uint64_t *pfns, size_t n)
{
    return 0;
}

static int emit1(domain_record_fn *emit, void *opaque, uint32_t type,
                 const void *a, size_t alen, const void *b, size_t blen)
{
    struct iovec iov[2] = {{(void *)a, alen}, {(void *)b, blen}};

    return emit(opaque, type, iov, blen ? 2 : 1);
}

/* One record of each kind a real PV domain sends, as xen_state.c would. */
static int f_state(xcc_domain *d, enum domain_state_phase phase,
                   domain_record_fn *emit, void *opaque)
{
    struct fguest *g = d->priv;
    uint8_t hdr[XREC_TSC_INFO_SIZE], leaves[2 * XREC_CPUID_LEAF_SIZE] = {1};
    static uint8_t ctx[XREC_CTX64_SIZE], page[PAGE];
    uint64_t p2m_pfn = 5, cr3 = (uint64_t)L4_PFN << 12;

    switch (phase) {
    case DOMAIN_STATE_STATIC:
        xrec_encode_pv_info(hdr, 8, 4);
        if (emit1(emit, opaque, STREAM_REC_X86_PV_INFO, hdr,
                  XREC_PV_INFO_SIZE, NULL, 0) < 0 ||
            emit1(emit, opaque, STREAM_REC_X86_CPUID_POLICY, leaves,
                  sizeof(leaves), NULL, 0) < 0)
            return -1;
        return 2;
    case DOMAIN_STATE_START:
        xrec_encode_p2m_hdr(hdr, 0, NR_PFNS - 1);
        return emit1(emit, opaque, STREAM_REC_X86_PV_P2M_FRAMES, hdr,
                     XREC_P2M_HDR_SIZE, &p2m_pfn, 8) < 0 ? -1 : 1;
    case DOMAIN_STATE_TAIL:
        g->tails++;
        xrec_encode_tsc_info(hdr, 0, 1000000, g->tails, 1);
        if (emit1(emit, opaque, STREAM_REC_X86_TSC_INFO, hdr,
                  XREC_TSC_INFO_SIZE, NULL, 0) < 0 ||
            emit1(emit, opaque, STREAM_REC_SHARED_INFO, page, PAGE, NULL,
                  0) < 0)
            return -1;
        memcpy(ctx + XREC_CTX64_CTRLREG + 24, &cr3, 8);
        xrec_encode_vcpu_hdr(hdr, 0);
        if (emit1(emit, opaque, STREAM_REC_X86_PV_VCPU_BASIC, hdr,
                  XREC_VCPU_HDR_SIZE, ctx, sizeof(ctx)) < 0)
            return -1;
        return 3;
    }
    return 0;
}

static void f_close(xcc_domain *d)
{
    struct fguest *g = d->priv;

    memfd_ram_close(&g->ram);
    free(g);
}

static const struct xcc_domain_ops fake_pv_ops = {
    .kind = "fake-pv",
    .info = f_info,
    .pfn_types = f_types,
    .logdirty_enable = f_nop,
    .logdirty_disable = f_nop,
    .logdirty_clean = f_clean,
    .map = f_map,
    .unmap = f_unmap,
    .pause = f_nop,
    .unpause = f_nop,
    .state_records = f_state,
    .populate = f_populate,
    .close = f_close,
};

static xcc_domain *fguest_open(const char *name, uint8_t fill)
{
    xcc_domain *d = calloc(1, sizeof(*d));
    struct fguest *g = calloc(1, sizeof(*g));

    cr_assert(d && g);
    memfd_ram_open(&g->ram, name, NR_PFNS, PAGE, fill, 13);
    /* The L4 as a normalised table (inspect checks that, stream format
     * 2): one entry naming pfn 5, Xen's slots zero. */
    {
        uint64_t pte = (uint64_t)5 << 12 | 0x67;

        memset(g->ram.mem + (size_t)L4_PFN * PAGE, 0, PAGE);
        memcpy(g->ram.mem + (size_t)L4_PFN * PAGE, &pte, 8);
    }
    d->ops = &fake_pv_ops;
    d->priv = g;
    d->log = lib_default_logger();
    d->name = strdup(name);
    f_info(d, &d->info);
    return d;
}

/*
 * The record names of a stream, as one space-separated string. A run of
 * PAGE_DATA records counts once: how a pass's pages split into records
 * (one per --threads lane) is not what these tests are about.
 */
struct names {
    char s[4096];
    const char *last;
};

static int collect(void *opaque, const struct xcc_inspect_headers *h,
                   const struct xcc_inspect_record *r)
{
    struct names *n = opaque;
    bool again = r && n->last && !strcmp(r->name, "PAGE_DATA") &&
                 !strcmp(n->last, r->name);

    if (r)
        n->last = r->name;
    if (r && !again && strlen(n->s) + strlen(r->name) + 2 < sizeof(n->s)) {
        strcat(n->s, r->name);
        strcat(n->s, " ");
    }
    return 0;
}

static void inspect_names(int fd, struct names *n)
{
    struct xcc_inspect_totals t;

    memset(n, 0, sizeof(*n));
    cr_assert(lseek(fd, 0, SEEK_SET) == 0);
    /* A --xen-compat save of a Xen domain is an xl image: its libxc
     * records are collected, libxl's are not. */
    cr_assert_eq(xcc_image_inspect(fd, lib_default_logger(), 0, NULL,
                                   collect, n, &t),
                 0, "inspect: %s", t.error);
}

static const char config[] =
    "{\"c_info\":{\"type\":\"pv\",\"name\":\"fake\"},"
    "\"b_info\":{\"max_vcpus\":1,\"max_memkb\":256}}";

Test(xen_state_save, records_around_the_pages)
{
    xcc_domain *src = fguest_open("pv-src", 1), *dst = fguest_open("pv-dst", 9);
    struct fguest *gs = src->priv, *gd = dst->priv;
    int fd = memfd_create("pv-stream", 0);
    struct xcc_save_params sp;
    struct xcc_restore_params rp;
    struct names n;
    xcc_saver *s;
    xcc_restorer *r;

    xcc_save_params_init(&sp);
    sp.verify = 1;
    sp.progress = 0;
    sp.domain_config_json = config;
    s = xcc_saver_new(src, fd, &sp, lib_default_logger());
    cr_assert_not_null(s);
    cr_assert_eq(xcc_saver_run(s), 0);
    xcc_saver_free(s);
    inspect_names(fd, &n);
    cr_expect_str_eq(n.s,
                     "GUEST_INFO XL_CONFIG X86_PV_INFO X86_CPUID_POLICY "
                     "STATIC_DATA_END X86_PV_P2M_FRAMES PAGE_DATA "
                     "X86_TSC_INFO SHARED_INFO X86_PV_VCPU_BASIC DIGEST "
                     "STATS END ");

    /* Memory only: the state is checked and skipped, the pages land. */
    cr_assert(lseek(fd, 0, SEEK_SET) == 0);
    xcc_restore_params_init(&rp);
    rp.progress = 0;
    r = xcc_restorer_new(fd, &rp, lib_default_logger());
    cr_assert_not_null(r);
    cr_assert_eq(xcc_restorer_begin(r, NULL), 0);
    cr_assert_eq(xcc_restorer_run(r, dst), 0, "restore: %s",
                 xcc_restorer_error(r));
    xcc_restorer_free(r);
    cr_expect(memcmp(gs->ram.mem, gd->ram.mem, (size_t)NR_PFNS * PAGE) == 0);
    close(fd);
    xcc_domain_close(src);
    xcc_domain_close(dst);
}

Test(xen_state_save, xen_compat_has_only_xen_records)
{
    xcc_domain *src = fguest_open("pv-compat", 1);
    int fd = memfd_create("pv-stream", 0);
    struct xcc_save_params sp;
    struct names n;
    xcc_saver *s;

    xcc_save_params_init(&sp);
    sp.xen_compat = 1;
    sp.progress = 0;
    sp.domain_config_json = config; /* an xl header carries it instead */
    s = xcc_saver_new(src, fd, &sp, lib_default_logger());
    cr_assert_not_null(s);
    cr_assert_eq(xcc_saver_run(s), 0);
    xcc_saver_free(s);
    inspect_names(fd, &n);
    cr_expect_str_eq(n.s, "X86_PV_INFO X86_CPUID_POLICY STATIC_DATA_END "
                          "X86_PV_P2M_FRAMES PAGE_DATA X86_TSC_INFO "
                          "SHARED_INFO X86_PV_VCPU_BASIC END ");
    close(fd);
    xcc_domain_close(src);
}

static unsigned count_word(const char *s, const char *w)
{
    unsigned k = 0;
    size_t len = strlen(w);

    for (const char *p = strstr(s, w); p; p = strstr(p + len, w))
        if ((p == s || p[-1] == ' ') && p[len] == ' ')
            k++;
    return k;
}

Test(xen_state_save, tail_in_every_checkpoint)
{
    xcc_domain *src = fguest_open("pv-ckpt", 1);
    int fd = memfd_create("pv-stream", 0);
    struct xcc_save_params sp;
    struct xcc_checkpoint_params cp;
    struct names n;
    xcc_checkpointer *c;
    const char *p;

    xcc_save_params_init(&sp);
    sp.progress = 0;
    sp.verify = 0;
    xcc_checkpoint_params_init(&cp);
    cp.count = 3;
    cp.interval_ms = 1;
    c = xcc_checkpointer_new(src, fd, &sp, &cp, lib_default_logger());
    cr_assert_not_null(c);
    cr_assert_eq(xcc_checkpointer_run(c), 0);
    xcc_checkpointer_free(c);
    inspect_names(fd, &n);
    cr_expect_eq(count_word(n.s, "CHECKPOINT"), 3, "%s", n.s);
    cr_expect_eq(count_word(n.s, "X86_TSC_INFO"), 3, "%s", n.s);
    cr_expect_eq(count_word(n.s, "X86_PV_INFO"), 1, "%s", n.s);
    /* Each epoch: its state right before its CHECKPOINT. */
    for (p = strstr(n.s, "CHECKPOINT "); p; p = strstr(p + 1, "CHECKPOINT "))
        cr_expect(p - n.s >= 18 &&
                      !strncmp(p - 18, "X86_PV_VCPU_BASIC ", 18),
                  "%s", n.s);
    cr_expect_eq(((struct fguest *)src->priv)->tails, 3);
    close(fd);
    xcc_domain_close(src);
}
