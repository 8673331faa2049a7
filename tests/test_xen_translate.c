/*
 * test_xen_translate.c - the translator of an xc-colo stream into the stock
 * libxl v2 stream that a restore into a new Xen domain hands to libxl
 * (libxc-colo/src/xen_translate.c), without Xen: a sim guest's live XBZRLE
 * save stands in for a PV guest's (test hook xen_translate_allow_sim).
 *
 * Proofs: the output passes the libxl/libxc stream checker that feeds libxl
 * (tests/xen_feed.c); it holds PAGE_DATA of at most 1024 pages and nothing
 * of xc-colo's; made into an xl image and restored into a fresh guest it
 * gives the source's memory, digest for digest; a cut or corrupt stream
 * fails with the record and offset named. A stream that announces its
 * XBZRLE cache (CACHE_BASES) leaves a decode copy no larger than the
 * sender's cache; one that does not (an older stream) keeps the whole copy
 * and has its DIGEST checked against it.
 */
#include <criterion/criterion.h>
#include <endian.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include "xen_feed.c"
#include "xl_wrap.h"
#include "domain/domain.h"
#include "domain/sim.h"
#include "restore.h"
#include "save.h"
#include "stream.h"
#include "sim_open.h"
#include "test_hooks.h"
#include "xl_format.h"

#define MiB (1024ull * 1024)
#define PAGE 4096u

static char names[2][64];
static xentoollog_logger *quiet;

static void init(void)
{
    for (int i = 0; i < 2; i++)
        snprintf(names[i], sizeof(names[i]), "trtest-%d-%d", (int)getpid(), i);
    signal(SIGPIPE, SIG_IGN);
    quiet = (xentoollog_logger *)xtl_createlogger_stdiostream(
        stderr, XTL_NUM_LEVELS, 0);
}

static void fini(void)
{
    for (int i = 0; i < 2; i++)
        xcc_sim_stop(names[i], quiet);
    xtl_logger_destroy(quiet);
}

TestSuite(xen_translate, .init = init, .fini = fini, .timeout = 120);

static size_t fd_size(int fd)
{
    off_t n = lseek(fd, 0, SEEK_END);

    cr_assert_geq(n, 0);
    lseek(fd, 0, SEEK_SET);
    return (size_t)n;
}

/* How a test's source guest is saved. */
struct save_how {
    uint64_t mem;          /* guest size */
    const char *workload;
    uint64_t seed;         /* the workload's random choices */
    uint64_t cache_size;   /* 0: the default (at most the guest) */
    uint32_t threads;      /* 0: the default */
    char **stats;          /* the saver's JSON (malloc'ed), or NULL */
};

/* A live XBZRLE save (with DIGEST) of names[0], started as how says,
 * into a memfd; the source's digest after it. */
static int save_stream_how(const struct save_how *how, uint8_t digest[16])
{
    struct xcc_save_params p;
    int fd = memfd_create("stream", 0);

    cr_assert_geq(fd, 0);
    cr_assert_eq(xcc_sim_start(names[0], how->mem, how->workload, how->seed,
                               NULL, NULL, NULL), 0);
    xcc_domain *src = open_sim(names[0]);
    xcc_save_params_init(&p);
    p.live = 1;
    p.xbzrle = 1;
    p.verify = 1;
    p.progress = 0;
    p.max_iters = 5;
    p.target_dirty = 1;
    p.cache_size = how->cache_size;
    p.threads = how->threads;
    xcc_saver *s = xcc_saver_new(src, fd, &p, quiet);
    cr_assert(s);
    cr_assert_eq(xcc_saver_run(s), 0, "save: %s", xcc_strerror(errno));
    if (how->stats)
        *how->stats = strdup(xcc_saver_stats_json(s));
    xcc_saver_free(s);
    /* The saver leaves the guest paused: this is what it sent. */
    cr_assert_geq(xcc_domain_digest(src, 0, digest, NULL, 0), 1);
    xcc_domain_close(src);
    lseek(fd, 0, SEEK_SET);
    return fd;
}

/* The save most tests want: 16 MiB, hot pages and random writes. */
static int save_stream(uint8_t digest[16])
{
    const struct save_how how = {
        .mem = 16 * MiB, .workload = "hotpages+random:2000", .seed = 5,
    };

    return save_stream_how(&how, digest);
}

/* The number at a dotted path of a JSON document ("in.xbzrle"); fails the
 * test when absent. */
