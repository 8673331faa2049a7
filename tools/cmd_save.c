/*
 * cmd_save.c - `xc-colo save` and `xc-colo migrate`: parse the options,
 * open the domain and the destination, run the library's saver, report.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"
#include "save_opts.h"
#include "xl_config.h"

/* How long migrate keeps retrying a refused TCP connection. */
#define CONNECT_TIMEOUT_MS 10000u
/* How long migrate waits, after END, for the receiver to say that the
 * guest runs in its new domain (libxl builds it and libxenguest restores
 * it meanwhile: seconds on hardware, a minute under emulation). */
#define HANDOVER_TIMEOUT_MS 600000
/* xl's name for the source while a migration is under way, so that a
 * receiver on the same host can create the guest under its own name. */
#define MIGRATEDAWAY_SUFFIX "--migratedaway"

/* save's own options; the shared ones are in save_opts.h. */
enum {
    OPT_MAX_DOWNTIME = SAVE_OPT_END,
    OPT_MIN_REMAINING,
    OPT_ABORT_IF_BUSY,
    OPT_NO_LIVE,
};

/*
 * SIGINT/SIGTERM: cancel the save (the library continues the guest it
 * paused and stops before END) and exit 128 + the signal, saying so. The
 * handler only sets flags: xcc_saver_cancel is async-signal-safe.
 */
static volatile sig_atomic_t cancel_signal;
static xcc_saver *volatile cancel_saver;

static void on_cancel_signal(int sig)
{
    cancel_signal = sig;
    if (cancel_saver)
        xcc_saver_cancel(cancel_saver);
}

static void catch_cancel_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_cancel_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static void save_usage(FILE *out, bool migrate)
{
    if (migrate)
        fprintf(out,
                "usage: xc-colo migrate [options] DOMAIN DEST\n\n"
                "Live-migrates DOMAIN's memory to DEST: tcp:HOST:PORT (a peer\n"
                "running 'xc-colo restore --listen'), exec:COMMAND (the stream\n"
                "on the command's stdin), fd:N, '-' or a FILE. The source is\n"
                "left paused afterwards (-c: continue it); a Xen guest suspends\n"
                "itself for the final pass and is left suspended.\n\n");
    else
        fprintf(out,
                "usage: xc-colo save [options] DOMAIN FILE|-\n\n"
                "Saves DOMAIN's memory to FILE ('-': standard output; also\n"
                "fd:N, tcp:HOST:PORT, exec:COMMAND). The guest is left paused\n"
                "afterwards, as 'xl save' leaves it (-c: continue it). A Xen\n"
                "guest is not paused but asked to suspend itself (xenstore\n"
                "control/shutdown), as 'xl save' does, and is left suspended.\n\n");
    fprintf(out,
            "  -l, --live            precopy while the guest runs%s\n"
            "      --no-live         pause first and send one pass\n"
            "  -x, --xbzrle          send re-dirtied pages as XBZRLE deltas\n"
            "      --cache-size SIZE XBZRLE cache (default 64M, at most the "
            "guest)\n"
            "      --no-map-cache    map per batch and unmap, as stock Xen\n"
            "      --xen-compat      what stock Xen reads: Xen records only "
            "(no zero/XBZRLE\n"
            "                        pages, no digest); a Xen domain's file "
            "is an xl save\n"
            "                        image that `xl restore` reads (needs "
            "its config)\n"
            "      --xl-config-json F  with --xen-compat: the domain's libxl "
            "config (JSON,\n"
            "                        as `xl list -l` prints under \"config\") "
            "for the xl header\n"
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
            "      --mode OCTAL      permission bits of a FILE destination "
            "(default 600)\n"
            "      --auth-key-file F tcp: destination: both sides prove they "
            "hold the key\n"
            "                        in F (restore --listen --auth-key-file F)\n"
            "      --max-bandwidth RATE  at most RATE on the wire, on average: "
            "bits/s with\n"
            "                        k/M/G (1G = 1 Gbit/s), or bytes with B "
            "(125MB)\n"
            "      --suspend-timeout MS  Xen: how long the guest may take "
            "to suspend itself\n"
            "                        for the final pass (default 30000); "
            "then exit 1, and\n"
            "                        the guest runs on\n"
            "      --no-hot-predict  with --live --xbzrle: cache nothing in "
            "iteration 0\n"
            "                        (by default pages already re-dirtied "
            "are cached)\n"
            "      --compress zstd[:LEVEL]  whole pages through zstd (level "
            "1..19, default 1),\n"
            "                        off per batch where it does not pay\n"
            "      --threads N       threads that classify and encode pages "
            "(default: the\n"
            "                        online CPUs, at most 8; 1: one thread)\n"
            "      --stats-json FILE write the figures as JSON (QEMU "
            "query-migrate names)\n"
            "  -c, --continue        unpause (Xen: resume) the guest after "
            "the save\n"
            "      --progress        progress lines (default: on a terminal)\n"
            "      --no-progress     none\n"
            "  -q, --quiet           errors only, no progress, no summary\n"
            "  -v, --verbose         more detail (twice: debug)\n"
            "  -h, --help            this text\n\n"
            "SIGINT or SIGTERM cancels the save: the guest is continued, the\n"
            "stream is left without END (restore refuses it).\n\n"
            "Exit status: 0 saved, 1 error (the message says what), 2 usage,\n"
            "128+N cancelled by signal N (130 SIGINT, 143 SIGTERM).\n",
            migrate ? " (default)" : "");
}

