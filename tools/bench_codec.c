/*
 * bench_codec.c - `xc-colo bench codec`: XBZRLE encode and decode speed.
 *
 * Encodes MIB MiB of 4 KiB page pairs, one page at a time into one reused
 * buffer of a page (as a save loop does; a delta that does not fit in a page
 * is not worth sending), on one thread, for three workloads:
 *   sparse  4 random bytes changed per page;
 *   rand10  each byte changed with probability 10%;
 *   rand50  each byte changed with probability 50% (about half the pages
 *           overflow the page-sized buffer).
 * Baselines, measured in the same run, interleaved with the encodes so the
 * machine's noise hits both alike:
 *   memcmp  memcmp() of each page against an equal copy of itself, i.e. a
 *           full read of both pages (memcmp of the changed pages would stop
 *           at the first difference and measure nothing);
 *   memcpy  memcpy() of each new page onto its target page.
 * Decode applies each stored delta onto the target pages and is compared
 * with memcpy of the page, i.e. copying its 4096 bytes (the cost of
 * sending the page whole instead). Both are in bytes of page data per
 * second: decode counts 4096 bytes for each page that has a delta, and its
 * timed loop skips the pages without one (equal pages; for rand50 the
 * ~51% that overflow and would be sent whole), at the cost of one test
 * each. So rand50's decode figure is over the pages that did encode; those
 * are the less dense half (fewer runs), a mild bias in decode's favour.
 * Every figure is the median of REPS repetitions, in GB/s (10^9 bytes of
 * page data per second).
 *
 * GB/s and the ratios to memcmp/memcpy depend on the machine (memcmp alone
 * ran at 7.3 GB/s on one Xeon and 17.9 GB/s on an EPYC). Each figure also
 * comes as cycles per page, which holds better across machines: core
 * cycles counted by the kernel's perf counter (PERF_COUNT_HW_CPU_CYCLES, the
 * counter `perf stat -e cycles` reads) over the timed loop where the kernel
 * offers it, else the thread's CPU time times the TSC frequency (measured
 * against CLOCK_MONOTONIC_RAW), i.e. cycles at the nominal clock: the
 * JSON's "cycles" says which. Decode is timed for each path the CPU has
 * (scalar and avx2 decode with the generic decoder; avx512 picks its
 * decoder per delta by length, see xbzrle.c).
 */
#include <linux/perf_event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "bench_util.h"
#include "cli.h"

#define BENCH_PAGE 4096u
#define BENCH_DEFAULT_MIB 64u
#define BENCH_DEFAULT_REPS 5u
#define BENCH_MAX_REPS 101u
#define BENCH_SPARSE_BYTES 4u /* changed bytes per page, as the sparse delta */
#define BENCH_NIMPLS 3
#define BENCH_NWORKLOADS 4

static const char *const impl_names[BENCH_NIMPLS] = {"scalar", "avx2",
                                                    "avx512"};

struct workload {
    const char *name;
    const char *what;
    unsigned sparse_bytes; /* or 0: density below */
    double density;
};

static const struct workload workloads[BENCH_NWORKLOADS] = {
    {"sparse", "4 changed bytes per page", BENCH_SPARSE_BYTES, 0},
    {"sparse16", "16 changed bytes per page", 16, 0},
    {"rand10", "10% of bytes random", 0, 0.10},
    {"rand50", "50% of bytes random", 0, 0.50},
};

struct result {
    double memcmp_gbs, memcpy_gbs, decode_gbs;
    double encode_gbs[BENCH_NIMPLS], dec_gbs[BENCH_NIMPLS];
    /* Cycles per page of each figure (decode: per page with a delta). */
    double memcmp_cpp, memcpy_cpp, encode_cpp[BENCH_NIMPLS],
        dec_cpp[BENCH_NIMPLS];
    int have[BENCH_NIMPLS];
    uint64_t delta_pages, overflow_pages, delta_bytes;
};

