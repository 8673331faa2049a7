/*
 * test_checkpoint.c - the checkpoint receiver (restore_checkpoint.c) on
 * hand-built streams: epochs applied whole at CHECKPOINT, XBZRLE bases
 * (the committed page, or the epoch's own earlier copy), and failover on a
 * break or a bad record mid-epoch with the target left exactly at the last
 * checkpoint (DESIGN.md invariant 2). The end-to-end runs with real senders
 * are in tests/e2e_checkpoint.sh.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "domain/sim.h"
#include "stream.h"
#include "xccolo.h"

#define PSZ 4096u
#define NPFN 16u

static char name[64];
static xentoollog_logger *quiet;

static void setup(void)
{
    snprintf(name, sizeof(name), "cktest%d", (int)getpid());
    quiet = (xentoollog_logger *)xtl_createlogger_stdiostream(
        stderr, XTL_CRITICAL, 0);
    cr_assert_eq(xcc_sim_create(name, NPFN * PSZ, quiet), 0);
}

static void teardown(void)
{
    xcc_sim_stop(name, quiet);
    xtl_logger_destroy(quiet);
}

static void fill(uint8_t *p, uint8_t seed)
{
    for (unsigned i = 0; i < PSZ; i++)
        p[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 8));
}

/* Page pfn of the target's RAM file. */
static void target_page(uint64_t pfn, uint8_t *out)
{
    char path[256];
    int fd;

    snprintf(path, sizeof(path), SIM_ROOT "/%s/ram", name);
    fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pread(fd, out, PSZ, (off_t)(pfn * PSZ)), (ssize_t)PSZ);
    close(fd);
}

static void write_page(struct stream_writer *w, uint64_t pfn, const uint8_t *p)
{
    const uint8_t *pages[1] = {p};

    cr_assert_eq(stream_write_page_data(w, &pfn, NULL, 1, pages, PSZ), 0);
}

static void write_delta(struct stream_writer *w, uint64_t pfn,
                        const uint8_t *old, const uint8_t *new_page)
{
    uint8_t enc[PSZ];
    int len = xcc_xbzrle_encode(old, new_page, PSZ, enc, sizeof(enc));
    uint32_t l;

    cr_assert_gt(len, 0);
    l = (uint32_t)len;
    cr_assert_eq(stream_write_xbzrle_pages(w, &pfn, &l, 1, enc), 0);
}

/* Pages: checkpoint 1 holds a0..a3 in pfns 0..3; checkpoint 2 has
 * pfn 0 zero, pfn 1 = b, pfn 2 = c (delta on a2), pfn 3 = e (delta on d,
 * sent earlier in the same epoch). */
static uint8_t a[4][PSZ], b[PSZ], c[PSZ], d[PSZ], e[PSZ], f[PSZ], g[PSZ];

enum tail { TAIL_END, TAIL_TRUNCATED, TAIL_BAD_RECORD, TAIL_NO_CHECKPOINT };

