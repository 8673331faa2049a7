/*
 * xen_ops_test.c - exercises the Xen backend's ops table against a live
 * domain, in dom0 of the harness VM. Prints "XOPS key value" lines and a
 * final "XOPS_RESULT PASS|FAIL". Linked against the static libxccolo.a so
 * that it reaches the internal ops table.
 *
 *   xen-ops-test DOMID            a running domain: every read-side op,
 *                                 log-dirty, pause; the domain is left
 *                                 running as it was found
 *   xen-ops-test --target DOMID   a paused, disposable domain: also
 *                                 writable mapping and populate
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xenctrl.h>

#include "domain/domain.h"

#define BATCH 1024u

static int failures;

static void check(bool ok, const char *what)
{
    printf("XOPS check %s %s\n", what, ok ? "ok" : "FAILED");
    if (!ok)
        failures++;
}

static bool domain_paused(uint32_t domid)
{
    xc_interface *xch = xc_interface_open(NULL, NULL, 0);
    xc_domaininfo_t di;
    bool paused = false;

    if (xch && xc_domain_getinfolist(xch, domid, 1, &di) == 1 &&
        di.domain == domid)
        paused = di.flags & XEN_DOMINF_paused;
    if (xch)
        xc_interface_close(xch);
    return paused;
}

static double now_s(void)
{
    return (double)lib_now_ns() / 1e9;
}

/* Counts pages per type and maps them all read-only; returns PT pages. */
static uint64_t scan(xcc_domain *d, uint64_t *map_errors, uint64_t *sum)
{
    const uint64_t nr = d->info.nr_pfns;
    uint64_t count[16] = {0}, pfns[BATCH];
    uint8_t types[BATCH];
    int err[BATCH];
    double t0 = now_s();

    *map_errors = 0;
    *sum = 0;
    for (uint64_t base = 0; base < nr; base += BATCH) {
        size_t n = nr - base < BATCH ? nr - base : BATCH;

        for (size_t i = 0; i < n; i++)
            pfns[i] = base + i;
        if (d->ops->pfn_types(d, pfns, types, n) < 0) {
            check(false, "pfn_types");
            return 0;
        }
        const uint64_t *p = d->ops->map(d, false, pfns, err, n);
        if (!p) {
            check(false, "map");
            return 0;
        }
        for (size_t i = 0; i < n; i++) {
            count[types[i] & 15]++;
            if (!xcc_pfn_type_has_data(types[i]))
                continue;
            if (err[i]) {
                (*map_errors)++;
                continue;
            }
            for (size_t w = 0; w < 512; w += 64)
                *sum = *sum * 31 + p[i * 512 + w];
        }
        d->ops->unmap(d, (void *)p, n);
    }
    printf("XOPS scan_seconds %.2f\n", now_s() - t0);
    printf("XOPS types normal %" PRIu64 " l1 %" PRIu64 " l2 %" PRIu64
           " l3 %" PRIu64 " l4 %" PRIu64 " broken %" PRIu64 " xalloc %" PRIu64
           " xtab %" PRIu64 "\n",
           count[0], count[1], count[2], count[3], count[4], count[13],
           count[14], count[15]);
    return count[1] + count[2] + count[3] + count[4];
}

static void digest_hex(xcc_domain *d, unsigned flags, char out[33])
{
    uint8_t dg[16];

    if (xcc_domain_digest(d, flags, dg, NULL, 0) < 0) {
        strcpy(out, "error");
        return;
    }
    for (int i = 0; i < 16; i++)
        sprintf(out + 2 * i, "%02x", dg[i]);
}

