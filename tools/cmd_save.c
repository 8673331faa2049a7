/*
 * cmd_save.c - `xc-colo save` and `xc-colo migrate`: parse the options,
 * open the domain and the destination, run the library's saver, report.
 */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"
#include "transport.h"

/* How long migrate keeps retrying a refused TCP connection. */
#define CONNECT_TIMEOUT_MS 10000u

enum {
    OPT_CACHE_SIZE = 256,
    OPT_NO_MAP_CACHE,
    OPT_XEN_COMPAT,
    OPT_VERIFY,
    OPT_NO_VERIFY,
    OPT_MAX_ITERS,
    OPT_TARGET_DIRTY,
    OPT_MAX_DOWNTIME,
    OPT_MIN_REMAINING,
    OPT_ABORT_IF_BUSY,
    OPT_STATS_JSON,
    OPT_PROGRESS,
    OPT_NO_PROGRESS,
    OPT_NO_LIVE,
};

struct save_cli {
    struct xcc_save_params p;
    int verify;   /* -1: the default for the domain kind */
    int progress; /* -1: on when stderr is a terminal */
    int verbosity;
    bool resume;  /* -c */
    const char *stats_json;
};

static void save_usage(FILE *out, bool migrate)
{
    if (migrate)
        fprintf(out,
                "usage: xc-colo migrate [options] DOMAIN DEST\n\n"
                "Live-migrates DOMAIN's memory to DEST: tcp:HOST:PORT (a peer\n"
                "running 'xc-colo restore --listen'), exec:COMMAND (the stream\n"
                "on the command's stdin), fd:N, '-' or a FILE. The source is\n"
                "left paused afterwards (-c: continue it).\n\n");
    else
        fprintf(out,
                "usage: xc-colo save [options] DOMAIN FILE|-\n\n"
                "Saves DOMAIN's memory to FILE ('-': standard output; also\n"
                "fd:N, tcp:HOST:PORT, exec:COMMAND). The guest is left paused\n"
                "afterwards, as 'xl save' leaves it (-c: continue it).\n\n");
    fprintf(out,
            "  -l, --live            precopy while the guest runs%s\n"
            "      --no-live         pause first and send one pass\n"
            "  -x, --xbzrle          send re-dirtied pages as XBZRLE deltas\n"
            "      --cache-size SIZE XBZRLE cache (default 64M, at most the "
            "guest)\n"
            "      --no-map-cache    map per batch and unmap, as stock Xen\n"
            "      --xen-compat      Xen records only (no zero/XBZRLE pages, "
            "no digest)\n"
            "      --verify          send a DIGEST the restore checks (default "
            "for sim:)\n"
            "      --no-verify       do not\n"
            "      --max-iters N     live passes before the final one "
            "(default 5)\n"
            "      --target-dirty N  pause once at most N pages are dirty "
            "(default 50)\n"
            "      --max-downtime MS pause once the final pass is estimated "
            "to fit MS\n"
            "      --min-remaining N with --abort-if-busy: most dirty pages "
            "a forced\n"
            "                        final pass may carry (default: "
            "--target-dirty)\n"
            "      --abort-if-busy   give up (exit 1) instead of forcing a "
            "long final pass\n"
            "      --stats-json FILE write the figures as JSON (QEMU "
            "query-migrate names)\n"
            "  -c, --continue        unpause the guest after the save\n"
            "      --progress        progress lines (default: on a terminal)\n"
            "      --no-progress     none\n"
            "  -q, --quiet           errors only, no progress, no summary\n"
            "  -v, --verbose         more detail (twice: debug)\n"
            "  -h, --help            this text\n\n"
            "Exit status: 0 saved, 1 error (the message says what), 2 usage.\n",
            migrate ? " (default)" : "");
}

