/*
 * cmd_restore.c - `xc-colo restore`: open the source (a file, stdin, an
 * fd, a command or a TCP connection, accepted with --listen), read the
 * stream's headers, create the sim target from the stream's size, run the
 * library's restorer and report.
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
#include "xen_receive.h"

/* restore's own options; the output ones are in save_opts.h. */
enum {
    OPT_LISTEN = SAVE_OPT_END,
    OPT_INTO_EXISTING,
    OPT_MEM,
    OPT_NO_MAP_CACHE,
    OPT_NO_VERIFY,
    OPT_CHECKPOINTED,
    OPT_COLO,
    OPT_WORKLOAD,
    OPT_AUTH_KEY_FILE,
    OPT_HANDSHAKE_TIMEOUT,
    OPT_LISTEN_TIMEOUT,
    OPT_CONFIG,
    OPT_NAME,
};

/* Largest --handshake-timeout and --listen-timeout: a day. */
#define MAX_TIMEOUT_MS 86400000ull

static void restore_usage(FILE *out)
{
    fprintf(out,
            "usage: xc-colo restore [options] FILE|- DOMAIN\n"
            "       xc-colo restore --listen tcp:[HOST:]PORT [options] [-] DOMAIN\n"
            "       xc-colo restore [-p] [-e] [--config FILE] [--name NAME] FILE|- xen:\n\n"
            "Reads a stream (from FILE, '-' for standard input, fd:N,\n"
            "exec:COMMAND or tcp:HOST:PORT; or the first connection accepted\n"
            "with --listen) and rebuilds DOMAIN's memory; an xl save image's\n"
            "framing (xl header, libxl records) is checked and stripped. A\n"
            "sim:NAME target is created with the stream's size; while the\n"
            "restore runs, and if it fails, it is marked incomplete ('xc-colo\n"
            "sim list' shows it).\n\n"
            "  --listen tcp:[HOST:]PORT  accept one connection and read it; HOST\n"
            "                        defaults to 127.0.0.1 (every interface:\n"
            "                        tcp:0.0.0.0:PORT or tcp:[::]:PORT); PORT 0\n"
            "                        picks a free port; the line 'listening on\n"
            "                        tcp:ADDR:PORT' on stderr names it\n"
            "  --auth-key-file FILE  with --listen: accept only a sender that\n"
            "                        proves it holds the same key (HMAC-SHA256\n"
            "                        challenge-response both ways; FILE private,\n"
            "                        16 bytes or more)\n"
            "  --handshake-timeout MS  with --listen: drop a peer that sends no\n"
            "                        stream header (or authentication) within MS\n"
            "                        (default 10000) and keep listening\n"
            "  --listen-timeout MS   with --listen: fail (exit 1) if no valid\n"
            "                        peer came within MS (default: wait)\n"
            "  --into-existing       restore into a sim guest that exists (it\n"
            "                        must have no process running)\n"
            "  --mem SIZE            size of a new sim target when the stream\n"
            "                        does not say (a --xen-compat stream)\n"
            "  --no-map-cache        map per batch and unmap, as stock Xen\n"
            "  --no-verify           do not check DIGEST records\n"
            "  --checkpointed        a checkpoint stream ('xc-colo checkpoint'):\n"
            "                        apply each epoch whole at its CHECKPOINT; if\n"
            "                        the stream breaks, keep the last complete\n"
            "                        checkpoint and exit 3\n"
            "  --colo                with --checkpointed: run the guest between\n"
            "                        checkpoints and send its dirty pages back\n"
            "  --workload SPEC       with --colo: the sim guest's workload (default:\n"
            "                        the one in the target's meta)\n"
            "  xen: (no id): create a new Xen domain that runs, as `xl restore`\n"
            "  does, from an xc-colo stream (its XBZRLE, zero and compressed\n"
            "  pages decoded on the way), an `xl save` image or an\n"
            "  `xc-colo save --xen-compat` one: libxl creates it from the\n"
            "  stream, which xc-colo checks and translates. With --listen, the\n"
            "  sender (xc-colo migrate) is told 'running DOMID' and destroys its\n"
            "  source. With --checkpointed (Remus; libxl refuses COLO for PV)\n"
            "  the domain stays paused while checkpoints come; when the stream\n"
            "  breaks it runs from the last whole checkpoint: exit 3 and\n"
            "  'failover: kept checkpoint K, domain D running'\n"
            "  --config FILE         the domain's config (xl syntax or libxl\n"
            "                        JSON), instead of the one in the image\n"
            "  --name NAME           the new domain's name, instead of the config's\n"
            "  -p                    leave the new domain paused\n"
            "  -e                    do not wait for the domain to die (without\n"
            "                        it xc-colo stays, as xl restore does)\n"
            "  --stats-json FILE     write the figures as JSON\n"
            "  --progress            progress lines (default: on a terminal)\n"
            "  --no-progress         none\n"
            "  -q, --quiet           errors only, no summary\n"
            "  -v, --verbose         more detail (twice: debug)\n"
            "  -h, --help            this text\n\n"
            "Exit status: 0 restored (and the digest matched), 1 error: a bad\n"
            "or truncated stream, a digest mismatch, a target problem; the\n"
            "message names the record and its offset. 2 usage. 3 (--checkpointed)\n"
            "failover: the stream broke after a checkpoint, which the target\n"
            "holds ('failover: kept checkpoint K' on standard output).\n");
}