/* Log-dirty on a running domain: the hot pages must show up every pass. */
static void test_logdirty(xcc_domain *d)
{
    const uint64_t nr = d->info.nr_pfns;
    uint64_t *bm = calloc((nr + 63) / 64, 8);
    int64_t n1, n2, n3;

    check(d->ops->logdirty_enable(d) == 0, "logdirty_enable");
    /* A first clean drops what enabling left behind. */
    d->ops->logdirty_clean(d, bm, false);
    sleep(2);
    memset(bm, 0, (nr + 63) / 64 * 8);
    n1 = d->ops->logdirty_clean(d, bm, false);
    memset(bm, 0, (nr + 63) / 64 * 8);
    sleep(1);
    n2 = d->ops->logdirty_clean(d, bm, false);
    check(d->ops->pause(d) == 0, "pause");
    memset(bm, 0, (nr + 63) / 64 * 8);
    n3 = d->ops->logdirty_clean(d, bm, true);
    memset(bm, 0, (nr + 63) / 64 * 8);
    int64_t n4 = d->ops->logdirty_clean(d, bm, true);
    check(d->ops->unpause(d) == 0, "unpause");
    check(d->ops->logdirty_disable(d) == 0, "logdirty_disable");
    printf("XOPS dirty_after_2s %" PRId64 "\n", n1);
    printf("XOPS dirty_after_1s %" PRId64 "\n", n2);
    printf("XOPS dirty_final %" PRId64 "\n", n3);
    printf("XOPS dirty_final_again %" PRId64 "\n", n4);
    /* The seed's 4096 hot pages are rewritten many times a second. */
    check(n1 >= 4096 && n2 >= 4096, "logdirty_sees_hot_pages");
    check(n4 >= 0 && n4 < n2, "logdirty_clean_resets");
    free(bm);
}

static void test_pause(xcc_domain *d, uint32_t domid)
{
    char a[33], b[33], c[33];

    check(d->ops->pause(d) == 0 && domain_paused(domid), "paused");
    digest_hex(d, XCC_DIGEST_EXCLUDE_PAGETABLES, a);
    digest_hex(d, XCC_DIGEST_EXCLUDE_PAGETABLES, b);
    check(d->ops->unpause(d) == 0 && !domain_paused(domid), "unpaused");
    sleep(1);
    digest_hex(d, XCC_DIGEST_EXCLUDE_PAGETABLES, c);
    printf("XOPS digest_paused %s %s running %s\n", a, b, c);
    check(!strcmp(a, b) && strcmp(a, "error"), "digest_stable_while_paused");
    check(strcmp(a, c) != 0, "digest_changes_while_running");
}

/* On a disposable paused domain: write a page, populate a new pfn. */
static void test_target(xcc_domain *d)
{
    const uint64_t nr = d->info.nr_pfns;
    uint64_t pfns[BATCH], pfn = UINT64_MAX, pt = UINT64_MAX;
    uint8_t types[BATCH];
    int err[BATCH];

    for (uint64_t base = 0; base < nr && (pfn == UINT64_MAX || pt == UINT64_MAX);
         base += BATCH) {
        size_t n = nr - base < BATCH ? nr - base : BATCH;
        for (size_t i = 0; i < n; i++)
            pfns[i] = base + i;
        if (d->ops->pfn_types(d, pfns, types, n) < 0)
            break;
        for (size_t i = 0; i < n; i++) {
            /* Well above the kernel image, so the page is plain data. */
            if (types[i] == XCC_PFN_NORMAL && base + i > nr / 2 && pfn == UINT64_MAX)
                pfn = base + i;
            if (types[i] >= XCC_PFN_L1TAB && types[i] <= XCC_PFN_L4TAB &&
                pt == UINT64_MAX)
                pt = base + i;
        }
    }
    check(pfn != UINT64_MAX, "found_normal_page");
    if (pfn != UINT64_MAX) {
        uint8_t *p = d->ops->map(d, true, &pfn, err, 1);
        bool ok = p && !err[0];
        if (ok) {
            memset(p, 0xA5, 4096);
            d->ops->unmap(d, p, 1);
            p = d->ops->map(d, false, &pfn, err, 1);
            ok = p && !err[0] && p[0] == 0xA5 && p[4095] == 0xA5;
            if (p)
                d->ops->unmap(d, p, 1);
        }
        check(ok, "writable_map_roundtrip");
    }
    if (pt != UINT64_MAX && pt > 0) {
        /* A page table amid plain pages: its slot gets a scratch page. */
        uint64_t three[3] = {pt - 1, pt, pt + 1};
        uint8_t before[4096];
        uint8_t *p = d->ops->map(d, false, &pt, err, 1);

        if (p) {
            memcpy(before, p, sizeof(before));
            d->ops->unmap(d, p, 1);
        }
        p = d->ops->map(d, true, three, err, 3);
        printf("XOPS writable_pagetable_map pfn %#" PRIx64 " err %d %d %d\n",
               pt, p ? err[0] : -errno, p ? err[1] : 0, p ? err[2] : 0);
        check(p && !err[1], "pagetable_slot_writable");
        if (p && !err[1])
            memset(p + 4096, 0x77, 4096);
        if (p)
            d->ops->unmap(d, p, 3);
        p = d->ops->map(d, false, &pt, err, 1);
        check(p && !err[0] && !memcmp(p, before, sizeof(before)),
              "pagetable_left_intact");
        if (p)
            d->ops->unmap(d, p, 1);
    }
    /* populate: an existing pfn is left alone; a new one appears. */
    uint64_t fresh = nr + 16;
    check(d->ops->populate(d, &pfn, 1) == 0, "populate_existing_noop");
    int rc = d->ops->populate(d, &fresh, 1);
    check(rc == 0, "populate_new_pfn");
    if (rc == 0) {
        d->ops->pfn_types(d, &fresh, types, 1);
        uint8_t *p = d->ops->map(d, true, &fresh, err, 1);
        bool ok = types[0] == XCC_PFN_NORMAL && p && !err[0];
        if (ok) {
            p[0] = 0x5A;
            ok = p[0] == 0x5A;
        }
        if (p)
            d->ops->unmap(d, p, 1);
        check(ok, "populated_pfn_maps");
    }
}

