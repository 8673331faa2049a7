/*
 * bench_save.c - `xc-colo bench save`: non-live save of a paused sim guest
 * into sinks that copy every byte, against memcpy of the same bytes
 * measured in the same run.
 *
 * The sinks, each timed in every rep:
 *   tmpfs  a file on /dev/shm (truncated before each rep): the kernel
 *          copies every byte of the stream into the page cache. The
 *          headline figure and ratio.
 *   pipe   a pipe into a child process that read()s everything into its
 *          own buffer (a copy of every byte), the way a save feeds a
 *          transport; the save ends when the reader has read the last byte.
 *   null   /dev/null, a labelled extra: Linux's /dev/null never reads the
 *          iovecs that point into the guest's pages, so this measures the
 *          save's bookkeeping and zero-page test, not the data.
 *
 * The guest is started fresh (its RAM filled with pseudo-random content,
 * about 1 page in 16 left zero) and paused. Each rep creates a saver, as a
 * real save does, so mapping the guest is part of the figure. The baseline
 * copies the guest's RAM through one persistent, pre-faulted mapping into
 * a pre-faulted buffer of the same size: the fastest a save that copied
 * every page could go. Both are medians of --reps.
 */
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "cli.h"

#define DEFAULT_REPS 5u
#define MAX_REPS 100u
#define DEFAULT_MEM (1ull << 30)
/* Below this the timings are all noise. */
#define MIN_MEM (16ull << 20)
#define GB 1e9
/* Issue 5's target: save at >= 0.7 x memcpy. */
#define TARGET_RATIO 0.7
/* Pages copied per memcpy call in the baseline: one map-cache chunk. */
#define COPY_PFNS 1024u

static void bench_save_usage(FILE *out)
{
    fprintf(out,
            "usage: xc-colo bench save [--mem SIZE] [--reps N] [--xbzrle]\n"
            "                          [--no-map-cache] [--verify] [--json]\n\n"
            "Non-live save of a paused sim guest (default 1G, RAM filled) into\n"
            "a file on tmpfs and into a pipe read by another process (both\n"
            "copy every byte), in GB/s, and the ratio to memcpy of the same\n"
            "bytes measured in the same run; /dev/null (which reads nothing)\n"
            "as an extra row. Medians of N reps (default %u).\n"
            "  --verify        include the DIGEST (XXH3 of all memory)\n"
            "  --no-map-cache  map per batch, as stock Xen\n"
            "  --json          one JSON object on stdout\n",
            DEFAULT_REPS);
}

enum { SINK_TMPFS, SINK_PIPE, SINK_NULL, NSINKS };
static const char *const sink_names[NSINKS] = {"tmpfs", "pipe", "null"};

