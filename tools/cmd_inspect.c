/*
 * cmd_inspect.c - `xc-colo inspect [--json] [-v|-q] FILE|-`: list and
 * validate every record of a migration stream (xc-colo's or stock Xen's).
 * The library validates and counts; this file only prints.
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

struct inspect_out {
    bool json;
    int verbosity; /* -1 totals only, 0 every record, 1 record details */
    uint64_t shown;
};

static void inspect_usage(FILE *out)
{
    fprintf(
        out,
        "usage: xc-colo inspect [--json] [-v|-q] FILE|-\n\n"
        "Reads a migration stream (a file, or stdin for '-') to its end,\n"
        "lists the headers and every record with its offset, type and\n"
        "length, counts pages by kind and validates every field. Stock Xen\n"
        "streams are read too: Xen's records are named and skipped.\n"
        "Exits 1 at the first invalid record, naming it and its offset.\n\n"
        "  --json      one JSON object: headers, records, totals, error\n"
        "  -v          more detail per record (digests, STATS text)\n"
        "  -q          headers and totals only\n"
        "  -h, --help  this text\n");
}

/* Prints s[0..len) as a JSON string literal. */
static void json_string(FILE *f, const char *s, size_t len)
{
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\u%04x", c);
        else if (c >= 0x80)
            fprintf(f, "\\u%04x", c); /* not decoded: keep output ASCII */
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void print_headers(struct inspect_out *o,
                          const struct xcc_inspect_headers *h)
{
    if (o->json) {
        printf("{\"headers\":{\"version\":%" PRIu32 ",\"options\":%u,"
               "\"domain_type\":%" PRIu32 ",\"domain\":\"%s\","
               "\"page_shift\":%" PRIu32 ",\"page_size\":%" PRIu32 ","
               "\"xen_major\":%" PRIu32 ",\"xen_minor\":%" PRIu32 "},\n"
               "\"records\":[",
               h->version, h->options, h->domain_type, h->domain_name,
               h->page_shift, h->page_size, h->xen_major, h->xen_minor);
        return;
    }
    printf("image header: Xen migration stream, version %" PRIu32
           ", options 0x%04x (little-endian)\n",
           h->version, h->options);
    printf("domain header: %s (type 0x%08" PRIx32 "), page size %" PRIu32
           ", Xen %" PRIu32 ".%" PRIu32 "\n",
           h->domain_name, h->domain_type, h->page_size, h->xen_major,
           h->xen_minor);
    if (o->verbosity >= 0)
        printf("%-12s %-26s %-10s %s\n", "offset", "record", "length",
               "details");
}

static void print_record_json(struct inspect_out *o,
                              const struct xcc_inspect_record *r)
{
    char hex[33];

    printf("%s\n{\"offset\":%" PRIu64 ",\"type\":%" PRIu32
           ",\"name\":\"%s\",\"length\":%" PRIu32 ",\"optional\":%s",
           o->shown ? "," : "", r->offset, r->type, r->name, r->length,
           r->optional ? "true" : "false");
    if (r->pages_data || r->pages_nodata)
        printf(",\"pages_data\":%" PRIu64 ",\"pages_nodata\":%" PRIu64,
               r->pages_data, r->pages_nodata);
    if (r->pages_zero)
        printf(",\"pages_zero\":%" PRIu64, r->pages_zero);
    if (r->pages_xbzrle)
        printf(",\"pages_xbzrle\":%" PRIu64 ",\"xbzrle_bytes\":%" PRIu64,
               r->pages_xbzrle, r->xbzrle_bytes);
    if (!strcmp(r->name, "CHECKPOINT_DIRTY_PFN_LIST"))
        printf(",\"pfns\":%" PRIu64, r->pfns);
    if (r->nr_pfns)
        printf(",\"nr_pfns\":%" PRIu64, r->nr_pfns);
    if (r->digest) {
        cli_hex_digest(r->digest, hex);
        printf(",\"digest_chunks\":%" PRIu32 ",\"chunk_bytes\":%" PRIu32
               ",\"digest\":\"%s\"",
               r->digest_chunks, r->digest_chunk_bytes, hex);
    }
    if (r->text && o->verbosity > 0) {
        printf(",\"stats\":");
        json_string(stdout, r->text, r->text_len);
    }
    putchar('}');
}

static void print_record_text(struct inspect_out *o,
                              const struct xcc_inspect_record *r)
{
    char name[64], hex[33];

    snprintf(name, sizeof(name), "%s", r->name);
    if (!r->known)
        snprintf(name, sizeof(name), "UNKNOWN(0x%08" PRIx32 ")", r->type);
    printf("%-12" PRIu64 " %-26s %-10" PRIu32, r->offset, name, r->length);
    if (r->pages_data || r->pages_nodata)
        printf(" pages %" PRIu64 " (+%" PRIu64 " without data)", r->pages_data,
               r->pages_nodata);
    if (r->pages_zero)
        printf(" zero pages %" PRIu64, r->pages_zero);
    if (r->pages_xbzrle)
        printf(" xbzrle pages %" PRIu64 ", %" PRIu64 " encoded bytes",
               r->pages_xbzrle, r->xbzrle_bytes);
    if (!strcmp(r->name, "CHECKPOINT_DIRTY_PFN_LIST"))
        printf(" dirty pfns %" PRIu64, r->pfns);
    if (r->nr_pfns)
        printf(" guest pages %" PRIu64, r->nr_pfns);
    if (r->digest) {
        printf(" %" PRIu32 " chunks of %" PRIu32 " bytes", r->digest_chunks,
               r->digest_chunk_bytes);
        if (o->verbosity > 0) {
            cli_hex_digest(r->digest, hex);
            printf(", memory %s", hex);
        }
    }
    if (r->optional && !r->known)
        printf(" (optional, skipped)");
    putchar('\n');
    if (r->text && o->verbosity > 0) {
        fputs("    ", stdout);
        for (size_t i = 0; i < r->text_len; i++) {
            unsigned char c = (unsigned char)r->text[i];
            putchar(c == '\n' || (c >= 0x20 && c < 0x7f) || c >= 0x80 ? c
                                                                      : '?');
        }
        putchar('\n');
    }
}

static int on_record(void *opaque, const struct xcc_inspect_headers *h,
                     const struct xcc_inspect_record *r)
{
    struct inspect_out *o = opaque;

    if (!r) {
        print_headers(o, h);
        return 0;
    }
    if (o->json)
        print_record_json(o, r);
    else if (o->verbosity >= 0)
        print_record_text(o, r);
    o->shown++;
    return 0;
}

static const char *const kind_names[XCC_INSPECT_NKINDS] = {
    "PAGE_DATA", "ZERO_PAGES", "XBZRLE_PAGES", "DIGEST",
    "STATS",     "CHECKPOINT", "other Xen",    "other",
};

/* The same kinds as JSON keys. */
static const char *const kind_keys[XCC_INSPECT_NKINDS] = {
    "page_data", "zero_pages", "xbzrle_pages", "digest",
    "stats",     "checkpoint", "xen_other",    "other",
};

static void print_totals(struct inspect_out *o,
                         const struct xcc_inspect_totals *t, bool headers_ok,
                         int rc)
{
    if (o->json) {
        if (!headers_ok)
            printf("{\"headers\":null,\"records\":[");
        printf("],\n\"totals\":{\"bytes\":%" PRIu64 ",\"records\":%" PRIu64
               ",\"pages_data\":%" PRIu64 ",\"pages_nodata\":%" PRIu64
               ",\"pages_zero\":%" PRIu64 ",\"pages_xbzrle\":%" PRIu64
               ",\"xbzrle_bytes\":%" PRIu64 ",\"dirty_pfns\":%" PRIu64
               ",\"checkpoints\":%" PRIu64 ",\"nr_pfns\":%" PRIu64
               ",\"end\":%s,\"by_kind\":{",
               t->bytes, t->records, t->pages_data, t->pages_nodata,
               t->pages_zero, t->pages_xbzrle, t->xbzrle_bytes, t->dirty_pfns,
               t->checkpoints, t->nr_pfns, t->end_seen ? "true" : "false");
        for (int k = 0; k < XCC_INSPECT_NKINDS; k++)
            printf("%s\"%s\":{\"records\":%" PRIu64 ",\"bytes\":%" PRIu64 "}",
                   k ? "," : "", kind_keys[k], t->record_count[k],
                   t->record_bytes[k]);
        printf("}},\n\"valid\":%s,\"error\":", rc ? "false" : "true");
        if (rc)
            json_string(stdout, t->error, strlen(t->error));
        else
            fputs("null", stdout);
        puts("}");
        return;
    }
    if (!headers_ok)
        return;
    printf("totals: %" PRIu64 " records, %" PRIu64 " bytes%s\n", t->records,
           t->bytes, rc ? " (up to the error)" : "");
    for (int k = 0; k < XCC_INSPECT_NKINDS; k++)
        if (t->record_count[k])
            printf("  %-13s %10" PRIu64 " records %14" PRIu64 " bytes\n",
                   kind_names[k], t->record_count[k], t->record_bytes[k]);
    printf("  pages: %" PRIu64 " with data, %" PRIu64 " zero, %" PRIu64
           " xbzrle (%" PRIu64 " encoded bytes), %" PRIu64 " without data\n",
           t->pages_data, t->pages_zero, t->pages_xbzrle, t->xbzrle_bytes,
           t->pages_nodata);
    if (t->nr_pfns)
        printf("  guest: %" PRIu64 " pages\n", t->nr_pfns);
    if (t->checkpoints || t->dirty_pfns)
        printf("  checkpoints: %" PRIu64 ", dirty pfns listed: %" PRIu64 "\n",
               t->checkpoints, t->dirty_pfns);
    if (!rc)
        printf("stream valid\n");
}

int cmd_inspect(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    struct inspect_out o = {0};
    struct xcc_inspect_totals *t;
    xentoollog_logger *log;
    const char *path;
    int opt, fd, rc;

    while ((opt = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
        switch (opt) {
        case 'j':
            o.json = true;
            break;
        case 'v':
            o.verbosity = o.verbosity < 0 ? 0 : o.verbosity + 1;
            break;
        case 'q':
            o.verbosity = -1;
            break;
        case 'h':
            inspect_usage(stdout);
            return EXIT_OK;
        default:
            inspect_usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind + 1 != argc) {
        inspect_usage(stderr);
        return EXIT_USAGE;
    }
    path = argv[optind];
    if (!strcmp(path, "-")) {
        fd = STDIN_FILENO;
    } else {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            cli_error("cannot open '%s': %s", path, strerror(errno));
            return EXIT_FAIL;
        }
    }
    t = calloc(1, sizeof(*t));
    if (!t) {
        cli_error("out of memory");
        if (fd != STDIN_FILENO)
            close(fd);
        return EXIT_FAIL;
    }
    /* The library's error goes to stderr through the logger. */
    log = cli_logger(o.verbosity > 0 ? 1 : 0, false);
    rc = xcc_stream_inspect(fd, log, 0, on_record, &o, t);
    int err = errno;
    fflush(stdout);
    print_totals(&o, t, t->headers.domain_name != NULL, rc);
    if (rc && err != XCC_EBADSTREAM && err != XCC_ETRUNCATED)
        cli_error("inspecting '%s' failed: %s", path, xcc_strerror(err));
    xtl_logger_destroy(log);
    if (fd != STDIN_FILENO)
        close(fd);
    free(t);
    return rc ? EXIT_FAIL : EXIT_OK;
}
