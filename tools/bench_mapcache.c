/*
 * bench_mapcache.c - `xc-colo bench mapcache`: page reads through the map
 * cache, against stock per-batch mapping and one persistent mapping.
 *
 * A save with three iterations reads every page three times. This reads
 * every page of a sim guest in three passes, in batches of pfns as the save
 * loop hands them out, three ways:
 *   cached      through xcc_map_cache (chunks mapped once, kept);
 *   per-batch   through xcc_map_cache in --no-map-cache mode (map the batch,
 *               read it, unmap it: stock Xen);
 *   persistent  one mmap of the whole RAM file: the upper bound.
 * Each page is read whole (every 8-byte word summed) the same way in all
 * three, and the sums must agree. Each mode's time covers its setup and
 * teardown (creating and freeing the cache, mmap and munmap).
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "cli.h"

#define DEFAULT_MEM (1ull << 30)
#define DEFAULT_REPS 3u
#define MAX_REPS 1000u
#define PASSES 3u        /* a save with three iterations */
#define BATCH_PFNS 1024u /* stock Xen's MAX_BATCH_SIZE */
#define FILL_BLOCK (1u << 20)
#define SIM_DIR "/dev/shm/xc-colo"
#define GB 1e9

enum mode { MODE_CACHED, MODE_PER_BATCH, MODE_PERSISTENT, NR_MODES };
static const char *const mode_name[NR_MODES] = {"cached", "per-batch",
                                                "persistent"};

struct run {
    double seconds;
    uint64_t sum;
    uint64_t errors;
    struct xcc_map_cache_stats st; /* cache modes */
};

struct bench {
    xcc_domain *d;
    const char *ram_path;
    uint64_t nr_pfns;
    uint32_t page_size;
    uint64_t *pfns;
    uint8_t **pages;
    int *err;
};

/* Reads every byte of the page, 8 at a time, in four independent sums so
 * the loop is bound by memory rather than by one add chain. */
static __attribute__((noinline)) uint64_t read_page(const uint8_t *page,
                                                    size_t len)
{
    const uint64_t *w = (const uint64_t *)page;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;

    for (size_t i = 0; i < len / 8; i += 4) {
        s0 += w[i];
        s1 += w[i + 1];
        s2 += w[i + 2];
        s3 += w[i + 3];
    }
    return s0 + s1 + s2 + s3;
}

static uint64_t read_batch(struct bench *b, size_t n, uint64_t *errors)
{
    uint64_t sum = 0;

    for (size_t i = 0; i < n; i++) {
        if (b->pages[i])
            sum += read_page(b->pages[i], b->page_size);
        else
            (*errors)++;
    }
    return sum;
}

/* Fills b->pfns with the batch of pfns from base, as the save loop hands
 * them out (BATCH_PFNS at a time, the last one short); returns its size. */
static size_t fill_batch(struct bench *b, uint64_t base)
{
    size_t n = b->nr_pfns - base < BATCH_PFNS ? (size_t)(b->nr_pfns - base)
                                              : BATCH_PFNS;

    for (size_t i = 0; i < n; i++)
        b->pfns[i] = base + i;
    return n;
}

static int run_cache(struct bench *b, bool per_batch, struct run *r)
{
    struct xcc_map_cache_params p;
    double t0;
    xcc_map_cache *mc;

    xcc_map_cache_params_init(&p);
    p.per_batch = per_batch;
    t0 = bench_now_s();
    mc = xcc_map_cache_new(b->d, &p);

    if (!mc) {
        cli_error("bench mapcache: cannot create the map cache: %s",
                  xcc_strerror(errno));
        return -1;
    }
    for (unsigned pass = 0; pass < PASSES; pass++) {
        for (uint64_t base = 0; base < b->nr_pfns; base += BATCH_PFNS) {
            size_t n = fill_batch(b, base);
            size_t done = 0;

            while (done < n) {
                int64_t k = xcc_map_cache_lookup(mc, b->pfns + done, n - done,
                                                 b->pages, b->err);
                if (k < 0) {
                    cli_error("bench mapcache: lookup of pfn %#" PRIx64
                              " failed: %s",
                              b->pfns[done], xcc_strerror(errno));
                    xcc_map_cache_free(mc);
                    return -1;
                }
                r->sum += read_batch(b, (size_t)k, &r->errors);
                xcc_map_cache_release(mc);
                done += (size_t)k;
            }
        }
    }
    xcc_map_cache_get_stats(mc, &r->st);
    xcc_map_cache_free(mc);
    r->seconds = bench_now_s() - t0;
    return 0;
}

