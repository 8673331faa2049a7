/*
 * cmd_inspect.c - `xc-colo inspect [--json] [-v|-q] FILE|-`: list and
 * validate every record of a migration stream (xc-colo's or stock Xen's).
 * The library validates and counts; this file only prints. --json prints
 * one document as the stream is read: the frame by hand, each part in it
 * (headers, a record, the totals) built and escaped by json-c.
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

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
        "streams are read too. Xen's domain-state records (X86_PV_INFO,\n"
        "P2M_FRAMES, vCPU, TSC_INFO, SHARED_INFO, CPU policy) and XL_CONFIG\n"
        "are validated and their fields decoded (vCPU ids, cr3 pfn, TSC\n"
        "mode, guest width, the config's name and memory); other Xen\n"
        "records are named and skipped.\n"
        "Exits 1 at the first invalid record, naming it and its offset.\n\n"
        "  --json      one JSON object: headers, records, totals, error\n"
        "  -v          more detail per record (digests, STATS text)\n"
        "  -q          headers and totals only\n"
        "  -h, --help  this text\n");
}

typedef struct json_object jobj;

static void put_u64(jobj *o, const char *key, uint64_t v)
{
    json_object_object_add(o, key, json_object_new_uint64(v));
}

/*
 * A JSON string of s[0..len), bytes as Latin-1 characters: stream text is
 * not trusted to be UTF-8, and a byte 0xNN reads back as U+00NN, as the
 * \u00NN escapes printed before did.
 */
static jobj *latin1_string(const char *s, size_t len)
{
    char *u = malloc(2 * len + 1);
    size_t n = 0;
    jobj *o;

    if (!u)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            u[n++] = (char)c;
        } else {
            u[n++] = (char)(0xc0 | (c >> 6));
            u[n++] = (char)(0x80 | (c & 0x3f));
        }
    }
    o = json_object_new_string_len(u, (int)n);
    free(u);
    return o;
}

/* Prints o compactly (NULL prints null) and frees it. */
static void print_json(jobj *o)
{
    fputs(o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                    JSON_C_TO_STRING_NOSLASHESCAPE)
            : "null",
          stdout);
    json_object_put(o);
}

static void print_headers(struct inspect_out *o,
                          const struct xcc_inspect_headers *h)
{
    if (o->json) {
        jobj *j = json_object_new_object();

        put_u64(j, "version", h->version);
        put_u64(j, "options", h->options);
        put_u64(j, "domain_type", h->domain_type);
        json_object_object_add(j, "domain",
                               json_object_new_string(h->domain_name));
        put_u64(j, "page_shift", h->page_shift);
        put_u64(j, "page_size", h->page_size);
        put_u64(j, "xen_major", h->xen_major);
        put_u64(j, "xen_minor", h->xen_minor);
        fputs("{\"headers\":", stdout);
        print_json(j);
        fputs(",\n\"records\":[", stdout);
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
    jobj *j = json_object_new_object();
    char hex[33];

    put_u64(j, "offset", r->offset);
    put_u64(j, "type", r->type);
    json_object_object_add(j, "name", json_object_new_string(r->name));
    put_u64(j, "length", r->length);
    json_object_object_add(j, "optional",
                           json_object_new_boolean(r->optional));
    if (r->pages_data || r->pages_nodata) {
        put_u64(j, "pages_data", r->pages_data);
        put_u64(j, "pages_nodata", r->pages_nodata);
    }
    if (r->pages_zero)
        put_u64(j, "pages_zero", r->pages_zero);
    if (r->pages_xbzrle) {
        put_u64(j, "pages_xbzrle", r->pages_xbzrle);
        put_u64(j, "xbzrle_bytes", r->xbzrle_bytes);
    }
    if (!strcmp(r->name, "CHECKPOINT_DIRTY_PFN_LIST"))
        put_u64(j, "pfns", r->pfns);
    if (r->nr_pfns)
        put_u64(j, "nr_pfns", r->nr_pfns);
    if (r->digest) {
        cli_hex_digest(r->digest, hex);
        put_u64(j, "digest_chunks", r->digest_chunks);
        put_u64(j, "chunk_bytes", r->digest_chunk_bytes);
        json_object_object_add(j, "digest", json_object_new_string(hex));
    }
    if (r->text && o->verbosity > 0)
        json_object_object_add(j, "stats",
                               latin1_string(r->text, r->text_len));
    if (r->fields_json)
        json_object_object_add(j, "fields",
                               json_tokener_parse(r->fields_json));
    fputs(o->shown ? ",\n" : "\n", stdout);
    print_json(j);
}

/* Decoded fields of a Xen state or XL_CONFIG record: " key value" each,
 * pfns and registers in hex. */
static void print_fields_text(const char *fields_json)
{
    jobj *f = json_tokener_parse(fields_json);

    if (!f)
        return;
    json_object_object_foreach(f, key, val)
    {
        if (json_object_is_type(val, json_type_string))
            printf(" %s '%s'", key, json_object_get_string(val));
        else if (strstr(key, "pfn") || strstr(key, "xcr0"))
            printf(" %s %#" PRIx64, key, json_object_get_uint64(val));
        else
            printf(" %s %" PRIu64, key, json_object_get_uint64(val));
    }
    json_object_put(f);
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
    if (r->fields_json)
        print_fields_text(r->fields_json);
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
        jobj *j = json_object_new_object(), *kinds = json_object_new_object();

        if (!headers_ok)
            printf("{\"headers\":null,\"records\":[");
        put_u64(j, "bytes", t->bytes);
        put_u64(j, "records", t->records);
        put_u64(j, "pages_data", t->pages_data);
        put_u64(j, "pages_nodata", t->pages_nodata);
        put_u64(j, "pages_zero", t->pages_zero);
        put_u64(j, "pages_xbzrle", t->pages_xbzrle);
        put_u64(j, "xbzrle_bytes", t->xbzrle_bytes);
        put_u64(j, "dirty_pfns", t->dirty_pfns);
        put_u64(j, "checkpoints", t->checkpoints);
        put_u64(j, "nr_pfns", t->nr_pfns);
        json_object_object_add(j, "end", json_object_new_boolean(t->end_seen));
        for (int k = 0; k < XCC_INSPECT_NKINDS; k++) {
            jobj *kind = json_object_new_object();
            put_u64(kind, "records", t->record_count[k]);
            put_u64(kind, "bytes", t->record_bytes[k]);
            json_object_object_add(kinds, kind_keys[k], kind);
        }
        json_object_object_add(j, "by_kind", kinds);
        fputs("],\n\"totals\":", stdout);
        print_json(j);
        printf(",\n\"valid\":%s,\"error\":", rc ? "false" : "true");
        print_json(rc ? latin1_string(t->error, strlen(t->error)) : NULL);
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