static int parse_save_args(int argc, char **argv, bool migrate,
                           struct save_opts *c)
{
    static const struct option opts[] = {
        SAVE_LONG_OPTIONS,
        {"no-live", no_argument, NULL, OPT_NO_LIVE},
        {"max-downtime", required_argument, NULL, OPT_MAX_DOWNTIME},
        {"min-remaining", required_argument, NULL, OPT_MIN_REMAINING},
        {"abort-if-busy", no_argument, NULL, OPT_ABORT_IF_BUSY},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    int opt, known;

    save_opts_init(c, migrate);
    optind = 1;
    while ((opt = getopt_long(argc, argv, "lxcqvh", opts, NULL)) != -1) {
        known = save_opts_parse(c, opt, optarg);
        if (known < 0)
            return EXIT_USAGE;
        if (known)
            continue;
        switch (opt) {
        case OPT_NO_LIVE: c->p.live = 0; break;
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
        case 'h': save_usage(stdout, migrate); return EXIT_OK;
        default: save_usage(stderr, migrate); return EXIT_USAGE;
        }
    }
    if (optind + 2 != argc) {
        cli_error("%s: expected DOMAIN and %s (try --help)", argv[0],
                  migrate ? "DEST" : "FILE");
        return EXIT_USAGE;
    }
    if (save_opts_finish(c, argv[optind + 1]) < 0)
        return EXIT_USAGE;
    return -1;
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

/*
 * Migration of a Xen domain into a new one (`xc-colo restore ... xen:` at
 * the other end of a connection): the source's name is taken out of the
 * way first, as xl migrate does, and given back if the migration fails.
 */
struct handover {
    bool on;          /* a Xen source and a destination that can answer */
    uint32_t domid;
    char *name;       /* the source's name; NULL: none known */
    char *away;       /* the name while migrating */
    bool renamed;
};

static bool fd_is_socket(int fd)
{
    struct stat st;

    return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* Reads one line (at most len - 1 bytes) within timeout_ms. Returns its
 * length, 0 at EOF before a newline, -1 with errno (ETIMEDOUT). */
static ssize_t read_line(int fd, char *buf, size_t len, int timeout_ms)
{
    size_t n = 0;

    while (n + 1 < len) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr = poll(&p, 1, timeout_ms);
        ssize_t r;

        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0)
            errno = ETIMEDOUT;
        if (pr <= 0)
            return -1;
        r = read(fd, buf + n, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r;
        if (buf[n] == '\n')
            break;
        n++;
    }
    buf[n] = 0;
    return (ssize_t)n;
}

static int handover_begin(struct handover *h, const char *dom,
                          const struct transport *t, xentoollog_logger *log)
{
    if (!h->on)
        return 0;
    h->name = xl_domain_name(h->domid, log);
    if (!h->name)
        return 0; /* nothing to move out of the way */
    if (asprintf(&h->away, "%s" MIGRATEDAWAY_SUFFIX, h->name) < 0) {
        h->away = NULL;
        return -1;
    }
    if (xl_domain_rename(h->domid, h->name, h->away, log) < 0)
        return -1;
    h->renamed = true;
    return 0;
}

/* After a failure: the source keeps its name (and runs: the saver
 * continued it). */
static void handover_abort(struct handover *h, xentoollog_logger *log)
{
    if (h->renamed && xl_domain_rename(h->domid, h->away, h->name, log) == 0)
        h->renamed = false;
}

/*
 * After END: the receiver answers "running DOMID" (or "paused DOMID" with
 * -p) once libxl has built the guest; then the source is destroyed, as xl
 * migrate does. Anything else, or nothing, resumes the source.
 */
static int handover_finish(struct handover *h, xcc_domain *d, const char *dom,
                           struct transport *t, xentoollog_logger *log)
{
    char line[128];
    unsigned newdom;
    ssize_t n;

    if (shutdown(t->fd, SHUT_WR) < 0) {
        cli_error("cannot end the stream to %s: %s", t->desc, strerror(errno));
        n = -1;
    } else {
        n = read_line(t->fd, line, sizeof(line), HANDOVER_TIMEOUT_MS);
    }
    if (n > 0 && (sscanf(line, "running %u", &newdom) == 1 ||
                  sscanf(line, "paused %u", &newdom) == 1)) {
        if (xl_domain_destroy(h->domid, log) < 0)
            return EXIT_FAIL;
        fprintf(stderr, "xc-colo: the guest is domain %u at %s (%s); %s "
                "destroyed\n", newdom, t->desc, line, dom);
        return EXIT_OK;
    }
    cli_error("the receiver at %s did not report a running domain (%s): "
              "%s resumes", t->desc,
              n > 0 ? line : n == 0 ? "it closed the connection"
                                    : strerror(errno), dom);
    handover_abort(h, log);
    if (xcc_domain_unpause(d) < 0)
        cli_error("cannot resume %s: %s", dom, xcc_strerror(errno));
    return EXIT_FAIL;
}

static int run_save(int argc, char **argv, bool migrate)
{
    struct save_opts c;
    struct transport t = {.fd = -1};
    xentoollog_logger *log = NULL;
    xcc_domain *d = NULL;
    xcc_saver *s = NULL;
    const char *dom, *dest;
    struct handover ho = {0};
    int rc = parse_save_args(argc, argv, migrate, &c);

    if (rc >= 0)
        return rc;
    rc = EXIT_FAIL;
    dom = argv[optind];
    dest = argv[optind + 1];
    /* A reader that goes away must be an error (EPIPE), not a signal. */
    signal(SIGPIPE, SIG_IGN);
    catch_cancel_signals();

    log = progress_logger(c.out.verbosity, c.out.progress);
    if (!log)
        goto out;
    /* migrate of a Xen domain to a peer that can answer (tcp:, exec:)
     * hands the guest over: the source goes once the receiver runs it. */
    ho.on = migrate && !c.resume && xl_domid(dom, &ho.domid) &&
            (!strncmp(dest, "tcp:", 4) || !strncmp(dest, "exec:", 5));
    c.dest.back_channel = ho.on;
    d = save_opts_open_domain(&c, dom, log);
    if (!d || save_opts_open_dest(&c, dest, CONNECT_TIMEOUT_MS, &t) < 0)
        goto out;
    ho.on = ho.on && fd_is_socket(t.fd);
    if (handover_begin(&ho, dom, &t, log) < 0)
        goto out;
    s = xcc_saver_new(d, t.fd, &c.p, log);
    if (!s) {
        cli_error("cannot save '%s': %s", dom, xcc_strerror(errno));
        goto out;
    }
    cancel_saver = s;
    if (cancel_signal)
        xcc_saver_cancel(s);
    if (xcc_saver_run(s) < 0) {
        if (cancel_signal) {
            cli_error("%s of '%s' cancelled by SIG%s: the guest continues; the "
                      "stream to '%s' is incomplete (no END, a restore "
                      "refuses it)", argv[0], dom, sigabbrev_np(cancel_signal),
                      dest);
            rc = 128 + cancel_signal;
        } else {
            cli_error("%s of '%s' to '%s' failed: %s", argv[0], dom, dest,
                      xcc_strerror(errno));
        }
    } else {
        rc = EXIT_OK;
        /* A Xen guest handed over: destroyed once the receiver runs it. */
        if (ho.on)
            rc = handover_finish(&ho, d, dom, &t, log);
    }
    rc = save_opts_end_run(&c, d, dom, &t, xcc_saver_stats_json(s), rc);
    if (rc == EXIT_OK && c.out.verbosity >= 0) {
        struct xcc_save_summary sum;
        xcc_saver_get_summary(s, &sum);
        print_summary(dom, &sum, c.p.xbzrle);
    }
out:
    if (rc != EXIT_OK)
        handover_abort(&ho, log);
    free(ho.name);
    free(ho.away);
    transport_close(&t);
    cancel_saver = NULL;
    xcc_saver_free(s);
    xcc_domain_close(d);
    free(c.xl_config);
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
