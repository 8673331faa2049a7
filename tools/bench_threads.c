/*
 * bench_threads.c - `xc-colo bench threads`: the paused delta passes of a
 * checkpointed sim guest for several --threads counts, against one thread
 * in the same run.
 *
 * A paused XBZRLE pass is the CPU-bound part of a save: the guest is
 * stopped, every dirty page is copied once, compared with its cached copy
 * and encoded. Checkpoint mode makes one such pass per epoch, so each rep
 * checkpoints the guest EPOCHS times (--xbzrle, a cache as large as the
 * guest so re-dirtied pages hit, --no-verify) into a file on tmpfs, which
 * copies every byte. The figures come from the checkpointer's statistics,
 * over the paused passes only:
 *   encode  pages per second of the wall time spent classifying and
 *           encoding (the part the threads share);
 *   pass    pages per second of the whole passes (also mapping and the
 *           one writer thread);
 *   bytes per page and cache misses per page of those passes, to show
 *           that cutting the cache into shards costs no hits.
 * Thread counts are interleaved within each rep, so a slower stretch of a
 * loaded machine hits them all. Each figure is the median over every paused
 * pass of every rep (passes under 64 pages, timer noise, left out); the
 * ratio is to the first count of --threads (1 by default).
 *
 * The machine's own ceiling is measured beside every run, with the same
 * number of threads, two ways, so that two vCPUs of a VM that share a core,
 * or a memory bus that two copies fill, show in the baseline instead of
 * being charged to --threads:
 *   memory   each thread copies 4 KiB pages out of 16 MiB of its own into a
 *            stage page and compares the copy with a reference page (what a
 *            delta pass does to every page, without the encoding);
 *   compute  each thread XBZRLE-encodes one pair of pages that stay in its
 *            L1 cache, a tenth of the bytes changed (the encoding without
 *            the memory).
 * A delta pass does both, so its scaling can be expected between the two.
 */
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "cli.h"

#define DEFAULT_MEM (64ull << 20)
#define MIN_MEM (32ull << 20)
#define DEFAULT_REPS 5u
#define MAX_REPS 50u
#define DEFAULT_EPOCHS 8u
#define DEFAULT_INTERVAL_MS 50u
#define MAX_COUNTS 8u

/* The cells: the seed's hot loop, and random writes of a tenth and of half
 * of each page (issue 16's CPU-bound cells). 100000 pages/s gives a few
 * thousand dirty pages per 50 ms epoch. */
static const char *const cells[] = {"hotpages", "random:100000:0.1",
                                    "random:100000:0.5"};
#define NCELLS (sizeof(cells) / sizeof(cells[0]))

static void usage(FILE *out)
{
    fprintf(out,
            "usage: xc-colo bench threads [--json] [--mem SIZE] [--reps N]\n"
            "                             [--threads LIST] [--epochs N]\n"
            "                             [--interval MS]\n\n"
            "Checkpoints a sim guest (default 64M) with --xbzrle into a "
            "tmpfs file, for\neach thread count of LIST (default 1,2,4), "
            "EPOCHS paused passes each\n(default %u, %u ms apart), on the "
            "workloads hotpages, random:100000:0.1 and\nrandom:100000:0.5. "
            "Pages per second of encoding (classify + encode wall\ntime) "
            "and of the whole paused pass, medians of N reps (default %u), "
            "and\nthe ratio to the first count. Beside every run, the "
            "machine's own ceiling\nfor as many threads: page copies and "
            "compares over 16 MiB per thread\n(memory) and XBZRLE encoding "
            "of a page pair in L1 (compute).\n",
            DEFAULT_EPOCHS, DEFAULT_INTERVAL_MS, DEFAULT_REPS);
}

/* Parses "1,2,4" into counts[]; -1 after a message. */
static int parse_counts(const char *arg, unsigned *counts, unsigned *n)
{
    const char *p = arg;

    *n = 0;
    while (*p) {
        char *end;
        unsigned long v = strtoul(p, &end, 10);

        if (end == p || v < 1 || v > XCC_SAVE_MAX_THREADS ||
            (*end && *end != ',') || *n == MAX_COUNTS) {
            cli_error("bench threads: --threads: expected up to %u counts "
                      "1..%u separated by commas, got '%s'",
                      MAX_COUNTS, XCC_SAVE_MAX_THREADS, arg);
            return -1;
        }
        counts[(*n)++] = (unsigned)v;
        p = *end ? end + 1 : end;
    }
    if (!*n) {
        cli_error("bench threads: --threads: empty list");
        return -1;
    }
    return 0;
}

