/*
 * save_opts.c - parsing the options save, migrate and checkpoint share, and
 * the output options and statistics file restore shares with them.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "save_opts.h"
#include "xl_config.h"

/* A libxl config is a few KiB; xl's header takes at most 16 MiB. */
#define XL_CONFIG_MAX (16u << 20)

void out_opts_init(struct out_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->progress = -1;
}

bool out_opts_parse(struct out_opts *o, int opt, const char *arg)
{
    switch (opt) {
    case OUT_OPT_STATS_JSON: o->stats_json = arg; return true;
    case OUT_OPT_PROGRESS: o->progress = 1; return true;
    case OUT_OPT_NO_PROGRESS: o->progress = 0; return true;
    case 'q': o->verbosity = -1; return true;
    case 'v':
        /* -q wins over -v whatever the order. */
        if (o->verbosity >= 0)
            o->verbosity++;
        return true;
    default: return false;
    }
}

void out_opts_finish(struct out_opts *o)
{
    if (o->verbosity < 0)
        o->progress = 0;
    else if (o->progress < 0)
        o->progress = isatty(STDERR_FILENO);
}

void save_opts_init(struct save_opts *o, bool live)
{
    memset(o, 0, sizeof(*o));
    xcc_save_params_init(&o->p);
    o->p.live = live;
    o->verify = -1;
    out_opts_init(&o->out);
    transport_opts_init(&o->dest);
}

int cli_parse_mode(const char *s, const char *what, unsigned *out)
{
    size_t n = strlen(s);

    /* Permission bits only: no set-id or sticky bits on a stream file. */
    if (!n || n > 4 || strspn(s, "01234567") != n ||
        strtoul(s, NULL, 8) > 0777) {
        cli_error("%s: expected octal permission bits 0..0777 (such as 600 "
                  "or 0640), got '%s'", what, s);
        return -1;
    }
    *out = (unsigned)strtoul(s, NULL, 8);
    return 0;
}

/* --compress zstd[:LEVEL] (1..19, default 1). */
static int cli_parse_compress(const char *arg, int *level)
{
    uint64_t v = 1;

    if (strncmp(arg, "zstd", 4) || (arg[4] && arg[4] != ':')) {
        cli_error("--compress: expected zstd[:LEVEL], got '%s'", arg);
        return -1;
    }
    if (arg[4] == ':' && cli_parse_u64(arg + 5, "--compress zstd:LEVEL", &v) < 0)
        return -1;
    if (v < 1 || v > 19) {
        cli_error("--compress: zstd level 1..19, got '%s'", arg + 5);
        return -1;
    }
    *level = (int)v;
    return 0;
}

