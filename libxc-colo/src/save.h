/*
 * save.h - the save loop's internals, shared with checkpoint mode.
 *
 * A save is a sequence of passes. Each pass sends a set of pfns (every pfn
 * in iteration 0, the harvested dirty bitmap afterwards) through the same
 * path: map cache -> classifier (hole | zero | xbzrle hit | normal) ->
 * stream writer. Checkpoint mode (Remus/COLO) reuses exactly that path for
 * each epoch: pause, save_harvest(final=true), save_send_pass(), then its
 * own CHECKPOINT records, unpause.
 *
 * Internal API: names start save_.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef XCC_SAVE_H
#define XCC_SAVE_H

#include "domain/domain.h"
#include "stats.h"
#include "stream.h"

/* Xen's MAX_BATCH_SIZE: pages per batch, and per PAGE_DATA record. */
#define SAVE_DEFAULT_BATCH 1024u
#define SAVE_MAX_BATCH 8192u

struct xcc_saver {
    xcc_domain *d;
    int fd;
    xentoollog_logger *log;
    struct xcc_save_params p;

    uint64_t nr_pfns;
    uint32_t page_size;
    unsigned page_shift;

    struct stream_writer *w;
    xcc_map_cache *mc;
    xcc_page_cache *pc; /* NULL without XBZRLE */

    uint64_t *dirty;    /* nr_pfns bits: the pfns of the coming pass */
    size_t dirty_words;

    /* Per-batch work arrays, batch_pages long. */
    size_t batch;
    uint64_t *bpfns;
    uint8_t *btypes;
    uint8_t **bpages;
    uint8_t *bounce;            /* batch copies, for dirty_by_content backends */
    bool by_content;            /* this batch: ops->dirty_by_content() */
    int *berr;
    /* Classified output of one resolved slice. */
    uint64_t *out_pfns;         /* PAGE_DATA entries */
    uint8_t *out_types;
    const uint8_t **out_pages;
    size_t n_out, n_out_data;
    uint64_t *zero_pfns;
    size_t n_zero;
    uint64_t *xb_pfns;
    uint32_t *xb_lens;
    uint8_t *xb_data;           /* batch deltas, concatenated */
    size_t n_xb, xb_used;
    uint8_t *copies;            /* pages whose cache insert was declined */
    size_t n_copies;
    size_t prefaulted;          /* pages of xb_data, then copies, touched */
    const uint8_t *zero_page;   /* page_size zeros (xen-compat zero pages) */

    /* --verify: chunk digests kept up to date incrementally. */
    uint64_t nchunks;
    uint8_t *chunk_dig;         /* 16 bytes per chunk */
    uint64_t *chunk_stale;      /* nchunks bits: must be rehashed */
    uint64_t chunks_hashed;     /* so far, for the hashing rate */
    uint64_t last_harvest_ns;   /* the latest logdirty_clean's duration */

    bool ran;
    bool paused_by_us;
    bool logdirty_on;
    bool use_xbzrle_now; /* deltas allowed in the current pass */

    struct stats_save st;
    struct stats_iteration *cur; /* the pass being sent */
    char *json;
};

/*
 * Writes the stream headers and GUEST_INFO (not in xen-compat mode).
 * Returns 0 or -1 with errno (logged).
 */
int save_write_headers(xcc_saver *s);

/*
 * Harvests the dirty log into s->dirty (bits already set stay set: pages
 * still to send) and re-arms it (final: the guest is paused); marks the
 * digest chunks of the dirty pages stale. Returns the number of pfns set
 * in s->dirty, or -1.
 */
int64_t save_harvest(xcc_saver *s, bool final);

/*
 * Sends the pfns set in s->dirty as one pass, recorded as a new iteration
 * (paused: the final pass). XBZRLE deltas are used when enabled and
 * xbzrle_allowed is set (not in iteration 0). Every send updates or drops
 * the page's cache entry (DESIGN.md invariant 1). Returns 0 or -1/errno.
 */
int save_send_pass(xcc_saver *s, bool paused, bool xbzrle_allowed);

/*
 * Memory digests, as the DIGEST record carries them: one XXH3-128 per
 * XCC_DIGEST_CHUNK bytes of memory in pfn order (holes and unmappable
 * pages count as zero pages, as in xcc_domain_digest), and a "whole"
 * digest, which is XXH3-128 over the concatenated chunk digests, so that a
 * sender only rehashes the chunks the guest wrote since it last hashed them
 * (the final, paused pass then hashes a few chunks, not all memory).
 * Shared with restore.c, which checks DIGEST records the same way.
 */
uint64_t save_digest_nchunks(uint64_t nr_pfns, uint32_t page_size);

/*
 * Recomputes into chunks[16 * c] the digest of every chunk c whose bit is
 * set in stale (NULL: every chunk) and clears the bit, reading d through
 * mc. flags: XCC_DIGEST_* (EXCLUDE_PAGETABLES: PV page tables count as
 * zero pages). Returns 0 or -1 with errno (logged).
 */
int save_digest_chunks(xcc_domain *d, xcc_map_cache *mc, unsigned flags,
                       uint64_t *stale, uint8_t *chunks);

/* The whole-memory digest from nchunks chunk digests. */
void save_digest_whole(const uint8_t *chunks, uint64_t nchunks,
                       uint8_t whole[16]);

/* True when the page_size bytes at p are all zero. */
bool save_page_is_zero(const uint8_t *p, size_t page_size);

#endif /* XCC_SAVE_H */