/* The figures of every paused pass of one (cell, thread count). */
struct samples {
    double *encode, *pass, *bytes, *misses; /* per page or pages per s */
    size_t n, cap;
    double *machine, *machine_cpu; /* the ceilings' pages per second, one
                                    * per run: memory, compute */
    size_t n_machine;
};

/* ---- The machine's ceiling ------------------------------------------------ */

#define CEIL_PAGE 4096u
#define CEIL_BUF (16ull << 20) /* per thread: 2 x 16 MiB, past a 32 MiB L3 */
#define CEIL_PASSES 4u

struct ceil_thread {
    _Alignas(64) uint8_t *src, *ref; /* ref: src with each page's last byte
                                       * changed, so memcmp reads it all */
    uint8_t stage[CEIL_PAGE];
    uint8_t old[CEIL_PAGE], cur[CEIL_PAGE], enc[CEIL_PAGE]; /* compute */
    bool compute;
    pthread_t t;
    uint64_t differ;
};

static void *ceil_work(void *p)
{
    struct ceil_thread *c = p;
    uint64_t differ = 0;

    for (unsigned r = 0; r < CEIL_PASSES; r++)
        for (size_t off = 0; off < CEIL_BUF; off += CEIL_PAGE) {
            if (c->compute) {
                differ += xcc_xbzrle_encode(c->old, c->cur, CEIL_PAGE, c->enc,
                                            sizeof(c->enc)) > 0;
                continue;
            }
            memcpy(c->stage, c->src + off, CEIL_PAGE);
            differ += memcmp(c->stage, c->ref + off, CEIL_PAGE) != 0;
        }
    c->differ = differ;
    return NULL;
}

/* Buffers for up to n threads, written once so that no run faults. */
static struct ceil_thread *ceil_new(unsigned n)
{
    struct ceil_thread *c = aligned_alloc(64, n * sizeof(*c));

    if (!c)
        return NULL;
    memset(c, 0, n * sizeof(*c));
    for (unsigned k = 0; k < n; k++) {
        c[k].src = malloc(CEIL_BUF);
        c[k].ref = malloc(CEIL_BUF);
        if (!c[k].src || !c[k].ref) {
            for (unsigned j = 0; j <= k; j++) {
                free(c[j].src);
                free(c[j].ref);
            }
            free(c);
            return NULL;
        }
        for (size_t i = 0; i < CEIL_BUF; i++)
            c[k].src[i] = (uint8_t)(i * 131 + k);
        memcpy(c[k].ref, c[k].src, CEIL_BUF);
        for (size_t off = CEIL_PAGE - 1; off < CEIL_BUF; off += CEIL_PAGE)
            c[k].ref[off] ^= 1;
        /* A tenth of the bytes changed, at random places. */
        uint32_t x = 2463534242u + k;
        memcpy(c[k].old, c[k].src, CEIL_PAGE);
        memcpy(c[k].cur, c[k].old, CEIL_PAGE);
        for (unsigned i = 0; i < CEIL_PAGE / 10; i++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            c[k].cur[x % CEIL_PAGE] ^= (uint8_t)(x >> 24) | 1;
        }
    }
    return c;
}

static void ceil_free(struct ceil_thread *c, unsigned n)
{
    for (unsigned k = 0; c && k < n; k++) {
        free(c[k].src);
        free(c[k].ref);
    }
    free(c);
}

/* n threads at once (the caller is one of them), memory or compute;
 * pages per second of all together, or -1 when a thread could not start. */
static double ceil_run(struct ceil_thread *c, unsigned n, bool compute)
{
    const uint64_t pages = (uint64_t)n * CEIL_PASSES * (CEIL_BUF / CEIL_PAGE);
    unsigned started = 1;
    double t0 = bench_now_s(), dt;

    for (unsigned k = 0; k < n; k++)
        c[k].compute = compute;
    for (; started < n; started++)
        if (pthread_create(&c[started].t, NULL, ceil_work, &c[started]))
            break;
    ceil_work(&c[0]);
    for (unsigned k = 1; k < started; k++)
        pthread_join(c[k].t, NULL);
    dt = bench_now_s() - t0;
    for (unsigned k = 0; k < started; k++)
        if (c[k].differ != CEIL_PASSES * (CEIL_BUF / CEIL_PAGE))
            return -1; /* the comparison did not read every page */
    return started == n && dt > 0 ? (double)pages / dt : -1;
}