int save_opts_parse(struct save_opts *o, int opt, const char *arg)
{
    uint64_t v;

    switch (opt) {
    case 'l': o->p.live = 1; break;
    case 'x': o->p.xbzrle = 1; break;
    case SAVE_OPT_CACHE_SIZE:
        if (cli_parse_size(arg, "--cache-size", &o->p.cache_size) < 0)
            return -1;
        if (!o->p.cache_size) {
            cli_error("--cache-size: must not be 0");
            return -1;
        }
        break;
    case SAVE_OPT_NO_MAP_CACHE: o->p.no_map_cache = 1; break;
    case SAVE_OPT_XEN_COMPAT: o->p.xen_compat = 1; break;
    case SAVE_OPT_VERIFY: o->verify = 1; break;
    case SAVE_OPT_NO_VERIFY: o->verify = 0; break;
    case SAVE_OPT_MAX_ITERS:
        if (cli_parse_u64(arg, "--max-iters", &v) < 0)
            return -1;
        if (v < 1 || v > UINT32_MAX) {
            cli_error("--max-iters: expected 1..%u, got %s", UINT32_MAX, arg);
            return -1;
        }
        o->p.max_iters = (uint32_t)v;
        break;
    case SAVE_OPT_TARGET_DIRTY:
        if (cli_parse_u64(arg, "--target-dirty", &v) < 0)
            return -1;
        /* The library reads 0 as "default": 0 pages means 1 here. */
        o->p.target_dirty = v ? v : 1;
        break;
    case SAVE_OPT_MAX_DOWNTIME:
        if (cli_parse_u64(arg, "--max-downtime", &o->p.max_downtime_ms) < 0)
            return -1;
        break;
    case SAVE_OPT_MIN_REMAINING:
        if (cli_parse_u64(arg, "--min-remaining", &o->p.min_remaining) < 0)
            return -1;
        /* The library reads 0 as "default": 0 pages means 1 here. */
        if (!o->p.min_remaining)
            o->p.min_remaining = 1;
        break;
    case SAVE_OPT_ABORT_IF_BUSY: o->p.abort_if_busy = 1; break;
    case SAVE_OPT_MAX_BANDWIDTH:
        if (cli_parse_rate(arg, "--max-bandwidth", &o->p.max_bandwidth) < 0)
            return -1;
        break;
    case SAVE_OPT_SUSPEND_TIMEOUT:
        if (cli_parse_u64(arg, "--suspend-timeout", &v) < 0)
            return -1;
        if (v < 1 || v > UINT32_MAX) {
            cli_error("--suspend-timeout: expected 1..%u ms, got %s",
                      UINT32_MAX, arg);
            return -1;
        }
        o->p.suspend_timeout_ms = (uint32_t)v;
        break;
    case SAVE_OPT_NO_HOT_PREDICT: o->p.no_hot_predict = 1; break;
    case SAVE_OPT_COMPRESS:
        if (cli_parse_compress(arg, &o->p.compress_level) < 0)
            return -1;
        break;
    case SAVE_OPT_THREADS:
        if (cli_parse_u64(arg, "--threads", &v) < 0)
            return -1;
        if (v < 1 || v > XCC_SAVE_MAX_THREADS) {
            cli_error("--threads: expected 1..%u, got %s",
                      XCC_SAVE_MAX_THREADS, arg);
            return -1;
        }
        o->p.threads = (uint32_t)v;
        break;
    case 'c': o->resume = true; break;
    case SAVE_OPT_MODE:
        if (cli_parse_mode(arg, "--mode", &o->dest.file_mode) < 0)
            return -1;
        o->mode_given = true;
        break;
    case SAVE_OPT_AUTH_KEY_FILE: o->key_file = arg; break;
    case SAVE_OPT_XL_CONFIG_JSON: o->xl_config_path = arg; break;
    default: return out_opts_parse(&o->out, opt, arg) ? 1 : 0;
    }
    return 1;
}

/*
 * --xl-config-json FILE: the libxl JSON config `xl restore` creates the
 * domain from (what `xl list -l` shows under "config", or what
 * libxl_domain_config_to_json gives). Read whole and checked to be a JSON
 * object, so a wrong file fails here and not in `xl restore`.
 */
static int read_xl_config(struct save_opts *o)
{
    const char *path = o->xl_config_path;
    FILE *f = fopen(path, "r");
    json_object *j;
    size_t n = 0;
    char *buf;

    if (!f) {
        cli_error("--xl-config-json: cannot open '%s': %s", path,
                  strerror(errno));
        return -1;
    }
    buf = malloc(XL_CONFIG_MAX + 1);
    if (buf)
        n = fread(buf, 1, XL_CONFIG_MAX + 1, f);
    if (!buf || ferror(f)) {
        cli_error("--xl-config-json: cannot read '%s': %s", path,
                  buf ? strerror(errno) : "out of memory");
        fclose(f);
        free(buf);
        return -1;
    }
    fclose(f);
    if (n > XL_CONFIG_MAX) {
        cli_error("--xl-config-json: '%s' is over %u bytes", path,
                  XL_CONFIG_MAX);
        free(buf);
        return -1;
    }
    buf[n] = 0;
    j = strlen(buf) == n ? json_tokener_parse(buf) : NULL;
    if (!j || !json_object_is_type(j, json_type_object)) {
        cli_error("--xl-config-json: '%s' is not a JSON object (a libxl "
                  "domain config, as `xl list -l` prints under \"config\")",
                  path);
        json_object_put(j);
        free(buf);
        return -1;
    }
    json_object_put(j);
    o->xl_config = buf;
    o->p.domain_config_json = buf;
    return 0;
}

