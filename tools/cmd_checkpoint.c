/*
 * cmd_checkpoint.c - `xc-colo checkpoint`: continuous checkpoints of a
 * running domain (Remus/COLO replication) to a receiver running
 * `xc-colo restore --checkpointed`. Parses the save options and its own,
 * opens the domain and the destination, runs the library's checkpointer,
 * keeps the digest log and reports.
 */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"
#include "save_opts.h"

/* How long the sender keeps retrying a refused TCP connection. */
#define CONNECT_TIMEOUT_MS 10000u
/* Largest --interval: a day. */
#define MAX_INTERVAL_MS 86400000ull

/* checkpoint's own options; the shared ones are in save_opts.h. */
enum {
    OPT_INTERVAL = SAVE_OPT_END,
    OPT_COUNT,
    OPT_COLO,
    OPT_DIGEST_LOG,
    OPT_DIGEST_EXCLUDE_PT,
    OPT_DIGEST_EXCLUDE_PFNS,
    OPT_BACK_TIMEOUT,
};

/* The first SIGINT/SIGTERM sets stop_flag: finish the current
 * checkpoint, then END. A second one cancels the run (the guest is
 * continued, no END) and the command exits 128 + the signal. */
static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t cancel_signal;
static xcc_checkpointer *volatile cancel_ck;

static void on_stop_signal(int sig)
{
    if (!stop_flag) {
        stop_flag = 1;
        return;
    }
    cancel_signal = sig;
    if (cancel_ck)
        xcc_checkpointer_cancel(cancel_ck);
}

static void checkpoint_usage(FILE *out)
{
    fprintf(out,
            "usage: xc-colo checkpoint [options] DOMAIN DEST\n\n"
            "Replicates DOMAIN continuously to DEST (tcp:HOST:PORT, a peer\n"
            "running 'xc-colo restore --checkpointed --listen'; fd:N;\n"
            "exec:COMMAND; '-' or a FILE): a live phase as 'migrate' does,\n"
            "then a checkpoint every interval: pause, send the pages dirtied\n"
            "since the last one, CHECKPOINT, unpause. It ends after --count\n"
            "checkpoints or on SIGINT/SIGTERM, finishing the current one, and\n"
            "leaves the guest paused (-c: running). A second signal abandons\n"
            "the run: the guest is continued, no END is sent.\n\n"
            "  --interval MS         between checkpoints (default 200; 0: as "
            "fast as\n"
            "                        possible)\n"
            "  --count N             stop after N checkpoints (default: on a "
            "signal)\n"
            "  --colo                COLO: the secondary runs the guest too "
            "and sends\n"
            "                        back the pages it wrote (needs tcp: or a "
            "socket fd:)\n"
            "  --digest-log FILE     append 'K DIGEST' per checkpoint, written "
            "before\n"
            "                        checkpoint K is sent\n"
            "  --digest-exclude-pagetables  the logged digest counts PV page-table\n"
            "                        pages as zeros, as 'digest --exclude-pagetables'\n"
            "  --digest-exclude-pfns LIST  and these pfns (PFN[-PFN][,...]), as\n"
            "                        'digest --exclude-pfns'\n"
            "  --back-timeout MS     wait for the receiver's answers (default "
            "10000)\n"
            "  -x, --xbzrle          send re-dirtied pages as XBZRLE deltas\n"
            "      --cache-size SIZE XBZRLE cache (default 64M)\n"
            "      --no-map-cache    map per batch and unmap, as stock Xen\n"
            "      --xen-compat      Xen records only (sim: guests; a Xen "
            "domain is refused)\n"
            "      --verify          DIGEST with every checkpoint (default "
            "for sim:)\n"
            "      --no-verify       none\n"
            "      --max-iters N     live passes before checkpoint 1 (default "
            "5)\n"
            "      --target-dirty N  end the live phase at N dirty pages "
            "(default 50)\n"
            "      --max-downtime MS end it once checkpoint 1 is estimated to "
            "fit MS\n"
            "      --min-remaining N with --abort-if-busy: most dirty pages "
            "checkpoint 1\n"
            "                        may carry (default: --target-dirty)\n"
            "      --abort-if-busy   give up (exit 1) when the live phase does "
            "not converge\n"
            "      --mode OCTAL      permission bits of a FILE destination "
            "(default 600)\n"
            "      --auth-key-file F tcp: destination: both sides prove they "
            "hold the key\n"
            "                        in F (restore --listen --auth-key-file F)\n"
            "      --max-bandwidth RATE  the live phase's limit on the wire "
            "(1G = 1 Gbit/s)\n"
            "      --suspend-timeout MS  Xen: how long the guest may take "
            "to suspend itself\n"
            "                        for a checkpoint (default 30000)\n"
            "      --compress zstd[:LEVEL]  whole pages through zstd\n"
            "      --threads N       threads that classify and encode pages "
            "(default: the\n"
            "                        online CPUs, at most 8; 1: one thread)\n"
            "      --stats-json FILE the figures as JSON, with a \"checkpoint\" "
            "section\n"
            "  -c, --continue        leave the guest running at the end\n"
            "      --progress        progress lines (default: on a terminal)\n"
            "      --no-progress     none\n"
            "  -q, --quiet           errors only, no summary\n"
            "  -v, --verbose         more detail (twice: debug)\n"
            "  -h, --help            this text\n\n"
            "Exit status: 0 done (END sent), 1 error, 2 usage, 128+N "
            "abandoned by\na second signal N.\n");
}