static int run_persistent(struct bench *b, struct run *r)
{
    size_t len = (size_t)(b->nr_pfns * b->page_size);
    double t0 = bench_now_s();
    int fd = open(b->ram_path, O_RDONLY | O_CLOEXEC);
    uint8_t *map;

    if (fd < 0) {
        cli_error("bench mapcache: %s: %s", b->ram_path, strerror(errno));
        return -1;
    }
    map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        cli_error("bench mapcache: mmap %s: %s", b->ram_path, strerror(errno));
        return -1;
    }
    for (unsigned pass = 0; pass < PASSES; pass++) {
        for (uint64_t base = 0; base < b->nr_pfns; base += BATCH_PFNS) {
            /* The same batch bookkeeping as the cache modes. */
            size_t n = fill_batch(b, base);

            for (size_t i = 0; i < n; i++)
                b->pages[i] = map + b->pfns[i] * b->page_size;
            r->sum += read_batch(b, n, &r->errors);
        }
    }
    munmap(map, len);
    r->seconds = bench_now_s() - t0;
    return 0;
}

/* What the timing loop's callbacks fill in. */
struct timing {
    struct bench *b;
    struct run last[NR_MODES]; /* each mode's run in the current rep */
    double *gbs[NR_MODES];     /* GB/s, by mode and rep */
};

static int run_mode(void *opaque, unsigned rep, unsigned m)
{
    struct timing *t = opaque;
    struct bench *b = t->b;
    struct run r = {0};
    int rc = m == MODE_PERSISTENT ? run_persistent(b, &r)
                                  : run_cache(b, m == MODE_PER_BATCH, &r);

    if (rc < 0)
        return -1;
    if (r.errors) {
        cli_error("bench mapcache: %s: %" PRIu64 " pages could not be mapped",
                  mode_name[m], r.errors);
        return -1;
    }
    t->gbs[m][rep] =
        (double)PASSES * (double)b->nr_pfns * b->page_size / r.seconds / GB;
    t->last[m] = r;
    return 0;
}

/* The three modes read the same bytes, or one of them is wrong. */
static int check_sums(void *opaque, unsigned rep)
{
    const struct run *last = ((struct timing *)opaque)->last;

    if (last[MODE_CACHED].sum != last[MODE_PERSISTENT].sum ||
        last[MODE_PER_BATCH].sum != last[MODE_PERSISTENT].sum) {
        cli_error("bench mapcache: the modes read different bytes "
                  "(sums %#" PRIx64 ", %#" PRIx64 ", %#" PRIx64 ")",
                  last[MODE_CACHED].sum, last[MODE_PER_BATCH].sum,
                  last[MODE_PERSISTENT].sum);
        return -1;
    }
    return 0;
}

/* Fills the RAM file with non-zero bytes, so the reads touch real pages
 * (a hole in tmpfs would read the shared zero page). */
static int fill_ram(const char *path, uint64_t bytes)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    uint64_t *block = malloc(FILL_BLOCK);
    int rc = -1;

    if (fd < 0 || !block) {
        cli_error("bench mapcache: %s: %s", path, strerror(errno));
        goto out;
    }
    for (uint64_t off = 0; off < bytes; off += FILL_BLOCK) {
        size_t len =
            bytes - off < FILL_BLOCK ? (size_t)(bytes - off) : FILL_BLOCK;

        for (size_t i = 0; i < len / 8; i++)
            block[i] = ((off / 8 + i) * 0x9E3779B97F4A7C15ull) | 1;
        if (pwrite(fd, block, len, (off_t)off) != (ssize_t)len) {
            cli_error("bench mapcache: writing %s: %s", path, strerror(errno));
            goto out;
        }
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    free(block);
    return rc;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: xc-colo bench mapcache [--mem SIZE] [--reps N] [--json]\n"
            "Reads every page of a fresh sim guest of SIZE (default 1G) in "
            "%u passes of\n%u-pfn batches through the map cache, through "
            "per-batch map+unmap\n(--no-map-cache, as stock Xen) and through "
            "one persistent mmap. Prints\nmedians over N reps (default %u).\n"
            "  --json   one JSON object on stdout\n"
            "  -v, -q   more or less logging\n",
            PASSES, BATCH_PFNS, DEFAULT_REPS);
}

