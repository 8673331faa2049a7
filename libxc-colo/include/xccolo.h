/*
 * xccolo.h - the public interface of libxccolo.
 *
 * libxccolo saves, restores, live-migrates and continuously checkpoints the
 * memory of a virtual machine over one file descriptor. Guests are reached
 * through a domain backend: "xen:ID" (or a bare number) for a Xen domain,
 * "sim:NAME" for a simulated guest.
 *
 * Conventions, as in Xen's small libraries:
 *  - handles are opaque;
 *  - functions return -1 (or NULL) and set errno on failure; errno may hold
 *    one of the XCC_E* codes below, which xcc_strerror() describes;
 *  - the library never prints and never exits: it logs through the
 *    xentoollog_logger the caller passes (NULL: a stderr logger at WARN).
 *
 * ABI within 1.x:
 *  - every params struct the caller fills starts with `size_t size`, which
 *    its init function (xcc_save_params_init() etc.) sets to the size the
 *    caller was compiled with; fill a params struct only after its init.
 *    The library refuses a size it does not know with EINVAL (logged), and
 *    a later 1.x accepts every earlier size, with defaults for the fields
 *    added since;
 *  - structs the library fills (stats, summaries, infos) never grow within
 *    1.x: a bigger one comes with a new function;
 *  - libxccolo.map lists every exported function per version node.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef XCCOLO_H
#define XCCOLO_H

#include <stddef.h>
#include <stdint.h>
#include <xentoollog.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Version. The soname's major number is XCC_VERSION_MAJOR.                  */
/* ------------------------------------------------------------------------ */
#define XCC_VERSION_MAJOR 1
#define XCC_VERSION_MINOR 0
#define XCC_VERSION_PATCH 0
#define XCC_VERSION_STRING "1.0.0"
#define XCC_VERSION_NUMBER                                                     \
    (XCC_VERSION_MAJOR * 10000 + XCC_VERSION_MINOR * 100 + XCC_VERSION_PATCH)

/* Returns XCC_VERSION_STRING of the library actually loaded. */
const char *xcc_version(void);

/* ------------------------------------------------------------------------ */
/* Errors. Values above any errno so they can travel in errno.               */
/* ------------------------------------------------------------------------ */
enum {
    XCC_EBADSTREAM = 2001, /* the stream is malformed; the log says where */
    XCC_ETRUNCATED = 2002, /* the stream ended before END */
    XCC_EDIGEST = 2003,    /* a DIGEST record did not match the target */
    XCC_ENOXEN = 2004,     /* no Xen hypervisor (/dev/xen/privcmd missing) */
    XCC_EFAILOVER = 2005,  /* checkpoint stream broke; last epoch kept */
    XCC_EBUSY = 2006,      /* guest too busy to converge (--abort-if-busy) */
    XCC_EBADDOMAIN = 2007, /* unknown or malformed domain name */
    XCC_ENOSUSPEND = 2008, /* the guest did not suspend itself in time; the
                              request was withdrawn and it runs on */
};

/* Describes an errno value or an XCC_E* code. Never returns NULL. */
const char *xcc_strerror(int err);

/* ------------------------------------------------------------------------ */
/* XBZRLE codec (QEMU's wire format, byte for byte).                         */
/* ------------------------------------------------------------------------ */
/* (section owned by xbzrle.c) */

/*
 * The format: alternating runs, "zero run length, non-zero run length, the
 * non-zero run's new bytes", lengths as ULEB128 of at most 14 bits, the first
 * zero run possibly 0, no trailing zero run. Equal pages encode to nothing.
 * Encoding and decoding are pure functions (no allocation, thread-safe).
 */

/*
 * Encodes new_page as a delta against old_page. len is a multiple of 8, at
 * most 65536. Returns the encoded length (> 0), 0 when the pages are equal,
 * or -1 when the encoding would not fit in dst_len (nothing is written past
 * dst + dst_len). errno on -1: ENOSPC it does not fit; ERANGE the delta has
 * more than 16383 changed bytes in a row (pages over 16 KiB only), which the
 * format cannot express (send the page whole, as for ENOSPC); EINVAL a bad
 * len or a NULL pointer. The size is computed before anything is written,
 * so a page that does not fit costs little more than comparing it. dst
 * may hold garbage past the returned length (up to dst_len) afterwards.
 */
int xcc_xbzrle_encode(const uint8_t *old_page, const uint8_t *new_page,
                      size_t len, uint8_t *dst, size_t dst_len);

/*
 * Applies the delta src[0..src_len) onto page, which holds the old bytes.
 * Returns the number of bytes of page covered (>= 0) or -1 on malformed
 * input. Never writes outside page[0..len). Malformed (errno EINVAL): a
 * length over 14 bits or overlong (second byte 0), a zero-length non-zero
 * run, a zero run of 0 other than the first, a run past the page or past
 * src_len, a zero run with no non-zero run after it; also a bad len. On -1
 * the runs before the fault have been applied: check first, or decode into
 * a copy, when the page must stay intact.
 */
int xcc_xbzrle_decode(const uint8_t *src, size_t src_len, uint8_t *page,
                      size_t len);

/*
 * Forces the codec path (encoder and decoder) for the whole process: "auto"
 * (the best this CPU has: avx512, then avx2, then scalar), "scalar", "avx2"
 * or "avx512" (AVX-512 BW and VL). Every path gives the same bytes. Without
 * a call, the environment variable XCC_XBZRLE_IMPL (same names; unknown or
 * unsupported values mean "auto") is read at the first encode or decode. Returns 0, or -1 with errno ENOTSUP (the CPU or
 * build lacks that path) or EINVAL (unknown name).
 */
int xcc_xbzrle_set_impl(const char *name);

/* Name of the encoder path in force ("scalar", "avx2", "avx512"). */
const char *xcc_xbzrle_impl(void);

/* 1 when xcc_xbzrle_set_impl(name) would succeed, else 0. */
int xcc_xbzrle_impl_supported(const char *name);

/* ------------------------------------------------------------------------ */
/* XBZRLE page cache (pfn -> copy of the page as last sent).                 */
/* ------------------------------------------------------------------------ */
/* (section owned by page_cache.c) */
typedef struct xcc_page_cache xcc_page_cache;

/*
 * The cache is fully associative (a hash table pfn -> slot) and holds
 * budget_bytes / page_size pages. Replacement is age based, like QEMU's: an
 * entry used (looked up with a hit, or stored) in the current or the previous
 * generation is never evicted; when no other entry can go, an insert is
 * declined. A full cache also admits a pfn only if it was recently seen and
 * not cached (declined, evicted or dropped), so pages sent once do not push
 * out pages that are dirtied again and again. The protected age adapts
 * between 2 and 8 generations: it grows while evicted pages come back before
 * the pages let in get a hit (random dirtying, where churn only loses), and
 * falls back to 2 while evictions pay.
 *
 * Memory: the page data is one allocation of (capacity + 1) pages (the extra
 * page is the stage buffer, see xcc_page_cache_stage()). Bookkeeping is at
 * most 64 bytes per slot (24 slot record, 4 to 8 hash bucket, 32 history of
 * 8 recently seen pfns as 32-bit fingerprints) plus a fixed header; the stats'
 * overhead_bytes gives the exact figure, stage page included.
 *
 * Cost: lookup, insert, commit and drop are O(1) expected (hash chains with
 * load <= 1, an 8-way history set). Finding a victim moves a clock hand:
 * within one generation the hand passes each slot at most once, and it only
 * skips entries touched in the last 8 generations at most, so its total
 * travel is at most 8 steps per touch plus one per generation: O(1)
 * amortised. When no entry is evictable, per-generation counters say so in
 * O(1) without moving the hand.
 *
 * Not thread-safe: one cache belongs to one save loop.
 */

