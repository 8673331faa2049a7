/*
 * cmd_sim.c - `xc-colo sim start|create|resume|list|pause|unpause|stop|
 * digest|verify`: manage simulated guests (sim:NAME).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Room for the report of a badly broken ledger. */
#define VERIFY_REPORT_BYTES 16384

static void sim_usage(FILE *out)
{
    fprintf(
        out,
        "usage: xc-colo sim COMMAND [OPTIONS] [NAME]\n\n"
        "  start NAME --mem SIZE --workload SPEC [--seed N] [--holes LIST]\n"
        "        [--tracking auto|pagemap|bitmap]\n"
        "                  create a guest and start its process\n"
        "  create NAME --mem SIZE\n"
        "                  an empty guest with no process (restore target)\n"
        "  resume NAME [--workload SPEC] [--seed N] [--tracking MODE]\n"
        "                  start a process on existing (restored) RAM\n"
        "  list [--json]   name, pid, state, size, workload, tracking\n"
        "  pause NAME      stop the guest process (SIGSTOP) and wait\n"
        "  unpause NAME    continue it (SIGCONT) and wait\n"
        "  stop NAME       kill the process, remove the guest\n"
        "  digest NAME [--chunks]\n"
        "                  XXH3-128 of the RAM (holes as zeros), 32 hex\n"
        "  verify NAME     check the ledger workload's records in RAM\n\n"
        "Guests live in /dev/shm/xc-colo/NAME (root), /dev/shm/xc-colo-UID/NAME\n"
        "(other users) or $XCC_SIM_ROOT/NAME; their domain name is sim:NAME.\n"
        "That directory (made 0700) must be the caller's own, writable by no\n"
        "one else, and not a symlink.\n"
        "'xc-colo sim COMMAND --help' describes a command.\n");
}

static void workload_help(FILE *out)
{
    fprintf(out,
            "\nWorkloads (SPEC), combined with '+' (e.g. ledger+hotpages),\n"
            "one pass of each per ~1 ms tick:\n"
            "  hotpages     4 bytes incremented in each of pfns 0-4095 "
            "(16 MiB)\n"
            "  sparse64     1 byte changed in each of pfns 4096-4159\n"
            "  random:PAGES_PER_S[:FRACTION]\n"
            "               random pages at that rate, FRACTION of each "
            "changed\n"
            "               (default 0.05)\n"
            "  sweep[:PAGES_PER_S]\n"
            "               every page in turn (default 262144 pages/s)\n"
            "  count:PAGES  the same PAGES pages (spread over RAM) rewritten "
            "each tick:\n"
            "               exactly PAGES dirty pages per checkpoint epoch\n"
            "  ledger       self-checking records in pfns 4352-5375 (needs "
            "21 MiB)\n"
            "  idle         nothing\n");
}

static const char *const start_help =
    "usage: xc-colo sim start NAME --mem SIZE --workload SPEC [--seed N]\n"
    "                         [--holes LIST] [--tracking MODE]\n\n"
    "Creates /dev/shm/xc-colo/NAME (RAM file, meta.json), starts the guest\n"
    "process detached and returns once it runs. A fresh guest's RAM is\n"
    "filled with pseudo-random content, some pages left zero.\n\n"
    "  --mem SIZE        RAM size, a page multiple (K, M, G suffixes)\n"
    "  --workload SPEC   what the guest does (below)\n"
    "  --seed N          randomness of fill and workload (default 1)\n"
    "  --holes LIST      pfns that are holes, e.g. 100-199,4096\n"
    "  --tracking MODE   dirty tracking: auto (default: pagemap, falling\n"
    "                    back to bitmap), pagemap (PAGEMAP_SCAN on\n"
    "                    userfaultfd write-protect, Linux 6.7+) or bitmap\n";

