/*
 * page_cache.h - the page cache's internals for the save loop: a cache cut
 * into shards, one per encoding thread.
 *
 * A sharded cache is nshards independent caches (each with budget / nshards
 * bytes, its own clock hand, free list, admission history, stage buffer and
 * counters) behind one handle. Every pfn belongs to exactly one shard (a
 * hash of the pfn), so threads that each work only on the pfns of their own
 * shard never share a byte of cache state and need no lock. Through the
 * handle, the public functions route each call by its pfn (lookup, insert,
 * update, commit, drop), or apply it to every shard (next_generation,
 * get_stats, free). Only xcc_page_cache_stage() has no pfn to route by: on
 * a sharded handle it fails with EINVAL; stage on the shard itself
 * (page_cache_shard()) and commit through either.
 *
 * Why shards and not locks: the cache is fully associative, so an insert
 * may evict any slot (the clock hand, the free list and the per-generation
 * counts are global). A lock per set does not exist to take; one lock
 * around every call would serialise exactly the work the threads share.
 *
 * Internal API: names start page_cache_.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef XCC_PAGE_CACHE_H
#define XCC_PAGE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xccolo.h"

/* Shards a cache may have: the save loop's lane limit (a lane index fits
 * a byte). */
#define PAGE_CACHE_MAX_SHARDS 256u

/*
 * A cache of budget_bytes cut into nshards shards (1: a plain cache, as
 * xcc_page_cache_new). Each shard needs at least one page: callers ask
 * page_cache_max_shards() first. NULL with errno EINVAL (bad arguments, as
 * for xcc_page_cache_new, or nshards outside 1..PAGE_CACHE_MAX_SHARDS or
 * above the page count) or ENOMEM.
 */
xcc_page_cache *page_cache_new_sharded(size_t budget_bytes, size_t page_size,
                                       unsigned nshards);

/* The most shards budget_bytes allows (one page each), capped at want. */
unsigned page_cache_max_shards(size_t budget_bytes, size_t page_size,
                               unsigned want);

/* Shards of c: 1 for a plain cache. */
unsigned page_cache_nshards(const xcc_page_cache *c);

/* The shard pfn belongs to, in 0..nshards-1 (0 for a plain cache). */
unsigned page_cache_shard_of(const xcc_page_cache *c, uint64_t pfn);

/* Shard k of c as a cache of its own (c itself for a plain cache). Calls
 * on it must name only pfns with page_cache_shard_of(c, pfn) == k. */
xcc_page_cache *page_cache_shard(xcc_page_cache *c, unsigned k);

/*
 * The journal, for a receiver that keeps only the pages the cache may still
 * use as a base (CACHE_BASES, stream.h): once started, each shard records
 * the pfn of every entry that enters it (an insert, update or commit of an
 * absent pfn) and of every entry that leaves it (evicted by the clock, or
 * dropped), in order, repeats included. The pfns the journal names are
 * those whose membership may have changed since it was last cleared;
 * page_cache_contains() tells where each stands now. A shard's journal is
 * written only by calls on that shard's pfns, so the thread that owns a
 * shard owns its journal too.
 */
/* Starts recording on c (every shard of a sharded handle). */
void page_cache_journal_start(xcc_page_cache *c);

/* The pfns shard (or plain cache) c recorded since the last clear: *pfns,
 * *n of them (*pfns may be NULL when *n is 0). 0, or -1 with errno ENOMEM
 * when memory ran out and a pfn went unrecorded: the journal can no longer
 * be trusted, for the rest of the cache's life. */
int page_cache_journal(const xcc_page_cache *c, const uint64_t **pfns,
                       size_t *n);

/* Empties the journal of shard (or plain cache) c. */
void page_cache_journal_clear(xcc_page_cache *c);

/* Whether pfn has an entry now; unlike a lookup, touches nothing (no hit
 * is counted, the entry's age is unchanged). Routes on a sharded handle. */
bool page_cache_contains(xcc_page_cache *c, uint64_t pfn);

#endif /* XCC_PAGE_CACHE_H */