/*
 * Creates a cache of budget_bytes / page_size pages. page_size must be a
 * non-zero multiple of 8, at most 65536, and budget_bytes at least one page.
 * Returns NULL with errno EINVAL for bad arguments (or a budget of 2^31 pages
 * or more), ENOMEM when memory runs out.
 */
xcc_page_cache *xcc_page_cache_new(size_t budget_bytes, size_t page_size);

/* Frees the cache and every page in it. NULL is a no-op. */
void xcc_page_cache_free(xcc_page_cache *c);

/*
 * Returns the cached copy of pfn, or NULL on a miss. A hit marks the entry as
 * used in this generation, so it cannot be evicted before the generation
 * after the next. The pointer is valid until pfn is next inserted,
 * committed, dropped or evicted, or the cache is freed.
 */
const uint8_t *xcc_page_cache_lookup(xcc_page_cache *c, uint64_t pfn);

/*
 * Stores a copy of page (page_size bytes) as pfn's entry. An existing entry
 * for pfn is replaced in place and always kept. Returns 0 when stored, 1 when
 * the policy declined (then pfn has no entry at all: an old copy is dropped,
 * so the cache never holds bytes the receiver no longer has), -1 with errno
 * EINVAL when c or page is NULL.
 */
int xcc_page_cache_insert(xcc_page_cache *c, uint64_t pfn, const uint8_t *page);

/*
 * As xcc_page_cache_insert(), but returns the cached copy (valid as for
 * xcc_page_cache_lookup(), and never evicted before the generation after the
 * next), or NULL when declined or on bad arguments (errno EINVAL then; on a
 * decline errno is left alone).
 */
const uint8_t *xcc_page_cache_update(xcc_page_cache *c, uint64_t pfn,
                                     const uint8_t *page);

/*
 * Zero-copy insert, for the save loop that copies a guest page only once:
 *   1. buf = xcc_page_cache_stage(c): a writable page_size buffer owned by
 *      the cache, distinct from every cached entry;
 *   2. copy the guest page into buf, once;
 *   3. optionally encode buf against xcc_page_cache_lookup(c, pfn);
 *   4. xcc_page_cache_commit(c, pfn): buf becomes pfn's entry without a
 *      copy, under exactly the policy of xcc_page_cache_insert().
 * commit returns buf (now the cached copy, valid as for update) when stored.
 * It returns NULL when declined: pfn then has no entry, and buf keeps the
 * bytes until the caller writes into the stage buffer again. After a stored
 * commit, the next stage() returns a different buffer (the old copy or the
 * evicted page's), so pointers from an earlier lookup of pfn are stale.
 * Insert, update, lookup and drop may be called between stage and commit;
 * another commit may not. stage never fails for a valid cache (NULL, errno
 * EINVAL, for a NULL one); commit also returns NULL with errno EINVAL for a
 * NULL cache.
 */
uint8_t *xcc_page_cache_stage(xcc_page_cache *c);
const uint8_t *xcc_page_cache_commit(xcc_page_cache *c, uint64_t pfn);

/*
 * Forgets pfn's entry, if any (for a page sent in a form the cache does not
 * mirror). The pfn is remembered as recently seen. NULL cache is a no-op.
 */
void xcc_page_cache_drop(xcc_page_cache *c, uint64_t pfn);

/* Starts a new generation; call it once per dirty-log harvest. */
void xcc_page_cache_next_generation(xcc_page_cache *c);

/* Counters since xcc_page_cache_new(), and the present sizes. */
struct xcc_page_cache_stats {
    uint64_t hits;           /* lookups that found the pfn */
    uint64_t misses;         /* lookups that did not */
    uint64_t inserts;        /* pages stored (insert, update, commit) */
    uint64_t declined;       /* inserts the policy refused */
    uint64_t evictions;      /* entries pushed out to make room */
    uint64_t entries;        /* pages cached now */
    uint64_t capacity_pages; /* budget_bytes / page_size */
    uint64_t budget_bytes;   /* as passed to xcc_page_cache_new() */
    uint64_t overhead_bytes; /* memory beyond capacity_pages pages */
};

/* Fills *st. Both pointers must be non-NULL. */
void xcc_page_cache_get_stats(const xcc_page_cache *c,
                              struct xcc_page_cache_stats *st);

/* ------------------------------------------------------------------------ */
/* Domains.                                                                  */
/* ------------------------------------------------------------------------ */
/* (section owned by domain/domain.c) */
typedef struct xcc_domain xcc_domain;

/*
 * Opens a domain by name: "sim:NAME" for a simulated guest, "xen:ID" or a
 * bare number for a Xen domain. flags: 0 for now. Returns NULL with errno
 * (XCC_EBADDOMAIN for a malformed name, XCC_ENOXEN without a hypervisor,
 * ENOENT for a domain that does not exist); the reason is logged.
 */
xcc_domain *xcc_domain_open(const char *name, xentoollog_logger *log,
                            unsigned flags);

/* Releases the handle; the guest itself is left as it is. NULL is a no-op. */
void xcc_domain_close(xcc_domain *d);

/* Number of pfns (0 .. nr_pfns-1) and page size in bytes. Returns 0 or -1. */
int xcc_domain_get_info(xcc_domain *d, uint64_t *nr_pfns,
                        uint32_t *page_size);

/* Stops / continues the guest; returns once the state has changed. A Xen
 * guest that a save left suspended (shut down for suspend) is resumed in
 * place by xcc_domain_unpause (xc_domain_resume, fast). */
int xcc_domain_pause(xcc_domain *d);
int xcc_domain_unpause(xcc_domain *d);

/* Flags for xcc_domain_digest. */
#define XCC_DIGEST_EXCLUDE_PAGETABLES 1u /* PV L1..L4 pages hash as zeros */
/* The pfns given to xcc_domain_digest_exclude() hash as zeros. */
#define XCC_DIGEST_EXCLUDE_LISTED 2u

/*
 * Digest of the guest's memory, as DIGEST records carry it: memory in pfn
 * order is cut into chunks of XCC_DIGEST_CHUNK bytes (the last may be
 * short), each chunk digest is XXH3-128 of the chunk's bytes, and the
 * whole digest is XXH3-128 of the chunk digests concatenated. Pages that
 * cannot be mapped (holes) and excluded pages count as zero-filled. Every
 * digest is 16 bytes, big-endian (the canonical XXH128 form, printed as 32
 * hex digits). digest receives the whole digest; when chunk_digests is not
 * NULL it receives 16 bytes per chunk, for at most max_chunks chunks.
 * Returns the number of chunks, or -1 with errno (EINVAL: unknown flags).
 */