static const char *const create_help =
    "usage: xc-colo sim create NAME --mem SIZE [--fill PATTERN [--seed N]]\n\n"
    "Creates guest NAME with zeroed RAM and no process: the target of\n"
    "'xc-colo restore FILE sim:NAME'. 'sim resume' starts a process on it.\n"
    "  --fill PATTERN  write a memory image first (benchmarks): linux (an\n"
    "                  idle guest's memory, compressible: 40% zero pages,\n"
    "                  code, text, kernel data, 10% noise), random, zero\n"
    "  --seed N        the image's randomness (default 1)\n";

static const char *const resume_help =
    "usage: xc-colo sim resume NAME [--workload SPEC] [--seed N]\n"
    "                          [--tracking MODE]\n\n"
    "Starts a guest process on NAME's existing RAM (for example restored),\n"
    "without filling it. The workload defaults to the one NAME ran. A ledger\n"
    "in RAM is continued; a broken one is refused.\n";

enum {
    OPT_MEM = 256,
    OPT_WORKLOAD,
    OPT_SEED,
    OPT_HOLES,
    OPT_TRACKING,
    OPT_JSON,
    OPT_CHUNKS,
    OPT_FILL
};

struct sim_opts {
    uint64_t mem;
    bool have_mem;
    const char *workload;
    uint64_t seed;
    const char *holes;
    const char *tracking;
    bool json, chunks;
    const char *fill;
    const char *name;
};

/*
 * Parses the options in the `allowed` mask (ALLOW(OPT_x) | ...) and at most
 * one NAME. Returns -1 after printing an error, 1 after --help (with
 * *exit_code set either way), 0 otherwise.
 */
#define ALLOW(o) (1u << ((o)-OPT_MEM))
static int parse(int argc, char **argv, unsigned allowed, bool need_name,
                 const char *help, struct sim_opts *o, int *exit_code)
{
    static const struct option opts[] = {
        {"mem", required_argument, NULL, OPT_MEM},
        {"workload", required_argument, NULL, OPT_WORKLOAD},
        {"seed", required_argument, NULL, OPT_SEED},
        {"holes", required_argument, NULL, OPT_HOLES},
        {"tracking", required_argument, NULL, OPT_TRACKING},
        {"json", no_argument, NULL, OPT_JSON},
        {"chunks", no_argument, NULL, OPT_CHUNKS},
        {"fill", required_argument, NULL, OPT_FILL},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    int opt;

    memset(o, 0, sizeof(*o));
    o->seed = 1;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (opt >= OPT_MEM && !(allowed & ALLOW(opt))) {
            cli_error("sim %s: option '%s' does not apply", argv[0],
                      argv[optind - 1]);
            *exit_code = EXIT_USAGE;
            return -1;
        }
        switch (opt) {
        case OPT_MEM:
            if (cli_parse_size(optarg, "--mem", &o->mem) < 0) {
                *exit_code = EXIT_USAGE;
                return -1;
            }
            o->have_mem = true;
            break;
        case OPT_WORKLOAD:
            o->workload = optarg;
            break;
        case OPT_SEED:
            if (cli_parse_u64(optarg, "--seed", &o->seed) < 0) {
                *exit_code = EXIT_USAGE;
                return -1;
            }
            break;
        case OPT_HOLES:
            o->holes = optarg;
            break;
        case OPT_TRACKING:
            o->tracking = optarg;
            break;
        case OPT_JSON:
            o->json = true;
            break;
        case OPT_CHUNKS:
            o->chunks = true;
            break;
        case OPT_FILL:
            o->fill = optarg;
            break;
        case 'h':
            fputs(help, stdout);
            if (allowed & ALLOW(OPT_WORKLOAD))
                workload_help(stdout);
            *exit_code = EXIT_OK;
            return 1;
        default:
            cli_error("sim %s: unknown option '%s' (try 'xc-colo sim %s "
                      "--help')",
                      argv[0], argv[optind - 1], argv[0]);
            *exit_code = EXIT_USAGE;
            return -1;
        }
    }
    if (optind < argc)
        o->name = argv[optind++];
    if (optind < argc) {
        cli_error("sim %s: unexpected argument '%s'", argv[0], argv[optind]);
        *exit_code = EXIT_USAGE;
        return -1;
    }
    if (need_name && !o->name) {
        cli_error("sim %s: missing guest NAME (try 'xc-colo sim %s --help')",
                  argv[0], argv[0]);
        *exit_code = EXIT_USAGE;
        return -1;
    }
    if (!need_name && o->name) {
        cli_error("sim %s: unexpected argument '%s'", argv[0], o->name);
        *exit_code = EXIT_USAGE;
        return -1;
    }
    return 0;
}

