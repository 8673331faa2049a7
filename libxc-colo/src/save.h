/*
 * save.h - the save loop's internals, shared with checkpoint mode.
 *
 * A save is a sequence of passes. Each pass sends a set of pfns (every pfn
 * in iteration 0, the harvested dirty bitmap afterwards) through the same
 * path: map cache -> classifier (hole | zero | xbzrle hit | normal) ->
 * stream writer. Checkpoint mode (Remus/COLO) reuses exactly that path:
 * save_start, save_precopy (the live phase, with the save's own stop
 * conditions), then for each epoch save_pause, save_harvest(final=true),
 * save_send_pass, save_send_digest, its own CHECKPOINT record,
 * save_unpause; save_end at the end. checkpoint.c calls only these
 * functions: the struct below is save.c's alone.
 *
 * Internal API: names start save_.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef XCC_SAVE_H
#define XCC_SAVE_H

#include <signal.h>

#include "domain/domain.h"
#include "stats.h"
#include "save_workers.h"
#include "stream.h"

/* Xen's MAX_BATCH_SIZE: pages per batch, and per PAGE_DATA record. */
#define SAVE_DEFAULT_BATCH 1024u
#define SAVE_MAX_BATCH 8192u
/*
 * Lanes (cache shards) per encoding thread. More lanes than threads cut a
 * slice's work into pieces the threads claim as they go, so a thread the
 * scheduler preempts in the middle of its lane holds back less; the cost
 * is up to two more records per lane and slice (zero and XBZRLE pages;
 * the pages with data of all lanes go as one record). 4 showed no gain on
 * a 2-CPU machine at load 10 (notes/threads.md), so one lane per thread.
 */
#define SAVE_LANES_PER_THREAD 1u
#define SAVE_MAX_LANES 256u

/*
 * One classifier's share of a resolved slice: the cache shard it alone
 * touches, and where its records go (ranges of the saver's batch arrays
 * that no other lane writes). With --threads 1 there is one lane, run by
 * the saver's thread over the whole slice; with N threads there are
 * N * SAVE_LANES_PER_THREAD lanes, lane k over the pages of shard k, each
 * run by whichever thread claims it. The saver's thread writes each
 * lane's zero and XBZRLE records, then the pages with data of all lanes
 * as one record (flush_slice).
 */
struct save_lane {
    _Alignas(64) xcc_page_cache *pc; /* shard k of s->pc; NULL: none */
    const uint32_t *order; /* its pages: slice positions order[0..npages) */
    size_t npages;
    struct stats_iteration n; /* page counts, added to the pass's */
    uint64_t *zero_pfns;
    uint8_t *zero_types;
    size_t n_zero;
    uint64_t *xb_pfns;
    uint8_t *xb_types;
    uint32_t *xb_lens;
    uint8_t *xb_data;           /* deltas, concatenated */
    size_t n_xb, xb_used;
    uint64_t *out_pfns;         /* PAGE_DATA entries */
    uint8_t *out_types;
    const uint8_t **out_pages;
    size_t n_out;
    uint8_t *copies;            /* pages whose cache insert was declined */
    size_t n_copies;
};

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
    struct hot_predict *hp; /* live XBZRLE: hot pages of the first pass */
    struct compress_enc *zc; /* --compress: whole pages through zstd */
    bool predict_now;       /* this pass is the first of a live save */

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
    /* Classified output of one resolved slice: batch-long arrays the
     * lanes share out (the lanes' own pointers point into them). */
    uint64_t *out_pfns;         /* PAGE_DATA entries */
    uint8_t *out_types;
    const uint8_t **out_pages;
    uint64_t *zero_pfns;
    uint8_t *zero_types;
    uint64_t *xb_pfns;
    uint8_t *xb_types;
    uint32_t *xb_lens;
    uint8_t *xb_data;           /* batch deltas */
    uint8_t *copies;            /* pages whose cache insert was declined */
    /* --threads: nlanes lanes (1 without a pool), the slice's positions
     * grouped by lane, and each position's lane. */
    struct save_workers *pool;  /* NULL with one thread */
    struct save_lane *lanes;
    unsigned nlanes;
    unsigned nthreads;          /* the pool's workers, caller included */
    uint32_t *order;
    uint8_t *lane_of;
    size_t slice_first;         /* the slice being classified: bpfns[first..] */
    uint64_t lanes_alone_ns;    /* small slices' lanes run on the saver's
                                   thread, outside the pool */
    size_t prefaulted;          /* pages of xb_data, then copies, touched */
    const uint8_t *zero_page;   /* page_size zeros (xen-compat zero pages) */

    /* CACHE_BASES (with XBZRLE): the pfns the receiver was told to keep
     * (nr_pfns bits), and the lists of one announcement. */
    uint64_t *announced;
    uint64_t *bases_drop, *bases_keep;
    size_t bases_cap;

    /* --verify: chunk digests kept up to date incrementally. */
    uint64_t nchunks;
    uint8_t *chunk_dig;         /* 16 bytes per chunk */
    uint64_t *chunk_stale;      /* nchunks bits: must be rehashed */
    uint64_t chunks_hashed;     /* so far, for the hashing rate */
    uint64_t last_harvest_ns;   /* the latest logdirty_clean's duration */

    bool xl_wrap;      /* --xen-compat of a Xen domain: xl_format.h */
    char *xl_config;   /* its libxl JSON config (a copy) */
    bool ran;
    bool paused_by_us;
    bool suspended_by_us; /* paused_by_us, through ops->suspend */
    bool logdirty_on;
    bool use_xbzrle_now; /* deltas allowed in the current pass */
    volatile sig_atomic_t cancelled; /* xcc_saver_cancel, from a handler */

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
 * Begins the one run of a saver (`what`: "saver", "checkpointer", for the
 * error): takes the domain's saver lock, held until save_end (EBUSY naming
 * the holder's pid when another saver has it), and writes the headers.
 * Returns 0 or -1 with errno (logged).
 */