#define XCC_DIGEST_CHUNK (2u << 20)
int64_t xcc_domain_digest(xcc_domain *d, unsigned flags, uint8_t digest[16],
                          uint8_t *chunk_digests, size_t max_chunks);

/*
 * The pfns that digests with XCC_DIGEST_EXCLUDE_LISTED hash as zero pages,
 * in every digest of d from now on (xcc_domain_digest, and the checkpoint
 * digest log of a checkpointer on d whose digest_flags hold the flag);
 * replaces an earlier list, n 0 clears it. For pages that legitimately
 * differ between a guest and its restored copy: a PV guest's p2m frames
 * and start_info page, which libxenguest rewrites with the new domain's
 * frames. Never applies to DIGEST records, whose flags a reader checks.
 * Returns 0, or -1 with errno (EINVAL: a pfn beyond the guest, ENOMEM).
 * Since 1.3.
 */
int xcc_domain_digest_exclude(xcc_domain *d, const uint64_t *pfns, size_t n);

/* ------------------------------------------------------------------------ */
/* Simulated guests (sim:NAME).                                              */
/* ------------------------------------------------------------------------ */
/* (section owned by domain/sim.c) */

/*
 * A simulated guest is a detached process whose RAM is the tmpfs file
 * /dev/shm/xc-colo/NAME/ram; meta.json beside it holds pid, size, holes,
 * workload and dirty-tracking mode. Names are [A-Za-z0-9_.-]+, at most
 * XCC_SIM_NAME_MAX characters; any other name fails with EINVAL.
 *
 * Workloads (SPEC), deterministic given the seed, combined with '+' and run
 * interleaved in the guest's single thread, one pass each per ~1 ms tick:
 *   hotpages   4 bytes incremented in each of pfns 0..4095 per pass
 *   sparse64   one byte changed in each of pfns 4096..4159 per pass
 *   random:PAGES_PER_S[:FRACTION]  random pages at that rate, FRACTION of
 *              each page's bytes changed (default 0.05)
 *   sweep[:PAGES_PER_S]  every page in turn, one word each (benchmarks)
 *   count:PAGES  the same PAGES pages, spread evenly over RAM, 8 bytes of
 *              each rewritten per pass: any interval in which the guest ran
 *              holds exactly PAGES dirty pages (benchmarks of checkpoints)
 *   ledger     self-checking records in pfns 4352..5375 (needs 21 MiB):
 *              xcc_sim_verify proves a (restored) RAM image consistent
 *   idle       nothing
 * A fresh start fills RAM with pseudo-random content, leaving some pages
 * (about 1 in 16) and the holes zero.
 */
#define XCC_SIM_NAME_MAX 64

/*
 * Creates guest `name` with mem_bytes of RAM (a page multiple), starts its
 * process and returns once it runs: RAM filled, dirty tracking armed.
 * seed: workload randomness. holes: NULL or pfns/ranges like "100-199,4096"
 * that are XTAB holes (never written, stay zero). tracking: NULL or "auto"
 * (PAGEMAP_SCAN, falling back to the bitmap with a warning), "pagemap" or
 * "bitmap". Returns 0, or -1 with errno (EEXIST name in use, EINVAL bad
 * argument, ENOTSUP pagemap tracking unavailable, or the guest's error),
 * logged; nothing is left behind on failure.
 */
int xcc_sim_start(const char *name, uint64_t mem_bytes, const char *workload,
                  uint64_t seed, const char *holes, const char *tracking,
                  xentoollog_logger *log);

/*
 * Creates guest `name` with zeroed RAM and no process: the target of a
 * restore. Returns 0 or -1 with errno (EEXIST, EINVAL), logged.
 */
int xcc_sim_create(const char *name, uint64_t mem_bytes,
                   xentoollog_logger *log);

/*
 * Writes a memory image into guest `name`, which must have no process
 * (after xcc_sim_create, before xcc_sim_resume; EBUSY otherwise), for
 * benchmarks: "linux" (an idle guest's memory: 40% zero pages, code, text
 * and kernel-data-like pages, 10% noise; compressible), "random" (noise),
 * "zero". Holes stay zero. seed: the image's randomness. Returns 0 or -1
 * with errno (EINVAL unknown pattern, ENOENT), logged.
 */
int xcc_sim_fill(const char *name, const char *pattern, uint64_t seed,
                 xentoollog_logger *log);

/*
 * Starts a process on the existing RAM of `name` (for example a restored
 * one), without filling it. workload NULL reuses the one in meta.json. A
 * ledger found in RAM is continued; a broken one fails with EBADMSG.
 * Returns 0, or -1 with errno (ENOENT no such guest, EBUSY already running,
 * EINVAL, ...), logged.
 */
int xcc_sim_resume(const char *name, const char *workload, uint64_t seed,
                   xentoollog_logger *log);

/* Sets the tracking mode ("auto", "pagemap", "bitmap") the next
 * xcc_sim_resume uses. Returns 0 or -1 with errno (EBUSY if running). */
int xcc_sim_set_tracking(const char *name, const char *tracking,
                         xentoollog_logger *log);

/*
 * Kills the guest's process (if any, and if it is still the guest's) and
 * removes its directory. Works on dead, processless and half-made guests.
 * Returns 0 or -1 with errno (ENOENT no such guest).
 */
int xcc_sim_stop(const char *name, xentoollog_logger *log);

/* Pauses (SIGSTOP) / continues (SIGCONT) the guest's process and waits until
 * the state has changed. -1 with errno ESRCH when it has no live process. */
int xcc_sim_pause(const char *name, xentoollog_logger *log);
int xcc_sim_unpause(const char *name, xentoollog_logger *log);

/* Marks the guest's RAM incomplete (a restore in progress) or complete. */
int xcc_sim_set_incomplete(const char *name, int incomplete,
                           xentoollog_logger *log);

/*
 * Checks the ledger in the guest's RAM (pausing a running guest meanwhile).
 * report receives "OK ..." or the broken records and their pages. Returns
 * 0 when consistent, 1 when broken or absent, -1 with errno on error.
 */
int xcc_sim_verify(const char *name, xentoollog_logger *log, char *report,
                   size_t report_len);

enum xcc_sim_state {
    XCC_SIM_NONE = 0,       /* no process (a restore target) */
    XCC_SIM_RUNNING = 1,
    XCC_SIM_PAUSED = 2,
    XCC_SIM_DEAD = 3,       /* meta names a process that is gone */
    XCC_SIM_INCOMPLETE = 4, /* a restore into it has not finished */
    XCC_SIM_INVALID = 5,    /* meta.json unreadable (half-made) */
};

/* "none", "running", "paused", "dead", "incomplete", "invalid". */
const char *xcc_sim_state_name(int state);

struct xcc_sim_info {
    char name[XCC_SIM_NAME_MAX + 1];
    int state;            /* enum xcc_sim_state */
    int64_t pid;          /* 0: none */
    uint64_t mem_bytes;
    uint32_t page_size;
    uint64_t seed;
    char workload[256];
    char tracking[16];    /* pagemap, bitmap, none */
    char holes[256];      /* truncated with "..." when longer */
    uint64_t ticks;       /* workload passes so far (progress) */
    uint64_t sweeps;      /* full passes of the sweep workload */
};

/* Fills *info for one guest. Returns 0 or -1 with errno (ENOENT). */
int xcc_sim_get_info(const char *name, struct xcc_sim_info *info,
                     xentoollog_logger *log);