static uint64_t json_at(const char *doc, const char *path)
{
    json_object *root = json_tokener_parse(doc), *o = root;
    char buf[128], *save = NULL;
    uint64_t v;

    cr_assert(root, "not JSON: %s", doc);
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
        cr_assert(json_object_object_get_ex(o, k, &o), "no %s in %s", path,
                  doc);
    v = json_object_get_uint64(o);
    json_object_put(root);
    return v;
}

/* Restores stream_fd into a fresh sim guest names[1] of mem bytes (xl
 * images too) and returns its digest in digest. */
static void restored_digest(int stream_fd, uint64_t mem, uint8_t digest[16])
{
    struct xcc_restore_params rp;

    xcc_sim_stop(names[1], quiet);
    cr_assert_eq(xcc_sim_create(names[1], mem, NULL), 0);
    xcc_domain *dst = open_sim(names[1]);
    xcc_restore_params_init(&rp);
    rp.progress = 0;
    lseek(stream_fd, 0, SEEK_SET);
    xcc_restorer *r = xcc_restorer_new(stream_fd, &rp, quiet);
    cr_assert_eq(xcc_restorer_run(r, dst), 0, "restore: %s",
                 xcc_restorer_error(r));
    cr_assert_geq(xcc_domain_digest(dst, 0, digest, NULL, 0), 1);
    xcc_restorer_free(r);
    xcc_domain_close(dst);
}

/* The translator's libxl stream in out_fd as an xl image (the xl header in
 * front of it), restored into a fresh guest: its digest. */
static void translated_digest(int out_fd, uint64_t mem, uint8_t digest[16])
{
    size_t n = fd_size(out_fd), pro = xl_prologue_size(0);
    size_t skip = XEN_FEED_LIBXL_HEADER + 8; /* already in the prologue */
    uint8_t *b = mmap(NULL, n, PROT_READ, MAP_SHARED, out_fd, 0);
    uint8_t *hdr = malloc(pro);
    int img = memfd_create("img", 0);

    cr_assert_neq(b, MAP_FAILED);
    cr_assert_eq(xl_encode_prologue(hdr, pro, NULL), pro);
    cr_assert_eq(write(img, hdr, pro), (ssize_t)pro);
    cr_assert_eq(write(img, b + skip, n - skip), (ssize_t)(n - skip));
    restored_digest(img, mem, digest);
    munmap(b, n);
    free(hdr);
    close(img);
}

/* Whether the checker that feeds libxl takes out_fd whole. */
static bool libxl_takes(int out_fd)
{
    struct xen_feed f;
    int devnull = open("/dev/null", O_WRONLY), rc;

    lseek(out_fd, 0, SEEK_SET);
    xen_feed_init(&f, out_fd, 0, devnull);
    rc = xen_feed_forward_libxl(&f);
    xen_feed_release(&f);
    close(devnull);
    lseek(out_fd, 0, SEEK_SET);
    return rc == 0;
}

/* What a translation gave: its rc and errno, message, figures, and the
 * checkpoints libxl got (checkpoint mode). */
struct result {
    int rc, err;
    char msg[512];
    char *stats; /* malloc'ed */
    uint64_t kept;
};

/* Runs the translator over in_fd (checkpoint mode when checkpointed) into
 * a memfd, returned at its start. */
static int run_translator(int in_fd, bool allow_sim, bool checkpointed,
                          struct result *res)
{
    struct xcc_restore_params rp;
    int out = memfd_create("libxl", 0);

    cr_assert_geq(out, 0);
    xcc_restore_params_init(&rp);
    rp.progress = 0;
    xcc_xen_translator *t = xcc_xen_translator_new(in_fd, &rp, quiet);
    cr_assert(t);
    if (allow_sim)
        xen_translate_allow_sim(t);
    if (checkpointed) {
        cr_assert_eq(xcc_xen_translator_set_checkpointed(t), 0);
        res->rc = xcc_xen_translator_run_checkpointed(t, out, -1, &res->kept);
    } else {
        res->rc = xcc_xen_translator_run(t, out);
    }
    res->err = errno;
    snprintf(res->msg, sizeof(res->msg), "%s", xcc_xen_translator_error(t));
    res->stats = strdup(xcc_xen_translator_stats_json(t));
    xcc_xen_translator_free(t);
    lseek(out, 0, SEEK_SET);
    return out;
}

