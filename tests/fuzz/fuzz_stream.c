/*
 * fuzz_stream.c - libFuzzer target for the stream reader and every body
 * parser: arbitrary bytes go through an in-memory fd (memfd), exactly as a
 * restore would read them, with a 4096-page target. Crashes, leaks and
 * sanitizer reports are the failures; returning -1 is the expected outcome.
 *
 * Two properties abort() when broken (one grammar, DESIGN.md invariant 3):
 *   - every XBZRLE delta the stream parser accepts decodes
 *     (xcc_xbzrle_decode);
 *   - every stream inspect accepts, restore accepts too, in the mode the
 *     stream asks for (--checkpointed when it holds a CHECKPOINT), into a
 *     real sim target of 4096 pages, without --verify (a DIGEST's values
 *     are content, not structure). Only what the target decides is left
 *     out: a guest larger than the target, a page size other than 4 KiB,
 *     and page types a sim target cannot hold in a stream of another
 *     domain type.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "compress.h"
#include "stream.h"

/* The target's size: pfns at or above it must be rejected. */
#define FUZZ_NR_PFNS 4096u

/* What the target decides, seen while parsing (see the header). */
struct target_fit {
    bool ok;           /* the stream's guest fits the fuzz target */
    bool foreign_type; /* a page type a sim target refuses */
};

static void parse_stream(int fd, xentoollog_logger *log,
                         struct target_fit *fit)
{
    struct stream_reader *r = stream_reader_new(fd, log);
    struct stream_headers h;
    uint64_t nr_pfns = FUZZ_NR_PFNS;

    fit->ok = false;
    fit->foreign_type = false;
    if (!r)
        return;
    if (stream_read_headers(r, &h))
        goto out;
    fit->ok = h.page_size == 4096;
    for (;;) {
        struct stream_record rec;
        int rc = 0;

        if (stream_read_record(r, &rec))
            break;
        switch (rec.type) {
        case STREAM_REC_PAGE_DATA:
        case STREAM_REC_COMPRESSED_PAGES: {
            struct stream_page_data pd;
            volatile uint8_t sink = 0;
            rc = compress_parse_pages(r, &rec, nr_pfns, h.page_size, &pd);
            /* Touch what a restore would copy, so ASan sees any overrun. */
            for (uint32_t i = 0; !rc && i < pd.count; i++) {
                if (pd.pfns[i] >= nr_pfns)
                    abort();
                if (!stream_pfn_type_sim_ok(pd.types[i]))
                    fit->foreign_type = true;
                if (pd.pages[i])
                    sink ^= pd.pages[i][h.page_size - 1];
            }
            (void)sink;
            break;
        }
        case STREAM_REC_ZERO_PAGES: {
            struct stream_pfn_list zl;
            rc = stream_parse_zero_pages(r, &rec, nr_pfns, &zl);
            for (uint32_t i = 0; !rc && i < zl.count; i++) {
                if (zl.pfns[i] >= nr_pfns || !stream_pfn_type_has_data(zl.types[i]))
                    abort();
                if (!stream_pfn_type_sim_ok(zl.types[i]))
                    fit->foreign_type = true;
            }
            break;
        }
        case STREAM_REC_XBZRLE_PAGES: {
            struct stream_xbzrle_pages xp;
            volatile uint8_t sink = 0;
            rc = stream_parse_xbzrle_pages(r, &rec, nr_pfns, h.page_size, &xp);
            for (uint32_t i = 0; !rc && i < xp.count; i++) {
                static uint8_t page[XCC_MAX_PAGE_SIZE];
                if (!stream_pfn_type_has_data(xp.types[i]))
                    abort();
                if (!stream_pfn_type_sim_ok(xp.types[i]))
                    fit->foreign_type = true;
                sink ^= xp.deltas[i][xp.lens[i] - 1];
                /* What the parser accepts, the decoder accepts. */
                if (xcc_xbzrle_decode(xp.deltas[i], xp.lens[i], page,
                                      h.page_size) < 0) {
                    fprintf(stderr, "fuzz_stream: the parser accepted a "
                            "delta (entry %u, %u bytes) that does not "
                            "decode\n", i, xp.lens[i]);
                    abort();
                }
            }
            (void)sink;
            break;
        }
        case STREAM_REC_CACHE_BASES: {
            struct stream_cache_bases cb;
            rc = stream_parse_cache_bases(r, &rec, nr_pfns, &cb);
            for (uint32_t i = 0; !rc && i < cb.n_dropped; i++)
                if (cb.dropped[i] >= nr_pfns)
                    abort();
            for (uint32_t i = 0; !rc && i < cb.n_kept; i++)
                if (cb.kept[i] >= nr_pfns)
                    abort();
            break;
        }
        case STREAM_REC_CHECKPOINT_DIRTY_PFN_LIST: {
            struct stream_pfn_list dl;
            rc = stream_parse_dirty_pfn_list(r, &rec, nr_pfns, &dl);
            break;
        }
        case STREAM_REC_GUEST_INFO: {
            struct stream_guest_info gi;
            rc = stream_parse_guest_info(r, &rec, &gi);
            /* As restore: pfns are checked against the stream's guest. */
            if (!rc && gi.nr_pfns > FUZZ_NR_PFNS)
                fit->ok = false;
            else if (!rc)
                nr_pfns = gi.nr_pfns;
            break;
        }
        case STREAM_REC_DIGEST: {
            struct stream_digest dg;
            volatile uint8_t sink;
            rc = stream_parse_digest(r, &rec, nr_pfns, &dg);
            if (!rc && dg.count)
                sink = dg.chunks[dg.count * 16 - 1];
            (void)sink;
            break;
        }
        default:
            break;
        }
        /* Inspect checks pfns against 2^52 when no GUEST_INFO gives the
         * guest's size; the 4096-page target refuses what lies beyond. */
        if (rc)
            fit->ok = false;
        if (rc || rec.type == STREAM_REC_END)
            break;
    }
out:
    stream_reader_free(r);
}