int save_opts_finish(struct save_opts *o, const char *dest)
{
    if (transport_check_spec(dest, TRANSPORT_DEST) < 0)
        return -1;
    if (o->mode_given && transport_is_special(dest)) {
        cli_error("--mode: applies to a FILE destination, not '%s'", dest);
        return -1;
    }
    if (o->key_file && strncmp(dest, "tcp:", 4)) {
        cli_error("--auth-key-file: applies to a tcp: destination, not '%s' "
                  "(the key authenticates the connection)", dest);
        return -1;
    }
    if (o->key_file) {
        if (transport_load_key(o->key_file, &o->key) < 0)
            return -1;
        o->dest.key = &o->key;
    }
    if (o->p.xen_compat && o->p.xbzrle) {
        cli_error("--xen-compat and --xbzrle: a Xen stream has no XBZRLE "
                  "pages");
        return -1;
    }
    if (o->p.xen_compat && o->p.compress_level) {
        cli_error("--xen-compat and --compress: a Xen stream has no "
                  "COMPRESSED_PAGES record");
        return -1;
    }
    if (o->p.xen_compat && o->verify == 1) {
        cli_error("--xen-compat and --verify: a Xen stream has no DIGEST");
        return -1;
    }
    if (o->xl_config_path && !o->p.xen_compat) {
        cli_error("--xl-config-json: only with --xen-compat (the config goes "
                  "in the xl header)");
        return -1;
    }
    if (o->xl_config_path && read_xl_config(o) < 0)
        return -1;
    out_opts_finish(&o->out);
    return 0;
}

xcc_domain *save_opts_open_domain(struct save_opts *o, const char *dom,
                                  xentoollog_logger *log)
{
    xcc_domain *d;

    if (o->xl_config && !strncmp(dom, "sim:", 4)) {
        cli_error("--xl-config-json: a sim guest's --xen-compat stream is the "
                  "bare libxc stream, without an xl header to put it in");
        return NULL;
    }
    d = xcc_domain_open(dom, log, 0);
    if (!d) {
        cli_error("cannot open domain '%s': %s", dom, xcc_strerror(errno));
        return NULL;
    }
    if (o->verify < 0)
        o->verify = !o->p.xen_compat && !strncmp(dom, "sim:", 4);
    o->p.verify = o->verify;
    /* A Xen domain's libxl config goes in the stream (XL_CONFIG); it lives
     * as long as the program. */
    if (!o->p.domain_config_json)
        o->p.domain_config_json = xl_config_fetch(dom, log);
    o->p.progress = o->out.progress;
    return d;
}

int save_opts_open_dest(const struct save_opts *o, const char *dest,
                        unsigned timeout_ms, struct transport *t)
{
    if (!strcmp(dest, "-") && isatty(STDOUT_FILENO)) {
        cli_error("refusing to write a stream to a terminal");
        return -1;
    }
    return transport_open_dest(dest, timeout_ms, &o->dest, t) < 0 ? -1 : 0;
}

int cli_write_text_file(const char *path, const char *text)
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

int cli_write_stats_json(const char *path, const char *json)
{
    if (!json) {
        cli_error("cannot format the statistics: %s", strerror(errno));
        return -1;
    }
    return cli_write_text_file(path, json);
}

int save_opts_end_run(const struct save_opts *o, xcc_domain *d, const char *dom,
                      struct transport *t, const char *stats_json, int rc)
{
    if (rc == EXIT_OK && o->resume && xcc_domain_unpause(d) < 0) {
        cli_error("cannot continue '%s': %s", dom, xcc_strerror(errno));
        rc = EXIT_FAIL;
    }
    if (transport_close(t) < 0 && rc == EXIT_OK)
        rc = EXIT_FAIL;
    if (o->out.stats_json &&
        cli_write_stats_json(o->out.stats_json, stats_json) < 0 &&
        rc == EXIT_OK)
        rc = EXIT_FAIL;
    return rc;
}