/* The plain mode, as most tests want it. */
static int translate(int in_fd, bool allow_sim, int *rc, char *err,
                     size_t errlen, char **stats)
{
    struct result res = {0};
    int out = run_translator(in_fd, allow_sim, false, &res);

    *rc = res.rc;
    snprintf(err, errlen, "%s", res.msg);
    if (stats)
        *stats = res.stats;
    else
        free(res.stats);
    return out;
}

/* Walks the libxc records of a libxl v2 stream in memory. */
static void check_records(const uint8_t *b, size_t n, uint64_t *page_records,
                          uint64_t *pages)
{
    size_t off = XEN_FEED_LIBXL_HEADER + 8 + XEN_FEED_LIBXC_HEADERS;
    bool end = false;

    *page_records = *pages = 0;
    while (!end) {
        uint32_t type, len, count;

        cr_assert_leq(off + 8, n, "record header past the end at %zu", off);
        memcpy(&type, b + off, 4);
        memcpy(&len, b + off + 4, 4);
        cr_assert_neq(type & XEN_REC_XCCOLO_MASK, XEN_REC_XCCOLO,
                      "xc-colo record %#x at %zu reached libxl", type, off);
        if (type == XEN_LIBXC_PAGE_DATA) {
            memcpy(&count, b + off + 8, 4);
            cr_assert(count >= 1 && count <= XEN_FEED_BATCH,
                      "PAGE_DATA of %u pages at %zu", count, off);
            (*page_records)++;
            *pages += count;
        }
        end = type == XEN_LIBXC_END;
        off += 8 + ((len + 7u) & ~7u);
    }
    /* Then libxl's END, and nothing after it. */
    cr_assert_eq(off + 8, n, "%zu bytes after the libxc END", n - off);
}

Test(xen_translate, live_xbzrle_save_becomes_a_stock_stream_of_the_same_memory)
{
    uint8_t src_digest[16], dst_digest[16];
    char err[512], *stats = NULL;
    int rc, in = -1, out = -1;

    /* The stream must use what the translator exists for: XBZRLE pages.
     * A guest that was hardly scheduled during the save (a loaded machine)
     * re-dirties nothing; then save again, a few times at most. */
    for (int attempt = 1; attempt <= 5; attempt++) {
        if (in >= 0) {
            close(in);
            close(out);
            free(stats);
            xcc_sim_stop(names[0], quiet);
        }
        in = save_stream(src_digest);
        out = translate(in, true, &rc, err, sizeof(err), &stats);
        cr_assert_eq(rc, 0, "translate: %s", err);
        if (!strstr(stats, "\"xbzrle\": 0,"))
            break;
        fprintf(stderr, "attempt %d: no XBZRLE pages in the stream\n", attempt);
    }
    cr_assert(strstr(stats, "\"xbzrle\": 0,") == NULL,
              "no XBZRLE pages in the source stream: %s", stats);
    /* The stream announces its cache: the copy holds the bases only, and
     * cannot be compared with the DIGEST (which restore checks below). */
    cr_assert(strstr(stats, "\"decode-copy\": \"sparse\""), "%s", stats);
    cr_assert(strstr(stats, "\"digests-not-checked\": 1"), "%s", stats);
    fprintf(stderr, "translator: %s\n", stats);

    /* 1. The checker that feeds libxl takes it whole. */
    struct xen_feed f;
    int devnull = open("/dev/null", O_WRONLY);
    xen_feed_init(&f, out, 0, devnull);
    cr_assert_eq(xen_feed_forward_libxl(&f), 0, "xen_feed: %s", f.err);
    cr_assert_gt(f.pages, 0);
    xen_feed_release(&f);
    close(devnull);
    /* ... and so does the validator `xc-colo inspect` runs. */
    char ierr[512];
    cr_assert_eq(inspect_libxl_stream(out, quiet, ierr, sizeof(ierr)), 0,
                 "inspect: %s", ierr);

    /* 2. Batches of at most 1024 pages, nothing of ours. */
    size_t n = fd_size(out);
    uint8_t *b = mmap(NULL, n, PROT_READ, MAP_SHARED, out, 0);
    uint64_t recs, pages;
    cr_assert_neq(b, MAP_FAILED);
    check_records(b, n, &recs, &pages);
    cr_assert_gt(recs, 1);

    /* 3. As an xl image (xl header in front of the libxl stream), restored
     * into a fresh guest: the source's memory. */
    size_t pro = xl_prologue_size(0);
    int img = memfd_create("img", 0);
    uint8_t *hdr = malloc(pro);
    cr_assert_eq(xl_encode_prologue(hdr, pro, NULL), pro);
    cr_assert_eq(write(img, hdr, pro), (ssize_t)pro);
    size_t skip = XEN_FEED_LIBXL_HEADER + 8; /* already in the prologue */
    cr_assert_eq(write(img, b + skip, n - skip), (ssize_t)(n - skip));
    lseek(img, 0, SEEK_SET);
    cr_assert_eq(xcc_sim_create(names[1], 16 * MiB, NULL), 0);
    xcc_domain *dst = open_sim(names[1]);
    struct xcc_restore_params rp;
    xcc_restore_params_init(&rp);
    rp.progress = 0;
    xcc_restorer *r = xcc_restorer_new(img, &rp, quiet);
    cr_assert_eq(xcc_restorer_run(r, dst), 0, "restore: %s",
                 xcc_restorer_error(r));
    cr_assert_geq(xcc_domain_digest(dst, 0, dst_digest, NULL, 0), 1);
    cr_assert_eq(memcmp(src_digest, dst_digest, 16), 0,
                 "the translated stream restores other memory");
    xcc_restorer_free(r);
    xcc_domain_close(dst);
    munmap(b, n);
    free(hdr);
    free(stats);
    close(img);
    close(out);
    close(in);
}