/* Appends the paused passes of a checkpointer's statistics with at least
 * MIN_PASS_PAGES pages (fewer are timer noise). -1 when there was none. */
#define MIN_PASS_PAGES 64.0
static int paused_passes(const char *json, struct samples *sm)
{
    json_object *root = json ? json_tokener_parse(json) : NULL, *iters, *v;
    size_t n0 = sm->n;

    if (!root || !json_object_object_get_ex(root, "iterations", &iters)) {
        json_object_put(root);
        return -1;
    }
    for (size_t i = 0; i < json_object_array_length(iters) && sm->n < sm->cap;
         i++) {
        json_object *it = json_object_array_get_idx(iters, i);
        double f[5] = {0};
        static const char *const keys[5] = {"pages", "encode-ms", "duration-ms",
                                            "bytes", "cache-miss"};

        if (!json_object_object_get_ex(it, "paused", &v) ||
            !json_object_get_boolean(v))
            continue;
        for (int k = 0; k < 5; k++)
            if (json_object_object_get_ex(it, keys[k], &v))
                f[k] = json_object_get_double(v);
        if (f[0] < MIN_PASS_PAGES || f[1] <= 0 || f[2] <= 0)
            continue;
        sm->encode[sm->n] = f[0] / (f[1] / 1e3);
        sm->pass[sm->n] = f[0] / (f[2] / 1e3);
        sm->bytes[sm->n] = f[3] / f[0];
        sm->misses[sm->n] = f[4] / f[0];
        sm->n++;
    }
    json_object_put(root);
    return sm->n > n0 ? 0 : -1;
}

/* One checkpoint run of d into fd with `threads`; its paused passes. */
static int checkpoint_run(xcc_domain *d, int fd, uint64_t mem, unsigned threads,
                          unsigned epochs, unsigned interval_ms,
                          xentoollog_logger *log, struct samples *sm)
{
    struct xcc_save_params sp;
    struct xcc_checkpoint_params cp;
    xcc_checkpointer *c;
    int rc;

    if (ftruncate(fd, 0) < 0 || lseek(fd, 0, SEEK_SET) < 0)
        return -1;
    xcc_save_params_init(&sp);
    sp.xbzrle = 1;
    sp.cache_size = mem;
    sp.verify = 0;
    sp.progress = 0;
    sp.threads = threads;
    xcc_checkpoint_params_init(&cp);
    cp.count = epochs;
    cp.interval_ms = interval_ms;
    cp.back_fd = -1;
    c = xcc_checkpointer_new(d, fd, &sp, &cp, log);
    if (!c)
        return -1;
    rc = xcc_checkpointer_run(c);
    if (rc == 0 && paused_passes(xcc_checkpointer_stats_json(c), sm) < 0) {
        errno = EPROTO;
        rc = -1;
    }
    xcc_checkpointer_free(c);
    /* The checkpointer leaves the guest paused, as a save does: the
     * caller measures the ceiling, then continues it. */
    return rc;
}

/* One cell's timing loop: the guest and what each run needs. */
struct cell_run {
    const char *cell;
    xcc_domain *d;
    int fd;
    uint64_t mem;
    const unsigned *counts;
    unsigned epochs, interval_ms;
    xentoollog_logger *log;
    struct samples *sm; /* by index into counts */
    struct ceil_thread *ceil;
};

static int run_count(void *opaque, unsigned rep, unsigned k)
{
    struct cell_run *cr = opaque;

    if (checkpoint_run(cr->d, cr->fd, cr->mem, cr->counts[k], cr->epochs,
                       cr->interval_ms, cr->log, &cr->sm[k]) < 0) {
        cli_error("bench threads: %s, --threads %u: %s", cr->cell,
                  cr->counts[k], xcc_strerror(errno));
        (void)xcc_domain_unpause(cr->d);
        return -1;
    }
    /* The ceiling right after the run it is the baseline of, with the
     * guest still paused, as in the passes measured. */
    struct samples *x = &cr->sm[k];
    double r = ceil_run(cr->ceil, cr->counts[k], false);
    double rc = ceil_run(cr->ceil, cr->counts[k], true);

    if (xcc_domain_unpause(cr->d) < 0) {
        cli_error("bench threads: cannot continue the guest of %s: %s",
                  cr->cell, xcc_strerror(errno));
        return -1;
    }
    if (r < 0 || rc < 0) {
        cli_error("bench threads: the machine's ceiling with %u threads "
                  "could not run", cr->counts[k]);
        return -1;
    }
    x->machine[x->n_machine] = r;
    x->machine_cpu[x->n_machine++] = rc;
    return 0;
}

