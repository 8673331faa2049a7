/*
 * stats.h - the figures of a save (per iteration and in total) and of a
 * restore, and their JSON form.
 *
 * Field names follow QEMU's query-migrate where one exists (total-time,
 * downtime, setup-time, ram.*, xbzrle-cache.*), so scripts written for QEMU
 * read ours. The figures are plain counters filled by save.c, restore.c
 * and checkpoint.c; stats.c only formats them, with json-c, and is the one
 * place that writes these documents. Internal API: names start stats_.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef XCC_STATS_H
#define XCC_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compress.h"
#include "hot_predict.h"
#include "private.h"

/* Map-cache counters of one iteration (the difference over it). */
struct stats_map_cache {
    uint64_t map_calls;
    uint64_t unmap_calls;
    uint64_t chunks_mapped;
    uint64_t pages_mapped;
    uint64_t hits;
    uint64_t misses;
    uint64_t evictions;
};

/* One pass over the dirty pages (iteration 0 sends every page). */
struct stats_iteration {
    uint32_t index;
    bool paused;          /* the final pass, guest paused */
    uint64_t dirty_pages; /* pages to send (iteration 0: every pfn) */
    uint64_t pages;       /* pages that went out, in any form */
    uint64_t normal;      /* PAGE_DATA with data */
    uint64_t zero;        /* ZERO_PAGES (or zero pages sent as data) */
    uint64_t xbzrle;      /* XBZRLE_PAGES */
    uint64_t nodata;      /* PAGE_DATA entries without data (holes) */
    uint64_t unchanged;   /* cache hits equal to the cached copy: not sent */
    uint64_t xbzrle_bytes;/* encoded delta bytes */
    uint64_t cache_miss;
    uint64_t cache_hit;
    uint64_t overflow;
    uint64_t pagetables;  /* PV page tables normalised and sent */
    uint64_t pt_deferred; /* page tables left for a later pass */
    uint64_t bytes;       /* stream bytes written during the pass */
    uint64_t ns;          /* duration */
    uint64_t encode_ns;   /* of which classifying and encoding (--threads) */
    struct stats_map_cache mc;
};

struct stats_save {
    /* Configuration, for the reader of the JSON. */
    bool live, use_xbzrle, xen_compat, verify, map_cache;
    uint64_t cache_size; /* XBZRLE cache budget, bytes (0 without) */
    uint32_t page_size;
    uint64_t nr_pfns;

    /* Clock, lib_now_ns(). */
    uint64_t t_start, t_setup_done, t_pause, t_end;

    /* Totals. */
    uint64_t transferred; /* stream bytes, headers included */
    uint64_t normal, zero, xbzrle, nodata, unchanged;
    uint64_t xbzrle_bytes;
    uint64_t cache_miss, cache_hit, overflow;
    uint64_t pagetables, pt_deferred;
    uint64_t dirty_sync_count;
    uint64_t remaining; /* pages left dirty when the save stopped */
    uint64_t digest_ns; /* time spent hashing memory for DIGEST, in all */
    uint64_t digest_final_ns; /* of which in the final pass (downtime) */
    const char *status; /* "completed", "failed", "cancelled", "active" */
    const char *stop_reason; /* why iterating stopped */
    /* Cooperative suspend (Xen) instead of a pause: how many, and how long
     * the guest took to suspend itself (the last one, the longest). */
    bool suspended;
    uint64_t suspends;
    uint64_t suspend_request_ns, suspend_request_max_ns;
    uint64_t t_suspended; /* the last suspend took effect (clock) */

    /* Map-cache totals and its mode. */
    struct xcc_map_cache_stats mc;

    /* Page-cache totals (xbzrle only). */
    struct xcc_page_cache_stats pc;
    /* CACHE_BASES sent: records, pfns dropped and kept (the receiver keeps
     * kept - dropped pages now: the cache's entries). */
    uint64_t bases_records, bases_dropped, bases_kept;

    /* Hot pages cached during the first pass (hot_predict.h). */
    struct hot_predict_stats hot;
    /* Whole pages compressed (compress.h). */
    struct compress_stats zc;
    /* --threads: how many classified and encoded, the wall time that took
     * (the pages of all passes), and each thread's time inside it. */
    uint32_t threads;
    uint64_t encode_ns, encode_pages;
    uint64_t thread_busy_ns[XCC_SAVE_MAX_THREADS];