Test(xen_translate, a_sim_stream_is_refused_for_xen)
{
    uint8_t d[16];
    char err[512];
    int rc;
    int in = save_stream(d);
    int out = translate(in, false, &rc, err, sizeof(err), NULL);

    cr_assert_eq(rc, -1);
    cr_assert(strstr(err, "x86 PV stream only"), "%s", err);
    cr_assert_eq(fd_size(out), 0, "wrote to libxl before refusing");
    close(out);
    close(in);
}

/* Every cut of the stream fails, naming an offset; a cut never yields a
 * complete libxl stream (libxl would build a domain from half a guest). */
Test(xen_translate, a_cut_stream_fails_and_never_ends_the_libxl_stream)
{
    uint8_t d[16];
    char err[512];
    int rc;
    int in = save_stream(d);
    size_t n = fd_size(in);
    uint8_t *b = mmap(NULL, n, PROT_READ, MAP_SHARED, in, 0);
    unsigned seed = (unsigned)getpid();

    cr_assert_neq(b, MAP_FAILED);
    fprintf(stderr, "a_cut_stream: seed %u\n", seed);
    srand(seed);
    for (int i = 0; i < 12; i++) {
        size_t cut = (size_t)rand() % n;
        int part = memfd_create("cut", 0);
        cr_assert_eq(write(part, b, cut), (ssize_t)cut);
        lseek(part, 0, SEEK_SET);
        int out = translate(part, true, &rc, err, sizeof(err), NULL);
        cr_assert_eq(rc, -1, "a stream cut at %zu of %zu translated (seed %u)",
                     cut, n, seed);
        cr_assert(strstr(err, "offset") || strstr(err, "truncated") ||
                  strstr(err, "ends"), "cut at %zu: message '%s'", cut, err);
        /* What reached libxl is never a whole stream: its checker
         * refuses it. */
        struct xen_feed f;
        int devnull = open("/dev/null", O_WRONLY);
        xen_feed_init(&f, out, 0, devnull);
        cr_assert_eq(xen_feed_forward_libxl(&f), -1,
                     "cut at %zu: libxl would have got a whole stream", cut);
        xen_feed_release(&f);
        char ierr[512];
        cr_assert_eq(inspect_libxl_stream(out, quiet, ierr, sizeof(ierr)), -1,
                     "cut at %zu: inspect takes the output whole", cut);
        close(devnull);
        close(out);
        close(part);
    }
    munmap(b, n);
    close(in);
}

/* ---- Checkpoint mode (Remus) ---------------------------------------------- */