/* A logger that drops everything: probing whether a guest exists. */
static xentoollog_logger *silent_logger(void)
{
    return (xentoollog_logger *)xtl_createlogger_stdiostream(
        stderr, XTL_NUM_LEVELS, XTL_STDIOSTREAM_HIDE_PROGRESS);
}

/* --checkpointed: what the commit callback needs. */
struct restore_ckpt {
    const char *simname; /* NULL: not a sim guest */
    const char *workload;
    xentoollog_logger *log;
    xcc_domain *d;
    bool colo;
    bool unmarked;       /* checkpoint 1 made the target complete */
    bool guest_started;  /* COLO: the guest process runs on the target */
};

/* After checkpoint k is in the target: complete at 1; COLO runs the guest. */
static int on_checkpoint_commit(void *opaque, uint64_t k)
{
    struct restore_ckpt *c = opaque;

    if (k == 1 && c->simname) {
        if (xcc_sim_set_incomplete(c->simname, 0, c->log) < 0) {
            cli_error("cannot mark sim:%s complete: %s", c->simname,
                      xcc_strerror(errno));
            return -1;
        }
        c->unmarked = true;
    }
    if (!c->colo)
        return 0;
    if (c->simname && !c->guest_started) {
        /* The seed only varies the workload's randomness. */
        if (xcc_sim_resume(c->simname, c->workload, k, c->log) < 0) {
            cli_error("COLO: cannot start the guest on sim:%s: %s",
                      c->simname, xcc_strerror(errno));
            return -1;
        }
        c->guest_started = true;
        return 0;
    }
    if (xcc_domain_unpause(c->d) < 0) {
        cli_error("COLO: cannot continue the guest: %s", xcc_strerror(errno));
        return -1;
    }
    return 0;
}

