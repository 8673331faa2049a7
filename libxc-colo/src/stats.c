/*
 * stats.c - save, checkpoint and restore figures as JSON (written with
 * json-c), with QEMU's query-migrate names where QEMU has one (stats.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "stats.h"

#define NS_PER_MS 1e6
#define NS_PER_S 1e9
#define BITS_PER_BYTE 8.0
#define BYTES_PER_MBIT 1e6 /* QEMU's mbps: 10^6 bits per second */

/*
 * The documents are built as json-c objects and printed once. Keys keep
 * their insertion order, so a document reads in the order written here.
 * Fractional figures are printed with three decimals (ms), counters as
 * integers.
 */
typedef struct json_object jobj;

static void put(jobj *o, const char *key, jobj *v)
{
    /* json-c prints a NULL value as JSON null. */
    json_object_object_add(o, key, v);
}

static void put_u64(jobj *o, const char *key, uint64_t v)
{
    put(o, key, json_object_new_uint64(v));
}

/* A double printed as "%.3f", the format the documents have always had. */
static jobj *dbl3(double v)
{
    char buf[64];

    /* JSON has no NaN or infinity. */
    if (v != v || v > 1e300 || v < -1e300)
        v = 0;
    snprintf(buf, sizeof(buf), "%.3f", v);
    return json_object_new_double_s(v, buf);
}

static void put_dbl(jobj *o, const char *key, double v)
{
    put(o, key, dbl3(v));
}

static void put_bool(jobj *o, const char *key, bool v)
{
    put(o, key, json_object_new_boolean(v));
}

static void put_str(jobj *o, const char *key, const char *v)
{
    put(o, key, json_object_new_string(v ? v : ""));
}

/* A new object put under key in o (NULL: ENOMEM). */
static jobj *put_obj(jobj *o, const char *key)
{
    jobj *n = json_object_new_object();

    put(o, key, n);
    return n;
}

/* Prints and frees root: a malloc'd string ending in a newline, or NULL
 * with errno ENOMEM. */