/* A checkpoint run of names[0] (5 checkpoints, XBZRLE) into a memfd. */
static int checkpoint_stream(uint64_t count)
{
    struct xcc_save_params sp;
    struct xcc_checkpoint_params cp;
    int fd = memfd_create("ckstream", 0);

    cr_assert_geq(fd, 0);
    cr_assert_eq(xcc_sim_start(names[0], 16 * MiB, "hotpages+random:2000", 5,
                               NULL, NULL, NULL), 0);
    xcc_domain *src = open_sim(names[0]);
    xcc_save_params_init(&sp);
    sp.live = 1;
    sp.xbzrle = 1;
    sp.verify = 1;
    sp.progress = 0;
    sp.max_iters = 2;
    xcc_checkpoint_params_init(&cp);
    cp.count = count;
    cp.interval_ms = 5;
    xcc_checkpointer *c = xcc_checkpointer_new(src, fd, &sp, &cp, quiet);
    cr_assert(c);
    cr_assert_eq(xcc_checkpointer_run(c), 0, "checkpoint: %s",
                 xcc_strerror(errno));
    xcc_checkpointer_free(c);
    xcc_domain_close(src);
    lseek(fd, 0, SEEK_SET);
    return fd;
}

/* The libxc records of a checkpointed libxl stream: CHECKPOINT always
 * followed by libxl's CHECKPOINT_END; counts them and says whether the
 * stream ended (libxc END then libxl END). */
static void walk_checkpointed(const uint8_t *b, size_t n, uint64_t *ckpts,
                              bool *ended)
{
    size_t off = XEN_FEED_LIBXL_HEADER + 8 + XEN_FEED_LIBXC_HEADERS;

    *ckpts = 0;
    *ended = false;
    while (off + 8 <= n) {
        uint32_t type, len;

        memcpy(&type, b + off, 4);
        memcpy(&len, b + off + 4, 4);
        cr_assert_neq(type & XEN_REC_XCCOLO_MASK, XEN_REC_XCCOLO,
                      "xc-colo record %#x at %zu reached libxl", type, off);
        off += 8 + ((len + 7u) & ~7u);
        if (type == LIBXC_CHECKPOINT) {
            (*ckpts)++;
            cr_assert_leq(off + 8, n, "CHECKPOINT at the very end");
            memcpy(&type, b + off, 4);
            cr_assert_eq(type, XEN_LIBXL_CHECKPOINT_END,
                         "CHECKPOINT without libxl's CHECKPOINT_END");
            off += 8;
        } else if (type == XEN_LIBXC_END) {
            cr_assert_eq(off + 8, n, "bytes after the libxc END");
            *ended = true;
            return;
        }
    }
    cr_assert_eq(off, n, "a record cut at %zu of %zu", off, n);
}

Test(xen_translate, checkpoints_reach_libxl_whole_and_a_broken_stream_keeps_the_last)
{
    char err[512];
    uint64_t kept = 0, ck;
    bool ended;
    int in = checkpoint_stream(5);
    size_t n = fd_size(in);
    uint8_t *b = mmap(NULL, n, PROT_READ, MAP_SHARED, in, 0);
    cr_assert_neq(b, MAP_FAILED);

    /* Whole: every checkpoint, then END. */
    for (int cut = 0; cut < 2; cut++) {
        size_t len = n;
        if (cut) {
            /* Cut inside the last epoch: just before the last CHECKPOINT
             * record's header, found from the stream itself. */
            len = 0;
            for (size_t off = STREAM_HEADERS_SIZE; off + 8 <= n;) {
                uint32_t type, l;
                memcpy(&type, b + off, 4);
                memcpy(&l, b + off + 4, 4);
                if (type == STREAM_REC_CHECKPOINT)
                    len = off;
                off += 8 + ((l + 7u) & ~7u);
            }
            cr_assert_gt(len, 0);
            len -= 3; /* and into the record before it */
        }
        int part = memfd_create("part", 0);
        cr_assert_eq(write(part, b, len), (ssize_t)len);
        lseek(part, 0, SEEK_SET);
        struct result res = {0};
        int out = run_translator(part, true, true, &res);
        int rc = res.rc, e = res.err;
        kept = res.kept;
        snprintf(err, sizeof(err), "%s", res.msg);
        free(res.stats);

        size_t on = fd_size(out);
        uint8_t *o = mmap(NULL, on, PROT_READ, MAP_SHARED, out, 0);
        cr_assert_neq(o, MAP_FAILED);
        walk_checkpointed(o, on, &ck, &ended);
        if (!cut) {
            cr_assert_eq(rc, 0, "translate: %s", err);
            cr_assert_eq(kept, 5);
            cr_assert_eq(ck, 5);
            cr_assert(ended);
        } else {
            cr_assert_eq(rc, -1);
            cr_assert_eq(e, XCC_EFAILOVER, "errno %d: %s", e, err);
            cr_assert_eq(kept, 4, "kept %" PRIu64, kept);
            /* libxl has checkpoints 1..4 whole, nothing of epoch 5. */
            cr_assert_eq(ck, 4);
            cr_assert(!ended, "a broken stream was ended for libxl");
        }
        munmap(o, on);
        close(out);
        close(part);
    }
    munmap(b, n);
    close(in);
}