static int parse_save_args(int argc, char **argv, bool migrate,
                           struct save_cli *c)
{
    static const struct option opts[] = {
        {"live", no_argument, NULL, 'l'},
        {"no-live", no_argument, NULL, OPT_NO_LIVE},
        {"xbzrle", no_argument, NULL, 'x'},
        {"cache-size", required_argument, NULL, OPT_CACHE_SIZE},
        {"no-map-cache", no_argument, NULL, OPT_NO_MAP_CACHE},
        {"xen-compat", no_argument, NULL, OPT_XEN_COMPAT},
        {"verify", no_argument, NULL, OPT_VERIFY},
        {"no-verify", no_argument, NULL, OPT_NO_VERIFY},
        {"max-iters", required_argument, NULL, OPT_MAX_ITERS},
        {"target-dirty", required_argument, NULL, OPT_TARGET_DIRTY},
        {"max-downtime", required_argument, NULL, OPT_MAX_DOWNTIME},
        {"min-remaining", required_argument, NULL, OPT_MIN_REMAINING},
        {"abort-if-busy", no_argument, NULL, OPT_ABORT_IF_BUSY},
        {"stats-json", required_argument, NULL, OPT_STATS_JSON},
        {"continue", no_argument, NULL, 'c'},
        {"progress", no_argument, NULL, OPT_PROGRESS},
        {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    uint64_t v;
    int opt;

    memset(c, 0, sizeof(*c));
    xcc_save_params_init(&c->p);
    c->p.live = migrate;
    c->verify = -1;
    c->progress = -1;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "lxcqvh", opts, NULL)) != -1) {
        switch (opt) {
        case 'l': c->p.live = 1; break;
        case OPT_NO_LIVE: c->p.live = 0; break;
        case 'x': c->p.xbzrle = 1; break;
        case OPT_CACHE_SIZE:
            if (cli_parse_size(optarg, "--cache-size", &c->p.cache_size) < 0)
                return EXIT_USAGE;
            if (!c->p.cache_size) {
                cli_error("--cache-size: must not be 0");
                return EXIT_USAGE;
            }
            break;
        case OPT_NO_MAP_CACHE: c->p.no_map_cache = 1; break;
        case OPT_XEN_COMPAT: c->p.xen_compat = 1; break;
        case OPT_VERIFY: c->verify = 1; break;
        case OPT_NO_VERIFY: c->verify = 0; break;
        case OPT_MAX_ITERS:
            if (cli_parse_u64(optarg, "--max-iters", &v) < 0)
                return EXIT_USAGE;
            if (v < 1 || v > UINT32_MAX) {
                cli_error("--max-iters: expected 1..%u, got %s", UINT32_MAX,
                          optarg);
                return EXIT_USAGE;
            }
            c->p.max_iters = (uint32_t)v;
            break;
        case OPT_TARGET_DIRTY:
            if (cli_parse_u64(optarg, "--target-dirty", &v) < 0)
                return EXIT_USAGE;
            /* The library reads 0 as "default": 0 pages means 1 here. */
            c->p.target_dirty = v ? v : 1;
            break;
        case OPT_MAX_DOWNTIME:
            if (cli_parse_u64(optarg, "--max-downtime", &c->p.max_downtime_ms) <
                0)
                return EXIT_USAGE;
            break;
        case OPT_MIN_REMAINING:
            if (cli_parse_u64(optarg, "--min-remaining", &c->p.min_remaining) <
                0)
                return EXIT_USAGE;
            if (!c->p.min_remaining)
                c->p.min_remaining = 1;
            break;
        case OPT_ABORT_IF_BUSY: c->p.abort_if_busy = 1; break;
        case OPT_STATS_JSON: c->stats_json = optarg; break;
        case 'c': c->resume = true; break;
        case OPT_PROGRESS: c->progress = 1; break;
        case OPT_NO_PROGRESS: c->progress = 0; break;
        case 'q': c->verbosity = -1; break;
        case 'v':
            if (c->verbosity >= 0)
                c->verbosity++;
            break;
        case 'h': save_usage(stdout, migrate); return EXIT_OK;
        default: save_usage(stderr, migrate); return EXIT_USAGE;
        }
    }
    if (optind + 2 != argc) {
        cli_error("%s: expected DOMAIN and %s (try --help)", argv[0],
                  migrate ? "DEST" : "FILE");
        return EXIT_USAGE;
    }
    if (c->p.xen_compat && c->p.xbzrle) {
        cli_error("--xen-compat and --xbzrle: a Xen stream has no XBZRLE "
                  "pages");
        return EXIT_USAGE;
    }
    if (c->p.xen_compat && c->verify == 1) {
        cli_error("--xen-compat and --verify: a Xen stream has no DIGEST");
        return EXIT_USAGE;
    }
    if (c->verbosity < 0)
        c->progress = 0;
    else if (c->progress < 0)
        c->progress = isatty(STDERR_FILENO);
    return -1;
}