/* The compiler that built this program (and, with `make`, the library). */
#if defined(__clang__)
#define BENCH_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define BENCH_COMPILER "gcc " __VERSION__
#else
#define BENCH_COMPILER __VERSION__
#endif

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_next(void)
{
    /* xorshift64*: fast, and good enough to scatter changes. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

/*
 * The clock: this thread's CPU time by default, so that time spent
 * descheduled on a busy machine does not count (the baselines are timed the
 * same way); --wall switches to the monotonic clock.
 */
static clockid_t bench_clock = CLOCK_THREAD_CPUTIME_ID;

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(bench_clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- Cycles ---- */

/* This thread's core-cycle counter, or -1 where the kernel (or the
 * hypervisor) offers none; then cycles come from CPU time x TSC GHz. */
static int cyc_fd = -1;
static double tsc_ghz;
/* Cycles of the last timed loop (set by the time_* functions). */
static double last_cycles;

static void cycles_init(void)
{
    struct perf_event_attr a;
    uint64_t v;

    memset(&a, 0, sizeof(a));
    a.type = PERF_TYPE_HARDWARE;
    a.size = sizeof(a);
    a.config = PERF_COUNT_HW_CPU_CYCLES;
    a.exclude_hv = 1;
    cyc_fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
    /* A counter that opens but never counts is no counter. */
    if (cyc_fd >= 0 && (read(cyc_fd, &v, sizeof(v)) != (ssize_t)sizeof(v))) {
        close(cyc_fd);
        cyc_fd = -1;
    }
#if defined(__x86_64__)
    {
        struct timespec a0, a1;
        uint64_t c0, c1;

        clock_gettime(CLOCK_MONOTONIC_RAW, &a0);
        c0 = __rdtsc();
        do
            clock_gettime(CLOCK_MONOTONIC_RAW, &a1);
        while ((a1.tv_sec - a0.tv_sec) * 1000000000ll +
                   (a1.tv_nsec - a0.tv_nsec) < 50000000ll);
        c1 = __rdtsc();
        tsc_ghz = (double)(c1 - c0) /
                  (double)((a1.tv_sec - a0.tv_sec) * 1000000000ll +
                           (a1.tv_nsec - a0.tv_nsec));
    }
#endif
}

static uint64_t cyc_read(void)
{
    uint64_t v = 0;

    if (cyc_fd >= 0 && read(cyc_fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
        v = 0;
    return v;
}

/* Ends a timed loop begun at (t0 ns, c0 cycles): its ns; last_cycles set. */
static uint64_t timed_end(uint64_t t0, uint64_t c0)
{
    uint64_t t = now_ns() - t0;

    last_cycles = cyc_fd >= 0 ? (double)(cyc_read() - c0) : (double)t * tsc_ghz;
    return t;
}

static const char *cycles_source(void)
{
    return cyc_fd >= 0 ? "perf" : tsc_ghz > 0 ? "tsc-nominal" : "none";
}

static double per_page(double cycles, uint64_t pages)
{
    return pages ? cycles / (double)pages : 0;
}

static double gbs(uint64_t bytes, uint64_t ns)
{
    return ns ? (double)bytes / (double)ns : 0;
}

/* A byte different from b. */
static uint8_t changed(uint8_t b)
{
    return (uint8_t)(b + 1 + rng_next() % 255);
}

static void make_workload(const struct workload *w, const uint8_t *old,
                          uint8_t *new, size_t npages)
{
    memcpy(new, old, npages * BENCH_PAGE);
    for (size_t p = 0; p < npages; p++) {
        uint8_t *pg = new + p * BENCH_PAGE;
        if (w->sparse_bytes) {
            for (unsigned k = 0; k < w->sparse_bytes; k++) {
                size_t at = rng_next() % BENCH_PAGE;
                pg[at] = changed(pg[at]);
            }
            continue;
        }
        /* Probability as a fraction of 2^32, drawn per byte. */
        uint64_t threshold = (uint64_t)(w->density * 4294967296.0);
        for (size_t i = 0; i < BENCH_PAGE; i++)
            if ((rng_next() >> 32) < threshold)
                pg[i] = changed(pg[i]);
    }
}

static volatile uint64_t sink;

static uint64_t time_memcmp(const uint8_t *a, const uint8_t *b, size_t npages)
{
    uint64_t c = cyc_read(), t = now_ns(), acc = 0;

    for (size_t p = 0; p < npages; p++)
        acc += (uint64_t)memcmp(a + p * BENCH_PAGE, b + p * BENCH_PAGE,
                                BENCH_PAGE);
    t = timed_end(t, c);
    sink += acc;
    return t;
}

static uint64_t time_memcpy(uint8_t *dst, const uint8_t *src, size_t npages)
{
    uint64_t c = cyc_read(), t = now_ns();

    for (size_t p = 0; p < npages; p++)
        memcpy(dst + p * BENCH_PAGE, src + p * BENCH_PAGE, BENCH_PAGE);
    t = timed_end(t, c);
    sink += dst[0];
    return t;
}

static uint64_t time_encode(const uint8_t *old, const uint8_t *new,
                            size_t npages, uint8_t *dst, uint64_t *bytes,
                            uint64_t *overflows)
{
    uint64_t c = cyc_read(), t = now_ns(), total = 0, over = 0;

    for (size_t p = 0; p < npages; p++) {
        int r = xcc_xbzrle_encode(old + p * BENCH_PAGE, new + p * BENCH_PAGE,
                                  BENCH_PAGE, dst, BENCH_PAGE);
        if (r < 0)
            over++;
        else
            total += (uint64_t)r;
    }
    t = timed_end(t, c);
    *bytes = total;
    *overflows = over;
    return t;
}

static uint64_t time_decode(const uint8_t *enc, const int *enc_len,
                            uint8_t *target, size_t npages, int *failed)
{
    uint64_t c = cyc_read(), t = now_ns();
    int bad = 0;

    for (size_t p = 0; p < npages; p++)
        if (enc_len[p] > 0)
            bad |= xcc_xbzrle_decode(enc + p * BENCH_PAGE, (size_t)enc_len[p],
                                     target + p * BENCH_PAGE, BENCH_PAGE) < 0;
    t = timed_end(t, c);
    *failed = bad;
    return t;
}

static void cpu_model(char *out, size_t n)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];

    snprintf(out, n, "unknown");
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) || !colon)
            continue;
        colon++;
        while (*colon == ' ' || *colon == '\t')
            colon++;
        colon[strcspn(colon, "\n")] = 0;
        snprintf(out, n, "%s", colon);
        break;
    }
    fclose(f);
}