/* ---- Memory on the receiver (CACHE_BASES) ---------------------------------- */

/*
 * A 64 MiB guest saved live with XBZRLE and a cache of 1 or 2 MiB: hot
 * pages and random writes with one encoding thread, random writes alone
 * (whose entries age out, so they are evicted and dropped) with two (the
 * cache in shards, each journaled by its thread). The decode copy ends no
 * larger than the cache and peaks at the cache plus one record; it holds
 * exactly the cache's entries; libxl's checker takes the output, which
 * restores the source's memory; the stream itself restores the source's
 * memory into a sim guest, and inspect lists its CACHE_BASES records.
 */
struct bases_seen {
    uint64_t records, dropped, kept;
    uint32_t guest_flags;
};

static int count_bases(void *opaque, const struct xcc_inspect_headers *h,
                       const struct xcc_inspect_record *r)
{
    struct bases_seen *b = opaque;

    (void)h;
    if (r && r->type == STREAM_REC_GUEST_INFO)
        b->guest_flags = r->guest_flags;
    if (r && r->type == STREAM_REC_CACHE_BASES) {
        cr_assert_str_eq(r->name, "CACHE_BASES");
        b->records++;
        b->dropped += r->bases_dropped;
        b->kept += r->bases_kept;
    }
    return 0;
}

Test(xen_translate, a_small_cache_keeps_a_small_decode_copy, .timeout = 300)
{
    static const struct {
        const char *workload;
        uint64_t cache;
        uint32_t threads;
    } runs[] = {
        {"hotpages+random:4000", 1 * MiB, 1},
        {"random:20000", 2 * MiB, 2},
    };
    const uint64_t mem = 64 * MiB;
    /* One record in flight: a PAGE_DATA batch of the saver's (1024). */
    const uint64_t in_flight = 1024ull * PAGE, margin = 64 * 1024;

    for (size_t run = 0; run < sizeof(runs) / sizeof(runs[0]); run++) {
        const uint64_t cache = runs[run].cache;
        const uint32_t threads = runs[run].threads;
        uint8_t src[16], dst[16];
        char err[512], *stats = NULL, *sstats = NULL;
        const uint64_t seed = 0x5eedull + run + (uint64_t)getpid();
        struct save_how how = {
            .mem = mem, .workload = runs[run].workload, .seed = seed,
            .cache_size = cache, .threads = threads, .stats = &sstats,
        };
        int rc, in = -1, out = -1;

        fprintf(stderr, "a_small_cache: %s, cache %" PRIu64 " bytes, %u "
                "thread(s), workload seed %" PRIu64 "\n", runs[run].workload,
                cache, threads, seed);
        /* XBZRLE pages need a guest that ran during the save: on a loaded
         * machine it may hardly have; then save again, a few times. */
        for (int attempt = 1; attempt <= 4; attempt++) {
            if (in >= 0) {
                close(in);
                close(out);
                free(stats);
                free(sstats);
                xcc_sim_stop(names[0], quiet);
            }
            in = save_stream_how(&how, src);
            out = translate(in, true, &rc, err, sizeof(err), &stats);
            cr_assert_eq(rc, 0, "translate: %s", err);
            if (json_at(stats, "in.xbzrle") > 0)
                break;
            fprintf(stderr, "attempt %d: no XBZRLE pages\n", attempt);
        }
        cr_assert_gt(json_at(stats, "in.xbzrle"), 0, "%s", stats);

        uint64_t end = json_at(stats, "decode-copy-bytes");
        uint64_t peak = json_at(stats, "decode-copy-peak-bytes");
        uint64_t bases = json_at(stats, "decode-copy-bases");
        fprintf(stderr, "%s, %u thread(s): guest %" PRIu64 " bytes, cache %"
                PRIu64 ", decode copy %" PRIu64 " bytes at the end (%" PRIu64
                " bases), %" PRIu64 " at its peak (%.3f of the guest); the "
                "saver: %" PRIu64 " XBZRLE pages, %" PRIu64 " CACHE_BASES "
                "records (%" PRIu64 " dropped, %" PRIu64 " kept), %" PRIu64
                " evictions\n", runs[run].workload, threads, mem, cache, end,
                bases, peak, (double)peak / (double)mem,
                json_at(sstats, "xbzrle-cache.pages"),
                json_at(sstats, "xbzrle-cache.cache-bases.records"),
                json_at(sstats, "xbzrle-cache.cache-bases.dropped"),
                json_at(sstats, "xbzrle-cache.cache-bases.kept"),
                json_at(sstats, "xbzrle-cache.evictions"));
        cr_assert(strstr(stats, "\"decode-copy\": \"sparse\""), "%s", stats);
        cr_assert_eq(json_at(stats, "guest-bytes"), mem);
        cr_assert_leq(end, cache + margin, "%s", stats);
        cr_assert_leq(peak, cache + in_flight + margin, "%s", stats);
        /* The receiver keeps exactly what the sender's cache holds. */
        cr_assert_eq(bases, json_at(sstats, "xbzrle-cache.entries"),
                     "receiver %" PRIu64 " bases; sender: %s", bases, sstats);
        cr_assert_eq(bases, json_at(sstats,
                                    "xbzrle-cache.cache-bases.receiver-pages"));
        cr_assert_leq(bases * PAGE, cache);
        cr_assert_eq(json_at(stats, "in.digests-not-checked"), 1, "%s", stats);

        /* libxl gets a whole stream, of the source's memory. */
        cr_assert(libxl_takes(out), "the checker that feeds libxl refuses it");
        translated_digest(out, mem, dst);
        cr_assert_eq(memcmp(src, dst, 16), 0, "the translated stream restores "
                     "other memory (%s)", runs[run].workload);
        /* The stream itself, restored into a sim guest (DIGEST checked). */
        restored_digest(in, mem, dst);
        cr_assert_eq(memcmp(src, dst, 16), 0, "restore gives other memory");

        /* inspect lists the records. */
        struct bases_seen seen = {0};
        struct xcc_inspect_totals t;
        lseek(in, 0, SEEK_SET);
        cr_assert_eq(xcc_stream_inspect(in, quiet, 0, count_bases, &seen, &t),
                     0, "inspect: %s", t.error);
        cr_assert_eq(seen.guest_flags,
                     STREAM_GUEST_INFO_TYPED_PFNS |
                         STREAM_GUEST_INFO_CACHE_BASES);
        cr_assert_eq(seen.records,
                     json_at(sstats, "xbzrle-cache.cache-bases.records"));
        cr_assert_eq(seen.kept - seen.dropped, bases);
        close(in);
        close(out);
        free(stats);
        free(sstats);
        xcc_sim_stop(names[0], quiet);
    }
}

