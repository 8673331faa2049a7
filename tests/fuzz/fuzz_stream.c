/*
 * fuzz_stream.c - libFuzzer target for the stream reader and every body
 * parser: arbitrary bytes go through an in-memory fd (memfd), exactly as a
 * restore would read them, with a 4096-page target. Crashes, leaks and
 * sanitizer reports are the failures; returning -1 is the expected outcome.
 */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "stream.h"

/* The target's size: pfns at or above it must be rejected. */
#define FUZZ_NR_PFNS 4096u

static xentoollog_logger *quiet_logger(void)
{
    static xentoollog_logger *log;

    /* Errors are the normal case here; keep the fuzzer's output readable. */
    if (!log)
        log = (xentoollog_logger *)xtl_createlogger_stdiostream(
            stderr, XTL_CRITICAL, XTL_STDIOSTREAM_HIDE_PROGRESS);
    return log;
}

static void parse_stream(int fd, xentoollog_logger *log)
{
    struct stream_reader *r = stream_reader_new(fd, log);
    struct stream_headers h;
    uint64_t nr_pfns = FUZZ_NR_PFNS;

    if (!r)
        return;
    if (stream_read_headers(r, &h))
        goto out;
    for (;;) {
        struct stream_record rec;
        int rc = 0;

        if (stream_read_record(r, &rec))
            break;
        switch (rec.type) {
        case STREAM_REC_PAGE_DATA: {
            struct stream_page_data pd;
            volatile uint8_t sink = 0;
            rc = stream_parse_page_data(r, &rec, nr_pfns, h.page_size, &pd);
            /* Touch what a restore would copy, so ASan sees any overrun. */
            for (uint32_t i = 0; !rc && i < pd.count; i++) {
                if (pd.pfns[i] >= nr_pfns)
                    abort();
                if (pd.pages[i])
                    sink ^= pd.pages[i][h.page_size - 1];
            }
            (void)sink;
            break;
        }
        case STREAM_REC_ZERO_PAGES: {
            struct stream_pfn_list zl;
            rc = stream_parse_zero_pages(r, &rec, nr_pfns, &zl);
            for (uint32_t i = 0; !rc && i < zl.count; i++)
                if (zl.pfns[i] >= nr_pfns)
                    abort();
            break;
        }
        case STREAM_REC_XBZRLE_PAGES: {
            struct stream_xbzrle_pages xp;
            volatile uint8_t sink = 0;
            rc = stream_parse_xbzrle_pages(r, &rec, nr_pfns, h.page_size, &xp);
            for (uint32_t i = 0; !rc && i < xp.count; i++)
                sink ^= xp.deltas[i][xp.lens[i] - 1];
            (void)sink;
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
        if (rc || rec.type == STREAM_REC_END)
            break;
    }
out:
    stream_reader_free(r);
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
        parse_stream(fd, log);
        /* The public inspect path over the same bytes. */
        struct xcc_inspect_totals t;
        lseek(fd, 0, SEEK_SET);
        xcc_stream_inspect(fd, log, 0, NULL, NULL, &t);
    }
    close(fd);
    return 0;
}