/* Prints s as a JSON string. */
static void json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: xc-colo bench codec [--json] [--mib N] [--impl NAME] "
            "[--reps N] [--wall]\n\n"
            "XBZRLE encode and decode throughput on N MiB (default %u) of "
            "4 KiB pages,\n"
            "single thread, against memcmp and memcpy of the same pages.\n"
            "  --impl NAME  scalar, avx2, avx512 or auto (default: every "
            "path the CPU has)\n"
            "  --reps N     repetitions, the median is reported (default %u)\n"
            "  --wall       time with the wall clock (default: the thread's "
            "CPU time)\n"
            "  --json       one JSON object on stdout\n",
            BENCH_DEFAULT_MIB, BENCH_DEFAULT_REPS);
}

static void print_text(const struct result *res, const char *cpu,
                       uint64_t mib, unsigned reps, const char *auto_impl,
                       const int *run_impl)
{
    printf("xc-colo bench codec: %" PRIu64 " MiB of %u-byte pages, single "
           "thread, median of %u runs, %s\n",
           mib, BENCH_PAGE, reps,
           bench_clock == CLOCK_MONOTONIC ? "wall clock" : "thread CPU time");
    printf("cpu: %s\ncompiler: %s\npaths:", cpu, BENCH_COMPILER);
    for (int i = 0; i < BENCH_NIMPLS; i++)
        if (run_impl[i])
            printf(" %s", impl_names[i]);
    printf(" (auto picks %s)\n\n", auto_impl);

    printf("encode GB/s (x = ratio to memcmp of the same pages)\n");
    printf("%-8s %8s", "workload", "memcmp");
    for (int i = 0; i < BENCH_NIMPLS; i++)
        if (run_impl[i])
            printf(" %15s", impl_names[i]);
    printf(" %11s %9s\n", "bytes/delta", "overflow");
    for (int w = 0; w < BENCH_NWORKLOADS; w++) {
        const struct result *r = &res[w];
        printf("%-8s %8.2f", workloads[w].name, r->memcmp_gbs);
        for (int i = 0; i < BENCH_NIMPLS; i++) {
            if (!run_impl[i])
                continue;
            char cell[32];
            snprintf(cell, sizeof(cell), "%.2f (%.2fx)", r->encode_gbs[i],
                     r->encode_gbs[i] / r->memcmp_gbs);
            printf(" %15s", cell);
        }
        printf(" %11.0f %8.1f%%\n",
               r->delta_pages ? (double)r->delta_bytes / (double)r->delta_pages
                              : 0,
               100.0 * (double)r->overflow_pages /
                   (double)(r->delta_pages + r->overflow_pages));
    }
    printf("\ndecode GB/s of delta pages (x = ratio to memcpy of the page; "
           "only pages that encoded count)\n");
    printf("%-8s %8s", "workload", "memcpy");
    for (int i = 0; i < BENCH_NIMPLS; i++)
        if (run_impl[i])
            printf(" %15s", impl_names[i]);
    printf("\n");
    for (int w = 0; w < BENCH_NWORKLOADS; w++) {
        printf("%-8s %8.2f", workloads[w].name, res[w].memcpy_gbs);
        for (int i = 0; i < BENCH_NIMPLS; i++) {
            char cell[32];
            if (!run_impl[i])
                continue;
            snprintf(cell, sizeof(cell), "%.2f (%.2fx)", res[w].dec_gbs[i],
                     res[w].dec_gbs[i] / res[w].memcpy_gbs);
            printf(" %15s", cell);
        }
        printf("\n");
    }
    printf("\ncycles per page (%s; decode: per page with a delta)\n",
           cyc_fd >= 0 ? "core cycles, perf counter"
                       : "CPU time x TSC GHz, no perf counter here");
    printf("%-8s %8s %8s", "workload", "memcmp", "memcpy");
    for (int i = 0; i < BENCH_NIMPLS; i++)
        if (run_impl[i])
            printf(" %7s-enc %7s-dec", impl_names[i], impl_names[i]);
    printf("\n");
    for (int w = 0; w < BENCH_NWORKLOADS; w++) {
        printf("%-8s %8.0f %8.0f", workloads[w].name, res[w].memcmp_cpp,
               res[w].memcpy_cpp);
        for (int i = 0; i < BENCH_NIMPLS; i++)
            if (run_impl[i])
                printf(" %11.0f %11.0f", res[w].encode_cpp[i],
                       res[w].dec_cpp[i]);
        printf("\n");
    }
}