/* fd's stream as xc-colo wrote it before CACHE_BASES (format 2): GUEST_INFO
 * without the flag, no CACHE_BASES record. A memfd at its start. */
static int without_cache_bases(int fd)
{
    size_t n = fd_size(fd), off = STREAM_HEADERS_SIZE;
    uint8_t *b = mmap(NULL, n, PROT_READ, MAP_SHARED, fd, 0);
    int old = memfd_create("format2", 0);

    cr_assert_neq(b, MAP_FAILED);
    cr_assert_eq(write(old, b, off), (ssize_t)off);
    while (off < n) {
        uint32_t type, len, flags;
        size_t whole;

        memcpy(&type, b + off, 4);
        memcpy(&len, b + off + 4, 4);
        whole = 8 + ((len + 7u) & ~7u);
        cr_assert_leq(off + whole, n);
        if (type == STREAM_REC_GUEST_INFO) {
            uint8_t gi[8 + STREAM_GUEST_INFO_SIZE];
            memcpy(gi, b + off, sizeof(gi));
            memcpy(&flags, gi + 8 + 12, 4);
            flags &= ~STREAM_GUEST_INFO_CACHE_BASES;
            memcpy(gi + 8 + 12, &flags, 4);
            cr_assert_eq(write(old, gi, sizeof(gi)), (ssize_t)sizeof(gi));
        } else if (type != STREAM_REC_CACHE_BASES) {
            cr_assert_eq(write(old, b + off, whole), (ssize_t)whole);
        }
        off += whole;
    }
    munmap(b, n);
    lseek(old, 0, SEEK_SET);
    return old;
}