    struct stats_iteration *iters;
    size_t nr_iters, iters_cap;
};

struct stats_restore {
    uint64_t t_start, t_end;
    uint64_t bytes;   /* stream bytes read */
    uint64_t records;
    uint64_t normal, zero, xbzrle, nodata;
    uint64_t xbzrle_bytes;
    uint64_t populated;
    uint64_t digest_chunks; /* chunks checked against DIGEST */
    uint64_t nr_pfns;
    uint32_t page_size;
    const char *status;
    struct xcc_map_cache_stats mc;
};

/* The Xen translator's figures (xen_translate.c). */
struct stats_translate {
    uint64_t t_start, t_end;
    uint64_t bytes_in, bytes_out;  /* stream read, libxl stream written */
    uint64_t records_in, records_out; /* records_out: Xen's, forwarded */
    uint64_t page_data_in, zero_in, xbzrle_in, compressed_in; /* entries */
    uint64_t pages_out;            /* PAGE_DATA entries with data */
    uint64_t page_records_out;
    uint64_t digests_checked;
    uint64_t digests_unchecked;    /* DIGEST records a sparse copy cannot
                                      check (parsed and validated only) */
    uint64_t checkpoints;          /* checkpoint mode: given to libxl */
    const char *copy_mode;         /* "whole", "sparse" (CACHE_BASES) or
                                      "none" (no GUEST_INFO) */
    uint64_t copy_bytes;           /* the decode copy's memory, at the end */
    uint64_t copy_peak_bytes;      /* and at its largest */
    uint64_t copy_bases;           /* sparse: pages kept as XBZRLE bases */
    uint64_t nr_pfns;
    uint32_t page_size;
    const char *status;
};

/* One checkpoint of a checkpoint run (checkpoint.c). */
struct stats_checkpoint_entry {
    uint64_t pages;           /* pages sent in the checkpoint's pass */
    uint64_t bytes;           /* stream bytes from pause to CHECKPOINT */
    uint64_t dirty;           /* pfns in the pass (own + secondary's) */
    uint64_t secondary_dirty; /* COLO: pfns the secondary sent back */
    uint64_t digest_chunks;   /* digest chunks hashed during the pause */
    uint64_t t_pause, t_sent, t_resume;
    uint64_t t_ack;           /* acknowledgement read; 0: none */
};

/* The figures of a checkpoint run, beyond those of its save. */
struct stats_checkpoint {
    uint32_t interval_ms;
    bool colo, back_channel;
    uint64_t acknowledged;
    uint64_t secondary_dirty;
    const char *stop_reason; /* "count", "stopped" */
    const struct stats_checkpoint_entry *e;
    size_t n;
};

/* Nearest-rank percentile pct of v[0..n) (sorted in place); -1 when n is 0. */
double stats_percentile(double *v, size_t n, double pct);

/* Pause and commit time of a checkpoint in ms (commit: -1 when unknown),
 * checkpoints per second from the first pause to the last resume. */
double stats_checkpoint_pause_ms(const struct stats_checkpoint_entry *e);
double stats_checkpoint_commit_ms(const struct stats_checkpoint_entry *e);
double stats_checkpoint_rate(const struct stats_checkpoint *c);

/* Adds src's page counts (normal .. overflow, not bytes or times) to dst. */
void stats_iteration_add_pages(struct stats_iteration *dst,
                               const struct stats_iteration *src);

/* A new iteration record, zeroed, at the end of s->iters (NULL: ENOMEM). */
struct stats_iteration *stats_save_new_iteration(struct stats_save *s);
void stats_save_free(struct stats_save *s);

/*
 * Formats the figures as one JSON object (a NUL-terminated, malloc'd
 * string the caller frees). Returns NULL with errno ENOMEM.
 */
char *stats_save_json(const struct stats_save *s);
char *stats_restore_json(const struct stats_restore *s);
char *stats_translate_json(const struct stats_translate *s);
/* The save's figures plus a "checkpoint" object (xccolo.h). */
char *stats_checkpoint_json(const struct stats_save *s,
                            const struct stats_checkpoint *c);

/* Milliseconds between two lib_now_ns() stamps (0 when b is unset). */
double stats_ms(uint64_t a, uint64_t b);

#endif /* XCC_STATS_H */
