/*
 * hot_predict.c - hot pages cached during the first pass (hot_predict.h).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "domain/domain.h"
#include "hot_predict.h"

#define CTX "save"

struct hot_predict {
    uint64_t nr_pfns;
    size_t words;
    uint64_t *peeked;    /* written before the first pass reached them */
    uint64_t *predicted; /* predicted, not yet seen again */
    uint64_t *cached;    /* predicted and cached, not yet seen again */
    bool off;            /* a peek failed */
    bool every;          /* hot_predict_every_page */
    uint64_t *defer;     /* first-pass pfns put off to the pass's end */
    size_t ndefer;
    bool defer_closed;
    struct hot_predict_stats *st; /* the save's figures */
};

static bool bit(const uint64_t *bm, uint64_t p)
{
    return bm[p / 64] >> (p % 64) & 1;
}

/* set_bit for encoding threads: neighbouring pfns share a word. */
static void set_bit_atomic(uint64_t *bm, uint64_t p)
{
    __atomic_fetch_or(&bm[p / 64], 1ull << (p % 64), __ATOMIC_RELAXED);
}

static void count(uint64_t *v)
{
    __atomic_fetch_add(v, 1, __ATOMIC_RELAXED);
}

/* Clears bit p; returns whether it was set. */
static bool take_bit(uint64_t *bm, uint64_t p)
{
    uint64_t m = 1ull << (p % 64);
    bool was = bm[p / 64] & m;

    bm[p / 64] &= ~m;
    return was;
}

struct hot_predict *hot_predict_new(uint64_t nr_pfns, uint32_t page_size,
                                    struct hot_predict_stats *st)
{
    struct hot_predict *hp = calloc(1, sizeof(*hp));

    if (!hp)
        return NULL;
    hp->nr_pfns = nr_pfns;
    hp->words = XCC_DIV_ROUND_UP(nr_pfns, 64);
    hp->peeked = calloc(hp->words, sizeof(uint64_t));
    hp->predicted = calloc(hp->words, sizeof(uint64_t));
    hp->cached = calloc(hp->words, sizeof(uint64_t));
    hp->defer = calloc(HOT_PREDICT_DEFER_PAGES, sizeof(uint64_t));
    if (!hp->peeked || !hp->predicted || !hp->cached || !hp->defer) {
        hot_predict_free(hp);
        errno = ENOMEM;
        return NULL;
    }
    hp->st = st;
    hp->st->page_size = page_size;
    return hp;
}

void hot_predict_free(struct hot_predict *hp)
{
    if (!hp)
        return;
    free(hp->peeked);
    free(hp->predicted);
    free(hp->cached);
    free(hp->defer);
    free(hp);
}

void hot_predict_peek(struct hot_predict *hp, xcc_domain *d, uint64_t lo,
                      uint64_t hi)
{
    uint64_t t0;
    int64_t n;

    if (hp->every) {
        hp->st->on = true; /* nothing to peek at: every page is taken */
        return;
    }
    if (hp->off || !d->ops->logdirty_peek || lo > hi || hi >= hp->nr_pfns)
        return;
    hp->st->on = true;
    t0 = lib_now_ns();
    n = d->ops->logdirty_peek(d, hp->peeked, lo, hi - lo + 1);
    hp->st->peek_ns += lib_now_ns() - t0;
    hp->st->peeks++;
    if (n < 0) {
        XCC_WARN(d->log, CTX, "peeking at the dirty log of '%s' (pfns %#"
                 PRIx64 "..%#" PRIx64 ") failed: no more hot-page "
                 "prediction in this pass", d->name, lo, hi);
        hp->off = true;
    }
}

bool hot_predict_defer(struct hot_predict *hp, const uint64_t *pfns, size_t n,
                       uint64_t t_enable_ns)
{
    if (hp->every || hp->defer_closed || hp->off ||
        n > HOT_PREDICT_DEFER_PAGES - hp->ndefer ||
        lib_now_ns() - t_enable_ns >= HOT_PREDICT_DEFER_MS * 1000000ull)
        return false;
    memcpy(hp->defer + hp->ndefer, pfns, n * sizeof(uint64_t));
    hp->ndefer += n;
    hp->st->deferred += n;
    return true;
}

const uint64_t *hot_predict_deferred(struct hot_predict *hp, size_t *n)
{
    hp->defer_closed = true;
    *n = hp->ndefer;
    hp->ndefer = 0;
    return hp->defer;
}

void hot_predict_every_page(struct hot_predict *hp)
{
    hp->every = true;
    hp->st->every_page = true;
}

bool hot_predict_is_hot(const struct hot_predict *hp, uint64_t pfn)
{
    return hp && pfn < hp->nr_pfns &&
           (hp->every || (!hp->off && bit(hp->peeked, pfn)));
}

const uint8_t *hot_predict_send(struct hot_predict *hp, xcc_page_cache *pc,
                                uint64_t pfn, const uint8_t *guest)
{
    const size_t psz = hp->st->page_size;
    uint8_t *buf = xcc_page_cache_stage(pc);
    const uint8_t *kept;

    count(&hp->st->predicted);
    set_bit_atomic(hp->predicted, pfn);
    memcpy(buf, guest, psz);
    /* A zero page goes as ZERO_PAGES: nothing worth a cache slot. */
    if (lib_page_is_zero(buf, psz))
        return guest;
    kept = xcc_page_cache_commit(pc, pfn);
    if (!kept)
        return guest;
    count(&hp->st->cached);
    set_bit_atomic(hp->cached, pfn);
    return kept;
}

void hot_predict_later(struct hot_predict *hp, const uint64_t *pfns, size_t n)
{
    if (!hp || !hp->st->predicted)
        return;
    for (size_t i = 0; i < n; i++) {
        uint64_t p = pfns[i];
        if (p < hp->nr_pfns && take_bit(hp->predicted, p)) {
            hp->st->redirtied++;
            if (take_bit(hp->cached, p))
                hp->st->cached_redirtied++;
        }
    }
}

static void put_u64(struct json_object *o, const char *k, uint64_t v)
{
    json_object_object_add(o, k, json_object_new_uint64(v));
}

static void put_frac(struct json_object *o, const char *k, uint64_t a,
                     uint64_t b)
{
    char buf[32];
    double v = b ? (double)a / (double)b : 0;

    snprintf(buf, sizeof(buf), "%.3f", v);
    json_object_object_add(o, k, json_object_new_double_s(v, buf));
}

void hot_predict_json(struct json_object *root,
                      const struct hot_predict_stats *st)
{
    struct json_object *o;

    if (!st->on || !(o = json_object_new_object()))
        return;
    json_object_object_add(root, "hot-prediction", o);
    json_object_object_add(o, "every-page",
                           json_object_new_boolean(st->every_page));
    put_u64(o, "peeks", st->peeks);
    put_u64(o, "deferred", st->deferred);
    put_frac(o, "peek-ms", st->peek_ns, 1000000);
    put_u64(o, "predicted", st->predicted);
    put_u64(o, "cached", st->cached);
    put_u64(o, "cache-bytes", st->cached * st->page_size);
    put_u64(o, "redirtied", st->redirtied);
    put_frac(o, "redirtied-fraction", st->redirtied, st->predicted);
    put_u64(o, "cached-redirtied", st->cached_redirtied);
    put_frac(o, "cached-redirtied-fraction", st->cached_redirtied,
             st->cached);
}
