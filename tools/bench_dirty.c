/*
 * bench_dirty.c - `xc-colo bench dirty`: how fast a log-dirty clean
 * harvests a sim guest's dirty pages, PAGEMAP_SCAN against the bitmap.
 *
 * For each tracking mode a guest of SIZE runs the `sweep` workload, which
 * writes one word in every page in turn, flat out. Each round lets it
 * complete two full sweeps after the previous clean (so every page is
 * dirty), pauses it, and times one clean: pages reported / seconds is the
 * harvest rate. A second clean right after, with nothing dirty, gives the
 * fixed cost of a scan. The guest's own sweep rate meanwhile shows what
 * the tracking costs the writer (a write-protect fault per page and clean
 * for pagemap, an atomic OR and a fence per write for the bitmap).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "cli.h"

#define DEFAULT_MEM (1ull << 30)
#define DEFAULT_ROUNDS 5u
#define MAX_ROUNDS 100u
/* sweep rate asked of the guest: more than it can do, so it runs flat out */
#define SWEEP_SPEC "sweep:8000000"
/* a round gives up when the guest has not swept twice in this long */
#define SWEEP_TIMEOUT_S 60.0

enum { MODE_PAGEMAP, MODE_BITMAP, NR_MODES };
static const char *const mode_name[NR_MODES] = {"pagemap", "bitmap"};

struct result {
    bool ran;
    char why[160];            /* when it did not */
    double pages_per_clean;   /* median */
    double clean_s;           /* median */
    double empty_clean_s;     /* median */
    double guest_pages_per_s; /* median */
};

static uint64_t sweeps_of(const char *name, xentoollog_logger *log)
{
    struct xcc_sim_info info;

    return xcc_sim_get_info(name, &info, log) == 0 ? info.sweeps : 0;
}

/* Waits for two more full sweeps; returns the guest's pages/s, or -1. */
static double wait_two_sweeps(const char *name, uint64_t nr_pfns,
                              xentoollog_logger *log)
{
    uint64_t start = sweeps_of(name, log), now = start, first = 0;
    double t0 = bench_now_s(), t1 = 0;
    struct timespec ms = {0, 1000000};

    while (now < start + 2) {
        if (bench_now_s() - t0 > SWEEP_TIMEOUT_S)
            return -1;
        nanosleep(&ms, NULL);
        now = sweeps_of(name, log);
        if (now == start + 1 && !first) {
            first = now;
            t1 = bench_now_s(); /* one whole sweep timed from here */
        }
    }
    if (!first)
        return 0; /* both sweeps ended within one poll: too fast to time */
    return (double)nr_pfns / (bench_now_s() - t1);
}

static int run_mode(int mode, uint64_t mem, unsigned rounds,
                    xentoollog_logger *log, struct result *res)
{
    char name[XCC_SIM_NAME_MAX + 1], dname[XCC_SIM_NAME_MAX + 8];
    double *pages = calloc(rounds, sizeof(double));
    double *clean = calloc(rounds, sizeof(double));
    double *empty = calloc(rounds, sizeof(double));
    double *guest = calloc(rounds, sizeof(double));
    uint64_t nr_pfns, *bm = NULL;
    uint32_t psz;
    xcc_domain *d = NULL;
    int rc = -1;

    memset(res, 0, sizeof(*res));
    snprintf(name, sizeof(name), "bench-dirty-%d-%s", (int)getpid(),
             mode_name[mode]);
    snprintf(dname, sizeof(dname), "sim:%s", name);
    if (!pages || !clean || !empty || !guest)
        goto out_free;
    if (xcc_sim_start(name, mem, SWEEP_SPEC, 1, NULL, mode_name[mode], log) <
        0) {
        snprintf(res->why, sizeof(res->why), "cannot start a %s guest: %s",
                 mode_name[mode], xcc_strerror(errno));
        rc = errno == ENOTSUP ? 0 : -1; /* kernel without PAGEMAP_SCAN */
        goto out_free;
    }
    d = xcc_domain_open(dname, log, 0);
    if (!d || xcc_domain_get_info(d, &nr_pfns, &psz) < 0) {
        snprintf(res->why, sizeof(res->why), "cannot open %s: %s", dname,
                 xcc_strerror(errno));
        goto out;
    }
    bm = calloc((nr_pfns + 63) / 64, 8);
    if (!bm || xcc_sim_logdirty_enable(d) < 0) {
        snprintf(res->why, sizeof(res->why), "log-dirty enable: %s",
                 xcc_strerror(errno));
        goto out;
    }
    for (unsigned r = 0; r < rounds; r++) {
        double t0, t1, t2;
        int64_t n, n2;

        guest[r] = wait_two_sweeps(name, nr_pfns, log);
        if (guest[r] < 0 || xcc_domain_pause(d) < 0) {
            snprintf(res->why, sizeof(res->why),
                     "the guest did not sweep its RAM twice in %.0f s",
                     SWEEP_TIMEOUT_S);
            goto out;
        }
        memset(bm, 0, (nr_pfns + 63) / 64 * 8);
        t0 = bench_now_s();
        n = xcc_sim_logdirty_clean(d, bm);
        t1 = bench_now_s();
        n2 = xcc_sim_logdirty_clean(d, bm);
        t2 = bench_now_s();
        if (n < 0 || n2 < 0 || xcc_domain_unpause(d) < 0) {
            snprintf(res->why, sizeof(res->why), "log-dirty clean: %s",
                     xcc_strerror(errno));
            goto out;
        }
        pages[r] = (double)n;
        clean[r] = t1 - t0;
        empty[r] = t2 - t1;
    }
    res->ran = true;
    res->pages_per_clean = bench_median(pages, rounds);
    res->clean_s = bench_median(clean, rounds);
    res->empty_clean_s = bench_median(empty, rounds);
    res->guest_pages_per_s = bench_median(guest, rounds);
    rc = 0;
out:
    xcc_domain_close(d);
    if (xcc_sim_stop(name, log) < 0)
        cli_error("bench dirty: cannot remove guest %s: %s", name,
                  xcc_strerror(errno));
out_free:
    free(bm);
    free(pages);
    free(clean);
    free(empty);
    free(guest);
    return rc;
}

