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
 *   xen-ops-test --interface      the domctl interface version this was
 *                                 built with, and whether Xen accepts it
 *   xen-ops-test --heartbeat DOMID PFN [SINCE_NS [UNTIL_NS]]
 *                                 the workload's heartbeat page (see
 *                                 heartbeat.h): its clock, and the gaps
 *                                 (guest stops) that ended in the window
 *   xen-ops-test --continue DOMID  lets a guest that a save or checkpoint
 *                                 left stopped run again: suspended, it is
 *                                 resumed in place; paused, unpaused
 *
 * The log-dirty test checks dirty bits against what the workload is known
 * to do: every page marked hot (rewritten many times a second) must be
 * reported within a second, and no page of the idle range (written once at
 * start) may be. An all-zero bitmap, which Xen returns when log-dirty is
 * off, fails it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xenctrl.h>
#include <xenstore.h>

#include "domain/domain.h"
#include "domain/xen_priv.h"
#include "heartbeat.h"

#define BATCH 1024u

static int failures;

/* Pages carrying the workload's marks, found by scan(). */
static uint64_t *hot_pfns, *idle_pfns;
static size_t n_hot, n_idle;

static void note_mark(const uint8_t *page, uint64_t pfn)
{
    if (!memcmp(page + MARK_OFFSET, HOT_MAGIC, 8))
        hot_pfns[n_hot++] = pfn;
    else if (!memcmp(page + MARK_OFFSET, IDLE_MAGIC, 8))
        idle_pfns[n_idle++] = pfn;
}

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
            note_mark((const uint8_t *)(p + i * 512), base + i);
        }
        d->ops->unmap(d, (void *)p, n);
    }
    printf("XOPS scan_seconds %.2f\n", now_s() - t0);
    printf("XOPS marked_pages hot %zu idle %zu\n", n_hot, n_idle);
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

    /*
     * Against the workload's known behaviour: clean once a second until
     * every hot page has been reported (each is rewritten many times a
     * second, but under TCG on a busy host a pass can take longer), at
     * most 30 s; no idle page may be reported in any of those seconds.
     */
    uint8_t *seen = calloc(n_hot ? n_hot : 1, 1);
    size_t hot_seen = 0, idle_dirty = 0;
    int rounds = 0;
    double w0 = now_s();
    while (seen && rounds < 30 && (rounds < 2 || hot_seen < n_hot)) {
        memset(bm, 0, (nr + 63) / 64 * 8);
        sleep(1);
        if (d->ops->logdirty_clean(d, bm, false) < 0)
            break;
        rounds++;
        for (size_t i = 0; i < n_hot; i++)
            if (!seen[i] && ((bm[hot_pfns[i] / 64] >> (hot_pfns[i] % 64)) & 1)) {
                seen[i] = 1;
                hot_seen++;
            }
        for (size_t i = 0; i < n_idle; i++)
            idle_dirty += (bm[idle_pfns[i] / 64] >> (idle_pfns[i] % 64)) & 1;
    }
    free(seen);
    struct xen_dom *x = d->priv;
    printf("XOPS dirty_mode %s\n", x->soft_on ? "digest-scan"
                                    : x->logdirty_on ? "xen-log-dirty" : "none");
    printf("XOPS dirty_known hot %zu/%zu idle %zu/%zu in %.1f s\n", hot_seen,
           n_hot, idle_dirty, n_idle, now_s() - w0);
    check(n_hot >= 4000 && n_idle >= 1000, "workload_marks_found");
    check(n_hot && hot_seen == n_hot, "logdirty_reports_every_hot_page");
    check(n_idle && idle_dirty == 0, "logdirty_reports_no_idle_page");
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
            if (xcc_pfn_type_is_pagetable(types[i]) &&
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

/* --interface: the domctl interface version built in, and Xen's answer. */
static int interface_check(void)
{
    xc_interface *xch = xc_interface_open(NULL, NULL, 0);
    xc_dominfo_t info;
    xen_extraversion_t extra;
    int ver, rc;

    if (!xch) {
        perror("xc_interface_open");
        return 1;
    }
    ver = xc_version(xch, XENVER_version, NULL);
    if (xc_version(xch, XENVER_extraversion, &extra) < 0)
        strcpy(extra, "?");
    /* A domctl: Xen answers EACCES when the interface versions differ. */
    rc = xc_domain_getinfo(xch, 0, 1, &info);
    printf("XOPS domctl_interface 0x%08x sysctl_interface 0x%08x xen %d.%d%s "
           "domctl %s\n", XEN_DOMCTL_INTERFACE_VERSION,
           XEN_SYSCTL_INTERFACE_VERSION, ver >> 16, ver & 0xffff, extra,
           rc == 1 ? "accepted" : strerror(errno));
    xc_interface_close(xch);
    return rc == 1 ? 0 : 1;
}

/* --heartbeat DOMID PFN [SINCE [UNTIL]]: see heartbeat.h. */
static int heartbeat_read(xcc_domain *d, uint64_t pfn, uint64_t since,
                          uint64_t until)
{
    int err = 0;
    const struct heartbeat *p = d->ops->map(d, false, &pfn, &err, 1);
    struct heartbeat hb;
    double gaps[HB_RING];
    size_t n = 0;
    double sum = 0, max = 0;

    if (!p || err || memcmp(p->magic, HB_MAGIC, sizeof(hb.magic))) {
        printf("HB error no heartbeat at pfn %#" PRIx64 "\n", pfn);
        if (p)
            d->ops->unmap(d, (void *)p, 1);
        return 1;
    }
    memcpy(&hb, p, sizeof(hb));
    d->ops->unmap(d, (void *)p, 1);
    uint64_t first = hb.ngaps > HB_RING ? hb.ngaps - HB_RING : 0;
    for (uint64_t k = first; k < hb.ngaps; k++) {
        uint64_t end = hb.gaps[k % HB_RING].end_ns;
        double g = (double)hb.gaps[k % HB_RING].gap_ns / 1e6;

        if (end <= since || (until && end > until))
            continue;
        gaps[n++] = g;
        sum += g;
        if (g > max)
            max = g;
    }
    /* Median by insertion sort: at most HB_RING values. */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && gaps[j - 1] > gaps[j]; j--) {
            double t = gaps[j];
            gaps[j] = gaps[j - 1];
            gaps[j - 1] = t;
        }
    printf("HB now_ns %" PRIu64 " seq %" PRIu64 " ngaps %" PRIu64
           " ring_complete %d\n", hb.now_ns, hb.seq, hb.ngaps,
           since >= hb.gaps[first % HB_RING].end_ns || first == 0);
    printf("HB window gaps %zu max_ms %.1f median_ms %.1f sum_ms %.1f\n", n,
           max, n ? (n % 2 ? gaps[n / 2] : (gaps[n / 2 - 1] + gaps[n / 2]) / 2)
                  : 0.0, sum);
    printf("HB selfcheck checks %" PRIu64 " failures %" PRIu64 " ledger %"
           PRIu64 "\n", hb.checks, hb.check_failures, hb.ledger);
    return 0;
}