int bench_threads(int argc, char **argv)
{
    static const struct option opts[] = {
        BENCH_LONG_OPTIONS,
        {"threads", required_argument, NULL, 't'},
        {"epochs", required_argument, NULL, 'e'},
        {"interval", required_argument, NULL, 'i'},
        {"verbose", no_argument, NULL, 'v'},
        {NULL, 0, NULL, 0},
    };
    uint64_t mem = DEFAULT_MEM, reps = DEFAULT_REPS, v;
    unsigned counts[MAX_COUNTS] = {1, 2, 4}, ncounts = 3;
    unsigned epochs = DEFAULT_EPOCHS, interval_ms = DEFAULT_INTERVAL_MS;
    bool json = false;
    int opt, rc, verbosity = 0, ret = EXIT_FAIL, fd = -1;
    char name[64], dname[80], path[128] = "";
    struct samples sm[NCELLS][MAX_COUNTS];
    bool alloc_ok = true;
    unsigned max_count = 1;
    struct ceil_thread *ceil = NULL;
    xentoollog_logger *log = NULL;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
        rc = bench_parse_common(opt, optarg, "--reps", &mem, &reps, &json);
        if (rc < 0)
            return EXIT_USAGE;
        if (rc)
            continue;
        switch (opt) {
        case 't':
            if (parse_counts(optarg, counts, &ncounts) < 0)
                return EXIT_USAGE;
            break;
        case 'e':
        case 'i':
            if (cli_parse_u64(optarg, opt == 'e' ? "--epochs" : "--interval",
                              &v) < 0)
                return EXIT_USAGE;
            if (v < 1 || v > 10000) {
                cli_error("bench threads: %s: expected 1..10000",
                          opt == 'e' ? "--epochs" : "--interval");
                return EXIT_USAGE;
            }
            *(opt == 'e' ? &epochs : &interval_ms) = (unsigned)v;
            break;
        case 'v':
            verbosity++;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc) {
        cli_error("bench threads: unexpected argument '%s'", argv[optind]);
        return EXIT_USAGE;
    }
    if (reps < 1 || reps > MAX_REPS || mem < MIN_MEM) {
        cli_error("bench threads: --reps 1..%u, --mem at least 32M", MAX_REPS);
        return EXIT_USAGE;
    }

    log = cli_logger(verbosity, false);
    memset(sm, 0, sizeof(sm));
    for (size_t c = 0; c < NCELLS; c++)
        for (unsigned k = 0; k < MAX_COUNTS; k++) {
            struct samples *x = &sm[c][k];

            /* Every epoch's pass, and the closing one, of every rep. */
            x->cap = reps * (epochs + 2);
            x->encode = calloc(x->cap, sizeof(double));
            x->pass = calloc(x->cap, sizeof(double));
            x->bytes = calloc(x->cap, sizeof(double));
            x->misses = calloc(x->cap, sizeof(double));
            x->machine = calloc(reps, sizeof(double));
            x->machine_cpu = calloc(reps, sizeof(double));
            if (!x->encode || !x->pass || !x->bytes || !x->misses ||
                !x->machine || !x->machine_cpu)
                alloc_ok = false;
        }
    for (unsigned k = 0; k < ncounts; k++)
        if (counts[k] > max_count)
            max_count = counts[k];
    ceil = ceil_new(max_count);
    if (!ceil)
        alloc_ok = false;
    snprintf(path, sizeof(path), "/dev/shm/xc-colo-bench-threads-%d.img",
             (int)getpid());
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (!alloc_ok || fd < 0) {
        cli_error("bench threads: cannot set up (%s): %s", path,
                  strerror(errno));
        goto out;
    }
    if (json)
        printf("{\"bench\": \"threads\", \"mem-bytes\": %" PRIu64
               ", \"reps\": %" PRIu64 ", \"epochs\": %u, \"interval-ms\": %u,"
               " \"cpus\": %ld, \"cells\": [",
               mem, reps, epochs, interval_ms, sysconf(_SC_NPROCESSORS_ONLN));
    else
        printf(
            "paused XBZRLE passes of a %" PRIu64 " MiB sim guest, %u "
            "checkpoints %u ms apart into tmpfs, %ld CPUs, median of %" PRIu64
            " reps\n",
            mem >> 20, epochs, interval_ms, sysconf(_SC_NPROCESSORS_ONLN),
            reps);
    for (size_t cell = 0; cell < NCELLS; cell++) {
        xcc_domain *d = NULL;

        snprintf(name, sizeof(name), "bench-threads-%d-%zu", (int)getpid(),
                 cell);
        snprintf(dname, sizeof(dname), "sim:%s", name);
        if (xcc_sim_start(name, mem, cells[cell], 1, NULL, NULL, log) < 0) {
            cli_error("bench threads: cannot start sim guest %s (%s): %s", name,
                      cells[cell], xcc_strerror(errno));
            goto out;
        }
        d = xcc_domain_open(dname, log, 0);
        rc = d ? 0 : -1;
        if (!d)
            cli_error("bench threads: cannot open %s: %s", dname,
                      xcc_strerror(errno));
        if (rc == 0) {
            struct cell_run cr = {.cell = cells[cell],
                                  .d = d,
                                  .fd = fd,
                                  .mem = mem,
                                  .counts = counts,
                                  .epochs = epochs,
                                  .interval_ms = interval_ms,
                                  .log = log,
                                  .sm = sm[cell],
                                  .ceil = ceil};

            rc =
                bench_interleave((unsigned)reps, ncounts, run_count, NULL, &cr);
        }
        xcc_domain_close(d);
        if (xcc_sim_stop(name, log) < 0)
            cli_error("bench threads: cannot remove sim guest %s: %s", name,
                      xcc_strerror(errno));
        if (rc < 0)
            goto out;

        double base_enc = 0, base_pass = 0, base_mach = 0, base_cpu = 0;
        if (json)
            printf("%s{\"workload\": \"%s\", \"rows\": [", cell ? ", " : "",
                   cells[cell]);
        else
            printf("  %s\n", cells[cell]);
        for (unsigned k = 0; k < ncounts; k++) {
            struct samples *x = &sm[cell][k];
            unsigned n = (unsigned)x->n;
            double e = bench_median(x->encode, n);
            double p = bench_median(x->pass, n);
            double b = bench_median(x->bytes, n);
            double m = bench_median(x->misses, n);
            double mach = bench_median(x->machine, (unsigned)x->n_machine);
            double cpu = bench_median(x->machine_cpu, (unsigned)x->n_machine);

            if (k == 0) {
                base_enc = e;
                base_pass = p;
                base_mach = mach;
                base_cpu = cpu;
            }
            if (json)
                printf("%s{\"threads\": %u, \"encode-pages-per-s\": %.0f, "
                       "\"pass-pages-per-s\": %.0f, \"encode-ratio\": %.3f, "
                       "\"pass-ratio\": %.3f, \"bytes-per-page\": %.1f, "
                       "\"misses-per-page\": %.4f, \"passes\": %u, "
                       "\"machine-pages-per-s\": %.0f, "
                       "\"machine-ratio\": %.3f, "
                       "\"machine-compute-pages-per-s\": %.0f, "
                       "\"machine-compute-ratio\": %.3f}",
                       k ? ", " : "", counts[k], e, p, e / base_enc,
                       p / base_pass, b, m, n, mach, mach / base_mach, cpu,
                       cpu / base_cpu);
            else
                printf("    --threads %-2u  encode %9.0f pages/s (%.2fx)  "
                       "pass %9.0f pages/s (%.2fx)  %6.1f B/page  %.3f "
                       "misses/page  (%u passes)  machine: memory %.2fx, "
                       "compute %.2fx\n",
                       counts[k], e, e / base_enc, p, p / base_pass, b, m, n,
                       mach / base_mach, cpu / base_cpu);
        }
        if (json)
            printf("]}");
    }
    if (json)
        printf("]}\n");
    ret = EXIT_OK;
out:
    if (fd >= 0)
        close(fd);
    if (path[0])
        unlink(path);
    for (size_t c = 0; c < NCELLS; c++)
        for (unsigned k = 0; k < MAX_COUNTS; k++) {
            free(sm[c][k].encode);
            free(sm[c][k].pass);
            free(sm[c][k].bytes);
            free(sm[c][k].misses);
            free(sm[c][k].machine);
            free(sm[c][k].machine_cpu);
        }
    ceil_free(ceil, max_count);
    if (log)
        xtl_logger_destroy(log);
    return ret;
}
