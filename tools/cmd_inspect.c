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
    uint64_t by_type[3][16]; /* PAGE_DATA, ZERO_PAGES, XBZRLE_PAGES entries */
    uint64_t pagetables_checked;
    uint64_t bases_records, bases_dropped, bases_kept; /* CACHE_BASES */
    bool xl;          /* an xl save image: libxl records around the stream */
    uint64_t libxl_records;
    bool frame_open;  /* JSON: the object and its records array are open */
    bool have_headers;
    struct xcc_inspect_headers headers; /* xl image, JSON: printed last */
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
        "records are named and skipped. An xl save image (stock `xl save`,\n"
        "or `save --xen-compat` of a Xen domain) is read whole: the xl\n"
        "header and its config (name, memory), libxl's records, and the\n"
        "libxc stream inside.\n"
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

static jobj *headers_json(const struct xcc_inspect_headers *h)
{
    jobj *j = json_object_new_object();

    put_u64(j, "version", h->version);
    put_u64(j, "options", h->options);
    put_u64(j, "domain_type", h->domain_type);
    json_object_object_add(j, "domain", json_object_new_string(h->domain_name));
    put_u64(j, "page_shift", h->page_shift);
    put_u64(j, "page_size", h->page_size);
    put_u64(j, "xen_major", h->xen_major);
    put_u64(j, "xen_minor", h->xen_minor);
    return j;
}