/* "suspended", "shutdown", "paused" or "running"; NULL: no such domain. */
static const char *dom_state(xc_interface *xch, uint32_t domid)
{
    xc_domaininfo_t di;

    if (xc_domain_getinfolist(xch, domid, 1, &di) != 1 || di.domain != domid)
        return NULL;
    if (di.flags & XEN_DOMINF_shutdown)
        return ((di.flags >> XEN_DOMINF_shutdownshift) &
                XEN_DOMINF_shutdownmask) == SHUTDOWN_suspend
                   ? "suspended"
                   : "shutdown";
    return di.flags & XEN_DOMINF_paused ? "paused" : "running";
}

/* --continue DOMID: through the library's unpause, which resumes a guest
 * shut down for suspend. */
static int continue_guest(const char *id)
{
    xentoollog_logger *log = (xentoollog_logger *)
        xtl_createlogger_stdiostream(stderr, XTL_ERROR, 0);
    xc_interface *xch = xc_interface_open(log, log, 0);
    uint32_t domid = (uint32_t)strtoul(id, NULL, 10);
    const char *before, *after;
    char name[64];
    xcc_domain *d;
    int rc = 0;

    if (!xch)
        return 1;
    before = dom_state(xch, domid);
    /*
     * A sender killed while it waited for the guest leaves the request in
     * control/shutdown: the guest is about to suspend (or never will).
     * Wait for it, 10 s at most, then withdraw the request and go on.
     */
    struct xs_handle *xsh = xs_open(0);
    char *dp = xsh ? xs_get_domain_path(xsh, domid) : NULL, node[256];
    if (dp) {
        unsigned len;
        char *v;

        snprintf(node, sizeof(node), "%s/control/shutdown", dp);
        for (int i = 0; i < 200; i++) {
            v = xs_read(xsh, XBT_NULL, node, &len);
            bool pending = v && !strcmp(v, "suspend");
            free(v);
            before = dom_state(xch, domid);
            if (!pending || !before || strcmp(before, "running"))
                break;
            if (i == 199) {
                printf("XOPS continue dom%u never answered a left-over "
                       "suspend request: withdrawn\n", domid);
                xs_write(xsh, XBT_NULL, node, "", 0);
            }
            usleep(50000);
        }
        free(dp);
    }
    if (xsh)
        xs_close(xsh);
    snprintf(name, sizeof(name), "xen:%s", id);
    d = before ? xcc_domain_open(name, log, 0) : NULL;
    if (d && strcmp(before, "running"))
        rc = xcc_domain_unpause(d);
    xcc_domain_close(d);
    after = dom_state(xch, domid);
    printf("XOPS continue dom%u before %s after %s rc %d\n", domid,
           before ? before : "none", after ? after : "none", rc);
    xc_interface_close(xch);
    xtl_logger_destroy(log);
    return after && !strcmp(after, "running") ? 0 : 1;
}