/*
 * Lists every guest, sorted by name, into a malloc'ed array (*list, to
 * free()) of *count entries. Returns 0 or -1 with errno.
 */
int xcc_sim_list(struct xcc_sim_info **list, size_t *count,
                 xentoollog_logger *log);

/*
 * Dirty logging of an open domain, for benchmarks and tests (the save loop
 * uses the ops table directly): enable resets the log; clean sets bit p of
 * bitmap (nr_pfns bits, zeroed by the caller) for each pfn written since
 * the last clean, re-arms, and returns the count, or -1 with errno.
 */
int xcc_sim_logdirty_enable(xcc_domain *d);
int64_t xcc_sim_logdirty_clean(xcc_domain *d, uint64_t *bitmap);

/* ------------------------------------------------------------------------ */
/* Map cache.                                                                */
/* ------------------------------------------------------------------------ */
/* (section owned by map_cache.c) */
typedef struct xcc_map_cache xcc_map_cache;

/*
 * Persistent mappings of a domain's pages, made in aligned chunks so a page
 * is mapped once for a whole save instead of once per batch. Each chunk is
 * one backend map call (one VMA); a budget bounds how many are resident and
 * the least recently used chunks are unmapped to make room. A handle is not
 * thread-safe: one loop owns it.
 */
struct xcc_map_cache_params {
    size_t size;           /* set by xcc_map_cache_params_init() */
    uint32_t chunk_pfns;   /* pfns per chunk, a power of two; 0: 1024 */
    uint64_t max_mappings; /* chunk mappings (VMAs) allowed;
                              0: vm.max_map_count / 4 */
    uint64_t max_bytes;    /* bytes mapped at once; 0: no byte budget. A
                              budget below one chunk shrinks the chunks. */
    int writable;          /* map for writing (the restore side) */
    int per_batch;         /* --no-map-cache: map each batch, unmap after,
                              as stock Xen */
};

struct xcc_map_cache_stats {
    uint64_t chunks_mapped;   /* chunk mappings made (cached mode) */
    uint64_t map_calls;       /* backend map calls, failed ones included */
    uint64_t unmap_calls;     /* backend unmap calls */
    uint64_t pages_mapped;    /* pages passed to successful map calls */
    uint64_t evictions;       /* chunks unmapped to make room (LRU, ENOMEM) */
    uint64_t hits;            /* pfns found in a chunk already mapped */
    uint64_t misses;          /* pfns whose chunk (or batch) had to be mapped */
    uint64_t map_errors;      /* map calls that failed whole */
    uint64_t resident_chunks; /* mappings held now */
    uint64_t max_mappings;    /* the mapping budget in force, in chunks */
    int per_batch;            /* which mode ran: 1 per-batch, 0 cached */
    /* Added beyond the core set. */
    uint32_t chunk_pfns;      /* chunk size in force */
    uint64_t page_errors;     /* pages a map call reported err[i] < 0 for */
    uint64_t remaps;          /* chunks mapped again to retry failed pages */
    uint64_t invalidations;   /* chunks dropped by xcc_map_cache_invalidate */
    uint64_t enomem_retries;  /* map calls retried after ENOMEM */
    uint64_t max_resident;    /* high-water mark of resident_chunks */
    uint64_t resident_bytes;  /* bytes mapped now */
    uint64_t table_bytes;     /* chunk table + error bitmaps: the part of the
                                 bookkeeping that grows with the guest */
};

/* Fills *p with the defaults (every field 0, see above); sets p->size. */
void xcc_map_cache_params_init(struct xcc_map_cache_params *p);

/*
 * Creates a map cache over d (p NULL: defaults). The domain must outlive
 * the cache. Returns NULL with errno (EINVAL for bad parameters or an
 * unknown p->size, logged; ENOMEM).
 */
xcc_map_cache *xcc_map_cache_new(xcc_domain *d,
                                 const struct xcc_map_cache_params *p);

/* Unmaps everything and frees the cache. NULL is a no-op. */
void xcc_map_cache_free(xcc_map_cache *mc);

/*
 * Resolves pfns[0..k) for some 1 <= k <= n: pages[i] points at the page, or
 * is NULL with err[i] < 0 when it cannot be mapped (a hole, a BROKEN pfn,
 * -EINVAL beyond the domain's pfns). Pages that failed are tried again by
 * the next lookup that touches them. Returns k, or -1 with errno (logged)
 * when a map call failed whole (ENOMEM even after evicting and retrying
 * once). The pointers stay valid until the next lookup, release or
 * invalidate on mc. It stops early (k < n) only when the batch touches more
 * chunks than the budget holds, so a tiny budget still works. n == 0
 * returns 0.
 */
int64_t xcc_map_cache_lookup(xcc_map_cache *mc, const uint64_t *pfns,
                             size_t n, uint8_t **pages, int *err);

/* Ends a batch: per-batch mode unmaps what the last lookup mapped; cached
 * mode keeps its chunks. */
void xcc_map_cache_release(xcc_map_cache *mc);

/* Drops every chunk overlapping [first_pfn, first_pfn + count); the next
 * lookup maps them again. Each lookup already does this itself for the
 * ranges the domain's backend reported changed (a pfn ballooned out or in,
 * moved to another frame, a PV page table freed); call it for changes only
 * the caller knows of. */
void xcc_map_cache_invalidate(xcc_map_cache *mc, uint64_t first_pfn,
                              uint64_t count);

/* Copies the counters into *st. */
void xcc_map_cache_get_stats(const xcc_map_cache *mc,
                             struct xcc_map_cache_stats *st);

/* ------------------------------------------------------------------------ */
/* Stream inspection.                                                        */
/* ------------------------------------------------------------------------ */
/* (section owned by stream.c) */

/* What xcc_stream_inspect found in the headers (filled before any record). */
struct xcc_inspect_headers {
    uint32_t version;        /* image header: spec revision (2 or 3) */
    uint16_t options;        /* image header options (bit 0: big-endian) */
    uint32_t domain_type;    /* 1 x86 PV, 2 x86 HVM, 0x58430000 sim */
    const char *domain_name; /* "x86 PV", "x86 HVM", "sim" */
    uint32_t page_shift;
    uint32_t page_size;
    uint32_t xen_major; /* 0 for sim streams */
    uint32_t xen_minor;
};

