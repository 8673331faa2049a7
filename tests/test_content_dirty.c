/*
 * test_content_dirty.c - a save against a backend that finds dirty pages by
 * comparing page contents (as the Xen backend does on a hypervisor without
 * PV log-dirty) stays exact when a copy catches a transient state.
 *
 * The backend here keeps one digest per page, like xen_softdirty.c. Its
 * guest writes page HOT while the first pass maps it and writes the old
 * bytes back before the next clean, as a lock taken and released would: a
 * scan-to-scan comparison never sees a change, yet the first pass sent the
 * transient bytes. The saver must hand the bytes it sent to page_sent, so
 * that the clean compares against them and the page goes again.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xxhash.h>

#include "domain/domain.h"
#include "memfd_ram.h"

#define PAGE 4096u
#define NR_PFNS 256u
#define HOT 37u

struct cguest {
    struct memfd_ram ram; /* the guest's RAM, shared with every mapping */
    uint64_t digest[NR_PFNS];
    uint8_t live[NR_PFNS];  /* a live clean reported the page */
    bool tracking, writer;  /* writer: write HOT transiently on first map */
    int transient;          /* 0 none yet, 1 written, 2 undone */
    unsigned sent_calls;
};

static uint64_t page_hash(const void *p)
{
    return XXH64(p, PAGE, 0);
}

static int c_info(xcc_domain *d, struct xcc_domain_info *info)
{
    *info = (struct xcc_domain_info){.nr_pfns = NR_PFNS,
                                     .page_size = PAGE,
                                     .stream_type = XCC_DHDR_TYPE_SIM};
    return 0;
}

static int c_types(xcc_domain *d, const uint64_t *pfns, uint8_t *types,
                   size_t n)
{
    memset(types, XCC_PFN_NORMAL, n);
    return 0;
}

static int c_enable(xcc_domain *d)
{
    struct cguest *g = d->priv;

    for (unsigned p = 0; p < NR_PFNS; p++)
        g->digest[p] = page_hash(g->ram.mem + (size_t)p * PAGE);
    memset(g->live, 0, sizeof(g->live));
    g->tracking = true;
    return 0;
}

static int c_disable(xcc_domain *d)
{
    ((struct cguest *)d->priv)->tracking = false;
    return 0;
}

static int64_t c_clean(xcc_domain *d, uint64_t *bitmap, bool final)
{
    struct cguest *g = d->priv;
    int64_t count = 0;

    if (g->transient == 1) {
        /* The lock is released: HOT holds its old bytes again. */
        g->ram.mem[(size_t)HOT * PAGE + 100] ^= 0x5a;
        g->transient = 2;
    }
    for (unsigned p = 0; p < NR_PFNS; p++) {
        uint64_t h = page_hash(g->ram.mem + (size_t)p * PAGE);
        bool dirty = h != g->digest[p];

        g->digest[p] = h;
        if (final)
            dirty |= g->live[p];
        else if (dirty)
            g->live[p] = 1;
        if (dirty) {
            bitmap[p / 64] |= 1ull << (p % 64);
            count++;
        }
    }
    if (final)
        memset(g->live, 0, sizeof(g->live));
    return count;
}

static void *c_map(xcc_domain *d, bool writable, const uint64_t *pfns,
                   int *err, size_t n)
{
    struct cguest *g = d->priv;
    void *base = memfd_ram_map(&g->ram, writable, pfns, err, n);

    for (size_t i = 0; base && i < n; i++) {
        if (g->writer && g->tracking && pfns[i] == HOT && !g->transient) {
            /* The lock is taken while the first pass reads the page. */
            g->ram.mem[(size_t)HOT * PAGE + 100] ^= 0x5a;
            g->transient = 1;
        }
    }
    return base;
}

static int c_unmap(xcc_domain *d, void *addr, size_t n)
{
    return memfd_ram_unmap(&((struct cguest *)d->priv)->ram, addr, n);
}