int save_start(xcc_saver *s, const char *what);

/*
 * Ends the run whose result is rc: log-dirty off, the totals stamped
 * (extra_bytes: stream bytes written around the saver's writer), the lock
 * released; on failure the status is "failed" or "cancelled" and the guest
 * is unpaused if the saver paused it. Returns rc; errno is kept on failure.
 */
int save_end(xcc_saver *s, int rc, uint64_t extra_bytes);

/*
 * The live phase: log-dirty on, iteration 0 (every page), then passes of
 * what the guest dirtied until a stop condition: at most target_dirty
 * pages dirty ("converged"), a final pass estimated to fit max_downtime_ms
 * ("downtime"), max_iters passes ("max-iters"; with abort_if_busy and more
 * than min_remaining pages still dirty, -1 with errno XCC_EBUSY), or *stop
 * set ("stopped"; stop may be NULL). The chunk digests are refreshed after
 * each pass, while the guest runs. On return the guest still runs and the
 * pending set holds the pages still to send. Returns 0 or -1 with errno.
 */
int save_precopy(xcc_saver *s, const volatile int *stop);

/* Pauses / unpauses the guest, remembering whether the saver paused it
 * (the first pause is the start of the downtime). A backend with a suspend
 * op suspends and resumes it instead. 0 or -1/errno, logged. */
int save_pause(xcc_saver *s);
int save_unpause(xcc_saver *s);

/* The writer the passes go to, and replacing it (returns the old one):
 * checkpoint mode builds small epochs in a memory writer. */
struct stream_writer *save_writer(const xcc_saver *s);
struct stream_writer *save_set_writer(xcc_saver *s, struct stream_writer *w);

/*
 * Adds pfns[0..n) (each below nr_pfns) to the pending set and drops them
 * from the XBZRLE cache: the receiver's copies changed (COLO's secondary
 * wrote them), so their next send must be whole (DESIGN.md invariant 1).
 */
void save_add_pending(xcc_saver *s, const uint64_t *pfns, size_t n);

/*
 * Rehashes the digest chunks the guest wrote since they were last hashed
 * and writes DIGEST (callers check p.verify). Returns 0 or -1/errno.
 */
int save_send_digest(xcc_saver *s);

/* Digest chunks hashed so far (for the figures of a pause). */
uint64_t save_chunks_hashed(const xcc_saver *s);

/* True once xcc_saver_cancel was called (for waits that poll). */
bool save_cancelled(const xcc_saver *s);

/*
 * The figures as JSON (stats.c), the map and page cache totals brought up
 * to date; with ck, the checkpoint document. malloc'd; NULL with ENOMEM.
 */
char *save_stats_json(xcc_saver *s, const struct stats_checkpoint *ck);

/* The figures of the latest pass (NULL before the first). */
const struct stats_iteration *save_last_pass(const xcc_saver *s);

/*
 * 0 while the run may go on; -1 with errno ECANCELED after
 * xcc_saver_cancel, or ENOENT when the guest was destroyed under the save
 * (domain_lock_check). Logged.
 */
int save_check(xcc_saver *s);

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
 * xbzrle_allowed is set (not in iteration 0); such a pass starts a new
 * cache generation. Every send updates or drops the page's cache entry
 * (DESIGN.md invariant 1). Returns 0 or -1/errno (ECANCELED after
 * xcc_saver_cancel).
 */
int save_send_pass(xcc_saver *s, bool paused, bool xbzrle_allowed);

/*
 * The backend's domain-state records of one phase (ops->state_records;
 * none when the backend has no such op), written to the current writer.
 * Returns the number of records, or -1 with errno (logged).
 */
int save_send_state(xcc_saver *s, enum domain_state_phase phase);

#endif /* XCC_SAVE_H */