static int write_text_file(const char *path, const char *text)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "w") : stdout;

    if (!f) {
        cli_error("cannot create '%s': %s", path, strerror(errno));
        return -1;
    }
    fputs(text, f);
    if (f == stdout ? fflush(f) != 0 : fclose(f) != 0) {
        cli_error("writing '%s': %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void print_summary(const char *dom, const struct xcc_save_summary *s,
                          bool xbzrle)
{
    fprintf(stderr,
            "xc-colo: saved %s\n"
            "  total time        %10.1f ms\n"
            "  downtime          %10.1f ms\n"
            "  iterations        %10" PRIu64 "\n"
            "  transferred       %10.1f MiB (%.0f Mbit/s)\n"
            "  after iteration 0 %10.1f MiB\n"
            "  normal pages      %10" PRIu64 "\n"
            "  zero pages        %10" PRIu64 "\n",
            dom, s->total_ms, s->downtime_ms, s->iterations,
            (double)s->transferred / (1 << 20), s->mbps,
            (double)s->after_iter0_bytes / (1 << 20), s->normal_pages,
            s->zero_pages);
    if (xbzrle)
        fprintf(stderr,
                "  xbzrle pages      %10" PRIu64 " (%.1f MiB)\n"
                "  cache miss rate   %10.3f\n"
                "  overflows         %10" PRIu64 "\n",
                s->xbzrle_pages, (double)s->xbzrle_bytes / (1 << 20),
                s->cache_miss_rate, s->overflow);
}

static int run_save(int argc, char **argv, bool migrate)
{
    struct save_cli c;
    struct transport t = {.fd = -1};
    xentoollog_logger *log = NULL;
    xcc_domain *d = NULL;
    xcc_saver *s = NULL;
    const char *dom, *dest;
    int rc = parse_save_args(argc, argv, migrate, &c);

    if (rc >= 0)
        return rc;
    rc = EXIT_FAIL;
    dom = argv[optind];
    dest = argv[optind + 1];
    /* A reader that goes away must be an error (EPIPE), not a signal. */
    signal(SIGPIPE, SIG_IGN);

    log = progress_logger(c.verbosity, c.progress);
    if (!log)
        goto out;
    d = xcc_domain_open(dom, log, 0);
    if (!d) {
        cli_error("cannot open domain '%s': %s", dom, xcc_strerror(errno));
        goto out;
    }
    if (c.verify < 0)
        c.verify = !c.p.xen_compat && !strncmp(dom, "sim:", 4);
    c.p.verify = c.verify;
    c.p.progress = c.progress;
    if (!strcmp(dest, "-") && isatty(STDOUT_FILENO)) {
        cli_error("refusing to write a stream to a terminal");
        goto out;
    }
    if (transport_open_dest(dest, CONNECT_TIMEOUT_MS, &t) < 0)
        goto out;
    s = xcc_saver_new(d, t.fd, &c.p, log);
    if (!s) {
        cli_error("cannot save '%s': %s", dom, xcc_strerror(errno));
        goto out;
    }
    if (xcc_saver_run(s) < 0) {
        cli_error("%s of '%s' to '%s' failed: %s", argv[0], dom, dest,
                  xcc_strerror(errno));
        goto stats;
    }
    rc = EXIT_OK;
    if (c.resume && xcc_domain_unpause(d) < 0) {
        cli_error("cannot continue '%s': %s", dom, xcc_strerror(errno));
        rc = EXIT_FAIL;
    }
stats:
    if (transport_close(&t) < 0)
        rc = EXIT_FAIL;
    if (c.stats_json) {
        const char *json = xcc_saver_stats_json(s);
        if (!json) {
            cli_error("cannot format the statistics: %s", strerror(errno));
            rc = EXIT_FAIL;
        } else if (write_text_file(c.stats_json, json) < 0) {
            rc = EXIT_FAIL;
        }
    }
    if (rc == EXIT_OK && c.verbosity >= 0) {
        struct xcc_save_summary sum;
        xcc_saver_get_summary(s, &sum);
        print_summary(dom, &sum, c.p.xbzrle);
    }
out:
    transport_close(&t);
    xcc_saver_free(s);
    xcc_domain_close(d);
    if (log)
        xtl_logger_destroy(log);
    return rc;
}

int cmd_save(int argc, char **argv)
{
    return run_save(argc, argv, false);
}

int cmd_migrate(int argc, char **argv)
{
    return run_save(argc, argv, true);
}