static void print_json(const struct result *res, const char *cpu,
                       uint64_t mib, unsigned reps, const char *auto_impl,
                       const int *run_impl, int head)
{
    printf("{\"bench\":\"codec\",\"cpu\":");
    json_str(cpu);
    printf(",\"compiler\":");
    json_str(BENCH_COMPILER);
    printf(",\"mib\":%" PRIu64 ",\"page_size\":%u,\"reps\":%u,\"threads\":1,"
           "\"clock\":\"%s\",\"impl_auto\":",
           mib, BENCH_PAGE, reps,
           bench_clock == CLOCK_MONOTONIC ? "wall" : "thread_cputime");
    json_str(auto_impl);
    printf(",\"cycles\":\"%s\",\"tsc_ghz\":%.4f,", cycles_source(), tsc_ghz);
    printf("\"units\":\"GB/s (1e9 bytes of page data per second), median; "
           "cycles per page (decode: per page with a delta), median\","
           "\"workloads\":[");
    for (int w = 0; w < BENCH_NWORKLOADS; w++) {
        const struct result *r = &res[w];
        printf("%s{\"name\":\"%s\",\"description\":\"%s\","
               "\"memcmp_gbs\":%.4f,\"memcpy_gbs\":%.4f,"
               "\"memcmp_cycles_per_page\":%.1f,"
               "\"memcpy_cycles_per_page\":%.1f,\"encode\":{",
               w ? "," : "", workloads[w].name, workloads[w].what,
               r->memcmp_gbs, r->memcpy_gbs, r->memcmp_cpp, r->memcpy_cpp);
        int first = 1;
        for (int i = 0; i < BENCH_NIMPLS; i++) {
            if (!run_impl[i])
                continue;
            printf("%s\"%s\":{\"gbs\":%.4f,\"ratio_memcmp\":%.4f,"
                   "\"cycles_per_page\":%.1f}",
                   first ? "" : ",", impl_names[i], r->encode_gbs[i],
                   r->encode_gbs[i] / r->memcmp_gbs, r->encode_cpp[i]);
            first = 0;
        }
        printf("},\"decode\":{");
        first = 1;
        for (int i = 0; i < BENCH_NIMPLS; i++) {
            if (!run_impl[i])
                continue;
            printf("%s\"%s\":{\"gbs\":%.4f,\"ratio_memcpy\":%.4f,"
                   "\"cycles_per_page\":%.1f}",
                   first ? "" : ",", impl_names[i], r->dec_gbs[i],
                   r->dec_gbs[i] / r->memcpy_gbs, r->dec_cpp[i]);
            first = 0;
        }
        printf("},\"decode_impl\":\"%s\",\"decode_gbs\":%.4f,"
               "\"decode_ratio_memcpy\":%.4f,\"decode_cycles_per_page\":%.1f,"
               "\"delta_pages\":%" PRIu64 ",\"overflow_pages\":%" PRIu64
               ",\"mean_delta_bytes\":%.1f}",
               impl_names[head], r->decode_gbs, r->decode_gbs / r->memcpy_gbs,
               r->dec_cpp[head], r->delta_pages,
               r->overflow_pages,
               r->delta_pages
                   ? (double)r->delta_bytes / (double)r->delta_pages
                   : 0);
    }
    printf("]}\n");
}

