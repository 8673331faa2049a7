/*
 * stats.c - save and restore figures as JSON, with QEMU's query-migrate
 * names where QEMU has one (see stats.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

#define NS_PER_MS 1e6
#define NS_PER_S 1e9
#define BITS_PER_BYTE 8.0
#define BYTES_PER_MBIT 1e6 /* QEMU's mbps: 10^6 bits per second */

/* A growing string; on allocation failure it stays failed and says so. */
struct jbuf {
    char *p;
    size_t len, cap;
    bool failed;
    bool need_comma; /* a value was written at this nesting level */
};

static void __attribute__((format(printf, 2, 3)))
jb_printf(struct jbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->failed)
        return;
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->failed = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

static void jb_key(struct jbuf *b, const char *key)
{
    jb_printf(b, "%s\"%s\": ", b->need_comma ? ", " : "", key);
    b->need_comma = true;
}

static void jb_u64(struct jbuf *b, const char *key, uint64_t v)
{
    jb_key(b, key);
    jb_printf(b, "%" PRIu64, v);
}

static void jb_dbl(struct jbuf *b, const char *key, double v)
{
    jb_key(b, key);
    /* JSON has no NaN or infinity. */
    if (v != v || v > 1e300 || v < -1e300)
        v = 0;
    jb_printf(b, "%.3f", v);
}

static void jb_bool(struct jbuf *b, const char *key, bool v)
{
    jb_key(b, key);
    jb_printf(b, "%s", v ? "true" : "false");
}

/* Only fixed identifiers are written as strings: no escaping needed. */
static void jb_str(struct jbuf *b, const char *key, const char *v)
{
    jb_key(b, key);
    jb_printf(b, "\"%s\"", v ? v : "");
}

static void jb_open(struct jbuf *b, const char *key)
{
    if (key)
        jb_key(b, key);
    else if (b->need_comma)
        jb_printf(b, ", ");
    jb_printf(b, "{");
    b->need_comma = false;
}

static void jb_close(struct jbuf *b)
{
    jb_printf(b, "}");
    b->need_comma = true;
}