/* The sim target restores go into: made once, removed at exit. */
static char target_name[64];

static void remove_target(void)
{
    xcc_sim_stop(target_name, quiet_logger());
}

static xcc_domain *fuzz_target(xentoollog_logger *log)
{
    static xcc_domain *d;
    static bool tried;

    if (tried)
        return d;
    tried = true;
    snprintf(target_name, sizeof(target_name), "fuzz-stream-%d", (int)getpid());
    if (xcc_sim_create(target_name, (uint64_t)FUZZ_NR_PFNS * 4096, log) < 0) {
        fprintf(stderr, "fuzz_stream: no sim target (%s): the inspect => "
                "restore property is not checked\n", xcc_strerror(errno));
        return NULL;
    }
    atexit(remove_target);
    char dom[80];
    snprintf(dom, sizeof(dom), "sim:%s", target_name);
    d = xcc_domain_open(dom, log, 0);
    return d;
}

/* inspect accepted the stream in fd: restore must accept it too. */
static void restore_must_accept(int fd, xentoollog_logger *log,
                                const struct xcc_inspect_totals *t)
{
    struct xcc_restore_params p;
    xcc_domain *d = fuzz_target(log);
    xcc_restorer *r;
    uint64_t kept;
    int rc;

    if (!d)
        return;
    xcc_restore_params_init(&p);
    p.verify = 0;
    p.progress = 0;
    lseek(fd, 0, SEEK_SET);
    r = xcc_restorer_new(fd, &p, log);
    if (!r)
        return;
    rc = t->checkpoints ? xcc_restorer_run_checkpointed(r, d, NULL, &kept)
                        : xcc_restorer_run(r, d);
    if (rc < 0 && errno != ENOMEM) {
        fprintf(stderr, "fuzz_stream: inspect accepted a stream that "
                "restore%s refuses: %s\n",
                t->checkpoints ? " --checkpointed" : "",
                xcc_restorer_error(r));
        abort();
    }
    xcc_restorer_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xentoollog_logger *log = quiet_logger();
    int fd = memfd_create("fuzz-stream", MFD_CLOEXEC);
    size_t off = 0;

    if (fd < 0)
        return 0;
    while (off < size) {
        ssize_t n = write(fd, data + off, size - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    if (lseek(fd, 0, SEEK_SET) == 0) {
        struct target_fit fit;
        parse_stream(fd, log, &fit);
        /* The public inspect path over the same bytes. */
        struct xcc_inspect_totals t;
        lseek(fd, 0, SEEK_SET);
        if (xcc_stream_inspect(fd, log, 0, NULL, NULL, &t) == 0 && fit.ok &&
            !(fit.foreign_type && t.headers.domain_type != XCC_DHDR_TYPE_SIM))
            restore_must_accept(fd, log, &t);
        /* An xl save image: the xl header and libxl framing around it. */
        lseek(fd, 0, SEEK_SET);
        (void)xcc_image_inspect(fd, log, 0, NULL, NULL, NULL, &t);
    }
    close(fd);
    return 0;
}