static bool fd_is_socket(int fd)
{
    struct stat st;

    return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* Runs a checkpointed restore; returns the exit status. */
static int restore_checkpointed(xcc_restorer *r, xcc_domain *d,
                                const struct transport *t, const char *dom,
                                bool colo, struct restore_ckpt *c)
{
    struct xcc_checkpoint_restore_params cp;
    uint64_t kept = 0;

    xcc_checkpoint_restore_params_init(&cp);
    /* A socket carries the acknowledgements (and COLO's lists) back. */
    if (fd_is_socket(t->fd))
        cp.back_fd = t->fd;
    if (colo && cp.back_fd < 0) {
        cli_error("--colo needs a connection to answer on (--listen, or a "
                  "socket fd:N), not %s", t->desc);
        return EXIT_FAIL;
    }
    c->colo = colo;
    cp.colo = colo;
    cp.on_commit = on_checkpoint_commit;
    cp.opaque = c;
    if (xcc_restorer_run_checkpointed(r, d, &cp, &kept) == 0)
        return EXIT_OK;
    if (errno == XCC_EFAILOVER) {
        cli_error("checkpoint stream into %s broke: %s", dom,
                  xcc_restorer_error(r));
        printf("failover: kept checkpoint %" PRIu64 "\n", kept);
        fflush(stdout);
        return EXIT_FAILOVER;
    }
    cli_error("restore into %s failed: %s%s", dom, xcc_strerror(errno),
              c->unmarked ? "" : " (the target is marked incomplete)");
    return EXIT_FAIL;
}

int cmd_restore(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"into-existing", no_argument, NULL, OPT_INTO_EXISTING},
        {"mem", required_argument, NULL, OPT_MEM},
        {"no-map-cache", no_argument, NULL, OPT_NO_MAP_CACHE},
        {"no-verify", no_argument, NULL, OPT_NO_VERIFY},
        {"checkpointed", no_argument, NULL, OPT_CHECKPOINTED},
        {"colo", no_argument, NULL, OPT_COLO},
        {"workload", required_argument, NULL, OPT_WORKLOAD},
        {"auth-key-file", required_argument, NULL, OPT_AUTH_KEY_FILE},
        {"handshake-timeout", required_argument, NULL, OPT_HANDSHAKE_TIMEOUT},
        {"listen-timeout", required_argument, NULL, OPT_LISTEN_TIMEOUT},
        {"config", required_argument, NULL, OPT_CONFIG},
        {"name", required_argument, NULL, OPT_NAME},
        OUT_LONG_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    struct xcc_restore_params p;
    struct xcc_restore_stream_info info;
    struct transport t = {.fd = -1};
    struct out_opts out;
    struct transport_opts topts;
    static struct transport_key key;
    const char *listen = NULL, *src = NULL, *dom, *key_file = NULL;
    bool timeouts_given = false;
    const char *simname = NULL;
    bool into_existing = false, marked = false;
    bool checkpointed = false, colo = false;
    const char *workload = NULL;
    int opt, rc = EXIT_FAIL;
    uint64_t mem = 0;
    xentoollog_logger *log = NULL;
    xcc_restorer *r = NULL;
    xcc_domain *d = NULL;
    struct xen_receive_opts xo = {0};
    bool xen_new_opts = false;

    xcc_restore_params_init(&p);
    out_opts_init(&out);
    transport_opts_init(&topts);
    while ((opt = getopt_long(argc, argv, "qvhpe", opts, NULL)) != -1) {
        if (out_opts_parse(&out, opt, optarg))
            continue;
        switch (opt) {
        case OPT_LISTEN: listen = optarg; break;
        case OPT_INTO_EXISTING: into_existing = true; break;
        case OPT_MEM:
            if (cli_parse_size(optarg, "--mem", &mem) < 0)
                return EXIT_USAGE;
            break;
        case OPT_NO_MAP_CACHE: p.no_map_cache = 1; break;
        case OPT_NO_VERIFY: p.verify = 0; break;
        case OPT_CHECKPOINTED: checkpointed = true; break;
        case OPT_COLO: colo = true; break;
        case OPT_WORKLOAD: workload = optarg; break;
        case OPT_AUTH_KEY_FILE: key_file = optarg; break;
        case OPT_HANDSHAKE_TIMEOUT:
        case OPT_LISTEN_TIMEOUT: {
            const char *name = opt == OPT_LISTEN_TIMEOUT ? "--listen-timeout"
                                                         : "--handshake-timeout";
            uint64_t v;
            if (cli_parse_u64(optarg, name, &v) < 0)
                return EXIT_USAGE;
            if (!v || v > MAX_TIMEOUT_MS) {
                cli_error("%s: expected 1..%llu ms, got %s", name,
                          MAX_TIMEOUT_MS, optarg);
                return EXIT_USAGE;
            }
            if (opt == OPT_LISTEN_TIMEOUT)
                topts.listen_timeout_ms = (unsigned)v;
            else
                topts.handshake_timeout_ms = (unsigned)v;
            timeouts_given = true;
            break;
        }
        case OPT_CONFIG: xo.config_file = optarg; xen_new_opts = true; break;
        case OPT_NAME:
            if (!*optarg) {
                cli_error("--name: an empty name");
                return EXIT_USAGE;
            }
            xo.name = optarg;
            xen_new_opts = true;
            break;
        case 'p': xo.paused = true; xen_new_opts = true; break;
        case 'e': xo.no_wait = true; xen_new_opts = true; break;
        case 'h': restore_usage(stdout); return EXIT_OK;
        default: restore_usage(stderr); return EXIT_USAGE;
        }
    }
    /* With --listen the stream comes from the connection; the FILE operand
     * of the form `restore --listen ADDR - DOMAIN` may stand as '-'. */
    if (listen && optind + 2 == argc && !strcmp(argv[optind], "-"))
        optind++;
    if (listen ? optind + 1 != argc : optind + 2 != argc) {
        cli_error("restore: expected %s (try --help)",
                  listen ? "DOMAIN after --listen" : "FILE and DOMAIN");
        return EXIT_USAGE;
    }
    if (colo && !checkpointed) {
        cli_error("restore: --colo needs --checkpointed");
        return EXIT_USAGE;
    }
    if (workload && !colo) {
        cli_error("restore: --workload needs --colo");
        return EXIT_USAGE;
    }
    if ((key_file || timeouts_given) && !listen) {
        cli_error("restore: --%s needs --listen",
                  key_file ? "auth-key-file" : "handshake-timeout and "
                                               "--listen-timeout");
        return EXIT_USAGE;
    }
    if (!listen)
        src = argv[optind++];
    if (listen ? transport_check_spec(listen, TRANSPORT_LISTEN) < 0
               : transport_check_spec(src, TRANSPORT_SRC) < 0)
        return EXIT_USAGE;
    if (key_file) {
        if (transport_load_key(key_file, &key) < 0)
            return EXIT_USAGE;
        topts.key = &key;
    }
    dom = argv[optind];
    if (!strcmp(dom, XEN_RECEIVE_NEW_DOMAIN)) {
        if (into_existing || colo || mem || p.no_map_cache) {
            cli_error("restore into a new Xen domain (xen:) takes none of "
                      "--into-existing, --colo (libxl refuses COLO for PV), "
                      "--mem, --no-map-cache");
            return EXIT_USAGE;
        }
        xo.checkpointed = checkpointed;
        xo.verify = p.verify;
        out_opts_finish(&out);
        xo.stats_json = out.stats_json;
        xo.verbosity = out.verbosity;
        signal(SIGPIPE, SIG_IGN);
        topts.quiet = out.verbosity < 0;
        return xen_receive_cmd(src, listen, &topts, &xo, out.progress);
    }
    if (xen_new_opts) {
        cli_error("restore: -p, -e, --config and --name are for a new Xen "
                  "domain (DOMAIN xen:), not %s", dom);
        return EXIT_USAGE;
    }
    if (!strncmp(dom, "sim:", 4))
        simname = dom + 4;
    out_opts_finish(&out);
    p.progress = out.progress;
    signal(SIGPIPE, SIG_IGN);
    log = progress_logger(out.verbosity, out.progress);
    if (!log)
        goto out;

    /* Refuse early, before waiting for a stream, when the target is wrong. */
    if (simname) {
        struct xcc_sim_info si;
        xentoollog_logger *quiet = silent_logger();
        int exists = xcc_sim_get_info(simname, &si, quiet) == 0;
        xtl_logger_destroy(quiet);
        if (exists && !into_existing) {
            cli_error("%s exists; restore into it with --into-existing, or "
                      "'xc-colo sim stop %s' first", dom, simname);
            goto out;
        }
        if (!exists && into_existing) {
            cli_error("%s does not exist (--into-existing)", dom);
            goto out;
        }
        if (exists && (si.state == XCC_SIM_RUNNING ||
                       si.state == XCC_SIM_PAUSED)) {
            cli_error("%s has a running guest process (pid %" PRId64
                      "); stop it first", dom, si.pid);
            goto out;
        }
    }

    topts.quiet = out.verbosity < 0;
    if (listen ? transport_listen(listen, &topts, &t) < 0
               : transport_open_src(src, &t) < 0)
        goto out;
    if (!listen && !strcmp(src, "-") && isatty(STDIN_FILENO)) {
        cli_error("refusing to read a stream from a terminal");
        goto out;
    }
    r = xcc_restorer_new(t.fd, &p, log);
    if (!r) {
        cli_error("cannot restore: %s", xcc_strerror(errno));
        goto out;
    }
    if (xcc_restorer_begin(r, &info) < 0) {
        cli_error("restore from '%s' failed: %s", t.desc, xcc_strerror(errno));
        goto out;
    }

    if (simname && !into_existing) {
        uint64_t size = info.nr_pfns * info.page_size;
        if (!info.nr_pfns) {
            if (!mem) {
                cli_error("the stream does not give the guest's size (a Xen "
                          "stream): give --mem SIZE for the new %s", dom);
                goto out;
            }
            size = mem;
        } else if (mem && mem != size) {
            cli_error("--mem %" PRIu64 " differs from the stream's guest (%"
                      PRIu64 " bytes)", mem, size);
            goto out;
        }
        if (xcc_sim_create(simname, size, log) < 0) {
            cli_error("cannot create %s: %s", dom, xcc_strerror(errno));
            goto out;
        }
    }
    if (simname) {
        if (xcc_sim_set_incomplete(simname, 1, log) < 0) {
            cli_error("cannot mark %s incomplete: %s", dom, xcc_strerror(errno));
            goto out;
        }
        marked = true;
    }
    d = xcc_domain_open(dom, log, 0);
    if (!d) {
        cli_error("cannot open domain '%s': %s", dom, xcc_strerror(errno));
        goto out;
    }
    if (checkpointed) {
        struct restore_ckpt rc_ctx = {.simname = simname, .workload = workload,
                                      .log = log, .d = d};
        int crc = restore_checkpointed(r, d, &t, dom, colo, &rc_ctx);
        if (rc_ctx.unmarked)
            marked = false;
        if (crc != EXIT_OK) {
            rc = crc;
            goto stats;
        }
    } else if (xcc_restorer_run(r, d) < 0) {
        cli_error("restore into %s failed: %s%s", dom, xcc_strerror(errno),
                  marked ? " (the target is marked incomplete)" : "");
        goto stats;
    }
    if (marked && xcc_sim_set_incomplete(simname, 0, log) < 0) {
        cli_error("cannot mark %s complete: %s", dom, xcc_strerror(errno));
        goto stats;
    }
    rc = EXIT_OK;
stats:
    if (out.stats_json) {
        const char *json = xcc_restorer_stats_json(r);
        if (!json || cli_write_text_file(out.stats_json, json) < 0)
            rc = EXIT_FAIL;
    }
    if (rc == EXIT_OK && out.verbosity >= 0)
        fprintf(stderr, "xc-colo: restored %s from %s\n", dom, t.desc);
out:
    /* The restorer's map cache holds mappings of d: free it first. */
    xcc_restorer_free(r);
    xcc_domain_close(d);
    if (transport_close(&t) < 0)
        rc = EXIT_FAIL;
    if (log)
        xtl_logger_destroy(log);
    return rc;
}