/* One valid record, as passed to the callback. Counters are this record's. */
struct xcc_inspect_record {
    uint64_t offset;        /* stream offset of the record header */
    uint32_t type;          /* raw type, bit 31 = optional */
    uint32_t length;        /* body length, padding excluded */
    const char *name;       /* "PAGE_DATA", ..., "UNKNOWN" */
    int optional;           /* bit 31 set */
    int known;              /* a type Xen or xc-colo defines */
    uint64_t pages_data;    /* PAGE_DATA entries carrying data (normal, PT) */
    uint64_t pages_nodata;  /* PAGE_DATA entries without data (XTAB, ...) */
    uint64_t pages_zero;    /* ZERO_PAGES entries */
    uint64_t pages_xbzrle;  /* XBZRLE_PAGES entries */
    uint64_t xbzrle_bytes;  /* encoded delta bytes in XBZRLE_PAGES */
    uint64_t pfns;          /* CHECKPOINT_DIRTY_PFN_LIST entries */
    uint64_t nr_pfns;       /* GUEST_INFO: guest size in pages */
    uint32_t digest_chunks; /* DIGEST: chunk count */
    uint32_t digest_chunk_bytes;
    const uint8_t *digest; /* DIGEST: 16-byte whole-memory digest */
    const char *text;      /* STATS: the JSON text (not NUL-terminated) */
    size_t text_len;
    /* Appended (the library fills the struct; callers read what they
     * know). PAGE_DATA, ZERO_PAGES and XBZRLE_PAGES entries by their 4-bit
     * type: 0 normal, 1..4 PV page tables L1..L4, 9..C pinned L1..L4,
     * D BROKEN, E XALLOC, F XTAB (a hole). */
    uint64_t by_type[16];
    /* PAGE_DATA page-table pages of an x86 PV stream checked normalised:
     * every present entry a pfn below nr_pfns, Xen's slots zero. */
    uint64_t pagetables_checked;
    /* Xen's domain-state records (X86_PV_INFO, vCPU, TSC, ...) and
     * XL_CONFIG: their decoded fields as one JSON object, NUL-terminated,
     * valid during the callback; NULL for other records. Added in 1.1 at
     * the end: the library fills this struct, callers only read it. */
    const char *fields_json;
    /* Appended after fields_json, as it was. CACHE_BASES: pfns whose copy
     * the receiver may drop, and pfns it keeps as XBZRLE bases. */
    uint64_t bases_dropped;
    uint64_t bases_kept;
    /* GUEST_INFO: its flags (XCC_GUEST_INFO_*). */
    uint32_t guest_flags;
};

/* GUEST_INFO flags: typed pfns (stream format 2); the stream announces its
 * XBZRLE cache in CACHE_BASES records (format 3). */
#define XCC_GUEST_INFO_TYPED_PFNS 0x1u
#define XCC_GUEST_INFO_CACHE_BASES 0x2u

/* Record kinds, indexes of record_bytes[] / record_count[]. */
enum {
    XCC_INSPECT_KPAGE_DATA = 0,
    XCC_INSPECT_KZERO_PAGES = 1,
    XCC_INSPECT_KXBZRLE_PAGES = 2,
    XCC_INSPECT_KDIGEST = 3,
    XCC_INSPECT_KSTATS = 4,
    XCC_INSPECT_KCHECKPOINT = 5, /* CHECKPOINT and CHECKPOINT_DIRTY_PFN_LIST */
    XCC_INSPECT_KXEN_OTHER = 6,  /* every other Xen record (skipped) */
    XCC_INSPECT_KOTHER = 7,      /* END, GUEST_INFO, unknown optional ones */
    XCC_INSPECT_NKINDS = 8,
};

/* Totals over the stream; valid (so far) even when inspection fails. */
struct xcc_inspect_totals {
    struct xcc_inspect_headers headers;
    uint64_t bytes;   /* stream bytes read and validated */
    uint64_t records; /* records read, END included */
    uint64_t record_bytes[XCC_INSPECT_NKINDS]; /* by kind, with headers */
    uint64_t record_count[XCC_INSPECT_NKINDS]; /* and padding: XCC_INSPECT_K* */
    uint64_t pages_data, pages_nodata, pages_zero, pages_xbzrle;
    uint64_t xbzrle_bytes;
    uint64_t dirty_pfns;
    uint64_t checkpoints;
    uint64_t nr_pfns; /* from GUEST_INFO, 0 when absent */
    int end_seen;
    char error[512]; /* the failure message, "" on success */
};

/*
 * Called once with rec == NULL right after valid headers, then once per
 * valid record (END included). A non-zero return stops the inspection:
 * xcc_stream_inspect then returns -1 with errno ECANCELED.
 */
typedef int xcc_inspect_fn(void *opaque, const struct xcc_inspect_headers *h,
                           const struct xcc_inspect_record *rec);

/*
 * Reads the stream on fd to its end and validates everything: headers,
 * framing, padding, every count and pfn (PAGE_DATA, ZERO_PAGES and
 * XBZRLE_PAGES pfns against GUEST_INFO's nr_pfns when present, else 2^52),
 * each XBZRLE delta's run grammar, END last and nothing after it. Stock Xen
 * streams are accepted. Xen's x86 PV domain-state records and XL_CONFIG are
 * checked (vCPU ids, cr3 typed L4 in PAGE_DATA, P2M_FRAMES against
 * X86_PV_INFO, sizes) and decoded into fields_json; other Xen records are
 * named and their bodies skipped.
 * flags: 0. totals (may be NULL) receives the counts. Returns 0, or -1 with
 * errno XCC_EBADSTREAM / XCC_ETRUNCATED at the first invalid record (the
 * message, naming the record and its offset, is logged and copied to
 * totals->error), or a read errno.
 */
int xcc_stream_inspect(int fd, xentoollog_logger *log, unsigned flags,
                       xcc_inspect_fn *cb, void *opaque,
                       struct xcc_inspect_totals *totals);

/*
 * xl save images (section owned by xl_format.c): `xl save` writes a 48-byte
 * xl header ("Xen saved domain, xl format"), the domain's libxl config,
 * then libxl's v2 stream: a header ("LibxlFmt", version 2) and libxl
 * records, LIBXC_CONTEXT being followed by a whole libxc stream, END last.
 * `xc-colo save --xen-compat` of a Xen domain writes the same.
 */
struct xcc_inspect_xl {
    uint32_t mandatory_flags;   /* 1: the config is JSON, 2: libxl v2 stream */
    uint32_t optional_flags;
    uint32_t optional_data_len; /* bytes after the 48-byte header */
    uint32_t config_len;        /* config bytes (with its NUL); 0: none */
    const char *config;         /* the config, NUL-terminated; NULL: none */
    uint32_t libxl_version;     /* 2 */
    uint32_t libxl_options;     /* bit 1: converted from a legacy stream */
};

/* One libxl record (the libxc stream's records go to xcc_inspect_fn). */
struct xcc_inspect_libxl_record {
    uint64_t offset;  /* file offset of the record header */
    uint32_t type;
    uint32_t length;  /* body bytes, padding excluded */
    const char *name; /* "LIBXC_CONTEXT", "END", "EMULATOR_CONTEXT", ... */
    int emulator;     /* EMULATOR_*: the two fields below are valid */
    uint32_t emulator_id, emulator_index;
};

/*
 * Called with rec NULL once the xl and libxl headers are valid, then for
 * each libxl record, in file order with the libxc stream's callbacks (its
 * headers and records come between LIBXC_CONTEXT and the next libxl
 * record). Pointers are valid during the call. Non-zero stops the
 * inspection (-1, errno ECANCELED).
 */
typedef int xcc_inspect_xl_fn(void *opaque, const struct xcc_inspect_xl *xl,
                              const struct xcc_inspect_libxl_record *rec);

