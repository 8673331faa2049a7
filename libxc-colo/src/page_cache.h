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

#endif /* XCC_PAGE_CACHE_H */