static void *page_alloc(size_t bytes)
{
    void *p = aligned_alloc(BENCH_PAGE, bytes);

    if (p)
        memset(p, 0, bytes); /* fault it in before any timing */
    return p;
}

int bench_codec(int argc, char **argv)
{
    uint64_t mib = BENCH_DEFAULT_MIB, reps64 = BENCH_DEFAULT_REPS;
    const char *only = NULL;
    int json = 0, run_impl[BENCH_NIMPLS] = {0}, status = EXIT_FAIL;
    struct result res[BENCH_NWORKLOADS];
    char cpu[256], auto_impl[16];
    uint8_t *old = NULL, *new = NULL, *target = NULL, *enc = NULL, *dst = NULL;
    int *enc_len = NULL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--wall")) {
            bench_clock = CLOCK_MONOTONIC;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return EXIT_OK;
        } else if ((!strcmp(a, "--mib") || !strcmp(a, "--reps") ||
                    !strcmp(a, "--impl") || !strcmp(a, "--path")) &&
                   i + 1 < argc) {
            const char *v = argv[++i];
            if (!strcmp(a, "--mib")) {
                if (cli_parse_u64(v, "--mib", &mib) < 0)
                    return EXIT_USAGE;
            } else if (!strcmp(a, "--reps")) {
                if (cli_parse_u64(v, "--reps", &reps64) < 0)
                    return EXIT_USAGE;
            } else {
                only = v;
            }
        } else {
            cli_error("bench codec: unknown or incomplete option '%s'", a);
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (mib == 0 || mib > (1u << 20)) {
        cli_error("bench codec: --mib %" PRIu64 " out of range (1..1048576)",
                  mib);
        return EXIT_USAGE;
    }
    if (reps64 == 0 || reps64 > BENCH_MAX_REPS) {
        cli_error("bench codec: --reps %" PRIu64 " out of range (1..%u)",
                  reps64, BENCH_MAX_REPS);
        return EXIT_USAGE;
    }
    unsigned reps = (unsigned)reps64;

    if (xcc_xbzrle_set_impl("auto") < 0) {
        cli_error("bench codec: no XBZRLE encoder path: %s", strerror(errno));
        return EXIT_FAIL;
    }
    snprintf(auto_impl, sizeof(auto_impl), "%s", xcc_xbzrle_impl());
    if (only) {
        if (xcc_xbzrle_set_impl(only) < 0) {
            cli_error("bench codec: --impl %s: %s", only,
                      errno == ENOTSUP ? "this CPU lacks it"
                                       : "unknown (scalar, avx2, avx512, "
                                         "auto)");
            return EXIT_USAGE;
        }
        for (int i = 0; i < BENCH_NIMPLS; i++)
            run_impl[i] = !strcmp(xcc_xbzrle_impl(), impl_names[i]);
    } else {
        for (int i = 0; i < BENCH_NIMPLS; i++)
            run_impl[i] = xcc_xbzrle_impl_supported(impl_names[i]);
    }

    /* The headline decode figure: the path auto (or --impl) picks. */
    int head = 0;
    for (int i = 0; i < BENCH_NIMPLS; i++)
        if (run_impl[i] && (only || !strcmp(impl_names[i], auto_impl)))
            head = i;
    cycles_init();

    size_t npages = (size_t)(mib << 20) / BENCH_PAGE;
    size_t bytes = npages * BENCH_PAGE;
    old = page_alloc(bytes);
    new = page_alloc(bytes);
    target = page_alloc(bytes);
    enc = page_alloc(bytes);
    dst = page_alloc(BENCH_PAGE);
    enc_len = calloc(npages, sizeof(*enc_len));
    if (!old || !new || !target || !enc || !dst || !enc_len) {
        cli_error("bench codec: cannot allocate 4 x %" PRIu64 " MiB", mib);
        goto out;
    }
    for (size_t i = 0; i < bytes; i += 8) {
        uint64_t r = rng_next();
        memcpy(old + i, &r, 8);
    }
    cpu_model(cpu, sizeof(cpu));

    for (int w = 0; w < BENCH_NWORKLOADS; w++) {
        struct result *r = &res[w];
        double t_cmp[BENCH_MAX_REPS], t_cpy[BENCH_MAX_REPS],
            t_enc[BENCH_NIMPLS][BENCH_MAX_REPS],
            t_dec[BENCH_NIMPLS][BENCH_MAX_REPS], c_cmp[BENCH_MAX_REPS],
            c_cpy[BENCH_MAX_REPS], c_enc[BENCH_NIMPLS][BENCH_MAX_REPS],
            c_dec[BENCH_NIMPLS][BENCH_MAX_REPS];
        uint64_t ebytes = 0, over = 0;
        int failed = 0;

        memset(r, 0, sizeof(*r));
        make_workload(&workloads[w], old, new, npages);
        memcpy(target, old, bytes);
        for (unsigned k = 0; k < reps; k++) {
            t_cmp[k] = gbs(bytes, time_memcmp(old, target, npages));
            c_cmp[k] = per_page(last_cycles, npages);
            for (int i = 0; i < BENCH_NIMPLS; i++) {
                if (!run_impl[i])
                    continue;
                xcc_xbzrle_set_impl(impl_names[i]);
                t_enc[i][k] = gbs(
                    bytes, time_encode(old, new, npages, dst, &ebytes, &over));
                c_enc[i][k] = per_page(last_cycles, npages);
            }
        }
        r->memcmp_gbs = bench_median(t_cmp, reps);
        r->memcmp_cpp = bench_median(c_cmp, reps);
        for (int i = 0; i < BENCH_NIMPLS; i++)
            if (run_impl[i]) {
                r->encode_gbs[i] = bench_median(t_enc[i], reps);
                r->encode_cpp[i] = bench_median(c_enc[i], reps);
            }

        /* Store every delta, then time applying them. */
        xcc_xbzrle_set_impl(only ? only : "auto");
        for (size_t p = 0; p < npages; p++) {
            enc_len[p] = xcc_xbzrle_encode(old + p * BENCH_PAGE,
                                           new + p * BENCH_PAGE, BENCH_PAGE,
                                           enc + p * BENCH_PAGE, BENCH_PAGE);
            if (enc_len[p] > 0) {
                r->delta_pages++;
                r->delta_bytes += (uint64_t)enc_len[p];
            } else if (enc_len[p] < 0) {
                r->overflow_pages++;
            }
        }
        /* Each rep: memcpy of every page, then each path's decode onto
         * the old pages (so every decoder writes into the same state). */
        for (unsigned k = 0; k < reps; k++) {
            t_cpy[k] = gbs(bytes, time_memcpy(target, new, npages));
            c_cpy[k] = per_page(last_cycles, npages);
            for (int i = 0; i < BENCH_NIMPLS; i++) {
                if (!run_impl[i])
                    continue;
                xcc_xbzrle_set_impl(impl_names[i]);
                memcpy(target, old, bytes);
                t_dec[i][k] =
                    gbs(r->delta_pages * BENCH_PAGE,
                        time_decode(enc, enc_len, target, npages, &failed));
                c_dec[i][k] = per_page(last_cycles, r->delta_pages);
                if (failed) {
                    cli_error("bench codec: %s: %s: a delta failed to decode",
                              workloads[w].name, impl_names[i]);
                    goto out;
                }
                /* Pages with a delta must now equal the new pages, the
                 * others the old ones, or the decoder is wrong. */
                for (size_t p = 0; p < npages; p++)
                    if (memcmp(target + p * BENCH_PAGE,
                               (enc_len[p] > 0 ? new : old) + p * BENCH_PAGE,
                               BENCH_PAGE)) {
                        cli_error("bench codec: %s: %s: page %zu decoded "
                                  "wrong",
                                  workloads[w].name, impl_names[i], p);
                        goto out;
                    }
            }
        }
        r->memcpy_gbs = bench_median(t_cpy, reps);
        r->memcpy_cpp = bench_median(c_cpy, reps);
        for (int i = 0; i < BENCH_NIMPLS; i++)
            if (run_impl[i]) {
                r->dec_gbs[i] = bench_median(t_dec[i], reps);
                r->dec_cpp[i] = bench_median(c_dec[i], reps);
            }
        r->decode_gbs = r->dec_gbs[head];
        xcc_xbzrle_set_impl(only ? only : "auto");
    }

    if (json)
        print_json(res, cpu, mib, reps, auto_impl, run_impl, head);
    else
        print_text(res, cpu, mib, reps, auto_impl, run_impl);
    status = EXIT_OK;
out:
    free(old);
    free(new);
    free(target);
    free(enc);
    free(dst);
    free(enc_len);
    if (cyc_fd >= 0)
        close(cyc_fd);
    return status;
}