/*
 * As xcc_stream_inspect(), for a libxc stream or an xl save image (stock
 * `xl save`, or `xc-colo save --xen-compat` of a Xen domain), told apart
 * by the first 32 bytes. For an image, xl_cb (may be NULL) receives the xl
 * header and every libxl record, and everything is validated: the header's
 * magic, byte order and flags, the config's length (a JSON config ends in
 * its NUL), libxl's header, LIBXC_CONTEXT first, padding, END last and
 * nothing after it; Remus/COLO (checkpointed) images are refused. Offsets
 * are file offsets; totals->bytes counts the whole file. Returns 0, or -1
 * with errno XCC_EBADSTREAM / XCC_ETRUNCATED (the message names the part
 * or record, its offset and the fault, logged and in totals->error), or a
 * read errno.
 */
int xcc_image_inspect(int fd, xentoollog_logger *log, unsigned flags,
                      xcc_inspect_xl_fn *xl_cb, xcc_inspect_fn *cb,
                      void *opaque, struct xcc_inspect_totals *totals);

/* ------------------------------------------------------------------------ */
/* Save, migrate and checkpoint.                                             */
/* ------------------------------------------------------------------------ */
/* (section owned by save.c) */
typedef struct xcc_saver xcc_saver;

/* Xen's defaults for the convergence policy. */
#define XCC_SAVE_DEFAULT_MAX_ITERS 5u     /* live passes, iteration 0 included */
#define XCC_SAVE_DEFAULT_TARGET_DIRTY 50u /* pages left for the final pass */
/* QEMU's default XBZRLE cache (capped at the guest's size). */
#define XCC_SAVE_DEFAULT_CACHE_SIZE (64ull << 20)

struct xcc_save_params {
    size_t size;          /* sizeof(struct xcc_save_params): set by
                             xcc_save_params_init() */
    int live;             /* precopy while the guest runs; 0: pause, 1 pass */
    int xbzrle;           /* send re-dirtied pages as XBZRLE deltas */
    uint64_t cache_size;  /* XBZRLE cache budget in bytes; 0: default */
    int no_map_cache;     /* map per batch and unmap after, as stock Xen */
    int xen_compat;       /* Xen records only (no ZERO/XBZRLE/GUEST_INFO/
                             DIGEST/STATS): a stock Xen reader accepts it.
                             A Xen domain's stream is then wrapped as
                             `xl save` wraps it (xl header with the config,
                             libxl v2 stream), so `xl restore` reads it;
                             needs domain_config_json; no xbzrle */
    int verify;           /* send DIGEST before END (ignored by xen_compat) */
    uint32_t max_iters;   /* live passes before the final one; 0: default */
    uint64_t target_dirty;/* stop iterating at <= this many dirty pages;
                             0: default */
    uint64_t max_downtime_ms; /* also stop once the final pass is estimated
                                 (dirty pages x bytes per page / bandwidth)
                                 to fit; 0: not used */
    uint64_t min_remaining;   /* with abort_if_busy: the most dirty pages a
                                 forced final pass may carry; 0: target_dirty */
    int abort_if_busy;    /* not converged after max_iters with more than
                             min_remaining dirty: fail with XCC_EBUSY
                             instead of forcing a long final pass */
    uint32_t batch_pages; /* pages per batch (one PAGE_DATA record at most);
                             0: 1024, as Xen */
    int progress;         /* report progress through xtl_progress */
    uint64_t max_bandwidth; /* bytes per second on the fd, on average (a
                               token bucket, as QEMU's max-bandwidth); the
                               --max-downtime estimate uses it; 0: none */
    uint32_t suspend_timeout_ms; /* Xen: how long a guest may take to
                                    suspend itself for the final pass (or a
                                    checkpoint) before the save fails and it
                                    runs on; 0: 30000 */
    const char *domain_config_json; /* libxl JSON config of the domain, or
                               NULL; sent as an XL_CONFIG record (not with
                               xen_compat: there it goes in the xl header);
                               must stay valid until the saver is freed */
    int compress_level;   /* zstd level 1..19 for whole pages (the pages
                             XBZRLE does not cover), as COMPRESSED_PAGES
                             records; 0: off. Refused with xen_compat */
    int no_hot_predict;   /* live XBZRLE: do not cache, during iteration 0,
                             the pages already dirtied when it reaches them
                             (on by default; off for comparisons) */
    uint32_t threads;     /* threads that classify and encode a batch's pages
                             (1..XCC_SAVE_MAX_THREADS; 1: the caller's only);
                             0: the online CPUs, at most
                             XCC_SAVE_DEFAULT_MAX_THREADS. The stream's
                             content does not depend on it. */
};

/* Encoding threads of a saver: at most, and at most by default. */
#define XCC_SAVE_MAX_THREADS 64u
#define XCC_SAVE_DEFAULT_MAX_THREADS 8u

/* Fills *p with the defaults: not live, no XBZRLE, map cache on, verify on,
 * Xen's convergence defaults, progress on; sets p->size. */
void xcc_save_params_init(struct xcc_save_params *p);

/*
 * A saver of domain d onto fd (file, pipe or socket; the caller keeps
 * ownership of both). p NULL: the defaults. log NULL: the default logger.
 * Nothing is written yet. Returns NULL with errno (EINVAL for bad
 * parameters or an unknown p->size, logged; ENOMEM).
 */
xcc_saver *xcc_saver_new(xcc_domain *d, int fd,
                         const struct xcc_save_params *p,
                         xentoollog_logger *log);

/*
 * Runs the whole save: headers, GUEST_INFO, the precopy passes (live), the
 * final pass with the guest paused, DIGEST (verify) and END. A Xen guest is
 * not paused but asked to suspend itself (control/shutdown in xenstore),
 * as `xl save` does; one that does not within suspend_timeout_ms fails the
 * save with XCC_ENOSUSPEND and runs on. The guest is left paused (Xen:
 * suspended) on success, as `xl save` leaves it before destroying it
 * (xcc_domain_unpause() to go on, like `xl save -c`; it resumes a
 * suspended guest in place). On failure the guest is unpaused (resumed)
 * again if the saver stopped it, log-dirty mode is switched off, and -1 is
 * returned with
 * errno (XCC_EBUSY with abort_if_busy, EBUSY when another saver holds the
 * domain's saver lock, ENOENT when the guest was destroyed during the save,
 * or the write's errno such as EPIPE); the stream is then incomplete (no
 * END). One saver per domain: the run holds the domain's saver lock
 * throughout. Call once per saver.
 */
int xcc_saver_run(xcc_saver *s);

/*
 * Asks a running save to stop (async-signal-safe: it sets a flag, so a
 * SIGINT/SIGTERM handler may call it). xcc_saver_run then fails at its next
 * batch with errno ECANCELED: the stream is left without END (a restore
 * refuses it) and the guest is unpaused if the saver had paused it.
 */
void xcc_saver_cancel(xcc_saver *s);

/*
 * The figures as one JSON object (QEMU query-migrate names: total-time,
 * downtime, setup-time, ram{...}, xbzrle-cache{...}, plus iterations[] and
 * map-cache{...}), NUL-terminated. Valid until the next call or
 * xcc_saver_free(). Also usable after a failed run. NULL with errno ENOMEM.
 */
const char *xcc_saver_stats_json(xcc_saver *s);