/*
 * --ring-pfns DOMID: the pfns of a PV guest's xenstore and console rings,
 * their mfns (xenstore's store/ring-ref and console/ring-ref) through
 * Xen's M2P. dom0's daemons write both rings as soon as a restored domain
 * exists, before it runs. Prints "XOPS ring_pfns STORE CONSOLE".
 */
static int ring_pfns(const char *id)
{
    const char *what[2] = {"store", "console"};
    uint64_t pfn[2] = {0, 0};
    struct xs_handle *xsh = xs_open(0);
    xentoollog_logger *log = (xentoollog_logger *)
        xtl_createlogger_stdiostream(stderr, XTL_ERROR, 0);
    char name[64];
    xcc_domain *d;
    int rc = 0;

    snprintf(name, sizeof(name), "xen:%s", id);
    d = xcc_domain_open(name, log, 0);
    if (!xsh || !d) {
        printf("XOPS ring_pfns error cannot open %s or xenstore\n", name);
        rc = 1;
        goto out;
    }
    for (int i = 0; i < 2; i++) {
        char node[96], *v;
        unsigned len;

        snprintf(node, sizeof(node), "/local/domain/%s/%s/ring-ref", id,
                 what[i]);
        v = xs_read(xsh, XBT_NULL, node, &len);
        if (!v || xen_mfn_to_pfn(d->priv, strtoull(v, NULL, 0), &pfn[i]) < 0) {
            printf("XOPS ring_pfns error %s: '%s' is no frame of dom%s\n",
                   node, v ? v : "(none)", id);
            rc = 1;
        }
        free(v);
    }
    if (!rc)
        printf("XOPS ring_pfns %" PRIu64 " %" PRIu64 "\n", pfn[0], pfn[1]);
out:
    xcc_domain_close(d);
    if (xsh)
        xs_close(xsh);
    xtl_logger_destroy(log);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--ring-pfns"))
        return ring_pfns(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "--continue"))
        return continue_guest(argv[2]);
    if (argc == 2 && !strcmp(argv[1], "--interface"))
        return interface_check();
    if (argc >= 4 && argc <= 6 && !strcmp(argv[1], "--heartbeat")) {
        char hname[64];
        xentoollog_logger *hlog = (xentoollog_logger *)
            xtl_createlogger_stdiostream(stderr, XTL_ERROR, 0);
        snprintf(hname, sizeof(hname), "xen:%s", argv[2]);
        xcc_domain *hd = xcc_domain_open(hname, hlog, 0);
        if (!hd) {
            printf("HB error cannot open %s\n", hname);
            return 1;
        }
        int hrc = heartbeat_read(hd, strtoull(argv[3], NULL, 0),
                                 argc > 4 ? strtoull(argv[4], NULL, 0) : 0,
                                 argc > 5 ? strtoull(argv[5], NULL, 0) : 0);
        xcc_domain_close(hd);
        xtl_logger_destroy(hlog);
        return hrc;
    }
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
    hot_pfns = calloc(d->info.nr_pfns, sizeof(*hot_pfns));
    idle_pfns = calloc(d->info.nr_pfns, sizeof(*idle_pfns));
    if (!hot_pfns || !idle_pfns) {
        printf("XOPS_RESULT FAIL\n");
        return 1;
    }
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
    free(hot_pfns);
    free(idle_pfns);
    printf("XOPS_RESULT %s\n", failures ? "FAIL" : "PASS");
    return failures ? 1 : 0;
}