/* Builds the stream into a temporary file; returns its fd at offset 0. */
static int build(enum tail how)
{
    FILE *tf = tmpfile();
    int fd;
    struct stream_writer *w;
    uint64_t zero_pfn = 0;

    cr_assert_not_null(tf);
    fd = dup(fileno(tf));
    fclose(tf);
    w = stream_writer_new(fd, quiet);
    for (int i = 0; i < 4; i++)
        fill(a[i], (uint8_t)(i + 1));
    fill(b, 20);
    memcpy(c, a[2], PSZ);
    memset(c + 100, 0xAB, 50);
    fill(d, 30);
    memcpy(e, d, PSZ);
    memset(e + 3000, 0x5A, 20);
    fill(f, 40);
    memcpy(g, c, PSZ);
    memset(g + 2000, 0x77, 64);

    cr_assert_eq(stream_write_headers(w, XCC_DHDR_TYPE_SIM, 12, 0, 0), 0);
    cr_assert_eq(stream_write_guest_info(w, NPFN, PSZ, 0), 0);
    for (int i = 0; i < 4; i++)
        write_page(w, (uint64_t)i, a[i]);
    if (how == TAIL_NO_CHECKPOINT) {
        stream_writer_free(w);
        lseek(fd, 0, SEEK_SET);
        return fd; /* breaks before checkpoint 1 */
    }
    cr_assert_eq(stream_write_checkpoint(w), 0);

    write_page(w, 1, b);
    write_delta(w, 2, a[2], c);
    write_page(w, 3, d);
    write_delta(w, 3, d, e); /* base: the epoch's own copy of pfn 3 */
    cr_assert_eq(stream_write_zero_pages(w, &zero_pfn, 1), 0);
    cr_assert_eq(stream_write_checkpoint(w), 0);

    /* Epoch 3 changes pfns 1 and 2, then ends as asked. */
    write_page(w, 1, f);
    write_delta(w, 2, c, g);
    switch (how) {
    case TAIL_END:
        cr_assert_eq(stream_write_checkpoint(w), 0);
        cr_assert_eq(stream_write_end(w), 0);
        break;
    case TAIL_TRUNCATED: {
        /* Half a PAGE_DATA record. */
        uint8_t hdr[16] = {1, 0, 0, 0, (8 + 8 + PSZ) & 0xff,
                           (8 + 8 + PSZ) >> 8, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
        cr_assert_eq(write(fd, hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
        break;
    }
    case TAIL_BAD_RECORD: {
        /* ZERO_PAGES naming a pfn beyond the guest. */
        uint64_t beyond = NPFN + 5;
        struct iovec iov[2];
        uint32_t head[2] = {1, 0};
        iov[0].iov_base = head;
        iov[0].iov_len = sizeof(head);
        iov[1].iov_base = &beyond;
        iov[1].iov_len = sizeof(beyond);
        cr_assert_eq(stream_write_record(w, STREAM_REC_ZERO_PAGES, iov, 2), 0);
        cr_assert_eq(stream_write_checkpoint(w), 0);
        cr_assert_eq(stream_write_end(w), 0);
        break;
    }
    case TAIL_NO_CHECKPOINT:
        break;
    }
    stream_writer_free(w);
    lseek(fd, 0, SEEK_SET);
    return fd;
}

static int run(int fd, uint64_t *kept)
{
    struct xcc_restore_params p;
    xcc_restorer *r;
    xcc_domain *dom;
    char dn[80];
    int rc, err;

    xcc_restore_params_init(&p);
    p.progress = 0;
    snprintf(dn, sizeof(dn), "sim:%s", name);
    dom = xcc_domain_open(dn, quiet, 0);
    cr_assert_not_null(dom);
    r = xcc_restorer_new(fd, &p, quiet);
    cr_assert_not_null(r);
    rc = xcc_restorer_run_checkpointed(r, dom, NULL, kept);
    err = errno;
    xcc_restorer_free(r);
    xcc_domain_close(dom);
    close(fd);
    errno = err;
    return rc;
}

/* The target holds checkpoint 2 exactly. */
static void expect_checkpoint2(void)
{
    uint8_t got[PSZ], zero[PSZ] = {0};

    target_page(0, got);
    cr_expect_eq(memcmp(got, zero, PSZ), 0, "pfn 0 is zero");
    target_page(1, got);
    cr_expect_eq(memcmp(got, b, PSZ), 0, "pfn 1 is b");
    target_page(2, got);
    cr_expect_eq(memcmp(got, c, PSZ), 0, "pfn 2 decoded on checkpoint 1");
    target_page(3, got);
    cr_expect_eq(memcmp(got, e, PSZ), 0, "pfn 3 decoded on its epoch copy");
}

TestSuite(checkpoint, .init = setup, .fini = teardown, .timeout = 30);

Test(checkpoint, epochs_apply_whole_and_end_cleanly)
{
    uint64_t kept = 99;
    uint8_t got[PSZ];

    cr_assert_eq(run(build(TAIL_END), &kept), 0);
    cr_expect_eq(kept, 3);
    target_page(1, got);
    cr_expect_eq(memcmp(got, f, PSZ), 0);
    target_page(2, got);
    cr_expect_eq(memcmp(got, g, PSZ), 0);
    target_page(3, got);
    cr_expect_eq(memcmp(got, e, PSZ), 0);
}

Test(checkpoint, break_mid_epoch_keeps_last_checkpoint)
{
    uint64_t kept = 0;

    cr_assert_eq(run(build(TAIL_TRUNCATED), &kept), -1);
    cr_expect_eq(errno, XCC_EFAILOVER);
    cr_expect_eq(kept, 2);
    expect_checkpoint2();
}

Test(checkpoint, bad_record_mid_epoch_keeps_last_checkpoint)
{
    uint64_t kept = 0;

    cr_assert_eq(run(build(TAIL_BAD_RECORD), &kept), -1);
    cr_expect_eq(errno, XCC_EFAILOVER);
    cr_expect_eq(kept, 2);
    expect_checkpoint2();
}

Test(checkpoint, break_before_first_checkpoint_keeps_nothing)
{
    uint64_t kept = 7;

    cr_assert_eq(run(build(TAIL_NO_CHECKPOINT), &kept), -1);
    cr_expect_neq(errno, XCC_EFAILOVER);
    cr_expect_eq(errno, XCC_ETRUNCATED);
    cr_expect_eq(kept, 0);
}

/* ---- The sender: one saver per guest, cancel while paused ---------------- */

static char live_name[64];

static void live_setup(void)
{
    snprintf(live_name, sizeof(live_name), "cklive%d", (int)getpid());
    quiet = (xentoollog_logger *)xtl_createlogger_stdiostream(
        stderr, XTL_CRITICAL, 0);
    cr_assert_eq(xcc_sim_start(live_name, 8u << 20, "random:2000:0.5", 3,
                               NULL, NULL, quiet),
                 0);
}

static void live_teardown(void)
{
    xcc_sim_stop(live_name, quiet);
    xtl_logger_destroy(quiet);
}

static int sim_state(void)
{
    struct xcc_sim_info info;

    cr_assert_eq(xcc_sim_get_info(live_name, &info, NULL), 0);
    return info.state;
}

struct cancel_ctx {
    xcc_checkpointer *c;
    int state_in_pause;
};

/* on_checkpoint runs while the guest is paused: cancel from there. */
static int cancel_in_pause(void *opaque, uint64_t k, const uint8_t *digest)
{
    struct cancel_ctx *ctx = opaque;

    (void)k;
    (void)digest;
    ctx->state_in_pause = sim_state();
    xcc_checkpointer_cancel(ctx->c);
    return 0;
}

TestSuite(checkpoint_sender, .init = live_setup, .fini = live_teardown,
          .timeout = 60);

Test(checkpoint_sender, cancel_while_paused_continues_the_guest)
{
    struct xcc_save_params sp;
    struct xcc_checkpoint_params cp;
    struct cancel_ctx ctx = {0};
    char dn[80];
    int fd = open("/dev/null", O_WRONLY);
    xcc_domain *dom;

    snprintf(dn, sizeof(dn), "sim:%s", live_name);
    dom = xcc_domain_open(dn, quiet, 0);
    cr_assert_not_null(dom);
    xcc_save_params_init(&sp);
    sp.progress = 0;
    xcc_checkpoint_params_init(&cp);
    cp.count = 5;
    cp.interval_ms = 0;
    cp.on_checkpoint = cancel_in_pause;
    cp.opaque = &ctx;
    ctx.c = xcc_checkpointer_new(dom, fd, &sp, &cp, quiet);
    cr_assert_not_null(ctx.c);
    cr_expect_eq(xcc_checkpointer_run(ctx.c), -1);
    cr_expect_eq(errno, ECANCELED, "errno %d", errno);
    cr_expect_eq(ctx.state_in_pause, XCC_SIM_PAUSED);
    cr_expect_eq(sim_state(), XCC_SIM_RUNNING, "the guest is %s",
                 xcc_sim_state_name(sim_state()));
    cr_expect(strstr(xcc_checkpointer_stats_json(ctx.c),
                     "\"status\": \"cancelled\""));
    xcc_checkpointer_free(ctx.c);
    xcc_domain_close(dom);
    close(fd);
}

struct lock_ctx {
    xcc_domain *dom;
    int fd;
    int rc, err;
};

/* A second saver of the same guest, run from the first one's pause. */
static int second_saver(void *opaque, uint64_t k, const uint8_t *digest)
{
    struct lock_ctx *l = opaque;
    struct xcc_save_params sp;
    xcc_saver *s;

    (void)k;
    (void)digest;
    xcc_save_params_init(&sp);
    sp.progress = 0;
    s = xcc_saver_new(l->dom, l->fd, &sp, quiet);
    cr_assert_not_null(s);
    l->rc = xcc_saver_run(s);
    l->err = errno;
    xcc_saver_free(s);
    return 0;
}

Test(checkpoint_sender, a_second_saver_is_refused)
{
    struct xcc_save_params sp;
    struct xcc_checkpoint_params cp;
    struct lock_ctx l = {0};
    char dn[80];
    int fd = open("/dev/null", O_WRONLY);
    xcc_domain *dom, *dom2;
    xcc_checkpointer *ck;

    snprintf(dn, sizeof(dn), "sim:%s", live_name);
    dom = xcc_domain_open(dn, quiet, 0);
    dom2 = xcc_domain_open(dn, quiet, 0);
    cr_assert(dom && dom2);
    xcc_save_params_init(&sp);
    sp.progress = 0;
    xcc_checkpoint_params_init(&cp);
    cp.count = 1;
    cp.on_checkpoint = second_saver;
    cp.opaque = &l;
    l.dom = dom2;
    l.fd = fd;
    ck = xcc_checkpointer_new(dom, fd, &sp, &cp, quiet);
    cr_assert_not_null(ck);
    cr_expect_eq(xcc_checkpointer_run(ck), 0);
    cr_expect_eq(l.rc, -1, "the second saver ran");
    cr_expect_eq(l.err, EBUSY, "errno %d", l.err);
    xcc_checkpointer_free(ck);
    /* Released at the end of the run: a save now succeeds. */
    l.rc = 0;
    second_saver(&l, 0, NULL);
    cr_expect_eq(l.rc, 0, "errno %d", l.err);
    xcc_domain_unpause(dom);
    xcc_domain_close(dom);
    xcc_domain_close(dom2);
    close(fd);
}