/* The main totals, for a short summary without parsing JSON. */
struct xcc_save_summary {
    double total_ms, downtime_ms, setup_ms;
    uint64_t transferred;       /* stream bytes */
    uint64_t after_iter0_bytes; /* stream bytes after iteration 0 */
    uint64_t iterations;        /* passes, the final one included */
    uint64_t normal_pages, zero_pages, xbzrle_pages, xbzrle_bytes;
    uint64_t cache_miss, overflow;
    double cache_miss_rate;     /* misses / lookups, 0 without XBZRLE */
    double mbps;                /* stream bytes per second, Mbit/s */
};
void xcc_saver_get_summary(const xcc_saver *s, struct xcc_save_summary *out);

/* Frees the saver (never the domain or the fd). NULL is a no-op. */
void xcc_saver_free(xcc_saver *s);

/* ------------------------------------------------------------------------ */
/* Restore.                                                                  */
/* ------------------------------------------------------------------------ */
/* (section owned by restore.c) */
typedef struct xcc_restorer xcc_restorer;

struct xcc_restore_params {
    size_t size;      /* set by xcc_restore_params_init() */
    int no_map_cache; /* map per batch and unmap after, as stock Xen */
    int verify;       /* check DIGEST records against the target (default) */
    int progress;     /* report progress through xtl_progress */
};

/* Fills *p with the defaults: map cache on, verify on, progress on; sets
 * p->size. */
void xcc_restore_params_init(struct xcc_restore_params *p);

/* What the stream says about the guest, known after xcc_restorer_begin(). */
struct xcc_restore_stream_info {
    uint32_t domain_type; /* 1 x86 PV, 2 x86 HVM, 0x58430000 sim */
    uint32_t page_size;
    uint32_t version;     /* stream spec revision */
    uint64_t nr_pfns;     /* from GUEST_INFO; 0 when the stream has none
                             (a --xen-compat or stock Xen stream) */
};

/*
 * A restorer reading fd (the caller keeps it). p NULL: the defaults. log
 * NULL: the default logger. Returns NULL with errno (EINVAL for an unknown
 * p->size, logged; ENOMEM).
 */
xcc_restorer *xcc_restorer_new(int fd, const struct xcc_restore_params *p,
                               xentoollog_logger *log);

/*
 * Reads the headers and, when it is the first record, GUEST_INFO, so the
 * caller can create a target of the right size. Returns 0, or -1 with errno
 * XCC_EBADSTREAM / XCC_ETRUNCATED / a read errno (the reason, naming the
 * record and offset, is logged and kept for xcc_restorer_error()).
 */
int xcc_restorer_begin(xcc_restorer *r, struct xcc_restore_stream_info *info);

/*
 * Applies every record up to END onto d (calls xcc_restorer_begin() first
 * if the caller did not): PAGE_DATA is copied, ZERO_PAGES zero-filled,
 * XBZRLE_PAGES decoded onto the page the target holds, DIGEST checked.
 * Every pfn is checked against d's size before use. Returns 0 once END is
 * read and nothing follows it; -1 with errno XCC_EBADSTREAM (bad record),
 * XCC_ETRUNCATED (the stream ended early), XCC_EDIGEST (a chunk differs:
 * the log names it), EINVAL (the target is smaller than the stream's guest
 * or has another page size) or a read/map errno. The target then holds a
 * partial image.
 */
int xcc_restorer_run(xcc_restorer *r, xcc_domain *d);

/* The message of the error that stopped the restore ("" if none). */
const char *xcc_restorer_error(const xcc_restorer *r);

/* Figures as one JSON object (total-time, ram{...}, records, map-cache),
 * valid until the next call or xcc_restorer_free(); NULL with ENOMEM. */
const char *xcc_restorer_stats_json(xcc_restorer *r);

/* Frees the restorer (never the domain or the fd). NULL is a no-op. */
void xcc_restorer_free(xcc_restorer *r);

/* ------------------------------------------------------------------------ */
/* Into a new Xen domain: the stream libxl restores from (since 1.2).        */
/* ------------------------------------------------------------------------ */

/*
 * A translator reads an xc-colo stream of an x86 PV guest (or a stock xl
 * image) on fd and writes the stock libxl v2 stream (libxl header,
 * LIBXC_CONTEXT, the libxc stream, END) that libxl_domain_create_restore
 * reads with stream_version 2. Every record is checked as a restore checks
 * it; ZERO_PAGES, XBZRLE_PAGES and COMPRESSED_PAGES are decoded against
 * the translator's copy of the guest (a memfd of the guest's size) and
 * leave as PAGE_DATA of at most 1024 pages; Xen's state records go
 * through unchanged; xc-colo's own records never reach libxl. A stream
 * that announces its XBZRLE cache (CACHE_BASES, stream format 3) gets a
 * sparse copy: only the pages the sender's cache holds are kept once
 * forwarded, so the copy costs about the sender's cache size, and its
 * DIGEST records are validated but cannot be compared (counted as not
 * checked in the stats). Otherwise the copy keeps every page sent and
 * DIGEST records are checked against it when p->verify is set.
 */
typedef struct xcc_xen_translator xcc_xen_translator;

/* p NULL: the defaults (verify on). NULL with errno (ENOMEM, EINVAL). */
xcc_xen_translator *xcc_xen_translator_new(int fd,
                                           const struct xcc_restore_params *p,
                                           xentoollog_logger *log);

/*
 * Reads the headers, GUEST_INFO and XL_CONFIG (or the xl header), so the
 * caller can create the domain: *config is the domain's configuration the
 * stream carries (NULL: none), valid until xcc_xen_translator_free();
 * *config_is_json is 1 for libxl JSON, 0 for xl's text syntax (an old xl
 * image). Either pointer may be NULL. Refuses a stream that is not x86 PV.
 * 0, or -1 with errno XCC_EBADSTREAM / XCC_ETRUNCATED / a read errno.
 */
int xcc_xen_translator_begin(xcc_xen_translator *t, const char **config,
                             int *config_is_json);

/*
 * Translates everything up to END into out_fd (begin() first if the caller
 * did not). 0 once END was read and nothing follows; -1 with errno as
 * xcc_restorer_run(), or the write's errno (EPIPE: the reader went away).
 * The message is in xcc_xen_translator_error(). Runs once.
 */
int xcc_xen_translator_run(xcc_xen_translator *t, int out_fd);

/*
 * Checkpoint mode (Remus), chosen before begin(): the stream is an
 * `xc-colo checkpoint` stream and the output libxl's checkpointed one
 * (restore with checkpointed_stream REMUS). Before checkpoint 1 records go
 * through as they come; after it, an epoch reaches out_fd only whole, with
 * its CHECKPOINT (libxc's CHECKPOINT, then libxl's CHECKPOINT_END), so
 * libxenguest never sees half an epoch. Each checkpoint is acknowledged on
 * back_fd (-1: none) as `restore --checkpointed` does. When the stream
 * breaks or goes bad after checkpoint 1, returns -1 with errno
 * XCC_EFAILOVER and *kept the checkpoints libxl has: the caller ends
 * libxl's stream there, and libxenguest completes the domain from the
 * last of them. 0 at END (the domain is the last checkpoint).
 */
int xcc_xen_translator_set_checkpointed(xcc_xen_translator *t);
int xcc_xen_translator_run_checkpointed(xcc_xen_translator *t, int out_fd,
                                        int back_fd, uint64_t *kept);

const char *xcc_xen_translator_error(const xcc_xen_translator *t);