static int c_nop(xcc_domain *d)
{
    return 0;
}

static int c_populate(xcc_domain *d, const uint64_t *pfns, size_t n)
{
    return 0;
}

static bool c_by_content(xcc_domain *d)
{
    return ((struct cguest *)d->priv)->tracking;
}

static void c_sent(xcc_domain *d, uint64_t pfn, const void *page)
{
    struct cguest *g = d->priv;

    cr_assert_lt(pfn, NR_PFNS);
    g->digest[pfn] = page_hash(page);
    g->sent_calls++;
}

static void c_close(xcc_domain *d)
{
    struct cguest *g = d->priv;

    memfd_ram_close(&g->ram);
    free(g);
}

static const struct xcc_domain_ops content_ops = {
    .kind = "content",
    .info = c_info,
    .pfn_types = c_types,
    .logdirty_enable = c_enable,
    .logdirty_disable = c_disable,
    .logdirty_clean = c_clean,
    .dirty_by_content = c_by_content,
    .page_sent = c_sent,
    .map = c_map,
    .unmap = c_unmap,
    .pause = c_nop,
    .unpause = c_nop,
    .populate = c_populate,
    .close = c_close,
};

static xcc_domain *cguest_open(bool writer, uint8_t fill)
{
    xcc_domain *d = calloc(1, sizeof(*d));
    struct cguest *g = calloc(1, sizeof(*g));

    cr_assert(d && g);
    memfd_ram_open(&g->ram, "content-guest", NR_PFNS, PAGE, fill, 7);
    g->writer = writer;
    d->ops = &content_ops;
    d->priv = g;
    d->log = lib_default_logger();
    d->name = strdup(writer ? "content-source" : "content-target");
    c_info(d, &d->info);
    return d;
}

static void save_and_restore(bool xbzrle)
{
    xcc_domain *src = cguest_open(true, 1), *dst = cguest_open(false, 9);
    struct cguest *gs = src->priv, *gd = dst->priv;
    struct xcc_save_params sp;
    struct xcc_restore_params rp;
    struct xcc_restore_stream_info info;
    int fd = memfd_create("content-stream", 0);
    xcc_saver *s;
    xcc_restorer *r;

    cr_assert(fd >= 0);
    xcc_save_params_init(&sp);
    sp.live = 1;
    sp.xbzrle = xbzrle;
    sp.verify = 1;
    sp.max_iters = 3;
    s = xcc_saver_new(src, fd, &sp, lib_default_logger());
    cr_assert_not_null(s);
    cr_assert_eq(xcc_saver_run(s), 0, "save failed");
    xcc_saver_free(s);
    cr_assert_eq(gs->transient, 2, "the transient write did not happen");

    cr_assert(lseek(fd, 0, SEEK_SET) == 0);
    xcc_restore_params_init(&rp);
    r = xcc_restorer_new(fd, &rp, lib_default_logger());
    cr_assert_not_null(r);
    cr_assert_eq(xcc_restorer_begin(r, &info), 0);
    cr_assert_eq(xcc_restorer_run(r, dst), 0, "restore failed: %s",
                 xcc_restorer_error(r) ? xcc_restorer_error(r) : "?");
    xcc_restorer_free(r);
    for (unsigned p = 0; p < NR_PFNS; p++)
        cr_assert(memcmp(gs->ram.mem + (size_t)p * PAGE,
                         gd->ram.mem + (size_t)p * PAGE, PAGE) == 0,
                  "pfn %u differs after the restore", p);
    cr_assert_gt(gs->sent_calls, 0, "the saver never called page_sent");
    close(fd);
    xcc_domain_close(src);
    xcc_domain_close(dst);
}

TestSuite(content_dirty, .timeout = 60);

Test(content_dirty, transient_copy_in_first_pass_is_sent_again)
{
    save_and_restore(false);
}

Test(content_dirty, transient_copy_in_first_pass_is_sent_again_xbzrle)
{
    save_and_restore(true);
}