Test(xen_translate, a_stream_without_cache_bases_keeps_the_whole_copy)
{
    uint8_t src[16], dst[16];
    char err[512], *stats = NULL;
    int rc, in = save_stream(src), old = without_cache_bases(in);
    int out = translate(old, true, &rc, err, sizeof(err), &stats);

    cr_assert_eq(rc, 0, "translate: %s", err);
    fprintf(stderr, "format 2: %s\n", stats);
    cr_assert(strstr(stats, "\"decode-copy\": \"whole\""), "%s", stats);
    cr_assert_eq(json_at(stats, "in.digests-checked"), 1, "%s", stats);
    cr_assert_eq(json_at(stats, "in.digests-not-checked"), 0, "%s", stats);
    cr_assert_eq(json_at(stats, "decode-copy-bases"), 0);
    cr_assert(libxl_takes(out));
    translated_digest(out, 16 * MiB, dst);
    cr_assert_eq(memcmp(src, dst, 16), 0);
    free(stats);
    close(out);
    close(old);
    close(in);
}

/* A sim stream of 64 pfns announcing its cache: CACHE_BASES keeps pfn 5,
 * PAGE_DATA sends pfns 3 and 5, an XBZRLE delta of 5 (a base), then one of
 * 3, which CACHE_BASES never kept. */
static int stream_with_unannounced_delta(uint64_t *bad_offset)
{
    static uint8_t page[PAGE];
    static const uint8_t delta[] = {0x00, 0x04, 'A', 'B', 'C', 'D'};
    const uint64_t kept = 5, pfns[] = {3, 5}, x5 = 5, x3 = 3;
    const uint8_t *pages[] = {page, page};
    const uint32_t len = sizeof(delta);
    int fd = memfd_create("unannounced", 0);
    struct stream_writer *w = stream_writer_new(fd, quiet);

    memset(page, 0x5a, sizeof(page));
    cr_assert(w);
    cr_assert_eq(stream_write_headers(w, XCC_DHDR_TYPE_SIM, 12, 0, 0), 0);
    cr_assert_eq(stream_write_guest_info(w, 64, PAGE,
                                         STREAM_GUEST_INFO_TYPED_PFNS |
                                             STREAM_GUEST_INFO_CACHE_BASES),
                 0);
    cr_assert_eq(stream_write_cache_bases(w, NULL, 0, &kept, 1), 0);
    cr_assert_eq(stream_write_page_data(w, pfns, NULL, 2, pages, PAGE), 0);
    cr_assert_eq(stream_write_xbzrle_pages(w, &x5, &len, 1, delta), 0);
    *bad_offset = stream_writer_bytes(w);
    cr_assert_eq(stream_write_xbzrle_pages(w, &x3, &len, 1, delta), 0);
    cr_assert_eq(stream_write_end(w), 0);
    stream_writer_free(w);
    lseek(fd, 0, SEEK_SET);
    return fd;
}

Test(xen_translate, an_xbzrle_page_without_a_base_is_refused_naming_the_pfn)
{
    uint64_t off;
    char err[512], want[128];
    int rc, in = stream_with_unannounced_delta(&off);
    int out = translate(in, true, &rc, err, sizeof(err), NULL);

    snprintf(want, sizeof(want), "XBZRLE_PAGES record (type 0x58430003) at "
             "offset %" PRIu64 ": entry 0: pfn 0x3 has no XBZRLE base", off);
    cr_assert_eq(rc, -1);
    cr_assert(strstr(err, want), "'%s' not in '%s'", want, err);
    cr_assert(strstr(err, "no CACHE_BASES record announced it as kept"), "%s",
              err);
    cr_assert(!libxl_takes(out), "libxl would have got a whole stream");

    /* restore and inspect refuse it the same way. */
    struct xcc_restore_params rp;
    struct xcc_inspect_totals t;
    xcc_restore_params_init(&rp);
    rp.progress = 0;
    cr_assert_eq(xcc_sim_create(names[1], 64 * PAGE, NULL), 0);
    xcc_domain *dst = open_sim(names[1]);
    lseek(in, 0, SEEK_SET);
    xcc_restorer *r = xcc_restorer_new(in, &rp, quiet);
    cr_assert_eq(xcc_restorer_run(r, dst), -1);
    cr_assert(strstr(xcc_restorer_error(r), want), "restore: %s",
              xcc_restorer_error(r));
    xcc_restorer_free(r);
    xcc_domain_close(dst);
    lseek(in, 0, SEEK_SET);
    cr_assert_eq(xcc_stream_inspect(in, quiet, 0, NULL, NULL, &t), -1);
    cr_assert(strstr(t.error, want), "inspect: %s", t.error);
    close(out);
    close(in);
}