static char *finish(jobj *root)
{
    const char *text;
    char *out = NULL;
    size_t len;

    if (root) {
        text = json_object_to_json_string_ext(
            root, JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (text) {
            len = strlen(text);
            out = malloc(len + 2);
            if (out) {
                memcpy(out, text, len);
                memcpy(out + len, "\n", 2);
            }
        }
        json_object_put(root);
    }
    if (!out)
        errno = ENOMEM;
    return out;
}

double stats_ms(uint64_t a, uint64_t b)
{
    if (!b || b < a)
        return 0;
    return (double)(b - a) / NS_PER_MS;
}

static double ratio(double num, double den)
{
    return den > 0 ? num / den : 0;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

struct stats_iteration *stats_save_new_iteration(struct stats_save *s)
{
    if (s->nr_iters == s->iters_cap) {
        size_t cap = s->iters_cap ? s->iters_cap * 2 : 16;
        struct stats_iteration *n = realloc(s->iters, cap * sizeof(*n));
        if (!n)
            return NULL;
        s->iters = n;
        s->iters_cap = cap;
    }
    struct stats_iteration *it = &s->iters[s->nr_iters];
    memset(it, 0, sizeof(*it));
    it->index = (uint32_t)s->nr_iters++;
    return it;
}

void stats_save_free(struct stats_save *s)
{
    free(s->iters);
    s->iters = NULL;
    s->nr_iters = s->iters_cap = 0;
}

/* The counters a pass's delta and the totals both give, in one order. */
static void map_cache_counters_json(jobj *o, const struct stats_map_cache *m)
{
    put_u64(o, "map-calls", m->map_calls);
    put_u64(o, "unmap-calls", m->unmap_calls);
    put_u64(o, "chunks-mapped", m->chunks_mapped);
    put_u64(o, "pages-mapped", m->pages_mapped);
    put_u64(o, "hits", m->hits);
    put_u64(o, "misses", m->misses);
    put_u64(o, "evictions", m->evictions);
}

static void map_cache_total_json(jobj *parent,
                                 const struct xcc_map_cache_stats *m)
{
    const struct stats_map_cache counters = {
        .map_calls = m->map_calls,
        .unmap_calls = m->unmap_calls,
        .chunks_mapped = m->chunks_mapped,
        .pages_mapped = m->pages_mapped,
        .hits = m->hits,
        .misses = m->misses,
        .evictions = m->evictions,
    };
    jobj *o = put_obj(parent, "map-cache");

    if (!o)
        return;
    put_str(o, "mode", m->per_batch ? "per-batch" : "cached");
    put_u64(o, "chunk-pfns", m->chunk_pfns);
    map_cache_counters_json(o, &counters);
    put_u64(o, "map-errors", m->map_errors);
    put_u64(o, "page-errors", m->page_errors);
    put_u64(o, "max-mappings", m->max_mappings);
    put_u64(o, "max-resident", m->max_resident);
}

static jobj *iteration_json(const struct stats_iteration *it)
{
    jobj *o = json_object_new_object(), *mc;

    if (!o)
        return NULL;
    put_u64(o, "iteration", it->index);
    put_bool(o, "paused", it->paused);
    put_u64(o, "dirty-pages", it->dirty_pages);
    put_u64(o, "pages", it->pages);
    put_u64(o, "normal", it->normal);
    put_u64(o, "duplicate", it->zero);
    put_u64(o, "xbzrle", it->xbzrle);
    put_u64(o, "skipped", it->nodata);
    put_u64(o, "unchanged", it->unchanged);
    put_u64(o, "xbzrle-bytes", it->xbzrle_bytes);
    put_u64(o, "cache-miss", it->cache_miss);
    put_u64(o, "overflow", it->overflow);
    put_u64(o, "pagetables", it->pagetables);
    put_u64(o, "pagetables-deferred", it->pt_deferred);
    put_u64(o, "bytes", it->bytes);
    put_dbl(o, "seconds", (double)it->ns / NS_PER_S);
    /* Milliseconds to the microsecond: a paused pass can take 1 ms. */
    put_dbl(o, "duration-ms", (double)it->ns / NS_PER_MS);
    put_dbl(o, "encode-ms", (double)it->encode_ns / NS_PER_MS);
    mc = put_obj(o, "map-cache");
    if (mc)
        map_cache_counters_json(mc, &it->mc);
    return o;
}

/* The save document's object (NULL: ENOMEM). */
static jobj *save_json(const struct stats_save *s)
{
    jobj *root = json_object_new_object(), *o, *arr;
    const double psz = s->page_size;
    const double total_ms = stats_ms(s->t_start, s->t_end);
    const double secs = total_ms / 1e3;
    const uint64_t sent = s->normal + s->zero + s->xbzrle;
    const uint64_t lookups = s->cache_hit + s->cache_miss;

    if (!root)
        return NULL;
    put_str(root, "status", s->status);
    put_u64(root, "total-time", (uint64_t)(total_ms + 0.5));
    put_u64(root, "downtime",
            (uint64_t)(stats_ms(s->t_pause, s->t_end) + 0.5));
    put_u64(root, "setup-time",
            (uint64_t)(stats_ms(s->t_start, s->t_setup_done) + 0.5));
    /* Sub-millisecond figures: QEMU's are whole ms, too coarse here. */
    put_dbl(root, "total-time-ms", total_ms);
    put_dbl(root, "downtime-ms", stats_ms(s->t_pause, s->t_end));
    put_dbl(root, "digest-time-ms", (double)s->digest_ns / NS_PER_MS);
    put_dbl(root, "digest-downtime-ms", (double)s->digest_final_ns / NS_PER_MS);
    put_str(root, "stop-reason", s->stop_reason);
    /* The final pass ran with the guest suspended (Xen), not paused:
     * suspended-ms is the guest's downtime in it (a checkpoint run: in
     * its last checkpoint, up to END), suspend-request-ms how long it took
     * to suspend itself before that. */
    put_bool(root, "suspended", s->suspended);
    put_dbl(root, "suspended-ms",
            s->suspended ? stats_ms(s->t_suspended, s->t_end) : 0);
    put_dbl(root, "suspend-request-ms",
            (double)s->suspend_request_ns / NS_PER_MS);
    put_dbl(root, "suspend-request-max-ms",
            (double)s->suspend_request_max_ns / NS_PER_MS);
    put_u64(root, "suspends", s->suspends);

    if ((o = put_obj(root, "mode"))) {
        put_bool(o, "live", s->live);
        put_bool(o, "xbzrle", s->use_xbzrle);
        put_bool(o, "map-cache", s->map_cache);
        put_bool(o, "xen-compat", s->xen_compat);
        put_bool(o, "verify", s->verify);
    }

    if ((o = put_obj(root, "ram"))) {
        put_u64(o, "transferred", s->transferred);
        put_u64(o, "remaining", s->remaining * s->page_size);
        put_u64(o, "total", s->nr_pfns * s->page_size);
        put_u64(o, "duplicate", s->zero);
        put_u64(o, "normal", s->normal);
        put_u64(o, "normal-bytes", s->normal * s->page_size);
        put_u64(o, "dirty-sync-count", s->dirty_sync_count);
        put_u64(o, "pages-per-second", (uint64_t)ratio((double)sent, secs));
        put_dbl(o, "mbps", ratio((double)s->transferred * BITS_PER_BYTE /
                                     BYTES_PER_MBIT, secs));
        put_u64(o, "page-size", s->page_size);
        put_u64(o, "skipped", s->nodata);
        put_u64(o, "unchanged", s->unchanged);
        put_u64(o, "pagetables", s->pagetables);
        put_u64(o, "pagetables-deferred", s->pt_deferred);
    }

    if ((o = put_obj(root, "xbzrle-cache"))) {
        put_u64(o, "cache-size", s->cache_size);
        put_u64(o, "bytes", s->xbzrle_bytes);
        put_u64(o, "pages", s->xbzrle);
        put_u64(o, "cache-miss", s->cache_miss);
        put_dbl(o, "cache-miss-rate",
                ratio((double)s->cache_miss, (double)lookups));
        put_dbl(o, "encoding-rate",
                ratio((double)s->xbzrle * psz, (double)s->xbzrle_bytes));
        put_u64(o, "overflow", s->overflow);
        put_u64(o, "cache-hit", s->cache_hit);
        put_u64(o, "inserts", s->pc.inserts);
        put_u64(o, "declined", s->pc.declined);
        put_u64(o, "evictions", s->pc.evictions);
        put_u64(o, "entries", s->pc.entries);
        jobj *b;
        if (s->bases_records && (b = put_obj(o, "cache-bases"))) {
            put_u64(b, "records", s->bases_records);
            put_u64(b, "dropped", s->bases_dropped);
            put_u64(b, "kept", s->bases_kept);
            /* Every pfn kept was new to the receiver and every pfn dropped
             * was kept before: what it holds now is the difference. */
            put_u64(b, "receiver-pages", s->bases_kept - s->bases_dropped);
        }
    }

    if ((o = put_obj(root, "encode"))) {
        jobj *busy = json_object_new_array();

        put_u64(o, "threads", s->threads);
        put_u64(o, "pages", s->encode_pages);
        put_dbl(o, "wall-ms", (double)s->encode_ns / NS_PER_MS);
        put_dbl(o, "pages-per-second",
                ratio((double)s->encode_pages, (double)s->encode_ns / NS_PER_S));
        put(o, "thread-busy-ms", busy);
        for (uint32_t k = 0; busy && k < s->threads; k++)
            json_object_array_add(
                busy, dbl3((double)s->thread_busy_ns[k] / NS_PER_MS));
    }

    map_cache_total_json(root, &s->mc);
    hot_predict_json(root, &s->hot);
    compress_json(root, &s->zc);

    arr = json_object_new_array();
    put(root, "iterations", arr);
    for (size_t i = 0; arr && i < s->nr_iters; i++)
        json_object_array_add(arr, iteration_json(&s->iters[i]));
    return root;
}

void stats_iteration_add_pages(struct stats_iteration *dst,
                               const struct stats_iteration *src)
{
    dst->normal += src->normal;
    dst->zero += src->zero;
    dst->xbzrle += src->xbzrle;
    dst->nodata += src->nodata;
    dst->unchanged += src->unchanged;
    dst->xbzrle_bytes += src->xbzrle_bytes;
    dst->cache_miss += src->cache_miss;
    dst->cache_hit += src->cache_hit;
    dst->overflow += src->overflow;
}

char *stats_save_json(const struct stats_save *s)
{
    return finish(save_json(s));
}

double stats_percentile(double *v, size_t n, double pct)
{
    size_t rank;

    if (!n)
        return -1;
    qsort(v, n, sizeof(*v), cmp_dbl);
    rank = (size_t)(pct / 100.0 * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

double stats_checkpoint_pause_ms(const struct stats_checkpoint_entry *e)
{
    return (double)(e->t_resume - e->t_pause) / NS_PER_MS;
}

double stats_checkpoint_commit_ms(const struct stats_checkpoint_entry *e)
{
    if (!e->t_ack || e->t_ack < e->t_sent)
        return -1;
    return (double)(e->t_ack - e->t_sent) / NS_PER_MS;
}

double stats_checkpoint_rate(const struct stats_checkpoint *c)
{
    if (!c->n || c->e[c->n - 1].t_resume <= c->e[0].t_pause)
        return 0;
    return (double)c->n /
           ((double)(c->e[c->n - 1].t_resume - c->e[0].t_pause) / NS_PER_S);
}

/* {p50, p99, max} of v[0..n) (sorted in place), or null when n is 0;
 * as ms (three decimals) or as whole numbers. */
static jobj *percentiles_json(double *v, size_t n, bool ms)
{
    jobj *o;
    double p50, p99;

    if (!n)
        return NULL;
    p50 = stats_percentile(v, n, 50);
    p99 = stats_percentile(v, n, 99);
    o = json_object_new_object();
    if (!o)
        return NULL;
    if (ms) {
        put_dbl(o, "p50", p50);
        put_dbl(o, "p99", p99);
        put_dbl(o, "max", v[n - 1]);
    } else {
        put_u64(o, "p50", (uint64_t)p50);
        put_u64(o, "p99", (uint64_t)p99);
        put_u64(o, "max", (uint64_t)v[n - 1]);
    }
    return o;
}

/* A ms figure, null when negative (unknown). */
static jobj *ms_or_null(double ms)
{
    return ms < 0 ? NULL : dbl3(ms);
}

char *stats_checkpoint_json(const struct stats_save *s,
                            const struct stats_checkpoint *c)
{
    jobj *root = save_json(s), *o, *arr;
    double *v = malloc((c->n ? c->n : 1) * sizeof(double));
    double rate;
    char buf[32];
    size_t nc = 0;

    if (!root || !v) {
        free(v);
        json_object_put(root);
        errno = ENOMEM;
        return NULL;
    }
    o = put_obj(root, "checkpoint");
    if (!o)
        goto out;
    put_u64(o, "count", c->n);
    put_u64(o, "interval-ms", c->interval_ms);
    put_bool(o, "colo", c->colo);
    put_bool(o, "back-channel", c->back_channel);
    put_u64(o, "acknowledged", c->acknowledged);
    rate = stats_checkpoint_rate(c);
    snprintf(buf, sizeof(buf), "%.2f", rate);
    put(o, "checkpoints-per-second", json_object_new_double_s(rate, buf));
    put_u64(o, "secondary-dirty-pages", c->secondary_dirty);
    put_str(o, "stop-reason", c->stop_reason);
    for (size_t i = 0; i < c->n; i++)
        v[i] = stats_checkpoint_pause_ms(&c->e[i]);
    put(o, "pause-ms", percentiles_json(v, c->n, true));
    for (size_t i = 0; i < c->n; i++) {
        double ms = stats_checkpoint_commit_ms(&c->e[i]);
        if (ms >= 0)
            v[nc++] = ms;
    }
    put(o, "commit-ms", percentiles_json(v, nc, true));
    for (size_t i = 0; i < c->n; i++)
        v[i] = (double)c->e[i].bytes;
    put(o, "bytes", percentiles_json(v, c->n, false));
    for (size_t i = 0; i < c->n; i++)
        v[i] = (double)c->e[i].pages;
    put(o, "pages", percentiles_json(v, c->n, false));
    arr = json_object_new_array();
    put(o, "checkpoints", arr);
    for (size_t i = 0; arr && i < c->n; i++) {
        const struct stats_checkpoint_entry *e = &c->e[i];
        jobj *k = json_object_new_object();

        if (!k)
            break;
        put_u64(k, "k", i + 1);
        put_u64(k, "pages", e->pages);
        put_u64(k, "bytes", e->bytes);
        put_u64(k, "dirty", e->dirty);
        put_u64(k, "secondary-dirty", e->secondary_dirty);
        put_u64(k, "digest-chunks", e->digest_chunks);
        put_dbl(k, "at-ms", (double)(e->t_pause - c->e[0].t_pause) / NS_PER_MS);
        put_dbl(k, "pause-ms", stats_checkpoint_pause_ms(e));
        put(k, "commit-ms", ms_or_null(stats_checkpoint_commit_ms(e)));
        json_object_array_add(arr, k);
    }
out:
    free(v);
    return finish(root);
}

char *stats_restore_json(const struct stats_restore *s)
{
    jobj *root = json_object_new_object(), *o;
    const double total_ms = stats_ms(s->t_start, s->t_end);

    if (!root) {
        errno = ENOMEM;
        return NULL;
    }
    put_str(root, "status", s->status);
    put_u64(root, "total-time", (uint64_t)(total_ms + 0.5));
    put_dbl(root, "total-time-ms", total_ms);
    if ((o = put_obj(root, "ram"))) {
        put_u64(o, "transferred", s->bytes);
        put_u64(o, "total", s->nr_pfns * s->page_size);
        put_u64(o, "duplicate", s->zero);
        put_u64(o, "normal", s->normal);
        put_u64(o, "normal-bytes", s->normal * s->page_size);
        put_u64(o, "xbzrle", s->xbzrle);
        put_u64(o, "xbzrle-bytes", s->xbzrle_bytes);
        put_u64(o, "skipped", s->nodata);
        put_u64(o, "populated", s->populated);
        put_u64(o, "page-size", s->page_size);
        put_dbl(o, "mbps", ratio((double)s->bytes * BITS_PER_BYTE /
                                     BYTES_PER_MBIT, total_ms / 1e3));
    }
    put_u64(root, "records", s->records);
    put_u64(root, "digest-chunks-checked", s->digest_chunks);
    map_cache_total_json(root, &s->mc);
    return finish(root);
}

char *stats_translate_json(const struct stats_translate *s)
{
    jobj *root = json_object_new_object(), *o;
    const double total_ms = stats_ms(s->t_start, s->t_end);

    if (!root) {
        errno = ENOMEM;
        return NULL;
    }
    put_str(root, "status", s->status ? s->status : "setup");
    put_dbl(root, "total-time-ms", total_ms);
    put_u64(root, "guest-pages", s->nr_pfns);
    put_u64(root, "page-size", s->page_size);
    if ((o = put_obj(root, "in"))) {
        put_u64(o, "bytes", s->bytes_in);
        put_u64(o, "records", s->records_in);
        put_u64(o, "page-data", s->page_data_in);
        put_u64(o, "zero", s->zero_in);
        put_u64(o, "xbzrle", s->xbzrle_in);
        put_u64(o, "compressed", s->compressed_in);
        put_u64(o, "digests-checked", s->digests_checked);
        put_u64(o, "digests-not-checked", s->digests_unchecked);
    }
    if ((o = put_obj(root, "out"))) {
        put_u64(o, "bytes", s->bytes_out);
        put_u64(o, "pages", s->pages_out);
        put_u64(o, "page-data-records", s->page_records_out);
        put_u64(o, "state-records", s->records_out);
        put_u64(o, "checkpoints", s->checkpoints);
    }
    /* The receiver's memory for the copy, beside the guest's size. */
    put_u64(root, "guest-bytes", s->nr_pfns * s->page_size);
    put_str(root, "decode-copy", s->copy_mode ? s->copy_mode : "none");
    put_u64(root, "decode-copy-bytes", s->copy_bytes);
    put_u64(root, "decode-copy-peak-bytes", s->copy_peak_bytes);
    put_u64(root, "decode-copy-bases", s->copy_bases);
    put_dbl(root, "decode-copy-peak-of-guest",
            s->nr_pfns ? (double)s->copy_peak_bytes /
                             ((double)s->nr_pfns * s->page_size)
                       : 0);
    /* Why a DIGEST was not compared: the copy lacks the pages. */
    if (s->digests_unchecked)
        put_str(root, "digest-not-checked",
                "the decode copy is sparse (the stream announces its XBZRLE "
                "cache, CACHE_BASES): it holds only the pages XBZRLE may "
                "still use, not the memory the DIGEST describes");
    return finish(root);
}
