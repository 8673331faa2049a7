/*
 * xc-colo - save, restore, live-migrate and checkpoint VM memory.
 *
 * The command line is layered on the library: parse options, open files and
 * sockets, call libxccolo. Subcommands follow xl's habits.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"save", cmd_save, "save a domain's memory to a file or fd"},
    {"restore", cmd_restore, "restore memory from a stream into a domain"},
    {"migrate", cmd_migrate, "live-migrate a domain's memory to a destination"},
    {"checkpoint", cmd_checkpoint,
     "continuous checkpoints (COLO/Remus replication)"},
    {"inspect", cmd_inspect, "list and validate the records of a stream"},
    {"digest", cmd_digest, "XXH3-128 digest of a domain's memory"},
    {"bench", cmd_bench, "benchmarks: codec, mapcache"},
    {"sim", cmd_sim, "manage simulated guests (sim:NAME)"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: xc-colo [--version] [--help] COMMAND [ARGS]\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-11s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nDomains are named sim:NAME (simulated guest), xen:ID or a "
                 "bare domid.\n"
                 "'xc-colo COMMAND --help' describes a command. Exit status: "
                 "0 success, 1 error,\n2 usage, 3 checkpoint failover.\n");
}

void cli_error(const char *fmt, ...)
{
    va_list ap;

    fputs("xc-colo: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_parse_u64(const char *s, const char *what, uint64_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    /* strtoull would skip blanks and take a sign ("-1" is 2^64 - 1). */
    if (!s || !isdigit((unsigned char)*s)) {
        cli_error("%s: expected a non-negative integer, got '%s'", what,
                  s ? s : "");
        return -1;
    }
    v = strtoull(s, &end, 0);
    if (errno || *end) {
        cli_error("%s: expected a non-negative integer, got '%s'", what, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    bool sock = true;

    while (len) {
        ssize_t n = sock ? send(fd, p, len, MSG_NOSIGNAL) : write(fd, p, len);

        if (n < 0 && sock && errno == ENOTSOCK) {
            sock = false;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int cli_parse_pfn_list(const char *s, const char *what, uint64_t **out,
                       size_t *n)
{
    uint64_t *v = NULL;
    size_t len = 0;
    char *copy = strdup(s ? s : ""), *save = NULL, *tok;

    if (!copy)
        return -1;
    for (tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *dash = strchr(tok, '-');
        uint64_t a, b;

        if (dash)
            *dash = '\0';
        if (cli_parse_u64(tok, what, &a) < 0 ||
            (dash && cli_parse_u64(dash + 1, what, &b) < 0))
            goto bad;
        if (!dash)
            b = a;
        if (b < a) { /* a falling range names the same pfns */
            uint64_t t = a;

            a = b;
            b = t;
        }
        if (b - a >= CLI_PFN_LIST_MAX - len) {
            cli_error("%s: range %#" PRIx64 "-%#" PRIx64 " is too long (at "
                      "most 1M pfns in all)", what, a, b);
            goto bad;
        }
        uint64_t *nv = realloc(v, (len + (b - a) + 1) * sizeof(*v));
        if (!nv)
            goto bad;
        v = nv;
        for (uint64_t p = a;; p++) {
            v[len++] = p;
            if (p == b)
                break;
        }
    }
    if (!len) {
        cli_error("%s: expected PFN[-PFN][,...], got '%s'", what, s ? s : "");
        goto bad;
    }
    free(copy);
    *out = v;
    *n = len;
    return 0;
bad:
    free(copy);
    free(v);
    return -1;
}

int cli_parse_size(const char *s, const char *what, uint64_t *out)
{
    char *end;
    unsigned long long v;
    unsigned shift = 0;

    errno = 0;
    if (!s || !isdigit((unsigned char)*s)) {
        cli_error("%s: expected a size such as 256M, got '%s'", what,
                  s ? s : "");
        return -1;
    }
    v = strtoull(s, &end, 10);
    if (errno || end == s)
        goto bad;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    default: break;
    }
    if (shift && (!strcmp(end, "iB") || !strcmp(end, "B")))
        end += strlen(end);
    if (*end)
        goto bad;
    if (shift && v > (UINT64_MAX >> shift))
        goto bad;
    *out = (uint64_t)v << shift;
    return 0;
bad:
    cli_error("%s: expected a size such as 256M, got '%s'", what, s);
    return -1;
}

int cli_parse_rate(const char *s, const char *what, uint64_t *out)
{
    char *end;
    double v, mult = 1;

    errno = 0;
    /* strtod would skip blanks and take a sign, "inf" or "nan". */
    if (!s || !(isdigit((unsigned char)*s) || *s == '.'))
        goto bad;
    v = strtod(s, &end);
    if (errno || end == s || !(v > 0))
        goto bad;
    switch (*end) {
    case 'k': case 'K': mult = 1e3; end++; break;
    case 'm': case 'M': mult = 1e6; end++; break;
    case 'g': case 'G': mult = 1e9; end++; break;
    case 't': case 'T': mult = 1e12; end++; break;
    default: break;
    }
    v *= mult;
    if (!strcmp(end, "B") || !strcmp(end, "B/s"))
        ; /* bytes per second already */
    else if (!*end || !strcmp(end, "bit") || !strcmp(end, "bit/s") ||
             !strcmp(end, "bps"))
        v /= 8;
    else
        goto bad;
    if (v < 1 || v > 1e15)
        goto bad;
    *out = (uint64_t)v;
    return 0;
bad:
    cli_error("%s: expected a rate such as 1G (bits/s) or 125MB (bytes/s), "
              "got '%s'", what, s ? s : "");
    return -1;
}

xentoollog_logger *cli_logger(int verbosity, bool progress)
{
    xentoollog_level level = XTL_WARN;

    if (verbosity < 0)
        level = XTL_ERROR;
    else if (verbosity == 1)
        level = XTL_INFO;
    else if (verbosity > 1)
        level = XTL_DEBUG;
    return (xentoollog_logger *)xtl_createlogger_stdiostream(
        stderr, level, progress ? 0 : XTL_STDIOSTREAM_HIDE_PROGRESS);
}

void cli_hex_digest(const uint8_t digest[16], char out[33])
{
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

void cli_print_digest(const uint8_t digest[16], const uint8_t *chunks,
                      int64_t n)
{
    char hex[33];

    cli_hex_digest(digest, hex);
    printf("%s\n", hex);
    for (int64_t i = 0; chunks && i < n; i++) {
        cli_hex_digest(chunks + 16 * i, hex);
        printf("%" PRId64 " %s\n", i, hex);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("xc-colo %s (library %s)\n", XCC_VERSION_STRING, xcc_version());
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    cli_error("unknown command '%s' (try 'xc-colo --help')", argv[1]);
    return EXIT_USAGE;
}
