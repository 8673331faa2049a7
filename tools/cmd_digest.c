/*
 * cmd_digest.c - `xc-colo digest [--chunks] [--exclude-pagetables]
 * [--exclude-pfns LIST] DOMAIN`.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void digest_usage(FILE *out)
{
    fprintf(out,
            "usage: xc-colo digest [--chunks] [--exclude-pagetables]\n"
            "                      [--exclude-pfns PFN[-PFN][,...]] DOMAIN\n\n"
            "Prints the XXH3-128 digest of DOMAIN's memory as 32 hex digits: the\n"
            "digest of its 2 MiB chunks' digests in pfn order, as a DIGEST\n"
            "record carries it. Holes count as zero pages.\n\n"
            "  --chunks              also print one digest per 2 MiB chunk\n"
            "  --exclude-pagetables  PV page-table pages (L1..L4) count as zero\n"
            "                        pages: they hold machine frame numbers\n"
            "  --exclude-pfns LIST   these pfns count as zero pages too (a PV\n"
            "                        guest's p2m frames and start_info page,\n"
            "                        which a restore into a new domain rewrites,\n"
            "                        and its xenstore and console rings)\n"
            "  -h, --help            this text\n");
}

int cmd_digest(int argc, char **argv)
{
    static const struct option opts[] = {
        {"chunks", no_argument, NULL, 'c'},
        {"exclude-pagetables", no_argument, NULL, 'x'},
        {"exclude-pfns", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    bool chunks = false;
    unsigned flags = 0;
    int opt, rc = EXIT_FAIL;
    uint64_t *excl = NULL;
    size_t nexcl = 0;

    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': chunks = true; break;
        case 'x': flags |= XCC_DIGEST_EXCLUDE_PAGETABLES; break;
        case 'p':
            free(excl);
            if (cli_parse_pfn_list(optarg, "--exclude-pfns", &excl, &nexcl) <
                0)
                return EXIT_USAGE;
            flags |= XCC_DIGEST_EXCLUDE_LISTED;
            break;
        case 'h': digest_usage(stdout); return EXIT_OK;
        default: digest_usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind + 1 != argc) {
        free(excl);
        digest_usage(stderr);
        return EXIT_USAGE;
    }

    xentoollog_logger *log = cli_logger(0, false);
    xcc_domain *d = xcc_domain_open(argv[optind], log, 0);
    uint64_t nr_pfns;
    uint32_t psz;
    uint8_t digest[16], *per_chunk = NULL;
    size_t max_chunks = 0;

    if (!d) {
        cli_error("cannot open domain '%s': %s", argv[optind],
                  xcc_strerror(errno));
        goto out;
    }
    xcc_domain_get_info(d, &nr_pfns, &psz);
    if (nexcl && xcc_domain_digest_exclude(d, excl, nexcl) < 0) {
        cli_error("--exclude-pfns: %s", xcc_strerror(errno));
        goto out;
    }
    if (chunks) {
        max_chunks = (nr_pfns * psz + XCC_DIGEST_CHUNK - 1) / XCC_DIGEST_CHUNK;
        per_chunk = malloc(16 * (max_chunks ? max_chunks : 1));
        if (!per_chunk) {
            cli_error("out of memory");
            goto out;
        }
    }
    int64_t n = xcc_domain_digest(d, flags, digest, per_chunk, max_chunks);
    if (n < 0) {
        cli_error("digest of '%s' failed: %s", argv[optind],
                  xcc_strerror(errno));
        goto out;
    }
    cli_print_digest(digest, per_chunk, n);
    rc = EXIT_OK;
out:
    free(excl);
    free(per_chunk);
    xcc_domain_close(d);
    xtl_logger_destroy(log);
    return rc;
}