static char *jb_finish(struct jbuf *b)
{
    if (b->failed || !b->p) {
        free(b->p);
        errno = ENOMEM;
        return NULL;
    }
    return b->p;
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
static void map_cache_counters_json(struct jbuf *b,
                                    const struct stats_map_cache *m)
{
    jb_u64(b, "map-calls", m->map_calls);
    jb_u64(b, "unmap-calls", m->unmap_calls);
    jb_u64(b, "chunks-mapped", m->chunks_mapped);
    jb_u64(b, "pages-mapped", m->pages_mapped);
    jb_u64(b, "hits", m->hits);
    jb_u64(b, "misses", m->misses);
    jb_u64(b, "evictions", m->evictions);
}

static void map_cache_delta_json(struct jbuf *b, const struct stats_map_cache *m)
{
    jb_open(b, "map-cache");
    map_cache_counters_json(b, m);
    jb_close(b);
}

static void map_cache_total_json(struct jbuf *b,
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

    jb_open(b, "map-cache");
    jb_str(b, "mode", m->per_batch ? "per-batch" : "cached");
    jb_u64(b, "chunk-pfns", m->chunk_pfns);
    map_cache_counters_json(b, &counters);
    jb_u64(b, "map-errors", m->map_errors);
    jb_u64(b, "page-errors", m->page_errors);
    jb_u64(b, "max-mappings", m->max_mappings);
    jb_u64(b, "max-resident", m->max_resident);
    jb_close(b);
}

char *stats_save_json(const struct stats_save *s)
{
    struct jbuf b = {0};
    const double psz = s->page_size;
    const double total_ms = stats_ms(s->t_start, s->t_end);
    const double secs = total_ms / 1e3;
    const uint64_t sent = s->normal + s->zero + s->xbzrle;
    const uint64_t lookups = s->cache_hit + s->cache_miss;

    jb_open(&b, NULL);
    jb_str(&b, "status", s->status);
    jb_u64(&b, "total-time", (uint64_t)(total_ms + 0.5));
    jb_u64(&b, "downtime", (uint64_t)(stats_ms(s->t_pause, s->t_end) + 0.5));
    jb_u64(&b, "setup-time",
           (uint64_t)(stats_ms(s->t_start, s->t_setup_done) + 0.5));
    /* Sub-millisecond figures: QEMU's are whole ms, too coarse here. */
    jb_dbl(&b, "total-time-ms", total_ms);
    jb_dbl(&b, "downtime-ms", stats_ms(s->t_pause, s->t_end));
    jb_dbl(&b, "digest-time-ms", (double)s->digest_ns / NS_PER_MS);
    jb_dbl(&b, "digest-downtime-ms", (double)s->digest_final_ns / NS_PER_MS);
    jb_str(&b, "stop-reason", s->stop_reason);

    jb_open(&b, "mode");
    jb_bool(&b, "live", s->live);
    jb_bool(&b, "xbzrle", s->use_xbzrle);
    jb_bool(&b, "map-cache", s->map_cache);
    jb_bool(&b, "xen-compat", s->xen_compat);
    jb_bool(&b, "verify", s->verify);
    jb_close(&b);

    jb_open(&b, "ram");
    jb_u64(&b, "transferred", s->transferred);
    jb_u64(&b, "remaining", s->remaining * s->page_size);
    jb_u64(&b, "total", s->nr_pfns * s->page_size);
    jb_u64(&b, "duplicate", s->zero);
    jb_u64(&b, "normal", s->normal);
    jb_u64(&b, "normal-bytes", s->normal * s->page_size);
    jb_u64(&b, "dirty-sync-count", s->dirty_sync_count);
    jb_u64(&b, "pages-per-second", (uint64_t)ratio((double)sent, secs));
    jb_dbl(&b, "mbps",
           ratio((double)s->transferred * BITS_PER_BYTE / BYTES_PER_MBIT, secs));
    jb_u64(&b, "page-size", s->page_size);
    jb_u64(&b, "skipped", s->nodata);
    jb_u64(&b, "unchanged", s->unchanged);
    jb_close(&b);

    jb_open(&b, "xbzrle-cache");
    jb_u64(&b, "cache-size", s->cache_size);
    jb_u64(&b, "bytes", s->xbzrle_bytes);
    jb_u64(&b, "pages", s->xbzrle);
    jb_u64(&b, "cache-miss", s->cache_miss);
    jb_dbl(&b, "cache-miss-rate", ratio((double)s->cache_miss, (double)lookups));
    jb_dbl(&b, "encoding-rate",
           ratio((double)s->xbzrle * psz, (double)s->xbzrle_bytes));
    jb_u64(&b, "overflow", s->overflow);
    jb_u64(&b, "cache-hit", s->cache_hit);
    jb_u64(&b, "inserts", s->pc.inserts);
    jb_u64(&b, "declined", s->pc.declined);
    jb_u64(&b, "evictions", s->pc.evictions);
    jb_close(&b);

    map_cache_total_json(&b, &s->mc);

    jb_key(&b, "iterations");
    jb_printf(&b, "[");
    b.need_comma = false;
    for (size_t i = 0; i < s->nr_iters; i++) {
        const struct stats_iteration *it = &s->iters[i];
        jb_open(&b, NULL);
        jb_u64(&b, "iteration", it->index);
        jb_bool(&b, "paused", it->paused);
        jb_u64(&b, "dirty-pages", it->dirty_pages);
        jb_u64(&b, "pages", it->pages);
        jb_u64(&b, "normal", it->normal);
        jb_u64(&b, "duplicate", it->zero);
        jb_u64(&b, "xbzrle", it->xbzrle);
        jb_u64(&b, "skipped", it->nodata);
        jb_u64(&b, "unchanged", it->unchanged);
        jb_u64(&b, "xbzrle-bytes", it->xbzrle_bytes);
        jb_u64(&b, "cache-miss", it->cache_miss);
        jb_u64(&b, "overflow", it->overflow);
        jb_u64(&b, "bytes", it->bytes);
        jb_dbl(&b, "seconds", (double)it->ns / NS_PER_S);
        map_cache_delta_json(&b, &it->mc);
        jb_close(&b);
    }
    jb_printf(&b, "]");
    b.need_comma = true;
    jb_close(&b);
    jb_printf(&b, "\n");
    return jb_finish(&b);
}

char *stats_restore_json(const struct stats_restore *s)
{
    struct jbuf b = {0};
    const double total_ms = stats_ms(s->t_start, s->t_end);

    jb_open(&b, NULL);
    jb_str(&b, "status", s->status);
    jb_u64(&b, "total-time", (uint64_t)(total_ms + 0.5));
    jb_dbl(&b, "total-time-ms", total_ms);
    jb_open(&b, "ram");
    jb_u64(&b, "transferred", s->bytes);
    jb_u64(&b, "total", s->nr_pfns * s->page_size);
    jb_u64(&b, "duplicate", s->zero);
    jb_u64(&b, "normal", s->normal);
    jb_u64(&b, "normal-bytes", s->normal * s->page_size);
    jb_u64(&b, "xbzrle", s->xbzrle);
    jb_u64(&b, "xbzrle-bytes", s->xbzrle_bytes);
    jb_u64(&b, "skipped", s->nodata);
    jb_u64(&b, "populated", s->populated);
    jb_u64(&b, "page-size", s->page_size);
    jb_dbl(&b, "mbps", ratio((double)s->bytes * BITS_PER_BYTE / BYTES_PER_MBIT,
                             total_ms / 1e3));
    jb_close(&b);
    jb_u64(&b, "records", s->records);
    jb_u64(&b, "digest-chunks-checked", s->digest_chunks);
    map_cache_total_json(&b, &s->mc);
    jb_close(&b);
    jb_printf(&b, "\n");
    return jb_finish(&b);
}