static void dirty_usage(FILE *out)
{
    fprintf(out,
            "usage: xc-colo bench dirty [--mem SIZE] [--rounds N] [--json]\n\n"
            "Times log-dirty cleans of a sim guest of SIZE (default 1G) whose\n"
            "every page was written since the last clean: PAGEMAP_SCAN on\n"
            "userfaultfd write-protect against the shared bitmap. Reports\n"
            "pages harvested per second (median of N rounds, default %u),\n"
            "the cost of a clean with nothing dirty, and the guest's own\n"
            "write rate under each mode.\n\n"
            "  --mem SIZE   guest RAM (K, M, G suffixes)\n"
            "  --rounds N   cleans timed per mode (1-%u)\n"
            "  --json       one JSON object on stdout\n",
            DEFAULT_ROUNDS, MAX_ROUNDS);
}

int bench_dirty(int argc, char **argv)
{
    static const struct option opts[] = {
        {"mem", required_argument, NULL, 'm'},
        {"rounds", required_argument, NULL, 'r'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    uint64_t mem = DEFAULT_MEM, rounds = DEFAULT_ROUNDS;
    struct result res[NR_MODES];
    bool json = false;
    int opt, rc = EXIT_OK;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        /* --rounds has a range: parsed here. */
        int known = bench_parse_common(opt, optarg, NULL, &mem, NULL, &json);
        if (known < 0)
            return EXIT_USAGE;
        if (known)
            continue;
        switch (opt) {
        case 'r':
            if (cli_parse_u64(optarg, "--rounds", &rounds) < 0)
                return EXIT_USAGE;
            if (rounds < 1 || rounds > MAX_ROUNDS) {
                cli_error("bench dirty: --rounds must be 1-%u, got %" PRIu64,
                          MAX_ROUNDS, rounds);
                return EXIT_USAGE;
            }
            break;
        case 'h':
            dirty_usage(stdout);
            return EXIT_OK;
        default:
            dirty_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc) {
        dirty_usage(stderr);
        return EXIT_USAGE;
    }

    xentoollog_logger *log = cli_logger(0, false);
    for (int m = 0; m < NR_MODES; m++) {
        if (run_mode(m, mem, (unsigned)rounds, log, &res[m]) < 0) {
            cli_error("bench dirty: %s: %s", mode_name[m], res[m].why);
            rc = EXIT_FAIL;
        } else if (!res[m].ran) {
            fprintf(stderr, "bench dirty: %s skipped: %s\n", mode_name[m],
                    res[m].why);
        }
    }
    xtl_logger_destroy(log);
    if (rc != EXIT_OK)
        return rc;

    const struct result *pm = &res[MODE_PAGEMAP], *bt = &res[MODE_BITMAP];
    double pm_rate = pm->ran ? pm->pages_per_clean / pm->clean_s : 0;
    double bt_rate = bt->ran ? bt->pages_per_clean / bt->clean_s : 0;

    if (json) {
        printf("{\"mem_bytes\":%" PRIu64 ",\"rounds\":%" PRIu64, mem, rounds);
        for (int m = 0; m < NR_MODES; m++) {
            const struct result *r = &res[m];

            if (!r->ran) {
                printf(",\"%s_skipped\":\"%s\"", mode_name[m], r->why);
                continue;
            }
            printf(",\"%s_pages_per_clean\":%.0f,\"%s_clean_ms\":%.3f,"
                   "\"%s_pages_per_s\":%.0f,\"%s_empty_clean_ms\":%.3f,"
                   "\"%s_guest_write_pages_per_s\":%.0f",
                   mode_name[m], r->pages_per_clean, mode_name[m],
                   r->clean_s * 1e3, mode_name[m],
                   r->pages_per_clean / r->clean_s, mode_name[m],
                   r->empty_clean_s * 1e3, mode_name[m], r->guest_pages_per_s);
        }
        if (pm->ran && bt->ran)
            printf(",\"ratio_pagemap_over_bitmap\":%.4f", pm_rate / bt_rate);
        printf("}\n");
        return EXIT_OK;
    }
    printf("dirty: %.2f GiB sim guest, every page written between cleans, "
           "median of %" PRIu64 " rounds\n",
           (double)mem / (1u << 30), rounds);
    printf("  %-8s %12s %10s %16s %14s %18s\n", "mode", "pages/clean",
           "clean ms", "harvest pages/s", "empty clean ms",
           "guest writes pg/s");
    for (int m = 0; m < NR_MODES; m++) {
        const struct result *r = &res[m];

        if (!r->ran) {
            printf("  %-8s skipped: %s\n", mode_name[m], r->why);
            continue;
        }
        printf("  %-8s %12.0f %10.3f %16.0f %14.3f %18.0f\n", mode_name[m],
               r->pages_per_clean, r->clean_s * 1e3,
               r->pages_per_clean / r->clean_s, r->empty_clean_s * 1e3,
               r->guest_pages_per_s);
    }
    if (pm->ran && bt->ran)
        printf("  harvest rate pagemap/bitmap %.3f\n", pm_rate / bt_rate);
    return EXIT_OK;
}