/* The pipe's reader: reads everything into its own buffer, until EOF. */
static void pipe_reader(int fd)
{
    static uint8_t buf[1 << 20];
    volatile uint8_t acc = 0;
    ssize_t n;

    while ((n = read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
        if (n > 0)
            acc ^= buf[n - 1];
    _exit(n < 0 ? 1 : 0);
}

/*
 * One timed save of d into the sink; *seconds from the saver's creation to
 * the sink holding (or the reader having read) every byte.
 */
static int save_into(xcc_domain *d, int sink, int tmpfs_fd,
                     const struct xcc_save_params *p, xentoollog_logger *log,
                     double *seconds, struct xcc_save_summary *sum)
{
    int fd = -1, pfd[2] = {-1, -1}, rc, status = 0;
    pid_t child = -1;
    double t0;

    if (sink == SINK_TMPFS) {
        if (ftruncate(tmpfs_fd, 0) < 0 || lseek(tmpfs_fd, 0, SEEK_SET) < 0)
            return -1;
        fd = tmpfs_fd;
    } else if (sink == SINK_NULL) {
        fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    } else {
        if (pipe2(pfd, O_CLOEXEC) < 0)
            return -1;
        child = fork();
        if (child == 0) {
            close(pfd[1]);
            pipe_reader(pfd[0]);
        }
        close(pfd[0]);
        fd = pfd[1];
        if (child < 0) {
            close(fd);
            return -1;
        }
    }
    if (fd < 0)
        return -1;
    t0 = bench_now_s();
    xcc_saver *s = xcc_saver_new(d, fd, p, log);
    rc = s ? xcc_saver_run(s) : -1;
    int err = errno;
    if (sink == SINK_PIPE) {
        close(fd);
        if (waitpid(child, &status, 0) < 0 || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0)
            rc = -1;
    }
    *seconds = bench_now_s() - t0;
    if (s) {
        xcc_saver_get_summary(s, sum);
        xcc_saver_free(s);
    }
    if (sink == SINK_NULL)
        close(fd);
    errno = err;
    return rc;
}

/* The baseline: memcpy of every page through a persistent mapping. */
static int memcpy_pass(xcc_domain *d, uint64_t nr_pfns, uint32_t psz,
                       uint8_t *dst, double *seconds)
{
    xcc_map_cache *mc = xcc_map_cache_new(d, NULL);
    uint64_t pfns[COPY_PFNS];
    uint8_t *pages[COPY_PFNS];
    int err[COPY_PFNS];
    double t0 = 0;
    int rc = -1;

    if (!mc)
        return -1;
    /* Pass 0 maps and faults everything in; pass 1 is timed. */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            t0 = bench_now_s();
        for (uint64_t base = 0; base < nr_pfns; base += COPY_PFNS) {
            size_t n = nr_pfns - base < COPY_PFNS ? nr_pfns - base : COPY_PFNS;
            size_t done = 0;

            for (size_t i = 0; i < n; i++)
                pfns[i] = base + i;
            while (done < n) {
                int64_t k = xcc_map_cache_lookup(mc, pfns + done, n - done,
                                                 pages + done, err + done);
                if (k <= 0)
                    goto out;
                done += (size_t)k;
            }
            /* A chunk is one contiguous mapping: copy it in one call when
             * the pages are adjacent, as the fastest copier would. */
            if (pages[n - 1] == pages[0] + (n - 1) * (size_t)psz) {
                memcpy(dst + base * psz, pages[0], n * (size_t)psz);
            } else {
                for (size_t i = 0; i < n; i++)
                    if (pages[i])
                        memcpy(dst + (base + i) * psz, pages[i], psz);
            }
        }
    }
    *seconds = bench_now_s() - t0;
    rc = 0;
out:
    xcc_map_cache_free(mc);
    return rc;
}

/* What the timing loop's callbacks need and fill in. */
struct timing {
    xcc_domain *d;
    int tmpfs_fd;
    const struct xcc_save_params *p;
    xentoollog_logger *log;
    uint64_t mem, nr_pfns;
    uint32_t psz;
    uint8_t *dst;                 /* the baseline's copy */
    double *save_gbs[NSINKS];     /* GB/s, by sink and rep */
    double *copy_gbs;             /* GB/s of the baseline, by rep */
    struct xcc_save_summary last; /* of the last save */
};

/* One save into sink k. The loop puts the sinks in a different order each
 * rep, so no sink always follows the memcpy (or another sink) and inherits
 * its cache. */
static int run_sink(void *opaque, unsigned rep, unsigned k)
{
    struct timing *t = opaque;
    double secs;

    if (save_into(t->d, (int)k, t->tmpfs_fd, t->p, t->log, &secs, &t->last) <
        0) {
        cli_error("bench save: save into %s failed: %s", sink_names[k],
                  xcc_strerror(errno));
        return -1;
    }
    t->save_gbs[k][rep] = (double)t->mem / secs / GB;
    return 0;
}

/* The memcpy baseline, once per rep after the sinks. */
static int run_baseline(void *opaque, unsigned rep)
{
    struct timing *t = opaque;
    double secs;

    if (memcpy_pass(t->d, t->nr_pfns, t->psz, t->dst, &secs) < 0) {
        cli_error("bench save: memcpy baseline failed: %s",
                  xcc_strerror(errno));
        return -1;
    }
    t->copy_gbs[rep] = (double)t->mem / secs / GB;
    return 0;
}

int bench_save(int argc, char **argv)
{
    static const struct option opts[] = {
        BENCH_LONG_OPTIONS,
        {"xbzrle", no_argument, NULL, 'x'},
        {"no-map-cache", no_argument, NULL, 'n'},
        {"verify", no_argument, NULL, 'V'},
        {"verbose", no_argument, NULL, 'v'},
        {0},
    };
    uint64_t mem = DEFAULT_MEM, reps = DEFAULT_REPS, nr_pfns = 0;
    uint32_t psz = 0;
    bool json = false, created = false;
    int opt, verbosity = 0, ret = EXIT_FAIL, tmpfs_fd = -1;
    struct xcc_save_params p;
    char name[64], dname[80], tmpfs_path[128] = "";
    uint8_t *dst = MAP_FAILED;
    xentoollog_logger *log = NULL;
    xcc_domain *d = NULL;
    struct timing t = {0};
    /* A reader that dies must not kill the benchmark with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);

    xcc_save_params_init(&p);
    p.verify = 0;
    p.progress = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
        int known =
            bench_parse_common(opt, optarg, "--reps", &mem, &reps, &json);
        if (known < 0)
            return EXIT_USAGE;
        if (known)
            continue;
        switch (opt) {
        case 'x': p.xbzrle = 1; break;
        case 'n': p.no_map_cache = 1; break;
        case 'V': p.verify = 1; break;
        case 'v': verbosity++; break;
        case 'h': bench_save_usage(stdout); return EXIT_OK;
        default: bench_save_usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind != argc) {
        cli_error("bench save: unexpected argument '%s'", argv[optind]);
        return EXIT_USAGE;
    }
    if (reps == 0 || reps > MAX_REPS) {
        cli_error("bench save: --reps must be 1..%u", MAX_REPS);
        return EXIT_USAGE;
    }
    if (mem < MIN_MEM) {
        cli_error("bench save: --mem must be at least 16M");
        return EXIT_USAGE;
    }

    log = cli_logger(verbosity, false);
    for (int k = 0; k < NSINKS; k++)
        if (!(t.save_gbs[k] = calloc(reps, sizeof(double))))
            goto out;
    t.copy_gbs = calloc(reps, sizeof(double));
    if (!t.copy_gbs)
        goto out;
    snprintf(name, sizeof(name), "bench-save-%d", (int)getpid());
    snprintf(dname, sizeof(dname), "sim:%s", name);
    if (xcc_sim_start(name, mem, "idle", 1, NULL, NULL, log) < 0) {
        cli_error("bench save: cannot start sim guest %s: %s", name,
                  xcc_strerror(errno));
        goto out;
    }
    created = true;
    d = xcc_domain_open(dname, log, 0);
    if (!d || xcc_domain_get_info(d, &nr_pfns, &psz) < 0) {
        cli_error("bench save: cannot open %s: %s", dname, xcc_strerror(errno));
        goto out;
    }
    if (xcc_domain_pause(d) < 0) {
        cli_error("bench save: cannot pause %s: %s", dname, xcc_strerror(errno));
        goto out;
    }
    snprintf(tmpfs_path, sizeof(tmpfs_path), "/dev/shm/xc-colo-%s.img", name);
    tmpfs_fd = open(tmpfs_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    dst = mmap(NULL, mem, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (tmpfs_fd < 0 || dst == MAP_FAILED) {
        cli_error("bench save: cannot set up (%s): %s", tmpfs_path,
                  strerror(errno));
        goto out;
    }
    /* The pipe's reader is a fork: it must not share dst copy-on-write,
     * or every later memcpy into dst would fault. */
    madvise(dst, mem, MADV_DONTFORK);

    t.d = d;
    t.tmpfs_fd = tmpfs_fd;
    t.p = &p;
    t.log = log;
    t.mem = mem;
    t.nr_pfns = nr_pfns;
    t.psz = psz;
    t.dst = dst;
    if (bench_interleave((unsigned)reps, NSINKS, run_sink, run_baseline, &t))
        goto out;

    {
        double save = bench_median(t.save_gbs[SINK_TMPFS], (unsigned)reps);
        double pipe_gbs = bench_median(t.save_gbs[SINK_PIPE], (unsigned)reps);
        double null_gbs = bench_median(t.save_gbs[SINK_NULL], (unsigned)reps);
        double copy = bench_median(t.copy_gbs, (unsigned)reps);
        double ratio = save / copy;

        if (json)
            printf("{\"mem_bytes\":%" PRIu64 ",\"page_size\":%" PRIu32
                   ",\"reps\":%" PRIu64 ",\"xbzrle\":%s,\"map_cache\":%s,"
                   "\"verify\":%s,\"sink\":\"tmpfs\",\"save_gbs\":%.3f,"
                   "\"memcpy_gbs\":%.3f,\"ratio\":%.3f,"
                   "\"save_pipe_gbs\":%.3f,\"ratio_pipe\":%.3f,"
                   "\"save_null_gbs\":%.3f,\"ratio_null\":%.3f,"
                   "\"target_ratio\":%.2f,\"stream_bytes\":%" PRIu64
                   ",\"normal_pages\":%" PRIu64 ",\"zero_pages\":%" PRIu64
                   "}\n",
                   mem, psz, reps, p.xbzrle ? "true" : "false",
                   p.no_map_cache ? "false" : "true",
                   p.verify ? "true" : "false", save, copy, ratio, pipe_gbs,
                   pipe_gbs / copy, null_gbs, null_gbs / copy, TARGET_RATIO,
                   t.last.transferred, t.last.normal_pages, t.last.zero_pages);
        else
            printf("save: %.2f GiB paused sim guest, median of %" PRIu64
                   " reps%s%s%s (%" PRIu64 " normal, %" PRIu64
                   " zero pages, %" PRIu64 " stream bytes)\n"
                   "  save to a tmpfs file  %7.2f GB/s  %5.2fx memcpy "
                   "(target >= %.1f)\n"
                   "  save into a pipe      %7.2f GB/s  %5.2fx memcpy "
                   "(a reader process copies every byte)\n"
                   "  save to /dev/null     %7.2f GB/s  %5.2fx memcpy "
                   "(extra: /dev/null reads nothing)\n"
                   "  memcpy                %7.2f GB/s  (same bytes, "
                   "persistent mapping)\n",
                   (double)mem / (1u << 30), reps, p.xbzrle ? ", --xbzrle" : "",
                   p.no_map_cache ? ", --no-map-cache" : "",
                   p.verify ? ", --verify" : "", t.last.normal_pages,
                   t.last.zero_pages, t.last.transferred, save, ratio,
                   TARGET_RATIO, pipe_gbs, pipe_gbs / copy, null_gbs,
                   null_gbs / copy, copy);
    }
    ret = EXIT_OK;
out:
    if (dst != MAP_FAILED)
        munmap(dst, mem);
    if (tmpfs_fd >= 0)
        close(tmpfs_fd);
    if (tmpfs_path[0])
        unlink(tmpfs_path);
    xcc_domain_close(d);
    if (created && xcc_sim_stop(name, log) < 0)
        cli_error("bench save: cannot remove sim guest %s: %s", name,
                  xcc_strerror(errno));
    for (int k = 0; k < NSINKS; k++)
        free(t.save_gbs[k]);
    free(t.copy_gbs);
    if (log)
        xtl_logger_destroy(log);
    return ret;
}