static void print_headers(struct inspect_out *o,
                          const struct xcc_inspect_headers *h)
{
    if (o->json && o->xl) {
        /* Inside the records array already: the headers go after it. */
        o->headers = *h;
        o->have_headers = true;
        return;
    }
    if (o->json) {
        fputs("{\"headers\":", stdout);
        print_json(headers_json(h));
        fputs(",\n\"records\":[", stdout);
        o->frame_open = true;
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

/* Page types by their 4-bit stream value ("L4-pinned": LPINTAB). */
static const char *const type_keys[16] = {
    "normal",    "L1",        "L2",        "L3",     "L4",     "type5",
    "type6",     "type7",     "type8",     "L1-pinned", "L2-pinned",
    "L3-pinned", "L4-pinned", "broken",    "xalloc", "xtab",
};

/* {"L1": n, ...} of the non-zero counters, NULL when all are zero. */
static jobj *types_json(const uint64_t *by_type)
{
    jobj *j = NULL;

    for (unsigned i = 0; i < 16; i++) {
        if (!by_type[i])
            continue;
        if (!j)
            j = json_object_new_object();
        put_u64(j, type_keys[i], by_type[i]);
    }
    return j;
}

/* Which totals a record's by_type adds to: PAGE_DATA, ZERO, XBZRLE. */
static int type_kind(const struct xcc_inspect_record *r)
{
    if (r->pages_data || r->pages_nodata)
        return 0;
    if (r->pages_zero)
        return 1;
    if (r->pages_xbzrle)
        return 2;
    return -1;
}

static void print_record_json(struct inspect_out *o,
                              const struct xcc_inspect_record *r)
{
    jobj *j = json_object_new_object();
    char hex[33];

    put_u64(j, "offset", r->offset);
    if (o->xl)
        json_object_object_add(j, "layer", json_object_new_string("libxc"));
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
    if (type_kind(r) >= 0)
        json_object_object_add(j, "types", types_json(r->by_type));
    if (r->pagetables_checked)
        put_u64(j, "pagetables_checked", r->pagetables_checked);
    if (!strcmp(r->name, "CHECKPOINT_DIRTY_PFN_LIST"))
        put_u64(j, "pfns", r->pfns);
    if (r->nr_pfns) {
        put_u64(j, "nr_pfns", r->nr_pfns);
        put_u64(j, "flags", r->guest_flags);
    }
    if (!strcmp(r->name, "CACHE_BASES")) {
        put_u64(j, "dropped", r->bases_dropped);
        put_u64(j, "kept", r->bases_kept);
    }
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
    /* Page types other than normal RAM and holes (PV page tables). */
    for (unsigned i = 1; i < 15; i++) /* not 0 (normal) nor 0xF (hole) */
        if (r->by_type[i])
            printf(" %s %" PRIu64, type_keys[i], r->by_type[i]);
    if (!strcmp(r->name, "CHECKPOINT_DIRTY_PFN_LIST"))
        printf(" dirty pfns %" PRIu64, r->pfns);
    if (r->nr_pfns) {
        printf(" guest pages %" PRIu64, r->nr_pfns);
        if (r->guest_flags & XCC_GUEST_INFO_CACHE_BASES)
            printf(", announces its XBZRLE cache (format 3)");
    }
    if (!strcmp(r->name, "CACHE_BASES"))
        printf(" dropped %" PRIu64 ", kept %" PRIu64, r->bases_dropped,
               r->bases_kept);
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

/* What inspect shows of a libxl config: name, type, vCPUs, memory. */
struct xl_config_summary {
    const char *name, *type; /* NULL: absent */
    int64_t max_vcpus, max_memkb, target_memkb; /* -1: absent */
};

static int64_t json_int_at(jobj *o, const char *key)
{
    jobj *v;

    if (!o || !json_object_object_get_ex(o, key, &v) ||
        !json_object_is_type(v, json_type_int))
        return -1;
    return json_object_get_int64(v);
}

static const char *json_str_at(jobj *o, const char *key)
{
    jobj *v;

    if (!o || !json_object_object_get_ex(o, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* Parses the config (NULL when it is not JSON); *sum points into it. */
static jobj *xl_config_parse(const struct xcc_inspect_xl *xl,
                             struct xl_config_summary *sum)
{
    jobj *cfg = NULL, *c_info = NULL, *b_info = NULL;

    memset(sum, 0, sizeof(*sum));
    sum->max_vcpus = sum->max_memkb = sum->target_memkb = -1;
    if (xl->config && (xl->mandatory_flags & 1))
        cfg = json_tokener_parse(xl->config);
    if (!cfg)
        return NULL;
    json_object_object_get_ex(cfg, "c_info", &c_info);
    json_object_object_get_ex(cfg, "b_info", &b_info);
    sum->name = json_str_at(c_info, "name");
    sum->type = json_str_at(c_info, "type");
    sum->max_vcpus = json_int_at(b_info, "max_vcpus");
    sum->max_memkb = json_int_at(b_info, "max_memkb");
    sum->target_memkb = json_int_at(b_info, "target_memkb");
    return cfg;
}

static void print_xl_header(struct inspect_out *o,
                            const struct xcc_inspect_xl *xl)
{
    struct xl_config_summary sum;
    jobj *cfg = xl_config_parse(xl, &sum);

    o->xl = true;
    if (o->json) {
        jobj *j = json_object_new_object();

        put_u64(j, "mandatory_flags", xl->mandatory_flags);
        put_u64(j, "optional_flags", xl->optional_flags);
        put_u64(j, "optional_data_len", xl->optional_data_len);
        put_u64(j, "config_len", xl->config_len);
        json_object_object_add(
            j, "config_json", json_object_new_boolean(xl->mandatory_flags & 1));
        if (sum.name)
            json_object_object_add(j, "name", json_object_new_string(sum.name));
        if (sum.type)
            json_object_object_add(j, "type", json_object_new_string(sum.type));
        if (sum.max_vcpus >= 0)
            put_u64(j, "max_vcpus", (uint64_t)sum.max_vcpus);
        if (sum.max_memkb >= 0)
            put_u64(j, "max_memkb", (uint64_t)sum.max_memkb);
        if (sum.target_memkb >= 0)
            put_u64(j, "target_memkb", (uint64_t)sum.target_memkb);
        if (cfg && o->verbosity > 0)
            json_object_object_add(j, "config", json_object_get(cfg));
        put_u64(j, "libxl_version", xl->libxl_version);
        put_u64(j, "libxl_options", xl->libxl_options);
        fputs("{\"xl\":", stdout);
        print_json(j);
        fputs(",\n\"records\":[", stdout);
        o->frame_open = true;
        json_object_put(cfg);
        return;
    }
    printf("xl header: \"Xen saved domain, xl format\", flags 0x%" PRIx32
           " (%s%s), optional flags 0x%" PRIx32 ", %" PRIu32
           " bytes of optional data\n",
           xl->mandatory_flags,
           xl->mandatory_flags & 1 ? "JSON config, " : "",
           xl->mandatory_flags & 2 ? "libxl stream v2" : "",
           xl->optional_flags, xl->optional_data_len);
    if (!xl->config_len)
        printf("  config: none\n");
    else if (!cfg)
        printf("  config: %" PRIu32 " bytes (%s)\n", xl->config_len,
               xl->mandatory_flags & 1 ? "JSON that does not parse"
                                       : "xl config text");
    else {
        printf("  config: %" PRIu32 " bytes of JSON: name %s, type %s",
               xl->config_len, sum.name ? sum.name : "(none)",
               sum.type ? sum.type : "(none)");
        if (sum.max_vcpus >= 0)
            printf(", %" PRId64 " vCPU%s", sum.max_vcpus,
                   sum.max_vcpus == 1 ? "" : "s");
        if (sum.target_memkb >= 0)
            printf(", memory %" PRId64 " MiB", sum.target_memkb / 1024);
        if (sum.max_memkb >= 0)
            printf(" (max %" PRId64 " MiB)", sum.max_memkb / 1024);
        putchar('\n');
        if (o->verbosity > 0)
            printf("    %s\n", json_object_to_json_string_ext(
                                    cfg, JSON_C_TO_STRING_PLAIN));
    }
    printf("libxl header: \"LibxlFmt\" version %" PRIu32 ", options 0x%"
           PRIx32 "%s\n", xl->libxl_version, xl->libxl_options,
           xl->libxl_options & 2 ? " (converted from a legacy stream)" : "");
    if (o->verbosity >= 0)
        printf("%-12s %-26s %-10s %s\n", "offset", "record", "length",
               "details");
    json_object_put(cfg);
}

static void print_libxl_record(struct inspect_out *o,
                               const struct xcc_inspect_libxl_record *r)
{
    o->libxl_records++;
    if (o->json) {
        jobj *j = json_object_new_object();

        put_u64(j, "offset", r->offset);
        json_object_object_add(j, "layer", json_object_new_string("libxl"));
        put_u64(j, "type", r->type);
        json_object_object_add(j, "name", json_object_new_string(r->name));
        put_u64(j, "length", r->length);
        if (r->emulator) {
            put_u64(j, "emulator_id", r->emulator_id);
            put_u64(j, "emulator_index", r->emulator_index);
        }
        fputs(o->shown ? ",\n" : "\n", stdout);
        print_json(j);
        o->shown++;
        return;
    }
    if (o->verbosity < 0)
        return;
    char name[64];
    if (strcmp(r->name, "UNKNOWN"))
        snprintf(name, sizeof(name), "libxl %s", r->name);
    else
        snprintf(name, sizeof(name), "libxl UNKNOWN(0x%08" PRIx32 ")",
                 r->type);
    printf("%-12" PRIu64 " %-26s %-10" PRIu32, r->offset, name, r->length);
    if (r->emulator)
        printf(" emulator %" PRIu32 " index %" PRIu32, r->emulator_id,
               r->emulator_index);
    if (r->type == 1)
        printf(" the libxc stream follows");
    putchar('\n');
    o->shown++;
}

static int on_xl(void *opaque, const struct xcc_inspect_xl *xl,
                 const struct xcc_inspect_libxl_record *r)
{
    struct inspect_out *o = opaque;

    if (!r)
        print_xl_header(o, xl);
    else
        print_libxl_record(o, r);
    return 0;
}

static int on_record(void *opaque, const struct xcc_inspect_headers *h,
                     const struct xcc_inspect_record *r)
{
    struct inspect_out *o = opaque;

    if (!r) {
        print_headers(o, h);
        return 0;
    }
    if (type_kind(r) >= 0)
        for (unsigned i = 0; i < 16; i++)
            o->by_type[type_kind(r)][i] += r->by_type[i];
    o->pagetables_checked += r->pagetables_checked;
    if (!strcmp(r->name, "CACHE_BASES")) {
        o->bases_records++;
        o->bases_dropped += r->bases_dropped;
        o->bases_kept += r->bases_kept;
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

        if (!o->frame_open)
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
        {
            jobj *types = json_object_new_object();
            static const char *const keys[3] = {"page_data", "zero_pages",
                                                "xbzrle_pages"};
            for (int k = 0; k < 3; k++)
                json_object_object_add(types, keys[k],
                                       types_json(o->by_type[k]));
            json_object_object_add(j, "pages_by_type", types);
        }
        put_u64(j, "pagetables_checked", o->pagetables_checked);
        {
            jobj *b = json_object_new_object();
            put_u64(b, "records", o->bases_records);
            put_u64(b, "dropped", o->bases_dropped);
            put_u64(b, "kept", o->bases_kept);
            json_object_object_add(j, "cache_bases", b);
        }
        fputs("],\n", stdout);
        if (o->xl) {
            fputs("\"headers\":", stdout);
            print_json(o->have_headers ? headers_json(&o->headers) : NULL);
            fputs(",\n", stdout);
        }
        fputs("\"totals\":", stdout);
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
    for (int k = 0; k < 3; k++) {
        static const char *const where[3] = {"PAGE_DATA", "ZERO_PAGES",
                                             "XBZRLE_PAGES"};
        bool any = false;

        /* PV page tables: L1..L4 (1..4) and pinned L1..L4 (9..0xC). */
        for (unsigned i = 1; i <= 0xC; i++) {
            if (!o->by_type[k][i] || (i > 4 && i < 9))
                continue;
            if (!any)
                printf("  page tables in %s:", where[k]);
            printf("%s %s %" PRIu64, any ? "," : "", type_keys[i],
                   o->by_type[k][i]);
            any = true;
        }
        if (any)
            putchar('\n');
    }
    if (o->pagetables_checked)
        printf("  page tables checked normalised: %" PRIu64 "\n",
               o->pagetables_checked);
    if (t->nr_pfns)
        printf("  guest: %" PRIu64 " pages\n", t->nr_pfns);
    if (o->bases_records)
        printf("  cache bases: %" PRIu64 " CACHE_BASES records, %" PRIu64
               " pfns dropped, %" PRIu64 " kept\n", o->bases_records,
               o->bases_dropped, o->bases_kept);
    if (o->xl)
        printf("  xl image: %" PRIu64 " libxl records around the libxc "
               "stream\n", o->libxl_records);
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
    rc = xcc_image_inspect(fd, log, 0, on_xl, on_record, &o, t);
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
