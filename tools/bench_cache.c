/*
 * bench_cache.c - `xc-colo bench cache`: what a page costs the XBZRLE cache
 * when it misses and is inserted, against a memcpy of the page.
 *
 * A miss plus insert is the save's path for every page of the first delta
 * pass: copy the page into the stage buffer, look it up (miss), commit the
 * copy as the entry. Three figures per round, each per page over a cache of
 * SIZE filled from SIZE of random source pages:
 *   memcpy  a 4 KiB copy into memory already written once (the baseline);
 *   cold    miss + insert into a new cache whose buffers were never written
 *           by the process (MAP_POPULATE only): what the first delta pass
 *           paid before the saver wrote to them during iteration 0;
 *   warm    the same into a new cache whose buffers were written once.
 * The cold/warm gap is the first-touch fault, which is dear where the
 * process runs in a guest with shadow paging (a PV dom0, a KVM-PVM guest).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bench_util.h"
#include "cli.h"

#define PAGE 4096u
#define DEFAULT_SIZE (64ull << 20)
#define DEFAULT_REPS 3u

static void usage(FILE *out)
{
    fprintf(out,
            "usage: xc-colo bench cache [--json] [--mem SIZE] [--reps N]\n\n"
            "A page's miss plus insert into the XBZRLE cache (copy to the "
            "stage buffer,\nlookup, commit) against a memcpy of the page; "
            "a cache of SIZE (default 64M)\nis filled once with buffers "
            "never written by the process (cold) and once\nwith buffers "
            "written before (warm). Medians of N rounds (default 3).\n");
}

/* ns per page of one pass of misses + inserts over npages source pages. */
static double insert_pass(xcc_page_cache *c, const uint8_t *src,
                          uint64_t npages)
{
    double t0 = bench_now_s();

    for (uint64_t i = 0; i < npages; i++) {
        /* A stride through the pfns, as a dirty pass visits hot pages. */
        uint64_t pfn = (i * 7919) % npages;
        uint8_t *buf = xcc_page_cache_stage(c);

        memcpy(buf, src + pfn * PAGE, PAGE);
        if (xcc_page_cache_lookup(c, pfn))
            return -1; /* a new cache cannot hit */
        xcc_page_cache_commit(c, pfn);
    }
    return (bench_now_s() - t0) * 1e9 / (double)npages;
}

int bench_cache(int argc, char **argv)
{
    static const struct option opts[] = {
        BENCH_LONG_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    uint64_t size = DEFAULT_SIZE, reps = DEFAULT_REPS, npages;
    bool json = false;
    double *cp, *cold, *warm;
    uint8_t *src, *dst;
    int opt, rc;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (opt == 'h') {
            usage(stdout);
            return EXIT_OK;
        }
        rc = bench_parse_common(opt, optarg, "--reps", &size, &reps, &json);
        if (rc < 0)
            return EXIT_USAGE;
        if (rc == 0) {
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (size < 16 * PAGE || reps < 1 || reps > 100) {
        cli_error("bench cache: --mem at least 64K, --reps 1..100");
        return EXIT_USAGE;
    }
    npages = size / PAGE;
    src = malloc(npages * PAGE);
    dst = malloc(npages * PAGE);
    cp = calloc(reps, sizeof(double));
    cold = calloc(reps, sizeof(double));
    warm = calloc(reps, sizeof(double));
    if (!src || !dst || !cp || !cold || !warm) {
        cli_error("bench cache: out of memory");
        return EXIT_FAILURE;
    }
    srand(1);
    for (uint64_t i = 0; i < npages * PAGE / sizeof(int); i++)
        ((int *)src)[i] = rand();
    memset(dst, 1, npages * PAGE);

    for (uint64_t r = 0; r < reps; r++) {
        double t0 = bench_now_s();
        xcc_page_cache *c;

        for (uint64_t i = 0; i < npages; i++) {
            uint64_t pfn = (i * 7919) % npages;
            memcpy(dst + pfn * PAGE, src + pfn * PAGE, PAGE);
        }
        cp[r] = (bench_now_s() - t0) * 1e9 / (double)npages;

        c = xcc_page_cache_new(size, PAGE);
        if (!c) {
            cli_error("bench cache: cannot create a cache of %" PRIu64
                      " bytes: %s", size, strerror(errno));
            return EXIT_FAILURE;
        }
        cold[r] = insert_pass(c, src, npages);
        xcc_page_cache_free(c);

        /* Warm: every buffer written once (an insert pass, then dropped). */
        c = xcc_page_cache_new(size, PAGE);
        if (!c) {
            cli_error("bench cache: cannot create a cache: %s",
                      strerror(errno));
            return EXIT_FAILURE;
        }
        insert_pass(c, src, npages);
        for (uint64_t p = 0; p < npages; p++)
            xcc_page_cache_drop(c, p);
        warm[r] = insert_pass(c, src, npages);
        xcc_page_cache_free(c);
        if (cold[r] < 0 || warm[r] < 0) {
            cli_error("bench cache: a new cache reported a hit");
            return EXIT_FAILURE;
        }
    }
    double m_cp = bench_median(cp, (unsigned)reps);
    double m_cold = bench_median(cold, (unsigned)reps);
    double m_warm = bench_median(warm, (unsigned)reps);
    if (json) {
        printf("{\"bench\": \"cache\", \"cache-bytes\": %" PRIu64
               ", \"pages\": %" PRIu64 ", \"reps\": %" PRIu64
               ", \"memcpy-ns-per-page\": %.1f, \"cold-insert-ns-per-page\": "
               "%.1f, \"warm-insert-ns-per-page\": %.1f, "
               "\"cold-vs-memcpy\": %.2f, \"warm-vs-memcpy\": %.2f, "
               "\"warm-inserts-per-s\": %.0f}\n",
               size, npages, reps, m_cp, m_cold, m_warm, m_cold / m_cp,
               m_warm / m_cp, 1e9 / m_warm);
    } else {
        printf("XBZRLE cache of %" PRIu64 " MiB, %" PRIu64
               " pages, median of %" PRIu64 " rounds\n", size >> 20, npages,
               reps);
        printf("  memcpy of a page            %8.1f ns\n", m_cp);
        printf("  miss + insert, cold buffers %8.1f ns  (%.2fx memcpy)\n",
               m_cold, m_cold / m_cp);
        printf("  miss + insert, warm buffers %8.1f ns  (%.2fx memcpy, "
               "%.0f pages/s)\n", m_warm, m_warm / m_cp, 1e9 / m_warm);
    }
    free(src);
    free(dst);
    free(cp);
    free(cold);
    free(warm);
    return EXIT_OK;
}