int bench_mapcache(int argc, char **argv)
{
    static const struct option opts[] = {
        BENCH_LONG_OPTIONS,
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0},
    };
    uint64_t mem = DEFAULT_MEM, reps = DEFAULT_REPS;
    bool json = false;
    int verbosity = 0, c, ret = EXIT_FAIL;
    char name[64], dname[80], ram_path[160];
    xentoollog_logger *log = NULL;
    struct bench b = {0};
    struct timing t = {.b = &b};
    bool created = false;

    optind = 1;
    while ((c = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
        int known = bench_parse_common(c, optarg, "--reps", &mem, &reps, &json);
        if (known < 0)
            return EXIT_USAGE;
        if (known)
            continue;
        switch (c) {
        case 'v':
            verbosity++;
            break;
        case 'q':
            verbosity = -1;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        cli_error("bench mapcache: unexpected argument '%s'", argv[optind]);
        return EXIT_USAGE;
    }
    if (reps == 0 || reps > MAX_REPS) {
        cli_error("bench mapcache: --reps must be 1..%u, got %" PRIu64,
                  MAX_REPS, reps);
        return EXIT_USAGE;
    }
    if (mem < BATCH_PFNS * 4096ull) {
        cli_error("bench mapcache: --mem must be at least 4M, got %" PRIu64,
                  mem);
        return EXIT_USAGE;
    }

    log = cli_logger(verbosity, false);
    snprintf(name, sizeof(name), "bench-mapcache-%d", (int)getpid());
    snprintf(dname, sizeof(dname), "sim:%s", name);
    snprintf(ram_path, sizeof(ram_path), SIM_DIR "/%s/ram", name);
    b.ram_path = ram_path;
    for (int m = 0; m < NR_MODES; m++) {
        t.gbs[m] = calloc(reps, sizeof(double));
        if (!t.gbs[m])
            goto out;
    }
    b.pfns = calloc(BATCH_PFNS, sizeof(*b.pfns));
    b.pages = calloc(BATCH_PFNS, sizeof(*b.pages));
    b.err = calloc(BATCH_PFNS, sizeof(*b.err));
    if (!b.pfns || !b.pages || !b.err)
        goto out;

    if (xcc_sim_create(name, mem, log) != 0) {
        cli_error("bench mapcache: cannot create sim guest %s: %s", name,
                  xcc_strerror(errno));
        goto out;
    }
    created = true;
    if (fill_ram(ram_path, mem) < 0)
        goto out;
    b.d = xcc_domain_open(dname, log, 0);
    if (!b.d) {
        cli_error("bench mapcache: cannot open %s: %s", dname,
                  xcc_strerror(errno));
        goto out;
    }
    if (xcc_domain_get_info(b.d, &b.nr_pfns, &b.page_size) < 0 ||
        b.page_size % 32) {
        cli_error("bench mapcache: bad domain info for %s", dname);
        goto out;
    }

    if (bench_interleave((unsigned)reps, NR_MODES, run_mode, check_sums, &t))
        goto out;

    {
        double cached = bench_median(t.gbs[MODE_CACHED], (unsigned)reps);
        double per_batch = bench_median(t.gbs[MODE_PER_BATCH], (unsigned)reps);
        double persistent =
            bench_median(t.gbs[MODE_PERSISTENT], (unsigned)reps);
        double page_gb = b.page_size / GB;
        const struct xcc_map_cache_stats *cs = &t.last[MODE_CACHED].st;
        const struct xcc_map_cache_stats *ps = &t.last[MODE_PER_BATCH].st;

        if (json) {
            printf("{\"mem_bytes\":%" PRIu64 ",\"page_size\":%" PRIu32
                   ",\"passes\":%u,\"batch_pfns\":%u,\"reps\":%" PRIu64
                   ",\"cached_gbs\":%.3f,\"per_batch_gbs\":%.3f,"
                   "\"persistent_gbs\":%.3f,\"cached_pages_per_s\":%.0f,"
                   "\"per_batch_pages_per_s\":%.0f,"
                   "\"persistent_pages_per_s\":%.0f,\"ratio\":%.3f,"
                   "\"cached_vs_persistent\":%.3f,"
                   "\"cached_map_calls\":%" PRIu64 ",\"cached_hits\":%" PRIu64
                   ",\"cached_misses\":%" PRIu64
                   ",\"cached_max_resident\":%" PRIu64
                   ",\"per_batch_map_calls\":%" PRIu64 "}\n",
                   mem, b.page_size, PASSES, BATCH_PFNS, reps, cached,
                   per_batch, persistent, cached / page_gb, per_batch / page_gb,
                   persistent / page_gb, cached / per_batch,
                   cached / persistent, cs->map_calls, cs->hits, cs->misses,
                   cs->max_resident, ps->map_calls);
        } else {
            printf("mapcache: %.2f GiB sim guest, %u passes, %u-pfn "
                   "batches, median of %" PRIu64 " reps\n",
                   (double)mem / (1u << 30), PASSES, BATCH_PFNS, reps);
            printf("  %-11s %12.0f pages/s %7.2f GB/s  (%" PRIu64
                   " map calls, %" PRIu64 " hits, %" PRIu64 " misses)\n",
                   "cached", cached / page_gb, cached, cs->map_calls, cs->hits,
                   cs->misses);
            printf("  %-11s %12.0f pages/s %7.2f GB/s  (%" PRIu64
                   " map calls)\n",
                   "per-batch", per_batch / page_gb, per_batch, ps->map_calls);
            printf("  %-11s %12.0f pages/s %7.2f GB/s  (one mmap)\n",
                   "persistent", persistent / page_gb, persistent);
            printf("  ratio cached/per-batch %.2f, cached/persistent %.2f\n",
                   cached / per_batch, cached / persistent);
        }
    }
    ret = EXIT_OK;
out:
    xcc_domain_close(b.d);
    if (created && xcc_sim_stop(name, log) != 0)
        cli_error("bench mapcache: cannot remove sim guest %s: %s", name,
                  xcc_strerror(errno));
    for (int m = 0; m < NR_MODES; m++)
        free(t.gbs[m]);
    free(b.pfns);
    free(b.pages);
    free(b.err);
    if (log)
        xtl_logger_destroy(log);
    return ret;
}