/* Figures as one JSON object (in{...}, out{...}, the decode copy: its mode,
 * bytes at the end and at the peak, bases, beside guest-bytes), valid until
 * the next call or free(); NULL with ENOMEM. */
const char *xcc_xen_translator_stats_json(xcc_xen_translator *t);

void xcc_xen_translator_free(xcc_xen_translator *t);

/* ------------------------------------------------------------------------ */
/* Continuous checkpoints (Remus/COLO replication).                          */
/* ------------------------------------------------------------------------ */
/* (section owned by checkpoint.c and restore_checkpoint.c) */
typedef struct xcc_checkpointer xcc_checkpointer;

/* Xen's `xl remus` default interval between checkpoints. */
#define XCC_CHECKPOINT_DEFAULT_INTERVAL_MS 200u

/*
 * Called for checkpoint k (from 1) while the guest is paused, after its
 * pages are written and before its CHECKPOINT record is: whatever the
 * callback records is done before a receiver can commit k. digest is the
 * whole-memory digest (as xcc_domain_digest, flags digest_flags) when want_digest is
 * set, else NULL. A non-zero return stops the run with an error.
 */
typedef int xcc_checkpoint_fn(void *opaque, uint64_t k, const uint8_t *digest);

struct xcc_checkpoint_params {
    size_t size;            /* set by xcc_checkpoint_params_init() */
    uint32_t interval_ms;   /* wait between checkpoints (0: none) */
    uint64_t count;         /* stop after this many; 0: only on *stop */
    int colo;               /* the secondary runs the guest and sends its
                               dirty pfns back (needs back_fd) */
    int back_fd;            /* fd the receiver's acknowledgements (and COLO
                               dirty lists) come back on, typically the
                               same socket; -1: none, commit times unknown */
    int want_digest;        /* compute the digest passed to on_checkpoint */
    xcc_checkpoint_fn *on_checkpoint; /* may be NULL */
    void *opaque;
    /* Set (from a signal handler) to end the run: the current checkpoint
     * is finished, then END is sent. May be NULL. */
    const volatile int *stop;
    uint32_t back_timeout_ms; /* waiting for the back channel; 0: 10 s */
    unsigned digest_flags;    /* XCC_DIGEST_* for the on_checkpoint digest
                                 (PV page tables differ between domains) */
};

/* Fills *p with the defaults: 200 ms, no count, no COLO, no back channel;
 * sets p->size. */
void xcc_checkpoint_params_init(struct xcc_checkpoint_params *p);

/*
 * A checkpointer of domain d onto fd: sp are the save options (live is
 * forced on), cp the checkpoint options (both copied; NULL: defaults).
 * The caller keeps d, fd and back_fd. Returns NULL with errno (EINVAL for
 * bad parameters or an unknown size in sp or cp, logged; ENOMEM).
 */
xcc_checkpointer *xcc_checkpointer_new(xcc_domain *d, int fd,
                                       const struct xcc_save_params *sp,
                                       const struct xcc_checkpoint_params *cp,
                                       xentoollog_logger *log);

/*
 * Runs the live phase as a live save does, then checkpoints until count or
 * *stop: pause, send the pages dirtied since the last checkpoint (with
 * COLO, also those the secondary dirtied, dropped from the XBZRLE cache
 * first), DIGEST (verify), CHECKPOINT, unpause, wait the interval. Then
 * END; the guest is left paused, as after a save. Returns 0, or -1 with
 * errno (the write's errno such as EPIPE, ETIMEDOUT when the secondary did
 * not answer, XCC_EBADSTREAM for a bad back channel); the guest is then
 * unpaused if the checkpointer paused it.
 */
int xcc_checkpointer_run(xcc_checkpointer *c);

/*
 * Abandons a running checkpointer (async-signal-safe), unlike *stop, which
 * finishes the current checkpoint: xcc_checkpointer_run fails with errno
 * ECANCELED, no END is written (the receiver keeps its last committed
 * checkpoint) and the guest is unpaused if the checkpointer paused it.
 */
void xcc_checkpointer_cancel(xcc_checkpointer *c);

/*
 * The save figures (as xcc_saver_stats_json) plus "checkpoint": count,
 * checkpoints per second, pause/commit/bytes/pages percentiles (p50, p99,
 * max) and one entry per checkpoint. commit-ms is the time from the
 * CHECKPOINT record written to the receiver's acknowledgement read, null
 * without a back channel. Valid until the next call or free; NULL: ENOMEM.
 */
const char *xcc_checkpointer_stats_json(xcc_checkpointer *c);

struct xcc_checkpoint_summary {
    uint64_t checkpoints;   /* completed (CHECKPOINT written) */
    uint64_t acked;         /* acknowledged by the receiver */
    double per_second;      /* checkpoints / time from the first pause on */
    double pause_p50_ms, pause_p99_ms, pause_max_ms;
    double commit_p50_ms, commit_p99_ms, commit_max_ms; /* -1: unknown */
    double bytes_mean, pages_mean; /* per checkpoint */
    uint64_t secondary_dirty; /* COLO: pfns the secondary sent back */
};
void xcc_checkpointer_get_summary(const xcc_checkpointer *c,
                                  struct xcc_checkpoint_summary *out);

/* Frees the checkpointer (never d or the fds). NULL is a no-op. */
void xcc_checkpointer_free(xcc_checkpointer *c);

/* Receiver side. */
struct xcc_checkpoint_restore_params {
    size_t size; /* set by xcc_checkpoint_restore_params_init() */
    int back_fd; /* where acknowledgements (and COLO dirty lists) go, usually
                    the stream's own socket; -1: none */
    int colo;    /* the secondary runs the guest between checkpoints */
    /*
     * Called after checkpoint k is in the target (and acknowledged). With
     * colo this is where the caller starts or continues the guest; the
     * restorer pauses it (xcc_domain_pause) when the next epoch begins.
     * A non-zero return stops the restore with an error. May be NULL.
     */
    int (*on_commit)(void *opaque, uint64_t k);
    void *opaque;
};

/* Fills *p with the defaults: no back channel, no COLO, no callback; sets
 * p->size. */
void xcc_checkpoint_restore_params_init(struct xcc_checkpoint_restore_params *p);

/*
 * As xcc_restorer_run, for a checkpoint stream. Records before the first
 * CHECKPOINT are applied as they come (the target is incomplete until
 * then); after it, each epoch is buffered, decoded into scratch pages and
 * applied whole at its CHECKPOINT, so the target only ever holds complete
 * checkpoints. *kept receives the last checkpoint committed. Returns 0 at
 * END (a stream without CHECKPOINT restores as xcc_restorer_run does);
 * -1 with errno XCC_EFAILOVER when the stream broke or went bad after
 * checkpoint *kept >= 1 (the target holds it exactly; the reason is in
 * xcc_restorer_error()); other errno as xcc_restorer_run when it broke
 * before the first checkpoint or the target failed; EINVAL for an unknown
 * p->size (p NULL: the defaults).
 */
int xcc_restorer_run_checkpointed(xcc_restorer *r, xcc_domain *d,
                                  const struct xcc_checkpoint_restore_params *p,
                                  uint64_t *kept);

#ifdef __cplusplus
}
#endif
#endif /* XCCOLO_H */
