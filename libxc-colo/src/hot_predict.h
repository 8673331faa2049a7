/*
 * hot_predict.h - hot pages cached during the first pass (issue 16, item 1).
 *
 * Iteration 0 sends every page whole and, without a prediction, caches
 * nothing: the pass after it then sends every hot page whole once more.
 * When the first pass reaches a batch it peeks at the dirty log (the
 * written bits, not cleared: ops->logdirty_peek). A page the guest already
 * wrote since tracking began is predicted hot: it still goes out whole, but
 * from a copy staged in the XBZRLE cache that is then committed as its
 * entry (the cached copy is the bytes sent: DESIGN.md invariant 1). The
 * cache's own admission rule bounds what the guess may take: only free
 * slots during the first pass (nothing is evictable in one generation), a
 * declined page goes into the admission history, and entries that never
 * return age out after two generations like any other, so pages that do
 * not come back cannot wash out the pages that do.
 *
 * A page reached in the first moments of tracking has had no time to be
 * dirtied: the log knows nothing yet. So the batches the first pass reaches
 * within HOT_PREDICT_DEFER_MS of enabling the log are deferred (at most
 * HOT_PREDICT_DEFER_PAGES pages) and sent at the end of the pass, when the
 * log has watched the guest for the whole pass. Every page is still sent
 * once per pass; the order within a pass does not matter to the receiver.
 *
 * The prediction is measured: how many predicted pages a later pass sends
 * again (re-dirtied), and the cache memory the predicted entries took.
 *
 * When the cache can hold the whole guest (--cache-size at least its RAM),
 * no page needs to be guessed at: every page the first pass sends goes the
 * way of a predicted one (hot_predict_every_page), so that every page a
 * later pass sends again has a base, whatever the guest's pattern (a
 * uniformly random writer leaves nothing for a guess to find). It costs a
 * copy per page in the first pass (a cache insert is about a memcpy,
 * `xc-colo bench cache`); no peek and no deferral are needed.
 *
 * Internal API (names start hot_predict_).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef XCC_HOT_PREDICT_H
#define XCC_HOT_PREDICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "private.h"

struct json_object;

/* Batches reached this soon after the log was enabled wait for the end of
 * the pass, up to this many pages. */
#define HOT_PREDICT_DEFER_MS 20u
#define HOT_PREDICT_DEFER_PAGES 16384u

struct hot_predict_stats {
    bool on;                   /* a prediction ran in the first pass */
    uint64_t deferred;         /* pages sent at the end of the first pass */
    uint64_t peeks;            /* logdirty_peek calls */
    uint64_t peek_ns;          /* time spent in them */
    uint64_t predicted;        /* first-pass pages found already dirtied */
    uint64_t cached;           /* of which kept in the XBZRLE cache */
    uint64_t redirtied;        /* predicted pages a later pass sent again */
    uint64_t cached_redirtied; /* of which cached ones */
    uint32_t page_size;
    bool every_page; /* every first-pass page taken (the cache holds all) */
};

struct hot_predict;

/* For a guest of nr_pfns pages; the figures go to *st (the save's). NULL
 * with errno ENOMEM. */
struct hot_predict *hot_predict_new(uint64_t nr_pfns, uint32_t page_size,
                                    struct hot_predict_stats *st);
void hot_predict_free(struct hot_predict *hp);

/*
 * First pass: peeks at the dirty log for the pfns [lo, hi] of the batch
 * about to be sent. A failed peek (logged once as a warning) switches the
 * prediction off for the rest of the pass; the save goes on.
 */
void hot_predict_peek(struct hot_predict *hp, xcc_domain *d, uint64_t lo,
                      uint64_t hi);

/*
 * First pass: takes pfns[0..n) to send at the end of the pass when the log
 * (enabled at t_enable_ns, lib_now_ns clock) has watched for less than
 * HOT_PREDICT_DEFER_MS and there is room. Returns whether it took them.
 */
bool hot_predict_defer(struct hot_predict *hp, const uint64_t *pfns, size_t n,
                       uint64_t t_enable_ns);

/* The deferred pfns (ascending), once, at the end of the first pass: no
 * more are taken afterwards. */
const uint64_t *hot_predict_deferred(struct hot_predict *hp, size_t *n);

/* Every page of the first pass counts as predicted (the cache can hold the
 * whole guest): no peeks, no deferral. Call before the first pass. */
void hot_predict_every_page(struct hot_predict *hp);

/* Whether pfn was dirtied before the first pass reached it (or every
 * page is taken). */
bool hot_predict_is_hot(const struct hot_predict *hp, uint64_t pfn);

/*
 * Sends a predicted page: copies guest into the cache's stage buffer and
 * commits it as pfn's entry. Returns the cached copy to send (valid until
 * the slice is written: entries touched in this generation are never
 * evicted), or guest itself when the copy is a zero page or the cache
 * declined it (sent from the mapping, as without the prediction).
 * --threads: called from several encoding threads at once, for different
 * pfns, each with pc = the cache shard of its pfn (the one thread that
 * touches that shard); the bitmaps and counters it updates are atomic.
 */
const uint8_t *hot_predict_send(struct hot_predict *hp, xcc_page_cache *pc,
                                uint64_t pfn, const uint8_t *guest);

/* A later pass sends pfns[0..n): counts predicted pages that came back. */
void hot_predict_later(struct hot_predict *hp, const uint64_t *pfns,
                       size_t n);

/* Adds "hot-prediction": {...} to a save document when st->on. */
void hot_predict_json(struct json_object *root,
                      const struct hot_predict_stats *st);

#endif /* XCC_HOT_PREDICT_H */