/* Runs a library call that logs its own error; adds the command's view. */
static int finish(int rc, xentoollog_logger *log, const char *what,
                  const char *name)
{
    int e = errno;

    xtl_logger_destroy(log);
    if (rc < 0) {
        cli_error("sim %s %s: %s", what, name, xcc_strerror(e));
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

static int sim_start(int argc, char **argv)
{
    struct sim_opts o;
    int ec, rc;

    if ((rc = parse(argc, argv,
                    ALLOW(OPT_MEM) | ALLOW(OPT_WORKLOAD) | ALLOW(OPT_SEED) |
                        ALLOW(OPT_HOLES) | ALLOW(OPT_TRACKING),
                    true, start_help, &o, &ec)) != 0)
        return ec;
    if (!o.have_mem || !o.workload) {
        cli_error("sim start: %s is required (try 'xc-colo sim start "
                  "--help')",
                  !o.have_mem ? "--mem SIZE" : "--workload SPEC");
        return EXIT_USAGE;
    }
    xentoollog_logger *log = cli_logger(0, false);
    rc = xcc_sim_start(o.name, o.mem, o.workload, o.seed, o.holes, o.tracking,
                       log);
    return finish(rc, log, "start", o.name);
}

static int sim_create(int argc, char **argv)
{
    struct sim_opts o;
    int ec, rc;

    if ((rc = parse(argc, argv, ALLOW(OPT_MEM) | ALLOW(OPT_FILL) |
                    ALLOW(OPT_SEED), true, create_help, &o, &ec)) != 0)
        return ec;
    if (!o.have_mem) {
        cli_error("sim create: --mem SIZE is required");
        return EXIT_USAGE;
    }
    xentoollog_logger *log = cli_logger(0, false);
    rc = xcc_sim_create(o.name, o.mem, log);
    if (rc == 0 && o.fill && (rc = xcc_sim_fill(o.name, o.fill, o.seed,
                                                log)) < 0)
        xcc_sim_stop(o.name, log); /* nothing half-made is left */
    return finish(rc, log, "create", o.name);
}

static int sim_resume(int argc, char **argv)
{
    struct sim_opts o;
    int ec, rc;

    if ((rc = parse(argc, argv,
                    ALLOW(OPT_WORKLOAD) | ALLOW(OPT_SEED) | ALLOW(OPT_TRACKING),
                    true, resume_help, &o, &ec)) != 0)
        return ec;
    xentoollog_logger *log = cli_logger(0, false);
    rc = 0;
    if (o.tracking)
        rc = xcc_sim_set_tracking(o.name, o.tracking, log);
    if (rc == 0)
        rc = xcc_sim_resume(o.name, o.workload, o.seed, log);
    return finish(rc, log, "resume", o.name);
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            putchar('\\');
        putchar(*s);
    }
    putchar('"');
}

static int sim_list(int argc, char **argv)
{
    static const char *const help =
        "usage: xc-colo sim list [--json]\n\n"
        "Lists the simulated guests: name, pid, state (running, paused,\n"
        "dead, none = no process, incomplete = a restore has not finished,\n"
        "invalid = unreadable meta.json), size, workload, dirty tracking.\n";
    struct sim_opts o;
    struct xcc_sim_info *list;
    size_t n;
    int ec, rc;

    if ((rc = parse(argc, argv, ALLOW(OPT_JSON), false, help, &o, &ec)) != 0)
        return ec;
    xentoollog_logger *log = cli_logger(0, false);
    if (xcc_sim_list(&list, &n, log) < 0) {
        cli_error("sim list: %s", xcc_strerror(errno));
        xtl_logger_destroy(log);
        return EXIT_FAIL;
    }
    xtl_logger_destroy(log);
    if (o.json) {
        printf("[");
        for (size_t i = 0; i < n; i++) {
            const struct xcc_sim_info *g = &list[i];

            printf("%s\n  {\"name\": ", i ? "," : "");
            json_string(g->name);
            printf(", \"pid\": %" PRId64 ", \"state\": \"%s\", "
                   "\"mem_bytes\": %" PRIu64 ", \"workload\": ",
                   g->pid, xcc_sim_state_name(g->state), g->mem_bytes);
            json_string(g->workload);
            printf(", \"tracking\": ");
            json_string(g->tracking);
            printf(", \"holes\": ");
            json_string(g->holes);
            printf(", \"seed\": %" PRIu64 ", \"ticks\": %" PRIu64 "}", g->seed,
                   g->ticks);
        }
        printf("%s]\n", n ? "\n" : "");
    } else {
        printf("%-24s %8s %-10s %10s %-8s %s\n", "NAME", "PID", "STATE", "SIZE",
               "TRACKING", "WORKLOAD");
        for (size_t i = 0; i < n; i++) {
            const struct xcc_sim_info *g = &list[i];
            char size[32];

            if (g->mem_bytes % (1u << 30) == 0 && g->mem_bytes)
                snprintf(size, sizeof(size), "%" PRIu64 "G",
                         g->mem_bytes >> 30);
            else if (g->mem_bytes % (1u << 20) == 0)
                snprintf(size, sizeof(size), "%" PRIu64 "M",
                         g->mem_bytes >> 20);
            else
                snprintf(size, sizeof(size), "%" PRIu64 "K",
                         g->mem_bytes >> 10);
            printf("%-24s %8" PRId64 " %-10s %10s %-8s %s\n", g->name, g->pid,
                   xcc_sim_state_name(g->state), size,
                   g->tracking[0] ? g->tracking : "-",
                   g->workload[0] ? g->workload : "-");
        }
    }
    free(list);
    return EXIT_OK;
}

static int sim_pause_or_unpause(int argc, char **argv, bool pause)
{
    struct sim_opts o;
    int ec, rc;
    char help[256];

    snprintf(help, sizeof(help),
             "usage: xc-colo sim %s NAME\n\n%s the guest's process (%s) and "
             "waits until it has %s.\n",
             argv[0], pause ? "Stops" : "Continues",
             pause ? "SIGSTOP" : "SIGCONT", pause ? "stopped" : "continued");
    if ((rc = parse(argc, argv, 0, true, help, &o, &ec)) != 0)
        return ec;
    xentoollog_logger *log = cli_logger(0, false);
    rc = pause ? xcc_sim_pause(o.name, log) : xcc_sim_unpause(o.name, log);
    return finish(rc, log, argv[0], o.name);
}

static int sim_stop(int argc, char **argv)
{
    static const char *const help =
        "usage: xc-colo sim stop NAME\n\n"
        "Kills the guest's process (if it has one) and removes\n"
        "its directory (/dev/shm/xc-colo/NAME for root). Works on dead and\n"
        "half-made guests too; a symbolic link in place of the directory is\n"
        "refused, never followed.\n";
    struct sim_opts o;
    int ec, rc;

    if ((rc = parse(argc, argv, 0, true, help, &o, &ec)) != 0)
        return ec;
    xentoollog_logger *log = cli_logger(0, false);
    rc = xcc_sim_stop(o.name, log);
    return finish(rc, log, "stop", o.name);
}

static int sim_digest(int argc, char **argv)
{
    static const char *const help =
        "usage: xc-colo sim digest NAME [--chunks]\n\n"
        "Prints the XXH3-128 digest of the guest's RAM (the digest of its\n"
        "2 MiB chunks' digests in pfn order, holes as zero pages) as 32 hex\n"
        "digits; --chunks adds 'INDEX HEX' per chunk. The same as\n"
        "'xc-colo digest sim:NAME' and as a DIGEST record's whole digest.\n";
    struct sim_opts o;
    int ec, rc = EXIT_FAIL;
    char dname[XCC_SIM_NAME_MAX + 8];
    uint8_t digest[16], *chunks = NULL;
    uint64_t nr_pfns;
    uint32_t psz;
    size_t max_chunks = 0;
    int64_t n;

    if (parse(argc, argv, ALLOW(OPT_CHUNKS), true, help, &o, &ec) != 0)
        return ec;
    xentoollog_logger *log = cli_logger(0, false);
    snprintf(dname, sizeof(dname), "sim:%s", o.name);
    xcc_domain *d = xcc_domain_open(dname, log, 0);
    if (!d) {
        cli_error("sim digest %s: %s", o.name, xcc_strerror(errno));
        goto out;
    }
    xcc_domain_get_info(d, &nr_pfns, &psz);
    if (o.chunks) {
        max_chunks = (nr_pfns * psz + XCC_DIGEST_CHUNK - 1) / XCC_DIGEST_CHUNK;
        chunks = malloc(16 * (max_chunks ? max_chunks : 1));
        if (!chunks) {
            cli_error("sim digest: out of memory");
            goto out;
        }
    }
    n = xcc_domain_digest(d, 0, digest, chunks, max_chunks);
    if (n < 0) {
        cli_error("sim digest %s: %s", o.name, xcc_strerror(errno));
        goto out;
    }
    cli_print_digest(digest, chunks, n);
    rc = EXIT_OK;
out:
    free(chunks);
    xcc_domain_close(d);
    xtl_logger_destroy(log);
    return rc;
}

static int sim_verify(int argc, char **argv)
{
    static const char *const help =
        "usage: xc-colo sim verify NAME\n\n"
        "Checks the ledger workload's records in the guest's RAM (pfns\n"
        "4352-5375): every record whole, sequence numbers in ring order,\n"
        "each holding its neighbour's checksum. A running guest is paused\n"
        "meanwhile. Prints OK (exit 0) or the broken records and their pages\n"
        "(exit 1).\n";
    struct sim_opts o;
    int ec, rc;
    char *report;

    if ((rc = parse(argc, argv, 0, true, help, &o, &ec)) != 0)
        return ec;
    report = malloc(VERIFY_REPORT_BYTES);
    if (!report) {
        cli_error("sim verify: out of memory");
        return EXIT_FAIL;
    }
    xentoollog_logger *log = cli_logger(0, false);
    rc = xcc_sim_verify(o.name, log, report, VERIFY_REPORT_BYTES);
    xtl_logger_destroy(log);
    if (rc < 0) {
        cli_error("sim verify %s: %s", o.name, xcc_strerror(errno));
        free(report);
        return EXIT_FAIL;
    }
    printf("%s%s", report,
           report[0] && report[strlen(report) - 1] == '\n' ? "" : "\n");
    free(report);
    return rc == 0 ? EXIT_OK : EXIT_FAIL;
}

int cmd_sim(int argc, char **argv)
{
    if (argc < 2) {
        sim_usage(stderr);
        return EXIT_USAGE;
    }
    const char *sub = argv[1];

    argc--;
    argv++;
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        sim_usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(sub, "start"))
        return sim_start(argc, argv);
    if (!strcmp(sub, "create"))
        return sim_create(argc, argv);
    if (!strcmp(sub, "resume"))
        return sim_resume(argc, argv);
    if (!strcmp(sub, "list"))
        return sim_list(argc, argv);
    if (!strcmp(sub, "pause"))
        return sim_pause_or_unpause(argc, argv, true);
    if (!strcmp(sub, "unpause"))
        return sim_pause_or_unpause(argc, argv, false);
    if (!strcmp(sub, "stop"))
        return sim_stop(argc, argv);
    if (!strcmp(sub, "digest"))
        return sim_digest(argc, argv);
    if (!strcmp(sub, "verify"))
        return sim_verify(argc, argv);
    cli_error("sim: unknown command '%s' (start, create, resume, list, pause, "
              "unpause, stop, digest, verify)",
              sub);
    return EXIT_USAGE;
}