struct ckpt_cli {
    struct save_opts so; /* the live phase runs as `migrate` does */
    struct xcc_checkpoint_params cp;
    const char *digest_log;
    uint64_t *digest_excluded; /* --digest-exclude-pfns */
    size_t ndigest_excluded;
};

static int parse_args(int argc, char **argv, struct ckpt_cli *c)
{
    static const struct option opts[] = {
        SAVE_LONG_OPTIONS,
        SAVE_CONVERGE_LONG_OPTIONS,
        {"interval", required_argument, NULL, OPT_INTERVAL},
        {"count", required_argument, NULL, OPT_COUNT},
        {"colo", no_argument, NULL, OPT_COLO},
        {"digest-log", required_argument, NULL, OPT_DIGEST_LOG},
        {"digest-exclude-pagetables", no_argument, NULL, OPT_DIGEST_EXCLUDE_PT},
        {"digest-exclude-pfns", required_argument, NULL, OPT_DIGEST_EXCLUDE_PFNS},
        {"back-timeout", required_argument, NULL, OPT_BACK_TIMEOUT},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    uint64_t v;
    int opt, known;

    memset(c, 0, sizeof(*c));
    /* Always live: -l is accepted and changes nothing. */
    save_opts_init(&c->so, true);
    xcc_checkpoint_params_init(&c->cp);
    optind = 1;
    while ((opt = getopt_long(argc, argv, "xlcqvh", opts, NULL)) != -1) {
        known = save_opts_parse(&c->so, opt, optarg);
        if (known < 0)
            return EXIT_USAGE;
        if (known)
            continue;
        switch (opt) {
        case OPT_INTERVAL:
            if (cli_parse_u64(optarg, "--interval", &v) < 0)
                return EXIT_USAGE;
            if (v > MAX_INTERVAL_MS) {
                cli_error("--interval: at most %llu ms, got %s",
                          MAX_INTERVAL_MS, optarg);
                return EXIT_USAGE;
            }
            c->cp.interval_ms = (uint32_t)v;
            break;
        case OPT_COUNT:
            if (cli_parse_u64(optarg, "--count", &c->cp.count) < 0)
                return EXIT_USAGE;
            if (!c->cp.count) {
                cli_error("--count: must be at least 1");
                return EXIT_USAGE;
            }
            break;
        case OPT_COLO: c->cp.colo = 1; break;
        case OPT_DIGEST_LOG: c->digest_log = optarg; break;
        case OPT_DIGEST_EXCLUDE_PT:
            c->cp.digest_flags |= XCC_DIGEST_EXCLUDE_PAGETABLES;
            break;
        case OPT_DIGEST_EXCLUDE_PFNS:
            free(c->digest_excluded);
            c->digest_excluded = NULL;
            if (cli_parse_pfn_list(optarg, "--digest-exclude-pfns",
                                   &c->digest_excluded,
                                   &c->ndigest_excluded) < 0)
                return EXIT_USAGE;
            c->cp.digest_flags |= XCC_DIGEST_EXCLUDE_LISTED;
            break;
        case OPT_BACK_TIMEOUT:
            if (cli_parse_u64(optarg, "--back-timeout", &v) < 0)
                return EXIT_USAGE;
            if (!v || v > MAX_INTERVAL_MS) {
                cli_error("--back-timeout: expected 1..%llu ms, got %s",
                          MAX_INTERVAL_MS, optarg);
                return EXIT_USAGE;
            }
            c->cp.back_timeout_ms = (uint32_t)v;
            break;
        case 'h': checkpoint_usage(stdout); return EXIT_OK;
        default: checkpoint_usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind + 2 != argc) {
        cli_error("checkpoint: expected DOMAIN and DEST (try --help)");
        return EXIT_USAGE;
    }
    if (save_opts_finish(&c->so, argv[optind + 1]) < 0)
        return EXIT_USAGE;
    return -1;
}

struct digest_log {
    FILE *f;
    const char *path;
};

/* Writes "K DIGEST" and flushes it before checkpoint K goes out. */
static int log_digest(void *opaque, uint64_t k, const uint8_t *digest)
{
    struct digest_log *dl = opaque;
    char hex[33];

    if (!dl->f || !digest)
        return 0;
    cli_hex_digest(digest, hex);
    if (fprintf(dl->f, "%" PRIu64 " %s\n", k, hex) < 0 || fflush(dl->f)) {
        cli_error("writing the digest log '%s': %s", dl->path,
                  strerror(errno));
        return -1;
    }
    return 0;
}

static void print_ms(const char *what, double p50, double p99, double max)
{
    if (p50 < 0)
        fprintf(stderr, "  %-17s %10s\n", what, "unknown (no back channel)");
    else
        fprintf(stderr, "  %-17s p50 %.2f  p99 %.2f  max %.2f ms\n", what,
                p50, p99, max);
}

static void print_summary(const char *dom, const struct xcc_checkpoint_summary *s)
{
    fprintf(stderr,
            "xc-colo: %" PRIu64 " checkpoints of %s (%" PRIu64
            " acknowledged)\n"
            "  rate              %10.1f checkpoints/s\n"
            "  per checkpoint    %10.0f pages, %.0f bytes\n",
            s->checkpoints, dom, s->acked, s->per_second, s->pages_mean,
            s->bytes_mean);
    print_ms("pause", s->pause_p50_ms, s->pause_p99_ms, s->pause_max_ms);
    print_ms("commit", s->commit_p50_ms, s->commit_p99_ms, s->commit_max_ms);
}

/* True for a socket: the receiver can answer on it. */
static bool is_socket(int fd)
{
    struct stat st;

    return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

int cmd_checkpoint(int argc, char **argv)
{
    struct ckpt_cli c;
    struct transport t = {.fd = -1};
    struct digest_log dl = {0};
    struct sigaction sa;
    xentoollog_logger *log = NULL;
    xcc_domain *d = NULL;
    xcc_checkpointer *ck = NULL;
    const char *dom, *dest;
    int rc = parse_args(argc, argv, &c);

    if (rc >= 0)
        return rc;
    rc = EXIT_FAIL;
    dom = argv[optind];
    dest = argv[optind + 1];
    signal(SIGPIPE, SIG_IGN);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    log = progress_logger(c.so.out.verbosity, c.so.out.progress);
    if (!log)
        goto out;
    d = save_opts_open_domain(&c.so, dom, log);
    if (!d)
        goto out;
    if (c.ndigest_excluded &&
        xcc_domain_digest_exclude(d, c.digest_excluded, c.ndigest_excluded) <
            0) {
        cli_error("--digest-exclude-pfns: %s", xcc_strerror(errno));
        goto out;
    }
    if (c.digest_log) {
        dl.path = c.digest_log;
        dl.f = fopen(c.digest_log, "a");
        if (!dl.f) {
            cli_error("cannot open the digest log '%s': %s", c.digest_log,
                      strerror(errno));
            goto out;
        }
        c.cp.want_digest = 1;
        c.cp.on_checkpoint = log_digest;
        c.cp.opaque = &dl;
    }
    if (save_opts_open_dest(&c.so, dest, CONNECT_TIMEOUT_MS, &t) < 0)
        goto out;
    if (is_socket(t.fd))
        c.cp.back_fd = t.fd;
    if (c.cp.colo && c.cp.back_fd < 0) {
        cli_error("--colo needs a connection the secondary can answer on "
                  "(tcp:HOST:PORT or a socket fd:N), not '%s'", dest);
        goto out;
    }
    c.cp.stop = (const volatile int *)&stop_flag;
    ck = xcc_checkpointer_new(d, t.fd, &c.so.p, &c.cp, log);
    if (!ck) {
        cli_error("cannot checkpoint '%s': %s", dom, xcc_strerror(errno));
        goto out;
    }
    cancel_ck = ck;
    if (cancel_signal)
        xcc_checkpointer_cancel(ck);
    if (xcc_checkpointer_run(ck) < 0) {
        if (cancel_signal) {
            cli_error("checkpoint of '%s' abandoned on a second SIG%s: the guest "
                      "continues; the stream to '%s' has no END (the "
                      "receiver keeps its last checkpoint)", dom,
                      sigabbrev_np(cancel_signal), dest);
            rc = 128 + cancel_signal;
        } else {
            cli_error("checkpoint of '%s' to '%s' failed: %s", dom, dest,
                      xcc_strerror(errno));
        }
    } else {
        rc = EXIT_OK;
    }
    rc = save_opts_end_run(&c.so, d, dom, &t, xcc_checkpointer_stats_json(ck),
                           rc);
    if (rc == EXIT_OK && c.so.out.verbosity >= 0) {
        struct xcc_checkpoint_summary sum;
        xcc_checkpointer_get_summary(ck, &sum);
        print_summary(dom, &sum);
    }
out:
    transport_close(&t);
    cancel_ck = NULL;
    xcc_checkpointer_free(ck);
    xcc_domain_close(d);
    free(c.so.xl_config);
    free(c.digest_excluded);
    if (dl.f && fclose(dl.f) != 0 && rc == EXIT_OK) {
        cli_error("closing the digest log '%s': %s", c.digest_log,
                  strerror(errno));
        rc = EXIT_FAIL;
    }
    if (log)
        xtl_logger_destroy(log);
    return rc;
}