int main(int argc, char **argv)
{
    bool target = argc == 3 && !strcmp(argv[1], "--target");
    const char *id = argv[argc - 1];
    xentoollog_logger *log = (xentoollog_logger *)xtl_createlogger_stdiostream(
        stderr, XTL_INFO, XTL_STDIOSTREAM_HIDE_PROGRESS);
    char name[64];
    double t0 = now_s();
    uint64_t map_errors, sum;

    if (argc < 2 || (argc == 3 && !target)) {
        fprintf(stderr, "usage: xen-ops-test [--target] DOMID\n");
        return 2;
    }
    snprintf(name, sizeof(name), "xen:%s", id);
    xcc_domain *d = xcc_domain_open(name, log, 0);
    printf("XOPS open_seconds %.2f\n", now_s() - t0);
    check(d != NULL, "open");
    if (!d) {
        printf("XOPS_RESULT FAIL\n");
        return 1;
    }
    printf("XOPS nr_pfns %" PRIu64 " page_size %u stream_type %u xen %u.%u\n",
           d->info.nr_pfns, d->info.page_size, d->info.stream_type,
           d->info.xen_major, d->info.xen_minor);
    check(d->info.page_size == 4096 && d->info.nr_pfns > 1000, "info");
    uint64_t pt = scan(d, &map_errors, &sum);
    printf("XOPS pagetable_pages %" PRIu64 " map_errors %" PRIu64 "\n", pt,
           map_errors);
    check(d->info.stream_type != XCC_DHDR_TYPE_X86_PV || pt > 0,
          "pv_pagetables_typed");
    check(map_errors == 0, "every_data_page_maps");
    if (target) {
        test_target(d);
    } else {
        test_logdirty(d);
        test_pause(d, (uint32_t)atoi(id));
    }
    char full[33], nopt[33];
    digest_hex(d, 0, full);
    digest_hex(d, XCC_DIGEST_EXCLUDE_PAGETABLES, nopt);
    printf("XOPS digest %s exclude_pagetables %s\n", full, nopt);
    xcc_domain_close(d);
    xtl_logger_destroy(log);
    printf("XOPS_RESULT %s\n", failures ? "FAIL" : "PASS");
    return failures ? 1 : 0;
}
